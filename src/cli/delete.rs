//! `sandvisor delete [--force] ID`: removes a stopped container, as
//! `runc delete`; for a sandbox's root container, the sandbox goes with it
//! (its supervisor is stopped, and what a killed one left behind, its
//! cgroups and socket, is removed).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use sandvisor_actors::api::container::{DestroySubcontainer, Signal as SignalCall, SignalMode};
use sandvisor_actors::sys::cgroup;
use sandvisor_actors::wire::ErrorCode;
use thiserror::Error;

use super::inspect::live_status;
use super::GlobalOptions;
use crate::client::{Client, ClientError};
use crate::state::{Entry, StateDir, StateError, Status};

/// How long a killed container and a stopped supervisor get to go.
const PATIENCE: Duration = Duration::from_secs(10);

/// Arguments of `sandvisor delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it runs (and succeed if it does not exist).
    #[arg(short, long)]
    force: bool,
    /// The container id.
    id: String,
}

/// Why `delete` failed.
#[derive(Debug, Error)]
pub enum DeleteError {
    /// The state directory could not say.
    #[error(transparent)]
    State(#[from] StateError),
    /// It runs, and --force was not given.
    #[error("cannot delete container {0} that is not stopped: {1}")]
    Running(String, &'static str),
    /// The supervisor refused or could not be reached.
    #[error(transparent)]
    Call(#[from] ClientError),
    /// Something outlived the patience.
    #[error("{0}")]
    Stuck(String),
    /// A cgroup directory could not be removed.
    #[error("remove cgroup {path}: {}", .source.to_string().to_lowercase())]
    Cgroup {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Kills and deletes container `id`, if it exists (`delete --force`).
pub(super) fn force_delete(global: &GlobalOptions, id: &str) -> Result<ExitCode, DeleteError> {
    delete(
        global,
        DeleteArgs {
            force: true,
            id: id.to_owned(),
        },
    )
}

/// Deletes the container.
pub fn delete(global: &GlobalOptions, args: DeleteArgs) -> Result<ExitCode, DeleteError> {
    let dir = StateDir::open(&global.root)?;
    let locked = match dir.lock(&args.id) {
        Ok(locked) => locked,
        Err(StateError::NotFound(_)) if args.force => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    };
    let entry = match dir.load(&args.id) {
        Ok(entry) => entry,
        // A directory without an entry (a sandbox being made): not ours.
        Err(StateError::NotFound(_)) if args.force => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    };
    let status = live_status(&entry).0;
    if status != Status::Stopped {
        // A created container is deleted as a stopped one is (as runc
        // does): its held init is killed.
        if matches!(status, Status::Running | Status::Paused) && !args.force {
            return Err(DeleteError::Running(args.id, status.as_str()));
        }
        let killed = Client::connect(&entry.socket)?.invoke(SignalCall {
            cid: args.id.clone(),
            signo: libc::SIGKILL,
            pid: 0,
            mode: SignalMode::AllProcesses,
        });
        match killed {
            // It stopped on its own since its status was read.
            Err(e) if e.code() == Some(ErrorCode::FailedPrecondition) => {}
            other => {
                other?;
            }
        }
        let init_exited = entry.init.is_none_or(|init| init.wait_exit(PATIENCE));
        if !init_exited {
            return Err(DeleteError::Stuck(format!(
                "container {} did not stop",
                args.id
            )));
        }
    }
    if entry.sandbox == entry.id {
        stop_sandbox(&entry)?;
        remove_sandbox_cgroups(&entry.sandbox)?;
    } else if entry.supervisor.is_alive() {
        let destroyed = Client::connect(&entry.socket)?.invoke(DestroySubcontainer {
            cid: args.id.clone(),
        });
        match destroyed {
            // The supervisor does not know it (it restarted, or the
            // sandbox went): only the entry is left.
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {}
            other => {
                other?;
            }
        }
    }
    locked.remove()?;
    Ok(ExitCode::SUCCESS)
}

/// Stops the sandbox's supervisor (which tears its containers down), if it
/// still runs.
fn stop_sandbox(entry: &Entry) -> Result<(), DeleteError> {
    if !entry.supervisor.is_alive() {
        return Ok(());
    }
    let pid = nix::unistd::Pid::from_raw(entry.supervisor.pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if entry.supervisor.wait_exit(PATIENCE) {
        return Ok(());
    }
    Err(DeleteError::Stuck(format!(
        "the supervisor of sandbox {} (pid {}) did not exit",
        entry.sandbox, entry.supervisor.pid
    )))
}

/// Removes what a supervisor killed outright left of its cgroups (the
/// default parent, `sandvisor/<sandbox>`, in every hierarchy), deepest
/// first. A cgroup with processes left in it is an error.
fn remove_sandbox_cgroups(sandbox: &str) -> Result<(), DeleteError> {
    let hierarchies = cgroup::hierarchies().unwrap_or_default();
    for h in hierarchies {
        remove_tree(&h.mount.join("sandvisor").join(sandbox))?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<(), DeleteError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DeleteError::Cgroup {
            path: dir.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}
