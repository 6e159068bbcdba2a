//! [`CgroupFiles`]: a cgroup's control files read through kept
//! descriptors of its directories.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{memory_dir, parse_flat_keyed};
use crate::sys::cgroup::Hierarchy;

/// Reads a cgroup's control files through descriptors of its directories,
/// opened once and kept: a file is then one `openat` of its own name, one
/// `read` and one `close`, where a path would be walked from the root each
/// time (the most of the cost, for 20 files a stats event, per container).
/// A file that cannot be read reads as empty.
#[derive(Debug, Default)]
pub struct CgroupFiles {
    dirs: HashMap<PathBuf, OwnedFd>,
}

/// Control files are small; a larger one is read on in further reads.
const READ_CHUNK: usize = 16 * 1024;

impl CgroupFiles {
    /// The text of control file `file` of the cgroup directory `dir`.
    pub fn text(&mut self, dir: &Path, file: &str) -> String {
        self.try_text(dir, file).unwrap_or_default()
    }

    fn try_text(&mut self, dir: &Path, file: &str) -> nix::Result<String> {
        let dir_fd = match self.dirs.get(dir) {
            Some(fd) => fd,
            None => {
                let fd = nix::fcntl::open(
                    dir,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                self.dirs.entry(dir.to_owned()).or_insert(fd)
            }
        };
        let fd = nix::fcntl::openat(
            dir_fd,
            file,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut bytes = vec![0u8; READ_CHUNK];
        let mut len = 0;
        loop {
            let n = nix::unistd::read(&fd, &mut bytes[len..])?;
            len += n;
            // A control file is generated whole by each read from its
            // start: a read that did not fill the buffer got to the end,
            // and a second read to see 0 would be a wasted system call.
            if n == 0 || len < bytes.len() {
                break;
            }
            bytes.resize(bytes.len() + READ_CHUNK, 0);
        }
        bytes.truncate(len);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A one-number file; "max" (no limit) reads as `max`.
    pub(super) fn number(&mut self, dir: &Path, file: &str, max: u64) -> u64 {
        match self.text(dir, file).trim() {
            "max" => max,
            t => t.parse().unwrap_or(0),
        }
    }

    /// How many processes the OOM killer has killed in the cgroup (0
    /// without a memory controller).
    pub fn oom_kills(&mut self, hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> u64 {
        memory_dir(hierarchies, dirs)
            .map(|(dir, v1)| self.oom_kills_in(dir, v1))
            .unwrap_or(0)
    }

    pub(super) fn oom_kills_in(&mut self, dir: &Path, v1: bool) -> u64 {
        let file = if v1 {
            "memory.oom_control"
        } else {
            "memory.events"
        };
        parse_flat_keyed(&self.text(dir, file))
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    }
}

/// A one-number file read by path; "max" (no limit) reads as `max`.
pub(super) fn read_number(dir: &Path, file: &str, max: u64) -> u64 {
    CgroupFiles::default().number(dir, file, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_reader_sees_each_file_as_it_is_now_and_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = CgroupFiles::default();
        let big = "x".repeat(READ_CHUNK * 2 + 7);
        std::fs::write(dir.path().join("big"), &big).expect("write");
        std::fs::write(dir.path().join("pids.current"), "3\n").expect("write");
        assert_eq!(files.text(dir.path(), "big"), big);
        assert_eq!(files.number(dir.path(), "pids.current", 0), 3);
        std::fs::write(dir.path().join("pids.current"), "max\n").expect("write");
        assert_eq!(files.number(dir.path(), "pids.current", 0), 0);
        assert_eq!(files.number(dir.path(), "pids.current", 9), 9);
        assert_eq!(files.text(dir.path(), "missing"), "");
        assert_eq!(files.dirs.len(), 1);
    }
}
