//! The supervisor process a command boots (`run`, `create`): start, stop,
//! identity.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::Signal;
use sandvisor_actors::sys::process;

use super::error::{io, RunError};
use super::stdio::close_from_on_exec;
use super::GlobalOptions;
use crate::state::{ProcessIdentity, StateError};

/// The supervisor process, stopped and reaped when dropped (unless
/// detached).
pub(super) struct Supervisor {
    child: Child,
    pub(super) socket: PathBuf,
    detached: bool,
}

impl Supervisor {
    /// Boots the supervisor; with `prewarm`, it makes the root container's
    /// cgroups while it starts (its default cgroup path only). A detached
    /// one (for `create`) outlives this command: it gets a session of its
    /// own and none of this command's standard streams, which may be a
    /// caller's pipes that must see their end when the container's do.
    pub(super) fn start(
        global: &GlobalOptions,
        id: &str,
        prewarm: bool,
        detached: bool,
    ) -> Result<Supervisor, RunError> {
        let socket = global.root.join(id).join("ctl.sock");
        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io("create a pipe")(e.into()))?;
        let exe = std::env::current_exe().map_err(io("find this executable"))?;
        let mut command = Command::new(exe);
        command.arg("--root").arg(&global.root);
        if let Some(log) = &global.log {
            command
                .arg("--log")
                .arg(log)
                .arg("--log-format")
                .arg(global.log_format.as_str());
        }
        if let Some(level) = global.log_level {
            command.args(["--log-level", level.as_str()]);
        } else if global.debug {
            command.arg("--debug");
        } else if global.log.is_none() {
            // Its log shares the terminal with the container: errors only,
            // unless asked otherwise.
            command.args(["--log-level", "error"]);
        }
        command
            .args(["boot", "--id", id, "--ready-fd", "3", "--socket"])
            .arg(&socket);
        if prewarm {
            command.args(["--prewarm", id]);
        }
        command.stdin(Stdio::null()).stdout(Stdio::null());
        if detached {
            command.stderr(Stdio::null());
        }
        let raw = ready_write.as_raw_fd();
        // SAFETY: dup2 and sigprocmask are async-signal-safe; they run in
        // the child between fork and exec and only touch descriptor 3 and
        // the child's signal mask (the signals this process blocks for its
        // forwarding thread must reach the supervisor).
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Whatever else this command inherited (a caller's
                // descriptors, those passed to the container) is not the
                // supervisor's to hold open.
                close_from_on_exec(4)?;
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if detached && libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(io("spawn the supervisor"))?;
        drop(ready_write);
        let mut ready = String::new();
        let _ = std::fs::File::from(ready_read).read_to_string(&mut ready);
        if ready != "ready\n" {
            let status = child.wait().map_err(io("wait for the supervisor"))?;
            return Err(RunError::Supervisor(match ready.strip_prefix("error: ") {
                Some(reason) => reason.trim_end().to_owned(),
                None => format!("it exited with {status} before serving"),
            }));
        }
        Ok(Supervisor {
            child,
            socket,
            detached,
        })
    }

    /// Its pid.
    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Stops it and waits until it has exited.
    pub(super) fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        if let Ok(pidfd) = process::pidfd_open(pid.as_raw()) {
            process::pidfd_wait_exited(pidfd.as_fd(), std::time::Duration::from_secs(10));
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// The identity of a live supervisor.
pub(super) fn supervisor_identity(supervisor: &Supervisor) -> Result<ProcessIdentity, StateError> {
    let pid = supervisor.pid();
    ProcessIdentity::of(pid).ok_or_else(|| StateError::Io {
        what: "read the supervisor's start time from",
        path: format!("/proc/{pid}/stat"),
        source: std::io::ErrorKind::NotFound.into(),
    })
}
