//! The child's setup sequence against the recording kernel: which step
//! comes when, and what a failing step reports (and that nothing after it
//! runs). No root needed: the double performs nothing.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::child::{setup_and_exec, Failure, Fds, Never, Step};
use super::recording_kernel::{dev_null, Call, RecordingKernel};
use crate::sys::plan::{
    CapabilityPlan, ContainerPlan, DevicePlan, JoinNs, MountPlan, NsKind, PlanKind, ProcessPlan,
    RlimitPlan, RootfsPlan, SpawnPlan, StdioPlan,
};
use crate::sys::seccomp::SeccompProgram;

mod exec;
mod failing_steps;
mod order;
mod seccomp;
mod small_cases;

// The plan's descriptor indexes.
const STATUS: usize = 0;
const STDIN: usize = 1;
const STDOUT: usize = 2;
const STDERR: usize = 3;
const USER_NS: usize = 4;
const NET_NS: usize = 5;
const CGROUP_PROCS: usize = 6;
const START_GATE: usize = 7;
const HOOKS_GATE: usize = 8;
const CONSOLE: usize = 9;
const PRESERVED: usize = 10;
const MOUNT_NS: usize = 11;
const ROOT: usize = 12;

fn descriptors() -> Vec<OwnedFd> {
    (0..=ROOT).map(|_| dev_null()).collect()
}

fn raw(fds: &[OwnedFd], index: usize) -> RawFd {
    fds[index].as_raw_fd()
}

fn process(no_new_privileges: bool) -> ProcessPlan {
    ProcessPlan {
        executable: None,
        args: vec!["sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/work".into(),
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10],
        umask: Some(0o022),
        capabilities: Some(CapabilityPlan {
            bounding: 0b0101,
            effective: 0b0001,
            inheritable: 0,
            permitted: 0b0001,
            ambient: 0b0001,
        }),
        rlimits: vec![RlimitPlan {
            resource: libc::RLIMIT_NOFILE as u32,
            soft: 1024,
            hard: 4096,
        }],
        no_new_privileges,
        oom_score_adj: None,
        stdio: StdioPlan::Fds {
            stdin: STDIN,
            stdout: STDOUT,
            stderr: STDERR,
        },
        preserved_fds: vec![PRESERVED],
        seccomp: Some(SeccompProgram {
            bpf: vec![0; 8],
            flags: 0,
        }),
    }
}

fn proc_mount() -> MountPlan {
    MountPlan {
        destination: "/proc".into(),
        source: "proc".into(),
        fstype: "proc".into(),
        flags: (libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV) as u64,
        data: String::new(),
        propagation: 0,
        recursive_attr_set: 0,
        recursive_attr_clear: 0,
        copy_up: false,
    }
}

fn container() -> ContainerPlan {
    let bind = MountPlan {
        destination: "/data".into(),
        source: "/host/data".into(),
        fstype: String::new(),
        flags: (libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY) as u64,
        ..proc_mount()
    };
    ContainerPlan {
        new_namespaces: vec![NsKind::Mount, NsKind::Pid],
        // Listed out of order: joined user first.
        join: vec![
            JoinNs {
                kind: NsKind::Net,
                fd: NET_NS,
            },
            JoinNs {
                kind: NsKind::User,
                fd: USER_NS,
            },
        ],
        cgroup_procs: vec![CGROUP_PROCS],
        unshare_cgroup_ns: true,
        rootfs: RootfsPlan {
            path: "/bundle/rootfs".into(),
            readonly: true,
            propagation: (libc::MS_SLAVE | libc::MS_REC) as u64,
            mounts: vec![proc_mount(), bind],
            devices: vec![DevicePlan {
                path: "/dev/null".into(),
                file_type: libc::S_IFCHR,
                major: 1,
                minor: 3,
                mode: 0o666,
                uid: 0,
                gid: 0,
            }],
            dev_symlinks: false,
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            pivot_root: true,
        },
        hostname: Some("box".into()),
        domainname: Some("example.org".into()),
        sysctl: vec![("net.ipv4.ip_forward".into(), "1".into())],
        loopback_up: true,
        create_container_hooks: Vec::new(),
        start_container_hooks: Vec::new(),
        hook_state: None,
        runtime_hooks_gate: None,
        start_gate: None,
    }
}

fn spawn_plan(kind: PlanKind, process: ProcessPlan) -> SpawnPlan {
    SpawnPlan {
        kind,
        process,
        status: STATUS,
        supervisor_pid: RecordingKernel::SUPERVISOR,
        clone_into_cgroup: None,
        caller_parented: false,
    }
}

fn container_plan(c: ContainerPlan, no_new_privileges: bool) -> SpawnPlan {
    spawn_plan(PlanKind::Container(Box::new(c)), process(no_new_privileges))
}

/// The failure a sequence that never execs for real ends with.
fn failure(outcome: Step<Never>) -> Failure {
    match outcome {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

fn run(k: &RecordingKernel, plan: &SpawnPlan) -> Failure {
    let fds = descriptors();
    failure(setup_and_exec(k, plan, &Fds(&fds)))
}

/// A call as a short step name; `None` for lookups that change nothing.
fn step(call: &Call) -> Option<String> {
    let mount_kind = |flags: u64, fstype: &Option<String>| {
        if flags & libc::MS_REMOUNT as u64 != 0 {
            "remount"
        } else if flags & libc::MS_BIND as u64 != 0 {
            "bind"
        } else if fstype.is_some() {
            "mount"
        } else {
            "propagate"
        }
    };
    Some(match call {
        Call::OpenDirectory(_)
        | Call::OpenInRoot(..)
        | Call::CreateInRoot(..)
        | Call::IsDirectory(_)
        | Call::CwdReachable
        | Call::AccessExecutable(_) => return None,
        Call::SetParentDeathSignal => "death signal".into(),
        Call::Report(report) => format!("report {report:?}"),
        Call::Read(_) => "wait".into(),
        Call::RunHooks(paths) => format!("hooks {}", paths.join(" ")),
        Call::Setns(kind, _) => format!("setns {}", kind.proc_name()),
        Call::Unshare(kind) => format!("unshare {}", kind.proc_name()),
        Call::JoinCgroup(_) => "join cgroup".into(),
        Call::Sethostname(name) => format!("hostname {name}"),
        Call::Setdomainname(name) => format!("domainname {name}"),
        Call::LoopbackUp => "loopback up".into(),
        Call::Mount {
            flags,
            fstype,
            path,
            ..
        } => format!("{} {path}", mount_kind(*flags, fstype)),
        Call::MakeParentMountPrivate(path) => format!("private parent of {path}"),
        Call::SetMountAttributes { path, .. } => format!("setattr {path}"),
        Call::CopyDirectory => "copy up".into(),
        Call::MakeDevice(path) => format!("mknod {path}"),
        Call::MakeSymlink(_, link) => format!("symlink {link}"),
        Call::Chdir(path) => format!("chdir {path}"),
        Call::Fchdir(_) => "fchdir".into(),
        Call::Chroot(path) => format!("chroot {path}"),
        Call::PivotRoot => "pivot_root".into(),
        Call::MoveRoot => "move root".into(),
        Call::WriteSysctl(key, value) => format!("sysctl {key}={value}"),
        Call::MaskPath(path) => format!("mask {path}"),
        Call::MakeReadonly(path) => format!("read-only {path}"),
        Call::CloseAllExcept(_) => "close others".into(),
        Call::Setrlimit(resource, ..) => format!("rlimit {resource}"),
        Call::WriteOomScoreAdj(adj) => format!("oom_score_adj {adj}"),
        Call::DropBoundingCapability(cap) => format!("drop bounding {cap}"),
        Call::SetKeepcaps(keep) => format!("keepcaps {keep}"),
        Call::Setgroups(gids) => format!("setgroups {gids:?}"),
        Call::Setresgid(gid) => format!("setresgid {gid}"),
        Call::Setresuid(uid) => format!("setresuid {uid}"),
        Call::Capset(_) => "capset".into(),
        Call::ClearAmbientCapabilities => "clear ambient".into(),
        Call::RaiseAmbientCapability(cap) => format!("raise ambient {cap}"),
        Call::InstallSeccomp => "seccomp".into(),
        Call::SetDumpable(dumpable) => format!("dumpable {dumpable}"),
        Call::SetNoNewPrivs => "no_new_privs".into(),
        Call::Umask(mask) => format!("umask {mask:o}"),
        Call::UnblockSignals => "unblock signals".into(),
        Call::DefaultSigpipe => "default SIGPIPE".into(),
        Call::Execve { program, .. } => format!("execve {program}"),
        Call::Setsid => "setsid".into(),
        Call::DupAboveStdio(_) => "dup stdio".into(),
        Call::Dup2(_, target) => format!("dup2 {target}"),
        Call::OpenPty => "open pty".into(),
        Call::SendFd(_) => "send pty".into(),
        Call::SetWindowSize(_) => "window size".into(),
        Call::BecomeControllingTerminal(_) => "controlling terminal".into(),
    })
}

fn steps(k: &RecordingKernel) -> Vec<String> {
    k.calls().iter().filter_map(step).collect()
}

fn position(steps: &[String], name: &str) -> usize {
    steps
        .iter()
        .position(|s| s == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {steps:#?}"))
}
