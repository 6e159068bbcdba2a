//! [`MemoryBreakdown`]: a memory cgroup's use, broken down.

use std::path::Path;

use super::files::read_number;
use super::parse_flat_keyed;

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
