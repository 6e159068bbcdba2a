//! Readers of cgroup v2 controllers.

use std::path::Path;

use super::{
    parse_flat_keyed, CgroupFiles, CpuFigures, CpuTime, MemoryCounter, MemoryFigures,
    ThrottleFigures,
};

pub(super) fn cpu_v2(f: &mut CgroupFiles, dir: &Path) -> CpuFigures {
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

pub(super) fn memory_v2(f: &mut CgroupFiles, dir: &Path) -> MemoryFigures {
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
