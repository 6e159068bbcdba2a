//! Single cases: one failure, refusal or variant of the plan each.

use nix::errno::Errno;

use super::{container, container_plan, proc_mount, process, run, spawn_plan, steps, START_GATE};
use crate::sys::plan::{MountPlan, PlanKind};
use crate::sys::spawn::recording_kernel::{Call, RecordingKernel};

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
