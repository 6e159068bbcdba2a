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
//!
//! This file holds the actor, its messages and the table of its handlers;
//! each concern has a file: `error` (ContainerError), `registry`
//! (containers, process records, exit bookkeeping: no system call),
//! `start` (root and subcontainers, a created container's start),
//! `resident` (prewarmed, spare and per-container resident spawners),
//! `spawn` (a plan spawned and its status pipe watched), `fds` (the
//! descriptors a spawn takes), `exec`, `signal` (signals, process
//! listing), `freeze` (pause, resume), `oom`, `hooks` and `runtime_hooks`,
//! `limits` (update, stats events), `wait` (wait, wait_pid, lifecycle
//! state) and `teardown` (destroy, discard, shutdown).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use actix::{ActorFutureExt, AsyncContext, Context, Handler};
use slog::{warn, Logger};
use tokio::sync::oneshot;

mod error;
mod exec;
mod fds;
mod freeze;
mod hooks;
mod limits;
mod oom;
mod registry;
mod resident;
mod runtime_hooks;
mod signal;
mod spawn;
mod start;
mod teardown;
mod wait;

pub use self::error::ContainerError;
use self::hooks::HookPoint;
use self::oom::OOM_RECHECKS;
pub use self::registry::valid_container_id;
use self::registry::{Container, Phase, ProcessRecord};
use self::resident::Prewarmed;
pub use self::resident::PrewarmedRoot;
use super::reaper::{ChildrenExited, ExitJournal};
use crate::api::container::{
    ContainerRuntimeState, CreateSubcontainer, DestroySubcontainer, Event, ExecuteAsync, Pause,
    Processes, Resume, Signal, Start, StartRoot, StartSubcontainer, Update, Wait, WaitPid,
};
use crate::metrics::SandboxMetrics;
use crate::supervision::{
    guarded, handles, supervised_actor, ActorStatus, MailboxTicket, Subsystem,
};
use crate::sys::cgroup::{ContainerCgroup, Hierarchy};
use crate::sys::plan::HookPlan;
use crate::sys::process::Reaped;
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
