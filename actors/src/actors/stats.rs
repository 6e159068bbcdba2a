//! A container's stats in the wire's shape (`events --stats`), from the
//! figures `sys` reads from its cgroup's files: the conversion stays on the
//! actors' side, so that `sys` knows nothing of the wire.

use std::path::PathBuf;

use crate::api::container::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, MemoryEntry, MemoryStats, NetworkInterface,
    PidsStats, Stats, Throttling,
};
use crate::sys::cgroup::Hierarchy;
use crate::sys::cgroup_stats::{
    CgroupFiles, CgroupStats, DeviceBytes, InterfaceCounters, MemoryCounter,
};

/// Reads a container's stats in the wire's shape.
pub(super) trait WireStats {
    /// The stats of the cgroup whose directories (one per hierarchy, in
    /// `hierarchies`' order) are `dirs`; `init` is a process in its
    /// network namespace.
    fn stats(&mut self, hierarchies: &[Hierarchy], dirs: &[PathBuf], init: Option<i32>) -> Stats;
}

impl WireStats for CgroupFiles {
    fn stats(&mut self, hierarchies: &[Hierarchy], dirs: &[PathBuf], init: Option<i32>) -> Stats {
        wire_stats(self.read_stats(hierarchies, dirs, init))
    }
}

/// The wire's shape of `figures`.
fn wire_stats(figures: CgroupStats) -> Stats {
    let CgroupStats {
        cpu,
        memory,
        pids,
        io_service_bytes,
        network_interfaces,
    } = figures;
    Stats {
        cpu: CpuStats {
            usage: CpuUsage {
                total: cpu.usage.total,
                percpu: cpu.usage.percpu,
                kernel: cpu.usage.kernel,
                user: cpu.usage.user,
            },
            throttling: Throttling {
                periods: cpu.throttling.periods,
                throttled_periods: cpu.throttling.throttled_periods,
                throttled_time: cpu.throttling.throttled_time,
            },
        },
        memory: MemoryStats {
            cache: memory.cache,
            usage: memory_entry(memory.usage),
            swap: memory_entry(memory.swap),
            oom_kills: memory.oom_kills,
            raw: memory.raw,
        },
        pids: PidsStats {
            current: pids.current,
            limit: pids.limit,
        },
        blkio: BlkioStats {
            io_service_bytes_recursive: io_service_bytes.into_iter().map(blkio_entry).collect(),
        },
        network_interfaces: network_interfaces
            .into_iter()
            .map(network_interface)
            .collect(),
    }
}

fn memory_entry(counter: MemoryCounter) -> MemoryEntry {
    MemoryEntry {
        limit: counter.limit,
        usage: counter.usage,
        max: counter.max,
        failcnt: counter.failcnt,
    }
}

fn blkio_entry(bytes: DeviceBytes) -> BlkioEntry {
    BlkioEntry {
        major: bytes.major,
        minor: bytes.minor,
        op: bytes.op.to_owned(),
        value: bytes.value,
    }
}

fn network_interface(counters: InterfaceCounters) -> NetworkInterface {
    NetworkInterface {
        name: counters.name,
        rx_bytes: counters.rx_bytes,
        rx_packets: counters.rx_packets,
        rx_errors: counters.rx_errors,
        rx_dropped: counters.rx_dropped,
        tx_bytes: counters.tx_bytes,
        tx_packets: counters.tx_packets,
        tx_errors: counters.tx_errors,
        tx_dropped: counters.tx_dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cgroup_stats::{CpuFigures, CpuTime, MemoryFigures, PidsFigures};

    #[test]
    fn every_figure_lands_in_its_wire_field() {
        let figures = CgroupStats {
            cpu: CpuFigures {
                usage: CpuTime {
                    total: 1,
                    percpu: vec![2, 3],
                    kernel: 4,
                    user: 5,
                },
                ..CpuFigures::default()
            },
            memory: MemoryFigures {
                cache: 6,
                usage: MemoryCounter {
                    limit: 7,
                    usage: 8,
                    max: 9,
                    failcnt: 10,
                },
                oom_kills: 11,
                raw: [("anon".to_owned(), 12)].into(),
                ..MemoryFigures::default()
            },
            pids: PidsFigures {
                current: 13,
                limit: 14,
            },
            io_service_bytes: vec![DeviceBytes {
                major: 8,
                minor: 0,
                op: "Read",
                value: 15,
            }],
            network_interfaces: vec![InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 16,
                tx_dropped: 17,
                ..InterfaceCounters::default()
            }],
        };
        let stats = wire_stats(figures);
        assert_eq!(stats.cpu.usage.percpu, vec![2, 3]);
        assert_eq!((stats.cpu.usage.kernel, stats.cpu.usage.user), (4, 5));
        assert_eq!(stats.memory.usage.failcnt, 10);
        assert_eq!(stats.memory.swap, MemoryEntry::default());
        assert_eq!(stats.memory.raw.get("anon"), Some(&12));
        assert_eq!((stats.pids.current, stats.pids.limit), (13, 14));
        assert_eq!(
            stats.blkio.io_service_bytes_recursive,
            vec![BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 15,
            }]
        );
        assert_eq!(stats.network_interfaces[0].name, "eth0");
        assert_eq!(
            (
                stats.network_interfaces[0].rx_bytes,
                stats.network_interfaces[0].tx_dropped
            ),
            (16, 17)
        );
    }
}
