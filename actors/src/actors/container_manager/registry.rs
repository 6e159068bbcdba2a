//! The registry: containers, their phases, the processes started in them
//! and the bookkeeping of their exits (early exits, helpers' exits,
//! uncollected statuses, exit waiters). Nothing here makes a system call
//! but through the methods of other files it calls.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use slog::info;
use tokio::sync::oneshot;

use super::error::ContainerError;
use super::resident::ResidentLink;
use super::start::HeldInit;
use super::ContainerManager;
use crate::api::container::RuntimeStatus;
use crate::container::spec::RuntimeHooks;
use crate::sys::cgroup::ContainerCgroup;
use crate::sys::cgroup_stats::CgroupFiles;
use crate::sys::process::{pidfd_inode, pidfd_signal, Reaped, WaitStatus};
use crate::sys::procfs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A subcontainer reserved by CreateSubcontainer, not started.
    Reserved,
    Starting,
    /// Set up, its init held at the start gate until `Start`.
    Created,
    /// Frozen by `Pause`.
    Paused,
    Running,
    Stopped,
}

pub(super) struct Container {
    /// The spec it was started with (exec'd processes start from its process).
    pub(super) spec: Option<Box<oci_spec::runtime::Spec>>,
    pub(super) root: bool,
    pub(super) phase: Phase,
    pub(super) init: Option<i32>,
    pub(super) cgroup: Option<ContainerCgroup>,
    pub(super) dir: PathBuf,
    pub(super) exit: Option<WaitStatus>,
    pub(super) waiters: Vec<oneshot::Sender<WaitStatus>>,
    /// The terminal given to CreateSubcontainer.
    pub(super) reserved_tty: Option<OwnedFd>,
    /// Hooks run by the runtime (poststart, poststop).
    pub(super) hooks: RuntimeHooks,
    /// The OCI state given to hooks.
    pub(super) hook_state: Option<oci_spec::runtime::State>,
    /// Its resident spawner, which clones its init and exec'd processes
    /// inside its cgroups; gone once the init has exited.
    pub(super) resident: Option<ResidentLink>,
    /// The held init of a `created` container.
    pub(super) held: Option<HeldInit>,
    /// Its memory cgroup's OOM kill count when last looked at.
    pub(super) oom_kills_seen: u64,
    /// When each kill counted since was noticed, not yet claimed by the
    /// exit of one of the supervisor's children: a kill of a process the
    /// supervisor does not reap (a child of the init) is claimed by no
    /// exit, and expires.
    pub(super) unclaimed_oom_kills: std::collections::VecDeque<Instant>,
    /// Its init was killed by the OOM killer.
    pub(super) init_oom_killed: bool,
    /// Its cgroup directories, kept open for stats events.
    pub(super) cgroup_files: CgroupFiles,
}

impl Phase {
    /// The OCI status this phase is.
    pub(super) fn runtime_status(self) -> RuntimeStatus {
        match self {
            Phase::Reserved | Phase::Starting => RuntimeStatus::Creating,
            Phase::Created => RuntimeStatus::Created,
            Phase::Running => RuntimeStatus::Running,
            Phase::Paused => RuntimeStatus::Paused,
            Phase::Stopped => RuntimeStatus::Stopped,
        }
    }

    /// Its name in messages, as runtime-spec's.
    pub(super) fn status(self) -> &'static str {
        match self.runtime_status() {
            RuntimeStatus::Creating => "creating",
            RuntimeStatus::Created => "created",
            RuntimeStatus::Running => "running",
            RuntimeStatus::Paused => "paused",
            RuntimeStatus::Stopped => "stopped",
        }
    }
}

impl Container {
    /// A container in `phase` with nothing made for it yet.
    pub(super) fn new(dir: PathBuf, phase: Phase) -> Container {
        Container {
            spec: None,
            root: false,
            phase,
            init: None,
            cgroup: None,
            dir,
            exit: None,
            waiters: Vec::new(),
            reserved_tty: None,
            hooks: RuntimeHooks::default(),
            hook_state: None,
            resident: None,
            held: None,
            oom_kills_seen: 0,
            unclaimed_oom_kills: std::collections::VecDeque::new(),
            init_oom_killed: false,
            cgroup_files: CgroupFiles::default(),
        }
    }
}

pub(super) struct ProcessRecord {
    /// Its exec was confirmed to its caller; an unconfirmed one was caught
    /// in a restart, and its caller told `unavailable`.
    pub(super) confirmed: bool,
    pub(super) container: String,
    /// Its pid in the container's pid namespace.
    pub(super) container_pid: i32,
    /// Its pidfd while it runs; closed once its exit is recorded (a
    /// status nobody collects must not hold a descriptor).
    pub(super) pidfd: Option<OwnedFd>,
    /// When it was registered, in registration order: of two records with
    /// the same pid in the container (one kept, never collected), the
    /// later is the process a caller means.
    pub(super) registered: u64,
    pub(super) exit: Option<WaitStatus>,
    pub(super) waiters: Vec<oneshot::Sender<WaitStatus>>,
    /// The container's resident spawner: not one of its processes for
    /// callers (Processes, Signal, WaitPID), but killed and waited for
    /// with them.
    pub(super) resident: bool,
    /// The OOM killer killed it.
    pub(super) oom_killed: bool,
    /// Its start time, read while its pidfd showed it unreaped: an exit
    /// is its own only if the reaped process started at the same tick (a
    /// pid alone can name an earlier process). `None` if it was reaped
    /// before it was registered.
    pub(super) start_time: Option<u64>,
    /// Its pidfd's inode where pidfds live in pidfs (Linux 6.9+): names it
    /// exactly, even once reaped.
    pub(super) pidfs_inode: Option<u64>,
    /// A caller's child (see `sys::spawn::fork_caller_spawner`): its exit
    /// is watched through its pidfd, and the status its caller's subreaper
    /// collects is not kept for a WaitPID nobody asked for.
    pub(super) caller_parented: bool,
}

impl ProcessRecord {
    /// Sends `signal` through its pidfd (ESRCH once it has exited).
    pub(super) fn signal(&self, signal: i32) -> std::io::Result<()> {
        match &self.pidfd {
            Some(pidfd) => pidfd_signal(pidfd.as_fd(), signal),
            None => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
        }
    }
}

/// What names a registered process beyond its pid.
#[derive(Debug, Clone, Copy)]
struct Identity {
    start_time: Option<u64>,
    pidfs_inode: Option<u64>,
}

impl Identity {
    /// Whether `reaped` (of the same pid) is this process's exit: the
    /// pidfd inodes decide where both are known, else the start times;
    /// where neither is known on both sides, the pid has to do.
    fn owns(&self, reaped: &Reaped) -> bool {
        match (self.pidfs_inode, reaped.pidfs_inode) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => match (self.start_time, reaped.start_time) {
                (Some(ours), Some(theirs)) => ours == theirs,
                _ => true,
            },
        }
    }
}

/// Exits of unknown pids kept for a registration that may follow.
const EARLY_EXITS_KEPT: usize = 256;

/// How many exited caller's processes keep their status for a WaitPID.
const UNCOLLECTED_KEPT: usize = 64;

pub use crate::container::id::valid_container_id;

impl ContainerManager {
    /// A live (created, running or paused) container, after the exits
    /// reaped so far are applied.
    pub(super) fn live(&mut self, cid: &str) -> Result<&Container, ContainerError> {
        self.apply_exits();
        let c = self
            .containers
            .get(cid)
            .ok_or_else(|| ContainerError::NotFound(cid.to_owned()))?;
        if !matches!(c.phase, Phase::Created | Phase::Running | Phase::Paused) {
            return Err(ContainerError::NotRunning(cid.to_owned()));
        }
        Ok(c)
    }

    /// The root container's init, if it runs.
    pub(super) fn root_init(&self) -> Result<i32, ContainerError> {
        self.containers
            .iter()
            .find(|(_, c)| c.root)
            .and_then(|(_, c)| (c.phase == Phase::Running).then_some(c.init).flatten())
            .ok_or(ContainerError::NoRoot)
    }

    pub(super) fn register(&mut self, pid: i32, pidfd: OwnedFd, cid: &str, resident: bool) {
        // Read while the pidfd shows the process unreaped, the start time
        // is its own, not that of a later process given the same pid.
        let start_time = procfs::stat(pid)
            .ok()
            .map(|s| s.start_time)
            .filter(|_| pidfd_signal(pidfd.as_fd(), 0).is_ok());
        let identity = Identity {
            start_time,
            pidfs_inode: pidfd_inode(pidfd.as_fd()),
        };
        self.register_identified(pid, Some(pidfd), identity, cid, resident);
    }

    /// Registers `pid`, named by `identity`, as a process of `cid`: the
    /// part of [`Self::register`] that makes no system call.
    fn register_identified(
        &mut self,
        pid: i32,
        pidfd: Option<OwnedFd>,
        identity: Identity,
        cid: &str,
        resident: bool,
    ) {
        self.registrations += 1;
        // Already reaped: its exit is its own entry (or, where neither the
        // inode nor the start time tell, the latest one kept for this pid).
        let early = self
            .early_exits
            .iter()
            .enumerate()
            .filter(|(_, r)| r.pid == pid && identity.owns(r))
            .max_by_key(|(_, r)| r.start_time)
            .map(|(i, _)| i)
            .and_then(|i| self.early_exits.remove(i));
        self.processes.insert(
            pid,
            ProcessRecord {
                confirmed: resident,
                container: cid.to_owned(),
                container_pid: pid,
                pidfd,
                registered: self.registrations,
                exit: None,
                waiters: Vec::new(),
                resident,
                oom_killed: false,
                start_time: identity.start_time,
                pidfs_inode: identity.pidfs_inode,
                caller_parented: false,
            },
        );
        if let Some(reaped) = early {
            self.record_exit(reaped);
        }
    }

    /// The exit of exec helper `pid` is expected: it is dropped when it
    /// comes (or now, if it came first).
    pub(super) fn expect_helper_exit(&mut self, pid: i32) {
        match self.early_exits.iter().position(|r| r.pid == pid) {
            Some(i) => {
                self.early_exits.remove(i);
            }
            None => {
                self.helper_exits.insert(pid);
            }
        }
    }

    /// A receiver that resolves when `pid` exits (at once if it has).
    pub(super) fn exit_waiter(&mut self, pid: i32) -> oneshot::Receiver<WaitStatus> {
        let (tx, rx) = oneshot::channel();
        match self.processes.get_mut(&pid) {
            Some(p) => match p.exit {
                Some(status) => {
                    let _ = tx.send(status);
                }
                None => p.waiters.push(tx),
            },
            None => drop(tx),
        }
        rx
    }

    pub(super) fn forget_process(&mut self, pid: i32) {
        self.processes.remove(&pid);
    }

    fn record_exit(&mut self, reaped: Reaped) {
        let Reaped { pid, status, .. } = reaped;
        if self.helper_exits.remove(&pid) {
            return;
        }
        // An exit belongs to the registered process only if it is that
        // process's: same start time, and not one it already has.
        let owner = self.processes.get(&pid).filter(|p| {
            let identity = Identity {
                start_time: p.start_time,
                pidfs_inode: p.pidfs_inode,
            };
            p.exit.is_none() && identity.owns(&reaped)
        });
        let owned = owner.is_some();
        let oom_killed = match owner {
            Some(p) if !p.resident => {
                let cid = p.container.clone();
                self.oom_killed(&cid, status)
            }
            _ => false,
        };
        let Some(p) = self.processes.get_mut(&pid).filter(|_| owned) else {
            if self.early_exits.len() >= EARLY_EXITS_KEPT {
                self.early_exits.pop_front();
            }
            self.early_exits.push_back(reaped);
            return;
        };
        p.exit = Some(status);
        p.oom_killed = oom_killed;
        p.pidfd = None;
        for waiter in p.waiters.drain(..) {
            let _ = waiter.send(status);
        }
        if p.resident {
            // Nobody collects a resident's status.
            self.processes.remove(&pid);
            return;
        }
        let cid = p.container.clone();
        let is_init = self
            .containers
            .get(&cid)
            .is_some_and(|c| c.init == Some(pid));
        if p.caller_parented && !is_init {
            // Its caller's subreaper collected its status; a WaitPID may
            // still ask for it (with the OOM flag), but nobody has to: the
            // oldest uncollected ones are let go.
            self.uncollected.push_back((pid, p.registered));
            while self.uncollected.len() > UNCOLLECTED_KEPT {
                if let Some((old, registered)) = self.uncollected.pop_front() {
                    if self
                        .processes
                        .get(&old)
                        .is_some_and(|p| p.registered == registered)
                    {
                        self.processes.remove(&old);
                    }
                }
            }
            return;
        }
        if let Some(c) = self.containers.get_mut(&cid) {
            if c.init == Some(pid) {
                c.exit = Some(status);
                c.init_oom_killed = oom_killed;
                if c.phase != Phase::Starting {
                    c.phase = Phase::Stopped;
                }
                for waiter in c.waiters.drain(..) {
                    let _ = waiter.send(status);
                }
                info!(self.logger, "container exited"; "cid" => &cid, "pid" => pid, "status" => status.0);
                // Nothing more is exec'd into a stopped container.
                self.retire_resident(&cid);
            }
        }
    }

    pub(super) fn apply_exits(&mut self) {
        while let Some(reaped) = self.journal.front() {
            self.record_exit(reaped);
            self.journal.pop();
        }
    }
}

#[cfg(test)]
mod tests;
