//! Reading processes from /proc (the supervisor's view: host pids).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Fields of /proc/PID/stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// The command name (comm).
    pub comm: String,
    /// Scheduler state letter.
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Controlling terminal device number (0: none).
    pub tty_nr: u32,
    /// Foreground process group of the controlling terminal (-1: none).
    pub tpgid: i32,
    /// User CPU time, in clock ticks.
    pub utime: u64,
    /// System CPU time, in clock ticks.
    pub stime: u64,
    /// Threads.
    pub num_threads: u32,
    /// Start time after boot, in clock ticks.
    pub start_time: u64,
    /// The exit status in waitpid's form, once it has exited (0 while it
    /// runs, and to readers not allowed to trace it); `None` where the
    /// kernel does not give it.
    pub exit_code: Option<i32>,
}

/// Parses the text of /proc/PID/stat.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // Field numbers from proc(5), minus 3 (pid, comm, and 1-based).
    let field = |n: usize| rest.get(n - 3).copied();
    Some(ProcStat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        tty_nr: field(7)?.parse::<i64>().ok()? as u32,
        tpgid: field(8)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        num_threads: field(20)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
        exit_code: field(52).and_then(|f| f.parse().ok()),
    })
}

/// /proc/PID/stat of a host pid.
pub fn stat(pid: i32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed /proc/{pid}/stat"),
        )
    })
}

/// A field of /proc/PID/status, whitespace-split.
pub fn status_field(pid: i32, name: &str) -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status_field_in(&text, name))
}

fn status_field_in(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The pid of a host process inside its own (innermost) pid namespace.
pub fn innermost_pid(pid: i32) -> io::Result<i32> {
    let nspid = status_field(pid, "NSpid")?;
    nspid.last().and_then(|p| p.parse().ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no NSpid for pid {pid}"),
        )
    })
}

/// The real uid of a host process.
pub fn uid(pid: i32) -> io::Result<u32> {
    status_field(pid, "Uid")?
        .first()
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no Uid for pid {pid}")))
}

/// The command line of a host process (arguments joined by spaces; the
/// comm in brackets for kernel threads and zombies).
pub fn cmdline(pid: i32) -> io::Result<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" "))
}

/// The inode of a process's namespace file (identifies the namespace).
pub fn namespace_inode(pid: &str, name: &str) -> io::Result<u64> {
    Ok(std::fs::metadata(namespace_path(pid, name))?.ino())
}

/// `/proc/PID/ns/NAME`.
pub fn namespace_path(pid: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{name}"))
}

/// Seconds since boot, and clock ticks per second.
pub fn uptime() -> io::Result<(f64, u64)> {
    let text = std::fs::read_to_string("/proc/uptime")?;
    let secs = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/uptime"))?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |t| t as u64);
    Ok((secs, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_comm() {
        let text = "42 (a) b) S 1 42 42 34816 42 4194560 100 0 0 0 7 3 0 0 20 0 2 0 12345 1000 200 18446744073709551615";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.comm, "a) b");
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.tty_nr, s.tpgid),
            ('S', 1, 42, 42, 34816, 42)
        );
        assert_eq!(
            (s.utime, s.stime, s.num_threads, s.start_time),
            (7, 3, 2, 12345)
        );
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        assert_eq!(stat(me).unwrap().ppid, nix::unistd::getppid().as_raw());
        assert_eq!(innermost_pid(me).unwrap(), me);
        assert_eq!(uid(me).unwrap(), nix::unistd::getuid().as_raw());
        assert!(cmdline(me).unwrap().contains("sandvisor"));
        assert_eq!(
            status_field_in("Uid:\t0\t0\t0\t0\n", "Uid"),
            ["0", "0", "0", "0"]
        );
    }
}
