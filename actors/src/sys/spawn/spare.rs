//! A spare resident spawner: one made ahead of the next container's start,
//! in cgroups of its own, so that the start finds a resident that has
//! already paid the RCU grace period of a cgroup v1 join. The start renames
//! the spare's cgroups to the container's (v1 hierarchies allow renaming a
//! cgroup with its processes) and takes its resident.
//!
//! Only for v1 hierarchies: a v2-only host has nothing to join (processes
//! are cloned into their cgroup), and the v2 hierarchy of a hybrid host is
//! entered the same way, so a spare leaves it out.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::resident::{self, Resident, ResidentError};
use super::SpawnerConnection;
use crate::sys::cgroup::{ContainerCgroup, Hierarchy};

/// A spare, starting or ready.
pub struct Spare {
    cgroup: ContainerCgroup,
    starting: Option<oneshot::Receiver<Result<Resident, ResidentError>>>,
    ready: Option<Resident>,
    failed: Option<String>,
}

/// The name of the cgroup of spare number `serial` of supervisor
/// `supervisor_pid`: not a valid container id (`@` is not allowed in one),
/// so it cannot clash with a container's, nor with another supervisor's
/// spare under the same parent.
pub fn cgroup_name(supervisor_pid: i32, serial: u64) -> String {
    format!("spare@{supervisor_pid}.{serial}")
}

impl Spare {
    /// Makes the spare's cgroups under `parent` in the v1 `hierarchies` and
    /// starts its resident in the background (on the current arbiter).
    pub fn start(
        spawner: Rc<SpawnerConnection>,
        hierarchies: &[Hierarchy],
        parent: &Path,
        serial: u64,
        supervisor_pid: i32,
    ) -> io::Result<Spare> {
        let v1: Vec<Hierarchy> = hierarchies
            .iter()
            .filter(|h| h.v1_controllers.is_some())
            .cloned()
            .collect();
        let cgroup =
            ContainerCgroup::create(&v1, &parent.join(cgroup_name(supervisor_pid, serial)))?;
        let procs: Vec<PathBuf> = cgroup.v1_procs_files();
        let (done, starting) = oneshot::channel();
        actix_rt::spawn(async move {
            let _ = done.send(resident::start(spawner, &procs, supervisor_pid).await);
        });
        Ok(Spare {
            cgroup,
            starting: Some(starting),
            ready: None,
            failed: None,
        })
    }

    /// True once its resident has joined the cgroups.
    pub fn is_ready(&mut self) -> bool {
        if let Some(starting) = &mut self.starting {
            match starting.try_recv() {
                Ok(Ok(resident)) => self.ready = Some(resident),
                Ok(Err(e)) => self.failed = Some(e.to_string()),
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.failed = Some("its start was dropped".into())
                }
            }
            self.starting = None;
        }
        self.ready.is_some()
    }

    /// Why its resident could not start, once known.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Its cgroups, for the caller to remove (a spare whose resident
    /// failed to start, and so has exited).
    pub fn into_cgroup(self) -> ContainerCgroup {
        self.cgroup
    }

    /// Renames its cgroups to `name` and hands over its resident (it must
    /// be ready). On failure the spare is given back unchanged.
    pub fn adopt(self, name: &str) -> Result<(ContainerCgroup, Resident), Box<(Spare, io::Error)>> {
        let Some(resident) = self.ready else {
            return Err(Box::new((self, io::Error::other("the spare is not ready"))));
        };
        match self.cgroup.rename(name) {
            Ok(cgroup) => Ok((cgroup, resident)),
            Err(e) => Err(Box::new((
                Spare {
                    ready: Some(resident),
                    ..self
                },
                e,
            ))),
        }
    }

    /// Waits (at most `patience`) for a start in flight, and gives back the
    /// resident, if any, and the cgroups, for the caller to kill and
    /// remove.
    pub async fn settle(mut self, patience: Duration) -> (Option<Resident>, ContainerCgroup) {
        if let Some(starting) = self.starting.take() {
            if let Ok(Ok(Ok(resident))) = tokio::time::timeout(patience, starting).await {
                self.ready = Some(resident);
            }
        }
        (self.ready, self.cgroup)
    }
}
