//! Facts about, and limits of, the supervisor process itself.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft open-file limit to the hard limit, as the Go runtime
/// does: each connection and each passed descriptor costs one, and the
/// default soft limit of 1024 is too low for a thousand clients.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// Names the calling thread (truncated to 15 bytes by the kernel), so that
/// debug.Stacks and `top -H` tell the actors' threads apart.
pub fn set_thread_name(name: &str) {
    if let Ok(name) = std::ffi::CString::new(name) {
        // Naming is cosmetic; a failure changes nothing else.
        let _ = nix::sys::prctl::set_name(&name);
    }
}

/// One thread of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Kernel thread id.
    pub tid: u32,
    /// Its name (comm).
    pub name: String,
    /// Its scheduler state letter.
    pub state: String,
}

/// Lists this process's threads from /proc/self/task.
pub fn threads() -> io::Result<Vec<ThreadInfo>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A thread may exit between readdir and read: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(info) = parse_task_stat(tid, &stat) {
            out.push(info);
        }
    }
    out.sort_by_key(|t| t.tid);
    Ok(out)
}

/// This process's resident set size in bytes, from /proc/self/statm
/// (cheaper to read and parse than /proc/self/status).
pub fn own_rss() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    parse_statm_rss(&statm)
        .map(|pages| pages * page)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected /proc/self/statm {:?}", statm.trim()),
            )
        })
}

/// The resident pages of a statm line: `size resident shared text lib data dt`.
fn parse_statm_rss(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Parses `pid (comm) S ...`; comm may itself contain spaces and parentheses.
fn parse_task_stat(tid: u32, stat: &str) -> Option<ThreadInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let state = stat.get(close + 1..)?.split_whitespace().next()?.to_owned();
    Some(ThreadInfo { tid, name, state })
}

/// How a child ended, in the form `waitpid` reports it (Linux wait status:
/// `code << 8` for an exit, the signal number (`| 0x80` with a core dump)
/// for a kill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(pub u32);

impl WaitStatus {
    /// Not a status waitid gives: the process ended, but it was reaped by
    /// another (its caller's subreaper) on a kernel that keeps no status
    /// for pidfds (see `sys::pidfd_exit`).
    pub const UNKNOWN: WaitStatus = WaitStatus(u32::MAX);

    /// An exit with `code`.
    pub fn exited(code: i32) -> Self {
        WaitStatus(((code & 0xff) as u32) << 8)
    }

    /// A kill by `signal`.
    pub fn signaled(signal: i32, core_dumped: bool) -> Self {
        WaitStatus((signal & 0x7f) as u32 | if core_dumped { 0x80 } else { 0 })
    }

    /// The exit code, if the process exited.
    pub fn exit_code(self) -> Option<i32> {
        (self.0 & 0x7f == 0).then_some(((self.0 >> 8) & 0xff) as i32)
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<i32> {
        let sig = (self.0 & 0x7f) as i32;
        (sig != 0).then_some(sig)
    }

    /// The shell's view: the exit code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            _ => 255,
        }
    }
}

/// A reaped child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid (in the supervisor's pid namespace).
    pub pid: i32,
    /// How it ended.
    pub status: WaitStatus,
    /// Its start time (clock ticks since boot), read while it was a
    /// zombie: with the pid, it names this process and no later one that
    /// gets the same pid. `None` if /proc could not tell.
    pub start_time: Option<u64>,
    /// The inode of a pidfd naming it (see [`pidfd_inode`]), taken while it
    /// was a zombie: unique to it for the whole boot.
    pub pidfs_inode: Option<u64>,
}

fn reaped_from(info: &libc::siginfo_t) -> Option<Reaped> {
    // SAFETY: after a successful waitid with WEXITED, the child fields of
    // the siginfo are set (si_pid is 0 when nothing was waitable).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    let status = match info.si_code {
        libc::CLD_EXITED => WaitStatus::exited(status),
        libc::CLD_DUMPED => WaitStatus::signaled(status, true),
        _ => WaitStatus::signaled(status, false),
    };
    Some(Reaped {
        pid,
        status,
        start_time: None,
        pidfs_inode: None,
    })
}

/// Reaps one exited child of this process, any child, without blocking.
/// `Ok(None)` when none has exited (or there are no children). The child's
/// start time is read before it is reaped, while its pid cannot be reused.
pub fn reap_any() -> io::Result<Option<Reaped>> {
    let Some(peeked) = wait_any(libc::WNOWAIT)? else {
        return Ok(None);
    };
    let start_time = super::procfs::stat(peeked.pid).ok().map(|s| s.start_time);
    let pidfs_inode = pidfd_open(peeked.pid)
        .ok()
        .and_then(|pidfd| pidfd_inode(std::os::fd::AsFd::as_fd(&pidfd)));
    loop {
        // SAFETY: siginfo_t is plain data for which zeroes are valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable siginfo_t.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                peeked.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if rc == 0 {
            return Ok(reaped_from(&info).map(|r| Reaped {
                start_time,
                pidfs_inode,
                ..r
            }));
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e.into()),
        }
    }
}

/// `waitid(P_ALL, WEXITED | WNOHANG | extra)`, retried on EINTR.
fn wait_any(extra: i32) -> io::Result<Option<Reaped>> {
    // SAFETY: siginfo_t is plain data for which zeroes are valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `info` is a live, writable siginfo_t.
        let rc = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | extra,
            )
        };
        if rc == 0 {
            return Ok(reaped_from(&info));
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::ECHILD => return Ok(None),
            e => return Err(e.into()),
        }
    }
}

/// `pidfd_open(pid)`: a descriptor that names the process for as long as
/// it is held, immune to pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the descriptor it returns is new and ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The inode of `pidfd` when pidfds live in pidfs (Linux 6.9 and later),
/// where it is unique to the process for the whole boot, reaped or not;
/// `None` on older kernels, where every pidfd shares one anonymous inode.
pub fn pidfd_inode(pidfd: BorrowedFd<'_>) -> Option<u64> {
    /// `PID_FS_MAGIC`, pidfs's `f_type`.
    const PIDFS_MAGIC: i64 = 0x5049_4446;
    let fs = nix::sys::statfs::fstatfs(pidfd).ok()?;
    if fs.filesystem_type().0 as i64 != PIDFS_MAGIC {
        return None;
    }
    nix::sys::stat::fstat(pidfd).ok().map(|st| st.st_ino)
}

/// True when the process behind `pidfd` has exited (a zombie included).
pub fn pidfd_exited(pidfd: BorrowedFd<'_>) -> bool {
    pidfd_wait_exited(pidfd, std::time::Duration::ZERO)
}

/// Waits up to `timeout` for the process behind `pidfd` to exit; true if
/// it has (a zombie included). No polling loop: the pidfd says when.
pub fn pidfd_wait_exited(pidfd: BorrowedFd<'_>, timeout: std::time::Duration) -> bool {
    let timeout = nix::poll::PollTimeout::try_from(timeout).unwrap_or(nix::poll::PollTimeout::MAX);
    let mut fds = [nix::poll::PollFd::new(pidfd, nix::poll::PollFlags::POLLIN)];
    loop {
        match nix::poll::poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) => return n > 0,
            Err(_) => return false,
        }
    }
}

/// `pidfd_send_signal(pidfd, signal)`.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call with a null siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_usage_is_the_resident_pages_of_statm() {
        assert_eq!(parse_statm_rss("2000 350 200 10 0 400 0\n"), Some(350));
        assert_eq!(parse_statm_rss("2000\n"), None);
        let rss = own_rss().unwrap();
        assert!(rss > 0 && rss % 4096 == 0, "{rss}");
    }

    #[test]
    fn wait_statuses_decode_as_waitpid_does() {
        assert_eq!(WaitStatus::exited(3).0, 0x300);
        assert_eq!(WaitStatus::exited(3).exit_code(), Some(3));
        assert_eq!(WaitStatus::exited(0).shell_code(), 0);
        let killed = WaitStatus::signaled(9, false);
        assert_eq!(
            (killed.exit_code(), killed.signal(), killed.shell_code()),
            (None, Some(9), 137)
        );
        assert_eq!(WaitStatus::signaled(11, true).0, 0x8b);
    }

    #[test]
    fn parses_thread_names_with_parentheses() {
        let info = parse_task_stat(12, "12 (a (b) c) S 1 2 3").unwrap();
        assert_eq!(info.name, "a (b) c");
        assert_eq!(info.state, "S");
    }

    #[test]
    fn lists_the_current_thread() {
        let me = nix::unistd::gettid().as_raw() as u32;
        assert!(threads().unwrap().iter().any(|t| t.tid == me));
    }
}
