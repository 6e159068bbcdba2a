//! From an OCI runtime spec to a [`SpawnPlan`], as runc applies the spec.
//!
//! Pure policy: nothing here touches the host, so every rule is unit-tested
//! without root. Descriptors the plan needs are described as
//! [`FdSource`]s, in index order, for the caller to open. A field this
//! build does not support is refused with [`SpecError::Unsupported`] naming
//! it; nothing is ignored silently.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook, LinuxCapabilities, LinuxDevice, LinuxDeviceType, LinuxNamespaceType, Mount,
    PosixRlimitType, Process, Spec,
};
use thiserror::Error;

use super::plan::{
    CapabilityPlan, ContainerPlan, DevicePlan, ExecPlan, HookPlan, JoinNs, MountPlan, NsKind,
    PlanKind, ProcessPlan, RlimitPlan, RootfsPlan, SpawnPlan, StdioPlan,
};
use crate::sys::seccomp::{self, SeccompError};
use crate::sys::tty::WindowSize;

/// Why a spec cannot be run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The spec is wrong.
    #[error("{field}: {detail}")]
    Invalid {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The spec asks for something this build does not do.
    #[error("{field}: {detail}")]
    Unsupported {
        /// The JSON path of the field.
        field: String,
        /// What is not supported.
        detail: String,
    },
}

fn invalid(field: impl Into<String>, detail: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        detail: detail.into(),
    }
}

fn unsupported(field: impl Into<String>, detail: impl Into<String>) -> SpecError {
    SpecError::Unsupported {
        field: field.into(),
        detail: detail.into(),
    }
}

/// A descriptor the plan needs, in the plan's index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdSource {
    /// The write end of the status pipe.
    StatusPipe,
    /// The read end of the start gate pipe.
    StartGate,
    /// The read end of the runtime hooks gate pipe.
    RuntimeHooksGate,
    /// The caller's stdin, stdout or stderr (0, 1, 2).
    Stdio(u8),
    /// The Nth descriptor the caller passes through after stdio.
    Preserved(u32),
    /// A terminal the caller gave.
    TerminalSlave,
    /// The child's end of the socket a new pty's master comes back on.
    ConsoleChannel,
    /// A namespace file to join.
    Namespace(NsKind, PathBuf),
    /// A cgroup's `cgroup.procs`, opened for writing.
    CgroupProcs(PathBuf),
    /// A cgroup v2 directory, opened for `CLONE_INTO_CGROUP`.
    CgroupDir(PathBuf),
    /// The read end of a pipe the runtime writes a hook's state into.
    HookStdin,
    /// The supervisor's own stderr (a hook's output goes to its log).
    SupervisorStderr,
}

/// What the caller must run in the runtime's namespace, around the spawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeHooks {
    /// `prestart`: after the namespaces exist, before `createRuntime`.
    pub prestart: Vec<HookPlan>,
    /// `createRuntime`: after the namespaces exist.
    pub create_runtime: Vec<HookPlan>,
    /// `poststart`: after the user process started.
    pub poststart: Vec<HookPlan>,
    /// `poststop`: after the container is deleted.
    pub poststop: Vec<HookPlan>,
}

/// A spawn plan and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    /// The plan.
    pub plan: SpawnPlan,
    /// Its descriptors, by index.
    pub fds: Vec<FdSource>,
    /// Hooks the runtime runs itself.
    pub hooks: RuntimeHooks,
    /// Whether the process has a terminal.
    pub terminal: bool,
    /// Things allowed but worth telling (unknown seccomp syscalls).
    pub warnings: Vec<String>,
}

/// What [`build_container`] needs besides the spec.
#[derive(Debug, Clone)]
pub struct ContainerContext<'a> {
    /// The bundle directory (relative `root.path` is resolved against it).
    pub bundle: &'a Path,
    /// An empty directory to mount a root of `/` onto (the host's root is
    /// bind-mounted there, since `/` itself cannot be pivoted into).
    pub scratch_root: &'a Path,
    /// The `cgroup.procs` files of the container's v1 cgroups.
    pub cgroup_procs: Vec<PathBuf>,
    /// The container's cgroup v2 directory, entered by `CLONE_INTO_CGROUP`.
    pub cgroup_v2_dir: Option<PathBuf>,
    /// The container's cgroup directories, by the name they get under a
    /// `cgroup` mount (the hierarchy's mount point name: `memory`,
    /// `unified`...); one unnamed entry on a cgroup v2 host.
    pub cgroup_dirs: Vec<(Option<String>, PathBuf)>,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// Wait for a start signal after setup (OCI create/start).
    pub gated: bool,
    /// Bring `lo` up in a new network namespace.
    pub loopback_up: bool,
    /// The OCI state handed to hooks (id, bundle, annotations).
    pub hook_state: Option<oci_spec::runtime::State>,
    /// The caller gives the terminal (else the child allocates one).
    pub caller_terminal: bool,
    /// Descriptors the caller passes through after stdio.
    pub preserve_fds: u32,
}

/// Collects descriptors in index order.
#[derive(Default)]
struct FdTable(Vec<FdSource>);

impl FdTable {
    fn add(&mut self, source: FdSource) -> usize {
        self.0.push(source);
        self.0.len() - 1
    }
}

/// The plan for a new container's init process.
pub fn build_container(spec: &Spec, ctx: &ContainerContext<'_>) -> Result<Blueprint, SpecError> {
    check_unsupported(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "a container needs a process"))?;
    let linux = spec.linux().as_ref();
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);

    let mut new_namespaces = Vec::new();
    let mut join = Vec::new();
    let mut kinds = HashSet::new();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("linux.namespaces[{i}]");
        let kind = ns_kind(ns.typ());
        if !kinds.insert(kind) {
            return Err(invalid(
                field,
                format!("namespace type {:?} appears twice", ns.typ()),
            ));
        }
        match ns.path() {
            Some(path) => {
                if !path.is_absolute() {
                    return Err(invalid(
                        format!("{field}.path"),
                        format!("{} is not absolute", path.display()),
                    ));
                }
                let fd = fds.add(FdSource::Namespace(kind, path.clone()));
                join.push(JoinNs { kind, fd });
            }
            None if kind == NsKind::User => {
                return Err(unsupported(field, "new user namespaces (uid/gid mappings) are not supported yet; join one by path"));
            }
            None => new_namespaces.push(kind),
        }
    }
    let new_ns = |k: NsKind| new_namespaces.contains(&k);
    let has_ns = |k: NsKind| kinds.contains(&k);
    if !new_ns(NsKind::Mount) {
        return Err(unsupported(
            "linux.namespaces",
            "a container needs a new mount namespace",
        ));
    }
    if let Some(l) = linux {
        if l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        {
            return Err(unsupported(
                "linux.uidMappings",
                "user namespace id mappings are not supported yet",
            ));
        }
    }

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    if (hostname.is_some() || domainname.is_some()) && !has_ns(NsKind::Uts) {
        return Err(invalid(
            "hostname",
            "setting a hostname or domainname needs a uts namespace",
        ));
    }
    let sysctl = sysctls(spec, &kinds)?;

    let rootfs = rootfs(spec, ctx)?;
    let cgroup_procs = ctx
        .cgroup_procs
        .iter()
        .map(|p| fds.add(FdSource::CgroupProcs(p.clone())))
        .collect();
    let clone_into_cgroup = ctx
        .cgroup_v2_dir
        .as_ref()
        .map(|d| fds.add(FdSource::CgroupDir(d.clone())));

    let terminal = process.terminal().unwrap_or(false);
    let stdio = stdio(process, terminal, ctx.caller_terminal, &mut fds);
    let (mut process_plan, warnings) =
        process_plan(process, linux.and_then(|l| l.seccomp().as_ref()), stdio)?;
    process_plan.preserved_fds = (0..ctx.preserve_fds)
        .map(|n| fds.add(FdSource::Preserved(n)))
        .collect();
    let start_gate = ctx.gated.then(|| fds.add(FdSource::StartGate));
    let hooks = spec.hooks().as_ref();
    let hook_list = |list: Option<&Vec<Hook>>, field: &str| -> Result<Vec<HookPlan>, SpecError> {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, h)| hook_plan(h, &format!("hooks.{field}[{i}]")))
            .collect()
    };
    let runtime_hooks = RuntimeHooks {
        prestart: hook_list(hooks.and_then(|h| h.prestart().as_ref()), "prestart")?,
        create_runtime: hook_list(
            hooks.and_then(|h| h.create_runtime().as_ref()),
            "createRuntime",
        )?,
        poststart: hook_list(hooks.and_then(|h| h.poststart().as_ref()), "poststart")?,
        poststop: hook_list(hooks.and_then(|h| h.poststop().as_ref()), "poststop")?,
    };
    let runtime_hooks_gate = (!runtime_hooks.prestart.is_empty()
        || !runtime_hooks.create_runtime.is_empty())
    .then(|| fds.add(FdSource::RuntimeHooksGate));
    let new_net = new_ns(NsKind::Net);
    let unshare_cgroup_ns = new_ns(NsKind::Cgroup);
    new_namespaces.retain(|k| *k != NsKind::Cgroup);
    let container = ContainerPlan {
        new_namespaces,
        join,
        cgroup_procs,
        unshare_cgroup_ns,
        rootfs,
        hostname,
        domainname,
        sysctl,
        loopback_up: ctx.loopback_up && new_net,
        create_container_hooks: hook_list(
            hooks.and_then(|h| h.create_container().as_ref()),
            "createContainer",
        )?,
        start_container_hooks: hook_list(
            hooks.and_then(|h| h.start_container().as_ref()),
            "startContainer",
        )?,
        hook_state: ctx.hook_state.clone(),
        runtime_hooks_gate,
        start_gate,
    };
    Ok(Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Container(Box::new(container)),
            process: process_plan,
            status,
            supervisor_pid: ctx.supervisor_pid,
            clone_into_cgroup,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: runtime_hooks,
        terminal,
        warnings,
    })
}

/// Where an exec'd process joins its container.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// The container init's namespaces, as /proc/PID/ns paths, excluding pid.
    pub namespaces: Vec<(NsKind, PathBuf)>,
    /// The container init's pid namespace.
    pub pid_namespace: Option<PathBuf>,
    /// The container's v1 cgroups (`cgroup.procs` files).
    pub cgroup_procs: Vec<PathBuf>,
    /// The container's cgroup v2 directory.
    pub cgroup_v2_dir: Option<PathBuf>,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// The container's seccomp profile (exec'd processes get it too).
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The caller gives the terminal (else the child allocates one).
    pub caller_terminal: bool,
    /// Descriptors the caller passes through after stdio.
    pub preserve_fds: u32,
}

/// The plan for a process joining a running container.
pub fn build_exec(process: &Process, ctx: &ExecContext) -> Result<Blueprint, SpecError> {
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);
    let join = NsKind::JOIN_ORDER
        .iter()
        .flat_map(|kind| ctx.namespaces.iter().filter(move |(k, _)| k == kind))
        .map(|(kind, path)| JoinNs {
            kind: *kind,
            fd: fds.add(FdSource::Namespace(*kind, path.clone())),
        })
        .collect();
    let pid_ns = ctx
        .pid_namespace
        .as_ref()
        .map(|p| fds.add(FdSource::Namespace(NsKind::Pid, p.clone())));
    let cgroup_procs = ctx
        .cgroup_procs
        .iter()
        .map(|p| fds.add(FdSource::CgroupProcs(p.clone())))
        .collect();
    let clone_into_cgroup = ctx
        .cgroup_v2_dir
        .as_ref()
        .map(|d| fds.add(FdSource::CgroupDir(d.clone())));
    let terminal = process.terminal().unwrap_or(false);
    let stdio = stdio(process, terminal, ctx.caller_terminal, &mut fds);
    let (mut process_plan, warnings) = process_plan(process, ctx.seccomp.as_ref(), stdio)?;
    process_plan.preserved_fds = (0..ctx.preserve_fds)
        .map(|n| fds.add(FdSource::Preserved(n)))
        .collect();
    Ok(Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Exec(ExecPlan {
                join,
                pid_ns,
                cgroup_procs,
                root: None,
            }),
            process: process_plan,
            status,
            supervisor_pid: ctx.supervisor_pid,
            clone_into_cgroup,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: RuntimeHooks::default(),
        terminal,
        warnings,
    })
}

/// The plan for a runtime hook: a plain process with the state on stdin.
pub fn build_hook(hook: &HookPlan, supervisor_pid: i32) -> Blueprint {
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);
    let stdio = StdioPlan::Fds {
        stdin: fds.add(FdSource::HookStdin),
        stdout: fds.add(FdSource::SupervisorStderr),
        stderr: fds.add(FdSource::SupervisorStderr),
    };
    Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Hook,
            process: ProcessPlan {
                executable: Some(hook.path.clone()),
                args: if hook.args.is_empty() {
                    vec![hook.path.clone()]
                } else {
                    hook.args.clone()
                },
                env: hook.env.clone(),
                cwd: "/".into(),
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
                umask: None,
                capabilities: None,
                rlimits: Vec::new(),
                no_new_privileges: false,
                oom_score_adj: None,
                stdio,
                preserved_fds: Vec::new(),
                seccomp: None,
            },
            status,
            supervisor_pid,
            clone_into_cgroup: None,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: RuntimeHooks::default(),
        terminal: false,
        warnings: Vec::new(),
    }
}

fn stdio(process: &Process, terminal: bool, caller_terminal: bool, fds: &mut FdTable) -> StdioPlan {
    if terminal {
        let size = process.console_size().map(|b| WindowSize {
            rows: b.height().min(u64::from(u16::MAX)) as u16,
            cols: b.width().min(u64::from(u16::MAX)) as u16,
        });
        if caller_terminal {
            StdioPlan::Terminal {
                slave: fds.add(FdSource::TerminalSlave),
                size,
            }
        } else {
            StdioPlan::NewTerminal {
                channel: fds.add(FdSource::ConsoleChannel),
                size,
            }
        }
    } else {
        StdioPlan::Fds {
            stdin: fds.add(FdSource::Stdio(0)),
            stdout: fds.add(FdSource::Stdio(1)),
            stderr: fds.add(FdSource::Stdio(2)),
        }
    }
}

fn ns_kind(t: LinuxNamespaceType) -> NsKind {
    match t {
        LinuxNamespaceType::Mount => NsKind::Mount,
        LinuxNamespaceType::Cgroup => NsKind::Cgroup,
        LinuxNamespaceType::Uts => NsKind::Uts,
        LinuxNamespaceType::Ipc => NsKind::Ipc,
        LinuxNamespaceType::User => NsKind::User,
        LinuxNamespaceType::Pid => NsKind::Pid,
        LinuxNamespaceType::Network => NsKind::Net,
        LinuxNamespaceType::Time => NsKind::Time,
    }
}

/// Fields this build refuses rather than ignores: the first one present,
/// in the order listed, is the error.
fn check_unsupported(spec: &Spec) -> Result<(), SpecError> {
    fn set(s: &Option<String>) -> bool {
        s.as_ref().is_some_and(|s| !s.is_empty())
    }
    let process = spec.process().as_ref();
    let process_has = |field: fn(&Process) -> bool| process.is_some_and(field);
    let linux = spec.linux().as_ref();
    let linux_has = |field: fn(&oci_spec::runtime::Linux) -> bool| linux.is_some_and(field);
    let checks: [(bool, &str, &str); 13] = [
        (
            process_has(|p| set(p.apparmor_profile())),
            "process.apparmorProfile",
            "apparmor is not supported",
        ),
        (
            process_has(|p| set(p.selinux_label())),
            "process.selinuxLabel",
            "selinux is not supported",
        ),
        (
            process_has(|p| p.scheduler().is_some()),
            "process.scheduler",
            "scheduler settings are not supported yet",
        ),
        (
            process_has(|p| p.io_priority().is_some()),
            "process.ioPriority",
            "io priorities are not supported yet",
        ),
        (
            process_has(|p| p.exec_cpu_affinity().is_some()),
            "process.execCPUAffinity",
            "cpu affinity is not supported yet",
        ),
        (
            process_has(|p| set(p.user().username())),
            "process.user.username",
            "user names are a windows field",
        ),
        (
            linux_has(|l| set(l.mount_label())),
            "linux.mountLabel",
            "selinux is not supported",
        ),
        (
            linux_has(|l| l.intel_rdt().is_some()),
            "linux.intelRdt",
            "intel rdt is not supported",
        ),
        (
            linux_has(|l| l.personality().is_some()),
            "linux.personality",
            "personality is not supported yet",
        ),
        (
            linux_has(|l| l.time_offsets().as_ref().is_some_and(|t| !t.is_empty())),
            "linux.timeOffsets",
            "time namespace offsets are not supported yet",
        ),
        (
            linux_has(|l| l.net_devices().as_ref().is_some_and(|d| !d.is_empty())),
            "linux.netDevices",
            "moving network devices is not supported yet",
        ),
        (
            linux_has(|l| l.memory_policy().is_some()),
            "linux.memoryPolicy",
            "memory policies are not supported yet",
        ),
        (
            spec.vm().is_some(),
            "vm",
            "virtual-machine containers are not supported",
        ),
    ];
    match checks.into_iter().find(|(present, _, _)| *present) {
        Some((_, field, reason)) => Err(unsupported(field, reason)),
        None => match linux.and_then(|l| l.resources().as_ref()) {
            Some(resources) => super::resources::refuse_unsupported(resources),
            None => Ok(()),
        },
    }
}

/// Namespaced sysctls only, each in a namespace the container has, as runc
/// checks them.
fn sysctls(spec: &Spec, kinds: &HashSet<NsKind>) -> Result<Vec<(String, String)>, SpecError> {
    let mut out: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.sort();
    for (key, _) in &out {
        let field = format!("linux.sysctl.{key}");
        if key.contains("..") || key.contains('/') || key.is_empty() {
            return Err(invalid(field, "not a sysctl name"));
        }
        let needs = if matches!(
            key.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || key.starts_with("fs.mqueue.")
        {
            NsKind::Ipc
        } else if key.starts_with("net.") {
            NsKind::Net
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            return Err(invalid(
                field,
                "set the hostname with the hostname field instead",
            ));
        } else {
            return Err(invalid(
                field,
                "not a namespaced sysctl; it would change the host",
            ));
        };
        if !kinds.contains(&needs) {
            return Err(invalid(
                field,
                format!("needs a {} namespace", needs.proc_name()),
            ));
        }
    }
    Ok(out)
}

fn rootfs(spec: &Spec, ctx: &ContainerContext<'_>) -> Result<RootfsPlan, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        ctx.bundle.join(root.path())
    };
    let readonly = root.readonly().unwrap_or(false);
    let mut mounts = Vec::new();
    let path = if path == Path::new("/") {
        // The host's root: bind it (recursively, read-only if asked) onto
        // the scratch directory and pivot into that.
        mounts.push(MountPlan {
            destination: "/".into(),
            source: "/".into(),
            fstype: String::new(),
            flags: (libc::MS_BIND | libc::MS_REC) as u64,
            data: String::new(),
            propagation: 0,
            recursive_attr_set: if readonly { libc::MOUNT_ATTR_RDONLY } else { 0 },
            recursive_attr_clear: 0,
            copy_up: false,
        });
        ctx.scratch_root.to_path_buf()
    } else {
        path
    };
    let path = path
        .to_str()
        .ok_or_else(|| invalid("root.path", "not valid utf-8"))?
        .to_owned();
    let propagation = match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => (libc::MS_SLAVE | libc::MS_REC) as u64,
        Some(p) => propagation_flags(p).ok_or_else(|| {
            invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            )
        })?,
    };
    let mut dev_is_tmpfs = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let plan = mount_plan(m, &format!("mounts[{i}]"), ctx.bundle)?;
        if plan.destination == "/dev" && plan.fstype == "tmpfs" {
            dev_is_tmpfs = true;
        }
        if plan.fstype == "cgroup" || plan.fstype == "cgroup2" {
            mounts.extend(cgroup_mounts(&plan, &ctx.cgroup_dirs));
        } else {
            mounts.push(plan);
        }
    }
    let mut devices = Vec::new();
    if dev_is_tmpfs {
        devices.extend(default_devices());
    }
    for (i, d) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let plan = device_plan(d, &format!("linux.devices[{i}]"))?;
        devices.retain(|existing: &DevicePlan| existing.path != plan.path);
        devices.push(plan);
    }
    let paths = |list: Option<&Vec<String>>, field: &str| -> Result<Vec<String>, SpecError> {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| {
                if p.starts_with('/') {
                    Ok(p.clone())
                } else {
                    Err(invalid(
                        format!("linux.{field}[{i}]"),
                        format!("{p:?} is not absolute"),
                    ))
                }
            })
            .collect()
    };
    let linux = spec.linux().as_ref();
    Ok(RootfsPlan {
        path,
        readonly,
        propagation,
        mounts,
        devices,
        dev_symlinks: dev_is_tmpfs,
        masked_paths: paths(linux.and_then(|l| l.masked_paths().as_ref()), "maskedPaths")?,
        readonly_paths: paths(
            linux.and_then(|l| l.readonly_paths().as_ref()),
            "readonlyPaths",
        )?,
        pivot_root: true,
    })
}

fn propagation_flags(name: &str) -> Option<u64> {
    let flags = match name {
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    };
    Some(flags as u64)
}

/// The mount options this runtime gives a meaning (any other is passed to
/// the filesystem as data), for `sandvisor features`.
pub const KNOWN_MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// The namespaces a container may have new (a new user namespace is
/// refused: see [`build_container`]), for `sandvisor features`.
pub const NEW_NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Uts,
];

/// The names of every capability this runtime knows, for `sandvisor
/// features`.
pub fn known_capabilities() -> Vec<String> {
    capability_names(u64::MAX)
}

/// What one mount option does.
enum MountOption {
    Set(u64),
    Clear(u64),
    Propagation(u64),
    RecursiveSet(u64),
    RecursiveClear(u64),
    /// `tmpcopyup`: a tmpfs filled with what it covers.
    CopyUp,
    Data,
}

fn mount_option(name: &str) -> MountOption {
    use MountOption::*;
    let ms = |f: libc::c_ulong| f as u64;
    match name {
        "ro" => Set(ms(libc::MS_RDONLY)),
        "rw" => Clear(ms(libc::MS_RDONLY)),
        "nosuid" => Set(ms(libc::MS_NOSUID)),
        "suid" => Clear(ms(libc::MS_NOSUID)),
        "nodev" => Set(ms(libc::MS_NODEV)),
        "dev" => Clear(ms(libc::MS_NODEV)),
        "noexec" => Set(ms(libc::MS_NOEXEC)),
        "exec" => Clear(ms(libc::MS_NOEXEC)),
        "sync" => Set(ms(libc::MS_SYNCHRONOUS)),
        "async" => Clear(ms(libc::MS_SYNCHRONOUS)),
        "dirsync" => Set(ms(libc::MS_DIRSYNC)),
        "remount" => Set(ms(libc::MS_REMOUNT)),
        "mand" => Set(ms(libc::MS_MANDLOCK)),
        "nomand" => Clear(ms(libc::MS_MANDLOCK)),
        "atime" => Clear(ms(libc::MS_NOATIME)),
        "noatime" => Set(ms(libc::MS_NOATIME)),
        "diratime" => Clear(ms(libc::MS_NODIRATIME)),
        "nodiratime" => Set(ms(libc::MS_NODIRATIME)),
        "bind" => Set(ms(libc::MS_BIND)),
        "rbind" => Set(ms(libc::MS_BIND | libc::MS_REC)),
        "relatime" => Set(ms(libc::MS_RELATIME)),
        "norelatime" => Clear(ms(libc::MS_RELATIME)),
        "strictatime" => Set(ms(libc::MS_STRICTATIME)),
        "nostrictatime" => Clear(ms(libc::MS_STRICTATIME)),
        "silent" => Set(ms(libc::MS_SILENT)),
        "loud" => Clear(ms(libc::MS_SILENT)),
        "rro" => RecursiveSet(libc::MOUNT_ATTR_RDONLY),
        "rrw" => RecursiveClear(libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => RecursiveSet(libc::MOUNT_ATTR_NOSUID),
        "rsuid" => RecursiveClear(libc::MOUNT_ATTR_NOSUID),
        "rnodev" => RecursiveSet(libc::MOUNT_ATTR_NODEV),
        "rdev" => RecursiveClear(libc::MOUNT_ATTR_NODEV),
        "rnoexec" => RecursiveSet(libc::MOUNT_ATTR_NOEXEC),
        "rexec" => RecursiveClear(libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecursiveSet(libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecursiveClear(libc::MOUNT_ATTR_NODIRATIME),
        "rnoatime" => RecursiveSet(libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveSet(libc::MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => RecursiveSet(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecursiveClear(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "tmpcopyup" => CopyUp,
        other => match propagation_flags(other) {
            Some(f) => Propagation(f),
            None => Data,
        },
    }
}

fn mount_plan(m: &Mount, field: &str, bundle: &Path) -> Result<MountPlan, SpecError> {
    let destination = m
        .destination()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.destination"), "not valid utf-8"))?;
    if !destination.starts_with('/') {
        return Err(invalid(
            format!("{field}.destination"),
            format!("{destination:?} is not absolute"),
        ));
    }
    if destination.split('/').any(|c| c == "..") {
        return Err(invalid(
            format!("{field}.destination"),
            format!("{destination:?} contains \"..\""),
        ));
    }
    let fstype = m.typ().clone().unwrap_or_default();
    let (mut flags, mut propagation, mut rset, mut rclear) = (0u64, 0u64, 0u64, 0u64);
    let mut data = Vec::new();
    let mut copy_up = false;
    for option in m.options().iter().flatten() {
        if matches!(option.as_str(), "idmap" | "ridmap") || option.starts_with("X-mount.") {
            return Err(unsupported(
                format!("{field}.options"),
                format!("mount option {option:?} is not supported yet"),
            ));
        }
        match mount_option(option) {
            MountOption::Set(f) => flags |= f,
            MountOption::Clear(f) => flags &= !f,
            MountOption::Propagation(f) => propagation = f,
            MountOption::RecursiveSet(f) => {
                rset |= f;
                rclear &= !f;
            }
            MountOption::RecursiveClear(f) => {
                rclear |= f;
                rset &= !f;
            }
            MountOption::CopyUp => copy_up = true,
            MountOption::Data => data.push(option.clone()),
        }
    }
    if copy_up && fstype != "tmpfs" {
        return Err(invalid(
            format!("{field}.options"),
            format!("tmpcopyup applies to tmpfs mounts only, not to type {fstype:?}"),
        ));
    }
    let bind = fstype == "bind" || flags & libc::MS_BIND as u64 != 0;
    if bind {
        flags |= libc::MS_BIND as u64;
    }
    if m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
    {
        return Err(unsupported(
            format!("{field}.uidMappings"),
            "id-mapped mounts are not supported yet",
        ));
    }
    let source = m.source().clone().unwrap_or_default();
    let source = if bind && source.is_relative() {
        bundle.join(source)
    } else {
        source
    };
    let source = source
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.source"), "not valid utf-8"))?
        .to_owned();
    if bind && source.is_empty() {
        return Err(invalid(
            format!("{field}.source"),
            "a bind mount needs a source",
        ));
    }
    if !bind && fstype.is_empty() {
        return Err(invalid(
            format!("{field}.type"),
            "a mount that is not a bind needs a type",
        ));
    }
    Ok(MountPlan {
        destination: destination.to_owned(),
        source,
        fstype: if bind { String::new() } else { fstype },
        flags,
        data: data.join(","),
        propagation,
        recursive_attr_set: rset,
        recursive_attr_clear: rclear,
        copy_up,
    })
}

/// A `cgroup` mount shows the container its own cgroups, read-only unless
/// the options say otherwise: on cgroup v2 its directory is bound at the
/// destination; on v1 (or hybrid) a tmpfs holds one bind per hierarchy.
fn cgroup_mounts(m: &MountPlan, dirs: &[(Option<String>, PathBuf)]) -> Vec<MountPlan> {
    let bind = |source: &Path, destination: String| MountPlan {
        destination,
        source: source.display().to_string(),
        fstype: String::new(),
        flags: (libc::MS_BIND | libc::MS_REC) as u64
            | (m.flags
                & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u64),
        data: String::new(),
        propagation: m.propagation,
        recursive_attr_set: m.recursive_attr_set,
        recursive_attr_clear: m.recursive_attr_clear,
        copy_up: false,
    };
    if let [(None, dir)] = dirs {
        return vec![bind(dir, m.destination.clone())];
    }
    let mut out = vec![MountPlan {
        destination: m.destination.clone(),
        source: "tmpfs".into(),
        fstype: "tmpfs".into(),
        flags: (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u64,
        data: "mode=755".into(),
        propagation: 0,
        recursive_attr_set: 0,
        recursive_attr_clear: 0,
        copy_up: false,
    }];
    for (name, dir) in dirs {
        let name = name.clone().unwrap_or_else(|| "unified".into());
        out.push(bind(
            dir,
            format!("{}/{name}", m.destination.trim_end_matches('/')),
        ));
    }
    // The tmpfs itself is read-only once the binds are in, as runc leaves it.
    if m.flags & libc::MS_RDONLY as u64 != 0 {
        out.push(MountPlan {
            destination: m.destination.clone(),
            source: String::new(),
            fstype: String::new(),
            flags: (libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC) as u64,
            data: String::new(),
            propagation: 0,
            recursive_attr_set: 0,
            recursive_attr_clear: 0,
            copy_up: false,
        });
    }
    out
}

/// A subcontainer's spec: the sandbox's network, IPC and UTS namespaces
/// (those of the root container's init, `root_pid`) and pid and mount
/// namespaces of its own; other namespaces as the spec says.
pub fn subcontainer_spec(spec: &Spec, root_pid: i32) -> Spec {
    use oci_spec::runtime::LinuxNamespace;
    let mut spec = spec.clone();
    let shared = [
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    let own = [LinuxNamespaceType::Pid, LinuxNamespaceType::Mount];
    let mut namespaces: Vec<LinuxNamespace> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| !shared.contains(&ns.typ()) && !own.contains(&ns.typ()))
        .collect();
    for typ in shared {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns.set_path(Some(PathBuf::from(format!(
            "/proc/{root_pid}/ns/{}",
            ns_kind(typ).proc_name()
        ))));
        namespaces.push(ns);
    }
    for typ in own {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        namespaces.push(ns);
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
    // The hostname belongs to the shared UTS namespace.
    spec.set_hostname(None);
    spec.set_domainname(None);
    spec
}

/// The device cgroup rules of a spec: its own, then the devices every
/// container may use (runc's list, so that the default `/dev` works under a
/// deny-all rule).
pub fn device_rules(spec: &Spec) -> Result<Option<Vec<crate::sys::cgroup::DeviceRule>>, SpecError> {
    use crate::sys::cgroup::DeviceRule;
    let Some(rules) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => {
                return Err(invalid(
                    format!("{field}.type"),
                    "fifos have no device rules",
                ))
            }
        };
        let number = |n: Option<i64>, name: &str| match n {
            None | Some(-1) => Ok(None),
            Some(v) => u64::try_from(v)
                .map(Some)
                .map_err(|_| invalid(format!("{field}.{name}"), format!("{v} is negative"))),
        };
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(invalid(
                format!("{field}.access"),
                format!("{access:?} is not made of r, w and m"),
            ));
        }
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major: number(r.major(), "major")?,
            minor: number(r.minor(), "minor")?,
            access,
        });
    }
    out.extend(runc_default_device_rules());
    Ok(Some(out))
}

/// The devices every container may use, as runc allows them: mknod of
/// any, then null, zero, full, tty, random, urandom, console, ptmx, the
/// pts and tun.
pub fn runc_default_device_rules() -> Vec<crate::sys::cgroup::DeviceRule> {
    [
        ('c', None, None, "m"),
        ('b', None, None, "m"),
        ('c', Some(1), Some(3), "rwm"),
        ('c', Some(1), Some(5), "rwm"),
        ('c', Some(1), Some(7), "rwm"),
        ('c', Some(1), Some(8), "rwm"),
        ('c', Some(1), Some(9), "rwm"),
        ('c', Some(5), Some(0), "rwm"),
        ('c', Some(5), Some(1), "rwm"),
        ('c', Some(5), Some(2), "rwm"),
        ('c', Some(136), None, "rwm"),
        ('c', Some(10), Some(200), "rwm"),
    ]
    .into_iter()
    .map(
        |(kind, major, minor, access)| crate::sys::cgroup::DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.into(),
        },
    )
    .collect()
}

/// runc's default devices, created in a tmpfs `/dev`.
fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| DevicePlan {
        path: path.into(),
        file_type: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn device_plan(d: &LinuxDevice, field: &str) -> Result<DevicePlan, SpecError> {
    let path = d
        .path()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.path"), "not valid utf-8"))?;
    if !path.starts_with("/dev/") || path.split('/').any(|c| c == "..") {
        return Err(invalid(
            format!("{field}.path"),
            format!("{path:?} is not a path under /dev"),
        ));
    }
    let file_type = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(invalid(
                format!("{field}.type"),
                "\"a\" is not a device type",
            ))
        }
    };
    let number = |v: i64, name: &str| {
        u64::try_from(v).map_err(|_| invalid(format!("{field}.{name}"), format!("{v} is negative")))
    };
    Ok(DevicePlan {
        path: path.to_owned(),
        file_type,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666),
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn hook_plan(h: &Hook, field: &str) -> Result<HookPlan, SpecError> {
    let path = h
        .path()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.path"), "not valid utf-8"))?;
    if !path.starts_with('/') {
        return Err(invalid(
            format!("{field}.path"),
            format!("{path:?} is not absolute"),
        ));
    }
    let timeout_secs = match h.timeout() {
        None => None,
        Some(t) if t > 0 => Some(t as u64),
        Some(t) => {
            return Err(invalid(
                format!("{field}.timeout"),
                format!("{t} is not positive"),
            ))
        }
    };
    Ok(HookPlan {
        path: path.to_owned(),
        args: h.args().clone().unwrap_or_else(|| vec![path.to_owned()]),
        env: h.env().clone().unwrap_or_default(),
        timeout_secs,
    })
}

fn process_plan(
    p: &Process,
    seccomp_spec: Option<&oci_spec::runtime::LinuxSeccomp>,
    stdio: StdioPlan,
) -> Result<(ProcessPlan, Vec<String>), SpecError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid("process.args", "must name a program"));
    }
    if p.command_line().as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(unsupported("process.commandLine", "a windows field"));
    }
    let cwd = p
        .cwd()
        .to_str()
        .ok_or_else(|| invalid("process.cwd", "not valid utf-8"))?;
    if !cwd.starts_with('/') {
        return Err(invalid("process.cwd", format!("{cwd:?} is not absolute")));
    }
    let user = p.user();
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let resource = rlimit_number(r.typ());
        if !seen.insert(resource) {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("{:?} given twice", r.typ()),
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
            ));
        }
        rlimits.push(RlimitPlan {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let (seccomp, mut warnings) = match seccomp_spec {
        None => (None, Vec::new()),
        Some(s) => {
            let compiled = seccomp::compile(s).map_err(|e| match e {
                SeccompError::Unsupported { field, value } => {
                    unsupported(field, format!("{value} is not supported"))
                }
                other => invalid("linux.seccomp", other.to_string()),
            })?;
            (Some(compiled.program), compiled.warnings)
        }
    };
    let capabilities = p.capabilities().as_ref().map(capability_plan);
    if let Some(caps) = &capabilities {
        // The kernel raises an ambient capability only if it is permitted
        // and inheritable; like runc, say which are not raised and go on.
        let dropped = caps.ambient & !(caps.permitted & caps.inheritable);
        if dropped != 0 {
            warnings.push(format!(
                "process.capabilities.ambient: {} not raised: an ambient capability must also be permitted and inheritable",
                capability_names(dropped).join(", ")
            ));
        }
    }
    let capabilities = capabilities.map(|mut c| {
        c.ambient &= c.permitted & c.inheritable;
        c
    });
    Ok((
        ProcessPlan {
            executable: None,
            args,
            env: p.env().clone().unwrap_or_default(),
            cwd: cwd.to_owned(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            capabilities,
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            stdio,
            preserved_fds: Vec::new(),
            seccomp,
        },
        warnings,
    ))
}

fn rlimit_number(t: PosixRlimitType) -> u32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as u32
}

/// The bit of an OCI capability.
pub fn capability_bit(c: &oci_spec::runtime::Capability) -> u64 {
    let name = format!("CAP_{c}");
    name.parse::<caps::Capability>()
        .map_or(0, |cap| cap.bitmask())
}

/// The names of the capabilities in `mask`.
fn capability_names(mask: u64) -> Vec<String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .map(capability_bit)
        .fold(0, |acc, b| acc | b)
}

fn capability_plan(c: &LinuxCapabilities) -> CapabilityPlan {
    CapabilityPlan {
        bounding: mask(c.bounding()),
        effective: mask(c.effective()),
        inheritable: mask(c.inheritable()),
        permitted: mask(c.permitted()),
        ambient: mask(c.ambient()),
    }
}

/// The host directory the built-in spec always covers with a fresh tmpfs:
/// where runtimes keep their control sockets.
pub const HIDDEN_RUNTIME_DIR: &str = "/run";

/// An empty, unwritable tmpfs over `destination`.
fn hiding_mount(destination: &str) -> oci_spec::runtime::Mount {
    oci_spec::runtime::MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(
            ["ro", "nosuid", "nodev", "noexec", "mode=755", "size=4k"]
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .unwrap_or_default()
}

/// Hides `dir` (a state root given with `--root`) in a built-in spec,
/// unless a mount of the spec already covers it with something fresh.
pub fn hide_host_dir(spec: &mut Spec, dir: &Path) {
    let covered = spec.mounts().iter().flatten().any(|m| {
        m.destination() != Path::new("/")
            && m.typ().as_deref() == Some("tmpfs")
            && dir.starts_with(m.destination())
    });
    if covered {
        return;
    }
    let Some(dir) = dir.to_str() else {
        return;
    };
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(hiding_mount(dir));
    spec.set_mounts(Some(mounts));
}

/// The built-in spec of `sandvisor run` without a bundle: the host's root
/// read-only, a fresh /proc, a minimal /dev, a tmpfs /tmp, an empty
/// /run, runc's masked and read-only paths, new pid, mount,
/// uts, ipc and net namespaces, hostname = the id, runc's default
/// capabilities, no_new_privs, and `runc spec`'s deny-all device rule
/// (the manager appends runc's allow list; on cgroup v2 an eBPF program
/// enforces them).
pub fn default_spec(id: &str, args: Vec<String>, terminal: bool) -> Spec {
    use oci_spec::runtime::{
        Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
        LinuxNamespaceBuilder, LinuxResourcesBuilder, MountBuilder, ProcessBuilder, RootBuilder,
        SpecBuilder,
    };
    let caps: oci_spec::runtime::Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    // The builder's defaults fill unset sets with oci-spec's own defaults:
    // say empty explicitly.
    let none = oci_spec::runtime::Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(none.clone())
        .ambient(none)
        .build()
        .unwrap_or_default();
    let mount = |dest: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap_or_default()
    };
    let mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]),
        // The host's runtime state (sandvisor's sockets under /run/sandvisor,
        // docker's, containerd's...) must not be reachable: a read-only
        // mount does not stop connect(2).
        mount(
            HIDDEN_RUNTIME_DIR,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=755", "size=65536k"],
        ),
    ];
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .unwrap_or_default()
    })
    .collect::<Vec<_>>();
    let process = ProcessBuilder::default()
        .terminal(terminal)
        .args(args)
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "TERM=xterm".to_string(),
            format!("HOSTNAME={id}"),
        ])
        .cwd("/")
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .unwrap_or_default();
    // As `runc spec`: every device denied, then the manager appends runc's
    // allow list. oci-spec's own default has no rule at all, which a v1
    // devices cgroup reads as "everything its parent allows".
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap_or_default();
    let defaults = oci_spec::runtime::Linux::default();
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("/")
                .readonly(true)
                .build()
                .unwrap_or_default(),
        )
        .hostname(id)
        .mounts(mounts)
        .process(process)
        .linux(
            LinuxBuilder::default()
                .namespaces(namespaces)
                // runc's defaults, as `sandvisor spec` writes them: the
                // kernel knobs and host details a container must not reach.
                .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
                .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
                .resources(
                    LinuxResourcesBuilder::default()
                        .devices(vec![deny_all])
                        .build()
                        .unwrap_or_default(),
                )
                .build()
                .unwrap_or_default(),
        )
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_mount_option_means_something() {
        for name in KNOWN_MOUNT_OPTIONS {
            assert!(
                !matches!(mount_option(name), MountOption::Data),
                "{name} would be passed as data"
            );
        }
        assert!(matches!(mount_option("size=1m"), MountOption::Data));
        assert_eq!(KNOWN_MOUNT_OPTIONS.len(), 49);
    }

    #[test]
    fn the_new_namespaces_advertised_are_accepted_and_user_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        for kind in NEW_NAMESPACES {
            let kind = serde_json::to_value(kind).unwrap();
            let kind = kind.as_str().unwrap();
            let namespaces = if kind == "mount" {
                r#"{"type":"mount"}"#.to_owned()
            } else {
                format!(r#"{{"type":"mount"}},{{"type":"{kind}"}}"#)
            };
            let json = format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"/r"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},"linux":{{"namespaces":[{namespaces}]}}}}"#
            );
            let spec = parse(&json);
            let built = build_container(&spec, &ctx(dir.path(), scratch.path()));
            assert!(built.is_ok(), "{kind}: {:?}", built.err());
        }
        let user = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}}"#,
        );
        assert!(build_container(&user, &ctx(dir.path(), scratch.path())).is_err());
        assert!(known_capabilities().contains(&"CAP_SYS_ADMIN".to_owned()));
    }

    fn ctx<'a>(bundle: &'a Path, scratch: &'a Path) -> ContainerContext<'a> {
        ContainerContext {
            bundle,
            scratch_root: scratch,
            cgroup_procs: vec![PathBuf::from("/sys/fs/cgroup/pids/x/cgroup.procs")],
            cgroup_v2_dir: Some(PathBuf::from("/sys/fs/cgroup/unified/x")),
            cgroup_dirs: vec![
                (Some("pids".into()), PathBuf::from("/sys/fs/cgroup/pids/x")),
                (
                    Some("unified".into()),
                    PathBuf::from("/sys/fs/cgroup/unified/x"),
                ),
            ],
            supervisor_pid: 42,
            gated: false,
            loopback_up: true,
            hook_state: None,
            caller_terminal: false,
            preserve_fds: 0,
        }
    }

    fn parse(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_default_spec_binds_the_host_root_read_only() {
        let spec = default_spec("box1", vec!["sh".into()], false);
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/run/x/rootfs"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!("not a container")
        };
        assert_eq!(c.rootfs.path, "/run/x/rootfs");
        let first = &c.rootfs.mounts[0];
        assert_eq!(
            (first.destination.as_str(), first.source.as_str()),
            ("/", "/")
        );
        assert_eq!(first.recursive_attr_set, libc::MOUNT_ATTR_RDONLY);
        let dests: Vec<&str> = c
            .rootfs
            .mounts
            .iter()
            .map(|m| m.destination.as_str())
            .collect();
        assert_eq!(
            dests,
            ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"]
        );
        assert!(c.rootfs.masked_paths.contains(&"/proc/keys".to_owned()));
        assert!(c.rootfs.masked_paths.contains(&"/sys/firmware".to_owned()));
        assert!(c.rootfs.readonly_paths.contains(&"/proc/sys".to_owned()));
        let devices: Vec<&str> = c.rootfs.devices.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            devices,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(c.rootfs.dev_symlinks);
        assert_eq!(c.hostname.as_deref(), Some("box1"));
        assert!(c.loopback_up);
        let mut ns = c.new_namespaces.clone();
        ns.sort_by_key(|k| k.proc_name());
        assert_eq!(
            ns,
            [
                NsKind::Ipc,
                NsKind::Mount,
                NsKind::Net,
                NsKind::Pid,
                NsKind::Uts
            ]
        );
        let caps = bp.plan.process.capabilities.unwrap();
        let expected = (1 << 29) | (1 << 5) | (1 << 10); // AUDIT_WRITE, KILL, NET_BIND_SERVICE
        assert_eq!(
            (caps.bounding, caps.effective, caps.permitted, caps.ambient),
            (expected, expected, expected, 0)
        );
        assert!(bp.plan.process.no_new_privileges);
        assert_eq!(bp.fds[0], FdSource::StatusPipe);
        assert!(bp.fds.contains(&FdSource::Stdio(1)));
    }

    #[test]
    fn mount_options_become_flags_propagation_and_data() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "mounts":[{"destination":"/data","type":"bind","source":"host","options":["rbind","ro","nosuid","rslave","rro"]},
                      {"destination":"/t","type":"tmpfs","source":"tmpfs","options":["size=1m","noexec","mode=700"]}],
            "linux":{"namespaces":[{"type":"mount"}]}}"#,
        );
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        assert_eq!(c.rootfs.path, "/b/rootfs");
        let bind = &c.rootfs.mounts[0];
        assert_eq!(bind.source, "/b/host");
        assert_eq!(
            bind.flags,
            (libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID) as u64
        );
        assert_eq!(bind.propagation, (libc::MS_SLAVE | libc::MS_REC) as u64);
        assert_eq!(bind.recursive_attr_set, libc::MOUNT_ATTR_RDONLY);
        let tmp = &c.rootfs.mounts[1];
        assert_eq!(
            (tmp.fstype.as_str(), tmp.data.as_str(), tmp.flags),
            ("tmpfs", "size=1m,mode=700", libc::MS_NOEXEC as u64)
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let base = |extra: &str| {
            format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"/r"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}}{extra}}}"#
            )
        };
        let cases = [
            (base(r#","mounts":[{"destination":"rel","type":"tmpfs"}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].destination: \"rel\" is not absolute"),
            (base(r#","linux":{"namespaces":[{"type":"mount"},{"type":"mount"}]}"#), "linux.namespaces[1]: namespace type Mount appears twice"),
            (base(r#","linux":{"namespaces":[{"type":"pid"}]}"#), "linux.namespaces: a container needs a new mount namespace"),
            (base(r#","hostname":"h","linux":{"namespaces":[{"type":"mount"}]}"#), "hostname: setting a hostname or domainname needs a uts namespace"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"kernel.panic":"1"}}"#), "linux.sysctl.kernel.panic: not a namespaced sysctl; it would change the host"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#), "linux.sysctl.net.ipv4.ip_forward: needs a net namespace"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"resources":{"network":{"classID":1}}}"#), "linux.resources.network: network class ids and priorities are not supported"),
            (base(r#","linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}"#), "linux.namespaces[1]: new user namespaces (uid/gid mappings) are not supported yet; join one by path"),
            (base(r#","mounts":[{"destination":"/x","type":"tmpfs","options":["idmap"]}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].options: mount option \"idmap\" is not supported yet"),
            (base(r#","mounts":[{"destination":"/x","type":"bind","source":"/y","options":["tmpcopyup"]}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].options: tmpcopyup applies to tmpfs mounts only, not to type \"bind\""),
        ];
        for (json, expected) in cases {
            let err =
                build_container(&parse(&json), &ctx(Path::new("/b"), Path::new("/s"))).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
        let mut spec = parse(&base(r#","linux":{"namespaces":[{"type":"mount"}]}"#));
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_cwd(PathBuf::from("relative"));
        let err = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap_err();
        assert_eq!(err.to_string(), "process.cwd: \"relative\" is not absolute");
    }

    #[test]
    fn the_built_in_spec_denies_every_device_but_runcs_list() {
        let rules = device_rules(&default_spec("x", vec!["sh".into()], false))
            .unwrap()
            .expect("the built-in spec has device rules");
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.allow, r.line()))
            .collect();
        assert_eq!(
            lines,
            [
                "false a",
                "true c *:* m",
                "true b *:* m",
                "true c 1:3 rwm",
                "true c 1:5 rwm",
                "true c 1:7 rwm",
                "true c 1:8 rwm",
                "true c 1:9 rwm",
                "true c 5:0 rwm",
                "true c 5:1 rwm",
                "true c 5:2 rwm",
                "true c 136:* rwm",
                "true c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn device_rules_come_first_then_the_default_allow_list() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":4,"minor":-1,"access":"rw"}]}}}"#,
        );
        let rules = device_rules(&spec).unwrap().unwrap();
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.allow, r.line()))
            .collect();
        assert_eq!(&lines[..3], ["false a", "true c 4:* rw", "true c *:* m"]);
        assert!(lines.contains(&"true c 136:* rwm".to_string()));
        let bad = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"linux":{"resources":{"devices":[{"allow":true,"access":"x"}]}}}"#,
        );
        assert_eq!(
            device_rules(&bad).unwrap_err().to_string(),
            "linux.resources.devices[0].access: \"x\" is not made of r, w and m"
        );
    }

    #[test]
    fn subcontainers_share_net_ipc_uts_and_own_pid_and_mount() {
        let spec = default_spec("sub", vec!["sh".into()], false);
        let sub = subcontainer_spec(&spec, 4242);
        assert_eq!(sub.hostname(), &None);
        let bp = build_container(&sub, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        let mut new = c.new_namespaces.clone();
        new.sort_by_key(|k| k.proc_name());
        assert_eq!(new, [NsKind::Mount, NsKind::Pid]);
        let joined: Vec<(NsKind, FdSource)> = c
            .join
            .iter()
            .map(|j| (j.kind, bp.fds[j.fd].clone()))
            .collect();
        assert_eq!(
            joined,
            [
                (
                    NsKind::Net,
                    FdSource::Namespace(NsKind::Net, PathBuf::from("/proc/4242/ns/net"))
                ),
                (
                    NsKind::Ipc,
                    FdSource::Namespace(NsKind::Ipc, PathBuf::from("/proc/4242/ns/ipc"))
                ),
                (
                    NsKind::Uts,
                    FdSource::Namespace(NsKind::Uts, PathBuf::from("/proc/4242/ns/uts"))
                ),
            ]
        );
        assert!(
            !c.loopback_up,
            "the shared namespace's loopback is the root's business"
        );
    }

    #[test]
    fn namespaces_given_by_path_are_joined() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"}]}}"#,
        );
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        assert_eq!(c.new_namespaces, [NsKind::Mount]);
        assert_eq!(
            c.join,
            [JoinNs {
                kind: NsKind::Net,
                fd: 1
            }]
        );
        assert_eq!(
            bp.fds[1],
            FdSource::Namespace(NsKind::Net, PathBuf::from("/proc/1/ns/net"))
        );
        assert!(!c.loopback_up, "lo belongs to the joined namespace");
    }
}
