//! Signals and the listing of a container's processes.

use serde::{Deserialize, Serialize};

use crate::api::{CarriesFds, Empty, Method};

/// `containerManager.Signal`: sends a signal, in one of gVisor's modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Signal {
    /// The container id.
    pub cid: String,
    /// The signal number, 1 to 64.
    pub signo: i32,
    /// A pid in the container's pid namespace; 0 means the container's init.
    #[serde(default)]
    pub pid: i32,
    /// Who receives it.
    #[serde(default)]
    pub mode: SignalMode,
}

/// Who receives a signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SignalMode {
    /// The process `pid` (0: the init).
    #[default]
    Process,
    /// Every process of the container (`pid` must be 0).
    AllProcesses,
    /// The foreground process group of the terminal `pid` (0: the init) has.
    ForegroundProcessGroup,
    /// The process group of `pid` (0: the init).
    ProcessGroup,
}

impl Method for Signal {
    const NAME: &'static str = "containerManager.Signal";
    type Reply = Empty;
}

impl CarriesFds for Signal {}

/// `containerManager.Processes`: the container's processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Processes {
    /// The container id.
    pub cid: String,
}

impl Method for Processes {
    const NAME: &'static str = "containerManager.Processes";
    type Reply = ProcessList;
}

impl CarriesFds for Processes {}

/// The reply to [`Processes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessList {
    /// One entry per process, by pid.
    pub processes: Vec<ProcessInfo>,
}

impl CarriesFds for ProcessList {}

/// One process of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessInfo {
    /// Real user id.
    pub uid: u32,
    /// Pid in the container's pid namespace.
    pub pid: i32,
    /// Pid in the supervisor's pid namespace.
    pub host_pid: i32,
    /// Parent pid in the container's pid namespace (0: outside it).
    pub ppid: i32,
    /// Process group id (host).
    pub pgid: i32,
    /// Threads.
    pub threads: u32,
    /// CPU use over its lifetime, in percent of one CPU.
    pub cpu_percent: f64,
    /// Controlling terminal, e.g. "pts/0", or "?" for none.
    pub tty: String,
    /// Start time, milliseconds since the Unix epoch.
    pub start_time_ms: u64,
    /// CPU time used (user + system), milliseconds.
    pub cpu_time_ms: u64,
    /// Command line.
    pub command: String,
}
