//! Why a container call fails: [`ContainerError`] and its conversions.

use std::path::Path;

use thiserror::Error;

use crate::container::spec::SpecError;
use crate::sys::cgroup_writes::LimitError;
use crate::sys::device_filter::DeviceFilterError;
use crate::sys::plan::ChildFailure;
use crate::sys::spawn::resident::ResidentError;
use crate::sys::spawn::SpawnError;
use crate::sys::tty;

/// Why a container call failed.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// The container id is not acceptable.
    #[error("invalid container id {0:?}: use 1 to 1024 letters, digits, '_', '+', '-' or '.', not only dots")]
    BadId(String),
    /// No container has that id.
    #[error("no container {0:?}")]
    NotFound(String),
    /// The id is taken.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// The sandbox already has its root container.
    #[error("the sandbox already has a root container ({0:?})")]
    RootExists(String),
    /// The spec cannot be run.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The call carries the wrong number of descriptors.
    #[error("{method} needs {expected} descriptors ({what}), got {got}")]
    FdCount {
        /// The method.
        method: &'static str,
        /// How many it needs.
        expected: usize,
        /// What they are.
        what: &'static str,
        /// How many came.
        got: usize,
    },
    /// A host resource could not be set up.
    #[error("{what} {path}: {source}")]
    Host {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Device rules could not be put in force on cgroup v2.
    #[error(transparent)]
    Devices(#[from] DeviceFilterError),
    /// A resource limit was refused (what was changed is put back).
    #[error("apply resources to cgroup {cgroup}: {source}")]
    Limits {
        /// The cgroup, relative to the hierarchies' roots.
        cgroup: String,
        /// The refusal, naming the controller, or the file and the value.
        source: LimitError,
    },
    /// The spawner could not clone the process.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A setup step of the child failed.
    #[error("{step} {path:?}: {message}{}", errno_suffix(*errno))]
    Child {
        /// The step.
        step: String,
        /// The path.
        path: String,
        /// The errno.
        errno: i32,
        /// What failed.
        message: String,
    },
    /// A terminal could not be set up.
    #[error(transparent)]
    Tty(#[from] tty::TtyError),
    /// A signal number out of range.
    #[error("invalid signal {0}: signals are 1 to 64")]
    BadSignal(i32),
    /// The container's init has exited (or has not started).
    #[error("container {0:?} is not running")]
    NotRunning(String),
    /// No process with that pid in the container.
    #[error("no process {pid} in container {cid:?}")]
    NoSuchProcess {
        /// The container.
        cid: String,
        /// The pid, in the container's pid namespace.
        pid: i32,
    },
    /// A mode that needs pid 0 got another.
    #[error("signal mode all_processes takes pid 0, got {0}")]
    PidWithAll(i32),
    /// The process has no controlling terminal.
    #[error("process {0} has no controlling terminal")]
    NoTerminal(i32),
    /// A subcontainer needs a running root container.
    #[error("the sandbox has no running root container")]
    NoRoot,
    /// The subcontainer was started already.
    #[error("container {0:?} was started already")]
    AlreadyStarted(String),
    /// Resume needs a paused container.
    #[error("container {0:?} is not paused")]
    NotPaused(String),
    /// A whole-sandbox pause or resume found nothing to change.
    #[error("the sandbox has no {0} container")]
    NoneInPhase(&'static str),
    /// Start needs a created container.
    #[error("cannot start container {cid:?}: it is {status}, not created")]
    NotCreated {
        /// The container.
        cid: String,
        /// Its status.
        status: &'static str,
    },
    /// The root container goes with the sandbox.
    #[error("container {0:?} is the root container: it is destroyed with the sandbox")]
    DestroyRoot(String),
    /// A caller's process ended, but the status went to the subreaper
    /// that reaped it.
    #[error("the exit status of pid {0} went to the subreaper that reaped it, and this kernel (before linux 6.15) keeps none for others")]
    StatusUnknown(i32),
    /// Sending the signal failed.
    #[error("send signal {signo} to {target}: {source}")]
    Kill {
        /// The signal.
        signo: i32,
        /// Whom.
        target: String,
        /// The error.
        source: nix::Error,
    },
}

impl ContainerError {
    pub(super) fn host(what: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ContainerError::Host {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl From<ResidentError> for ContainerError {
    fn from(e: ResidentError) -> Self {
        match e {
            ResidentError::Host { what, source } => ContainerError::Host {
                what: "start the resident spawner:",
                path: what,
                source,
            },
            ResidentError::Spawn(e) => ContainerError::Spawn(e),
            ResidentError::Setup(f) => f.into(),
        }
    }
}

impl From<ChildFailure> for ContainerError {
    fn from(f: ChildFailure) -> Self {
        ContainerError::Child {
            step: f.step,
            path: f.path,
            errno: f.errno,
            message: f.message,
        }
    }
}

/// ` (errno N)` after a child's failure message, where there is an errno.
fn errno_suffix(errno: i32) -> String {
    if errno == 0 {
        String::new()
    } else {
        format!(" (errno {errno})")
    }
}
