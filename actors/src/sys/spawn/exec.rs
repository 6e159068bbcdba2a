//! An exec into a running container, cloned in two steps so that the
//! process the container can see never holds a descriptor of the host.
//!
//! The spawner clones a helper in its own pid namespace, which no container
//! sees. The helper joins the container's cgroups, namespaces and root
//! (with the descriptors that takes), closes every descriptor but the
//! process's own (status pipe, stdio, the ones its spec passes) and the
//! channel back to the spawner, and only then clones the process into the
//! container's pid namespace (`CLONE_PARENT`: the helper's parent's child,
//! the supervisor's for the main spawner and the caller's spawner's own for
//! a caller's exec). It sends the process's pidfd back and exits; a
//! caller's spawner, whose child it is, reaps it. The process closes the channel, and sets itself up and execs as
//! any other (`child::exec_process`); like everything the spawner clones,
//! it is non-dumpable until execve.
//!
//! When the helper fails it reports why on the status pipe and exits
//! without sending anything; the spawner then answers with the helper
//! itself, so that the caller sees the failure as the process's.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::child::{self, Fds, Never, Step};
use super::descriptors;
use super::host_kernel::HostKernel;
use super::{clone_child, Cloned, SpawnFailure};
use crate::sys::plan::{ChildReport, PlanKind, SpawnPlan};
use crate::sys::socket::{recv_with_fds, send_with_fds, ControlBuffer};

/// How long the spawner waits for a helper's answer. A helper only joins
/// namespaces and clones, which takes well under a second; one that takes
/// longer is killed, and stands for the process.
const HELPER_PATIENCE_SECS: i64 = 10;

fn failure(step: &str, errno: Errno) -> SpawnFailure {
    SpawnFailure {
        step: step.to_owned(),
        errno: errno as i32,
    }
}

/// Clones the helper for exec plan `plan` with `flags` (into the cgroup v2
/// directory `into_cgroup` if given), and returns the process it cloned.
pub(super) fn spawn(
    plan: &SpawnPlan,
    fds: Vec<OwnedFd>,
    flags: u64,
    into_cgroup: Option<RawFd>,
) -> Result<(Cloned, OwnedFd), SpawnFailure> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| failure("socketpair", e))?;
    let timeout = nix::sys::time::TimeVal::new(HELPER_PATIENCE_SECS, 0);
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
        .map_err(|e| failure("set helper timeout", e))?;
    match clone_child(flags, into_cgroup) {
        Ok(None) => {
            drop(ours);
            let channel = theirs.as_raw_fd();
            child::run_steps(plan, &fds, |fds| helper(plan, fds, channel))
        }
        Ok(Some((helper_pid, helper_pidfd))) => {
            drop(theirs);
            drop(fds);
            match receive_pidfd(&ours) {
                Some((pid, pidfd)) if flags & libc::CLONE_PARENT as u64 == 0 => {
                    // Ours: it exits right after sending, and is nobody
                    // else's to reap.
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper_pid), None);
                    Ok((Cloned { pid, helper: None }, pidfd))
                }
                Some((pid, pidfd)) => Ok((
                    Cloned {
                        pid,
                        helper: Some(helper_pid),
                    },
                    pidfd,
                )),
                None => {
                    // Failed (and said why), or stuck: it stands for the
                    // process either way.
                    let _ = crate::sys::process::pidfd_signal(helper_pidfd.as_fd(), libc::SIGKILL);
                    Ok((
                        Cloned {
                            pid: helper_pid,
                            helper: None,
                        },
                        helper_pidfd,
                    ))
                }
            }
        }
        Err(errno) => Err(failure("clone3", errno)),
    }
}

/// The process's pid and pidfd, if the helper sent them. The pid comes
/// from the helper's clone3: the process may have been reaped already,
/// and its pidfd no longer tells.
fn receive_pidfd(channel: &OwnedFd) -> Option<(i32, OwnedFd)> {
    let mut buf = [0u8; 4];
    let mut control = ControlBuffer::default();
    loop {
        match recv_with_fds(channel.as_fd(), &mut buf, &mut control, false) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
            Ok(received) if received.len == buf.len() => {
                let pid = i32::from_ne_bytes(buf);
                return received.fds.into_iter().next().map(|fd| (pid, fd));
            }
            Ok(_) => return None,
        }
    }
}

/// The helper: enters the container but for its pid namespace, keeps only
/// the process's descriptors, clones the process and sends its pidfd.
fn helper(plan: &SpawnPlan, fds: &Fds<'_>, channel: RawFd) -> Step<Never> {
    let PlanKind::Exec(exec) = &plan.kind else {
        return Err(child::other("spawn", "", "not an exec plan"));
    };
    if !plan.caller_parented {
        child::die_with_supervisor(&HostKernel, plan.supervisor_pid)?;
    }
    child::join_container(&HostKernel, exec, fds)?;
    if let Some(index) = exec.pid_ns {
        let pid_ns = fds.get(index, "pid namespace")?;
        // Only the children of this process are born in it.
        nix::sched::setns(pid_ns, nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| child::errno_failure("setns", "pid", e))?;
    }
    let mut keep = descriptors::raw_fds(fds, &descriptors::process_fd_indexes(plan))?;
    keep.push(channel);
    descriptors::close_all_except(&keep)?;
    let flags = (libc::CLONE_PIDFD | libc::CLONE_PARENT) as u64;
    let (pid, pidfd) = match clone_child(flags, None) {
        Ok(None) => process(plan, fds, channel),
        Ok(Some(cloned)) => cloned,
        Err(errno) => return Err(child::errno_failure("clone3", "", errno)),
    };
    // SAFETY: `channel` is the live socket this helper was given; the
    // borrow ends before the helper exits.
    let channel = unsafe { std::os::fd::BorrowedFd::borrow_raw(channel) };
    let pid = pid.to_ne_bytes();
    if let Err(e) = send_with_fds(channel, &[IoSlice::new(&pid)], &[pidfd.as_fd()], false) {
        // The spawner will take this helper for the process: the real one
        // must not run unknown.
        let _ = crate::sys::process::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
        return Err(child::io_failure("send pidfd", "", &e));
    }
    // SAFETY: _exit ends the helper without running the spawner's
    // destructors.
    unsafe { libc::_exit(0) }
}

/// The process, in the container's pid namespace: holds only its own
/// descriptors (and, until its first step, the helper's channel).
fn process(plan: &SpawnPlan, fds: &Fds<'_>, channel: RawFd) -> ! {
    child::run_steps(plan, fds.0, |fds| {
        // SAFETY: the channel is the helper's; this copy of it is closed
        // once and never used.
        unsafe { libc::close(channel) };
        if !plan.caller_parented {
            die_with_parent(plan.supervisor_pid)?;
        }
        let status = fds.get(plan.status, "status pipe")?;
        child::report(
            status.as_raw_fd(),
            &ChildReport::Pid(nix::unistd::getpid().as_raw()),
        );
        child::exec_process(&HostKernel, &plan.process, fds, false)
    })
}

/// Arms the death signal for the supervisor (the parent, by CLONE_PARENT).
/// The helper checked that the supervisor lived; if it died since, this
/// process's parent is another one (or, seen from a pid namespace whose
/// init died with the supervisor, 0: the namespace is being killed).
fn die_with_parent(supervisor: i32) -> Step {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| child::errno_failure("set parent death signal", "", e))?;
    let parent = nix::unistd::getppid().as_raw();
    if parent != 0 && parent != supervisor {
        return Err(child::other(
            "check parent",
            "",
            "the supervisor exited during setup",
        ));
    }
    Ok(())
}
