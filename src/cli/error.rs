//! The error of `run`, `create`, `start` and the commands that share
//! their plumbing.

use thiserror::Error;

use crate::client::ClientError;
use crate::state::StateError;

/// Why `run`, `create` or `start` failed (for `run`, before the
/// container's status was known).
#[derive(Debug, Error)]
pub enum RunError {
    /// The id is not acceptable.
    #[error(
        "invalid id {0:?}: use 1 to 1024 letters, digits, '_', '+', '-' or '.', not only dots"
    )]
    BadId(String),
    /// config.json could not be read or parsed.
    #[error("invalid {path}: {detail}")]
    BadConfig {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The supervisor could not be started.
    #[error("start the supervisor: {0}")]
    Supervisor(String),
    /// A call to the supervisor failed.
    #[error("{0}")]
    Call(#[from] ClientError),
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// The command does not apply to the container as it is (runc's words).
    #[error("{0}")]
    Refused(String),
    /// A flag or spec feature this runtime does not have.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The process could not be started; `code` is the exit status to
    /// give, as shells give it (127: no such program, 126: not executable).
    #[error("exec failed: {source}")]
    Exec {
        /// The exit status.
        code: u8,
        /// Why.
        source: ClientError,
    },
    /// Local plumbing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

pub(super) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { what, source }
}
