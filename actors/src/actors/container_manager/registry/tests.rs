//! The registry's bookkeeping, on a manager with no spawner, no cgroup
//! hierarchy and no prewarmed root: registering a process by its identity
//! and recording exits make no system call there.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::super::{ContainerManager, ManagerConfig};
use super::{valid_container_id, Container, Identity, Phase, EARLY_EXITS_KEPT, UNCOLLECTED_KEPT};
use crate::actors::reaper::ExitJournal;
use crate::containment::ContainedNamespaces;
use crate::metrics::SandboxMetrics;
use crate::supervision::{ActorStatus, RestartPolicy};
use crate::sys::process::{Reaped, WaitStatus};

fn manager() -> ContainerManager {
    let config = ManagerConfig {
        sandbox_id: "sandbox".into(),
        state_dir: PathBuf::from("/nonexistent/state"),
        cgroup_parent: PathBuf::from("sandbox"),
        supervisor_pid: 1,
        instruments: SandboxMetrics::new("sandbox"),
        contained: Arc::new(ContainedNamespaces::default()),
    };
    ContainerManager::new(
        ActorStatus::new("ContainerManager", RestartPolicy::default()),
        crate::logging::discard(),
        config,
        Vec::new(),
        None,
        None,
        Arc::new(ExitJournal::default()),
    )
}

/// Adds container `cid`, in `phase`, whose init is `init`.
fn add_container(m: &mut ContainerManager, cid: &str, phase: Phase, init: Option<i32>) {
    let container = Container {
        init,
        ..Container::new(PathBuf::from("/nonexistent/state").join(cid), phase)
    };
    m.containers.insert(cid.to_owned(), container);
}

/// Registers `pid` in `cid` as started at tick `start_time` (no pidfd).
fn register(m: &mut ContainerManager, pid: i32, start_time: u64, cid: &str) {
    m.register_identified(pid, None, started_at(start_time), cid, false);
}

fn started_at(start_time: u64) -> Identity {
    Identity {
        start_time: Some(start_time),
        pidfs_inode: None,
    }
}

fn exit_of(pid: i32, status: WaitStatus, start_time: u64) -> Reaped {
    Reaped {
        pid,
        status,
        start_time: Some(start_time),
        pidfs_inode: None,
    }
}

/// What a waiter got: `None` while it waits.
fn got(rx: &mut oneshot::Receiver<WaitStatus>) -> Option<WaitStatus> {
    rx.try_recv().ok()
}

#[test]
fn an_init_exit_resolves_the_waiters_and_stops_the_container() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    let mut process_waiter = m.exit_waiter(100);
    let (tx, mut container_waiter) = oneshot::channel();
    m.containers.get_mut("c").unwrap().waiters.push(tx);
    assert_eq!(got(&mut process_waiter), None);

    let status = WaitStatus::exited(3);
    m.record_exit(exit_of(100, status, 7));

    assert_eq!(got(&mut process_waiter), Some(status));
    assert_eq!(got(&mut container_waiter), Some(status));
    let c = &m.containers["c"];
    assert_eq!(c.phase, Phase::Stopped);
    assert_eq!(c.exit, Some(status));
    assert!(!c.init_oom_killed);
    let p = &m.processes[&100];
    assert_eq!(p.exit, Some(status));
    assert!(p.pidfd.is_none());
    // Once exited, a waiter is answered at once.
    assert_eq!(got(&mut m.exit_waiter(100)), Some(status));
}

#[test]
fn an_init_exit_during_its_start_leaves_the_phase_to_the_start() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Starting, Some(100));
    register(&mut m, 100, 7, "c");
    m.record_exit(exit_of(100, WaitStatus::exited(1), 7));
    let c = &m.containers["c"];
    assert_eq!(c.phase, Phase::Starting);
    assert_eq!(c.exit, Some(WaitStatus::exited(1)));
}

#[test]
fn an_exec_exit_keeps_its_status_and_the_container_running() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    register(&mut m, 200, 8, "c");
    let mut waiter = m.exit_waiter(200);
    let killed = WaitStatus::signaled(libc::SIGTERM, false);
    m.record_exit(exit_of(200, killed, 8));
    assert_eq!(got(&mut waiter), Some(killed));
    assert_eq!(m.processes[&200].exit, Some(killed));
    let c = &m.containers["c"];
    assert_eq!(c.phase, Phase::Running);
    assert_eq!(c.exit, None);
}

#[test]
fn an_exit_of_another_process_with_the_same_pid_waits_in_early_exits() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    let mut waiter = m.exit_waiter(100);
    // An earlier process that had pid 100 (started at tick 5).
    m.record_exit(exit_of(100, WaitStatus::exited(9), 5));
    assert_eq!(got(&mut waiter), None);
    assert_eq!(m.processes[&100].exit, None);
    assert_eq!(m.containers["c"].phase, Phase::Running);
    assert_eq!(m.early_exits.len(), 1);
    // Its own exit is taken.
    m.record_exit(exit_of(100, WaitStatus::exited(0), 7));
    assert_eq!(got(&mut waiter), Some(WaitStatus::exited(0)));
    assert_eq!(m.containers["c"].phase, Phase::Stopped);
    assert_eq!(m.early_exits.len(), 1);
}

#[test]
fn an_exit_already_recorded_is_not_taken_twice() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 200, 8, "c");
    m.record_exit(exit_of(200, WaitStatus::exited(1), 8));
    m.record_exit(exit_of(200, WaitStatus::exited(2), 8));
    assert_eq!(m.processes[&200].exit, Some(WaitStatus::exited(1)));
    assert_eq!(m.early_exits.len(), 1);
}

#[test]
fn an_early_exit_is_applied_at_registration() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Starting, None);
    // The child dies before the spawner's reply is read.
    m.record_exit(exit_of(300, WaitStatus::exited(4), 11));
    assert_eq!(m.early_exits.len(), 1);
    assert!(!m.processes.contains_key(&300));
    m.containers.get_mut("c").unwrap().init = Some(300);
    register(&mut m, 300, 11, "c");
    assert!(m.early_exits.is_empty());
    assert_eq!(m.processes[&300].exit, Some(WaitStatus::exited(4)));
    assert_eq!(got(&mut m.exit_waiter(300)), Some(WaitStatus::exited(4)));
    let c = &m.containers["c"];
    assert_eq!(c.exit, Some(WaitStatus::exited(4)));
    // Still starting: `launched` decides the phase.
    assert_eq!(c.phase, Phase::Starting);
}

#[test]
fn an_early_exit_of_another_process_is_left_at_registration() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    m.record_exit(exit_of(300, WaitStatus::exited(4), 11));
    register(&mut m, 300, 12, "c");
    assert_eq!(m.processes[&300].exit, None);
    assert_eq!(m.early_exits.len(), 1);
}

#[test]
fn of_early_exits_of_one_pid_a_registration_takes_its_own() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    m.record_exit(exit_of(300, WaitStatus::exited(1), 11));
    m.record_exit(exit_of(300, WaitStatus::exited(2), 13));
    register(&mut m, 300, 11, "c");
    assert_eq!(m.processes[&300].exit, Some(WaitStatus::exited(1)));
    assert_eq!(m.early_exits.len(), 1);
    assert_eq!(m.early_exits[0].start_time, Some(13));
}

#[test]
fn of_early_exits_a_registration_without_identity_takes_the_latest() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    m.record_exit(exit_of(300, WaitStatus::exited(1), 11));
    m.record_exit(exit_of(300, WaitStatus::exited(2), 15));
    m.record_exit(exit_of(300, WaitStatus::exited(3), 13));
    let unknown = Identity {
        start_time: None,
        pidfs_inode: None,
    };
    m.register_identified(300, None, unknown, "c", false);
    assert_eq!(m.processes[&300].exit, Some(WaitStatus::exited(2)));
    assert_eq!(m.early_exits.len(), 2);
}

#[test]
fn early_exits_are_bounded_oldest_dropped_first() {
    let mut m = manager();
    let extra = 10;
    for pid in 0..(EARLY_EXITS_KEPT + extra) as i32 {
        m.record_exit(exit_of(1000 + pid, WaitStatus::exited(0), 1));
    }
    assert_eq!(m.early_exits.len(), EARLY_EXITS_KEPT);
    assert_eq!(
        m.early_exits.front().map(|r| r.pid),
        Some(1000 + extra as i32)
    );
}

#[test]
fn a_helper_exit_is_dropped_whichever_comes_first() {
    let mut m = manager();
    // Expected, then reaped.
    m.expect_helper_exit(400);
    m.record_exit(exit_of(400, WaitStatus::exited(0), 1));
    assert!(m.early_exits.is_empty());
    assert!(m.helper_exits.is_empty());
    assert!(m.processes.is_empty());
    // Reaped, then expected.
    m.record_exit(exit_of(401, WaitStatus::exited(0), 1));
    assert_eq!(m.early_exits.len(), 1);
    m.expect_helper_exit(401);
    assert!(m.early_exits.is_empty());
    assert!(m.helper_exits.is_empty());
}

#[test]
fn a_resident_exit_is_forgotten() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    m.register_identified(150, None, started_at(3), "c", true);
    assert!(m.processes[&150].confirmed);
    let mut waiter = m.exit_waiter(150);
    m.record_exit(exit_of(150, WaitStatus::signaled(libc::SIGKILL, false), 3));
    assert_eq!(
        got(&mut waiter),
        Some(WaitStatus::signaled(libc::SIGKILL, false))
    );
    assert!(!m.processes.contains_key(&150));
    assert_eq!(m.containers["c"].phase, Phase::Running);
}

#[test]
fn uncollected_caller_statuses_are_bounded() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    let extra = 6;
    let pids: Vec<i32> = (0..(UNCOLLECTED_KEPT + extra) as i32)
        .map(|i| 2000 + i)
        .collect();
    for &pid in &pids {
        register(&mut m, pid, 1, "c");
        m.processes.get_mut(&pid).unwrap().caller_parented = true;
        m.record_exit(exit_of(pid, WaitStatus::exited(0), 1));
    }
    assert_eq!(m.uncollected.len(), UNCOLLECTED_KEPT);
    assert_eq!(m.processes.len(), UNCOLLECTED_KEPT);
    for &pid in &pids[..extra] {
        assert!(!m.processes.contains_key(&pid), "pid {pid} kept");
    }
    for &pid in &pids[extra..] {
        assert_eq!(m.processes[&pid].exit, Some(WaitStatus::exited(0)));
    }
}

#[test]
fn a_later_process_with_an_uncollected_pid_is_not_let_go_with_it() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 500, 1, "c");
    m.processes.get_mut(&500).unwrap().caller_parented = true;
    m.record_exit(exit_of(500, WaitStatus::exited(0), 1));
    // Pid 500 is given to a new process, which runs.
    register(&mut m, 500, 2, "c");
    for i in 0..UNCOLLECTED_KEPT as i32 {
        let pid = 3000 + i;
        register(&mut m, pid, 1, "c");
        m.processes.get_mut(&pid).unwrap().caller_parented = true;
        m.record_exit(exit_of(pid, WaitStatus::exited(0), 1));
    }
    assert_eq!(m.uncollected.len(), UNCOLLECTED_KEPT);
    assert!(m.processes.contains_key(&500));
    assert_eq!(m.processes[&500].exit, None);
}

#[test]
fn a_caller_parented_init_exit_stops_its_container() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    m.processes.get_mut(&100).unwrap().caller_parented = true;
    m.record_exit(exit_of(100, WaitStatus::exited(0), 7));
    assert!(m.uncollected.is_empty());
    assert_eq!(m.containers["c"].phase, Phase::Stopped);
    assert_eq!(m.processes[&100].exit, Some(WaitStatus::exited(0)));
}

#[test]
fn a_sigkill_exit_claims_an_oom_kill_noted_in_its_container() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    register(&mut m, 200, 8, "c");
    register(&mut m, 201, 8, "c");
    let now = Instant::now();
    m.containers
        .get_mut("c")
        .unwrap()
        .unclaimed_oom_kills
        .push_back(now);
    let killed = WaitStatus::signaled(libc::SIGKILL, false);
    // An exit by another signal claims nothing.
    m.record_exit(exit_of(201, WaitStatus::signaled(libc::SIGTERM, false), 8));
    assert!(!m.processes[&201].oom_killed);
    m.record_exit(exit_of(200, killed, 8));
    assert!(m.processes[&200].oom_killed);
    assert!(m.containers["c"].unclaimed_oom_kills.is_empty());
    // The kill is claimed once: the init's SIGKILL is its own.
    m.record_exit(exit_of(100, killed, 7));
    assert!(!m.containers["c"].init_oom_killed);
}

#[test]
fn an_init_killed_by_the_oom_killer_marks_its_container() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    let c = m.containers.get_mut("c").unwrap();
    c.unclaimed_oom_kills.push_back(Instant::now());
    m.record_exit(exit_of(100, WaitStatus::signaled(libc::SIGKILL, false), 7));
    assert!(m.processes[&100].oom_killed);
    assert!(m.containers["c"].init_oom_killed);
    assert_eq!(m.containers["c"].phase, Phase::Stopped);
}

#[test]
fn an_oom_kill_noted_too_long_ago_expires_unclaimed() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 200, 8, "c");
    let long_ago = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
    m.containers
        .get_mut("c")
        .unwrap()
        .unclaimed_oom_kills
        .push_back(long_ago);
    m.record_exit(exit_of(200, WaitStatus::signaled(libc::SIGKILL, false), 8));
    assert!(!m.processes[&200].oom_killed);
    assert!(m.containers["c"].unclaimed_oom_kills.is_empty());
}

#[test]
fn applied_exits_leave_the_journal() {
    let mut m = manager();
    add_container(&mut m, "c", Phase::Running, Some(100));
    register(&mut m, 100, 7, "c");
    m.journal.push(exit_of(100, WaitStatus::exited(0), 7));
    m.journal.push(exit_of(600, WaitStatus::exited(0), 1));
    m.apply_exits();
    assert_eq!(m.journal.front(), None);
    assert_eq!(m.containers["c"].phase, Phase::Stopped);
    assert_eq!(m.early_exits.len(), 1);
}

#[test]
fn a_waiter_for_an_unknown_pid_is_closed() {
    let mut m = manager();
    let mut waiter = m.exit_waiter(700);
    assert_eq!(waiter.try_recv(), Err(oneshot::error::TryRecvError::Closed));
}

#[test]
fn identity_owns_by_inode_then_start_time_then_pid() {
    let identity = |start_time, pidfs_inode| Identity {
        start_time,
        pidfs_inode,
    };
    let exit = |start_time, pidfs_inode| Reaped {
        pid: 1,
        status: WaitStatus::exited(0),
        start_time,
        pidfs_inode,
    };
    // The inodes decide where both are known, whatever the start times.
    assert!(identity(Some(1), Some(10)).owns(&exit(Some(2), Some(10))));
    assert!(!identity(Some(1), Some(10)).owns(&exit(Some(1), Some(11))));
    // Else the start times.
    assert!(identity(Some(1), Some(10)).owns(&exit(Some(1), None)));
    assert!(!identity(Some(1), None).owns(&exit(Some(2), Some(10))));
    assert!(identity(Some(1), None).owns(&exit(Some(1), None)));
    // Else the pid has to do.
    assert!(identity(None, None).owns(&exit(Some(2), Some(10))));
    assert!(identity(Some(1), None).owns(&exit(None, None)));
    assert!(identity(None, Some(10)).owns(&exit(Some(2), None)));
}

#[test]
fn the_root_init_is_the_running_root_containers() {
    let mut m = manager();
    assert!(m.root_init().is_err());
    add_container(&mut m, "sub", Phase::Running, Some(200));
    assert!(m.root_init().is_err());
    add_container(&mut m, "root", Phase::Created, Some(100));
    m.containers.get_mut("root").unwrap().root = true;
    assert!(m.root_init().is_err());
    m.containers.get_mut("root").unwrap().phase = Phase::Running;
    assert_eq!(m.root_init().ok(), Some(100));
}

#[test]
fn live_containers_are_created_running_or_paused() {
    let mut m = manager();
    for (cid, phase) in [
        ("reserved", Phase::Reserved),
        ("starting", Phase::Starting),
        ("created", Phase::Created),
        ("running", Phase::Running),
        ("paused", Phase::Paused),
        ("stopped", Phase::Stopped),
    ] {
        add_container(&mut m, cid, phase, Some(1));
    }
    for cid in ["created", "running", "paused"] {
        assert!(m.live(cid).is_ok(), "{cid}");
    }
    for cid in ["reserved", "starting", "stopped", "gone"] {
        assert!(m.live(cid).is_err(), "{cid}");
    }
}

#[test]
fn container_ids_follow_runc() {
    for id in ["a", "web-1", "x_y+z.0", "..a", &"a".repeat(1024)] {
        assert!(valid_container_id(id), "{id}");
    }
    for id in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(1025)] {
        assert!(!valid_container_id(id), "{id}");
    }
}
