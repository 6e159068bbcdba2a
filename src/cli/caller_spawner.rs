//! runc's process contract for `create` and `exec`: the container's init
//! (or the exec'd process) is a descendant of the command that made it, so
//! that when the command exits the subreaper above it (conmon,
//! containerd's shim) inherits the process, names it by the pid file, finds
//! the container's namespaces and cgroups through `/proc/PID`, and reaps
//! it for its exit status.
//!
//! The command forks a spawner of its own and hands it to the supervisor
//! with the request; the spawner clones the process as its child and exits
//! once the supervisor is done with it. This command is a child subreaper
//! meanwhile, so the process passes to it, and from it, when it exits, to
//! the subreaper above.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use sandvisor_actors::sys::process::{become_subreaper, pidfd_open, pidfd_wait_exited};
use sandvisor_actors::sys::spawn::fork_caller_spawner;

use super::error::{io, RunError};

/// How long the spawner may take to exit once the supervisor has answered:
/// it only has to see its socket close. Past it, something is wrong, and it
/// is killed (the process it cloned passes to this command all the same).
const SPAWNER_PATIENCE: Duration = Duration::from_secs(30);

/// A spawner this command forked.
pub(super) struct CallerSpawner {
    pid: i32,
    pidfd: OwnedFd,
    socket: Option<OwnedFd>,
    finished: bool,
}

impl CallerSpawner {
    /// Makes this command a child subreaper and forks the spawner. Call it
    /// while this process has a single thread.
    pub(super) fn fork() -> Result<CallerSpawner, RunError> {
        become_subreaper().map_err(io("become a child subreaper"))?;
        let handle = fork_caller_spawner().map_err(io("fork the spawner"))?;
        let pidfd = pidfd_open(handle.pid).map_err(io("open the spawner's pidfd"))?;
        Ok(CallerSpawner {
            pid: handle.pid,
            pidfd,
            socket: Some(handle.socket),
            finished: false,
        })
    }

    /// The socket to send with the request (the first descriptor).
    pub(super) fn take_socket(&mut self) -> Result<OwnedFd, RunError> {
        self.socket
            .take()
            .ok_or_else(|| RunError::Supervisor("the spawner's socket was sent already".into()))
    }

    /// Waits until the spawner has exited, and reaps it: the process it
    /// cloned is this command's child from then on.
    pub(super) fn finish(mut self) {
        self.socket = None;
        self.end();
        self.finished = true;
    }

    fn end(&mut self) {
        if !pidfd_wait_exited(self.pidfd.as_fd(), SPAWNER_PATIENCE) {
            let _ = sandvisor_actors::sys::process::pidfd_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

impl Drop for CallerSpawner {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The request failed (or was never sent): the spawner has nothing
        // more to do, and a copy of its socket may still be open here.
        // Nothing of it may linger: a process that failed its setup is this
        // command's zombie once the spawner is gone, and nobody else knows
        // its pid. Unreaped, a zombie in the container's pid namespace
        // would keep its init from ever ending.
        self.socket = None;
        let _ = sandvisor_actors::sys::process::pidfd_signal(self.pidfd.as_fd(), libc::SIGKILL);
        self.end();
        reap_exited_children();
    }
}

/// Reaps every child of this command that has exited (the supervisor, if
/// it runs, is left alone).
fn reap_exited_children() {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
