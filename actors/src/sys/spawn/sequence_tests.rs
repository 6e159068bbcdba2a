//! The child's setup sequence against the recording kernel: which step
//! comes when, and what a failing step reports (and that nothing after it
//! runs). No root needed: the double performs nothing.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::child::{exec_process, join_container, setup_and_exec, Failure, Fds, Never, Step};
use super::recording_kernel::{dev_null, Call, RecordingKernel};
use crate::sys::plan::{
    CapabilityPlan, ChildReport, ContainerPlan, DevicePlan, ExecPlan, HookPlan, JoinNs, MountPlan,
    NsKind, PlanKind, ProcessPlan, RlimitPlan, RootfsPlan, SpawnPlan, StdioPlan,
};
use crate::sys::seccomp::SeccompProgram;

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

#[test]
fn a_container_s_setup_steps_come_in_runc_s_order() {
    let k = RecordingKernel::default();
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!(
        (failure.step, failure.errno),
        ("exec", RecordingKernel::EXECVE_RETURNS as i32),
        "the double's execve returns: {failure:?}"
    );
    let pid = format!("report {:?}", ChildReport::Pid(RecordingKernel::PID));
    assert_eq!(
        steps(&k),
        [
            "death signal",
            &pid,
            // Namespaces (user first), then cgroups, then a cgroup
            // namespace rooted at the container's cgroup.
            "setns user",
            "setns net",
            "join cgroup",
            "unshare cgroup",
            "hostname box",
            "domainname example.org",
            "loopback up",
            // The mounts, under the new root.
            "propagate /",
            "private parent of /bundle/rootfs",
            "bind /bundle/rootfs",
            "mount /proc",
            "bind /data",
            "remount /data",
            "mknod /dev/null",
            // Into the root, then sysctls before the masked and read-only
            // paths (which cover /proc/sys), then a read-only root.
            "chdir /bundle/rootfs",
            "pivot_root",
            "sysctl net.ipv4.ip_forward=1",
            "mask /proc/kcore",
            "read-only /proc/sys",
            "setattr /",
            "close others",
            // The process.
            "rlimit 7",
            "chdir /work",
            "drop bounding 1",
            "drop bounding 3",
            "keepcaps true",
            "setgroups [10]",
            "setresgid 1000",
            "setresuid 1000",
            "capset",
            "clear ambient",
            "raise ambient 0",
            "dumpable false",
            "setsid",
            "dup stdio",
            "dup stdio",
            "dup stdio",
            "dup2 0",
            "dup2 1",
            "dup2 2",
            "dup2 3",
            "umask 22",
            "unblock signals",
            "default SIGPIPE",
            "no_new_privs",
            "seccomp",
            "execve /usr/bin/sh",
        ]
    );
}

#[test]
fn the_exec_gets_the_program_its_arguments_and_environment() {
    let k = RecordingKernel::default();
    run(&k, &container_plan(container(), true));
    let exec = k.calls().pop();
    assert_eq!(
        exec,
        Some(Call::Execve {
            program: "/usr/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
            envp: vec!["PATH=/usr/bin:/bin".into()],
        })
    );
}

#[test]
fn without_no_new_privileges_the_filter_goes_in_before_the_user_and_capabilities_change() {
    let k = RecordingKernel::default();
    run(&k, &container_plan(container(), false));
    let steps = steps(&k);
    let seccomp = position(&steps, "seccomp");
    assert!(seccomp < position(&steps, "drop bounding 1"), "{steps:#?}");
    assert!(seccomp < position(&steps, "setresuid 1000"), "{steps:#?}");
    assert!(seccomp < position(&steps, "capset"), "{steps:#?}");
    assert!(!steps.iter().any(|s| s == "no_new_privs"), "{steps:#?}");
    assert_eq!(steps.iter().filter(|s| *s == "seccomp").count(), 1);
}

#[test]
fn with_no_new_privileges_the_filter_goes_in_just_before_execve() {
    let k = RecordingKernel::default();
    run(&k, &container_plan(container(), true));
    let steps = steps(&k);
    let n = steps.len();
    assert_eq!(
        steps[n - 3..],
        ["no_new_privs", "seccomp", "execve /usr/bin/sh"]
    );
    assert_eq!(steps.iter().filter(|s| *s == "seccomp").count(), 1);
}

type Rule = fn(&Call) -> bool;

/// A step made to fail, and what the child must report.
struct Case {
    rule: Rule,
    errno: Errno,
    step: &'static str,
    path: &'static str,
}

fn case(rule: Rule, errno: Errno, step: &'static str, path: &'static str) -> Case {
    Case {
        rule,
        errno,
        step,
        path,
    }
}

#[test]
fn a_failing_step_stops_the_sequence_and_reports_its_step_path_and_errno() {
    use Errno::*;
    let cases = [
        case(
            |c| matches!(c, Call::SetParentDeathSignal),
            EPERM,
            "set parent death signal",
            "",
        ),
        case(
            |c| matches!(c, Call::Setns(NsKind::Net, _)),
            EINVAL,
            "setns",
            "net",
        ),
        case(
            |c| matches!(c, Call::JoinCgroup(_)),
            ENOSPC,
            "join cgroup",
            "cgroup.procs",
        ),
        case(
            |c| matches!(c, Call::Unshare(_)),
            ENOMEM,
            "unshare cgroup namespace",
            "",
        ),
        case(
            |c| matches!(c, Call::Sethostname(_)),
            EPERM,
            "sethostname",
            "box",
        ),
        case(
            |c| matches!(c, Call::Setdomainname(_)),
            EPERM,
            "setdomainname",
            "example.org",
        ),
        case(
            |c| matches!(c, Call::Mount { path, .. } if path == "/"),
            EINVAL,
            "mount",
            "/",
        ),
        case(
            |c| matches!(c, Call::OpenDirectory(_)),
            ENOENT,
            "open rootfs",
            "/bundle/rootfs",
        ),
        case(
            |c| matches!(c, Call::Mount { path, .. } if path == "/proc"),
            EPERM,
            "mount",
            "/proc",
        ),
        case(
            |c| matches!(c, Call::IsDirectory(_)),
            ENOENT,
            "stat bind source",
            "/host/data",
        ),
        case(
            |c| matches!(c, Call::Mount { flags, .. } if flags & libc::MS_REMOUNT as u64 != 0),
            EPERM,
            "mount",
            "/data",
        ),
        case(
            |c| matches!(c, Call::Chdir(p) if p == "/bundle/rootfs"),
            ENOENT,
            "chdir",
            "/bundle/rootfs",
        ),
        case(|c| matches!(c, Call::PivotRoot), EINVAL, "pivot_root", "."),
        case(
            |c| matches!(c, Call::WriteSysctl(..)),
            EROFS,
            "sysctl",
            "net.ipv4.ip_forward",
        ),
        case(
            |c| matches!(c, Call::MaskPath(_)),
            EPERM,
            "mount",
            "/proc/kcore",
        ),
        case(
            |c| matches!(c, Call::MakeReadonly(_)),
            EPERM,
            "mount_setattr",
            "/proc/sys",
        ),
        case(
            |c| matches!(c, Call::SetMountAttributes { path, .. } if path == "/"),
            EPERM,
            "mount_setattr",
            "/",
        ),
        case(
            |c| matches!(c, Call::Setrlimit(..)),
            EPERM,
            "setrlimit",
            "resource 7",
        ),
        case(
            |c| matches!(c, Call::Chdir(p) if p == "/work"),
            ENOENT,
            "chdir",
            "/work",
        ),
        case(
            |c| matches!(c, Call::DropBoundingCapability(_)),
            EPERM,
            "drop bounding capability",
            "1",
        ),
        case(
            |c| matches!(c, Call::Setgroups(_)),
            EPERM,
            "setgroups",
            "[10]",
        ),
        case(|c| matches!(c, Call::Setresgid(_)), EPERM, "setgid", "1000"),
        case(
            |c| matches!(c, Call::Setresuid(_)),
            EAGAIN,
            "setuid",
            "1000",
        ),
        case(
            |c| matches!(c, Call::RaiseAmbientCapability(_)),
            EPERM,
            "raise ambient capability",
            "0",
        ),
        case(
            |c| matches!(c, Call::SetDumpable(_)),
            EINVAL,
            "set non-dumpable",
            "",
        ),
        case(|c| matches!(c, Call::Setsid), EPERM, "setsid", ""),
        case(|c| matches!(c, Call::Dup2(_, 1)), EBADF, "dup2", "1"),
        case(
            |c| matches!(c, Call::Dup2(_, 3)),
            EBADF,
            "pass descriptor",
            "3",
        ),
        case(
            |c| matches!(c, Call::SetNoNewPrivs),
            EINVAL,
            "set no_new_privs",
            "",
        ),
        case(
            |c| matches!(c, Call::InstallSeccomp),
            EACCES,
            "install seccomp filter",
            "",
        ),
        case(
            |c| matches!(c, Call::Execve { .. }),
            ENOEXEC,
            "exec",
            "/usr/bin/sh",
        ),
    ];
    for case in cases {
        let k = RecordingKernel::default();
        k.fail_when(case.rule, case.errno);
        let failure = run(&k, &container_plan(container(), true));
        assert_eq!(
            (failure.step, failure.path.as_str(), failure.errno),
            (case.step, case.path, case.errno as i32),
            "{failure:?}"
        );
        let calls = k.calls();
        let last = calls.last().expect("a call");
        assert!(
            (case.rule)(last),
            "{}: nothing runs after the failing step, but {last:?} did",
            case.step
        );
        assert_eq!(
            calls.iter().filter(|c| (case.rule)(c)).count(),
            1,
            "{}: the failing step runs once",
            case.step
        );
    }
}

#[test]
fn an_unknown_filesystem_type_is_named() {
    let k = RecordingKernel::default();
    k.fail_when(
        |c| matches!(c, Call::Mount { path, .. } if path == "/proc"),
        Errno::ENODEV,
    );
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!(failure.message, "unknown filesystem type \"proc\"");
    assert_eq!(failure.errno, libc::ENODEV);
}

#[test]
fn a_bounding_capability_the_kernel_does_not_know_is_skipped() {
    let k = RecordingKernel::default();
    k.fail_when(
        |c| matches!(c, Call::DropBoundingCapability(3)),
        Errno::EINVAL,
    );
    run(&k, &container_plan(container(), true));
    assert!(steps(&k).contains(&"setresuid 1000".to_owned()));
}

#[test]
fn the_program_is_looked_up_in_the_process_s_path() {
    // Denied in the first directory: the next one is tried.
    let k = RecordingKernel::default();
    k.fail_at(Call::AccessExecutable("/usr/bin/sh".into()), Errno::EACCES);
    run(&k, &container_plan(container(), true));
    assert_eq!(steps(&k).last().map(String::as_str), Some("execve /bin/sh"));

    // Denied everywhere: EACCES, with the last directory that denied it.
    let k = RecordingKernel::default();
    k.fail_every(|c| matches!(c, Call::AccessExecutable(_)), Errno::EACCES);
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!(
        (failure.step, failure.path.as_str(), failure.errno),
        ("exec", "/bin/sh", libc::EACCES)
    );

    // Found nowhere: ENOENT, execvp's message.
    let k = RecordingKernel::default();
    k.fail_every(|c| matches!(c, Call::AccessExecutable(_)), Errno::ENOENT);
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!((failure.step, failure.errno), ("exec", libc::ENOENT));
    assert!(
        failure.message.contains("not found in $PATH"),
        "{failure:?}"
    );
    assert!(!k.calls().iter().any(|c| matches!(c, Call::Execve { .. })));
}

#[test]
fn a_working_directory_outside_the_root_is_refused_before_anything_else_changes() {
    let k = RecordingKernel::default();
    k.cwd_reachable.set(false);
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!(
        (failure.step, failure.path.as_str(), failure.errno),
        ("check working directory", "/work", libc::EPERM)
    );
    assert_eq!(k.calls().last(), Some(&Call::CwdReachable));
}

#[test]
fn a_child_whose_supervisor_is_gone_goes_no_further() {
    let k = RecordingKernel::default();
    k.parent.set(1);
    let failure = run(&k, &container_plan(container(), true));
    assert_eq!(failure.step, "check parent");
    assert_eq!(k.calls(), [Call::SetParentDeathSignal]);

    // In a new pid namespace the parent reads as 0: its pidfd tells.
    let k = RecordingKernel::default();
    k.parent.set(0);
    k.supervisor_gone.set(true);
    assert_eq!(
        run(&k, &container_plan(container(), true)).step,
        "check parent"
    );
    let k = RecordingKernel::default();
    k.parent.set(0);
    assert_eq!(run(&k, &container_plan(container(), true)).step, "exec");

    // A caller's process arms nothing for the supervisor.
    let k = RecordingKernel::default();
    k.parent.set(1);
    let mut plan = container_plan(container(), true);
    plan.caller_parented = true;
    assert_eq!(run(&k, &plan).step, "exec");
    assert!(!k.calls().contains(&Call::SetParentDeathSignal));
}

#[test]
fn gates_hooks_and_a_terminal_made_at_create_come_in_order() {
    let mut c = container();
    c.runtime_hooks_gate = Some(HOOKS_GATE);
    c.start_gate = Some(START_GATE);
    let hook = |path: &str| HookPlan {
        path: path.into(),
        args: vec![path.into()],
        env: Vec::new(),
        timeout_secs: None,
    };
    c.create_container_hooks = vec![hook("/create")];
    c.start_container_hooks = vec![hook("/start")];
    let mut plan = container_plan(c, true);
    plan.process.stdio = StdioPlan::NewTerminal {
        channel: CONSOLE,
        size: None,
    };
    let k = RecordingKernel::default();
    let fds = descriptors();
    failure(setup_and_exec(&k, &plan, &Fds(&fds)));
    let steps = steps(&k);
    let order = [
        "mknod /dev/null",
        "report RuntimeHooks",
        "wait",
        "hooks /create",
        "chdir /bundle/rootfs",
        "close others",
        "open pty",
        "send pty",
        "controlling terminal",
        "report Ready",
        "wait",
        "hooks /start",
        "rlimit 7",
        "execve /usr/bin/sh",
    ];
    let mut from = 0;
    for name in order {
        let at = steps[from..]
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("no {name:?} after step {from} in {steps:#?}"));
        from += at + 1;
    }
    assert_eq!(steps.iter().filter(|s| *s == "open pty").count(), 1);
    // The process keeps its own descriptors and the start gate, nothing
    // else of the host.
    let keep = k.calls().into_iter().find_map(|c| match c {
        Call::CloseAllExcept(keep) => Some(keep),
        _ => None,
    });
    assert_eq!(
        keep,
        Some(vec![
            raw(&fds, STATUS),
            raw(&fds, CONSOLE),
            raw(&fds, PRESERVED),
            raw(&fds, START_GATE),
        ])
    );
}

#[test]
fn a_gate_closed_before_start_ends_the_setup() {
    let mut c = container();
    c.start_gate = Some(START_GATE);
    let k = RecordingKernel::default();
    k.read_returns.set(0);
    let failure = run(&k, &container_plan(c, true));
    assert_eq!(failure.step, "wait for start");
    assert_eq!(failure.message, "the supervisor went away before start");
    assert!(matches!(k.calls().last(), Some(Call::Read(_))));
}

#[test]
fn without_pivot_root_the_root_is_moved() {
    let mut c = container();
    c.rootfs.pivot_root = false;
    let k = RecordingKernel::default();
    run(&k, &container_plan(c, true));
    let steps = steps(&k);
    assert!(steps.contains(&"move root".to_owned()));
    assert!(!steps.contains(&"pivot_root".to_owned()));
}

#[test]
fn a_mount_over_the_root_reopens_it() {
    let mut c = container();
    c.rootfs.mounts.insert(
        0,
        MountPlan {
            destination: "/".into(),
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            ..proc_mount()
        },
    );
    let k = RecordingKernel::default();
    run(&k, &container_plan(c, true));
    let opens = k
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::OpenDirectory(p) if p == "/bundle/rootfs"))
        .count();
    assert_eq!(opens, 2);
}

#[test]
fn a_hook_process_sets_up_only_the_process() {
    let mut process = process(true);
    process.capabilities = None;
    let k = RecordingKernel::default();
    let failure = run(&k, &spawn_plan(PlanKind::Hook, process));
    assert_eq!(failure.step, "exec");
    let steps = steps(&k);
    assert!(!steps.iter().any(|s| s.starts_with("setns")
        || s.starts_with("mount")
        || s == "pivot_root"
        || s == "capset"));
}

fn exec_plan() -> ExecPlan {
    ExecPlan {
        join: vec![
            JoinNs {
                kind: NsKind::Mount,
                fd: MOUNT_NS,
            },
            JoinNs {
                kind: NsKind::User,
                fd: USER_NS,
            },
        ],
        pid_ns: None,
        cgroup_procs: vec![CGROUP_PROCS],
        root: Some(ROOT),
    }
}

#[test]
fn an_exec_joins_the_cgroups_then_the_namespaces_then_the_root() {
    let k = RecordingKernel::default();
    let fds = descriptors();
    assert!(join_container(&k, &exec_plan(), &Fds(&fds)).is_ok());
    assert_eq!(
        k.calls(),
        [
            Call::JoinCgroup(raw(&fds, CGROUP_PROCS)),
            Call::Setns(NsKind::User, raw(&fds, USER_NS)),
            Call::Setns(NsKind::Mount, raw(&fds, MOUNT_NS)),
            Call::Fchdir(raw(&fds, ROOT)),
            Call::Chroot(".".into()),
        ]
    );

    let k = RecordingKernel::default();
    k.fail_when(|c| matches!(c, Call::Fchdir(_)), Errno::EACCES);
    let failure = join_container(&k, &exec_plan(), &Fds(&fds)).expect_err("fails");
    assert_eq!(
        (failure.step, failure.path.as_str(), failure.errno),
        ("fchdir", "container root", libc::EACCES)
    );
    assert!(matches!(k.calls().last(), Some(Call::Fchdir(_))));
}

#[test]
fn a_descriptor_the_plan_names_but_did_not_send_is_a_plan_failure() {
    let mut e = exec_plan();
    e.cgroup_procs = vec![99];
    let k = RecordingKernel::default();
    let fds = descriptors();
    let failure = join_container(&k, &e, &Fds(&fds)).expect_err("fails");
    assert_eq!(
        (failure.step, failure.path.as_str()),
        ("plan", "cgroup.procs")
    );
    assert!(k.calls().is_empty());
}

#[test]
fn an_exec_s_process_does_only_the_process_s_steps() {
    let k = RecordingKernel::default();
    let fds = descriptors();
    let mut p = process(false);
    p.oom_score_adj = Some(-500);
    let failure = failure(exec_process(&k, &p, &Fds(&fds), false));
    assert_eq!(failure.step, "exec");
    let steps = steps(&k);
    assert_eq!(
        steps[..3],
        ["rlimit 7", "oom_score_adj -500", "chdir /work"]
    );
    assert!(position(&steps, "seccomp") < position(&steps, "setresuid 1000"));
}
