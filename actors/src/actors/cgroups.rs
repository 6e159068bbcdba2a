//! Cgroups: `Cgroups.ReadControlFiles` and `Cgroups.WriteControlFiles` on
//! the sandbox's cgroups (its parent cgroup in each hierarchy, where its
//! containers' default cgroups are). Limits, stats and OOM accounting of
//! containers are applied by the ContainerManager through `sys::cgroup`.

use std::path::PathBuf;
use std::sync::Arc;

use actix::Context;
use slog::Logger;

use crate::api::cgroups::{
    ControlFile, ControlFileError as WireError, ControlFileResult, ControlFileResults,
    ReadControlFiles, WriteControlFiles,
};
use crate::supervision::{handles, supervised_actor, ActorStatus, Subsystem};
use crate::sys::cgroup::Hierarchy;
use crate::sys::control_files::{self, ControlFileError};
use crate::wire::{ErrorCode, RpcError};

/// Serves the sandbox's cgroup control files.
pub struct Cgroups {
    status: Arc<ActorStatus>,
    logger: Logger,
    hierarchies: Vec<Hierarchy>,
    /// The sandbox's cgroup, relative to each hierarchy's root.
    parent: PathBuf,
}

impl Cgroups {
    /// The actor, for the sandbox whose cgroup is `parent` in each of
    /// `hierarchies`.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        hierarchies: Vec<Hierarchy>,
        parent: PathBuf,
    ) -> Self {
        Cgroups {
            status,
            logger,
            hierarchies,
            parent,
        }
    }

    /// The sandbox's cgroup in the hierarchy of `controller`.
    fn base(&self, controller: &str) -> Option<PathBuf> {
        let unified = controller.is_empty() || controller == "unified";
        self.hierarchies
            .iter()
            .find(|h| match &h.v1_controllers {
                None => unified,
                Some(_) => !unified && h.has_v1(controller),
            })
            .map(|h| h.mount.join(&self.parent))
    }

    fn each(
        &self,
        files: &[ControlFile],
        op: impl Fn(&std::path::Path, &ControlFile) -> Result<Option<String>, ControlFileError>,
    ) -> ControlFileResults {
        let results = files
            .iter()
            .map(|file| {
                let done = match self.base(&file.controller) {
                    Some(base) => op(&base, file).map_err(|e| WireError {
                        code: code_of(&e),
                        message: e.to_string(),
                    }),
                    None => Err(WireError {
                        code: ErrorCode::NotFound,
                        message: format!("no cgroup controller {:?} on this host", file.controller),
                    }),
                };
                match done {
                    Ok(value) => ControlFileResult { value, error: None },
                    Err(error) => ControlFileResult {
                        value: None,
                        error: Some(error),
                    },
                }
            })
            .collect();
        ControlFileResults { results }
    }

    fn read(
        &mut self,
        req: ReadControlFiles,
        _: &mut Context<Self>,
    ) -> Result<ControlFileResults, RpcError> {
        Ok(self.each(&req.files, |base, file| {
            control_files::read_beneath(base, &file.path, &file.name).map(Some)
        }))
    }

    fn write(
        &mut self,
        req: WriteControlFiles,
        _: &mut Context<Self>,
    ) -> Result<ControlFileResults, RpcError> {
        Ok(self.each(&req.files, |base, file| {
            let value = file.value.as_deref().ok_or_else(|| ControlFileError::Io {
                what: "write nothing to".into(),
                file: format!("{}/{}", file.path, file.name),
                source: std::io::ErrorKind::InvalidInput.into(),
            })?;
            // Any pid may be written there, a host process's included: it
            // would then live under the container's limits and device
            // rules, or a container's process under another's.
            if PROCESS_PLACEMENT_FILES.contains(&file.name.as_str()) {
                return Err(ControlFileError::MovesProcesses(file.name.clone()));
            }
            control_files::write_beneath(base, &file.path, &file.name, value).map(|()| None)
        }))
    }
}

/// Control files whose writes move processes (v1 and v2), refused.
const PROCESS_PLACEMENT_FILES: [&str; 3] = ["cgroup.procs", "tasks", "cgroup.threads"];

/// The wire code of a failed item.
fn code_of(e: &ControlFileError) -> ErrorCode {
    match e {
        ControlFileError::BadName(_) => ErrorCode::InvalidArgument,
        ControlFileError::Escapes(_) | ControlFileError::MovesProcesses(_) => {
            ErrorCode::PermissionDenied
        }
        ControlFileError::NotFound(_) => ErrorCode::NotFound,
        ControlFileError::Io { source, .. } => match source.raw_os_error() {
            Some(libc::EINVAL | libc::ERANGE | libc::EBUSY) => ErrorCode::InvalidArgument,
            Some(libc::EACCES | libc::EPERM) => ErrorCode::PermissionDenied,
            _ if source.kind() == std::io::ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        },
    }
}

impl Subsystem for Cgroups {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }
}

supervised_actor!(Cgroups);
handles!(Cgroups {
    ReadControlFiles => read,
    WriteControlFiles => write,
});
