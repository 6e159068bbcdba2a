//! `sandvisor kill ID [SIGNAL]`: a signal to a container's init (or, with
//! `--all`, to every process of it), as `runc kill`.

use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use sandvisor_actors::api::container::{Signal as SignalCall, SignalMode};
use thiserror::Error;

use super::GlobalOptions;
use crate::client::{Client, ClientError};
use crate::state::{StateDir, StateError, Status};

/// Arguments of `sandvisor kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    all: bool,
    /// The container id.
    id: String,
    /// A signal name (KILL, SIGKILL) or number; SIGTERM when absent.
    signal: Option<String>,
}

/// Why `kill` failed.
#[derive(Debug, Error)]
pub enum KillError {
    /// The state directory could not say.
    #[error(transparent)]
    State(#[from] StateError),
    /// Not a signal.
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    /// The container has stopped.
    #[error("container not running")]
    NotRunning,
    /// The supervisor refused or could not be reached.
    #[error(transparent)]
    Call(#[from] ClientError),
}

/// Parses a signal as runc does: a number from 0 to 64, or a name with or
/// without its `SIG` prefix, in any case.
pub fn parse_signal(text: &str) -> Result<i32, KillError> {
    if let Ok(number) = text.parse::<i32>() {
        return if (0..=64).contains(&number) {
            Ok(number)
        } else {
            Err(KillError::UnknownSignal(text.to_owned()))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| KillError::UnknownSignal(text.to_owned()))
}

/// Sends the signal through the container's supervisor.
pub fn kill(global: &GlobalOptions, args: KillArgs) -> Result<ExitCode, KillError> {
    let signo = match &args.signal {
        Some(text) => parse_signal(text)?,
        None => libc::SIGTERM,
    };
    let entry = StateDir::open(&global.root)?.load(&args.id)?;
    if entry.status().0 == Status::Stopped {
        return Err(KillError::NotRunning);
    }
    // Signal 0 asks whether the container runs: it does.
    if signo == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let client = Client::connect(&entry.socket)?;
    client.invoke(SignalCall {
        cid: args.id,
        signo,
        pid: 0,
        mode: if args.all {
            SignalMode::AllProcesses
        } else {
            SignalMode::Process
        },
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_runc_parses_them() {
        for (text, signo) in [
            ("KILL", 9),
            ("SIGKILL", 9),
            ("kill", 9),
            ("sigterm", 15),
            ("9", 9),
            ("0", 0),
            ("64", 64),
            ("USR1", libc::SIGUSR1),
            ("WINCH", libc::SIGWINCH),
        ] {
            assert_eq!(parse_signal(text).unwrap(), signo, "{text}");
        }
        for text in ["NOPE", "65", "-1", "", "SIG"] {
            assert_eq!(
                parse_signal(text).unwrap_err().to_string(),
                format!("unknown signal {text:?}")
            );
        }
    }
}
