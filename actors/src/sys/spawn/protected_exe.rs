//! The spawner's executable, made unwritable from containers.
//!
//! Every process that enters a container is a clone of the spawner, so
//! until its execve its `/proc/PID/exe` is the sandvisor binary. They are
//! non-dumpable, which keeps a container from opening that link; as a
//! second wall (CVE-2019-5736: a container that got hold of the runtime's
//! binary rewrote it on the host once nothing ran it), the spawner runs
//! its executable through a read-only bind mount, in a mount namespace of
//! its own: whatever opens the file through a clone's `exe` gets a file on
//! a read-only mount, and opening it for writing fails with EROFS whether
//! or not the host's binary is busy. The mount namespace is a slave of the
//! host's, so mounts made later on the host (bundles' root filesystems)
//! still reach it.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::mount::MsFlags;

/// The first argument of a spawner started through [`reexec`].
pub const SPAWNER_ARG: &str = "__sandvisor-spawner";

/// Re-executes this (forked, single-threaded) process from a read-only
/// bind mount of its own executable, as `exe SPAWNER_ARG args...`. Returns
/// only on failure.
pub fn reexec(args: &[OsString]) -> io::Error {
    match try_reexec(args) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn try_reexec(args: &[OsString]) -> io::Result<Never> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    if exe.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return Err(io::Error::other(format!(
            "the executable {} was replaced or removed while running",
            exe.display()
        )));
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| context("unshare the mount namespace", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| context("make / a slave mount", e))?;
    bind_read_only(&exe)?;
    let mut argv = vec![cstring(exe.as_os_str())?, cstring(OsStr::new(SPAWNER_ARG))?];
    for arg in args {
        argv.push(cstring(arg)?);
    }
    let path = cstring(exe.as_os_str())?;
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.as_bytes()).ok()
        })
        .collect();
    nix::unistd::execve(&path, &argv, &env)
        .map_err(|e| context(&format!("execute {}", exe.display()), e))?;
    Err(io::Error::other("execve returned"))
}

/// Binds the file `exe` onto itself, read-only, in this mount namespace.
fn bind_read_only(exe: &PathBuf) -> io::Result<()> {
    // The link itself names a mount of the namespace left behind, which
    // mount(2) refuses as a source: bind the path, checked to be the same
    // file.
    let running =
        nix::sys::stat::stat("/proc/self/exe").map_err(|e| context("stat /proc/self/exe", e))?;
    let named =
        nix::sys::stat::stat(exe).map_err(|e| context(&format!("stat {}", exe.display()), e))?;
    if (running.st_dev, running.st_ino) != (named.st_dev, named.st_ino) {
        return Err(io::Error::other(format!(
            "{} is no longer the running executable",
            exe.display()
        )));
    }
    nix::mount::mount(Some(exe), exe, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| context(&format!("bind {}", exe.display()), e))?;
    nix::mount::mount(
        None::<&str>,
        exe,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| context(&format!("remount {} read-only", exe.display()), e))?;
    Ok(())
}

fn context(what: &str, errno: nix::errno::Errno) -> io::Error {
    io::Error::new(
        io::Error::from(errno).kind(),
        format!("{what}: {}", errno.desc().to_lowercase()),
    )
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// True when this process runs its executable from a read-only mount (the
/// check a spawner started through [`reexec`] makes before it serves).
pub fn executable_is_read_only() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// This process's read-only private file mappings without anonymous
/// (copied-on-write) pages: the binary's code and constants, and the
/// libraries'. Read-only, they never get such pages later.
pub struct FileMappings(Vec<(usize, usize)>);

impl FileMappings {
    /// Reads them from /proc/self/smaps (none if it cannot be read).
    pub fn of_self() -> FileMappings {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        FileMappings(file_mappings_to_shed(&smaps))
    }

    /// Drops the page-table entries of the file pages mapped there. A
    /// resident spawner lives in a container's memory cgroup, where the OOM
    /// killer picks the process with the largest resident set, mapped
    /// files included: the spawner, which touches megabytes of its binary
    /// to serve a request, must not outweigh the container's own
    /// processes. The pages come back from the page cache when touched.
    pub fn shed(&self) {
        for &(start, len) in &self.0 {
            // SAFETY: the range is a whole mapping of this process,
            // read-only, private and without anonymous pages: dropping its
            // page-table entries only makes the next access fault the same
            // file page in.
            unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        }
    }
}

/// (start, length) of the mappings [`shed_file_pages`] drops, from the
/// text of /proc/self/smaps.
fn file_mappings_to_shed(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            let sheddable = perms.len() == 4
                && !perms.contains('w')
                && perms.ends_with('p')
                && path.starts_with('/');
            current = sheddable.then_some((start, end.saturating_sub(start)));
        } else if first == "Anonymous:" {
            if let Some(mapping) = current.take() {
                if fields.next() == Some("0") {
                    out.push(mapping);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_private_file_mappings_without_anonymous_pages_are_shed() {
        let smaps = "\
5000-6000 r--p 00000000 08:01 12 /usr/bin/x
Rss:                   4 kB
Anonymous:             0 kB
6000-8000 r-xp 00001000 08:01 12 /usr/bin/x
Anonymous:             0 kB
8000-9000 r--p 00003000 08:01 12 /usr/bin/x
Anonymous:             4 kB
9000-a000 rw-p 00004000 08:01 12 /usr/bin/x
Anonymous:             0 kB
a000-b000 r--s 00000000 08:01 13 /dev/shm/y
Anonymous:             0 kB
b000-c000 r--p 00000000 00:00 0 [vvar]
Anonymous:             0 kB
";
        assert_eq!(
            file_mappings_to_shed(smaps),
            vec![(0x5000, 0x1000), (0x6000, 0x2000)]
        );
    }
}
