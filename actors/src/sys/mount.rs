//! Mount plumbing for container setup: paths resolved inside a root without
//! escaping it, mounts onto descriptors, recursive attributes, pivot_root.
//!
//! Every destination is opened with `openat2(RESOLVE_IN_ROOT)` relative to
//! the new root, so a symlink planted in the root filesystem cannot redirect
//! a mount onto the host; the mount then targets `/proc/self/fd/N`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// A failed mount step: what, on which path, and the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFailure {
    /// The step ("mount", "mkdir", "pivot_root", ...).
    pub step: &'static str,
    /// The path it worked on.
    pub path: String,
    /// The error.
    pub errno: Errno,
}

impl MountFailure {
    fn new(step: &'static str, path: &str, errno: Errno) -> Self {
        MountFailure {
            step,
            path: path.to_owned(),
            errno,
        }
    }
}

/// Result of a mount step.
pub type MountResult<T> = Result<T, MountFailure>;

fn cstring(step: &'static str, s: &str) -> MountResult<CString> {
    CString::new(s).map_err(|_| MountFailure::new(step, s, Errno::EINVAL))
}

/// `openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: i32) -> Result<OwnedFd, Errno> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c = CString::new(rel).map_err(|_| Errno::EINVAL)?;
    openat2(
        root,
        &c,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// `openat2(dir, path, flags | O_CLOEXEC, resolve)`.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &std::ffi::CStr,
    flags: i32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    // SAFETY: open_how is plain data for which zeroes are valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `path` and `how` outlive the call; openat2 returns a new
    // descriptor that nothing else owns, or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: see above: the descriptor is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What to create at a mount destination that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A directory.
    Directory,
    /// An empty regular file (bind mounts of files).
    File,
}

/// Creates `path` (and its missing parents, as directories) inside `root`
/// and opens it `O_PATH`. Nothing outside `root` is touched.
pub fn create_in_root(root: BorrowedFd<'_>, path: &str, target: Target) -> MountResult<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(MountFailure::new("open mount destination", path, e)),
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut parent = open_in_root(root, "/", libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| MountFailure::new("open root", path, e))?;
    for (i, name) in components.iter().enumerate() {
        let prefix = format!("/{}", components[..=i].join("/"));
        let last = i + 1 == components.len();
        match open_in_root(root, &prefix, libc::O_PATH) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(MountFailure::new("open mount destination", &prefix, e)),
        }
        let cname = cstring("create mount destination", name)?;
        if last && target == Target::File {
            // SAFETY: `parent` is a live directory descriptor, `cname` a
            // valid C string; the new descriptor is ours.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    cname.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            if fd < 0 {
                return Err(MountFailure::new(
                    "create mount destination",
                    &prefix,
                    Errno::last(),
                ));
            }
            // SAFETY: a new descriptor nothing else owns.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        } else {
            // SAFETY: as above; mkdirat only reads its arguments.
            let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o755) };
            if rc < 0 && Errno::last() != Errno::EEXIST {
                return Err(MountFailure::new("mkdir", &prefix, Errno::last()));
            }
        }
        parent = open_in_root(root, &prefix, libc::O_PATH)
            .map_err(|e| MountFailure::new("open mount destination", &prefix, e))?;
    }
    Ok(parent)
}

/// The `/proc/self/fd/N` path that names `fd`.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `mount(2)`; `path` is only used for the error.
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
    path: &str,
) -> MountResult<()> {
    let c = |s: Option<&str>| s.map(|s| cstring("mount", s)).transpose();
    let (source, target_c, fstype, data) =
        (c(source)?, cstring("mount", target)?, c(fstype)?, c(data)?);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a live C string for the call.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target_c.as_ptr(),
            ptr(&fstype),
            flags as libc::c_ulong,
            ptr(&data).cast(),
        )
    };
    if rc < 0 {
        return Err(MountFailure::new("mount", path, Errno::last()));
    }
    Ok(())
}

/// Makes the mount that holds `path` private if it is shared, before the
/// new root is bound onto itself there (runc does the same): the bind of
/// a shared mount would be shared too and propagate to the mount's peers,
/// and `pivot_root` refuses (EINVAL) a new root that is shared or whose
/// parent is. Only that mount's own propagation changes.
pub fn make_parent_mount_private(path: &str) -> MountResult<()> {
    let io_failure = |step, e: std::io::Error| {
        MountFailure::new(
            step,
            path,
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    };
    let resolved = std::fs::canonicalize(path).map_err(|e| io_failure("resolve rootfs", e))?;
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io_failure("read /proc/self/mountinfo", e))?;
    match crate::sys::mountinfo::mount_holding(&table, &resolved) {
        Some(parent) if parent.shared => mount(
            None,
            &parent.mount_point,
            None,
            libc::MS_PRIVATE as u64,
            None,
            &parent.mount_point,
        ),
        _ => Ok(()),
    }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], set, clear)`.
pub fn set_mount_attributes(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    path: &str,
) -> MountResult<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: the empty path and `attr` outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(MountFailure::new("mount_setattr", path, Errno::last()));
    }
    Ok(())
}

/// `pivot_root(".", ".")` in the new root, then detach the old root that
/// ends up stacked on `/`. The caller has already `fchdir`ed into it.
pub fn pivot_into_cwd() -> MountResult<()> {
    // SAFETY: both paths are static C strings.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
    if rc < 0 {
        return Err(MountFailure::new("pivot_root", ".", Errno::last()));
    }
    // The old root must not propagate its unmount to the host.
    mount(
        None,
        ".",
        None,
        (libc::MS_SLAVE | libc::MS_REC) as u64,
        None,
        "/",
    )?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| MountFailure::new("unmount old root", "/", e))?;
    nix::unistd::chdir("/").map_err(|e| MountFailure::new("chdir", "/", e))?;
    Ok(())
}

/// runc's `--no-pivot`: move the new root over `/` and chroot into it.
pub fn move_root_into_cwd() -> MountResult<()> {
    mount(Some("."), "/", None, libc::MS_MOVE as u64, None, "/")?;
    nix::unistd::chroot(".")
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|e| MountFailure::new("chroot", "/", e))?;
    Ok(())
}

/// Hides `path` (inside the current root): `/dev/null` over a file, an
/// empty read-only tmpfs over a directory. A missing path is skipped.
pub fn mask_path(path: &str) -> MountResult<()> {
    let root = open_in_root_dir()?;
    let fd = match open_in_root(root.as_fd_ref(), path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(MountFailure::new("open masked path", path, e)),
    };
    let target = fd_path(fd.as_fd_ref());
    let is_dir = nix::sys::stat::fstat(&fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map_err(|e| MountFailure::new("stat masked path", path, e))?;
    if is_dir {
        mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            libc::MS_RDONLY as u64,
            Some("size=0,mode=0555"),
            path,
        )
    } else {
        mount(
            Some("/dev/null"),
            &target,
            None,
            libc::MS_BIND as u64,
            None,
            path,
        )
    }
}

/// Makes `path` read-only (bind it onto itself, then remount read-only,
/// keeping nosuid, nodev and noexec). A missing path is skipped.
pub fn make_readonly(path: &str) -> MountResult<()> {
    let root = open_in_root_dir()?;
    let fd = match open_in_root(root.as_fd_ref(), path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(MountFailure::new("open read-only path", path, e)),
    };
    let target = fd_path(fd.as_fd_ref());
    mount(
        Some(&target),
        &target,
        None,
        (libc::MS_BIND | libc::MS_REC) as u64,
        None,
        path,
    )?;
    let fd = open_in_root(root.as_fd_ref(), path, libc::O_PATH)
        .map_err(|e| MountFailure::new("open read-only path", path, e))?;
    set_mount_attributes(fd.as_fd_ref(), true, libc::MOUNT_ATTR_RDONLY, 0, path)
}

fn open_in_root_dir() -> MountResult<OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open("/", flags, nix::sys::stat::Mode::empty())
        .map_err(|e| MountFailure::new("open", "/", e))
}

/// Borrows an owned descriptor (shorthand).
pub trait AsFdRef {
    /// The borrowed descriptor.
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Creates a device node (or bind-mounts the host's when `mknod` is not
/// allowed, as in a user namespace) at `path` under `root`.
pub fn make_device(
    root: BorrowedFd<'_>,
    path: &str,
    file_type: u32,
    major: u64,
    minor: u64,
    mode: u32,
    owner: (u32, u32),
) -> MountResult<()> {
    let (parent_path, name) = match path.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() => (if p.is_empty() { "/" } else { p }, n),
        _ => return Err(MountFailure::new("mknod", path, Errno::EINVAL)),
    };
    let parent = create_in_root(root, parent_path, Target::Directory)?;
    // O_PATH descriptors cannot be used with mknodat: reopen the directory.
    let dir = open_in_root(root, parent_path, libc::O_DIRECTORY | libc::O_RDONLY)
        .map_err(|e| MountFailure::new("open device directory", parent_path, e))?;
    drop(parent);
    let cname = cstring("mknod", name)?;
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: `dir` is a live directory descriptor, `cname` a C string.
    let rc = unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            file_type | (mode & 0o7777),
            dev,
        )
    };
    if rc < 0 {
        let errno = Errno::last();
        if errno == Errno::EEXIST {
            return Ok(());
        }
        if errno != Errno::EPERM {
            return Err(MountFailure::new("mknod", path, errno));
        }
        // Not allowed to create nodes: bind the host's device instead.
        let target = create_in_root(root, path, Target::File)?;
        return mount(
            Some(path),
            &fd_path(target.as_fd_ref()),
            None,
            libc::MS_BIND as u64,
            None,
            path,
        );
    }
    // SAFETY: as above; fchownat and fchmodat only read their arguments.
    unsafe {
        if libc::fchownat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            owner.0,
            owner.1,
            libc::AT_SYMLINK_NOFOLLOW,
        ) < 0
        {
            return Err(MountFailure::new("chown device", path, Errno::last()));
        }
        // mknod applied the umask; set the exact mode.
        if libc::fchmodat(dir.as_raw_fd(), cname.as_ptr(), mode & 0o7777, 0) < 0 {
            return Err(MountFailure::new("chmod device", path, Errno::last()));
        }
    }
    Ok(())
}

/// Creates a symlink `path -> target` under `root` (an existing one is kept).
pub fn make_symlink(root: BorrowedFd<'_>, target: &str, path: &str) -> MountResult<()> {
    let (parent_path, name) = path.rsplit_once('/').unwrap_or(("/", path));
    let parent_path = if parent_path.is_empty() {
        "/"
    } else {
        parent_path
    };
    let dir = open_in_root(root, parent_path, libc::O_DIRECTORY | libc::O_RDONLY)
        .map_err(|e| MountFailure::new("open symlink directory", parent_path, e))?;
    let (ctarget, cname) = (cstring("symlink", target)?, cstring("symlink", name)?);
    // SAFETY: live descriptor and C strings.
    let rc = unsafe { libc::symlinkat(ctarget.as_ptr(), dir.as_raw_fd(), cname.as_ptr()) };
    if rc < 0 && Errno::last() != Errno::EEXIST {
        return Err(MountFailure::new("symlink", path, Errno::last()));
    }
    Ok(())
}
