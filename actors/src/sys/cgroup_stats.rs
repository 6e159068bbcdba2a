//! A container's resource use, read from its cgroup control files (v1 or
//! v2, whichever has each controller) and its network namespace's
//! `/proc/PID/net/dev`, into runc's stats shape. A file that is missing
//! (a controller the host lacks) leaves its figures at zero.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::cgroup::{controller_dir, v1_dir, v2_dir, Hierarchy};

/// A cgroup's resource use, as its control files give it, in runc's
/// figures (the caller gives them the wire's shape).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time and throttling.
    pub cpu: CpuFigures,
    /// Memory use and limits.
    pub memory: MemoryFigures,
    /// Process counts.
    pub pids: PidsFigures,
    /// Bytes read and written, per device.
    pub io_service_bytes: Vec<DeviceBytes>,
    /// The interfaces of its network namespace (loopback left out).
    pub network_interfaces: Vec<InterfaceCounters>,
}

/// CPU figures, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFigures {
    /// Time used.
    pub usage: CpuTime,
    /// CFS throttling.
    pub throttling: ThrottleFigures,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// In all.
    pub total: u64,
    /// Per CPU (cgroup v1 only).
    pub percpu: Vec<u64>,
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottleFigures {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which it was throttled.
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    pub throttled_time: u64,
}

/// Memory figures, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Page cache.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryCounter,
    /// Swap (v1: memory plus swap).
    pub swap: MemoryCounter,
    /// Processes the OOM killer has killed in it.
    pub oom_kills: u64,
    /// The controller's `memory.stat`, as it names its figures.
    pub raw: BTreeMap<String, u64>,
}

/// Use against a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryCounter {
    /// The limit (the largest u64 for none).
    pub limit: u64,
    /// In use now.
    pub usage: u64,
    /// The most in use so far.
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsFigures {
    /// Processes and threads now.
    pub current: u64,
    /// The limit (0: none).
    pub limit: u64,
}

/// One device's bytes read or written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceBytes {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read` or `Write`.
    pub op: &'static str,
    /// Bytes.
    pub value: u64,
}

/// A network interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// Its name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

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

/// Reads a cgroup's control files through descriptors of its directories,
/// opened once and kept: a file is then one `openat` of its own name, one
/// `read` and one `close`, where a path would be walked from the root each
/// time (the most of the cost, for 20 files a stats event, per container).
/// A file that cannot be read reads as empty.
#[derive(Debug, Default)]
pub struct CgroupFiles {
    dirs: HashMap<PathBuf, OwnedFd>,
}

/// Control files are small; a larger one is read on in further reads.
const READ_CHUNK: usize = 16 * 1024;

impl CgroupFiles {
    /// The text of control file `file` of the cgroup directory `dir`.
    pub fn text(&mut self, dir: &Path, file: &str) -> String {
        self.try_text(dir, file).unwrap_or_default()
    }

    fn try_text(&mut self, dir: &Path, file: &str) -> nix::Result<String> {
        let dir_fd = match self.dirs.get(dir) {
            Some(fd) => fd,
            None => {
                let fd = nix::fcntl::open(
                    dir,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                self.dirs.entry(dir.to_owned()).or_insert(fd)
            }
        };
        let fd = nix::fcntl::openat(
            dir_fd,
            file,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut bytes = vec![0u8; READ_CHUNK];
        let mut len = 0;
        loop {
            let n = nix::unistd::read(&fd, &mut bytes[len..])?;
            len += n;
            // A control file is generated whole by each read from its
            // start: a read that did not fill the buffer got to the end,
            // and a second read to see 0 would be a wasted system call.
            if n == 0 || len < bytes.len() {
                break;
            }
            bytes.resize(bytes.len() + READ_CHUNK, 0);
        }
        bytes.truncate(len);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A one-number file; "max" (no limit) reads as `max`.
    fn number(&mut self, dir: &Path, file: &str, max: u64) -> u64 {
        match self.text(dir, file).trim() {
            "max" => max,
            t => t.parse().unwrap_or(0),
        }
    }

    /// How many processes the OOM killer has killed in the cgroup (0
    /// without a memory controller).
    pub fn oom_kills(&mut self, hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> u64 {
        memory_dir(hierarchies, dirs)
            .map(|(dir, v1)| self.oom_kills_in(dir, v1))
            .unwrap_or(0)
    }

    fn oom_kills_in(&mut self, dir: &Path, v1: bool) -> u64 {
        let file = if v1 {
            "memory.oom_control"
        } else {
            "memory.events"
        };
        parse_flat_keyed(&self.text(dir, file))
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    }
}

/// A one-number file read by path; "max" (no limit) reads as `max`.
fn read_number(dir: &Path, file: &str, max: u64) -> u64 {
    CgroupFiles::default().number(dir, file, max)
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

fn cpu_v1(f: &mut CgroupFiles, acct: &Path, cpu: &Path) -> CpuFigures {
    // cpuacct.stat counts USER_HZ ticks.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let tick_ns = 1_000_000_000 / hz;
    let ticks = parse_flat_keyed(&f.text(acct, "cpuacct.stat"));
    let throttle = parse_flat_keyed(&f.text(cpu, "cpu.stat"));
    CpuFigures {
        usage: CpuTime {
            total: f.number(acct, "cpuacct.usage", 0),
            percpu: f
                .text(acct, "cpuacct.usage_percpu")
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect(),
            kernel: ticks.get("system").copied().unwrap_or(0) * tick_ns,
            user: ticks.get("user").copied().unwrap_or(0) * tick_ns,
        },
        throttling: ThrottleFigures {
            periods: throttle.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
        },
    }
}

fn cpu_v2(f: &mut CgroupFiles, dir: &Path) -> CpuFigures {
    let stat = parse_flat_keyed(&f.text(dir, "cpu.stat"));
    let micros = |key: &str| stat.get(key).copied().unwrap_or(0) * 1000;
    CpuFigures {
        usage: CpuTime {
            total: micros("usage_usec"),
            percpu: Vec::new(),
            kernel: micros("system_usec"),
            user: micros("user_usec"),
        },
        throttling: ThrottleFigures {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: micros("throttled_usec"),
        },
    }
}

fn memory_v1(f: &mut CgroupFiles, dir: &Path) -> MemoryFigures {
    let raw = parse_flat_keyed(&f.text(dir, "memory.stat"));
    let mut entry = |prefix: &str| MemoryCounter {
        limit: f.number(dir, &format!("{prefix}.limit_in_bytes"), u64::MAX),
        usage: f.number(dir, &format!("{prefix}.usage_in_bytes"), 0),
        max: f.number(dir, &format!("{prefix}.max_usage_in_bytes"), 0),
        failcnt: f.number(dir, &format!("{prefix}.failcnt"), 0),
    };
    MemoryFigures {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory"),
        swap: entry("memory.memsw"),
        oom_kills: f.oom_kills_in(dir, true),
        raw,
    }
}

fn memory_v2(f: &mut CgroupFiles, dir: &Path) -> MemoryFigures {
    let raw = parse_flat_keyed(&f.text(dir, "memory.stat"));
    let events = parse_flat_keyed(&f.text(dir, "memory.events"));
    MemoryFigures {
        cache: raw.get("file").copied().unwrap_or(0),
        usage: MemoryCounter {
            limit: f.number(dir, "memory.max", u64::MAX),
            usage: f.number(dir, "memory.current", 0),
            max: f.number(dir, "memory.peak", 0),
            failcnt: events.get("max").copied().unwrap_or(0),
        },
        swap: MemoryCounter {
            limit: f.number(dir, "memory.swap.max", u64::MAX),
            usage: f.number(dir, "memory.swap.current", 0),
            max: f.number(dir, "memory.swap.peak", 0),
            failcnt: parse_flat_keyed(&f.text(dir, "memory.swap.events"))
                .get("max")
                .copied()
                .unwrap_or(0),
        },
        oom_kills: events.get("oom_kill").copied().unwrap_or(0),
        raw,
    }
}

/// A memory cgroup's use, in bytes, broken down: `anonymous`,
/// `page_cache`, `shmem` and `kernel` are disjoint; `mapped` is the part
/// of the page cache and shmem mapped into processes; `total` is the
/// kernel's own counter of everything charged. Every figure counts the
/// cgroup's descendants too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryBreakdown {
    /// `memory.usage_in_bytes` (v1) or `memory.current` (v2).
    pub total: u64,
    /// Anonymous pages (v1 `rss`, v2 `anon`).
    pub anonymous: u64,
    /// File pages, shmem left out (v1 `cache` - `shmem`, v2 `file` - `shmem`).
    pub page_cache: u64,
    /// Mapped file pages (v1 `mapped_file`, v2 `file_mapped`).
    pub mapped: u64,
    /// tmpfs and shared memory (`shmem`).
    pub shmem: u64,
    /// Kernel memory (v1 `memory.kmem.usage_in_bytes`, v2 `kernel`, or
    /// the sum of its parts on kernels before 5.18).
    pub kernel: u64,
}

/// The breakdown of v1 memory cgroup figures: `stat` is its memory.stat,
/// whose `total_` keys are hierarchical (the plain ones, which leave the
/// children out, only stand in on a kernel without them); `kmem` is
/// memory.kmem.usage_in_bytes, where the kernel has it.
pub fn memory_breakdown_v1(stat: &str, usage: u64, kmem: Option<u64>) -> MemoryBreakdown {
    let stat = parse_flat_keyed(stat);
    let get = |key: &str| {
        stat.get(&format!("total_{key}"))
            .or_else(|| stat.get(key))
            .copied()
            .unwrap_or(0)
    };
    // v1's cache counts shmem as well.
    let shmem = get("shmem");
    MemoryBreakdown {
        total: usage,
        anonymous: get("rss"),
        page_cache: get("cache").saturating_sub(shmem),
        mapped: get("mapped_file"),
        shmem,
        kernel: kmem.unwrap_or(0),
    }
}

/// The breakdown of v2 memory cgroup figures: `stat` is its memory.stat
/// (hierarchical), `current` its memory.current.
pub fn memory_breakdown_v2(stat: &str, current: u64) -> MemoryBreakdown {
    let stat = parse_flat_keyed(stat);
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    let shmem = get("shmem");
    // `kernel` sums these since 5.18; before, only the parts are there.
    let kernel = stat.get("kernel").copied().unwrap_or_else(|| {
        ["kernel_stack", "slab", "sock", "percpu", "pagetables"]
            .iter()
            .map(|key| get(key))
            .sum()
    });
    MemoryBreakdown {
        total: current,
        anonymous: get("anon"),
        page_cache: get("file").saturating_sub(shmem),
        mapped: get("file_mapped"),
        shmem,
        kernel,
    }
}

/// Reads the breakdown of the memory cgroup at `dir` (`v1`: of a v1
/// hierarchy). Fails with `NotFound` when it has no memory.stat: the
/// cgroup is gone, or (v2) its parent does not enable the controller.
pub fn memory_breakdown(dir: &Path, v1: bool) -> std::io::Result<MemoryBreakdown> {
    let stat = std::fs::read_to_string(dir.join("memory.stat"))?;
    Ok(if v1 {
        let kmem = std::fs::read_to_string(dir.join("memory.kmem.usage_in_bytes"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        memory_breakdown_v1(&stat, read_number(dir, "memory.usage_in_bytes", 0), kmem)
    } else {
        memory_breakdown_v2(&stat, read_number(dir, "memory.current", 0))
    })
}

fn pids(f: &mut CgroupFiles, dir: &Path) -> PidsFigures {
    PidsFigures {
        current: f.number(dir, "pids.current", 0),
        limit: f.number(dir, "pids.max", 0),
    }
}

fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: "MAJ:MIN Op bytes"
/// lines (Read and Write kept), and a "Total" line.
pub fn parse_blkio_v1(text: &str) -> Vec<DeviceBytes> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (major, minor) = device(parts.next()?)?;
            let op = match parts.next()? {
                "Read" => "Read",
                "Write" => "Write",
                _ => return None,
            };
            let value = parts.next()?.parse().ok()?;
            Some(DeviceBytes {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: "MAJ:MIN rbytes=N wbytes=N ..." lines.
pub fn parse_io_stat(text: &str) -> Vec<DeviceBytes> {
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
                out.push(DeviceBytes {
                    major,
                    minor,
                    op,
                    value,
                });
            }
        }
    }
    out
}

/// `/proc/PID/net/dev`, loopback left out.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
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
            (n.len() >= 12).then(|| InterfaceCounters {
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
            DeviceBytes {
                major: 8,
                minor: 0,
                op: "Read",
                value: 4096,
            },
            DeviceBytes {
                major: 8,
                minor: 0,
                op: "Write",
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
            vec![InterfaceCounters {
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
    fn a_kept_reader_sees_each_file_as_it_is_now_and_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = CgroupFiles::default();
        let big = "x".repeat(READ_CHUNK * 2 + 7);
        std::fs::write(dir.path().join("big"), &big).expect("write");
        std::fs::write(dir.path().join("pids.current"), "3\n").expect("write");
        assert_eq!(files.text(dir.path(), "big"), big);
        assert_eq!(files.number(dir.path(), "pids.current", 0), 3);
        std::fs::write(dir.path().join("pids.current"), "max\n").expect("write");
        assert_eq!(files.number(dir.path(), "pids.current", 0), 0);
        assert_eq!(files.number(dir.path(), "pids.current", 9), 9);
        assert_eq!(files.text(dir.path(), "missing"), "");
        assert_eq!(files.dirs.len(), 1);
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
        let stats =
            CgroupFiles::default().read_stats(&hierarchies, &[dir.path().to_path_buf()], None);
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
        assert_eq!(
            CgroupFiles::default().oom_kills(&hierarchies, &[dir.path().to_path_buf()]),
            1
        );
        assert_eq!(stats.memory.cache, 2048);
        assert_eq!(stats.memory.raw.get("anon"), Some(&1024));
        assert_eq!((stats.pids.current, stats.pids.limit), (2, 0));
    }

    /// memory.stat of a v1 cgroup holding 64 MiB of tmpfs and a child.
    const V1_STAT: &str = "cache 1048576\nrss 2097152\nrss_huge 0\nshmem 0\nmapped_file 4096\n\
dirty 0\nwriteback 0\nswap 0\npgpgin 10\npgpgout 5\ninactive_anon 0\nactive_anon 2097152\n\
hierarchical_memory_limit 9223372036854771712\ntotal_cache 68157440\ntotal_rss 3145728\n\
total_rss_huge 0\ntotal_shmem 67108864\ntotal_mapped_file 8192\ntotal_dirty 0\n\
total_swap 0\ntotal_pgpgin 20\n";

    /// memory.stat of a v2 cgroup (kernel 6.x: with `kernel`).
    const V2_STAT: &str = "anon 3145728\nfile 68157440\nkernel 524288\nkernel_stack 32768\n\
pagetables 65536\nsec_pagetables 0\npercpu 1024\nsock 0\nvmalloc 0\nshmem 67108864\n\
zswap 0\nfile_mapped 8192\nfile_dirty 0\nslab_reclaimable 200000\nslab_unreclaimable 100000\n\
slab 300000\nanon_thp 0\n";

    #[test]
    fn usage_v1_figures_come_from_the_hierarchical_keys() {
        let b = memory_breakdown_v1(V1_STAT, 71_000_000, Some(400_000));
        assert_eq!(
            b,
            MemoryBreakdown {
                total: 71_000_000,
                anonymous: 3_145_728,
                page_cache: 1_048_576,
                mapped: 8192,
                shmem: 67_108_864,
                kernel: 400_000,
            }
        );
        // No kmem file: no kernel figure; no total_ keys: the plain ones.
        let b = memory_breakdown_v1("cache 300\nrss 100\nshmem 200\nmapped_file 50\n", 500, None);
        assert_eq!(
            (b.anonymous, b.page_cache, b.shmem, b.mapped, b.kernel),
            (100, 100, 200, 50, 0)
        );
    }

    #[test]
    fn usage_v2_figures_split_shmem_from_file_and_sum_kernel_parts_on_old_kernels() {
        let b = memory_breakdown_v2(V2_STAT, 72_000_000);
        assert_eq!(
            b,
            MemoryBreakdown {
                total: 72_000_000,
                anonymous: 3_145_728,
                page_cache: 1_048_576,
                mapped: 8192,
                shmem: 67_108_864,
                kernel: 524_288,
            }
        );
        // Before 5.18 there is no `kernel` key: kernel_stack, slab, sock
        // (0), percpu and pagetables.
        let old = V2_STAT.replace("kernel 524288\n", "");
        assert_eq!(
            memory_breakdown_v2(&old, 0).kernel,
            32_768 + 300_000 + 1024 + 65_536
        );
    }

    #[test]
    fn usage_figures_are_read_from_a_cgroup_directory() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::write(v1.path().join("memory.stat"), V1_STAT).unwrap();
        std::fs::write(v1.path().join("memory.usage_in_bytes"), "71000000\n").unwrap();
        std::fs::write(v1.path().join("memory.kmem.usage_in_bytes"), "400000\n").unwrap();
        let b = memory_breakdown(v1.path(), true).unwrap();
        assert_eq!(
            (b.total, b.shmem, b.kernel),
            (71_000_000, 67_108_864, 400_000)
        );
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("memory.stat"), V2_STAT).unwrap();
        std::fs::write(v2.path().join("memory.current"), "72000000\n").unwrap();
        let b = memory_breakdown(v2.path(), false).unwrap();
        assert_eq!(
            (b.total, b.anonymous, b.kernel),
            (72_000_000, 3_145_728, 524_288)
        );
        // A v2 cgroup whose parent does not enable the controller.
        let bare = tempfile::tempdir().unwrap();
        let missing = memory_breakdown(bare.path(), false).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
