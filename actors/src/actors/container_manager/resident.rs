//! Resident spawners: the prewarmed root's, the spare for the next
//! subcontainer, and each container's own.

use std::os::fd::AsFd;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use actix::{fut, ActorFutureExt, ResponseActFuture, WrapFuture};
use slog::{debug, warn};

use super::error::ContainerError;
use super::ContainerManager;
use crate::sys::cgroup::ContainerCgroup;
use crate::sys::process::{pidfd_exited, pidfd_signal};
use crate::sys::spawn::resident::{self, Resident};
use crate::sys::spawn::spare::Spare;
use crate::sys::spawn::{ForkedResident, SpawnerConnection};

/// A container's resident spawner (its process is in `processes`).
pub(super) struct ResidentLink {
    pub(super) pid: i32,
    pub(super) connection: Rc<SpawnerConnection>,
}

/// The root container's cgroups and resident spawner, made while the
/// supervisor started (`boot --prewarm CID`).
pub struct PrewarmedRoot {
    /// The container id they are for.
    pub cid: String,
    /// Its cgroups in the v1 hierarchies (the default path).
    pub cgroup: ContainerCgroup,
    /// The resident, forked at start.
    pub resident: ForkedResident,
}

/// A prewarmed root waiting for its StartRoot.
pub(super) struct Prewarmed {
    cid: String,
    pub(super) cgroup: ContainerCgroup,
    pub(super) link: ResidentLink,
}

impl ContainerManager {
    pub(super) fn adopt_prewarmed(&mut self, p: PrewarmedRoot) {
        let ForkedResident { handle, pidfd } = p.resident;
        self.register(handle.pid, pidfd, &p.cid, true);
        match SpawnerConnection::new(handle.socket) {
            Ok(connection) => {
                self.prewarmed = Some(Prewarmed {
                    cid: p.cid,
                    cgroup: p.cgroup,
                    link: ResidentLink {
                        pid: handle.pid,
                        connection,
                    },
                })
            }
            Err(e) => {
                warn!(self.logger, "cannot watch the prewarmed resident's socket"; "error" => %e);
                self.kill_resident_process(handle.pid);
                self.unused_cgroups.push(p.cgroup);
            }
        }
    }

    /// Starts a spare resident for the next subcontainer, unless there is
    /// one, or nothing to gain (no v1 hierarchy, no running root).
    pub(super) fn ensure_spare(&mut self) {
        if self.spare.is_some()
            || self.root_init().is_err()
            || !self.hierarchies.iter().any(|h| h.v1_controllers.is_some())
        {
            return;
        }
        let Some(spawner) = self.spawner.clone() else {
            return;
        };
        self.spare_serial += 1;
        match Spare::start(
            spawner,
            &self.hierarchies,
            &self.config.cgroup_parent,
            self.spare_serial,
            self.config.supervisor_pid,
        ) {
            Ok(spare) => self.spare = Some(spare),
            Err(e) => warn!(self.logger, "cannot make a spare resident"; "error" => %e),
        }
    }

    /// The spare's resident, with the spare's cgroups renamed to container
    /// `cid`'s, if the spare is ready.
    pub(super) fn adopt_spare(&mut self, cid: &str) -> Option<ResidentLink> {
        let mut spare = self.spare.take()?;
        if !spare.is_ready() {
            if let Some(failure) = spare.failure() {
                warn!(self.logger, "the spare resident failed"; "error" => failure);
                self.unused_cgroups.push(spare.into_cgroup());
            } else {
                self.spare = Some(spare);
            }
            return None;
        }
        match spare.adopt(cid) {
            Ok((_, resident)) => {
                let Resident {
                    process,
                    connection,
                } = resident;
                self.register(process.pid, process.pidfd, cid, true);
                Some(ResidentLink {
                    pid: process.pid,
                    connection,
                })
            }
            Err(refused) => {
                let (spare, e) = *refused;
                warn!(self.logger, "cannot adopt the spare resident"; "cid" => cid, "error" => %e);
                self.spare = Some(spare);
                None
            }
        }
    }

    /// The prewarmed resident, if it was made for container `cid` at cgroup
    /// path `relative` and still lives; any other prewarm is stopped.
    pub(super) fn take_prewarmed(&mut self, cid: &str, relative: &Path) -> Option<ResidentLink> {
        let p = self.prewarmed.take()?;
        let fits = p.cid == cid && relative == self.config.cgroup_parent.join(cid);
        if fits && self.resident_alive(&p.link) {
            return Some(p.link);
        }
        debug!(self.logger, "prewarmed root container unused"; "prewarmed" => &p.cid, "cid" => cid);
        self.kill_resident_process(p.link.pid);
        if !fits {
            self.unused_cgroups.push(p.cgroup);
        }
        None
    }

    /// Starts the container's resident spawner in its cgroups (none when the
    /// sandbox has no cgroups: its processes are then cloned by the main
    /// spawner).
    pub(super) fn start_resident(
        &mut self,
        cid: &str,
    ) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        // Not when it has one already (prewarmed, or a spare it took).
        let procs = self
            .containers
            .get(cid)
            .filter(|c| c.resident.is_none())
            .filter(|c| !c.spec.as_deref().is_some_and(limits_pids))
            .and_then(|c| c.cgroup.as_ref())
            .filter(|cgroup| !cgroup.dirs.is_empty())
            .map(ContainerCgroup::v1_procs_files);
        let (Some(procs), Some(spawner)) = (procs, self.spawner.clone()) else {
            return Box::pin(fut::ready(Ok(())));
        };
        let supervisor_pid = self.config.supervisor_pid;
        let cid = cid.to_owned();
        let start = async move { resident::start(spawner, &procs, supervisor_pid).await };
        Box::pin(start.into_actor(self).map(move |started, act, _| {
            let Resident {
                process,
                connection,
            } = started?;
            let pid = process.pid;
            act.register(pid, process.pidfd, &cid, true);
            match act.containers.get_mut(&cid) {
                Some(c) => c.resident = Some(ResidentLink { pid, connection }),
                // Discarded meanwhile.
                None => act.kill_resident_process(pid),
            }
            Ok(())
        }))
    }

    /// A resident killed from outside (or by the OOM killer) is noticed
    /// here before a request is lost on it.
    pub(super) fn resident_alive(&self, link: &ResidentLink) -> bool {
        !link.connection.is_broken()
            && self.processes.get(&link.pid).is_some_and(|p| {
                p.exit.is_none() && !p.pidfd.as_ref().is_none_or(|fd| pidfd_exited(fd.as_fd()))
            })
    }

    pub(super) fn kill_resident_process(&mut self, pid: i32) {
        if let Some(p) = self.processes.get(&pid) {
            if p.exit.is_none() {
                let _ = p.signal(libc::SIGKILL);
            }
        }
    }

    /// Stops a container's resident spawner (its init has exited, or the
    /// container goes).
    pub(super) fn retire_resident(&mut self, cid: &str) {
        let link = self.containers.get_mut(cid).and_then(|c| c.resident.take());
        if let Some(link) = link {
            self.kill_resident_process(link.pid);
        }
    }
}

/// Stops a spare that no container took: waits for its start, kills its
/// resident and waits for it to go; returns its cgroups to remove.
pub(super) async fn stop_spare(spare: Spare) -> ContainerCgroup {
    let (resident, cgroup) = spare.settle(Duration::from_secs(1)).await;
    if let Some(resident) = resident {
        let pidfd = resident.process.pidfd;
        if pidfd_signal(pidfd.as_fd(), libc::SIGKILL).is_ok() {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while !pidfd_exited(pidfd.as_fd()) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    cgroup
}

/// Whether the spec limits the container's processes (pids.max).
pub(super) fn limits_pids(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.pids().as_ref())
        .is_some_and(|p| p.limit() > 0)
}
