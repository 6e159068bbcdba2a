//! Unix stream sockets: the control socket's creation, accepting, peer
//! credentials, and sending and receiving bytes with `SCM_RIGHTS`.

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{umask, Mode};
use thiserror::Error;
use tokio::io::unix::AsyncFd;

/// Why the control socket could not be set up.
#[derive(Debug, Error)]
pub enum SocketError {
    /// The socket path does not fit in `sockaddr_un`, even through a
    /// descriptor of its directory.
    #[error("socket path {path:?} is too long ({len} bytes, at most 107, and its file name too long to reach through its directory)")]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The path has no parent directory or no file name.
    #[error("socket path {0:?} must name a file in a directory")]
    BadPath(PathBuf),
    /// The parent directory could be read by others.
    #[error("socket directory {dir:?} has mode {mode:04o} and owner uid {uid}; it must be 0700 and owned by uid {expected_uid}")]
    UnsafeDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// The uid it must belong to.
        expected_uid: u32,
    },
    /// Something other than a stale socket is at the path.
    #[error("{0:?} exists and is not a socket")]
    NotASocket(PathBuf),
    /// A live server already listens there.
    #[error("another server is listening on {0:?}")]
    InUse(PathBuf),
    /// A system call failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SocketError + 'p {
    move |source| SocketError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Creates the listening control socket at `path`: mode 0600 in a
/// directory of mode 0700 owned by this uid (created if missing). A stale
/// socket file left by a dead server is replaced; a live one is refused.
pub fn bind_control_socket(path: &Path) -> Result<OwnedFd, SocketError> {
    let dir = match (path.parent(), path.file_name()) {
        (Some(dir), Some(_)) if !dir.as_os_str().is_empty() => dir,
        _ => return Err(SocketError::BadPath(path.to_owned())),
    };
    prepare_private_dir(dir)?;
    remove_stale_socket(path)?;

    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| io_err("create socket for", path)(e.into()))?;
    let short = SocketPath::new(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => SocketError::PathTooLong {
            path: path.to_owned(),
            len: path.as_os_str().len(),
        },
        _ => io_err("open the directory of", path)(e),
    })?;
    let addr = UnixAddr::new(short.path()).map_err(|e| io_err("address", path)(e.into()))?;
    // The directory already keeps others out; the umask closes the window
    // between bind and chmod for anyone who shares our uid's groups.
    let old_mask = umask(Mode::from_bits_truncate(0o177));
    let bound = socket::bind(fd.as_raw_fd(), &addr);
    umask(old_mask);
    bound.map_err(|e| io_err("bind", path)(e.into()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod", path))?;
    let backlog = Backlog::new(1024).unwrap_or(Backlog::MAXCONN);
    socket::listen(&fd, backlog).map_err(|e| io_err("listen on", path)(e.into()))?;
    Ok(fd)
}

fn prepare_private_dir(dir: &Path) -> Result<(), SocketError> {
    let uid = nix::unistd::geteuid().as_raw();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err("create directory", dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err("chmod", dir))
        }
        Err(e) => Err(io_err("stat", dir)(e)),
        Ok(meta) => {
            let mode = meta.mode() & 0o7777;
            if meta.uid() != uid || mode & 0o077 != 0 {
                return Err(SocketError::UnsafeDirectory {
                    dir: dir.to_owned(),
                    mode,
                    uid: meta.uid(),
                    expected_uid: uid,
                });
            }
            Ok(())
        }
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), SocketError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("stat", path)(e)),
        Ok(meta) if !meta.file_type().is_socket() => Err(SocketError::NotASocket(path.to_owned())),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => Err(SocketError::InUse(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io_err("remove stale socket", path))
            }
            Err(e) => Err(io_err("probe", path)(e)),
        },
    }
}

/// Registers a descriptor with the current runtime's reactor. `T` must own
/// its descriptor (`OwnedFd`, `Arc<OwnedFd>`).
pub fn register_async<T: AsRawFd + OwnsFd>(fd: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `OwnsFd` types keep their descriptor open, naming the same
    // file description, until they are dropped, and the AsyncFd drops them
    // only after deregistering.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// The longest path a `sockaddr_un` holds, without its nul.
const SUN_PATH_MAX: usize = 107;

/// A path that names a socket and fits in a `sockaddr_un`: the path itself
/// where it fits; else its file name under a descriptor of its directory,
/// `/proc/self/fd/N/NAME`, held open as long as this lives. Any directory
/// the filesystem accepts can then hold a socket (a container engine's
/// state root can be long).
#[derive(Debug)]
pub struct SocketPath {
    path: PathBuf,
    _dir: Option<OwnedFd>,
}

impl SocketPath {
    /// The short path for the socket at `path`; `InvalidInput` when even
    /// the file name does not fit.
    pub fn new(path: &Path) -> io::Result<SocketPath> {
        if path.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(SocketPath {
                path: path.to_owned(),
                _dir: None,
            });
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let dir: OwnedFd = std::fs::File::open(parent)?.into();
        let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
        if short.as_os_str().len() > SUN_PATH_MAX {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        Ok(SocketPath {
            path: short,
            _dir: Some(dir),
        })
    }

    /// The path to bind or connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Connects to the Unix socket at `path`, however long.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    let short = SocketPath::new(path)?;
    UnixStream::connect(short.path())
}

/// Marks types that own the descriptor they expose.
pub trait OwnsFd {}
impl OwnsFd for OwnedFd {}
impl OwnsFd for std::sync::Arc<OwnedFd> {}

/// Accepts one connection, non-blocking and close-on-exec.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    socket::accept4(listener, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)
        .map_err(io::Error::from)
}

/// The credentials of a connected peer, as the kernel recorded them at
/// connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Reads `SO_PEERCRED`.
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCredentials> {
    let creds = socket::getsockopt(&fd, socket::sockopt::PeerCredentials)?;
    Ok(PeerCredentials {
        pid: creds.pid(),
        uid: creds.uid(),
        gid: creds.gid(),
    })
}

/// What one `recvmsg` returned.
#[derive(Debug)]
pub struct Received {
    /// Bytes read into the buffer; 0 with no fds means end of stream.
    pub len: usize,
    /// Descriptors received, close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The control buffer was too small (`MSG_CTRUNC`): descriptors were lost.
    pub truncated: bool,
}

/// Space for this many descriptors in one `recvmsg`'s control buffer.
pub const RECV_FD_CAPACITY: usize = 64;

/// Control buffer for [`recv_with_fds`], aligned for `cmsghdr`.
#[repr(C, align(8))]
pub struct ControlBuffer([u8; control_space(RECV_FD_CAPACITY)]);

impl Default for ControlBuffer {
    fn default() -> Self {
        ControlBuffer([0; control_space(RECV_FD_CAPACITY)])
    }
}

/// `CMSG_SPACE` for `n` descriptors, computed at compile time.
const fn control_space(n: usize) -> usize {
    let align = mem::size_of::<usize>();
    let header = (mem::size_of::<libc::cmsghdr>() + align - 1) & !(align - 1);
    let data = (n * mem::size_of::<RawFd>() + align - 1) & !(align - 1);
    header + data
}

/// One `recvmsg` with room for [`RECV_FD_CAPACITY`] descriptors. Every
/// descriptor the kernel installed is returned (and so closed when dropped),
/// even when the control data was truncated.
pub fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    control: &mut ControlBuffer,
    nonblocking: bool,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    let mut flags = libc::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= libc::MSG_DONTWAIT;
    }
    let n = loop {
        // SAFETY: msg points at one iovec covering `buf` and at the control
        // buffer, both live and exclusively borrowed for this call.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe
    // the control messages the kernel wrote (truncated ones included), so the
    // CMSG_* walk stays inside the buffer; each SCM_RIGHTS payload holds
    // (cmsg_len - CMSG_LEN(0)) / 4 descriptors that now belong to us.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let payload = header.cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = payload / mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw: RawFd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Received {
        len: n,
        fds,
        truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// One `sendmsg` of `iov` with `fds` attached (`MSG_NOSIGNAL`). Returns the
/// bytes written, which may be fewer than offered.
pub fn send_with_fds(
    fd: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
    nonblocking: bool,
) -> io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = [socket::ControlMessage::ScmRights(&raw)];
    let cmsgs: &[socket::ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsgs };
    let mut flags = socket::MsgFlags::MSG_NOSIGNAL;
    if nonblocking {
        flags |= socket::MsgFlags::MSG_DONTWAIT;
    }
    loop {
        match socket::sendmsg::<()>(fd.as_raw_fd(), iov, cmsgs, flags, None) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// True when the peer has closed its end completely (`POLLHUP`), as
/// opposed to only shutting down its writing half.
pub fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fds_cross_a_socketpair_and_truncation_loses_nothing_silently() {
        let (a, b) = UnixStream::pair().unwrap();
        let files: Vec<std::fs::File> = (0..3).map(|_| tempfile::tempfile().unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        let sent = send_with_fds(a.as_fd(), &[IoSlice::new(b"hello")], &borrowed, false).unwrap();
        assert_eq!(sent, 5);
        let mut buf = [0u8; 16];
        let mut control = ControlBuffer::default();
        let got = recv_with_fds(b.as_fd(), &mut buf, &mut control, false).unwrap();
        assert_eq!(
            (&buf[..got.len], got.fds.len(), got.truncated),
            (&b"hello"[..], 3, false)
        );

        // 100 descriptors do not fit in a 64-descriptor control buffer.
        let many: Vec<BorrowedFd<'_>> = (0..100).map(|i| borrowed[i % 3]).collect();
        send_with_fds(a.as_fd(), &[IoSlice::new(b"x")], &many, false).unwrap();
        let got = recv_with_fds(b.as_fd(), &mut buf, &mut control, false).unwrap();
        assert!(got.truncated);
        assert!(got.fds.len() <= RECV_FD_CAPACITY);
    }

    #[test]
    fn hangup_is_told_apart_from_a_half_close() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"x").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(!peer_hung_up(b.as_fd()));
        drop(a);
        assert!(peer_hung_up(b.as_fd()));
    }

    #[test]
    fn control_socket_is_private_and_stale_sockets_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ctl.sock");
        let fd = bind_control_socket(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let dir_meta = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dir_meta.mode() & 0o777, 0o700);
        assert!(matches!(
            bind_control_socket(&path),
            Err(SocketError::InUse(_))
        ));
        drop(fd);
        // The file stays behind after the listener closes: a stale socket.
        assert!(path.exists());
        let _fd = bind_control_socket(&path).unwrap();

        let open_dir = dir.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            bind_control_socket(&open_dir.join("s")),
            Err(SocketError::UnsafeDirectory { mode: 0o755, .. })
        ));
        let file = dir.path().join("sub/file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            bind_control_socket(&file),
            Err(SocketError::NotASocket(_))
        ));
    }
}
