//! Waiting for the OOM killer in a memory cgroup: on v1 an eventfd
//! registered for `memory.oom_control` through `cgroup.event_control`, on
//! v2 an inotify watch of `memory.events` (which the kernel modifies at
//! each OOM event). A notification says "look now"; what happened is read
//! from the counters (`oom_kill`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// A registration for OOM notifications of one memory cgroup.
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    v2: bool,
}

impl OomWatch {
    /// Watches the memory cgroup at `dir` (`v2`: of the unified hierarchy).
    pub fn new(dir: &Path, v2: bool) -> io::Result<OomWatch> {
        if v2 {
            Self::inotify(&dir.join("memory.events"))
        } else {
            Self::eventfd(dir)
        }
    }

    fn eventfd(dir: &Path) -> io::Result<OomWatch> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let control = File::open(dir.join("memory.oom_control"))?;
        // The kernel takes its own references: both may be closed after.
        let line = format!("{} {}", fd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("register for OOM events of {}: {e}", dir.display()),
            )
        })?;
        Ok(OomWatch { fd, v2: false })
    }

    fn inotify(events: &Path) -> io::Result<OomWatch> {
        // SAFETY: inotify_init1 takes no pointers; the result is checked.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let watch = unsafe { libc::inotify_add_watch(raw, path.as_ptr(), libc::IN_MODIFY) };
        if watch < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("watch {}: {e}", events.display()),
            ));
        }
        Ok(OomWatch { fd, v2: true })
    }

    /// True when a notification comes as the OOM starts, before its kill
    /// is counted (v1's eventfd); v2's comes with each counter's change.
    pub fn notifies_before_the_kill(&self) -> bool {
        !self.v2
    }

    /// Consumes the notifications pending (the descriptor is non-blocking).
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        // Either an eventfd's 8-byte count or a batch of inotify events:
        // what matters is that it is drained.
        while nix::unistd::read(&self.fd, &mut buf).is_ok_and(|n| n > 0) {}
    }

    /// Waits up to `timeout` for a notification; true when one came (all
    /// pending ones are consumed).
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(n) => n > 0,
            Err(nix::Error::EINTR) => false,
            Err(e) => return Err(e.into()),
        };
        if ready {
            self.drain();
        }
        Ok(ready)
    }
}

impl AsRawFd for OomWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

// The watch owns its descriptor until dropped.
impl super::socket::OwnsFd for OomWatch {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modified_memory_events_file_wakes_a_v2_watch() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("memory.events"), "oom_kill 0\n").expect("write");
        let watch = OomWatch::new(dir.path(), true).expect("watch");
        assert!(!watch.wait(Duration::from_millis(20)).expect("wait"));
        std::fs::write(dir.path().join("memory.events"), "oom_kill 1\n").expect("write");
        assert!(watch.wait(Duration::from_secs(5)).expect("wait"));
        // Consumed: nothing more until the next change.
        assert!(!watch.wait(Duration::from_millis(20)).expect("wait"));
    }

    #[test]
    fn a_v1_watch_needs_the_control_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = OomWatch::new(dir.path(), false).expect_err("no memory.oom_control");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
