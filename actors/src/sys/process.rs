//! Facts about, and limits of, the supervisor process itself.

use std::io;

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

/// Parses `pid (comm) S ...`; comm may itself contain spaces and parentheses.
fn parse_task_stat(tid: u32, stat: &str) -> Option<ThreadInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let state = stat.get(close + 1..)?.split_whitespace().next()?.to_owned();
    Some(ThreadInfo { tid, name, state })
}

#[cfg(test)]
mod tests {
    use super::*;

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
