//! The process's descriptors: its standard streams (descriptors or a
//! terminal) and the ones passed through to it.

use std::os::fd::AsFd;

use nix::errno::Errno;

use super::child::{errno_failure, other, Fds, Step};
use super::kernel::Kernel;
use crate::sys::plan::StdioPlan;

/// Puts the passed-through descriptors at 3, 4, ... without close-on-exec.
/// The spawner numbered every descriptor of the plan above them, so none
/// that is still needed is overwritten.
pub(super) fn place_preserved<K: Kernel>(k: &K, preserved: &[usize], fds: &Fds<'_>) -> Step {
    for (n, &index) in preserved.iter().enumerate() {
        let fd = fds.get(index, "preserved descriptor")?;
        let target = 3 + n as i32;
        k.dup2(fd, target)
            .map_err(|e| errno_failure("pass descriptor", target.to_string(), e))?;
    }
    Ok(())
}

pub(super) fn setup_stdio<K: Kernel>(k: &K, stdio: &StdioPlan, fds: &Fds<'_>) -> Step {
    match *stdio {
        StdioPlan::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            // A session (and process group) of its own: signals meant for
            // its group must never reach the supervisor's.
            k.setsid().map_err(|e| errno_failure("setsid", "", e))?;
            // Duplicate all three out of the way first, so that a source
            // that is already 0, 1 or 2 is not clobbered.
            let sources = [
                fds.get(stdin, "stdin")?,
                fds.get(stdout, "stdout")?,
                fds.get(stderr, "stderr")?,
            ];
            let mut moved = Vec::with_capacity(3);
            for fd in sources {
                moved.push(
                    k.dup_above_stdio(fd)
                        .map_err(|e| errno_failure("duplicate stdio", "", e))?,
                );
            }
            for (target, fd) in moved.iter().enumerate() {
                k.dup2(fd.as_fd(), target as i32)
                    .map_err(|e| errno_failure("dup2", target.to_string(), e))?;
            }
            Ok(())
        }
        StdioPlan::NewTerminal { channel, size } => {
            // The container's /dev/ptmx: its devpts is the one that knows
            // the slave, so ttyname and friends work inside.
            let pty = k
                .open_pty(size)
                .map_err(|e| other("allocate terminal", "/dev/ptmx", e.to_string()))?;
            let channel = fds.get(channel, "console channel")?;
            k.send_fd(channel, b"pty", pty.master.as_fd())
                .map_err(|e| {
                    errno_failure(
                        "send terminal",
                        "",
                        Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    )
                })?;
            drop(pty.master);
            k.become_controlling_terminal(pty.slave.as_fd())
                .map_err(|e| other("controlling terminal", "", e.to_string()))
        }
        StdioPlan::Terminal { slave, size } => {
            let slave = fds.get(slave, "terminal")?;
            if let Some(size) = size {
                k.set_window_size(slave, size)
                    .map_err(|e| other("set window size", "", e.to_string()))?;
            }
            k.become_controlling_terminal(slave)
                .map_err(|e| other("controlling terminal", "", e.to_string()))
        }
    }
}
