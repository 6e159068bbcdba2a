//! The plan a spawned child carries out between `clone3` and `execve`.
//!
//! The supervisor is multi-threaded, so it never does container setup
//! itself: it validates the OCI spec into a [`SpawnPlan`] (everything
//! resolved: paths, flags, capability masks, compiled seccomp filter), and
//! the single-threaded spawner process clones a child that executes the plan
//! step by step. Descriptors the child needs travel beside the plan; the plan
//! refers to them by index.

use serde::{Deserialize, Serialize};

use super::seccomp::SeccompProgram;
use super::tty::WindowSize;

/// Index of a descriptor sent with the plan.
pub type FdIndex = usize;

/// Everything one spawn needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpawnPlan {
    /// A new container, or a process joining one.
    pub kind: PlanKind,
    /// The process to exec.
    pub process: ProcessPlan,
    /// The write end of the status pipe: the child reports failures (and,
    /// for a created container, readiness) on it; a successful exec closes it.
    pub status: FdIndex,
    /// The supervisor's pid: the child dies with it, and checks it is still
    /// its parent after arming the death signal.
    pub supervisor_pid: i32,
    /// A cgroup v2 directory the child is cloned into (`CLONE_INTO_CGROUP`):
    /// born there, it never migrates into the v2 hierarchy.
    pub clone_into_cgroup: Option<FdIndex>,
    /// Cloned by a caller's spawner (`sandvisor create` and `exec`): the
    /// caller, then the subreaper above it, is the parent and reaps it, as
    /// runc's contract has it. No death signal is armed (that parent exits
    /// right after the create or exec) and the parent is not checked.
    #[serde(default)]
    pub caller_parented: bool,
}

/// What kind of process is spawned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanKind {
    /// The init process of a new container.
    Container(Box<ContainerPlan>),
    /// A process joining a running container.
    Exec(ExecPlan),
    /// A plain process in the supervisor's own namespaces (a runtime hook);
    /// spawned like the others so that the Reaper is the only one to wait
    /// for children.
    Hook,
}

/// Namespace kinds, with their `CLONE_NEW*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NsKind {
    /// Mount.
    Mount,
    /// Cgroup.
    Cgroup,
    /// UTS (hostname).
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// User.
    User,
    /// Process ids.
    Pid,
    /// Network.
    Net,
    /// Clocks.
    Time,
}

impl NsKind {
    /// The `CLONE_NEW*` flag.
    pub fn clone_flag(self) -> u64 {
        (match self {
            NsKind::Mount => libc::CLONE_NEWNS,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::Time => libc::CLONE_NEWTIME,
        }) as u64
    }

    /// The file name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Mount => "mnt",
            NsKind::Cgroup => "cgroup",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::User => "user",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Time => "time",
        }
    }

    /// Every kind, in the order they are joined (user first, as it grants
    /// the rights to join the others; mount last but one, pid last).
    pub const JOIN_ORDER: [NsKind; 8] = [
        NsKind::User,
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Time,
        NsKind::Mount,
        NsKind::Pid,
    ];
}

/// A namespace to join, opened by the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinNs {
    /// Its kind.
    pub kind: NsKind,
    /// The descriptor of the namespace file.
    pub fd: FdIndex,
}

/// A new container's init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// Namespaces to create (`CLONE_NEW*` flags passed to `clone3`).
    pub new_namespaces: Vec<NsKind>,
    /// Namespaces to join instead (OCI namespaces given by path).
    pub join: Vec<JoinNs>,
    /// `cgroup.procs` files to write "0" into, one per v1 hierarchy (the
    /// v2 one is entered by `clone_into_cgroup`).
    pub cgroup_procs: Vec<FdIndex>,
    /// Unshare a new cgroup namespace after joining the cgroups, so that
    /// the container's own cgroup is its namespace's root (as runc does).
    pub unshare_cgroup_ns: bool,
    /// The root filesystem and everything mounted in it.
    pub rootfs: RootfsPlan,
    /// Hostname to set in the new UTS namespace.
    pub hostname: Option<String>,
    /// NIS domain name to set.
    pub domainname: Option<String>,
    /// `/proc/sys` settings, as (dotted key, value).
    pub sysctl: Vec<(String, String)>,
    /// Bring the loopback interface up (new network namespace only).
    pub loopback_up: bool,
    /// OCI createContainer hooks: run in the container's namespaces before
    /// `pivot_root`, with the state on stdin.
    pub create_container_hooks: Vec<HookPlan>,
    /// OCI startContainer hooks: run in the container after the start
    /// signal, before the user process is executed.
    pub start_container_hooks: Vec<HookPlan>,
    /// The OCI state given to hooks on stdin (its pid is filled in by the
    /// child); `None` when there are no hooks.
    pub hook_state: Option<oci_spec::runtime::State>,
    /// Pause after the mounts, before `pivot_root`, until one byte arrives
    /// here: the supervisor runs the prestart and createRuntime hooks in the
    /// runtime's namespaces meanwhile.
    pub runtime_hooks_gate: Option<FdIndex>,
    /// Wait for one byte on this descriptor before starting (the OCI
    /// create/start split); report readiness on the status pipe first.
    pub start_gate: Option<FdIndex>,
}

/// A resident spawner: a spawner process that lives in a container's
/// cgroups, so that the processes it clones start there without a write
/// to `cgroup.procs` (on cgroup v1 every such write waits for an RCU grace
/// period, 5 to 20 ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidentPlan {
    /// `cgroup.procs` files of the container's v1 cgroups, joined once
    /// (v2 membership is given to each clone by `CLONE_INTO_CGROUP`).
    pub cgroup_procs: Vec<FdIndex>,
    /// The resident's end of its request socket.
    pub socket: FdIndex,
    /// Status pipe: [`ChildReport::Ready`] once joined, or the failure.
    pub status: FdIndex,
    /// The supervisor's pid, as in [`SpawnPlan`].
    pub supervisor_pid: i32,
}

/// A process joining a running container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecPlan {
    /// Namespaces to join, in [`NsKind::JOIN_ORDER`] order; the pid
    /// namespace is joined by the spawner before cloning and is not listed.
    pub join: Vec<JoinNs>,
    /// The container's pid namespace, joined by the spawner for the clone.
    pub pid_ns: Option<FdIndex>,
    /// `cgroup.procs` files of the container's v1 cgroups.
    pub cgroup_procs: Vec<FdIndex>,
    /// The container's root directory (opened in its mount namespace), to
    /// chroot into after joining the mount namespace.
    pub root: Option<FdIndex>,
}

/// The root filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootfsPlan {
    /// Absolute host path of the directory that becomes `/`.
    pub path: String,
    /// Remount `/` read-only at the end.
    pub readonly: bool,
    /// Propagation applied recursively to `/` first (`MS_SLAVE`,
    /// `MS_PRIVATE`, `MS_SHARED` or `MS_UNBINDABLE`), so that nothing done
    /// in the container propagates back to the host.
    pub propagation: u64,
    /// Mounts, in order, destinations inside the container.
    pub mounts: Vec<MountPlan>,
    /// Device nodes to create under the container's `/dev`.
    pub devices: Vec<DevicePlan>,
    /// Create `/dev/fd`, `/dev/stdin`, `/dev/stdout`, `/dev/stderr`,
    /// `/dev/ptmx` symlinks (when `/dev` is a tmpfs the plan mounts).
    pub dev_symlinks: bool,
    /// Paths made unreadable (`/dev/null` over files, read-only tmpfs over
    /// directories); missing ones are skipped.
    pub masked_paths: Vec<String>,
    /// Paths made read-only; missing ones are skipped.
    pub readonly_paths: Vec<String>,
    /// `pivot_root` into the new root; `false` means `MS_MOVE` + `chroot`
    /// (runc's `--no-pivot`).
    pub pivot_root: bool,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    /// Absolute destination inside the container.
    pub destination: String,
    /// Source: a host path for binds, else the filesystem's source string.
    pub source: String,
    /// Filesystem type (`proc`, `tmpfs`, ...); empty for binds.
    pub fstype: String,
    /// `MS_*` flags.
    pub flags: u64,
    /// Filesystem data (comma-separated options the kernel parses).
    pub data: String,
    /// Propagation flags applied after mounting (`MS_SHARED`... `| MS_REC`).
    pub propagation: u64,
    /// `MOUNT_ATTR_*` bits applied recursively with `mount_setattr` after
    /// mounting (`rro`, `rnosuid`, ...).
    pub recursive_attr_set: u64,
    /// `MOUNT_ATTR_*` bits cleared recursively.
    pub recursive_attr_clear: u64,
    /// `tmpcopyup`: the tmpfs starts with a copy of the directory it
    /// covers (and is made read-only, if asked, only once filled).
    #[serde(default)]
    pub copy_up: bool,
}

impl MountPlan {
    /// True for bind mounts.
    pub fn is_bind(&self) -> bool {
        self.flags & (libc::MS_BIND as u64) != 0
    }
}

/// A device node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePlan {
    /// Absolute path inside the container.
    pub path: String,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub file_type: u32,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A hook command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookPlan {
    /// Absolute path of the executable.
    pub path: String,
    /// Its argv (argv[0] included).
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// Seconds it may run; it is killed after.
    pub timeout_secs: Option<u64>,
}

/// The process to exec, and its security settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessPlan {
    /// The program to execute; `None`: `args[0]`, looked up in the
    /// process's `PATH` when it has no `/`.
    pub executable: Option<String>,
    /// argv.
    pub args: Vec<String>,
    /// Environment, `KEY=value`.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// File creation mask, if set.
    pub umask: Option<u32>,
    /// Capability sets, or `None` to keep those of the spawner (root's).
    pub capabilities: Option<CapabilityPlan>,
    /// Resource limits.
    pub rlimits: Vec<RlimitPlan>,
    /// Set `no_new_privs`.
    pub no_new_privileges: bool,
    /// Written to `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// Where stdin, stdout and stderr come from.
    pub stdio: StdioPlan,
    /// Descriptors passed through (runc's `--preserve-fds`): the Nth
    /// becomes the process's descriptor 3+N.
    pub preserved_fds: Vec<FdIndex>,
    /// A compiled seccomp filter: installed just before execve with
    /// `no_new_privileges`, else before the user and capabilities change
    /// (without no_new_privs the kernel wants CAP_SYS_ADMIN for it).
    pub seccomp: Option<SeccompProgram>,
}

/// Capability sets as bit masks (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityPlan {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// One resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitPlan {
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The process's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StdioPlan {
    /// Descriptors for stdin, stdout and stderr.
    Fds {
        /// Standard input.
        stdin: FdIndex,
        /// Standard output.
        stdout: FdIndex,
        /// Standard error.
        stderr: FdIndex,
    },
    /// A new pty, allocated by the child from the container's own
    /// `/dev/ptmx` (so the container's devpts knows the slave); the child
    /// sends the master back over `channel` and makes the slave its
    /// controlling terminal and all three streams.
    NewTerminal {
        /// A Unix socket to the supervisor.
        channel: FdIndex,
        /// The initial window size.
        size: Option<WindowSize>,
    },
    /// A terminal the caller gave: the process's controlling terminal and
    /// all three streams.
    Terminal {
        /// The slave descriptor.
        slave: FdIndex,
        /// The initial window size.
        size: Option<WindowSize>,
    },
}

/// What the child writes on the status pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildReport {
    /// The child's pid in its own pid namespace (sent first).
    Pid(i32),
    /// The namespaces and mounts exist: run the runtime's hooks, then open
    /// the runtime hooks gate.
    RuntimeHooks,
    /// Setup is done and the child waits for the start signal.
    Ready,
    /// A step failed; the child exits.
    Failed(ChildFailure),
}

/// A failed setup step, with the errno and the path involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildFailure {
    /// The step, e.g. "mount", "exec", "chdir".
    pub step: String,
    /// The path (or name) the step was working on.
    pub path: String,
    /// The errno (0 when not a system call failure).
    pub errno: i32,
    /// A lower-case description.
    pub message: String,
}
