//! Signals this command takes and forwards to a container process.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use sandvisor_actors::api::container::{Signal as SignalCall, SignalMode};
use sandvisor_actors::sys::tty;
use sandvisor_actors::wire::ErrorCode;

use crate::client::{Client, ClientError};

/// The signals forwarded to the container.
pub(super) const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Forwards blocked signals to process `pid` of the container (0: its
/// init); SIGWINCH resizes the container's terminal.
pub(super) fn forward_signals(
    client: Client,
    cid: String,
    pid: i32,
    set: SigSet,
    master: Option<OwnedFd>,
) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else { return };
            if signal == Signal::SIGWINCH {
                if let (Some(master), Ok(size)) =
                    (&master, tty::window_size(std::io::stdin().as_fd()))
                {
                    let _ = tty::set_window_size(master.as_fd(), size);
                }
                continue;
            }
            let call = SignalCall {
                cid: cid.clone(),
                signo: signal as i32,
                pid,
                mode: SignalMode::Process,
            };
            if let Err(ClientError::Rpc(e)) = client.invoke(call) {
                if e.code != ErrorCode::FailedPrecondition {
                    eprintln!("sandvisor: forward {signal}: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("sandvisor: signals will not be forwarded: {e}");
    }
}
