//! The order of a container's setup steps, through to the execve.

use super::{container, container_plan, descriptors, failure, raw, run, steps};
use super::{CONSOLE, HOOKS_GATE, PRESERVED, START_GATE, STATUS};
use crate::sys::plan::{ChildReport, HookPlan, StdioPlan};
use crate::sys::spawn::child::{setup_and_exec, Fds};
use crate::sys::spawn::recording_kernel::{Call, RecordingKernel};

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
