//! Pause and resume: a container's freezer.

use std::time::Duration;

use actix::Context;
use slog::{info, warn};

use super::error::ContainerError;
use super::registry::Phase;
use super::ContainerManager;
use crate::api::container::{Pause, Resume};
use crate::api::Empty;
use crate::sys::cgroup;
use crate::wire::RpcError;

/// How long a freeze or thaw may take.
const FREEZE_PATIENCE: Duration = Duration::from_secs(2);

impl ContainerManager {
    /// Freezes one running container, or every one.
    pub(super) fn pause(&mut self, req: Pause, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        self.apply_exits();
        let ids = self.targets(req.cid, Phase::Running, ContainerError::NotRunning)?;
        self.change_frozen(&ids, true)?;
        Ok(Empty {})
    }

    /// Thaws one paused container, or every one.
    pub(super) fn resume(&mut self, req: Resume, _: &mut Context<Self>) -> Result<Empty, RpcError> {
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
    pub(super) fn thaw_killed(&mut self, cid: &str) {
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
}
