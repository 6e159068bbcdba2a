//! A container's resource use, read from its cgroup control files (v1 or
//! v2, whichever has each controller) and its network namespace's
//! `/proc/PID/net/dev`, into runc's stats shape. A file that is missing
//! (a controller the host lacks) leaves its figures at zero.

mod breakdown;
mod figures;
mod files;
mod parse;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use super::cgroup::{controller_dir, v1_dir, v2_dir, Hierarchy};
pub use breakdown::{memory_breakdown, memory_breakdown_v1, memory_breakdown_v2, MemoryBreakdown};
pub use figures::{
    CgroupStats, CpuFigures, CpuTime, DeviceBytes, InterfaceCounters, MemoryCounter, MemoryFigures,
    PidsFigures, ThrottleFigures,
};
pub use files::CgroupFiles;
pub use parse::{parse_blkio_v1, parse_flat_keyed, parse_io_stat, parse_net_dev};
use v1::{cpu_v1, memory_v1};
use v2::{cpu_v2, memory_v2};

impl CgroupFiles {
    /// The stats of the cgroup whose directories (one per hierarchy, in
    /// `hierarchies`' order) are `dirs`; `init` is a process in its
    /// network namespace.
    pub fn read_stats(
        &mut self,
        hierarchies: &[Hierarchy],
        dirs: &[PathBuf],
        init: Option<i32>,
    ) -> CgroupStats {
        let v1 = |controller: &str| v1_dir(hierarchies, dirs, controller).map(PathBuf::as_path);
        let v2 = v2_dir(hierarchies, dirs).map(PathBuf::as_path);
        CgroupStats {
            cpu: match (v1("cpuacct"), v2) {
                (Some(acct), _) => cpu_v1(self, acct, v1("cpu").unwrap_or(acct)),
                (None, Some(dir)) => cpu_v2(self, dir),
                (None, None) => CpuFigures::default(),
            },
            memory: match (v1("memory"), v2) {
                (Some(dir), _) => memory_v1(self, dir),
                (None, Some(dir)) => memory_v2(self, dir),
                (None, None) => MemoryFigures::default(),
            },
            pids: v1("pids")
                .or(v2)
                .map(|dir| pids(self, dir))
                .unwrap_or_default(),
            io_service_bytes: match (v1("blkio"), v2) {
                (Some(dir), _) => {
                    parse_blkio_v1(&self.text(dir, "blkio.throttle.io_service_bytes_recursive"))
                }
                (None, Some(dir)) => parse_io_stat(&self.text(dir, "io.stat")),
                (None, None) => Vec::new(),
            },
            network_interfaces: init
                .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok())
                .map(|text| parse_net_dev(&text))
                .unwrap_or_default(),
        }
    }
}

/// The few figures a metrics export takes of a container: fewer files
/// than [`CgroupFiles::stats`], because an export covers every container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Brief {
    /// pids.current.
    pub processes: u64,
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// The memory limit; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    /// OOM kills in the memory cgroup.
    pub oom_kills: u64,
}

/// v1 reports "no limit" as the largest page-aligned signed value.
const V1_UNLIMITED: u64 = 1 << 62;

/// Reads [`Brief`] for the cgroup whose directories are `dirs`.
pub fn brief(hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> Brief {
    CgroupFiles::default().brief(hierarchies, dirs)
}

impl CgroupFiles {
    /// [`brief`], through this reader's descriptors.
    pub fn brief(&mut self, hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> Brief {
        let mut brief = Brief {
            processes: controller_dir(hierarchies, dirs, "pids")
                .map(|(dir, _)| self.number(dir, "pids.current", 0))
                .unwrap_or(0),
            ..Brief::default()
        };
        if let Some((dir, v1)) = memory_dir(hierarchies, dirs) {
            let (usage, limit) = if v1 {
                ("memory.usage_in_bytes", "memory.limit_in_bytes")
            } else {
                ("memory.current", "memory.max")
            };
            brief.memory_usage = self.number(dir, usage, 0);
            brief.memory_limit =
                Some(self.number(dir, limit, u64::MAX)).filter(|&l| l < V1_UNLIMITED);
            brief.oom_kills = self.oom_kills_in(dir, v1);
        }
        brief.cpu_usage_ns = match controller_dir(hierarchies, dirs, "cpuacct") {
            Some((dir, false)) => self.number(dir, "cpuacct.usage", 0),
            _ => v2_dir(hierarchies, dirs)
                .map(|dir| {
                    parse_flat_keyed(&self.text(dir, "cpu.stat"))
                        .get("usage_usec")
                        .map_or(0, |us| us * 1000)
                })
                .unwrap_or(0),
        };
        brief
    }
}

/// The memory controller's directory, and whether it is v1.
fn memory_dir<'a>(hierarchies: &[Hierarchy], dirs: &'a [PathBuf]) -> Option<(&'a Path, bool)> {
    controller_dir(hierarchies, dirs, "memory").map(|(dir, v2)| (dir.as_path(), !v2))
}

fn pids(f: &mut CgroupFiles, dir: &Path) -> PidsFigures {
    PidsFigures {
        current: f.number(dir, "pids.current", 0),
        limit: f.number(dir, "pids.max", 0),
    }
}
