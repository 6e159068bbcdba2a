//! A container's resource use, read from its cgroup control files (v1 or
//! v2, whichever has each controller) and its network namespace's
//! `/proc/PID/net/dev`, into runc's stats shape. A file that is missing
//! (a controller the host lacks) leaves its figures at zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cgroup::{controller_dir, v1_dir, v2_dir, Hierarchy};
use crate::api::container::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, MemoryEntry, MemoryStats, NetworkInterface,
    PidsStats, Stats, Throttling,
};

/// Reads the stats of the cgroup whose directories (one per hierarchy, in
/// `hierarchies`' order) are `dirs`; `init` is a process in its network
/// namespace.
pub fn read(hierarchies: &[Hierarchy], dirs: &[PathBuf], init: Option<i32>) -> Stats {
    let v1 = |controller: &str| v1_dir(hierarchies, dirs, controller).map(PathBuf::as_path);
    let v2 = v2_dir(hierarchies, dirs).map(PathBuf::as_path);
    Stats {
        cpu: match (v1("cpuacct"), v2) {
            (Some(acct), _) => cpu_v1(acct, v1("cpu").unwrap_or(acct)),
            (None, Some(dir)) => cpu_v2(dir),
            (None, None) => CpuStats::default(),
        },
        memory: match (v1("memory"), v2) {
            (Some(dir), _) => memory_v1(dir),
            (None, Some(dir)) => memory_v2(dir),
            (None, None) => MemoryStats::default(),
        },
        pids: v1("pids").or(v2).map(pids).unwrap_or_default(),
        blkio: match (v1("blkio"), v2) {
            (Some(dir), _) => BlkioStats {
                io_service_bytes_recursive: parse_blkio_v1(&read_text(
                    dir,
                    "blkio.throttle.io_service_bytes_recursive",
                )),
            },
            (None, Some(dir)) => BlkioStats {
                io_service_bytes_recursive: parse_io_stat(&read_text(dir, "io.stat")),
            },
            (None, None) => BlkioStats::default(),
        },
        network_interfaces: init
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok())
            .map(|text| parse_net_dev(&text))
            .unwrap_or_default(),
    }
}

/// The few figures a metrics export takes of a container: fewer files
/// than [`read`], because an export covers every container.
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
    let mut brief = Brief {
        processes: controller_dir(hierarchies, dirs, "pids")
            .map(|(dir, _)| read_number(dir, "pids.current", 0))
            .unwrap_or(0),
        ..Brief::default()
    };
    if let Some((dir, v1)) = memory_dir(hierarchies, dirs) {
        let (usage, limit) = if v1 {
            ("memory.usage_in_bytes", "memory.limit_in_bytes")
        } else {
            ("memory.current", "memory.max")
        };
        brief.memory_usage = read_number(dir, usage, 0);
        brief.memory_limit = Some(read_number(dir, limit, u64::MAX)).filter(|&l| l < V1_UNLIMITED);
        brief.oom_kills = oom_kills_in(dir, v1);
    }
    brief.cpu_usage_ns = match controller_dir(hierarchies, dirs, "cpuacct") {
        Some((dir, false)) => read_number(dir, "cpuacct.usage", 0),
        _ => v2_dir(hierarchies, dirs)
            .map(|dir| {
                parse_flat_keyed(&read_text(dir, "cpu.stat"))
                    .get("usage_usec")
                    .map_or(0, |us| us * 1000)
            })
            .unwrap_or(0),
    };
    brief
}

/// How many processes the OOM killer has killed in the cgroup (0 without
/// a memory controller).
pub fn oom_kills(hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> u64 {
    memory_dir(hierarchies, dirs)
        .map(|(dir, v1)| oom_kills_in(dir, v1))
        .unwrap_or(0)
}

/// The memory controller's directory, and whether it is v1.
fn memory_dir<'a>(hierarchies: &[Hierarchy], dirs: &'a [PathBuf]) -> Option<(&'a Path, bool)> {
    controller_dir(hierarchies, dirs, "memory").map(|(dir, v2)| (dir.as_path(), !v2))
}

fn oom_kills_in(dir: &Path, v1: bool) -> u64 {
    let file = if v1 {
        "memory.oom_control"
    } else {
        "memory.events"
    };
    parse_flat_keyed(&read_text(dir, file))
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

fn read_text(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

/// A one-number file; "max" (no limit) reads as `max`.
fn read_number(dir: &Path, file: &str, max: u64) -> u64 {
    let text = read_text(dir, file);
    match text.trim() {
        "max" => max,
        t => t.parse().unwrap_or(0),
    }
}

/// "key value" lines, as cpu.stat, memory.stat and cpuacct.stat are.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

fn cpu_v1(acct: &Path, cpu: &Path) -> CpuStats {
    // cpuacct.stat counts USER_HZ ticks.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let tick_ns = 1_000_000_000 / hz;
    let ticks = parse_flat_keyed(&read_text(acct, "cpuacct.stat"));
    let throttle = parse_flat_keyed(&read_text(cpu, "cpu.stat"));
    CpuStats {
        usage: CpuUsage {
            total: read_number(acct, "cpuacct.usage", 0),
            percpu: read_text(acct, "cpuacct.usage_percpu")
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect(),
            kernel: ticks.get("system").copied().unwrap_or(0) * tick_ns,
            user: ticks.get("user").copied().unwrap_or(0) * tick_ns,
        },
        throttling: Throttling {
            periods: throttle.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
        },
    }
}

fn cpu_v2(dir: &Path) -> CpuStats {
    let stat = parse_flat_keyed(&read_text(dir, "cpu.stat"));
    let micros = |key: &str| stat.get(key).copied().unwrap_or(0) * 1000;
    CpuStats {
        usage: CpuUsage {
            total: micros("usage_usec"),
            percpu: Vec::new(),
            kernel: micros("system_usec"),
            user: micros("user_usec"),
        },
        throttling: Throttling {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: micros("throttled_usec"),
        },
    }
}

fn memory_v1(dir: &Path) -> MemoryStats {
    let raw = parse_flat_keyed(&read_text(dir, "memory.stat"));
    let entry = |prefix: &str| MemoryEntry {
        limit: read_number(dir, &format!("{prefix}.limit_in_bytes"), u64::MAX),
        usage: read_number(dir, &format!("{prefix}.usage_in_bytes"), 0),
        max: read_number(dir, &format!("{prefix}.max_usage_in_bytes"), 0),
        failcnt: read_number(dir, &format!("{prefix}.failcnt"), 0),
    };
    MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory"),
        swap: entry("memory.memsw"),
        oom_kills: oom_kills_in(dir, true),
        raw,
    }
}

fn memory_v2(dir: &Path) -> MemoryStats {
    let raw = parse_flat_keyed(&read_text(dir, "memory.stat"));
    let events = parse_flat_keyed(&read_text(dir, "memory.events"));
    MemoryStats {
        cache: raw.get("file").copied().unwrap_or(0),
        usage: MemoryEntry {
            limit: read_number(dir, "memory.max", u64::MAX),
            usage: read_number(dir, "memory.current", 0),
            max: read_number(dir, "memory.peak", 0),
            failcnt: events.get("max").copied().unwrap_or(0),
        },
        swap: MemoryEntry {
            limit: read_number(dir, "memory.swap.max", u64::MAX),
            usage: read_number(dir, "memory.swap.current", 0),
            max: read_number(dir, "memory.swap.peak", 0),
            failcnt: parse_flat_keyed(&read_text(dir, "memory.swap.events"))
                .get("max")
                .copied()
                .unwrap_or(0),
        },
        oom_kills: events.get("oom_kill").copied().unwrap_or(0),
        raw,
    }
}

fn pids(dir: &Path) -> PidsStats {
    PidsStats {
        current: read_number(dir, "pids.current", 0),
        limit: read_number(dir, "pids.max", 0),
    }
}

fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: "MAJ:MIN Op bytes"
/// lines (Read and Write kept), and a "Total" line.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (major, minor) = device(parts.next()?)?;
            let op = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            matches!(op, "Read" | "Write").then(|| BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: "MAJ:MIN rbytes=N wbytes=N ..." lines.
pub fn parse_io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(device) else {
            continue;
        };
        for field in parts {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let op = match key {
                "rbytes" => "Read",
                "wbytes" => "Write",
                _ => continue,
            };
            if let Ok(value) = value.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_owned(),
                    value,
                });
            }
        }
    }
    out
}

/// `/proc/PID/net/dev`, loopback left out.
pub fn parse_net_dev(text: &str) -> Vec<NetworkInterface> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let n: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            (n.len() >= 12).then(|| NetworkInterface {
                name: name.to_owned(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse_into_figures() {
        let stat = parse_flat_keyed("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nbad\n");
        assert_eq!(stat.get("usage_usec"), Some(&1500));
        assert_eq!(stat.len(), 3);
    }

    #[test]
    fn block_io_parses_in_both_versions() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Total 12288\nTotal 12288\n";
        let want = vec![
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096,
            },
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192,
            },
        ];
        assert_eq!(parse_blkio_v1(v1), want);
        assert_eq!(
            parse_io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
            want
        );
    }

    #[test]
    fn interfaces_but_loopback_are_listed() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        assert_eq!(
            parse_net_dev(text),
            vec![NetworkInterface {
                name: "eth0".into(),
                rx_bytes: 2000,
                rx_packets: 20,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 3000,
                tx_packets: 30,
                tx_errors: 3,
                tx_dropped: 4,
            }]
        );
    }

    #[test]
    fn a_v2_cgroup_reads_from_its_files_and_max_means_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 1024\nfile 2048\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let hierarchies = [Hierarchy {
            mount: dir.path().to_path_buf(),
            root: "/".into(),
            v1_controllers: None,
        }];
        let stats = read(&hierarchies, &[dir.path().to_path_buf()], None);
        assert_eq!(stats.cpu.usage.total, 2_000_000);
        assert_eq!(
            (stats.cpu.usage.user, stats.cpu.usage.kernel),
            (1_500_000, 500_000)
        );
        assert_eq!(stats.cpu.throttling.throttled_time, 30_000);
        assert_eq!(stats.memory.usage.usage, 4096);
        assert_eq!(stats.memory.usage.limit, u64::MAX);
        assert_eq!(stats.memory.usage.failcnt, 3);
        assert_eq!(stats.memory.oom_kills, 1);
        assert_eq!(oom_kills(&hierarchies, &[dir.path().to_path_buf()]), 1);
        assert_eq!(stats.memory.cache, 2048);
        assert_eq!(stats.memory.raw.get("anon"), Some(&1024));
        assert_eq!((stats.pids.current, stats.pids.limit), (2, 0));
    }
}
