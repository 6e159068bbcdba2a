//! `containerManager.*`: containers, exec, wait, signals, processes.
//!
//! Argument shapes follow gVisor's (`runsc/boot/controller.go`) in
//! snake_case; descriptors travel in the frame, in the documented order.

use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::{CarriesFds, Fds, Method};

fn is_zero(n: &u32) -> bool {
    *n == 0
}

macro_rules! carries_fds {
    ($($ty:ty),+) => {
        $(
            impl CarriesFds for $ty {
                fn take_fds(&mut self) -> Vec<OwnedFd> {
                    self.fds.take()
                }

                fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
                    self.fds = Fds(fds);
                    Ok(())
                }
            }
        )+
    };
}

/// `containerManager.StartRoot`: creates and starts the sandbox's root
/// container; answers once its process has exec'd (or with the exact error).
///
/// Descriptors: without a terminal, exactly three (stdin, stdout, stderr);
/// with `process.terminal`, none, and the reply carries the pty master
/// unless `console_socket` is given.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRoot {
    /// The container id.
    pub cid: String,
    /// The OCI runtime spec.
    pub spec: Spec,
    /// The bundle directory: relative `root.path` and bind sources resolve
    /// against it. Absent: the current directory of the supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// A Unix socket to send the pty master to (runc's `--console-socket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_socket: Option<String>,
    /// Create only (runc's `create`): the init is set up and waits before
    /// the startContainer hooks and the exec; the reply comes then, the
    /// container is `created`, and [`Start`] lets it go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Descriptors passed through (runc's `--preserve-fds`): the last this
    /// many of the call's descriptors become the process's 3, 4, ...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preserve_fds: u32,
    /// The call's first descriptor is a caller's spawner (a socket to a
    /// process the caller forked as `sys::spawn::fork_caller_spawner`):
    /// the process is cloned by it, as the caller's child, and reaped by
    /// the caller or the subreaper above it, as runc's processes are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub caller_spawner: bool,
    /// The descriptors (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

impl Method for StartRoot {
    const NAME: &'static str = "containerManager.StartRoot";
    type Reply = Started;
}

/// The reply to [`StartRoot`] and `StartSubcontainer`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Started {
    /// The container's init, as a pid of the supervisor's pid namespace.
    pub pid: i32,
    /// The pty master, when the process has a terminal and no console
    /// socket was given.
    #[serde(skip)]
    pub fds: Fds,
}

carries_fds!(StartRoot, Started);

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

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for StartRoot {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let cid: String = u.arbitrary()?;
        let args: Vec<String> = u.arbitrary()?;
        Ok(StartRoot {
            spec: crate::container::spec::default_spec(&cid, args, u.arbitrary()?),
            cid,
            bundle: u.arbitrary()?,
            console_socket: u.arbitrary()?,
            hold: u.arbitrary()?,
            preserve_fds: 0,
            caller_spawner: false,
            fds: Fds::none(),
        })
    }
}

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
    type Reply = super::Empty;
}

impl CarriesFds for Signal {}

/// `containerManager.ExecuteAsync`: runs a process in a running container,
/// as `runc exec` does: it starts from the container's process (user,
/// capabilities, no_new_privs, seccomp, cwd, environment) and overrides
/// what is given. Answers once the process has exec'd.
///
/// Descriptors: without `terminal`, exactly three (stdin, stdout, stderr);
/// with `terminal`, one (a terminal the caller owns, which becomes the
/// process's controlling terminal) or none (a pty is allocated; its master
/// comes back in the reply, or goes to `console_socket`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecuteAsync {
    /// The container id.
    pub cid: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Environment entries added to the container's (later ones win).
    #[serde(default)]
    pub envv: Vec<String>,
    /// Working directory (default: the container's).
    #[serde(default)]
    pub working_directory: Option<String>,
    /// User id (default: the container's).
    #[serde(default)]
    pub kuid: Option<u32>,
    /// Group id (default: the container's).
    #[serde(default)]
    pub kgid: Option<u32>,
    /// Supplementary groups (default: the container's).
    #[serde(default)]
    pub extra_kgids: Option<Vec<u32>>,
    /// Capability sets, by `CAP_*` name (default: the container's).
    #[serde(default)]
    pub capabilities: Option<ExecCapabilities>,
    /// Override no_new_privs.
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    /// Resource limits (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Vec<ExecRlimit>>,
    /// Give the process a terminal.
    #[serde(default)]
    pub terminal: bool,
    /// Where to send an allocated pty master (runc's `--console-socket`).
    #[serde(default)]
    pub console_socket: Option<String>,
    /// Descriptors passed through, as [`StartRoot::preserve_fds`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preserve_fds: u32,
    /// The call's first descriptor is a caller's spawner (a socket to a
    /// process the caller forked as `sys::spawn::fork_caller_spawner`):
    /// the process is cloned by it, as the caller's child, and reaped by
    /// the caller or the subreaper above it, as runc's processes are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub caller_spawner: bool,
    /// The descriptors (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

/// A resource limit of an exec'd process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecRlimit {
    /// The resource, by its `RLIMIT_*` name.
    pub kind: String,
    /// The hard limit.
    pub hard: u64,
    /// The soft limit.
    pub soft: u64,
}

/// Capability sets of an exec'd process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecCapabilities {
    /// Bounding set.
    #[serde(default)]
    pub bounding: Vec<String>,
    /// Effective set.
    #[serde(default)]
    pub effective: Vec<String>,
    /// Inheritable set.
    #[serde(default)]
    pub inheritable: Vec<String>,
    /// Permitted set.
    #[serde(default)]
    pub permitted: Vec<String>,
    /// Ambient set.
    #[serde(default)]
    pub ambient: Vec<String>,
}

impl Method for ExecuteAsync {
    const NAME: &'static str = "containerManager.ExecuteAsync";
    type Reply = Executed;
}

/// The reply to [`ExecuteAsync`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executed {
    /// Its pid in the container's pid namespace (what WaitPID and Signal take).
    pub pid: i32,
    /// Its pid in the supervisor's pid namespace.
    pub host_pid: i32,
    /// The allocated pty master, if any.
    #[serde(skip)]
    pub fds: Fds,
}

carries_fds!(ExecuteAsync, Executed);

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

/// `containerManager.CreateSubcontainer`: reserves a subcontainer id in the
/// sandbox. Descriptors: none, or one terminal that its process will use
/// (when its spec asks for a terminal).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateSubcontainer {
    /// The container id.
    pub cid: String,
    /// The terminal, if any (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

impl Method for CreateSubcontainer {
    const NAME: &'static str = "containerManager.CreateSubcontainer";
    type Reply = super::Empty;
}

/// `containerManager.StartSubcontainer`: starts a created subcontainer. It
/// shares the sandbox's network, IPC and UTS namespaces and gets its own
/// pid and mount namespaces. Answers once its process has exec'd.
///
/// Descriptors: without a terminal, exactly three (stdin, stdout, stderr);
/// with one, none (the terminal given at create is used, or a pty is
/// allocated and its master comes back in the reply or goes to
/// `console_socket`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSubcontainer {
    /// The container id.
    pub cid: String,
    /// The OCI runtime spec.
    pub spec: Spec,
    /// The bundle directory (relative paths resolve against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Where to send an allocated pty master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_socket: Option<String>,
    /// Create only, as [`StartRoot::hold`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Descriptors passed through (runc's `--preserve-fds`): the last this
    /// many of the call's descriptors become the process's 3, 4, ...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preserve_fds: u32,
    /// The call's first descriptor is a caller's spawner (a socket to a
    /// process the caller forked as `sys::spawn::fork_caller_spawner`):
    /// the process is cloned by it, as the caller's child, and reaped by
    /// the caller or the subreaper above it, as runc's processes are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub caller_spawner: bool,
    /// The descriptors (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

impl Method for StartSubcontainer {
    const NAME: &'static str = "containerManager.StartSubcontainer";
    type Reply = Started;
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for StartSubcontainer {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let cid: String = u.arbitrary()?;
        let args: Vec<String> = u.arbitrary()?;
        Ok(StartSubcontainer {
            spec: crate::container::spec::default_spec(&cid, args, u.arbitrary()?),
            cid,
            bundle: u.arbitrary()?,
            console_socket: u.arbitrary()?,
            hold: u.arbitrary()?,
            preserve_fds: 0,
            caller_spawner: false,
            fds: Fds::none(),
        })
    }
}

/// `containerManager.DestroySubcontainer`: kills every process of a
/// subcontainer, reaps them, unmounts and frees everything it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DestroySubcontainer {
    /// The container id.
    pub cid: String,
}

impl Method for DestroySubcontainer {
    const NAME: &'static str = "containerManager.DestroySubcontainer";
    type Reply = super::Empty;
}

impl CarriesFds for DestroySubcontainer {}

carries_fds!(CreateSubcontainer, StartSubcontainer);

/// `containerManager.Start`: lets a container created with `hold` go on:
/// its startContainer hooks run and its process is exec'd. Answers once it
/// has exec'd (or with the exact error), as StartRoot does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Start {
    /// The container id.
    pub cid: String,
}

impl Method for Start {
    const NAME: &'static str = "containerManager.Start";
    type Reply = Started;
}

impl CarriesFds for Start {}

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
    /// Set up, its init waiting for [`Start`].
    Created,
    /// Its process was exec'd and runs.
    Running,
    /// Frozen by [`Pause`].
    Paused,
    /// Its init has exited.
    Stopped,
}

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
    type Reply = super::Empty;
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
    type Reply = super::Empty;
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
    type Reply = super::Empty;
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
