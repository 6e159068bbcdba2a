//! The scenario's steps that docker and podman share, each asserting exact
//! values, each ending with nothing of its containers left.

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::host::{host_ns, ns_of, unique};

/// `run --rm IMAGE sh -c 'echo hi; exit 3'`: the output, then the status.
pub fn run_output_and_exit_code<E: Engine>(e: &E) {
    let ran = e.run(&["--rm"], &["sh", "-c", "echo hi; exit 3"]);
    assert_eq!(
        (ran.stdout.as_str(), ran.code()),
        ("hi\n", Some(3)),
        "stderr: {}\n{}",
        ran.stderr,
        e.diagnostics()
    );
    e.assert_nothing_left();
}

/// The script `-it` runs: it shows its terminal, reads a line typed on it,
/// and exits with `status`.
fn interactive(status: u8) -> String {
    format!("tty; read line; echo \"got:$line\"; exit {status}")
}

/// What the terminal shows: `tty`'s answer, the line typed (echoed by the
/// container's terminal), the script's answer.
const INTERACTIVE_SCREEN: &str = "/dev/pts/0\nhello\ngot:hello\n";

/// `run --rm -it`, on a pty the test drives.
pub fn run_interactive_on_a_pty<E: Engine>(e: &E) {
    let args = e.run_args(&["--rm", "-it"], &["sh", "-c", &interactive(5)]);
    let ran = e.on_pty(&args, "/dev/pts/", "hello\n");
    assert_eq!(
        (ran.stdout.as_str(), ran.code()),
        (INTERACTIVE_SCREEN, Some(5)),
        "{}",
        e.diagnostics()
    );
    e.assert_nothing_left();
}

/// `exec -it` into a detached container, on a pty the test drives.
pub fn exec_interactive_on_a_pty<E: Engine>(e: &E) {
    let name = unique("exec-it");
    e.start_sleeper(&name, &[]);
    let args: Vec<String> = ["exec", "-it", &name, "sh", "-c", &interactive(4)]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ran = e.on_pty(&args, "/dev/pts/", "hello\n");
    assert_eq!(
        (ran.stdout.as_str(), ran.code()),
        (INTERACTIVE_SCREEN, Some(4)),
        "{}",
        e.diagnostics()
    );
    e.ok(&["rm", "--force", &name]);
    e.assert_nothing_left();
}

/// `-d`, logs, top, the pid the client holds, exec and its status, stats,
/// pause and unpause, stop (SIGTERM ignored, SIGKILL after the timeout),
/// rm.
pub fn detached_lifecycle<E: Engine>(e: &E) {
    let name = unique("life");
    let id = e.start_sleeper(&name, &[]);
    assert_eq!(e.ok(&["logs", &name]), "ready\n");
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "running");
    let listed = e.ok(&[
        "ps",
        "--quiet",
        "--no-trunc",
        "--filter",
        &format!("name=^{name}$"),
    ]);
    assert_eq!(listed.trim(), id, "ps lists the running container");

    let top = e.ok(&["top", &name]);
    let processes: Vec<&str> = top.lines().skip(1).collect();
    assert_eq!(processes.len(), 1, "one process (after exec): {top}");
    assert!(processes[0].trim_end().ends_with("sleep 100000"), "{top}");

    // The pid the client was given is the container's init, in the
    // container's namespaces (runc's contract, on which `top`, pods and
    // `--pid container:` rely).
    let pid = e.inspect(&name, "{{.State.Pid}}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the pid's cmdline");
    assert_eq!(
        String::from_utf8_lossy(&cmdline),
        "sleep\x00100000\x00",
        "pid {pid}"
    );
    for ns in ["pid", "ipc", "uts", "mnt"] {
        assert_ne!(
            ns_of(&pid, ns),
            host_ns(ns),
            "pid {pid} is in the host's {ns} namespace"
        );
    }

    let exec = e.cli(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo exec-$(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(
        (exec.stdout.as_str(), exec.code()),
        ("exec-sleep\n", Some(4)),
        "stderr: {}",
        exec.stderr
    );

    let stats = e.ok(&["stats", "--no-stream", "--format", "{{.PIDs}}", &name]);
    assert_eq!(stats.trim(), "1", "the pids of a lone sleep");

    e.ok(&["pause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "paused");
    e.ok(&["unpause", &name]);
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "running");
    let exec = e.exec_ok(&name, "echo resumed");
    assert_eq!(exec, "resumed\n");

    let stopping = Instant::now();
    e.ok(&["stop", "-t", "1", &name]);
    assert!(
        stopping.elapsed() >= Duration::from_secs(1),
        "stop returned before its timeout: SIGTERM must have been ignored"
    );
    assert_eq!(e.inspect(&name, "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect(&name, "{{.State.ExitCode}}"), "137", "SIGKILL");

    e.ok(&["rm", &name]);
    let gone = e.cli(&["inspect", &name]);
    assert_ne!(gone.code(), Some(0), "inspect after rm: {}", gone.stdout);
    e.assert_nothing_left();
}

/// `--memory 64m` is the container's cgroup limit.
pub fn memory_limit_visible_inside<E: Engine>(e: &E) {
    let limit = e.run_ok(
        &["--memory", "64m"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(limit, "67108864\n");
    e.assert_nothing_left();
}

/// `--read-only`: the root cannot be written; /tmp only where the client
/// mounts a tmpfs there (podman).
pub fn read_only_root<E: Engine>(e: &E) {
    let out = e.run_ok(
        &["--read-only"],
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1 && echo tmp-writable; true",
        ],
    );
    let tmp = if E::READ_ONLY_KEEPS_TMP {
        "tmp-writable\n"
    } else {
        "touch: /tmp/y: Read-only file system\n"
    };
    assert_eq!(
        out,
        format!("touch: /x: Read-only file system\nrc=1\n{tmp}")
    );
    e.assert_nothing_left();
}

/// `--tmpfs /t`: a tmpfs, writable, with the image's /t copied in where the
/// client asks for `tmpcopyup` (podman).
pub fn tmpfs<E: Engine>(e: &E) {
    let out = e.run_ok(
        &["--tmpfs", "/t"],
        &[
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts | cut -d' ' -f3; ls /t; echo new > /t/new; cat /t/new",
        ],
    );
    let seed = if E::TMPFS_COPIES_UP { "seed\n" } else { "" };
    assert_eq!(out, format!("tmpfs\n{seed}new\n"));
    e.assert_nothing_left();
}

/// `--cap-drop ALL`: no effective capability.
pub fn cap_drop_all<E: Engine>(e: &E) {
    let caps = e.run_ok(
        &["--cap-drop", "ALL"],
        &["grep", "CapEff", "/proc/self/status"],
    );
    assert_eq!(caps, "CapEff:\t0000000000000000\n");
    e.assert_nothing_left();
}

/// `--user 1000`.
pub fn user<E: Engine>(e: &E) {
    let ids = e.run_ok(&["--user", "1000"], &["sh", "-c", "id -u; id -g"]);
    assert_eq!(ids, "1000\n1000\n");
    e.assert_nothing_left();
}

/// `-v HOST:/data`: both sides see each other's files.
pub fn bind_mount<E: Engine>(e: &E) {
    let host = e.dir().join("bind");
    std::fs::create_dir_all(&host).expect("bind dir");
    std::fs::write(host.join("from-host"), "from the host\n").expect("host file");
    let volume = format!("{}:/data", host.display());
    let out = e.run_ok(
        &["-v", &volume],
        &[
            "sh",
            "-c",
            "cat /data/from-host; echo written inside > /data/from-inside",
        ],
    );
    assert_eq!(out, "from the host\n");
    let inside =
        std::fs::read_to_string(host.join("from-inside")).expect("the file written inside");
    assert_eq!(inside, "written inside\n");
    e.assert_nothing_left();
}

/// `--sysctl`, of the network and IPC namespaces, read back inside.
pub fn sysctl<E: Engine>(e: &E) {
    let out = e.run_ok(
        &[
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=1024",
            "--sysctl",
            "kernel.msgmax=65536",
        ],
        &[
            "cat",
            "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            "/proc/sys/kernel/msgmax",
        ],
    );
    assert_eq!(out, "1024\n65536\n");
    e.assert_nothing_left();
}

/// `--init`: the client's init is pid 1, the program its child.
pub fn init<E: Engine>(e: &E) {
    let out = e.run_ok(
        &["--init"],
        &[
            "sh",
            "-c",
            "cat /proc/1/comm; cat /proc/$$/status | grep PPid",
        ],
    );
    assert_eq!(out, format!("{}\nPPid:\t1\n", E::INIT_COMM));
    e.assert_nothing_left();
}
