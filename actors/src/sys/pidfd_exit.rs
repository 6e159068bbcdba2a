//! How a process this one did not reap ended: a container process cloned
//! by a caller's spawner is the caller's child, and the subreaper above the
//! caller (conmon, containerd's shim) reaps it. The supervisor still needs
//! its status, for Wait, `events` and the container's state. It reads it
//! from the zombie while it is one (`/proc/PID/stat`, confirmed through the
//! pidfd to be the same process), and once it is reaped from the pidfd
//! itself (`PIDFD_GET_INFO` with `PIDFD_INFO_EXIT`, Linux 6.15).

use std::os::fd::{AsRawFd, BorrowedFd};

use super::process::{pidfd_signal, WaitStatus};
use super::procfs;

/// `PIDFD_INFO_EXIT`: ask for the exit status (given once reaped).
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)`, the structure's
/// first version, 64 bytes.
const PIDFD_GET_INFO: u64 = 0xC040_FF0B;

/// `struct pidfd_info`, first version (Linux 6.13; `exit_code` is filled
/// from 6.15).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

/// What a pidfd tells of its process's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitProbe {
    /// It has not exited.
    Running,
    /// It exited so.
    Exited(WaitStatus),
    /// It exited and was reaped before its status was read, on a kernel
    /// that keeps no status for pidfds (before 6.15).
    Unknown,
}

/// How the process behind `pidfd` (pid `pid` here) ended, if it has.
pub fn probe_exit(pidfd: BorrowedFd<'_>, pid: i32) -> ExitProbe {
    if let Some(status) = reaped_status(pidfd) {
        return ExitProbe::Exited(status);
    }
    let stat = procfs::stat(pid).ok();
    // Read before the check: a pid is reused only after its process is
    // reaped, so a pidfd that still reaches its process says the stat was
    // that process's.
    let unreaped = pidfd_signal(pidfd, 0).is_ok();
    match stat {
        Some(stat) if unreaped && matches!(stat.state, 'Z' | 'X') => {
            if let Some(code) = stat.exit_code {
                return ExitProbe::Exited(WaitStatus(code as u32));
            }
        }
        Some(_) if unreaped => return ExitProbe::Running,
        None if unreaped => return ExitProbe::Running,
        _ => {}
    }
    // Reaped between the two reads.
    match reaped_status(pidfd) {
        Some(status) => ExitProbe::Exited(status),
        None => ExitProbe::Unknown,
    }
}

/// The status the kernel keeps for a reaped process (Linux 6.15 and
/// later); `None` before it is reaped or on older kernels.
fn reaped_status(pidfd: BorrowedFd<'_>) -> Option<WaitStatus> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: PIDFD_GET_INFO reads `mask` and writes at most the first
    // version of the structure, which `info` is, and lives through the call.
    let rc = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_INFO as libc::c_ulong,
            &mut info as *mut PidfdInfo,
        )
    };
    if rc < 0 {
        // ENOTTY before 6.13; ESRCH once reaped before 6.15.
        return None;
    }
    (info.mask & PIDFD_INFO_EXIT != 0).then_some(WaitStatus(info.exit_code as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_info_structure_is_the_kernels_first_version() {
        assert_eq!(std::mem::size_of::<PidfdInfo>(), 64);
    }

    #[test]
    fn a_child_is_running_then_exited_as_a_zombie_then_once_reaped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; exit 7"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        let pidfd = crate::sys::process::pidfd_open(pid).expect("pidfd_open");
        assert_eq!(probe_exit(pidfd.as_fd(), pid), ExitProbe::Running);
        drop(child.stdin.take());
        // The pidfd turns readable at the exit: wait for that, not for time.
        assert!(crate::sys::process::pidfd_wait_exited(
            pidfd.as_fd(),
            std::time::Duration::from_secs(600)
        ));
        assert_eq!(
            probe_exit(pidfd.as_fd(), pid),
            ExitProbe::Exited(WaitStatus::exited(7))
        );
        let status = child.wait().expect("reap");
        assert_eq!(status.code(), Some(7));
        let after = probe_exit(pidfd.as_fd(), pid);
        // Linux 6.15 keeps the status for pidfds; older kernels cannot tell.
        assert!(
            after == ExitProbe::Exited(WaitStatus::exited(7)) || after == ExitProbe::Unknown,
            "{after:?}"
        );
    }
}
