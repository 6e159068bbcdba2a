//! Copies a directory's content into another directory, through
//! descriptors only: what fills a `tmpcopyup` tmpfs with the directory of
//! the image it covers.
//!
//! Every entry is opened relative to its parent's descriptor by its own
//! name, with `O_NOFOLLOW`: a symlink is copied as a symlink and never
//! followed, so a link in the image (`/data/x -> /`) cannot make the copy
//! read the host's files. Files, directories, symlinks, fifos, sockets and
//! device nodes are copied with their owner, mode, times and (files and
//! directories) extended attributes; hard links become separate files.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use thiserror::Error;

/// A step of the copy that failed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{op} {path:?}: {errno}")]
pub struct TreeCopyError {
    /// What was being done ("create file", "copy xattr", ...).
    pub op: &'static str,
    /// The entry, relative to the copied directory (empty for itself).
    pub path: PathBuf,
    /// The error.
    pub errno: Errno,
}

type Copied<T = ()> = Result<T, TreeCopyError>;

fn at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> TreeCopyError + 'a {
    move |errno| TreeCopyError {
        op,
        path: path.to_owned(),
        errno,
    }
}

/// Which of the copied directory's own attributes its copy takes: a
/// tmpfs mount's options (`mode=`, `uid=`, `gid=`) may have set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopAttributes {
    /// Its permission bits.
    pub mode: bool,
    /// Its owner.
    pub uid: bool,
    /// Its group.
    pub gid: bool,
}

impl TopAttributes {
    /// Those a tmpfs mount's data (`size=1m,mode=1777,...`) leaves unset.
    pub fn unset_by(data: &str) -> TopAttributes {
        let set = |key: &str| data.split(',').any(|o| o.starts_with(key));
        TopAttributes {
            mode: !set("mode="),
            uid: !set("uid="),
            gid: !set("gid="),
        }
    }
}

/// Copies everything in directory `from` into directory `to`, then the
/// attributes of `from` itself that `top` selects (and its times and
/// extended attributes).
pub fn copy_directory(from: BorrowedFd<'_>, to: BorrowedFd<'_>, top: TopAttributes) -> Copied {
    let here = Path::new("");
    copy_entries(from, to, here)?;
    let st = nix::sys::stat::fstat(from).map_err(at("stat", here))?;
    let owner = (
        top.uid.then(|| Uid::from_raw(st.st_uid)),
        top.gid.then(|| Gid::from_raw(st.st_gid)),
    );
    if owner != (None, None) {
        nix::unistd::fchown(to, owner.0, owner.1).map_err(at("chown", here))?;
    }
    if top.mode {
        nix::sys::stat::fchmod(to, permissions(&st)).map_err(at("chmod", here))?;
    }
    copy_xattrs(from, to, here)?;
    set_times(to, &st, here)
}

fn copy_entries(from: BorrowedFd<'_>, to: BorrowedFd<'_>, dir: &Path) -> Copied {
    let read = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut entries =
        Dir::openat(from, ".", read, Mode::empty()).map_err(at("open directory", dir))?;
    for entry in entries.iter() {
        let entry = entry.map_err(at("read directory", dir))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let path = dir.join(OsStr::from_bytes(name.to_bytes()));
        copy_entry(from, to, name, &path)?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr, path: &Path) -> Copied {
    let st = nix::sys::stat::fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(at("stat", path))?;
    match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
        SFlag::S_IFDIR => {
            // Private until its content and attributes are in.
            nix::sys::stat::mkdirat(to, name, Mode::S_IRWXU)
                .map_err(at("create directory", path))?;
            let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let source = open_at(from, name, dir, Mode::empty(), "open directory", path)?;
            let copy = open_at(to, name, dir, Mode::empty(), "open directory copy", path)?;
            copy_entries(source.as_fd(), copy.as_fd(), path)?;
            copy_attributes(source.as_fd(), copy.as_fd(), &st, path)
        }
        SFlag::S_IFREG => {
            let read = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
            let write = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let mut source =
                File::from(open_at(from, name, read, Mode::empty(), "open file", path)?);
            let mut copy = File::from(open_at(
                to,
                name,
                write,
                Mode::S_IRUSR | Mode::S_IWUSR,
                "create file",
                path,
            )?);
            std::io::copy(&mut source, &mut copy).map_err(|e| TreeCopyError {
                op: "copy file",
                path: path.to_owned(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
            copy_attributes(source.as_fd(), copy.as_fd(), &st, path)
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(from, name).map_err(at("read symlink", path))?;
            nix::unistd::symlinkat(target.as_os_str(), to, name)
                .map_err(at("create symlink", path))?;
            set_owner_and_times_at(to, name, &st, path)
        }
        // Fifos, sockets and device nodes: a new node of the same kind.
        kind => {
            nix::sys::stat::mknodat(to, name, kind, permissions(&st), st.st_rdev)
                .map_err(at("create node", path))?;
            set_owner_and_times_at(to, name, &st, path)?;
            // mknod applied the umask; chown cleared set-id bits.
            nix::sys::stat::fchmodat(
                to,
                name,
                permissions(&st),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(at("chmod", path))
        }
    }
}

fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: OFlag,
    mode: Mode,
    op: &'static str,
    path: &Path,
) -> Copied<OwnedFd> {
    nix::fcntl::openat(dir, name, flags, mode).map_err(at(op, path))
}

fn permissions(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

/// Owner, then mode (a chown clears set-id bits), extended attributes and
/// times (last: writing the others does not change them, but the
/// directory's content did).
fn copy_attributes(
    source: BorrowedFd<'_>,
    copy: BorrowedFd<'_>,
    st: &FileStat,
    path: &Path,
) -> Copied {
    nix::unistd::fchown(
        copy,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(at("chown", path))?;
    nix::sys::stat::fchmod(copy, permissions(st)).map_err(at("chmod", path))?;
    copy_xattrs(source, copy, path)?;
    set_times(copy, st, path)
}

fn set_owner_and_times_at(dir: BorrowedFd<'_>, name: &CStr, st: &FileStat, path: &Path) -> Copied {
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(at("chown", path))?;
    let (atime, mtime) = times(st);
    nix::sys::stat::utimensat(dir, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(at("set times", path))
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn set_times(copy: BorrowedFd<'_>, st: &FileStat, path: &Path) -> Copied {
    let (atime, mtime) = times(st);
    nix::sys::stat::futimens(copy, &atime, &mtime).map_err(at("set times", path))
}

/// Copies every extended attribute the copy's filesystem can hold; one
/// in a namespace it does not support (EOPNOTSUPP) is left out.
fn copy_xattrs(source: BorrowedFd<'_>, copy: BorrowedFd<'_>, path: &Path) -> Copied {
    let names = match read_sized(|buf| {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        unsafe { libc::flistxattr(raw(source), buf.as_mut_ptr().cast(), buf.len()) }
    }) {
        Ok(names) => names,
        Err(Errno::EOPNOTSUPP) => return Ok(()),
        Err(errno) => return Err(at("list xattrs", path)(errno)),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = CString::new(name) else {
            continue;
        };
        let value = match read_sized(|buf| {
            // SAFETY: `name` is a live C string; the kernel writes at most
            // `buf.len()` bytes into `buf`.
            unsafe {
                libc::fgetxattr(
                    raw(source),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            }
        }) {
            Ok(value) => value,
            // Removed since it was listed.
            Err(Errno::ENODATA) => continue,
            Err(errno) => return Err(at("read xattr", path)(errno)),
        };
        // SAFETY: `name` and `value` are live for the call; the kernel
        // only reads them.
        let rc = unsafe {
            libc::fsetxattr(
                raw(copy),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc < 0 && Errno::last() != Errno::EOPNOTSUPP {
            return Err(at("copy xattr", path)(Errno::last()));
        }
    }
    Ok(())
}

fn raw(fd: BorrowedFd<'_>) -> libc::c_int {
    std::os::fd::AsRawFd::as_raw_fd(&fd)
}

/// Calls `read` (a getxattr-like call: the size needed with an empty
/// buffer, else the bytes written) until the buffer is large enough.
fn read_sized(mut read: impl FnMut(&mut [u8]) -> libc::ssize_t) -> Result<Vec<u8>, Errno> {
    loop {
        let needed = read(&mut []);
        if needed < 0 {
            return Err(Errno::last());
        }
        let mut buf = vec![0u8; needed as usize];
        let got = read(&mut buf);
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        // It grew between the two calls: ask again.
        if Errno::last() != Errno::ERANGE {
            return Err(Errno::last());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn open_dir(path: &Path) -> OwnedFd {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    fn copy(from: &Path, to: &Path, top: TopAttributes) -> Copied {
        copy_directory(open_dir(from).as_fd(), open_dir(to).as_fd(), top)
    }

    const ALL: TopAttributes = TopAttributes {
        mode: true,
        uid: true,
        gid: true,
    };

    #[test]
    fn files_directories_and_symlinks_are_copied_with_their_modes_and_links_are_not_followed() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("sub/deeper")).unwrap();
        std::fs::write(s.join("file"), "content").unwrap();
        std::fs::set_permissions(s.join("file"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::write(s.join("sub/deeper/leaf"), "leaf").unwrap();
        std::fs::set_permissions(s.join("sub"), PermissionsExt::from_mode(0o710)).unwrap();
        std::os::unix::fs::symlink("/", s.join("to-root")).unwrap();
        std::os::unix::fs::symlink("file", s.join("relative")).unwrap();
        nix::unistd::mkfifo(&s.join("fifo"), Mode::from_bits_truncate(0o620)).unwrap();
        std::fs::set_permissions(s.join("fifo"), PermissionsExt::from_mode(0o620)).unwrap();
        std::fs::set_permissions(s, PermissionsExt::from_mode(0o751)).unwrap();
        let mtime = std::fs::metadata(s.join("file")).unwrap().mtime();

        copy(s, dst.path(), ALL).unwrap();

        let d = dst.path();
        assert_eq!(std::fs::read_to_string(d.join("file")).unwrap(), "content");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&d.join("file")), 0o640);
        assert_eq!(mode(&d.join("sub")), 0o710);
        assert_eq!(mode(d), 0o751);
        assert_eq!(mode(&d.join("fifo")), 0o620);
        assert!(std::fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            std::fs::read_to_string(d.join("sub/deeper/leaf")).unwrap(),
            "leaf"
        );
        assert_eq!(
            std::fs::read_link(d.join("to-root")).unwrap(),
            Path::new("/")
        );
        assert_eq!(
            std::fs::read_link(d.join("relative")).unwrap(),
            Path::new("file")
        );
        assert_eq!(std::fs::metadata(d.join("file")).unwrap().mtime(), mtime);
        // The source is unchanged.
        assert_eq!(std::fs::read_to_string(s.join("file")).unwrap(), "content");
    }

    #[test]
    fn extended_attributes_are_copied_where_the_filesystem_takes_them() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let file = src.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let c_file = CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: live C strings and value for the call.
        let set = unsafe {
            libc::setxattr(
                c_file.as_ptr(),
                c"user.origin".as_ptr(),
                b"image".as_ptr().cast(),
                5,
                0,
            )
        };
        if set < 0 {
            // This temporary directory's filesystem holds no user xattrs.
            return;
        }
        copy(src.path(), dst.path(), ALL).unwrap();
        let copied = CString::new(dst.path().join("file").as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 16];
        // SAFETY: live C strings; the kernel writes at most 16 bytes.
        let len = unsafe {
            libc::getxattr(
                copied.as_ptr(),
                c"user.origin".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(len, 5);
        assert_eq!(&buf[..5], b"image");
    }

    #[test]
    fn an_existing_entry_in_the_copy_is_an_error_not_overwritten() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("file"), "new").unwrap();
        std::fs::write(dst.path().join("file"), "old").unwrap();
        let err = copy(src.path(), dst.path(), ALL).unwrap_err();
        assert_eq!(
            err,
            TreeCopyError {
                op: "create file",
                path: PathBuf::from("file"),
                errno: Errno::EEXIST
            }
        );
        assert_eq!(
            std::fs::read_to_string(dst.path().join("file")).unwrap(),
            "old"
        );
    }

    #[test]
    fn the_top_keeps_what_the_mount_options_set() {
        assert_eq!(TopAttributes::unset_by(""), ALL);
        assert_eq!(
            TopAttributes::unset_by("size=1m,mode=1777,uid=5"),
            TopAttributes {
                mode: false,
                uid: false,
                gid: true
            }
        );
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::set_permissions(src.path(), PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dst.path(), PermissionsExt::from_mode(0o1777)).unwrap();
        copy(src.path(), dst.path(), TopAttributes::unset_by("mode=1777")).unwrap();
        let mode = std::fs::metadata(dst.path()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o1777);
    }
}
