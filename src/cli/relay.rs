//! `sandvisor relay-exit` (internal): a process that stands for a
//! container's init (or an exec'd process) where the caller expects one of
//! its own descendants. containerd's shim and conmon are subreapers that
//! learn how a container ended by reaping the pid in `--pid-file`; the
//! real init is the supervisor's child, so `create` and `exec -d` leave
//! this relay behind instead. It waits for the process through the
//! supervisor, forwards the signals it gets, and ends as the process did.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use sandvisor_actors::api::container::{Wait, WaitPid};
use sandvisor_actors::sys::process::WaitStatus;

use super::run::{forward_signals, FORWARDED};
use crate::client::Client;

/// Arguments of `sandvisor relay-exit`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The supervisor's control socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// The container.
    #[arg(long)]
    cid: String,
    /// An exec'd process (its pid in the container); absent: the init.
    #[arg(long)]
    pid: Option<i32>,
}

/// Waits for the process, then ends the same way.
pub fn relay(args: RelayArgs) -> ExitCode {
    let mut forwarded = SigSet::empty();
    for s in FORWARDED {
        forwarded.add(s);
    }
    // Before any thread exists, so that every thread has them blocked.
    if forwarded.thread_block().is_err() {
        return ExitCode::FAILURE;
    }
    let status = Client::connect(&args.socket).and_then(|client| {
        forward_signals(
            client.clone(),
            args.cid.clone(),
            args.pid.unwrap_or(0),
            forwarded,
            None,
        );
        match args.pid {
            None => client.invoke(Wait { cid: args.cid }),
            Some(pid) => client.invoke(WaitPid { cid: args.cid, pid }),
        }
    });
    match status {
        Ok(reply) => end_as(WaitStatus(reply.status)),
        // The supervisor is gone, and its containers with it.
        Err(_) => end_as(WaitStatus::signaled(libc::SIGKILL, false)),
    }
}

/// Exits as `status` says: with its code, or killed by its signal.
fn end_as(status: WaitStatus) -> ExitCode {
    if let Some(code) = status.exit_code() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if let Some(signo) = status.signal() {
        if let Ok(signal) = Signal::try_from(signo) {
            // SAFETY: resetting a disposition to the default has no
            // preconditions.
            let _ =
                unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
            let mut one = SigSet::empty();
            one.add(signal);
            let _ = one.thread_unblock();
            let _ = nix::sys::signal::raise(signal);
        }
    }
    // A signal whose default is to be ignored: the shell's convention.
    ExitCode::from(status.shell_code().clamp(0, 255) as u8)
}
