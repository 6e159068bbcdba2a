//! Resource limits and use: update and stats events.

use std::path::{Path, PathBuf};

use actix::Context;
use slog::{info, warn};

use super::error::ContainerError;
use super::ContainerManager;
use crate::actors::stats::WireStats;
use crate::api::container::{Event, EventReply, Update};
use crate::api::Empty;
use crate::container::resources::{self, CgroupVersion};
use crate::sys::cgroup;
use crate::sys::cgroup_writes;
use crate::wire::RpcError;

impl ContainerManager {
    /// A container's resource use now.
    pub(super) fn event(
        &mut self,
        req: Event,
        _: &mut Context<Self>,
    ) -> Result<EventReply, RpcError> {
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
    pub(super) fn update(&mut self, req: Update, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        let c = self.live(&req.cid)?;
        let (dirs, relative) = match &c.cgroup {
            Some(cgroup) => (cgroup.dirs.clone(), cgroup.relative.clone()),
            None => (Vec::new(), PathBuf::new()),
        };
        self.apply_resources(&req.resources, &dirs, &relative)?;
        info!(self.logger, "container resources updated"; "cid" => &req.cid);
        Ok(Empty {})
    }

    /// Writes resource limits into a container's cgroups (`dirs`, one per
    /// hierarchy, at `relative`), enabling v2 controllers on the way.
    pub(super) fn apply_resources(
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
}
