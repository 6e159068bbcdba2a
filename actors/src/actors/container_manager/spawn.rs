//! Spawning a process from a plan: through which spawner, the watch of
//! its status pipe, the caller's spawner and the terminal it sends back.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use actix::{fut, ActorFutureExt, ResponseActFuture, WrapFuture};
use slog::{debug, error, warn};

use super::error::ContainerError;
use super::fds::Opened;
use super::hooks::hook_state_json;
use super::runtime_hooks::{self, RuntimePoint};
use super::start::HeldInit;
use super::ContainerManager;
use crate::actors::reaper;
use crate::api::Fds;
use crate::container::spec::Blueprint;
use crate::sys::plan::{ChildFailure, ChildReport, HookPlan, PlanKind};
use crate::sys::procfs;
use crate::sys::spawn::reports::ReportReader;
use crate::sys::spawn::{SpawnError, SpawnerConnection};
use crate::sys::tty;

/// A process that has exec'd.
pub(super) struct SpawnOutcome {
    pub(super) host_pid: i32,
    pub(super) container_pid: i32,
    pub(super) tty_master: Option<OwnedFd>,
    /// Set when the process waits at its start gate instead of having
    /// exec'd.
    pub(super) held: Option<HeldInit>,
}

/// What [`ContainerManager::watch`] read of a child's status pipe.
pub(super) struct Watched {
    pub(super) reports: Vec<ChildReport>,
    /// The pipe, when the child reported `Ready` at its start gate and the
    /// watch stopped there.
    held_at: Option<ReportReader>,
}

impl ContainerManager {
    /// Spawns the plan and waits for the exec (or the failure). A failed
    /// spawn is answered once the child is reaped; `cleanup` then removes
    /// what the caller had set up for it.
    pub(super) fn spawn_process(
        &mut self,
        cid: String,
        blueprint: Blueprint,
        opened: Opened,
        init: bool,
        caller: Option<Rc<SpawnerConnection>>,
    ) -> ResponseActFuture<Self, Result<SpawnOutcome, ContainerError>> {
        let mut blueprint = blueprint;
        if let Some(caller) = caller {
            blueprint.plan.caller_parented = true;
            return self.spawn_with(cid, blueprint, opened, init, caller);
        }
        let resident = match self.containers.get(&cid).and_then(|c| c.resident.as_ref()) {
            Some(r) if self.resident_alive(r) => Some(r.connection.clone()),
            Some(_) => {
                warn!(self.logger, "the resident spawner is gone; spawning through the main spawner"; "cid" => &cid);
                self.retire_resident(&cid);
                None
            }
            None => None,
        };
        let spawner = match resident {
            Some(resident) => {
                // Born in the container's cgroups: nothing to join.
                match &mut blueprint.plan.kind {
                    PlanKind::Container(c) => c.cgroup_procs.clear(),
                    PlanKind::Exec(e) => e.cgroup_procs.clear(),
                    PlanKind::Hook => {}
                }
                resident
            }
            None => match self.spawner.clone() {
                Some(spawner) => spawner,
                None => {
                    let e = ContainerError::Spawn(SpawnError::Unavailable("no spawner".into()));
                    return Box::pin(fut::ready(Err(e)));
                }
            },
        };
        self.spawn_with(cid, blueprint, opened, init, spawner)
    }

    /// Spawns the plan through `spawner` and waits for the exec (or the
    /// failure), as [`Self::spawn_process`].
    fn spawn_with(
        &mut self,
        cid: String,
        blueprint: Blueprint,
        opened: Opened,
        init: bool,
        spawner: Rc<SpawnerConnection>,
    ) -> ResponseActFuture<Self, Result<SpawnOutcome, ContainerError>> {
        let caller_parented = blueprint.plan.caller_parented;
        let Opened {
            fds,
            status_read,
            console,
            runtime_gate,
            hook_stdin: _,
            start_gate,
        } = opened;
        let hook_state = match &blueprint.plan.kind {
            PlanKind::Container(c) => c.hook_state.clone(),
            _ => None,
        };
        let runtime = runtime_gate.map(|gate| RuntimeStep {
            stages: runtime_hooks::runtime_stages(&blueprint.hooks),
            state: hook_state,
            gate,
        });
        let plan = blueprint.plan;
        let spawn = async move { spawner.spawn(&plan, fds).await };
        Box::pin(spawn.into_actor(self).then(
            move |spawned, act, _| -> ResponseActFuture<Self, Result<SpawnOutcome, ContainerError>> {
                let spawned = match spawned {
                    Ok(s) => s,
                    Err(e) => return Box::pin(fut::ready(Err(e.into()))),
                };
                let host_pid = spawned.pid;
                // The init is known as such before its exit can be replayed:
                // a process that exits at once may already be in the journal.
                if init {
                    if let Some(c) = act.containers.get_mut(&cid) {
                        c.init = Some(host_pid);
                    }
                }
                if let Some(helper) = spawned.helper {
                    act.expect_helper_exit(helper);
                }
                if caller_parented && init {
                    act.guard_caller_init(host_pid, &spawned.pidfd);
                }
                act.register(host_pid, spawned.pidfd, &cid, false);
                if caller_parented {
                    act.watch_caller_process(host_pid);
                }
                let exit = act.exit_waiter(host_pid);
                let reader = match ReportReader::new(status_read) {
                    Ok(r) => r,
                    Err(e) => {
                        return Box::pin(fut::ready(Err(ContainerError::host("watch status pipe of", format!("pid {host_pid}"), e))))
                    }
                };
                let hold = start_gate.is_some();
                Box::pin(act.watch(reader, host_pid, runtime, hold, Vec::new()).then(
                    move |watched, act, _| -> ResponseActFuture<Self, Result<SpawnOutcome, ContainerError>> {
                        let mut container_pid = None;
                        let mut failure = None;
                        let mut held_at = None;
                        match watched {
                            Ok(Watched { reports, held_at: at }) => {
                                held_at = at;
                                for report in reports {
                                    match report {
                                        ChildReport::Pid(p) => container_pid = Some(p),
                                        // The first failure is the cause; later
                                        // ones are its consequences.
                                        ChildReport::Failed(f) => {
                                            failure.get_or_insert(ContainerError::from(f));
                                        }
                                        ChildReport::Ready | ChildReport::RuntimeHooks => {}
                                    }
                                }
                            }
                            Err(e) => {
                                failure = Some(ContainerError::host("read status pipe of", format!("pid {host_pid}"), e))
                            }
                        }
                        let container_pid = container_pid.unwrap_or(host_pid);
                        if let Some(p) = act.processes.get_mut(&host_pid) {
                            p.container_pid = container_pid;
                            p.confirmed = true;
                        }
                        // The child sent the master before it exec'd.
                        let tty_master = match (&failure, console) {
                            (None, Some(console)) => match receive_master(console) {
                                Ok(master) => Some(master),
                                Err(e) => {
                                    failure = Some(ContainerError::host("receive the terminal of", format!("pid {host_pid}"), e));
                                    None
                                }
                            },
                            _ => None,
                        };
                        let held = match (held_at, start_gate) {
                            (Some(reader), Some(gate)) => Some(HeldInit { gate, reader }),
                            _ => None,
                        };
                        if hold && held.is_none() && failure.is_none() {
                            failure = Some(ContainerError::host(
                                "hold at the start gate",
                                format!("pid {host_pid}"),
                                std::io::Error::other("its status pipe ended before it was ready"),
                            ));
                        }
                        if init && failure.is_none() {
                            act.record_contained(&cid, host_pid);
                        }
                        match failure {
                            None => Box::pin(fut::ready(Ok(SpawnOutcome {
                                host_pid,
                                container_pid,
                                tty_master,
                                held,
                            }))),
                            Some(error) => {
                                debug!(act.logger, "spawn failed"; "cid" => &cid, "error" => %error);
                                // Answer once the child is gone.
                                let gone = async move {
                                    let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
                                };
                                Box::pin(gone.into_actor(act).map(move |(), act, _| {
                                    act.forget_process(host_pid);
                                    Err(error)
                                }))
                            }
                        }
                    },
                ))
            },
        ))
    }

    /// The pty master goes to the console socket if one was named, else
    /// into the reply.
    pub(super) fn hand_over_master(
        &self,
        master: Option<OwnedFd>,
        console_socket: Option<String>,
    ) -> Fds {
        match (master, console_socket) {
            (Some(master), Some(path)) => {
                if let Err(e) = tty::send_to_console_socket(Path::new(&path), master.as_fd()) {
                    warn!(self.logger, "console socket"; "path" => &path, "error" => %e);
                }
                Fds::none()
            }
            (Some(master), None) => Fds(vec![master]),
            (None, _) => Fds::none(),
        }
    }

    /// Watches caller's process `pid` for its exit, which the Reaper never
    /// sees: the caller's subreaper reaps it.
    /// It is registered: its record names it (start time, pidfs inode).
    fn watch_caller_process(&mut self, pid: i32) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        p.caller_parented = true;
        let pidfd = p.pidfd.as_ref().map(OwnedFd::try_clone);
        let identity = (p.start_time, p.pidfs_inode);
        let (Some(myself), Some(Ok(pidfd))) = (self.myself.as_ref(), pidfd) else {
            error!(self.logger, "cannot watch a caller's process for its exit"; "pid" => pid);
            return;
        };
        reaper::watch_caller_reaped(
            pidfd,
            pid,
            identity,
            reaper::ExitSink {
                journal: self.journal.clone(),
                manager: myself.clone().recipient(),
                manager_status: self.status.clone(),
                logger: self.logger.clone(),
            },
        );
    }

    /// Has the main spawner kill caller's init `pid` if the supervisor
    /// dies: it is not the supervisor's child, and its container must not
    /// outlive the sandbox (the pid namespace's other processes go with it).
    fn guard_caller_init(&self, pid: i32, pidfd: &OwnedFd) {
        let (Some(spawner), Ok(pidfd)) = (self.spawner.clone(), pidfd.try_clone()) else {
            warn!(self.logger, "cannot guard a caller's init: it would outlive a supervisor that died"; "pid" => pid);
            return;
        };
        let logger = self.logger.clone();
        actix_rt::spawn(async move {
            if let Err(e) = spawner.guard(pid, pidfd).await {
                warn!(logger, "cannot guard a caller's init: it would outlive a supervisor that died"; "pid" => pid, "error" => %e);
            }
        });
    }

    /// Records the mount namespace of container `cid`, whose init is
    /// `init` (set up by now), so that none of its processes may use the
    /// control socket.
    fn record_contained(&self, cid: &str, init: i32) {
        let own = procfs::namespace_inode("self", "mnt").ok();
        match procfs::namespace_inode(&init.to_string(), "mnt") {
            // A container in the supervisor's own mount namespace would lock
            // everyone out; its peers are told apart by pid namespace.
            Ok(ns) if Some(ns) == own => {}
            Ok(ns) => self.config.contained.insert(ns, cid),
            Err(e) => {
                warn!(self.logger, "cannot read a container's mount namespace"; "cid" => cid, "error" => %e)
            }
        }
    }

    /// Collects a child's reports until its status pipe ends (or, with
    /// `hold`, until it reports `Ready` at its start gate), running the
    /// runtime's hooks when it reports its namespaces ready.
    pub(super) fn watch(
        &mut self,
        reader: ReportReader,
        host_pid: i32,
        mut runtime: Option<RuntimeStep>,
        hold: bool,
        mut collected: Vec<ChildReport>,
    ) -> ResponseActFuture<Self, std::io::Result<Watched>> {
        Box::pin(reader.next_batch().into_actor(self).then(
            move |batch, act, _| -> ResponseActFuture<Self, std::io::Result<Watched>> {
                let (reader, reports, ended) = match batch {
                    Ok(b) => b,
                    Err(e) => return Box::pin(fut::ready(Err(e))),
                };
                let wants_hooks = reports.contains(&ChildReport::RuntimeHooks);
                let ready = reports.contains(&ChildReport::Ready);
                collected.extend(reports);
                if ended || (hold && ready) {
                    return Box::pin(fut::ready(Ok(Watched {
                        reports: collected,
                        held_at: (!ended).then_some(reader),
                    })));
                }
                let step = if wants_hooks { runtime.take() } else { None };
                match step {
                    None => act.watch(reader, host_pid, runtime, hold, collected),
                    Some(step) => {
                        let RuntimeStep {
                            stages,
                            state,
                            gate,
                        } = step;
                        let json = hook_state_json(
                            state,
                            oci_spec::runtime::ContainerState::Creating,
                            Some(host_pid),
                        );
                        Box::pin(
                            act.run_runtime_stages(stages, json)
                                .then(move |ran, act, _| {
                                    match ran {
                                        Ok(()) => {
                                            let _ = nix::unistd::write(&gate, b"1");
                                        }
                                        Err((point, e)) => {
                                            collected.push(ChildReport::Failed(ChildFailure {
                                                step: format!("{} hook", point.name()),
                                                path: String::new(),
                                                errno: 0,
                                                message: e.to_string(),
                                            }))
                                        }
                                    }
                                    // Closing the gate unopened makes the child give up.
                                    drop(gate);
                                    act.watch(reader, host_pid, None, hold, collected)
                                }),
                        )
                    }
                }
            },
        ))
    }
}

/// The caller's spawner, when the call says its first descriptor is one.
pub(super) fn take_caller_spawner(
    fds: &mut Vec<OwnedFd>,
    given: bool,
    method: &'static str,
) -> Result<Option<Rc<SpawnerConnection>>, ContainerError> {
    if !given {
        return Ok(None);
    }
    if fds.is_empty() {
        return Err(ContainerError::FdCount {
            method,
            expected: 1,
            what: "the caller's spawner first",
            got: 0,
        });
    }
    let socket = fds.remove(0);
    SpawnerConnection::new(socket)
        .map(Some)
        .map_err(|e| ContainerError::host("watch the caller's spawner", "socket", e))
}

/// Takes the pty master a child sent on the console channel.
fn receive_master(console: OwnedFd) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 16];
    let mut control = crate::sys::socket::ControlBuffer::default();
    let received =
        crate::sys::socket::recv_with_fds(console.as_fd(), &mut buf, &mut control, true)?;
    received
        .fds
        .into_iter()
        .next()
        .ok_or_else(|| std::io::Error::other("the child sent no terminal"))
}

/// The prestart and createRuntime hooks, and the gate the child waits at
/// while they run.
pub(super) struct RuntimeStep {
    stages: Vec<(RuntimePoint, Vec<HookPlan>)>,
    state: Option<oci_spec::runtime::State>,
    gate: OwnedFd,
}
