//! The steps one client has and the other has not: docker's OOM report,
//! `--ipc container:` and `--pid container:`, a long exec root; podman's
//! pods.

use super::docker_daemon::Docker;
use super::engine::{Engine, NAMESPACES_SCRIPT};
use super::host::{host_name, host_ns, ns_of, unique, Runtime};
use super::podman_store::Podman;
use super::steps;

/// An OOM kill: status 137, and docker's inspect says OOMKilled.
pub fn docker_oom_kill_reported(d: &Docker) {
    let name = unique("oom");
    // dd's 64 MiB buffer cannot fit in 32 MiB (and no swap either).
    let ran = d.run(
        &["--name", &name, "--memory", "32m", "--memory-swap", "32m"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    assert_eq!(
        ran.code(),
        Some(137),
        "stderr: {}\n{}",
        ran.stderr,
        d.diagnostics()
    );
    assert_eq!(d.inspect(&name, "{{.State.ExitCode}}"), "137");
    assert_eq!(d.inspect(&name, "{{.State.OOMKilled}}"), "true");
    d.ok(&["rm", &name]);
    d.assert_nothing_left();
}

/// `--ipc container:X` and `--pid container:X` join X's namespaces, which
/// are not the host's.
pub fn docker_ipc_and_pid_of_another_container(d: &Docker) {
    let x = unique("x");
    d.start_sleeper(&x, &["--ipc", "shareable"]);
    let x_ipc = d
        .exec_ok(&x, "readlink /proc/self/ns/ipc")
        .trim()
        .to_owned();
    let x_pid = d
        .exec_ok(&x, "readlink /proc/self/ns/pid")
        .trim()
        .to_owned();
    assert_ne!(x_ipc, host_ns("ipc"), "X runs in the host's IPC namespace");
    assert_ne!(x_pid, host_ns("pid"), "X runs in the host's PID namespace");

    let ipc_of_x = format!("container:{x}");
    let ipc = d.run_ok(&["--ipc", &ipc_of_x], &["readlink", "/proc/self/ns/ipc"]);
    assert_eq!(ipc.trim(), x_ipc, "--ipc container:X");

    let pid = d.run_ok(
        &["--pid", &ipc_of_x],
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; tr '\\0' ' ' < /proc/1/cmdline; echo",
        ],
    );
    assert_eq!(
        pid,
        format!("{x_pid}\nsleep 100000 \n"),
        "--pid container:X"
    );

    d.ok(&["rm", "--force", &x]);
    d.assert_nothing_left();
}

/// A daemon whose exec root is longer than 40 characters (the runtime's
/// root, EXEC_ROOT/runtime-NAME/moby, then exceeds what a Unix socket's
/// path may hold once a container id is added): the basic steps pass.
pub fn docker_long_exec_root(runtime: Runtime) {
    let d = Docker::start_with_long_exec_root(
        runtime,
        "exec-root-deliberately-longer-than-forty-chars",
    );
    let length = d.exec_root().as_os_str().len();
    assert!(length > 40, "the exec root has {length} characters");
    steps::run_output_and_exit_code(&d);
    let name = unique("long");
    d.start_sleeper(&name, &[]);
    assert_eq!(d.exec_ok(&name, "cat /proc/1/comm"), "sleep\n");
    d.ok(&["rm", "--force", &name]);
    d.assert_nothing_left();
}

/// A pod of two containers: they share the pod's network, IPC and UTS
/// namespaces (the infra container's), none of which is the host's, and
/// the pod's host name.
pub fn podman_pod_shares_net_ipc_uts(p: &Podman) {
    let pod = unique("pod");
    p.ok(&["pod", "create", "--name", &pod, "--network", "none"]);
    let a = unique("a");
    p.start_sleeper(&a, &["--pod", &pod]);
    let in_a = p.exec_ok(&a, NAMESPACES_SCRIPT);
    let in_b = p.run_ok(&["--pod", &pod], &["sh", "-c", NAMESPACES_SCRIPT]);
    assert_eq!(in_a, in_b, "the pod's two containers");

    let lines: Vec<&str> = in_a.lines().collect();
    assert_eq!(lines.len(), 4, "{in_a}");
    for (ns, link) in ["net", "ipc", "uts"].iter().zip(&lines) {
        assert_ne!(
            *link,
            host_ns(ns),
            "the pod runs in the host's {ns} namespace"
        );
    }
    assert_eq!(lines[3], pod, "the pod's host name");
    assert_ne!(lines[3], host_name());

    // The infra container's pid, as podman holds it, is in those
    // namespaces (the members joined them through it).
    let infra = p.ok(&["pod", "inspect", "--format", "{{.InfraContainerID}}", &pod]);
    let infra_pid = p.inspect(infra.trim(), "{{.State.Pid}}");
    for (ns, link) in ["net", "ipc", "uts"].iter().zip(&lines) {
        assert_eq!(ns_of(&infra_pid, ns), *link, "the infra's {ns} namespace");
    }

    p.ok(&["pod", "rm", "--force", "--time", "0", &pod]);
    p.assert_nothing_left();
}
