//! Pseudo-terminals for container processes: allocating a pty pair, window
//! sizes, making the slave the controlling terminal and stdio of a freshly
//! forked child, handing the master to a caller over runc's console-socket
//! protocol, and raw mode for the user's own terminal.
//!
//! The supervisor allocates the pair; the slave goes to the child that
//! becomes the container's process, the master to whoever asked for the
//! terminal (in the reply frame, or over a `--console-socket`).

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::pty;
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};
use thiserror::Error;

use super::socket::{recv_with_fds, send_with_fds, ControlBuffer};

/// The data bytes of the console-socket message, sent alongside the master.
///
/// runc sends the name of its master `*os.File`, and that file is always
/// opened as `/dev/ptmx` (containerd's console package); the name of the
/// slave is never sent. Receivers (go-runc's `ReceiveMaster` in the
/// containerd shim, runc's `recvtty`) ignore the text but require exactly one
/// descriptor and fewer than 4096 data bytes, and a stream socket carries no
/// descriptor without at least one data byte.
pub const CONSOLE_SOCKET_MESSAGE: &[u8] = b"/dev/ptmx";

/// Longest message body a console-socket receiver accepts (runc's limit).
const CONSOLE_MESSAGE_CAPACITY: usize = 4096;

/// Why a terminal operation failed.
#[derive(Debug, Error)]
pub enum TtyError {
    /// Allocating, granting, unlocking or naming the pty master failed.
    #[error("{op} pty master: {source}")]
    Master {
        /// What was being done.
        op: &'static str,
        /// The error.
        source: Errno,
    },
    /// The slave side could not be opened.
    #[error("open pty slave {path:?}: {source}")]
    OpenSlave {
        /// The slave's path, from `ptsname_r`.
        path: PathBuf,
        /// The error.
        source: Errno,
    },
    /// A terminal ioctl or termios call failed.
    #[error("{op} on fd {fd}: {source}")]
    Terminal {
        /// The call (`TIOCSWINSZ`, `tcgetattr`, ...).
        op: &'static str,
        /// On which descriptor.
        fd: RawFd,
        /// The error.
        source: Errno,
    },
    /// A step of [`become_controlling_terminal`] failed. Built without
    /// allocating, so it is safe to produce in a forked child.
    #[error("make pty slave fd {slave} the controlling terminal: {step} (fd {fd}): {source}")]
    ControllingTerminal {
        /// The slave descriptor.
        slave: RawFd,
        /// `setsid`, `TIOCSCTTY`, `dup2` or `clear close-on-exec`.
        step: &'static str,
        /// The descriptor the step acted on.
        fd: RawFd,
        /// The error.
        source: Errno,
    },
    /// Connecting to the console socket failed.
    #[error("connect to console socket {path:?}: {source}")]
    ConsoleConnect {
        /// The socket's path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Sending the master over the console socket failed.
    #[error("send pty master over console socket {path:?}: {source}")]
    ConsoleSend {
        /// The socket's path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The console socket took only part of the message.
    #[error("console socket {path:?} took {sent} of {len} bytes")]
    ConsoleShortSend {
        /// The socket's path.
        path: PathBuf,
        /// Bytes written.
        sent: usize,
        /// Bytes offered.
        len: usize,
    },
    /// Accepting a connection on the console socket failed.
    #[error("accept on console socket: {0}")]
    ConsoleAccept(io::Error),
    /// Receiving from a console-socket connection failed.
    #[error("receive from console socket: {0}")]
    ConsoleReceive(io::Error),
    /// The peer's message did not carry exactly one descriptor.
    #[error("console socket message has {len} bytes and {fds} descriptors (control data truncated: {truncated}); expected one descriptor")]
    ConsoleMessage {
        /// Data bytes received.
        len: usize,
        /// Descriptors received (all closed again).
        fds: usize,
        /// Whether the kernel dropped descriptors (`MSG_CTRUNC`).
        truncated: bool,
    },
    /// The descriptor received over the console socket is not a terminal.
    #[error("descriptor received over console socket is not a terminal: {0}")]
    NotATerminal(Errno),
    /// Duplicating a terminal descriptor failed.
    #[error("duplicate terminal fd {fd}: {source}")]
    Duplicate {
        /// The descriptor.
        fd: RawFd,
        /// The error.
        source: io::Error,
    },
}

fn terminal_err(op: &'static str, fd: BorrowedFd<'_>) -> impl FnOnce(Errno) -> TtyError {
    let fd = fd.as_raw_fd();
    move |source| TtyError::Terminal { op, fd, source }
}

fn master_err(op: &'static str) -> impl FnOnce(Errno) -> TtyError {
    move |source| TtyError::Master { op, source }
}

/// A pseudo-terminal pair, both ends close-on-exec and neither a
/// controlling terminal of this process.
#[derive(Debug)]
pub struct Pty {
    /// The master: what the caller reads the container's output from and
    /// writes its input to.
    pub master: OwnedFd,
    /// The slave: the container process's terminal.
    pub slave: OwnedFd,
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Opens a new pty pair: `posix_openpt` (`O_RDWR | O_NOCTTY | O_CLOEXEC`),
/// `grantpt`, `unlockpt`, `ptsname_r`, then opens the slave with the same
/// flags. The window size is set when one is given; otherwise it is the
/// kernel's default (0 by 0).
pub fn open_pty(size: Option<WindowSize>) -> Result<Pty, TtyError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = pty::posix_openpt(flags).map_err(master_err("open"))?;
    pty::grantpt(&master).map_err(master_err("grant"))?;
    pty::unlockpt(&master).map_err(master_err("unlock"))?;
    let name = pty::ptsname_r(&master).map_err(master_err("name slave of"))?;
    let path = PathBuf::from(name);
    let slave = fcntl::open(path.as_path(), flags, Mode::empty())
        .map_err(|source| TtyError::OpenSlave { path, source })?;
    let master = OwnedFd::from(master);
    if let Some(size) = size {
        set_window_size(master.as_fd(), size)?;
    }
    Ok(Pty { master, slave })
}

/// Sets the window size of the terminal `fd` (either end of a pty pair);
/// when the size changes, the terminal's foreground process group gets
/// `SIGWINCH`.
pub fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> Result<(), TtyError> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer,
    // which points at a live, initialised local for the whole call; `fd` is
    // borrowed and therefore open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if rc < 0 {
        return Err(terminal_err("TIOCSWINSZ", fd)(Errno::last()));
    }
    Ok(())
}

/// Reads the window size of the terminal `fd`.
pub fn window_size(fd: BorrowedFd<'_>) -> Result<WindowSize, TtyError> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points at a live local exclusively borrowed for the call; `fd`
    // is borrowed and therefore open.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if rc < 0 {
        return Err(terminal_err("TIOCGWINSZ", fd)(Errno::last()));
    }
    Ok(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Makes `slave` the controlling terminal and stdio of the calling process:
/// `setsid()`, `TIOCSCTTY` on the slave (without stealing it from another
/// session), then the slave onto descriptors 0, 1 and 2 without
/// close-on-exec.
///
/// For a child just forked from the supervisor, before `exec`: it uses only
/// async-signal-safe system calls and never allocates, errors included. The
/// calling process must not be a process-group leader (a forked child never
/// is). The original `slave` descriptor is left open; it is close-on-exec.
pub fn become_controlling_terminal(slave: BorrowedFd<'_>) -> Result<(), TtyError> {
    let fd = slave.as_raw_fd();
    let fail = |step: &'static str, target: RawFd| TtyError::ControllingTerminal {
        slave: fd,
        step,
        fd: target,
        source: Errno::last(),
    };
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } < 0 {
        return Err(fail("setsid", fd));
    }
    let no_steal: libc::c_int = 0;
    // SAFETY: TIOCSCTTY takes an int by value; `fd` is borrowed and open.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, no_steal) } < 0 {
        return Err(fail("TIOCSCTTY", fd));
    }
    for target in 0..=2 {
        if target == fd {
            // dup2 onto itself would keep close-on-exec: clear it by hand.
            // SAFETY: F_GETFD/F_SETFD only read and write the descriptor
            // flags of `fd`, which is open.
            let cleared = unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) >= 0
            };
            if !cleared {
                return Err(fail("clear close-on-exec", fd));
            }
            continue;
        }
        loop {
            // SAFETY: dup2 of an open descriptor onto 0, 1 or 2. Replacing
            // the process's stdio is the purpose of this call: whatever was
            // there is closed atomically, and the new descriptor has no
            // close-on-exec flag.
            if unsafe { libc::dup2(fd, target) } >= 0 {
                break;
            }
            match Errno::last() {
                // EBUSY: a racing open() held the target number (Linux).
                Errno::EINTR | Errno::EBUSY => continue,
                _ => return Err(fail("dup2", target)),
            }
        }
    }
    Ok(())
}

/// runc's console-socket protocol: connects to the Unix stream socket at
/// `path` and sends `master` with `SCM_RIGHTS` in one `sendmsg` whose data
/// is [`CONSOLE_SOCKET_MESSAGE`], as runc does, so that containerd's shim
/// and `recvtty` accept it. The connection is closed on return.
pub fn send_to_console_socket(path: &Path, master: BorrowedFd<'_>) -> Result<(), TtyError> {
    let stream = crate::sys::socket::connect(path).map_err(|source| TtyError::ConsoleConnect {
        path: path.to_owned(),
        source,
    })?;
    let sent = send_with_fds(
        stream.as_fd(),
        &[IoSlice::new(CONSOLE_SOCKET_MESSAGE)],
        &[master],
        false,
    )
    .map_err(|source| TtyError::ConsoleSend {
        path: path.to_owned(),
        source,
    })?;
    if sent != CONSOLE_SOCKET_MESSAGE.len() {
        return Err(TtyError::ConsoleShortSend {
            path: path.to_owned(),
            sent,
            len: CONSOLE_SOCKET_MESSAGE.len(),
        });
    }
    Ok(())
}

/// The receiving side of the console-socket protocol: accepts one
/// connection on `listener` (blocking, unless the listener is non-blocking,
/// in which case no pending connection is an error), receives one message
/// and returns its single descriptor, close-on-exec, after checking that
/// it is a terminal. The message text is not interpreted.
pub fn receive_from_console_socket(listener: &UnixListener) -> Result<OwnedFd, TtyError> {
    let (stream, _) = listener.accept().map_err(TtyError::ConsoleAccept)?;
    let mut buf = [0u8; CONSOLE_MESSAGE_CAPACITY];
    let mut control = ControlBuffer::default();
    let got = recv_with_fds(stream.as_fd(), &mut buf, &mut control, false)
        .map_err(TtyError::ConsoleReceive)?;
    let count = got.fds.len();
    let mut fds = got.fds.into_iter();
    // Any extra descriptors are closed when `fds` is dropped.
    let fd = match (fds.next(), fds.next(), got.truncated) {
        (Some(fd), None, false) => fd,
        _ => {
            return Err(TtyError::ConsoleMessage {
                len: got.len,
                fds: count,
                truncated: got.truncated,
            })
        }
    };
    termios::tcgetattr(&fd).map_err(TtyError::NotATerminal)?;
    Ok(fd)
}

/// Restores a terminal's previous settings when dropped; see [`make_raw`].
#[derive(Debug)]
pub struct RawModeGuard {
    /// A duplicate of the terminal descriptor, so the guard stays valid
    /// whatever happens to the caller's descriptor.
    fd: OwnedFd,
    /// The settings to put back.
    original: Termios,
    /// Whether the settings still need restoring.
    armed: bool,
}

impl RawModeGuard {
    /// The terminal's settings from before [`make_raw`].
    pub fn original(&self) -> &Termios {
        &self.original
    }

    /// Restores the previous settings now, reporting failure (dropping the
    /// guard does the same but ignores errors).
    pub fn restore(mut self) -> Result<(), TtyError> {
        self.armed = false;
        termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.original)
            .map_err(terminal_err("tcsetattr", self.fd.as_fd()))
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        if self.armed {
            // Nothing useful can be done about a failure while dropping.
            let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.original);
        }
    }
}

/// Puts the terminal `fd` into raw mode (`cfmakeraw`: no line editing, no
/// echo, no signal characters, no output processing, reads return each
/// byte as it arrives) and returns a guard that restores the previous
/// settings when dropped. Used by `sandvisor run --tty` on the user's
/// terminal.
pub fn make_raw(fd: BorrowedFd<'_>) -> Result<RawModeGuard, TtyError> {
    let original = termios::tcgetattr(fd).map_err(terminal_err("tcgetattr", fd))?;
    let mut raw = original.clone();
    termios::cfmakeraw(&mut raw);
    let dup = fd
        .try_clone_to_owned()
        .map_err(|source| TtyError::Duplicate {
            fd: fd.as_raw_fd(),
            source,
        })?;
    termios::tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(terminal_err("tcsetattr", fd))?;
    Ok(RawModeGuard {
        fd: dup,
        original,
        armed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    use std::time::{Duration, Instant};

    /// Reads exactly `want` bytes, failing the test after five seconds.
    fn read_exactly(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        while out.len() < want {
            assert!(
                Instant::now() < deadline,
                "timed out with {out:?} of {want} bytes"
            );
            if !readable_within(fd, 100) {
                continue;
            }
            let mut buf = [0u8; 256];
            let n = nix::unistd::read(fd, &mut buf[..want - out.len()]).unwrap();
            assert_ne!(n, 0, "end of file after {out:?}");
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn readable_within(fd: BorrowedFd<'_>, millis: u16) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(millis)).unwrap() > 0
    }

    fn write_all(fd: BorrowedFd<'_>, bytes: &[u8]) {
        assert_eq!(nix::unistd::write(fd, bytes).unwrap(), bytes.len());
    }

    #[test]
    fn open_pty_sets_the_size_seen_from_both_ends() {
        let size = WindowSize { rows: 24, cols: 80 };
        let pty = open_pty(Some(size)).unwrap();
        assert_eq!(window_size(pty.master.as_fd()).unwrap(), size);
        assert_eq!(window_size(pty.slave.as_fd()).unwrap(), size);
        assert!(nix::unistd::isatty(&pty.slave).unwrap());

        let unsized_pty = open_pty(None).unwrap();
        assert_eq!(
            window_size(unsized_pty.slave.as_fd()).unwrap(),
            WindowSize { rows: 0, cols: 0 }
        );
    }

    #[test]
    fn set_window_size_changes_what_window_size_reports() {
        let pty = open_pty(Some(WindowSize { rows: 24, cols: 80 })).unwrap();
        let bigger = WindowSize {
            rows: 50,
            cols: 200,
        };
        set_window_size(pty.master.as_fd(), bigger).unwrap();
        assert_eq!(window_size(pty.slave.as_fd()).unwrap(), bigger);
        assert_eq!(window_size(pty.master.as_fd()).unwrap(), bigger);

        let file = tempfile::tempfile().unwrap();
        assert!(matches!(
            window_size(file.as_fd()),
            Err(TtyError::Terminal {
                op: "TIOCGWINSZ",
                source: Errno::ENOTTY,
                ..
            })
        ));
    }

    #[test]
    fn bytes_cross_in_cooked_mode_and_single_bytes_in_raw_mode() {
        let pty = open_pty(None).unwrap();
        let (master, slave) = (pty.master.as_fd(), pty.slave.as_fd());

        // Slave to master: the default ONLCR turns "\n" into "\r\n".
        write_all(slave, b"ok\n");
        assert_eq!(read_exactly(master, 4), b"ok\r\n");

        // Master to slave, cooked: nothing until the line ends, then the
        // whole line; the line discipline echoes it back to the master.
        write_all(master, b"hi");
        assert!(!readable_within(slave, 100));
        write_all(master, b"\n");
        assert_eq!(read_exactly(slave, 3), b"hi\n");
        assert_eq!(read_exactly(master, 4), b"hi\r\n");

        // Raw: one byte passes at once, and is not echoed.
        let before = termios::tcgetattr(slave).unwrap();
        let guard = make_raw(slave).unwrap();
        assert_eq!(guard.original(), &before);
        write_all(master, b"x");
        assert_eq!(read_exactly(slave, 1), b"x");
        assert!(!readable_within(master, 100));

        drop(guard);
        assert_eq!(termios::tcgetattr(slave).unwrap(), before);
        make_raw(slave).unwrap().restore().unwrap();
        assert_eq!(termios::tcgetattr(slave).unwrap(), before);

        let file = tempfile::tempfile().unwrap();
        assert!(matches!(
            make_raw(file.as_fd()),
            Err(TtyError::Terminal {
                op: "tcgetattr",
                ..
            })
        ));
    }

    #[test]
    fn console_socket_round_trip_hands_over_the_same_pty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pty = open_pty(None).unwrap();

        let received = std::thread::scope(|s| {
            let sender = s.spawn(|| send_to_console_socket(&path, pty.master.as_fd()));
            let received = receive_from_console_socket(&listener);
            sender.join().unwrap().unwrap();
            received.unwrap()
        });
        // Only our own master is left: the received descriptor is it.
        drop(pty.master);
        write_all(received.as_fd(), b"ping\n");
        assert_eq!(read_exactly(pty.slave.as_fd(), 5), b"ping\n");
    }

    #[test]
    fn console_socket_message_is_what_runc_sends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pty = open_pty(None).unwrap();
        send_to_console_socket(&path, pty.master.as_fd()).unwrap();

        let (stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; CONSOLE_MESSAGE_CAPACITY];
        let mut control = ControlBuffer::default();
        let got = recv_with_fds(stream.as_fd(), &mut buf, &mut control, false).unwrap();
        assert_eq!(&buf[..got.len], b"/dev/ptmx");
        assert_eq!((got.fds.len(), got.truncated), (1, false));
    }

    #[test]
    fn console_socket_refuses_messages_without_one_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();

        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        send_with_fds(client.as_fd(), &[IoSlice::new(b"x")], &[], false).unwrap();
        assert!(matches!(
            receive_from_console_socket(&listener),
            Err(TtyError::ConsoleMessage { len: 1, fds: 0, .. })
        ));

        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let file = tempfile::tempfile().unwrap();
        send_with_fds(
            client.as_fd(),
            &[IoSlice::new(b"x")],
            &[file.as_fd()],
            false,
        )
        .unwrap();
        assert!(matches!(
            receive_from_console_socket(&listener),
            Err(TtyError::NotATerminal(Errno::ENOTTY))
        ));
    }

    /// Runs in the forked child: async-signal-safe calls only, no
    /// allocation. Returns the exit code.
    fn check_controlling_terminal(slave: BorrowedFd<'_>) -> i32 {
        if become_controlling_terminal(slave).is_err() {
            return 10;
        }
        // SAFETY: plain system calls on descriptors 0 to 2 and the slave,
        // writing only into the local stat buffers.
        unsafe {
            for fd in 0..=2 {
                if libc::isatty(fd) != 1 {
                    return 11;
                }
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
                    return 12;
                }
                let mut ours: libc::stat = std::mem::zeroed();
                let mut theirs: libc::stat = std::mem::zeroed();
                if libc::fstat(fd, &mut ours) != 0
                    || libc::fstat(slave.as_raw_fd(), &mut theirs) != 0
                    || ours.st_rdev != theirs.st_rdev
                {
                    return 13;
                }
            }
            let sid = libc::getsid(0);
            if sid != libc::getpid() || libc::tcgetsid(0) != sid {
                return 14;
            }
        }
        0
    }

    #[test]
    fn become_controlling_terminal_in_a_forked_child() {
        // Opened before forking: the test binary is multi-threaded, so the
        // child may only make async-signal-safe calls.
        let pty = open_pty(Some(WindowSize { rows: 24, cols: 80 })).unwrap();
        // SAFETY: the child runs only `check_controlling_terminal`, which
        // makes async-signal-safe calls and does not allocate, then _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = check_controlling_terminal(pty.slave.as_fd());
                // SAFETY: _exit ends the child without running the parent's
                // atexit handlers or destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }
}
