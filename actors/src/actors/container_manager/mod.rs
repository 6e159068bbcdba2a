//! ContainerManager: the sandbox's containers and their processes.
//!
//! A start is: validate the spec into a plan (`container::spec`), create the
//! container's cgroups and state directory, open the plan's descriptors,
//! hand the plan to the spawner, then read the child's status pipe: EOF
//! means the process exec'd; a report means a step failed, and the reply
//! carries its errno and path once the child is reaped and everything it
//! had is removed.
//!
//! State that must survive a restart of this actor lives in the actor
//! value (actix keeps it across restarts) and is committed only after the
//! work it records has succeeded; exit statuses come through the Reaper's
//! journal, which this actor applies and only then pops.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut, ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use nix::fcntl::OFlag;
use slog::{debug, info, warn, Logger};
use tokio::sync::oneshot;

mod error;
mod fds;
mod registry;
mod resident;
mod runtime_hooks;
mod spawn;
mod start;

pub use self::error::ContainerError;
use self::fds::{open_fds, take_preserved, Opened};
pub use self::registry::valid_container_id;
use self::registry::{Container, Phase, ProcessRecord};
pub use self::resident::PrewarmedRoot;
use self::resident::{stop_spare, Prewarmed};
use self::spawn::take_caller_spawner;
use super::reaper::{ChildrenExited, ExitJournal};
use crate::api::container::{
    ContainerRuntimeState, CreateSubcontainer, DestroySubcontainer, Event, EventReply,
    ExecCapabilities, ExecRlimit, ExecuteAsync, Executed, Pause, ProcessInfo, ProcessList,
    Processes, Resume, RuntimeState, Signal, SignalMode, Start, StartRoot, StartSubcontainer,
    Update, Wait, WaitPid, WaitStatusReply,
};
use crate::api::Empty;
use crate::container::plan::{HookPlan, NsKind};
use crate::container::resources::{self, CgroupVersion};
use crate::container::spec::{self, Blueprint, SpecError};
use crate::metrics::SandboxMetrics;
use crate::supervision::{
    guarded, handles, supervised_actor, ActorStatus, MailboxTicket, Reply, Subsystem,
};
use crate::sys::cgroup::{self, ContainerCgroup, Hierarchy};
use crate::sys::cgroup_writes;
use crate::sys::hooks::HookError;
use crate::sys::oom_watch::OomWatch;
use crate::sys::process::{Reaped, WaitStatus};
use crate::sys::procfs;
use crate::sys::spawn::spare::Spare;
use crate::sys::spawn::SpawnerConnection;
use crate::wire::RpcError;

/// Where the manager keeps things, and who it is.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// The sandbox id.
    pub sandbox_id: String,
    /// The sandbox's state directory (per-container directories go inside).
    pub state_dir: PathBuf,
    /// The cgroup path, relative to each hierarchy root, containers go under.
    pub cgroup_parent: PathBuf,
    /// This process's pid.
    pub supervisor_pid: i32,
    /// Where exec latency is recorded.
    pub instruments: SandboxMetrics,
    /// The containers' mount namespaces, which the Listener refuses peers
    /// from.
    pub contained: Arc<crate::containment::ContainedNamespaces>,
}

/// Owns the sandbox's containers.
pub struct ContainerManager {
    status: Arc<ActorStatus>,
    logger: Logger,
    config: ManagerConfig,
    spawner: Option<Rc<SpawnerConnection>>,
    journal: Arc<ExitJournal>,
    hierarchies: Vec<Hierarchy>,
    containers: BTreeMap<String, Container>,
    processes: HashMap<i32, ProcessRecord>,
    /// Exits of pids not registered yet (the reply from the spawner can
    /// trail the child's death); bounded, oldest dropped first.
    early_exits: std::collections::VecDeque<Reaped>,
    /// Pids of exec helpers (the spawner's intermediate children, which
    /// exit once the process is cloned) whose exit is still to come: it
    /// belongs to no process.
    helper_exits: std::collections::HashSet<i32>,
    /// Processes registered so far (see `ProcessRecord::registered`).
    registrations: u64,
    /// Exited caller's processes whose status nobody collected yet, oldest
    /// first, by pid and registration.
    uncollected: std::collections::VecDeque<(i32, u64)>,
    /// This actor's address, for messages to itself.
    myself: Option<actix::Addr<Self>>,
    /// The root container's resident and cgroups, made at boot.
    prewarmed: Option<Prewarmed>,
    /// Cgroups of a prewarm that went unused, removed at teardown.
    unused_cgroups: Vec<ContainerCgroup>,
    /// A resident in cgroups of its own, for the next subcontainer.
    spare: Option<Spare>,
    /// The number of the last spare made.
    spare_serial: u64,
}

/// How long a freeze or thaw may take.
/// How long after it is counted an OOM kill may be claimed by a SIGKILLed
/// child's exit: the victim dies as soon as it runs, and the Reaper tells
/// the manager at once, so this is a bound under heavy load, not a wait.
const OOM_CLAIM_WINDOW: Duration = Duration::from_secs(2);

/// When to look again at the kill count after a v1 notification.
const OOM_RECHECKS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_millis(500),
];

const FREEZE_PATIENCE: Duration = Duration::from_secs(2);

/// When runtime hooks run.
#[derive(Debug, Clone, Copy)]
enum HookPoint {
    Poststart,
    Poststop,
}

impl ContainerManager {
    /// The manager, over the host's cgroup `hierarchies`. `spawner` is the
    /// spawner socket; it must be called on the arbiter the actor runs on.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        config: ManagerConfig,
        hierarchies: Vec<Hierarchy>,
        spawner: Option<OwnedFd>,
        prewarmed: Option<PrewarmedRoot>,
        journal: Arc<ExitJournal>,
    ) -> Self {
        let spawner = spawner.and_then(|fd| match SpawnerConnection::new(fd) {
            Ok(conn) => Some(conn),
            Err(e) => {
                warn!(logger, "cannot watch the spawner socket"; "error" => %e);
                None
            }
        });
        let mut manager = ContainerManager {
            status,
            logger,
            config,
            spawner,
            journal,
            hierarchies,
            containers: BTreeMap::new(),
            processes: HashMap::new(),
            early_exits: std::collections::VecDeque::new(),
            helper_exits: std::collections::HashSet::new(),
            registrations: 0,
            uncollected: std::collections::VecDeque::new(),
            myself: None,
            prewarmed: None,
            unused_cgroups: Vec::new(),
            spare: None,
            spare_serial: 0,
        };
        if let Some(p) = prewarmed {
            manager.adopt_prewarmed(p);
        }
        manager
    }

    /// Freezes one running container, or every one.
    fn pause(&mut self, req: Pause, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        self.apply_exits();
        let ids = self.targets(req.cid, Phase::Running, ContainerError::NotRunning)?;
        self.change_frozen(&ids, true)?;
        Ok(Empty {})
    }

    /// Thaws one paused container, or every one.
    fn resume(&mut self, req: Resume, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        self.apply_exits();
        let ids = self.targets(req.cid, Phase::Paused, ContainerError::NotPaused)?;
        self.change_frozen(&ids, false)?;
        Ok(Empty {})
    }

    /// Freezes or thaws every container of `ids`; if one fails, those
    /// already changed are put back, so that a sandbox is never left half
    /// paused.
    fn change_frozen(&mut self, ids: &[String], frozen: bool) -> Result<(), ContainerError> {
        let (phase, before) = if frozen {
            (Phase::Paused, Phase::Running)
        } else {
            (Phase::Running, Phase::Paused)
        };
        for (done, cid) in ids.iter().enumerate() {
            if let Err(e) = self.set_frozen(cid, frozen) {
                for changed in &ids[..done] {
                    if let Err(undo) = self.set_frozen(changed, !frozen) {
                        warn!(self.logger, "cannot put a container's freezer back";
                            "cid" => changed, "error" => %undo);
                        continue;
                    }
                    if let Some(c) = self.containers.get_mut(changed) {
                        c.phase = before;
                    }
                }
                return Err(e);
            }
            if let Some(c) = self.containers.get_mut(cid) {
                c.phase = phase;
            }
            info!(self.logger, "container freezer changed"; "cid" => cid, "frozen" => frozen);
        }
        Ok(())
    }

    /// The containers a Pause or Resume is for: `cid`, which must be in
    /// `phase` (else `wrong`), or every container in `phase`, of which
    /// there must be one.
    fn targets(
        &self,
        cid: Option<String>,
        phase: Phase,
        wrong: fn(String) -> ContainerError,
    ) -> Result<Vec<String>, ContainerError> {
        match cid {
            Some(cid) => match self.containers.get(&cid) {
                None => Err(ContainerError::NotFound(cid)),
                Some(c) if c.phase != phase => Err(wrong(cid)),
                Some(_) => Ok(vec![cid]),
            },
            None => {
                let ids: Vec<String> = self
                    .containers
                    .iter()
                    .filter(|(_, c)| c.phase == phase)
                    .map(|(id, _)| id.clone())
                    .collect();
                if ids.is_empty() {
                    let wanted = if phase == Phase::Running {
                        "running"
                    } else {
                        "paused"
                    };
                    return Err(ContainerError::NoneInPhase(wanted));
                }
                Ok(ids)
            }
        }
    }

    /// Freezes or thaws a container's cgroup.
    fn set_frozen(&self, cid: &str, frozen: bool) -> Result<(), ContainerError> {
        let dirs = self
            .containers
            .get(cid)
            .and_then(|c| c.cgroup.as_ref())
            .map(|c| c.dirs.clone())
            .unwrap_or_default();
        cgroup::set_frozen(&self.hierarchies, &dirs, frozen, FREEZE_PATIENCE)
            .map_err(|e| ContainerError::host(if frozen { "freeze" } else { "thaw" }, cid, e))
    }

    /// A paused container that was just SIGKILLed is thawed: a frozen
    /// process dies only once it runs again.
    fn thaw_killed(&mut self, cid: &str) {
        if self
            .containers
            .get(cid)
            .is_some_and(|c| c.phase == Phase::Paused)
        {
            if let Err(e) = self.set_frozen(cid, false) {
                warn!(self.logger, "cannot thaw a killed container"; "cid" => cid, "error" => %e);
            }
            if let Some(c) = self.containers.get_mut(cid) {
                c.phase = Phase::Running;
            }
        }
    }

    /// A container's resource use now.
    fn event(&mut self, req: Event, _: &mut Context<Self>) -> Result<EventReply, RpcError> {
        self.live(&req.cid)?;
        let Some(c) = self.containers.get_mut(&req.cid) else {
            return Err(ContainerError::NotFound(req.cid).into());
        };
        let dirs = c.cgroup.as_ref().map_or(&[][..], |g| g.dirs.as_slice());
        let data = c.cgroup_files.stats(&self.hierarchies, dirs, c.init);
        Ok(EventReply {
            kind: "stats".into(),
            data,
            id: req.cid,
        })
    }

    /// Changes a live container's resource limits.
    fn update(&mut self, req: Update, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        let c = self.live(&req.cid)?;
        let (dirs, relative) = match &c.cgroup {
            Some(cgroup) => (cgroup.dirs.clone(), cgroup.relative.clone()),
            None => (Vec::new(), PathBuf::new()),
        };
        self.apply_resources(&req.resources, &dirs, &relative)?;
        info!(self.logger, "container resources updated"; "cid" => &req.cid);
        Ok(Empty {})
    }

    /// Where a container is in the OCI lifecycle.
    fn runtime_state(
        &mut self,
        req: ContainerRuntimeState,
        _: &mut Context<Self>,
    ) -> Result<RuntimeState, RpcError> {
        self.apply_exits();
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        Ok(RuntimeState {
            status: c.phase.runtime_status(),
            pid: c.init,
            exit_status: c
                .exit
                .filter(|s| *s != WaitStatus::UNKNOWN)
                .map(|status| status.0),
            oom_killed: c.init_oom_killed,
        })
    }

    fn destroy_subcontainer(
        &mut self,
        req: DestroySubcontainer,
        _: &mut Context<Self>,
    ) -> Reply<Self, Empty> {
        let Some(c) = self.containers.get(&req.cid) else {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        };
        if c.root {
            return Reply::Now(Err(ContainerError::DestroyRoot(req.cid).into()));
        }
        let exits = self.kill_container(&req.cid);
        let cid = req.cid;
        let all = async move {
            for exit in exits {
                let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
            }
        };
        Reply::Later(Box::pin(all.into_actor(self).map(move |(), act, _| {
            act.apply_exits();
            act.discard(&cid);
            act.processes.retain(|_, p| p.container != cid);
            info!(act.logger, "container destroyed"; "cid" => &cid);
            Ok(Empty {})
        })))
    }

    /// SIGKILLs every process of a container; returns their exit waiters.
    fn kill_container(&mut self, cid: &str) -> Vec<oneshot::Receiver<WaitStatus>> {
        let pids: Vec<i32> = self
            .processes
            .iter()
            .filter(|(_, p)| p.container == cid && p.exit.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        // Processes it forked that this manager did not start die with the
        // init's pid namespace; without one of their own, kill them by cgroup.
        for (host, _) in self.container_pids(cid) {
            if !pids.contains(&host) {
                // SAFETY: kill(2) with plain integers.
                unsafe { libc::kill(host, libc::SIGKILL) };
            }
        }
        let exits = pids
            .into_iter()
            .map(|pid| {
                if let Some(p) = self.processes.get(&pid) {
                    let _ = p.signal(libc::SIGKILL);
                }
                self.exit_waiter(pid)
            })
            .collect();
        self.thaw_killed(cid);
        exits
    }

    /// Writes resource limits into a container's cgroups (`dirs`, one per
    /// hierarchy, at `relative`), enabling v2 controllers on the way.
    fn apply_resources(
        &self,
        resources: &oci_spec::runtime::LinuxResources,
        dirs: &[PathBuf],
        relative: &Path,
    ) -> Result<(), ContainerError> {
        let writes = resources::control_writes(resources, |controller| {
            if cgroup::is_v1_controller(&self.hierarchies, controller) {
                CgroupVersion::V1
            } else {
                CgroupVersion::V2
            }
        })?;
        for (field, reason) in resources::ignored_settings(resources) {
            warn!(self.logger, "resource setting ignored"; "cgroup" => %relative.display(), "field" => field, "reason" => reason);
        }
        cgroup_writes::apply_writes(&self.hierarchies, dirs, relative, &writes).map_err(|source| {
            ContainerError::Limits {
                cgroup: relative.display().to_string(),
                source,
            }
        })
    }

    /// Removes everything a container had: kills what runs, removes its
    /// cgroups and state directory, forgets it.
    fn discard(&mut self, cid: &str) {
        self.run_detached_hooks(cid, HookPoint::Poststop, None);
        self.retire_resident(cid);
        self.config.contained.remove_container(cid);
        let Some(c) = self.containers.remove(cid) else {
            return;
        };
        if let Some(pid) = c.init {
            if let Some(p) = self.processes.get(&pid) {
                if p.exit.is_none() {
                    let _ = p.signal(libc::SIGKILL);
                }
            }
        }
        if let Some(cgroup) = &c.cgroup {
            if let Err(e) = cgroup.remove(Duration::from_millis(200)) {
                warn!(self.logger, "cannot remove cgroup"; "cid" => cid, "error" => %e);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&c.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(self.logger, "cannot remove state directory"; "cid" => cid, "error" => %e);
            }
        }
    }

    /// Queues poststart or poststop hooks; their failures are logged, as the
    /// runtime spec asks, and change nothing.
    fn run_detached_hooks(&self, cid: &str, point: HookPoint, pid: Option<i32>) {
        let Some(c) = self.containers.get(cid) else {
            return;
        };
        let (hooks, status) = match point {
            HookPoint::Poststart => (
                &c.hooks.poststart,
                oci_spec::runtime::ContainerState::Running,
            ),
            HookPoint::Poststop => (
                &c.hooks.poststop,
                oci_spec::runtime::ContainerState::Stopped,
            ),
        };
        if hooks.is_empty() {
            return;
        }
        let Some(myself) = &self.myself else { return };
        myself.do_send(DetachedHooks {
            cid: cid.to_owned(),
            point,
            hooks: hooks.clone(),
            state: hook_state_json(c.hook_state.clone(), status, pid),
            ticket: self.status.ticket(),
        });
    }

    /// Whether a process of `cid` that died by SIGKILL was the OOM
    /// killer's: its memory cgroup counted a kill within the last
    /// [`OOM_CLAIM_WINDOW`] that no other exit has claimed. (The kernel
    /// counts the kill before it sends the signal; the kill of a process
    /// the supervisor does not reap expires unclaimed.)
    fn oom_killed(&mut self, cid: &str, status: WaitStatus) -> bool {
        if status.signal() != Some(libc::SIGKILL) {
            return false;
        }
        self.note_oom_kills(cid);
        let Some(c) = self.containers.get_mut(cid) else {
            return false;
        };
        c.unclaimed_oom_kills.pop_back().is_some()
    }

    /// Reads `cid`'s OOM kill count; each kill new since the last reading
    /// is noted as just happened. Returns whether there was one.
    fn note_oom_kills(&mut self, cid: &str) -> bool {
        let Some(c) = self.containers.get_mut(cid) else {
            return false;
        };
        let dirs = c.cgroup.as_ref().map_or(&[][..], |g| g.dirs.as_slice());
        let kills = c.cgroup_files.oom_kills(&self.hierarchies, dirs);
        let now = Instant::now();
        while c
            .unclaimed_oom_kills
            .front()
            .is_some_and(|at| now.duration_since(*at) > OOM_CLAIM_WINDOW)
        {
            c.unclaimed_oom_kills.pop_front();
        }
        let new = kills.saturating_sub(c.oom_kills_seen);
        for _ in 0..new.min(64) {
            c.unclaimed_oom_kills.push_back(now);
        }
        c.oom_kills_seen = kills;
        if new > 0 {
            // When the claim window opens (tests wait for it).
            debug!(self.logger, "oom kills noted"; "cid" => cid, "new" => new);
        }
        new > 0
    }

    /// Starts waiting for the kernel's OOM notifications of `cid`'s memory
    /// cgroup, so that each kill is noted when it happens. Without one (no
    /// memory controller, or the watch cannot be made) kills are noted at
    /// exits only.
    fn watch_oom(&mut self, cid: &str, dirs: &[PathBuf]) {
        let Some(myself) = self.myself.clone() else {
            return;
        };
        let Some((dir, v2)) = cgroup::controller_dir(&self.hierarchies, dirs, "memory") else {
            return;
        };
        let watch = match OomWatch::new(dir, v2).and_then(crate::sys::socket::register_async) {
            Ok(watch) => watch,
            Err(e) => {
                debug!(self.logger, "cannot watch for OOM kills"; "cid" => cid, "error" => %e);
                return;
            }
        };
        let (cid, status) = (cid.to_owned(), self.status.clone());
        actix_rt::spawn(async move {
            loop {
                let Ok(mut ready) = watch.readable().await else {
                    return;
                };
                watch.get_ref().drain();
                ready.clear_ready();
                let notified = OomNotified {
                    cid: cid.clone(),
                    lags: watch.get_ref().notifies_before_the_kill(),
                    ticket: status.ticket(),
                };
                // The container gone (its cgroup's removal wakes the
                // watch too), or the manager: the watch ends.
                if !matches!(myself.send(notified).await, Ok(true)) {
                    return;
                }
            }
        });
    }

    fn wait(&mut self, req: Wait, _: &mut Context<Self>) -> Reply<Self, WaitStatusReply> {
        let Some(c) = self.containers.get_mut(&req.cid) else {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        };
        let init = c.init.unwrap_or(0);
        if let Some(status) = c.exit {
            return Reply::Now(status_reply(status, c.init_oom_killed, init).map_err(Into::into));
        }
        let (tx, rx) = oneshot::channel();
        c.waiters.push(tx);
        let cid = req.cid;
        Reply::Later(Box::pin(rx.into_actor(self).map(move |status, act, _| {
            let oom_killed = act.containers.get(&cid).is_some_and(|c| c.init_oom_killed);
            let status = status.map_err(|_| ContainerError::NotFound(cid))?;
            status_reply(status, oom_killed, init).map_err(Into::into)
        })))
    }

    /// The container's processes as (host pid, pid in the container).
    fn container_pids(&self, cid: &str) -> Vec<(i32, i32)> {
        let Some(c) = self.containers.get(cid) else {
            return Vec::new();
        };
        let host_pids = match &c.cgroup {
            Some(cg) if !cg.dirs.is_empty() => cg.pids().unwrap_or_default(),
            // Without cgroups, the processes this manager started.
            _ => self
                .processes
                .iter()
                .filter(|(_, p)| p.container == cid && p.exit.is_none())
                .map(|(pid, _)| *pid)
                .collect(),
        };
        // A process in its cgroups but outside its pid namespace is not
        // one of its processes: the exit relay `create --pid-file` leaves.
        let pid_ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let own_ns = c.init.and_then(pid_ns);
        let supervisor_ns = pid_ns(self.config.supervisor_pid);
        host_pids
            .into_iter()
            .filter(|host| !self.processes.get(host).is_some_and(|p| p.resident))
            .filter(|host| own_ns == supervisor_ns || pid_ns(*host) == own_ns)
            .filter_map(|host| procfs::innermost_pid(host).ok().map(|inner| (host, inner)))
            .collect()
    }

    /// The host pid of `pid` (container pid namespace; 0 = the init).
    fn host_pid(&self, cid: &str, pid: i32) -> Result<i32, ContainerError> {
        let c = self
            .containers
            .get(cid)
            .ok_or_else(|| ContainerError::NotFound(cid.to_owned()))?;
        if pid == 0 {
            return c
                .init
                .ok_or_else(|| ContainerError::NotRunning(cid.to_owned()));
        }
        self.container_pids(cid)
            .into_iter()
            .find(|(_, inner)| *inner == pid)
            .map(|(host, _)| host)
            .ok_or(ContainerError::NoSuchProcess {
                cid: cid.to_owned(),
                pid,
            })
    }

    fn signal(&mut self, req: Signal, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        self.send_signal(&req).map_err(RpcError::from)?;
        if req.signo == libc::SIGKILL {
            self.thaw_killed(&req.cid);
        }
        Ok(Empty {})
    }

    fn send_signal(&self, req: &Signal) -> Result<(), ContainerError> {
        if !(1..=64).contains(&req.signo) {
            return Err(ContainerError::BadSignal(req.signo));
        }
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        // A created container's init can be signalled (as runc allows): it
        // dies at its start gate.
        if !matches!(c.phase, Phase::Running | Phase::Created | Phase::Paused) {
            return Err(ContainerError::NotRunning(req.cid.clone()));
        }
        let kill = |target: i32, what: String| {
            // SAFETY: kill(2) with plain integers.
            if unsafe { libc::kill(target, req.signo) } < 0 {
                return Err(ContainerError::Kill {
                    signo: req.signo,
                    target: what,
                    source: nix::Error::last(),
                });
            }
            Ok(())
        };
        match req.mode {
            SignalMode::Process => {
                let host = self.host_pid(&req.cid, req.pid)?;
                // The init (and anything this manager started) is signalled
                // through its pidfd: immune to pid reuse.
                match self.processes.get(&host) {
                    // One of ours that exited: its pid may be reused already.
                    Some(p) if p.exit.is_some() => Err(ContainerError::NoSuchProcess {
                        cid: req.cid.clone(),
                        pid: req.pid,
                    }),
                    Some(p) => p.signal(req.signo).map_err(|e| ContainerError::Kill {
                        signo: req.signo,
                        target: format!("pid {}", req.pid),
                        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
                    }),
                    None => kill(host, format!("pid {}", req.pid)),
                }
            }
            SignalMode::AllProcesses => {
                if req.pid != 0 {
                    return Err(ContainerError::PidWithAll(req.pid));
                }
                for (host, inner) in self.container_pids(&req.cid) {
                    // A process may exit meanwhile: that is not an error.
                    match kill(host, format!("pid {inner}")) {
                        Err(ContainerError::Kill {
                            source: nix::Error::ESRCH,
                            ..
                        })
                        | Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            SignalMode::ForegroundProcessGroup | SignalMode::ProcessGroup => {
                let host = self.host_pid(&req.cid, req.pid)?;
                let stat = procfs::stat(host).map_err(|_| ContainerError::NoSuchProcess {
                    cid: req.cid.clone(),
                    pid: req.pid,
                })?;
                let group = if req.mode == SignalMode::ProcessGroup {
                    stat.pgrp
                } else if stat.tty_nr == 0 || stat.tpgid <= 0 {
                    return Err(ContainerError::NoTerminal(req.pid));
                } else {
                    stat.tpgid
                };
                kill(-group, format!("process group {group}"))
            }
        }
    }

    fn execute_async(
        &mut self,
        mut req: ExecuteAsync,
        _: &mut Context<Self>,
    ) -> Reply<Self, Executed> {
        let started = Instant::now();
        let mut fds = req.fds.take();
        let console_socket = req.console_socket.take();
        let cid = req.cid.clone();
        let caller = match take_caller_spawner(
            &mut fds,
            req.caller_spawner,
            <ExecuteAsync as crate::api::Method>::NAME,
        ) {
            Ok(caller) => caller,
            Err(e) => return Reply::Now(Err(e.into())),
        };
        match self.prepare_exec(req, fds) {
            Err(e) => Reply::Now(Err(e.into())),
            Ok((blueprint, opened)) => {
                let spawned = self.spawn_process(cid.clone(), blueprint, opened, false, caller);
                Reply::Later(Box::pin(spawned.map(move |outcome, act, _| {
                    let outcome = outcome?;
                    act.config.instruments.observe_exec(started.elapsed());
                    debug!(act.logger, "process started"; "cid" => &cid, "pid" => outcome.container_pid, "host_pid" => outcome.host_pid);
                    Ok(Executed {
                        pid: outcome.container_pid,
                        host_pid: outcome.host_pid,
                        fds: act.hand_over_master(outcome.tty_master, console_socket),
                    })
                }).map(|r: Result<Executed, ContainerError>, _, _| r.map_err(RpcError::from))))
            }
        }
    }

    /// The exec'd process's spec: the container's process, overridden.
    fn prepare_exec(
        &mut self,
        req: ExecuteAsync,
        mut fds: Vec<OwnedFd>,
    ) -> Result<(Blueprint, Opened), ContainerError> {
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        if c.phase != Phase::Running {
            return Err(ContainerError::NotRunning(req.cid.clone()));
        }
        let init = c
            .init
            .ok_or_else(|| ContainerError::NotRunning(req.cid.clone()))?;
        let spec = c
            .spec
            .as_deref()
            .ok_or_else(|| ContainerError::NotRunning(req.cid.clone()))?;
        let preserved = take_preserved(
            &mut fds,
            req.preserve_fds,
            <ExecuteAsync as crate::api::Method>::NAME,
        )?;
        let expected = match (req.terminal, fds.len()) {
            (true, 0 | 1) => fds.len(),
            (true, _) => 1,
            (false, _) => 3,
        };
        if fds.len() != expected {
            return Err(ContainerError::FdCount {
                method: <ExecuteAsync as crate::api::Method>::NAME,
                expected: expected + preserved.len(),
                what: if req.terminal {
                    "a terminal, or none to allocate one, then the preserved ones"
                } else {
                    "stdin, stdout, stderr, then the preserved ones"
                },
                got: fds.len() + preserved.len(),
            });
        }
        let caller_tty = if req.terminal { fds.pop() } else { None };
        let process = exec_process(spec, &req)?;
        let init_pid = init.to_string();
        let mut namespaces = Vec::new();
        let mut pid_namespace = None;
        for kind in [
            NsKind::Cgroup,
            NsKind::Ipc,
            NsKind::Uts,
            NsKind::Net,
            NsKind::Mount,
            NsKind::Pid,
        ] {
            let theirs = procfs::namespace_inode(&init_pid, kind.proc_name());
            let ours = procfs::namespace_inode("self", kind.proc_name());
            match (theirs, ours) {
                (Ok(t), Ok(o)) if t == o => {}
                (Ok(_), _) => {
                    let path = procfs::namespace_path(&init_pid, kind.proc_name());
                    if kind == NsKind::Pid {
                        pid_namespace = Some(path);
                    } else {
                        namespaces.push((kind, path));
                    }
                }
                (Err(_), _) => return Err(ContainerError::NotRunning(req.cid.clone())),
            }
        }
        let ctx = spec::ExecContext {
            namespaces,
            pid_namespace,
            cgroup_procs: c
                .cgroup
                .as_ref()
                .map(|cg| cg.v1_procs_files())
                .unwrap_or_default(),
            cgroup_v2_dir: c.cgroup.as_ref().and_then(|cg| cg.unified.clone()),
            supervisor_pid: self.config.supervisor_pid,
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
            caller_terminal: caller_tty.is_some(),
            preserve_fds: req.preserve_fds,
        };
        let blueprint = spec::build_exec(&process, &ctx)?;
        let opened = open_fds(&blueprint, &mut fds, caller_tty, preserved)?;
        Ok((blueprint, opened))
    }

    fn wait_pid(&mut self, req: WaitPid, _: &mut Context<Self>) -> Reply<Self, WaitStatusReply> {
        if !self.containers.contains_key(&req.cid) {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        }
        let found = self
            .processes
            .iter()
            .filter(|(_, p)| p.container == req.cid && p.container_pid == req.pid && !p.resident)
            .max_by_key(|(_, p)| p.registered)
            .map(|(host, _)| *host);
        let Some(host) = found else {
            return Reply::Now(Err(ContainerError::NoSuchProcess {
                cid: req.cid,
                pid: req.pid,
            }
            .into()));
        };
        let is_init = self
            .containers
            .get(&req.cid)
            .is_some_and(|c| c.init == Some(host));
        let Some(p) = self.processes.get_mut(&host) else {
            return Reply::Now(Err(ContainerError::NoSuchProcess {
                cid: req.cid,
                pid: req.pid,
            }
            .into()));
        };
        if let Some(status) = p.exit {
            let oom_killed = p.oom_killed;
            // Collected: an exec'd process's status is released (the init's
            // stays with its container).
            if !is_init {
                self.processes.remove(&host);
            }
            return Reply::Now(status_reply(status, oom_killed, host).map_err(Into::into));
        }
        let (tx, rx) = oneshot::channel();
        p.waiters.push(tx);
        let (cid, pid) = (req.cid, req.pid);
        Reply::Later(Box::pin(rx.into_actor(self).map(move |status, act, _| {
            let status = status.map_err(|_| {
                RpcError::from(ContainerError::NoSuchProcess {
                    cid: cid.clone(),
                    pid,
                })
            })?;
            let oom_killed = act.processes.get(&host).is_some_and(|p| p.oom_killed);
            if !is_init {
                act.processes.remove(&host);
            }
            status_reply(status, oom_killed, host).map_err(Into::into)
        })))
    }

    fn processes(
        &mut self,
        req: Processes,
        _: &mut Context<Self>,
    ) -> Result<ProcessList, RpcError> {
        if !self.containers.contains_key(&req.cid) {
            return Err(ContainerError::NotFound(req.cid).into());
        }
        let (uptime, ticks) =
            procfs::uptime().map_err(|e| ContainerError::host("read", "/proc/uptime", e))?;
        let boot_ms = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            - uptime)
            * 1000.0;
        let pids = self.container_pids(&req.cid);
        let inner_of: HashMap<i32, i32> = pids.iter().copied().collect();
        let mut processes: Vec<ProcessInfo> = pids
            .iter()
            .filter_map(|&(host, inner)| {
                // A process may exit while it is being listed.
                let stat = procfs::stat(host).ok()?;
                let started_s = stat.start_time as f64 / ticks as f64;
                let cpu_s = (stat.utime + stat.stime) as f64 / ticks as f64;
                let alive_s = (uptime - started_s).max(0.001);
                Some(ProcessInfo {
                    uid: procfs::uid(host).unwrap_or(0),
                    pid: inner,
                    host_pid: host,
                    ppid: inner_of.get(&stat.ppid).copied().unwrap_or(0),
                    pgid: stat.pgrp,
                    threads: stat.num_threads,
                    cpu_percent: (cpu_s / alive_s * 1000.0).round() / 10.0,
                    tty: tty_name(stat.tty_nr),
                    start_time_ms: (boot_ms + started_s * 1000.0).max(0.0) as u64,
                    cpu_time_ms: (cpu_s * 1000.0) as u64,
                    command: match procfs::cmdline(host) {
                        Ok(c) if !c.is_empty() => c,
                        _ => format!("[{}]", stat.comm),
                    },
                })
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        Ok(ProcessList { processes })
    }

    /// Kills every container and waits (at most `patience`) for them to be
    /// reaped, then removes what they had.
    pub fn teardown(&mut self, ctx: &mut Context<Self>, done: oneshot::Sender<()>) {
        let mut exits = Vec::new();
        let spare = self.spare.take();
        if let Some(p) = self.prewarmed.take() {
            self.kill_resident_process(p.link.pid);
            exits.push(self.exit_waiter(p.link.pid));
            self.unused_cgroups.push(p.cgroup);
        }
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        for cid in &ids {
            let pids: Vec<i32> = self
                .processes
                .iter()
                .filter(|(_, p)| &p.container == cid && p.exit.is_none())
                .map(|(pid, _)| *pid)
                .collect();
            for pid in pids {
                if let Some(p) = self.processes.get(&pid) {
                    let _ = p.signal(libc::SIGKILL);
                }
                exits.push(self.exit_waiter(pid));
            }
            self.thaw_killed(cid);
        }
        let all = async move {
            for exit in exits {
                let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
            }
            match spare {
                Some(spare) => Some(stop_spare(spare).await),
                None => None,
            }
        };
        ctx.spawn(all.into_actor(self).then(move |spare_cgroup, act, _| {
            act.apply_exits();
            act.unused_cgroups.extend(spare_cgroup);
            // Poststop hooks run before the supervisor exits, not detached.
            let mut poststop = Vec::new();
            for cid in &ids {
                if let Some(c) = act.containers.get_mut(cid) {
                    let hooks = std::mem::take(&mut c.hooks.poststop);
                    if !hooks.is_empty() {
                        let state = hook_state_json(
                            c.hook_state.clone(),
                            oci_spec::runtime::ContainerState::Stopped,
                            None,
                        );
                        poststop.push((cid.clone(), hooks, state));
                    }
                }
            }
            for cid in &ids {
                act.discard(cid);
            }
            for cgroup in std::mem::take(&mut act.unused_cgroups) {
                if let Err(e) = cgroup.remove(Duration::from_millis(200)) {
                    warn!(act.logger, "cannot remove an unused cgroup"; "error" => %e);
                }
            }
            let _ = std::fs::remove_dir(&act.config.state_dir);
            // The sandbox's own cgroup, parent of its containers'.
            for h in &act.hierarchies {
                let _ = std::fs::remove_dir(h.mount.join(&act.config.cgroup_parent));
            }
            act.run_all_hooks(poststop).map(move |(), _, _| {
                let _ = done.send(());
            })
        }));
    }
}

/// The answer to a wait for host pid `pid`, which ended with `status`.
fn status_reply(
    status: WaitStatus,
    oom_killed: bool,
    pid: i32,
) -> Result<WaitStatusReply, ContainerError> {
    if status == WaitStatus::UNKNOWN {
        return Err(ContainerError::StatusUnknown(pid));
    }
    Ok(WaitStatusReply {
        status: status.0,
        oom_killed,
    })
}

/// The JSON state a hook gets.
fn hook_state_json(
    state: Option<oci_spec::runtime::State>,
    status: oci_spec::runtime::ContainerState,
    pid: Option<i32>,
) -> Vec<u8> {
    state
        .map(|mut s| {
            s.set_status(status);
            s.set_pid(pid);
            serde_json::to_vec(&s).unwrap_or_default()
        })
        .unwrap_or_default()
}

impl ContainerManager {
    /// Runs each container's hooks in turn, logging failures.
    fn run_all_hooks(
        &mut self,
        mut jobs: Vec<(String, Vec<HookPlan>, Vec<u8>)>,
    ) -> ResponseActFuture<Self, ()> {
        let Some((cid, hooks, state)) = jobs.pop() else {
            return Box::pin(fut::ready(()));
        };
        Box::pin(self.run_hooks(hooks, state).then(move |ran, act, _| {
            if let Err(e) = ran {
                warn!(act.logger, "poststop hook failed"; "cid" => &cid, "error" => %e);
            }
            act.run_all_hooks(jobs)
        }))
    }

    /// Runs runtime hooks one after the other, each spawned through the
    /// spawner (so that the Reaper is the only one waiting for children),
    /// with `state` on its stdin.
    fn run_hooks(
        &mut self,
        mut hooks: Vec<HookPlan>,
        state: Vec<u8>,
    ) -> ResponseActFuture<Self, Result<(), HookError>> {
        if hooks.is_empty() {
            return Box::pin(fut::ready(Ok(())));
        }
        let hook = hooks.remove(0);
        let blueprint = spec::build_hook(&hook, self.config.supervisor_pid);
        let mut opened = match open_fds(&blueprint, &mut Vec::new(), None, Vec::new()) {
            Ok(o) => o,
            Err(e) => {
                return Box::pin(fut::ready(Err(HookError::Spawn {
                    path: hook.path,
                    reason: e.to_string(),
                    errno: 0,
                })))
            }
        };
        let stdin = opened.hook_stdin.take();
        let path = hook.path.clone();
        let spawned = self.spawn_process(String::new(), blueprint, opened, false, None);
        Box::pin(spawned.then(move |outcome, act, _| -> ResponseActFuture<Self, Result<(), HookError>> {
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    return Box::pin(fut::ready(Err(HookError::Spawn {
                        path,
                        reason: e.to_string(),
                        errno: 0,
                    })))
                }
            };
            if let Some(stdin) = stdin {
                // The state is far below a pipe's capacity: this never blocks.
                let _ = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                let _ = nix::unistd::write(&stdin, &state);
            }
            let pid = outcome.host_pid;
            let exit = act.exit_waiter(pid);
            let timeout = Duration::from_secs(hook.timeout_secs.unwrap_or(3600));
            Box::pin(async move { tokio::time::timeout(timeout, exit).await }.into_actor(act).then(
                move |waited, act, _| -> ResponseActFuture<Self, Result<(), HookError>> {
                    let result = match waited {
                        Err(_elapsed) => {
                            if let Some(p) = act.processes.get(&pid) {
                                let _ = p.signal(libc::SIGKILL);
                            }
                            Err(HookError::TimedOut {
                                path: hook.path.clone(),
                                secs: hook.timeout_secs.unwrap_or(0),
                            })
                        }
                        Ok(Ok(status)) if status.exit_code() == Some(0) => Ok(()),
                        Ok(Ok(status)) => Err(HookError::Failed {
                            path: hook.path.clone(),
                            status: match (status.exit_code(), status.signal()) {
                                (Some(code), _) => format!("exit status: {code}"),
                                (None, Some(sig)) => format!("killed by signal {sig}"),
                                _ => format!("wait status {}", status.0),
                            },
                        }),
                        Ok(Err(_)) => Err(HookError::Failed {
                            path: hook.path.clone(),
                            status: "lost".into(),
                        }),
                    };
                    act.forget_process(pid);
                    match result {
                        Ok(()) => act.run_hooks(hooks, state),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    }
                },
            ))
        }))
    }
}

impl Subsystem for ContainerManager {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }

    fn recover(&mut self, _: &mut Context<Self>) {
        // Starts in flight died with the old context and their callers were
        // answered `unavailable`: roll them back.
        let starting: Vec<String> = self
            .containers
            .iter()
            .filter(|(_, c)| c.phase == Phase::Starting)
            .map(|(id, _)| id.clone())
            .collect();
        for cid in starting {
            warn!(self.logger, "rolling back a start interrupted by a restart"; "cid" => &cid);
            self.discard(&cid);
            self.processes.retain(|_, p| p.container != cid);
        }
        // So do execs that were not confirmed: their callers will retry.
        let unconfirmed: Vec<i32> = self
            .processes
            .iter()
            .filter(|(_, p)| !p.confirmed && p.exit.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        for pid in unconfirmed {
            if let Some(p) = self.processes.remove(&pid) {
                warn!(self.logger, "killing a process whose exec was interrupted by a restart"; "host_pid" => pid);
                let _ = p.signal(libc::SIGKILL);
            }
        }
        // Waiters' futures died too; their callers were answered.
        for c in self.containers.values_mut() {
            c.waiters.clear();
        }
        for p in self.processes.values_mut() {
            p.waiters.clear();
        }
    }

    fn on_start(&mut self, ctx: &mut Context<Self>) {
        self.myself = Some(ctx.address());
        self.apply_exits();
    }
}

impl Handler<ChildrenExited> for ContainerManager {
    type Result = ();

    fn handle(&mut self, msg: ChildrenExited, ctx: &mut Context<Self>) {
        let _ = guarded(self, ctx, "ChildrenExited", msg.ticket, |act, _| {
            act.apply_exits();
            Ok(())
        });
    }
}

/// Runs hooks whose failure only gets logged (poststart, poststop).
struct DetachedHooks {
    cid: String,
    point: HookPoint,
    hooks: Vec<HookPlan>,
    state: Vec<u8>,
    ticket: MailboxTicket,
}

impl actix::Message for DetachedHooks {
    type Result = ();
}

impl Handler<DetachedHooks> for ContainerManager {
    type Result = ();

    fn handle(&mut self, msg: DetachedHooks, ctx: &mut Context<Self>) {
        let DetachedHooks {
            cid,
            point,
            hooks,
            state,
            ticket,
        } = msg;
        let _ = guarded(self, ctx, "DetachedHooks", ticket, move |act, ctx| {
            ctx.spawn(act.run_hooks(hooks, state).map(move |ran, act, _| {
                if let Err(e) = ran {
                    warn!(act.logger, "hook failed"; "cid" => &cid, "point" => ?point, "error" => %e);
                }
            }));
            Ok(())
        });
    }
}

/// The kernel notified an OOM event in a container's memory cgroup.
struct OomNotified {
    cid: String,
    /// The notification comes before the kill is counted (v1).
    lags: bool,
    ticket: MailboxTicket,
}

impl actix::Message for OomNotified {
    /// Whether the container is still there to watch.
    type Result = bool;
}

impl Handler<OomNotified> for ContainerManager {
    type Result = bool;

    fn handle(&mut self, msg: OomNotified, ctx: &mut Context<Self>) -> bool {
        let OomNotified { cid, lags, ticket } = msg;
        guarded(self, ctx, "OomNotified", ticket, move |act, ctx| {
            if !act.containers.contains_key(&cid) {
                return Ok(false);
            }
            if !act.note_oom_kills(&cid) && lags {
                // v1 notifies as the OOM starts: the kill is counted a
                // moment later (or never, if the OOM ends otherwise).
                for delay in OOM_RECHECKS {
                    let cid = cid.clone();
                    ctx.run_later(delay, move |act, _| {
                        act.note_oom_kills(&cid);
                    });
                }
            }
            Ok(true)
        })
        // A failed handler ends the watch; kills are still noted at exits.
        .unwrap_or(false)
    }
}

/// Tears every container down (supervisor shutdown).
pub struct Teardown {
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
    /// Answered when done.
    pub done: oneshot::Sender<()>,
}

impl actix::Message for Teardown {
    type Result = ();
}

impl Handler<Teardown> for ContainerManager {
    type Result = ();

    fn handle(&mut self, msg: Teardown, ctx: &mut Context<Self>) {
        let done = msg.done;
        let _ = guarded(self, ctx, "Teardown", msg.ticket, move |act, ctx| {
            act.teardown(ctx, done);
            Ok(())
        });
    }
}

/// Asks for every container's status and cgroup directories (one per
/// hierarchy; none before its cgroup is made): what Usage and Metrics read
/// figures from, on their own threads.
pub struct ContainerCgroups {
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
}

/// One container in the answer to [`ContainerCgroups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerListing {
    /// The container id.
    pub id: String,
    /// Its lifecycle status (creating, created, running, paused, stopped).
    pub state: &'static str,
    /// Its cgroup directories, in the order of the hierarchies.
    pub dirs: Vec<PathBuf>,
}

impl actix::Message for ContainerCgroups {
    type Result = Result<Vec<ContainerListing>, RpcError>;
}

impl Handler<ContainerCgroups> for ContainerManager {
    type Result = Result<Vec<ContainerListing>, RpcError>;

    fn handle(&mut self, msg: ContainerCgroups, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, "ContainerCgroups", msg.ticket, |act, _| {
            act.apply_exits();
            Ok(act
                .containers
                .iter()
                .map(|(id, c)| ContainerListing {
                    id: id.clone(),
                    state: c.phase.status(),
                    dirs: c
                        .cgroup
                        .as_ref()
                        .map(|g| g.dirs.clone())
                        .unwrap_or_default(),
                })
                .collect())
        })
    }
}

supervised_actor!(ContainerManager);
handles!(ContainerManager {
    StartRoot => start_root,
    Wait => wait,
    Signal => signal,
    ExecuteAsync => execute_async,
    WaitPid => wait_pid,
    Processes => processes,
    CreateSubcontainer => create_subcontainer,
    StartSubcontainer => start_subcontainer,
    DestroySubcontainer => destroy_subcontainer,
    Pause => pause,
    Resume => resume,
    Update => update,
    Event => event,
    Start => start,
    ContainerRuntimeState => runtime_state,
});

/// The container's process with an exec's overrides, as runc exec builds it.
fn exec_process(
    spec: &oci_spec::runtime::Spec,
    req: &ExecuteAsync,
) -> Result<oci_spec::runtime::Process, ContainerError> {
    let mut process = spec.process().clone().unwrap_or_default();
    if req.argv.is_empty() || req.argv[0].is_empty() {
        return Err(SpecError::Invalid {
            field: "argv".into(),
            detail: "must name a program".into(),
        }
        .into());
    }
    process.set_args(Some(req.argv.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &req.envv {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &req.working_directory {
        process.set_cwd(PathBuf::from(cwd));
    }
    let mut user = process.user().clone();
    if let Some(uid) = req.kuid {
        user.set_uid(uid);
    }
    if let Some(gid) = req.kgid {
        user.set_gid(gid);
    }
    if let Some(gids) = &req.extra_kgids {
        user.set_additional_gids(Some(gids.clone()));
    }
    process.set_user(user);
    if let Some(caps) = &req.capabilities {
        process.set_capabilities(Some(exec_capabilities(caps)?));
    }
    if let Some(nnp) = req.no_new_privileges {
        process.set_no_new_privileges(Some(nnp));
    }
    if let Some(rlimits) = &req.rlimits {
        process.set_rlimits(Some(
            rlimits.iter().map(exec_rlimit).collect::<Result<_, _>>()?,
        ));
    }
    process.set_terminal(Some(req.terminal));
    process.set_console_size(None);
    Ok(process)
}

fn exec_rlimit(r: &ExecRlimit) -> Result<oci_spec::runtime::PosixRlimit, ContainerError> {
    let kind = serde_cbor::value::from_value::<oci_spec::runtime::PosixRlimitType>(
        serde_cbor::Value::Text(r.kind.clone()),
    )
    .map_err(|_| {
        ContainerError::Spec(SpecError::Invalid {
            field: "rlimits".into(),
            detail: format!("unknown resource {:?}", r.kind),
        })
    })?;
    oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(kind)
        .hard(r.hard)
        .soft(r.soft)
        .build()
        .map_err(|e| {
            ContainerError::Spec(SpecError::Invalid {
                field: "rlimits".into(),
                detail: e.to_string(),
            })
        })
}

fn exec_capabilities(
    caps: &ExecCapabilities,
) -> Result<oci_spec::runtime::LinuxCapabilities, ContainerError> {
    let set = |names: &[String],
               field: &str|
     -> Result<oci_spec::runtime::Capabilities, ContainerError> {
        names
            .iter()
            .map(|n| {
                serde_cbor::value::from_value::<oci_spec::runtime::Capability>(
                    serde_cbor::Value::Text(n.clone()),
                )
                .map_err(|_| {
                    ContainerError::Spec(SpecError::Invalid {
                        field: format!("capabilities.{field}"),
                        detail: format!("unknown capability {n:?}"),
                    })
                })
            })
            .collect()
    };
    let mut out = oci_spec::runtime::LinuxCapabilities::default();
    out.set_bounding(Some(set(&caps.bounding, "bounding")?));
    out.set_effective(Some(set(&caps.effective, "effective")?));
    out.set_inheritable(Some(set(&caps.inheritable, "inheritable")?));
    out.set_permitted(Some(set(&caps.permitted, "permitted")?));
    out.set_ambient(Some(set(&caps.ambient, "ambient")?));
    Ok(out)
}

/// The name of a terminal device number, as ps shows it.
fn tty_name(tty_nr: u32) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        5 => match minor {
            0 => "tty".into(),
            1 => "console".into(),
            _ => format!("5:{minor}"),
        },
        _ => format!("{major}:{minor}"),
    }
}
