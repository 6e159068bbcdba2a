//! Readers of cgroup v1 controllers.

use std::path::Path;

use super::{
    parse_flat_keyed, CgroupFiles, CpuFigures, CpuTime, MemoryCounter, MemoryFigures,
    ThrottleFigures,
};

pub(super) fn cpu_v1(f: &mut CgroupFiles, acct: &Path, cpu: &Path) -> CpuFigures {
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

pub(super) fn memory_v1(f: &mut CgroupFiles, dir: &Path) -> MemoryFigures {
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
