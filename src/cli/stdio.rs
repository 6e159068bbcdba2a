//! The caller's standard streams and descriptors passed to a container
//! process, and this command's terminal attached to its pty.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use sandvisor_actors::sys::tty;

use super::error::{io, RunError};

/// Marks every descriptor from `first` up close-on-exec (between fork and
/// exec: async-signal-safe).
pub(super) fn close_from_on_exec(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range with flags only changes descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn dup(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, RunError> {
    fd.try_clone_to_owned()
        .map_err(io("duplicate a standard stream"))
}

/// Duplicates of this command's stdin, stdout and stderr for a process
/// without a terminal (none for one with a terminal), then of its
/// descriptors 3 to 3+`preserve`-1, which the process gets as its own 3,
/// 4, ... (runc's `--preserve-fds`).
pub(super) fn caller_stdio(terminal: bool, preserve: u32) -> Result<Vec<OwnedFd>, RunError> {
    // The copies land above the range passed through, so that none of them
    // is taken for one of its descriptors.
    let floor = 3 + preserve as i32;
    let copy = |raw: i32| -> Result<OwnedFd, std::io::Error> {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor number; it fails with
        // EBADF if nothing is open there.
        let copy = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, floor) };
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(copy) })
    };
    let mut preserved = Vec::new();
    for raw in 3..floor {
        preserved.push(copy(raw).map_err(|e| {
            RunError::Refused(format!(
                "--preserve-fds {preserve}: descriptor {raw} is not open: {e}"
            ))
        })?);
    }
    let mut fds = Vec::new();
    if !terminal {
        for raw in 0..3 {
            fds.push(copy(raw).map_err(io("duplicate a standard stream"))?);
        }
    }
    fds.extend(preserved);
    Ok(fds)
}

/// This command's terminal joined to a container process's pty: raw mode
/// (when stdin is a terminal) and copies both ways.
pub(super) struct AttachedTerminal {
    _raw: Option<tty::RawModeGuard>,
    output: Option<std::thread::JoinHandle<()>>,
}

impl AttachedTerminal {
    /// Attaches to `master`, if the process has a pty.
    pub(super) fn new(master: Option<&OwnedFd>, name: &str) -> Result<AttachedTerminal, RunError> {
        let raw = match master {
            Some(_) if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) => Some(
                tty::make_raw(std::io::stdin().as_fd())
                    .map_err(|e| io("make the terminal raw")(std::io::Error::other(e)))?,
            ),
            _ => None,
        };
        let output = master.map(|m| start_terminal_copies(m, name)).transpose()?;
        Ok(AttachedTerminal { _raw: raw, output })
    }

    /// Lets the last output reach the terminal, then restores it.
    pub(super) fn finish(self) {
        if let Some(output) = self.output {
            let _ = output.join();
        }
    }
}

/// Copies stdin to the pty master and the master to stdout.
fn start_terminal_copies(
    master: &OwnedFd,
    id: &str,
) -> Result<std::thread::JoinHandle<()>, RunError> {
    let mut to_container = std::fs::File::from(dup(master.as_fd())?);
    let mut from_container = std::fs::File::from(dup(master.as_fd())?);
    if let Ok(size) = tty::window_size(std::io::stdin().as_fd()) {
        let _ = tty::set_window_size(master.as_fd(), size);
    }
    std::thread::Builder::new()
        .name(format!("{id}-stdin"))
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .map_err(io("start a thread"))?;
    std::thread::Builder::new()
        .name(format!("{id}-stdout"))
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            // EIO once the container side has closed.
            while let Ok(n) = from_container.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        })
        .map_err(io("start a thread"))
}
