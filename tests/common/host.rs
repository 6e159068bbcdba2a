//! The host as the container tests inspect it: processes and their
//! /proc/PID/stat (children, zombies, those named so, those in a
//! container's cgroup), cgroup hierarchies and a container's cgroups,
//! namespaces, mount tables; and the lock that lets the tests that load the
//! host run alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::rpc::SANDBOX;

/// Tests that load the host (hundreds of execs) run alone: the others
/// share this lock, so their timing is not at the mercy of the load. Each
/// test binary has its own (the lock orders the tests of one binary, which
/// cargo runs one binary at a time).
static LOAD: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Taken by ordinary tests.
pub fn shared_host() -> std::sync::RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|p| p.into_inner())
}

/// Taken by tests that load the host.
pub fn whole_host() -> std::sync::RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(|p| p.into_inner())
}

/// Fields of /proc/PID/stat: state, ppid, start time (ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStat {
    pub state: char,
    pub ppid: i32,
    pub start: u64,
}

pub fn host_stat(pid: i32) -> Option<HostStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(HostStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process of the host, with its stat.
pub fn host_processes() -> Vec<(i32, HostStat)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| host_stat(pid).map(|s| (pid, s)))
        .collect()
}

/// Children of `parent` that are zombies, after giving them `patience` to
/// be reaped.
pub fn zombie_children(parent: u32, patience: Duration) -> Vec<i32> {
    let deadline = Instant::now() + patience;
    loop {
        let zombies: Vec<i32> = host_processes()
            .into_iter()
            .filter(|(_, s)| s.ppid == parent as i32 && s.state == 'Z')
            .map(|(pid, _)| pid)
            .collect();
        if zombies.is_empty() || Instant::now() > deadline {
            return zombies;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Children of `parent` (any state).
pub fn children(parent: u32) -> BTreeSet<i32> {
    host_processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == parent as i32)
        .map(|(pid, _)| pid)
        .collect()
}

/// The processes (pid, start time) that still exist (zombies included).
pub fn still_there(procs: &[(i32, u64)]) -> Vec<(i32, HostStat)> {
    procs
        .iter()
        .filter_map(|&(pid, start)| {
            host_stat(pid)
                .filter(|s| s.start == start)
                .map(|s| (pid, s))
        })
        .collect()
}

/// Host processes whose cgroup path names the container.
pub fn processes_in_cgroup_of(cid: &str) -> Vec<i32> {
    let needle = format!("/sandvisor/{SANDBOX}/{cid}");
    host_processes()
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|t| t.lines().any(|l| l.ends_with(&needle)))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// The cgroup hierarchies of the host (v1 controllers, the unified one, or
/// /sys/fs/cgroup itself on a pure v2 host).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("/sys/fs/cgroup")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    out.sort();
    out
}

/// The container's cgroup directories that exist.
pub fn cgroup_dirs(sandbox: &str, cid: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(sandbox).join(cid))
        .filter(|d| d.exists())
        .collect()
}

pub fn namespace_inode(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_str()
        .expect("utf-8")
        .to_owned()
}

pub fn mountinfo(pid: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The lines of `mountinfo(pid)` that name one of `ours` (the test's own
/// directories, the container's id): what a test can compare before and
/// after, since other processes of the machine (podman, another test
/// binary) mount and unmount elsewhere as they please meanwhile.
pub fn mountinfo_naming(pid: &str, ours: &[&str]) -> Vec<String> {
    mountinfo(pid)
        .into_iter()
        .filter(|line| ours.iter().any(|name| line.contains(name)))
        .collect()
}

/// Children of `parent` named `comm`.
pub fn children_named(parent: u32, comm: &str) -> Vec<i32> {
    children(parent)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

pub fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup")
}
