//! Starting containers: the root container, subcontainers, the start of a
//! created container, and the preparation of a container's cgroups, state
//! directory and plan.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use actix::{fut, ActorFutureExt, Context, ResponseActFuture, WrapFuture};
use slog::{info, warn};

use super::error::ContainerError;
use super::fds::{open_fds, take_preserved, Opened};
use super::hooks::{hook_state_json, HookPoint};
use super::registry::{valid_container_id, Container, Phase};
use super::resident::limits_pids;
use super::spawn::{take_caller_spawner, SpawnOutcome};
use super::ContainerManager;
use crate::api::container::{CreateSubcontainer, Start, StartRoot, StartSubcontainer, Started};
use crate::api::{Empty, Fds};
use crate::container::spec::{self, Blueprint, ContainerContext, SpecError};
use crate::supervision::Reply;
use crate::sys::cgroup::{self, ContainerCgroup};
use crate::sys::device_filter;
use crate::sys::plan::ChildReport;
use crate::sys::spawn::reports::ReportReader;
use crate::sys::spawn::SpawnerConnection;
use crate::wire::RpcError;

/// An init waiting at its start gate, and what its start still needs.
pub(super) struct HeldInit {
    /// Writing a byte lets it go on; closing it unwritten makes it give up.
    pub(super) gate: OwnedFd,
    /// Its status pipe, read up to its `Ready`.
    pub(super) reader: ReportReader,
}

/// Which kind of container is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    Sub,
}

/// Where a container's spec comes from.
#[derive(Clone, Copy)]
struct SpecSource<'a> {
    cid: &'a str,
    spec: &'a oci_spec::runtime::Spec,
    bundle: Option<&'a str>,
    /// Create only: hold the init at its start gate.
    hold: bool,
    /// Descriptors passed through after stdio.
    preserve_fds: u32,
    /// The init is cloned by a caller's spawner: no resident of the
    /// sandvisor's is made or taken for it.
    caller_spawned: bool,
}

impl ContainerManager {
    pub(super) fn start_root(
        &mut self,
        mut req: StartRoot,
        _: &mut Context<Self>,
    ) -> Reply<Self, Started> {
        let mut fds = req.fds.take();
        let caller = match take_caller_spawner(
            &mut fds,
            req.caller_spawner,
            <StartRoot as crate::api::Method>::NAME,
        ) {
            Ok(caller) => caller,
            Err(e) => return Reply::Now(Err(e.into())),
        };
        let source = SpecSource {
            cid: &req.cid,
            spec: &req.spec,
            bundle: req.bundle.as_deref(),
            hold: req.hold,
            preserve_fds: req.preserve_fds,
            caller_spawned: caller.is_some(),
        };
        match self.prepare_container(source, fds, Kind::Root) {
            Ok((blueprint, opened)) => {
                Reply::Later(self.launch(req.cid, blueprint, opened, req.console_socket, caller))
            }
            Err(e) => Reply::Now(Err(e.into())),
        }
    }

    /// Releases a created container's init: it runs its startContainer
    /// hooks and execs; the answer comes once it has (or has failed).
    pub(super) fn start(&mut self, req: Start, _: &mut Context<Self>) -> Reply<Self, Started> {
        let cid = req.cid;
        let Some(c) = self.containers.get_mut(&cid) else {
            return Reply::Now(Err(ContainerError::NotFound(cid).into()));
        };
        let (held, pid) = match (c.phase, c.held.take(), c.init) {
            (Phase::Created, Some(held), Some(pid)) => (held, pid),
            (phase, held, _) => {
                c.held = held;
                return Reply::Now(Err(ContainerError::NotCreated {
                    cid,
                    status: phase.status(),
                }
                .into()));
            }
        };
        // Running from here: a restart while it execs must not roll it back.
        c.phase = Phase::Running;
        let HeldInit { gate, reader } = held;
        if let Err(e) = nix::unistd::write(&gate, b"1") {
            warn!(self.logger, "cannot open the start gate"; "cid" => &cid, "error" => %e);
        }
        drop(gate);
        let exit = self.exit_waiter(pid);
        Reply::Later(Box::pin(
            self.watch(reader, pid, None, false, Vec::new()).then(
                move |watched, act, _| -> ResponseActFuture<Self, Result<Started, RpcError>> {
                    let failure = match watched {
                        Ok(w) => w.reports.into_iter().find_map(|r| match r {
                            ChildReport::Failed(f) => Some(ContainerError::from(f)),
                            _ => None,
                        }),
                        Err(e) => Some(ContainerError::host(
                            "read status pipe of",
                            format!("pid {pid}"),
                            e,
                        )),
                    };
                    match failure {
                        None => {
                            info!(act.logger, "container started"; "cid" => &cid, "pid" => pid);
                            // runtime-spec: poststart hooks run before start
                            // returns; a failed one is a warning.
                            let (hooks, state) = match act.containers.get(&cid) {
                                Some(c) => (
                                    c.hooks.poststart.clone(),
                                    hook_state_json(
                                        c.hook_state.clone(),
                                        oci_spec::runtime::ContainerState::Running,
                                        Some(pid),
                                    ),
                                ),
                                None => (Vec::new(), Vec::new()),
                            };
                            Box::pin(act.run_hooks(hooks, state).map(move |ran, act, _| {
                                if let Err(e) = ran {
                                    warn!(act.logger, "poststart hook failed"; "cid" => &cid, "error" => %e);
                                }
                                Ok(Started {
                                    pid,
                                    fds: Fds::none(),
                                })
                            }))
                        }
                        // Answer once the init is gone: the container is stopped.
                        Some(error) => Box::pin(
                            async move {
                                let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
                            }
                            .into_actor(act)
                            .map(move |(), _, _| Err(error.into())),
                        ),
                    }
                },
            ),
        ))
    }

    pub(super) fn create_subcontainer(
        &mut self,
        mut req: CreateSubcontainer,
        _: &mut Context<Self>,
    ) -> Result<Empty, RpcError> {
        let cid = req.cid.clone();
        if !valid_container_id(&cid) {
            return Err(ContainerError::BadId(cid).into());
        }
        if self.containers.contains_key(&cid) {
            return Err(ContainerError::Exists(cid).into());
        }
        self.root_init()?;
        let mut fds = req.fds.take();
        if fds.len() > 1 {
            return Err(ContainerError::FdCount {
                method: <CreateSubcontainer as crate::api::Method>::NAME,
                expected: 1,
                what: "at most one: a terminal",
                got: fds.len(),
            }
            .into());
        }
        let container = Container {
            reserved_tty: fds.pop(),
            ..Container::new(self.config.state_dir.join(&cid), Phase::Reserved)
        };
        self.containers.insert(cid.clone(), container);
        // Subcontainers are coming: the next one's resident joins its
        // cgroups now, not during its start.
        self.ensure_spare();
        Ok(Empty {})
    }

    pub(super) fn start_subcontainer(
        &mut self,
        mut req: StartSubcontainer,
        _: &mut Context<Self>,
    ) -> Reply<Self, Started> {
        let mut fds = req.fds.take();
        let mut caller = None;
        let prepared = (|| {
            caller = take_caller_spawner(
                &mut fds,
                req.caller_spawner,
                <StartSubcontainer as crate::api::Method>::NAME,
            )?;
            let root_pid = self.root_init()?;
            match self.containers.get(&req.cid).map(|c| c.phase) {
                None => return Err(ContainerError::NotFound(req.cid.clone())),
                Some(Phase::Reserved) => {}
                Some(_) => return Err(ContainerError::AlreadyStarted(req.cid.clone())),
            }
            let spec = spec::subcontainer_spec(&req.spec, root_pid);
            let source = SpecSource {
                cid: &req.cid,
                spec: &spec,
                bundle: req.bundle.as_deref(),
                hold: req.hold,
                preserve_fds: req.preserve_fds,
                caller_spawned: caller.is_some(),
            };
            self.prepare_container(source, fds, Kind::Sub)
        })();
        match prepared {
            Ok((blueprint, opened)) => {
                Reply::Later(self.launch(req.cid, blueprint, opened, req.console_socket, caller))
            }
            Err(e) => Reply::Now(Err(e.into())),
        }
    }

    /// Validates, registers the container, creates its cgroups and state
    /// directory, and opens the plan's descriptors. On failure nothing of it
    /// is left.
    fn prepare_container(
        &mut self,
        source: SpecSource<'_>,
        mut fds: Vec<OwnedFd>,
        kind: Kind,
    ) -> Result<(Blueprint, Opened), ContainerError> {
        let cid = source.cid;
        if !valid_container_id(cid) {
            return Err(ContainerError::BadId(cid.to_owned()));
        }
        let mut reserved_tty = None;
        match kind {
            Kind::Root => {
                if self.containers.contains_key(cid) {
                    return Err(ContainerError::Exists(cid.to_owned()));
                }
                if let Some((existing, _)) = self.containers.iter().find(|(_, c)| c.root) {
                    return Err(ContainerError::RootExists(existing.clone()));
                }
            }
            Kind::Sub => {
                reserved_tty = self
                    .containers
                    .get_mut(cid)
                    .and_then(|c| c.reserved_tty.take());
            }
        }
        let terminal = source
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let method = match kind {
            Kind::Root => <StartRoot as crate::api::Method>::NAME,
            Kind::Sub => <StartSubcontainer as crate::api::Method>::NAME,
        };
        let preserved = take_preserved(&mut fds, source.preserve_fds, method)?;
        let (expected, what) = if terminal {
            (0, "none with a terminal, then the preserved ones")
        } else {
            (3, "stdin, stdout, stderr, then the preserved ones")
        };
        if fds.len() != expected {
            return Err(ContainerError::FdCount {
                method,
                expected: expected + preserved.len(),
                what,
                got: fds.len() + preserved.len(),
            });
        }
        let container = Container {
            spec: Some(Box::new(source.spec.clone())),
            root: kind == Kind::Root,
            ..Container::new(self.config.state_dir.join(cid), Phase::Starting)
        };
        self.containers.insert(cid.to_owned(), container);
        let prepared = self.prepare_registered(source, fds, reserved_tty, preserved);
        if prepared.is_err() {
            self.discard(cid);
        }
        prepared
    }

    fn prepare_registered(
        &mut self,
        source: SpecSource<'_>,
        mut fds: Vec<OwnedFd>,
        caller_tty: Option<OwnedFd>,
        preserved: Vec<OwnedFd>,
    ) -> Result<(Blueprint, Opened), ContainerError> {
        let (cid, spec) = (source.cid, source.spec);
        let dir = self.config.state_dir.join(cid);
        let scratch = dir.join("rootfs");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| ContainerError::host("create state directory", &scratch, e))?;
        let relative = match spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
        {
            Some(path) => cgroup::checked_relative(path).ok_or_else(|| SpecError::Invalid {
                field: "linux.cgroupsPath".into(),
                detail: format!("{} leaves the cgroup hierarchy", path.display()),
            })?,
            None => self.config.cgroup_parent.join(cid),
        };
        // A caller's process is cloned by the caller's spawner; a resident
        // would only stand in the container's cgroups, counted as one of
        // its processes.
        let mut resident = None;
        if !source.caller_spawned {
            resident = self.take_prewarmed(cid, &relative);
            if resident.is_none() && relative == self.config.cgroup_parent.join(cid) {
                resident = self.adopt_spare(cid);
            }
        }
        if limits_pids(spec) {
            // A pids limit of N leaves the container N processes: none of
            // them may be a resident of sandvisor's.
            if let Some(link) = resident.take() {
                self.kill_resident_process(link.pid);
            }
        }
        let cgroup = ContainerCgroup::create(&self.hierarchies, &relative)
            .map_err(|e| ContainerError::host("create cgroup", &relative, e))?;
        let dirs = cgroup.dirs.clone();
        let procs = cgroup.v1_procs_files();
        let unified = cgroup.unified.clone();
        // OOM kills count from here, before any of its processes runs (a
        // kill may come before the start is even answered); a cgroup that
        // existed may have some already.
        if let Some(c) = self.containers.get_mut(cid) {
            c.oom_kills_seen = c.cgroup_files.oom_kills(&self.hierarchies, &dirs);
            c.cgroup = Some(cgroup);
            c.resident = resident;
        }
        self.watch_oom(cid, &dirs);
        if let Some(rules) = spec::device_rules(spec)? {
            if let Some(dir) = cgroup::v1_dir(&self.hierarchies, &dirs, "devices") {
                cgroup::write_device_rules(dir, &rules)
                    .map_err(|e| ContainerError::host("apply device rules to", dir, e))?;
            } else if let Some(dir) = cgroup::v2_dir(&self.hierarchies, &dirs) {
                // v2 has no devices controller: an eBPF program decides.
                device_filter::attach(dir, &rules)?;
            } else {
                return Err(SpecError::Unsupported {
                    field: "linux.resources.devices".into(),
                    detail: "device rules need the cgroup v1 devices controller or a cgroup v2 hierarchy, and this host has neither".into(),
                }
                .into());
            }
        }
        if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            self.apply_resources(resources, &dirs, &relative)?;
        }
        let cgroup_dirs =
            if self.hierarchies.len() == 1 && self.hierarchies[0].v1_controllers.is_none() {
                dirs.iter().map(|d| (None, d.clone())).collect()
            } else {
                self.hierarchies
                    .iter()
                    .zip(&dirs)
                    .map(|(h, d)| {
                        (
                            h.mount
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned()),
                            d.clone(),
                        )
                    })
                    .collect()
            };
        let bundle = source
            .bundle
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let hook_state = spec.hooks().as_ref().map(|_| {
            let mut state = oci_spec::runtime::State::default();
            state.set_version(spec.version().clone());
            state.set_id(cid.to_owned());
            state.set_status(oci_spec::runtime::ContainerState::Creating);
            state.set_bundle(std::fs::canonicalize(&bundle).unwrap_or_else(|_| bundle.clone()));
            state.set_annotations(spec.annotations().clone());
            state
        });
        let ctx = ContainerContext {
            bundle: &bundle,
            scratch_root: &scratch,
            cgroup_procs: procs,
            cgroup_v2_dir: unified,
            cgroup_dirs,
            supervisor_pid: self.config.supervisor_pid,
            gated: source.hold,
            loopback_up: true,
            hook_state: hook_state.clone(),
            caller_terminal: caller_tty.is_some(),
            preserve_fds: source.preserve_fds,
        };
        let blueprint = spec::build_container(spec, &ctx)?;
        if let crate::sys::plan::PlanKind::Container(plan) = &blueprint.plan.kind {
            if !Path::new(&plan.rootfs.path).is_dir() {
                return Err(SpecError::Invalid {
                    field: "root.path".into(),
                    detail: format!("{} is not a directory", plan.rootfs.path),
                }
                .into());
            }
        }
        if let Some(c) = self.containers.get_mut(cid) {
            c.hooks = blueprint.hooks.clone();
            c.hook_state = hook_state;
        }
        for warning in &blueprint.warnings {
            warn!(self.logger, "spec warning"; "cid" => cid, "warning" => warning);
        }
        let opened = open_fds(&blueprint, &mut fds, caller_tty, preserved)?;
        Ok((blueprint, opened))
    }

    /// Starts a new container's init and marks the container running.
    fn launch(
        &mut self,
        cid: String,
        blueprint: Blueprint,
        opened: Opened,
        console_socket: Option<String>,
        caller: Option<Rc<SpawnerConnection>>,
    ) -> ResponseActFuture<Self, Result<Started, RpcError>> {
        let resident = match caller {
            Some(_) => Box::pin(fut::ready(Ok(()))),
            None => self.start_resident(&cid),
        };
        Box::pin(resident.then(move |resident, act, _| {
            let spawned = match resident {
                Ok(()) => act.spawn_process(cid.clone(), blueprint, opened, true, caller),
                Err(e) => Box::pin(fut::ready(Err(e))),
            };
            spawned.map(move |outcome, act, _| act.launched(cid, outcome, console_socket))
        }))
    }

    /// Finishes a start: the container runs (or has already stopped).
    fn launched(
        &mut self,
        cid: String,
        outcome: Result<SpawnOutcome, ContainerError>,
        console_socket: Option<String>,
    ) -> Result<Started, RpcError> {
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.discard(&cid);
                return Err(e.into());
            }
        };
        let held = outcome.held.is_some();
        if let Some(c) = self.containers.get_mut(&cid) {
            if c.phase == Phase::Starting {
                // An init that already exited leaves the container stopped.
                c.phase = match (c.exit.is_some(), held) {
                    (true, _) => Phase::Stopped,
                    (false, true) => Phase::Created,
                    (false, false) => Phase::Running,
                };
            }
            if c.phase == Phase::Created {
                c.held = outcome.held;
            }
        }
        if self.containers.get(&cid).is_some_and(|c| !c.root) {
            // This start may have taken the spare: make the next one.
            self.ensure_spare();
        }
        if held {
            info!(self.logger, "container created"; "cid" => &cid, "pid" => outcome.host_pid);
        } else {
            info!(self.logger, "container started"; "cid" => &cid, "pid" => outcome.host_pid);
            self.run_detached_hooks(&cid, HookPoint::Poststart, Some(outcome.host_pid));
        }
        Ok(Started {
            pid: outcome.host_pid,
            fds: self.hand_over_master(outcome.tty_master, console_socket),
        })
    }
}
