//! `sandvisor call`: any method, JSON in, JSON out (like `runsc debug`).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use nix::fcntl::{fcntl, FcntlArg};
use serde_json::json;
use thiserror::Error;

use super::json::{to_cbor, to_json};
use crate::client::{Client, ClientError};

/// Arguments of `sandvisor call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Path of the supervisor's control socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Method name, e.g. debug.Stacks.
    method: String,
    /// Arguments as JSON; byte strings are written {"$hex": "..."}.
    #[arg(default_value = "{}")]
    args: String,
    /// Pass this command's descriptor N with the call (repeatable; index 0 first).
    #[arg(long = "fd", value_name = "N")]
    fds: Vec<i32>,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Indent the JSON output.
    #[arg(long)]
    pretty: bool,
}

/// Why a call could not be made (as opposed to the server refusing it).
#[derive(Debug, Error)]
pub enum CallError {
    /// The arguments are not JSON.
    #[error("arguments are not valid JSON: {0}")]
    BadJson(serde_json::Error),
    /// The arguments cannot be turned into CBOR.
    #[error("arguments: {0}")]
    BadArgs(String),
    /// A descriptor to pass is not open.
    #[error("--fd {fd}: {source}")]
    BadFd {
        /// The descriptor number.
        fd: i32,
        /// The error.
        source: nix::Error,
    },
    /// The timeout is not a positive number of seconds.
    #[error("--timeout {0}: must be a positive number of seconds")]
    BadTimeout(f64),
    /// The call failed on the client side.
    #[error(transparent)]
    Client(ClientError),
}

fn duplicate(fd: i32) -> Result<OwnedFd, CallError> {
    // SAFETY: the descriptor is only borrowed for the fcntl that duplicates
    // it; if it is not open, fcntl fails with EBADF and nothing else happens.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let dup = fcntl(borrowed, FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|source| CallError::BadFd { fd, source })?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) })
}

/// Makes the call and prints `{"ok": ...}` (exit 0) or `{"err": ...}` (exit 1).
pub fn run(args: CallArgs) -> Result<ExitCode, CallError> {
    let json: serde_json::Value = serde_json::from_str(&args.args).map_err(CallError::BadJson)?;
    let cbor = to_cbor(&json).map_err(CallError::BadArgs)?;
    let fds = args
        .fds
        .iter()
        .map(|&fd| duplicate(fd))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = match args.timeout {
        Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(CallError::BadTimeout(s)),
        None => None,
    };
    let client = Client::connect(&args.socket).map_err(CallError::Client)?;
    let result = match timeout {
        Some(t) => client.call_timeout(&args.method, &cbor, fds, t),
        None => client.call(&args.method, &cbor, fds),
    };
    let (output, code) = match result {
        Ok((value, fds)) => {
            let mut out = json!({ "ok": to_json(&value) });
            if !fds.is_empty() {
                out["fds"] = json!(fds.len());
            }
            (out, ExitCode::SUCCESS)
        }
        Err(ClientError::Rpc(e)) => (
            json!({ "err": { "code": e.code.as_str(), "message": e.message } }),
            ExitCode::FAILURE,
        ),
        Err(e) => return Err(CallError::Client(e)),
    };
    let text = if args.pretty {
        serde_json::to_string_pretty(&output)
    } else {
        serde_json::to_string(&output)
    };
    println!("{}", text.unwrap_or_default());
    Ok(code)
}
