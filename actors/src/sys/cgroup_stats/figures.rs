//! The figures a cgroup's stats are given in, runc's shape.

use std::collections::BTreeMap;

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
