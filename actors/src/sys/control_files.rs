//! Opening a cgroup control file under a cgroup, never outside it:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so neither `..`,
//! an absolute path nor a symlink can leave it.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use std::path::Path;

/// Why a control file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlFileError {
    /// The name is not a plain file name.
    #[error("invalid control file name {0:?}")]
    BadName(String),
    /// The path would leave the cgroup (or goes through a symlink).
    #[error("path {0:?} leaves the sandbox's cgroup")]
    Escapes(String),
    /// Writing the file would move processes between cgroups.
    #[error("writing {0} moves processes between cgroups: only the runtime places processes")]
    MovesProcesses(String),
    /// No such cgroup or file.
    #[error("no control file {0}")]
    NotFound(String),
    /// The kernel refused the read or write.
    #[error("{what} {file}: {source}")]
    Io {
        /// `read` or `write "VALUE" to`.
        what: String,
        /// The file, relative to the cgroup.
        file: String,
        /// The error.
        source: io::Error,
    },
}

/// Opens `path/name` beneath the cgroup directory `base`, for reading or
/// (with `write`) writing.
pub fn open_beneath(
    base: &Path,
    path: &str,
    name: &str,
    write: bool,
) -> Result<File, ControlFileError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ControlFileError::BadName(name.to_owned()));
    }
    if path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(ControlFileError::Escapes(path.to_owned()));
    }
    let relative = if path.is_empty() {
        name.to_owned()
    } else {
        format!("{}/{name}", path.trim_end_matches('/'))
    };
    let not_found = || ControlFileError::NotFound(relative.clone());
    let dir = File::open(base).map_err(|_| not_found())?;
    let c =
        CString::new(relative.as_str()).map_err(|_| ControlFileError::BadName(name.to_owned()))?;
    // O_TRUNC as runc opens them: cgroupfs ignores it, a plain file needs it.
    let mode = if write {
        libc::O_WRONLY | libc::O_TRUNC
    } else {
        libc::O_RDONLY
    };
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let fd =
        super::mount::openat2(dir.as_fd(), &c, mode, resolve).map_err(|errno| match errno {
            Errno::EXDEV | Errno::ELOOP => ControlFileError::Escapes(path.to_owned()),
            Errno::ENOENT | Errno::ENOTDIR => not_found(),
            errno => ControlFileError::Io {
                what: "open".into(),
                file: relative.clone(),
                source: errno.into(),
            },
        })?;
    Ok(File::from(fd))
}

/// Reads `path/name` beneath `base`.
pub fn read_beneath(base: &Path, path: &str, name: &str) -> Result<String, ControlFileError> {
    let mut file = open_beneath(base, path, name, false)?;
    let mut text = String::new();
    io::Read::read_to_string(&mut file, &mut text).map_err(|source| ControlFileError::Io {
        what: "read".into(),
        file: format!("{path}/{name}"),
        source,
    })?;
    Ok(text)
}

/// Writes `value` to `path/name` beneath `base`.
pub fn write_beneath(
    base: &Path,
    path: &str,
    name: &str,
    value: &str,
) -> Result<(), ControlFileError> {
    let mut file = open_beneath(base, path, name, true)?;
    io::Write::write_all(&mut file, value.as_bytes()).map_err(|source| ControlFileError::Io {
        what: format!("write {value:?} to"),
        file: format!("{path}/{name}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_beneath_are_reached_and_escapes_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("sandbox");
        std::fs::create_dir_all(base.join("c1")).unwrap();
        std::fs::write(base.join("c1/pids.max"), "max\n").unwrap();
        std::fs::write(root.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(root.path(), base.join("link")).unwrap();
        assert_eq!(read_beneath(&base, "c1", "pids.max").unwrap(), "max\n");
        write_beneath(&base, "c1/", "pids.max", "8").unwrap();
        assert_eq!(read_beneath(&base, "c1", "pids.max").unwrap(), "8");
        for (path, name) in [
            ("..", "secret"),
            ("/", "secret"),
            ("c1/../..", "secret"),
            ("link", "secret"),
        ] {
            assert!(
                matches!(
                    read_beneath(&base, path, name),
                    Err(ControlFileError::Escapes(_))
                ),
                "{path}/{name}"
            );
        }
        for name in ["", "a/b", "..", "."] {
            assert!(matches!(
                read_beneath(&base, "c1", name),
                Err(ControlFileError::BadName(_))
            ));
        }
        assert!(matches!(
            read_beneath(&base, "c2", "pids.max"),
            Err(ControlFileError::NotFound(_))
        ));
    }
}
