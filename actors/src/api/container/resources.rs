//! A container's resources: freezing (pause, resume), limits (update) and
//! use (runc's stats event).

use serde::{Deserialize, Serialize};

use crate::api::{CarriesFds, Empty, Method};

/// `containerManager.Pause`: freezes a running container's processes (its
/// cgroup), or with no `cid` every running container of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Pause {
    /// The container id; absent: the whole sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl Method for Pause {
    const NAME: &'static str = "containerManager.Pause";
    type Reply = Empty;
}

impl CarriesFds for Pause {}

/// `containerManager.Resume`: thaws a paused container, or with no `cid`
/// every paused container of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Resume {
    /// The container id; absent: the whole sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl Method for Resume {
    const NAME: &'static str = "containerManager.Resume";
    type Reply = Empty;
}

impl CarriesFds for Resume {}

/// `containerManager.Update`: changes a live container's resource limits
/// (only the fields given); a change the kernel refuses is rolled back and
/// named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// The container id.
    pub cid: String,
    /// The limits, as the spec's `linux.resources`.
    pub resources: oci_spec::runtime::LinuxResources,
}

impl Method for Update {
    const NAME: &'static str = "containerManager.Update";
    type Reply = Empty;
}

impl CarriesFds for Update {}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Update {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let cid: String = u.arbitrary()?;
        let limit: i64 = u.arbitrary()?;
        let resources = serde_json::from_value(serde_json::json!({"pids": {"limit": limit}}))
            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        Ok(Update { cid, resources })
    }
}

/// `containerManager.Event`: a container's resource use now, as runc's
/// `events --stats` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Event {
    /// The container id.
    pub cid: String,
}

impl Method for Event {
    const NAME: &'static str = "containerManager.Event";
    type Reply = EventReply;
}

impl CarriesFds for Event {}

/// The reply to [`Event`]: runc's event, of type `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReply {
    /// The event type (`stats`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The container id.
    pub id: String,
    /// The figures.
    pub data: Stats,
}

impl CarriesFds for EventReply {}

/// A container's resource use, with runc's field names (`events --stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// Memory use and limits.
    pub memory: MemoryStats,
    /// Process counts.
    pub pids: PidsStats,
    /// Block I/O.
    pub blkio: BlkioStats,
    /// The interfaces of its network namespace (loopback left out).
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
}

/// CPU figures, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// In all.
    pub total: u64,
    /// Per CPU (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which it was throttled.
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    pub throttled_time: u64,
}

/// Memory figures, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Page cache.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Swap (v1: memory plus swap).
    pub swap: MemoryEntry,
    /// Processes the OOM killer has killed in it (v1 `memory.oom_control`,
    /// v2 `memory.events`).
    #[serde(default)]
    pub oom_kills: u64,
    /// The controller's `memory.stat`, as it names its figures.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub raw: std::collections::BTreeMap<String, u64>,
}

/// Use against a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes and threads now.
    pub current: u64,
    /// The limit (0: none).
    pub limit: u64,
}

/// Block I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// Bytes read and written, per device.
    #[serde(rename = "ioServiceBytesRecursive", default)]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
}

/// One device's figure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read` or `Write`.
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// A network interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
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
