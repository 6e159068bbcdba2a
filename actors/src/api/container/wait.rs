//! Waiting for a container's init or an exec'd process, and a container's
//! place in the OCI lifecycle.

use serde::{Deserialize, Serialize};

use crate::api::{CarriesFds, Method};

/// `containerManager.Wait`: waits for a container's init to exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Wait {
    /// The container id.
    pub cid: String,
}

impl Method for Wait {
    const NAME: &'static str = "containerManager.Wait";
    type Reply = WaitStatusReply;
}

impl CarriesFds for Wait {}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStatusReply {
    /// The Linux wait status (`code << 8` for an exit; the signal, `| 0x80`
    /// for a core dump, for a kill), as gVisor returns it.
    pub status: u32,
    /// The kernel's OOM killer killed it (its SIGKILL came with a new OOM
    /// kill in the container's memory cgroup).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
}

impl CarriesFds for WaitStatusReply {}

/// `containerManager.WaitPID`: waits for an exec'd process; its status is
/// released once collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WaitPid {
    /// The container id.
    pub cid: String,
    /// The pid, in the container's pid namespace.
    pub pid: i32,
}

impl Method for WaitPid {
    const NAME: &'static str = "containerManager.WaitPID";
    type Reply = WaitStatusReply;
}

impl CarriesFds for WaitPid {}

/// `containerManager.ContainerRuntimeState`: where a container is in the
/// OCI lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ContainerRuntimeState {
    /// The container id.
    pub cid: String,
}

impl Method for ContainerRuntimeState {
    const NAME: &'static str = "containerManager.ContainerRuntimeState";
    type Reply = RuntimeState;
}

impl CarriesFds for ContainerRuntimeState {}

/// The reply to [`ContainerRuntimeState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeState {
    /// The OCI status.
    pub status: RuntimeStatus,
    /// The init's pid in the supervisor's pid namespace, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Once stopped: the init's wait status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    /// Once stopped: the OOM killer killed the init.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
}

impl CarriesFds for RuntimeState {}

/// A container's OCI status, as runtime-spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    /// Being set up (or reserved by CreateSubcontainer, not started).
    Creating,
    /// Set up, its init waiting for [`Start`](super::Start).
    Created,
    /// Its process was exec'd and runs.
    Running,
    /// Frozen by [`Pause`](super::Pause).
    Paused,
    /// Its init has exited.
    Stopped,
}
