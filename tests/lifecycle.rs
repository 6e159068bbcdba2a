//! The runc-compatible lifecycle, black box: `create`, `start`, `exec`,
//! `ps`, `state`, `kill` and `delete` from the command line, with hooks,
//! terminals, sandboxes of several containers and bad input.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI. This test
//! process is a child subreaper, as containerd's shim is: the processes
//! that `--pid-file` names are reparented to it and reaped here.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::bundle::Bundle;
use common::runtime::{unique, Runtime};
use common::PATIENCE;
use common::SANDVISOR;
use serde_json::{json, Value};

/// A runtime for one test; this test process is a subreaper, as
/// containerd's shim is.
fn runtime() -> Runtime {
    become_subreaper();
    Runtime::new()
}

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments.
        let set = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(set, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// Waits for child `pid` (a container's process, reparented to this
/// subreaper); returns its raw wait status.
fn reap(pid: i32, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a live out-pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(
            got >= 0,
            "waitpid {pid}: {}",
            std::io::Error::last_os_error()
        );
        if got == pid {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `pids.current` of the v1 pids cgroup process `pid` is in.
fn pids_current_of(pid: i32) -> String {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let pids_cgroup = cgroups
        .lines()
        .find_map(|l| {
            l.strip_prefix(|c: char| c.is_ascii_digit())?
                .strip_prefix(":pids:")
        })
        .expect("a pids cgroup");
    std::fs::read_to_string(format!("/sys/fs/cgroup/pids{pids_cgroup}/pids.current"))
        .expect("pids.current")
        .trim()
        .to_owned()
}

fn assert_killed(status: i32) {
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm end") + 2..];
    after
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("ppid")
}

/// Waits until `done` holds; fails only after a minute, well beyond any
/// delay a loaded machine's scheduler makes.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A bundle whose process writes to the given host directory, bound at
/// /out in the container.
fn bundle_writing_to(out: &Path, args: &[&str]) -> Bundle {
    let mut bundle = Bundle::new("lifecycle", args);
    let source = out.to_str().expect("utf-8").to_owned();
    bundle.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/out", "type": "bind", "source": source,
                         "options": ["rbind", "rw"]}),
        );
    });
    bundle
}

// ---------------------------------------------------------------------------

#[test]
fn create_holds_the_init_until_start_and_the_pid_file_names_it() {
    let rt = runtime();
    let out = tempfile::tempdir().expect("temp dir");
    let bundle = bundle_writing_to(out.path(), &["sh", "-c", "echo started > /out/log; exit 7"]);
    let id = unique("create");
    let pid_file = rt.pid_file("create.pid");
    rt.ok(&[
        "create",
        "--bundle",
        &bundle.path_string(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ]);

    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], bundle.path_string().as_str());
    let init = state["pid"].as_i64().expect("pid") as i32;
    assert!(init > 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !out.path().join("log").exists(),
        "the program ran before start"
    );
    // runc's contract: the pid file names the init, which is this
    // subreaper's child now that create has exited, and in the container's
    // namespaces, not the host's.
    assert_eq!(read_pid(&pid_file), init);
    assert_eq!(parent_of(init), std::process::id() as i32);
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let link = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns");
        assert_ne!(link(&init.to_string()), link("self"), "{ns}");
    }
    let list = rt.ok(&["list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>()
                == [id.as_str(), &init.to_string(), "created"]),
        "{list}"
    );

    // The init is the only process in the container's cgroups: no helper of
    // sandvisor's is counted against its limits.
    let pids: Vec<i32> =
        serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).expect("ps json");
    assert_eq!(pids, vec![init]);
    assert_eq!(pids_current_of(init), "1");

    rt.ok(&["start", &id]);
    let status = reap(init, Duration::from_secs(10));
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), 7);
    assert_eq!(
        std::fs::read_to_string(out.path().join("log")).expect("log"),
        "started\n"
    );
    let state = rt.state(&id);
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["pid"], 0);
    assert_eq!(state["exitCode"], 7);
    assert_eq!(state["exitReason"], "exited");

    let refused = rt.fails(&["start", &id]);
    assert!(
        refused.contains("cannot start a container that has stopped"),
        "{refused}"
    );
    rt.ok(&["delete", &id]);
    let gone = rt.fails(&["state", &id]);
    assert!(gone.contains("does not exist"), "{gone}");
    assert!(rt.ids().is_empty());
}

#[test]
fn a_killed_created_container_stops_and_its_init_is_reaped_as_killed() {
    let rt = runtime();
    let bundle = Bundle::new("killed", &["sleep", "100"]);
    let id = unique("killed");
    let pid_file = rt.pid_file("killed.pid");
    rt.ok(&[
        "create",
        "-b",
        &bundle.path_string(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ]);
    let init = read_pid(&pid_file);
    rt.ok(&["kill", &id, "KILL"]);
    let status = reap(init, Duration::from_secs(10));
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    eventually("stopped", || rt.state(&id)["status"] == "stopped");
    let state = rt.state(&id);
    assert_eq!(state["exitCode"], 137, "{state}");
    assert_eq!(state["exitReason"], "signaled", "{state}");
    let refused = rt.fails(&["start", &id]);
    assert!(refused.contains("has stopped"), "{refused}");
    rt.ok(&["delete", &id]);
}

#[test]
fn start_twice_and_delete_of_a_running_container_are_refused_and_a_created_one_deletes() {
    let rt = runtime();
    let bundle = Bundle::new("twice", &["sleep", "100"]);
    let id = unique("twice");
    rt.ok(&["create", "-b", &bundle.path_string(), &id]);
    let init = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let refused = rt.fails(&["start", &id]);
    assert!(
        refused.contains("cannot start an already running container"),
        "{refused}"
    );
    let refused = rt.fails(&["delete", &id]);
    assert!(
        refused.contains(&format!(
            "cannot delete container {id} that is not stopped: running"
        )),
        "{refused}"
    );
    rt.ok(&["delete", "--force", &id]);
    // delete waited for the init to be killed; this subreaper reaps it.
    assert_killed(reap(init, Duration::from_secs(10)));

    // A created container is deleted without --force, its init with it.
    let id = unique("created");
    rt.ok(&["create", "-b", &bundle.path_string(), &id]);
    let init = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    rt.ok(&["delete", &id]);
    assert!(rt.ids().is_empty());
    assert_killed(reap(init, Duration::from_secs(10)));
}

#[test]
fn hooks_run_at_the_spec_s_points_with_the_state_on_stdin() {
    let rt = runtime();
    let out = tempfile::tempdir().expect("temp dir");
    let host_dir = out.path().to_str().expect("utf-8").to_owned();
    // Host hooks write under the host path; container hooks (after
    // pivot_root) under /out, the same directory bound in.
    let hook = |dir: &str, name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}")]});
    let mut bundle = bundle_writing_to(out.path(), &["sh", "-c", "echo ran > /out/program"]);
    bundle.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [hook(&host_dir, "createRuntime")],
            "createContainer": [hook(&host_dir, "createContainer")],
            "startContainer": [hook("/out", "startContainer")],
            "poststart": [hook(&host_dir, "poststart")],
            "poststop": [hook(&host_dir, "poststop")],
        });
    });
    let id = unique("hooks");
    let seen = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(out.path().join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    rt.ok(&["create", "-b", &bundle.path_string(), &id]);
    let init = rt.state(&id)["pid"].clone();
    for name in ["createRuntime", "createContainer"] {
        let state = seen(name).unwrap_or_else(|| panic!("{name} did not run at create"));
        assert_eq!(state["id"], id.as_str(), "{name}");
        assert_eq!(state["status"], "creating", "{name}");
        assert_eq!(state["pid"], init, "{name}");
        assert_eq!(state["bundle"], bundle.path_string().as_str(), "{name}");
    }
    for name in ["startContainer", "poststart", "poststop", "program"] {
        assert!(
            seen(name).is_none() && !out.path().join(name).exists(),
            "{name} ran at create"
        );
    }

    rt.ok(&["start", &id]);
    let state = seen("startContainer").expect("startContainer did not run at start");
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], init);
    // Poststart hooks have run when start returns.
    let state = seen("poststart").expect("poststart did not run before start returned");
    assert_eq!(state["status"], "running");
    assert_eq!(state["pid"], init);
    eventually("the program", || out.path().join("program").exists());
    assert!(seen("poststop").is_none());

    rt.ok(&["delete", &id]);
    let state = seen("poststop").expect("poststop did not run at delete");
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["id"], id.as_str());
}

#[test]
fn exec_runs_from_flags_or_a_process_file_and_ps_lists_it() {
    let rt = runtime();
    let bundle = Bundle::new("exec", &["sleep", "100"]);
    let id = unique("exec");
    rt.ok(&["create", "-b", &bundle.path_string(), &id]);
    let refused = rt.fails(&["exec", &id, "true"]);
    assert!(refused.contains("has not started"), "{refused}");
    rt.ok(&["start", &id]);
    let init = rt.state(&id)["pid"].as_i64().expect("pid");

    let outcome = rt.cli(&[
        "exec",
        "-e",
        "GREETING=hi",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        &id,
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u) $(id -g); exit 3",
    ]);
    assert_eq!(outcome.code(), Some(3), "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "hi /tmp 1000 1001\n");

    let process = rt.pid_file("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "echo $WHO in $(pwd)"], "env": ["WHO=file"],
               "cwd": "/bin", "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .expect("process.json");
    let from_file = rt.ok(&["exec", "--process", process.to_str().expect("utf-8"), &id]);
    assert_eq!(from_file, "file in /bin\n");

    let missing = rt.cli(&["exec", &id, "/no/such/program"]);
    assert_eq!(missing.code(), Some(127), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("/no/such/program"),
        "{}",
        missing.stderr
    );

    std::fs::write(&process, "{\"args\": [").expect("bad json");
    let bad = rt.fails(&["exec", "-p", process.to_str().expect("utf-8"), &id]);
    assert!(bad.contains("process.json"), "{bad}");

    // Detached: the pid file names the process, this subreaper's child.
    let pid_file = rt.pid_file("exec.pid");
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
        "sh",
        "-c",
        "sleep 0.3; exit 9",
    ]);
    let exec_pid = read_pid(&pid_file);
    assert_eq!(parent_of(exec_pid), std::process::id() as i32);
    let pid_ns = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("ns");
    assert_eq!(pid_ns(exec_pid as i64), pid_ns(init));
    // The init, the exec'd shell and its sleep.
    let pids: Vec<i64> =
        serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).expect("json");
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&init));
    let table = rt.ok(&["ps", &id]);
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    assert!(header.split_whitespace().any(|c| c == "PID"), "{header}");
    let listed: Vec<&str> = lines.collect();
    assert_eq!(listed.len(), 3, "{table}");
    assert!(listed.iter().any(|l| l.ends_with("sleep 100")), "{table}");
    let status = reap(exec_pid, Duration::from_secs(10));
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), 9);
    assert_eq!(
        serde_json::from_str::<Vec<i64>>(&rt.ok(&["ps", "-f", "json", &id])).expect("json"),
        vec![init]
    );
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn containers_annotated_with_a_sandbox_join_its_supervisor() {
    let rt = runtime();
    let pod = unique("pod");
    let pause = Bundle::new("pod", &["sleep", "100"]);
    rt.ok(&["run", "-d", "-b", &pause.path_string(), &pod]);
    let pod_init = rt.state(&pod)["pid"].as_i64().expect("pid") as i32;

    // As CRI marks a pod's containers.
    let mut member = Bundle::new("member", &["sh", "-c", "sleep 100"]);
    let pod_id = pod.clone();
    member.edit(|c| {
        c["annotations"] = json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": pod_id,
        });
    });
    let app = unique("app");
    rt.ok(&["create", "-b", &member.path_string(), &app]);
    rt.ok(&["start", &app]);
    let app_state = rt.state(&app);
    assert_eq!(app_state["status"], "running");
    assert_eq!(
        app_state["annotations"]["io.kubernetes.cri.sandbox-id"],
        pod.as_str()
    );
    let app_init = app_state["pid"].as_i64().expect("pid") as i32;
    let ns = |pid: i32, kind: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).expect("ns link")
    };
    // One sandbox: the network, IPC and UTS namespaces are shared; pid and
    // mount namespaces are the member's own.
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(ns(app_init, kind), ns(pod_init, kind), "{kind}");
    }
    for kind in ["pid", "mnt"] {
        assert_ne!(ns(app_init, kind), ns(pod_init, kind), "{kind}");
    }
    // A container without the annotations is a sandbox of its own.
    let other = unique("other");
    rt.ok(&["run", "-d", "-b", &pause.path_string(), &other]);
    let other_init = rt.state(&other)["pid"].as_i64().expect("pid") as i32;
    assert_ne!(ns(other_init, "net"), ns(pod_init, "net"));
    rt.ok(&["delete", "-f", &other]);

    // Deleting the member leaves the pod running.
    rt.ok(&["delete", "-f", &app]);
    assert_eq!(rt.state(&pod)["status"], "running");
    assert_killed(reap(app_init, Duration::from_secs(10)));
    // Deleting the pod's root container destroys the sandbox and what is in it.
    let app2 = unique("app");
    rt.ok(&["create", "-b", &member.path_string(), &app2]);
    rt.ok(&["start", &app2]);
    let app2_init = rt.state(&app2)["pid"].as_i64().expect("pid") as i32;
    rt.ok(&["delete", "-f", &pod]);
    assert_killed(reap(app2_init, Duration::from_secs(10)));
    assert_eq!(rt.state(&app2)["status"], "stopped");
    rt.ok(&["delete", &app2]);

    // A sandbox that does not exist.
    let mut orphan = Bundle::new("orphan", &["true"]);
    orphan.edit(|c| c["annotations"] = json!({"io.sandvisor.sandbox-id": "no-such-pod"}));
    let refused = rt.fails(&["create", "-b", &orphan.path_string(), "orphan"]);
    assert!(
        refused.contains("sandbox no-such-pod does not exist"),
        "{refused}"
    );
    assert!(rt.ids().is_empty());
}

#[test]
fn a_terminal_container_hands_its_pty_to_the_console_socket_at_create() {
    let rt = runtime();
    let mut bundle = Bundle::new("tty", &["sh", "-c", "tty; echo ready"]);
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique("tty");
    let refused = rt.fails(&["create", "-b", &bundle.path_string(), &id]);
    assert!(refused.contains("console socket"), "{refused}");

    let socket = rt.pid_file("console.sock");
    let listener = UnixListener::bind(&socket).expect("bind console socket");
    let receiver = std::thread::spawn(move || {
        sandvisor::actors::sys::tty::receive_from_console_socket(&listener)
            .expect("receive the pty master")
    });
    rt.ok(&[
        "create",
        "-b",
        &bundle.path_string(),
        "--console-socket",
        socket.to_str().expect("utf-8"),
        &id,
    ]);
    // The master came during create.
    let master = receiver.join().expect("receiver thread");
    rt.ok(&["start", &id]);
    let mut text = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !String::from_utf8_lossy(&text).contains("ready") && Instant::now() < deadline {
        let mut buf = [0u8; 256];
        // SAFETY: read into a live buffer from a live descriptor.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        text.extend_from_slice(&buf[..n as usize]);
    }
    assert_eq!(String::from_utf8_lossy(&text), "/dev/pts/0\r\nready\r\n");
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let rt = runtime();
    let bundle = Bundle::new("bad", &["sleep", "100"]);
    let b = bundle.path_string();
    let long = "x".repeat(1025);
    for id in ["../x", "a/b", "", ".", "..", long.as_str()] {
        let refused = rt.fails(&["create", "-b", &b, id]);
        assert!(refused.contains("invalid"), "{id:?}: {refused}");
    }
    let refused = rt.fails(&["create", "-b", "/no/such/bundle", "nobundle"]);
    assert!(refused.contains("/no/such/bundle"), "{refused}");
    for (args, words) in [
        (vec!["start", "nope"], "container \"nope\" does not exist"),
        (vec!["kill", "nope"], "does not exist"),
        (vec!["delete", "nope"], "does not exist"),
        (vec!["exec", "nope", "true"], "does not exist"),
        (vec!["ps", "nope"], "does not exist"),
        (
            vec!["events", "--stats", "nope"],
            "container \"nope\" does not exist",
        ),
        (vec!["pause", "nope"], "container \"nope\" does not exist"),
        (vec!["update", "--memory", "1g", "nope"], "does not exist"),
        (vec!["usage", "nope"], "container \"nope\" does not exist"),
        (
            vec!["create", "--no-pivot", "-b", &b, "np"],
            "unsupported: --no-pivot",
        ),
        (
            vec!["create", "--preserve-fds", "40", "-b", &b, "pf"],
            "--preserve-fds 40: descriptor 3 is not open",
        ),
        (
            vec!["--systemd-cgroup", "create", "-b", &b, "sd"],
            "unsupported: --systemd-cgroup",
        ),
    ] {
        let refused = rt.fails(&args);
        assert!(refused.contains(words), "{args:?}: {refused}");
    }
    assert!(rt.ids().is_empty());

    let id = unique("dup");
    rt.ok(&["create", "-b", &b, &id]);
    let refused = rt.fails(&["create", "-b", &b, &id]);
    assert!(refused.contains("already exists"), "{refused}");
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["delete", &id]);

    // With --log-format json, the error is the log's last line, as
    // containerd reads it.
    let log = rt.pid_file("log.json");
    let log_arg = log.to_str().expect("utf-8");
    rt.fails(&["--log", log_arg, "--log-format", "json", "start", "nope"]);
    let text = std::fs::read_to_string(&log).expect("log");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container \"nope\" does not exist");
    assert!(last["time"].as_str().expect("time").ends_with('Z'));
    assert!(rt.ids().is_empty());
}

/// A value the user chose that the kernel refuses is the user's error,
/// named, not an `internal` one.
#[test]
fn user_errors_the_kernel_refuses_are_not_internal() {
    let rt = runtime();
    let mut bundle = Bundle::new("usererr", &["sleep", "100"]);
    bundle.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}))
    });
    let refused = rt.fails(&["run", "-b", &bundle.path_string(), &unique("fstype")]);
    assert!(
        refused.contains("invalid_argument: mount \"/x\": unknown filesystem type \"nosuchfs\""),
        "{refused}"
    );

    let mut bundle = Bundle::new("usererr", &["sleep", "100"]);
    let long = format!("/{}", vec!["a".repeat(250); 20].join("/"));
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(long));
    let refused = rt.fails(&["run", "-b", &bundle.path_string(), &unique("cgpath")]);
    assert!(
        refused.contains("invalid_argument: create cgroup"),
        "{refused}"
    );
    assert!(refused.contains("too long"), "{refused}");

    // Below what the container uses now: v1 refuses with EBUSY.
    let bundle = Bundle::new("usererr", &["sleep", "100"]);
    let id = unique("below-usage");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    // (v2 takes such a limit and lets the OOM killer act.)
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        let refused = rt.fails(&["update", "--memory", "4096", &id]);
        assert!(
            refused.contains("failed_precondition: apply resources"),
            "{refused}"
        );
        assert!(refused.contains("\"4096\""), "{refused}");
        assert!(refused.contains("memory.limit_in_bytes"), "{refused}");
    }
    rt.ok(&["delete", "--force", &id]);
    assert!(rt.ids().is_empty());
}

#[test]
fn a_paused_container_does_not_run_until_resumed() {
    let rt = runtime();
    let out = tempfile::tempdir().expect("temp dir");
    let bundle = bundle_writing_to(
        out.path(),
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; sleep 0.02; done",
        ],
    );
    let count = || -> u64 {
        std::fs::read_to_string(out.path().join("count"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let id = unique("pause");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    eventually("the counter", || count() > 2);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen_at, "a paused container ran");
    let refused = rt.fails(&["exec", &id, "true"]);
    assert!(
        refused.contains("cannot exec in a paused container"),
        "{refused}"
    );
    let refused = rt.fails(&["pause", &id]);
    assert!(refused.contains("is not running"), "{refused}");
    let refused = rt.fails(&["delete", &id]);
    assert!(refused.contains("that is not stopped: paused"), "{refused}");

    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    eventually("the counter to move on", || count() > frozen_at + 2);
    let refused = rt.fails(&["resume", &id]);
    assert!(refused.contains("is not paused"), "{refused}");

    // A paused container is killed for good by delete --force.
    rt.ok(&["pause", &id]);
    let init = rt.state(&id)["pid"].as_i64().expect("pid");
    rt.ok(&["delete", "--force", &id]);
    assert!(rt.ids().is_empty());
    // This subreaper inherited it, as it would from runc.
    assert_killed(reap(init as i32, Duration::from_secs(10)));

    // A stopped container can be neither paused nor resumed.
    let stopped = unique("stopped");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &stopped]);
    rt.ok(&["kill", &stopped, "KILL"]);
    eventually("stopped", || rt.state(&stopped)["status"] == "stopped");
    for command in ["pause", "resume"] {
        let refused = rt.fails(&[command, &stopped]);
        assert!(refused.contains("is not running"), "{command}: {refused}");
    }
    rt.ok(&["delete", &stopped]);
}

#[test]
fn lifecycle_pause_freezes_every_container_of_the_sandbox_and_resume_thaws_them() {
    let rt = runtime();
    let out = tempfile::tempdir().expect("temp dir");
    let counter = |name: &str| {
        format!("i=0; while true; do i=$((i+1)); echo $i > /out/{name}.new; mv /out/{name}.new /out/{name}; sleep 0.02; done")
    };
    let count = |name: &str| -> u64 {
        std::fs::read_to_string(out.path().join(name))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let pod = unique("pod");
    let root = bundle_writing_to(out.path(), &["sh", "-c", &counter("root")]);
    rt.ok(&["run", "-d", "-b", &root.path_string(), &pod]);
    let mut member = bundle_writing_to(out.path(), &["sh", "-c", &counter("member")]);
    let pod_id = pod.clone();
    member.edit(|c| c["annotations"] = json!({"io.sandvisor.sandbox-id": pod_id}));
    let app = unique("app");
    rt.ok(&["run", "-d", "-b", &member.path_string(), &app]);
    eventually("both counters", || count("root") > 2 && count("member") > 2);

    let socket = rt.root.path().join(&pod).join("ctl.sock");
    let socket = socket.to_str().expect("utf-8");
    let call = |method: &str| -> Value {
        let out = Command::new(SANDVISOR)
            .args(["call", "--socket", socket, method])
            .output()
            .expect("sandvisor call");
        serde_json::from_slice(&out.stdout).expect("reply")
    };
    assert_eq!(call("Lifecycle.Pause"), json!({"ok": {}}));
    for id in [&pod, &app] {
        assert_eq!(rt.state(id)["status"], "paused", "{id}");
    }
    let frozen_at = (count("root"), count("member"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (count("root"), count("member")),
        frozen_at,
        "a paused container ran"
    );
    // Pausing a paused sandbox is refused, and changes nothing.
    let again = call("Lifecycle.Pause");
    assert_eq!(again["err"]["code"], "failed_precondition", "{again}");
    assert_eq!(
        again["err"]["message"],
        "the sandbox has no running container"
    );
    assert_eq!(rt.state(&app)["status"], "paused");

    assert_eq!(call("Lifecycle.Resume"), json!({"ok": {}}));
    for id in [&pod, &app] {
        assert_eq!(rt.state(id)["status"], "running", "{id}");
    }
    eventually("both counters to move on", || {
        count("root") > frozen_at.0 + 2 && count("member") > frozen_at.1 + 2
    });
    let again = call("Lifecycle.Resume");
    assert_eq!(again["err"]["code"], "failed_precondition", "{again}");
    assert_eq!(
        again["err"]["message"],
        "the sandbox has no paused container"
    );
    rt.ok(&["delete", "-f", &app]);
    rt.ok(&["delete", "-f", &pod]);
}

/// The container's cgroup directory for `controller` (v1, else v2), from
/// where its init is.
fn cgroup_dir_of(pid: i64, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.split(',').any(|c| c == controller) {
            return PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"));
        }
    }
    let unified = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a v2 line");
    let mount = if Path::new("/sys/fs/cgroup/unified").is_dir() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    PathBuf::from(format!("{mount}{unified}"))
}

#[test]
fn limits_apply_at_create_change_with_update_and_show_in_events() {
    let rt = runtime();
    let mut bundle = Bundle::new("limits", &["sleep", "100"]);
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67_108_864});
        c["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let id = unique("limits");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    let init = rt.state(&id)["pid"].as_i64().expect("pid");
    let pids_dir = cgroup_dir_of(init, "pids");
    let read = |dir: &Path, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
            .trim()
            .to_owned()
    };
    assert_eq!(read(&pids_dir, "pids.max"), "20");

    let event: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).expect("json");
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["data"]["memory"]["usage"]["limit"], 67_108_864);
    assert_eq!(event["data"]["pids"]["limit"], 20);
    // The init alone: no helper of sandvisor's counts against its limits.
    assert_eq!(event["data"]["pids"]["current"], 1);
    assert!(
        event["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .expect("usage")
            > 0
    );
    assert!(
        event["data"]["cpu"]["usage"]["total"]
            .as_u64()
            .expect("cpu")
            > 0
    );

    rt.ok(&["update", "--memory", "128m", "--pids-limit", "50", &id]);
    assert_eq!(read(&pids_dir, "pids.max"), "50");
    let event: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).expect("json");
    assert_eq!(event["data"]["memory"]["usage"]["limit"], 134_217_728);
    let resources = rt.pid_file("resources.json");
    std::fs::write(&resources, r#"{"pids": {"limit": 30}}"#).expect("resources");
    rt.ok(&[
        "update",
        "--resources",
        resources.to_str().expect("utf-8"),
        &id,
    ]);
    assert_eq!(read(&pids_dir, "pids.max"), "30");

    // A value the kernel refuses: nothing of the update stays.
    let refused = rt.fails(&["update", "--pids-limit", "40", "--cpuset-cpus", "4096", &id]);
    assert!(
        refused.contains("cpuset.cpus") && refused.contains("4096"),
        "{refused}"
    );
    assert_eq!(read(&pids_dir, "pids.max"), "30");
    let refused = rt.fails(&["update", "--memory", "12x", &id]);
    assert!(refused.contains("invalid --memory \"12x\""), "{refused}");

    // Streaming ends when the container stops (stopped once it has
    // streamed twice, however late the stream starts).
    let streamed = tempfile::NamedTempFile::new().expect("temp file");
    let mut stream = std::process::Command::new(SANDVISOR)
        .args(["--root", rt.root(), "events", "--interval", "50ms", &id])
        .stdout(streamed.reopen().expect("reopen"))
        .spawn()
        .expect("events");
    let lines = || {
        std::fs::read_to_string(streamed.path())
            .unwrap_or_default()
            .lines()
            .count()
    };
    eventually("two streamed events", || lines() >= 2);
    rt.ok(&["kill", &id, "KILL"]);
    assert!(stream.wait().expect("events exits").success());
    assert!(lines() >= 2, "{} events", lines());
    let refused = rt.fails(&["events", "--stats", &id]);
    assert!(refused.contains("is not running"), "{refused}");
    rt.ok(&["delete", &id]);
}

#[test]
fn preserved_descriptors_become_the_process_s_3_and_up() {
    use std::os::unix::process::CommandExt;
    let rt = runtime();
    let bundle = Bundle::new(
        "preserve",
        &[
            "sh",
            "-c",
            "echo via3 >&3; exec 3>&-; head -n1 <&4; sleep 100",
        ],
    );
    let id = unique("preserve");
    let (read3, write3) = common::pipe();
    let input = rt.pid_file("input");
    std::fs::write(&input, "from4\n").expect("input");
    let input = File::open(&input).expect("input");
    let output = rt.pid_file("preserve.out");
    let (w3, r4) = (write3.as_raw_fd(), input.as_raw_fd());
    let mut create = Command::new(SANDVISOR);
    create
        .args(["--root", rt.root(), "create", "--preserve-fds", "2", "-b"])
        .arg(bundle.path())
        .arg(&id)
        .stdout(File::create(&output).expect("output"));
    // SAFETY: dup2 between fork and exec, onto 3 and 4 of the child only.
    unsafe {
        create.pre_exec(move || {
            if libc::dup2(w3, 3) < 0 || libc::dup2(r4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(create.status().expect("create").success());
    drop(write3);
    rt.ok(&["start", &id]);
    // The pipe ends once the container has closed its 3: no one else (the
    // command, the supervisor, its spawners) kept a copy.
    let (done, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut File::from(read3), &mut text);
        let _ = done.send(text);
    });
    let via3 = got
        .recv_timeout(PATIENCE)
        .expect("descriptor 3's pipe never ended");
    assert_eq!(via3, "via3\n");
    eventually("the line from 4", || {
        std::fs::read_to_string(&output).is_ok_and(|t| t == "from4\n")
    });

    // exec passes them too.
    let (read5, write5) = common::pipe();
    let w = write5.as_raw_fd();
    let mut exec = Command::new(SANDVISOR);
    exec.args([
        "--root",
        rt.root(),
        "exec",
        "--preserve-fds",
        "1",
        &id,
        "sh",
        "-c",
        "echo exec3 >&3",
    ]);
    // SAFETY: as above.
    unsafe {
        exec.pre_exec(move || {
            if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(exec.status().expect("exec").success());
    drop(write5);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut File::from(read5), &mut text).expect("read");
    assert_eq!(text, "exec3\n");
    rt.ok(&["delete", "--force", &id]);
}

/// `run -d` of `bundle` as `id`, its supervisor logging at debug level to
/// `log` in JSON (where it says when it notes an OOM kill).
fn run_logging_kills(rt: &Runtime, bundle: &Bundle, id: &str, log: &Path) {
    let log = log.to_str().expect("utf-8");
    let bundle = bundle.path_string();
    rt.ok(&[
        "--debug",
        "--log",
        log,
        "--log-format",
        "json",
        "run",
        "-d",
        "-b",
        &bundle,
        id,
    ]);
}

/// The OOM kills the supervisor logging to `log` has noted for `id`: from
/// then on, the claim window of each runs.
fn kills_noted(log: &Path, id: &str) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["msg"] == "oom kills noted" && e["cid"] == id)
        .filter_map(|e| e["new"].as_u64())
        .sum()
}

#[test]
fn an_oom_kill_is_reported_by_wait_run_and_events() {
    let rt = runtime();
    // dd's 64 MiB buffer does not fit under a 16 MiB limit.
    let hog = "dd if=/dev/zero of=/dev/null bs=64M count=1";
    let mut bundle = Bundle::new("oom", &["sh", "-c", hog]);
    bundle.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 16_777_216}));

    // `run` of a container whose init is OOM-killed: 137, and it says why.
    let outcome = rt.cli(&["run", "-b", &bundle.path_string(), &unique("oom-run")]);
    assert_eq!(outcome.code(), Some(137), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("was killed by the OOM killer"),
        "{}",
        outcome.stderr
    );

    // A detached one: `state` gives the reason once it has stopped.
    let detached = unique("oom-state");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &detached]);
    eventually("the OOM-killed init stopped", || {
        rt.state(&detached)["status"] == "stopped"
    });
    let state = rt.state(&detached);
    assert_eq!(state["exitCode"], 137, "{state}");
    assert_eq!(state["exitReason"], "oom-killed", "{state}");
    rt.ok(&["delete", &detached]);

    // A child OOM-killed in a container that lives on: an `oom` event.
    bundle
        .edit(|c| c["process"]["args"] = json!(["sh", "-c", format!("sleep 1; {hog}; sleep 100")]));
    let id = unique("oom-events");
    let log = rt.pid_file("oom-events.log");
    run_logging_kills(&rt, &bundle, &id, &log);
    let stream = std::process::Command::new(SANDVISOR)
        .args(["--root", rt.root(), "events", "--interval", "100ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("events");
    // With an interval of an hour, the kills are reported as they happen
    // (the kernel's OOM notification), between the stats.
    let hourly_out = tempfile::NamedTempFile::new().expect("temp file");
    let mut hourly = std::process::Command::new(SANDVISOR)
        .args(["--root", rt.root(), "events", "--interval", "1h", &id])
        .stdout(hourly_out.reopen().expect("reopen"))
        .spawn()
        .expect("events");
    let deadline = Instant::now() + PATIENCE;
    let mut kills = 0;
    while kills == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let event: Value =
            serde_json::from_str(&rt.ok(&["events", "--stats", &id])).expect("stats");
        kills = event["data"]["memory"]["oom_kills"]
            .as_u64()
            .expect("oom_kills");
    }
    assert_eq!(kills, 1);
    // An exec'd process OOM-killed: 137 and the reason (WaitPID's flag).
    let exec = rt.cli(&["exec", &id, "sh", "-c", hog]);
    assert_eq!(exec.code(), Some(137), "{}", exec.stderr);
    assert!(
        exec.stderr.contains("was killed by the OOM killer"),
        "{}",
        exec.stderr
    );
    // Both kills are in the hourly stream well before its next stats.
    let hourly_text = || std::fs::read_to_string(hourly_out.path()).unwrap_or_default();
    eventually("both kills in the hourly stream", || {
        hourly_text().matches("\"oom\"").count() == 2
    });
    // Killed from outside once the kills are over (2 s after the
    // supervisor noted it, a kill it did not reap, the child's, can no
    // longer be claimed): not the OOM killer's, though its memory cgroup
    // counted kills. The kernel's count (the streams) may come before the
    // supervisor's note, however late a loaded machine runs it.
    eventually("the supervisor to note both kills", || {
        kills_noted(&log, &id) == 2
    });
    std::thread::sleep(Duration::from_millis(2200));
    rt.ok(&["kill", &id, "KILL"]);
    eventually("the killed init stopped", || {
        rt.state(&id)["status"] == "stopped"
    });
    let state = rt.state(&id);
    assert_eq!(state["exitCode"], 137, "{state}");
    assert_eq!(state["exitReason"], "signaled", "{state}");
    rt.ok(&["delete", &id]);
    let output = stream.wait_with_output().expect("events output");
    let text = String::from_utf8_lossy(&output.stdout);
    let ooms: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "oom")
        .collect();
    // The child's kill and the exec'd one's, each once.
    assert_eq!(
        ooms,
        vec![
            json!({"type": "oom", "id": id}),
            json!({"type": "oom", "id": id})
        ],
        "{text}"
    );
    hourly
        .wait()
        .expect("events exits once the container is gone");
    let text = hourly_text();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["type"].to_string())
        .collect();
    assert_eq!(kinds, ["\"stats\"", "\"oom\"", "\"oom\""], "{text}");

    // An init killed from outside after a child of it was OOM-killed (a
    // process the supervisor does not reap, so no exit claims that kill):
    // signaled, not OOM-killed, though its memory cgroup counted a kill.
    // A kill is claimed within 2 s of being counted.
    bundle.edit(|c| c["process"]["args"] = json!(["sh", "-c", format!("{hog}; sleep 100")]));
    let later = unique("oom-later");
    let log = rt.pid_file("oom-later.log");
    run_logging_kills(&rt, &bundle, &later, &log);
    eventually("the child's OOM kill", || {
        let event: Value =
            serde_json::from_str(&rt.ok(&["events", "--stats", &later])).expect("stats");
        event["data"]["memory"]["oom_kills"] == 1
    });
    eventually("the supervisor to note the kill", || {
        kills_noted(&log, &later) == 1
    });
    std::thread::sleep(Duration::from_millis(2200));
    rt.ok(&["kill", &later, "KILL"]);
    eventually("the killed init stopped", || {
        rt.state(&later)["status"] == "stopped"
    });
    let state = rt.state(&later);
    assert_eq!(state["exitCode"], 137, "{state}");
    assert_eq!(state["exitReason"], "signaled", "{state}");
    rt.ok(&["delete", &later]);
}

#[test]
fn control_files_of_the_sandbox_are_read_and_written_but_never_outside_it() {
    let rt = runtime();
    let bundle = Bundle::new("files", &["sleep", "100"]);
    let id = unique("files");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    let socket = rt.root.path().join(&id).join("ctl.sock");
    let socket = socket.to_str().expect("utf-8");
    let call = |method: &str, files: Value| -> Vec<Value> {
        let out = rt.ok(&[
            "call",
            "--socket",
            socket,
            method,
            &json!({"files": files}).to_string(),
        ]);
        let reply: Value = serde_json::from_str(&out).expect("reply");
        reply["ok"]["results"].as_array().expect("results").clone()
    };
    let pids = |name: &str, path: &str| json!({"controller": "pids", "path": path, "name": name});
    let results = call(
        "Cgroups.WriteControlFiles",
        json!([
            {"controller": "pids", "path": id, "name": "pids.max", "value": "12"},
            {"controller": "pids", "path": id, "name": "pids.max", "value": "twelve"},
        ]),
    );
    assert_eq!(results[0], json!({}));
    assert_eq!(results[1]["error"]["code"], "invalid_argument");
    assert!(results[1]["error"]["message"]
        .as_str()
        .expect("message")
        .contains("\"twelve\""));
    let results = call(
        "Cgroups.ReadControlFiles",
        json!([
            pids("pids.max", &id),
            pids("pids.max", "../.."),
            pids("pids.max", "/"),
            pids("../pids.max", &id),
            pids("pids.max", "no-such-container"),
            {"controller": "no-such-controller", "path": id, "name": "x"},
        ]),
    );
    assert_eq!(results[0], json!({"value": "12\n"}));
    for (i, code) in [
        (1, "permission_denied"),
        (2, "permission_denied"),
        (3, "invalid_argument"),
        (4, "not_found"),
        (5, "not_found"),
    ] {
        assert_eq!(
            results[i]["error"]["code"], code,
            "item {i}: {}",
            results[i]
        );
    }
    rt.ok(&["delete", "--force", &id]);
}

/// The samples of an OpenMetrics text, keyed by name and labels as
/// written.
fn samples(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn metrics_count_calls_and_report_containers_and_the_metric_server_serves_them() {
    let rt = runtime();
    let mut bundle = Bundle::new("metrics", &["sleep", "100"]);
    bundle.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 67_108_864}));
    let id = unique("metrics");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    rt.ok(&["exec", &id, "true"]);
    rt.ok(&["exec", &id, "true"]);
    let socket = rt.root.path().join(&id).join("ctl.sock");
    let socket = socket.to_str().expect("utf-8");
    // `call` prints the reply, an error too (and then exits 1).
    let call = |method: &str, args: Value| -> Value {
        let out = rt.cli(&["call", "--socket", socket, method, &args.to_string()]);
        serde_json::from_str(&out.stdout).expect("reply")
    };
    let refused = call("containerManager.Wait", json!({"cid": "nope"}));
    assert_eq!(refused["err"]["code"], "not_found");

    let registered = call("Metrics.GetRegisteredMetrics", json!({}));
    let names: Vec<&str> = registered["ok"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "sandvisor_rpc_requests",
            "sandvisor_rpc_duration_seconds",
            "sandvisor_exec_duration_seconds",
            "sandvisor_actor_restarts",
            "sandvisor_actor_mailbox_depth",
            "sandvisor_connections",
            "sandvisor_containers",
            "sandvisor_container_processes",
            "sandvisor_container_oom_kills",
            "sandvisor_container_memory_usage_bytes",
            "sandvisor_container_memory_limit_bytes",
            "sandvisor_container_cpu_seconds",
        ]
    );
    assert_eq!(
        registered["ok"]["metrics"][0],
        json!({"name": "sandvisor_rpc_requests", "type": "counter",
               "help": "Calls answered, by method and outcome (ok or the wire error code)",
               "labels": ["sandbox", "method", "code"]})
    );

    let export = call("Metrics.Export", json!({}));
    let text = export["ok"]["text"].as_str().expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let got = samples(text);
    let sb = format!("sandbox=\"{id}\"");
    let c = format!("{sb},container=\"{id}\"");
    for (key, value) in [
        (format!("sandvisor_rpc_requests_total{{{sb},method=\"containerManager.ExecuteAsync\",code=\"ok\"}}"), "2"),
        (format!("sandvisor_rpc_requests_total{{{sb},method=\"containerManager.Wait\",code=\"not_found\"}}"), "1"),
        (format!("sandvisor_rpc_duration_seconds_count{{{sb},method=\"containerManager.ExecuteAsync\"}}"), "2"),
        (format!("sandvisor_exec_duration_seconds_count{{{sb}}}"), "2"),
        (format!("sandvisor_actor_restarts_total{{{sb},actor=\"ContainerManager\"}}"), "0"),
        (format!("sandvisor_containers{{{sb},state=\"running\"}}"), "1"),
        (format!("sandvisor_containers{{{sb},state=\"paused\"}}"), "0"),
        (format!("sandvisor_container_oom_kills_total{{{c}}}"), "0"),
        (format!("sandvisor_container_memory_limit_bytes{{{c}}}"), "67108864"),
    ] {
        assert_eq!(got.get(&key).map(String::as_str), Some(value), "{key} in\n{text}");
    }
    let number = |key: String| -> f64 {
        got.get(&key)
            .unwrap_or_else(|| panic!("{key} in\n{text}"))
            .parse()
            .expect("number")
    };
    assert!(number(format!("sandvisor_container_processes{{{c}}}")) >= 1.0);
    let memory = number(format!("sandvisor_container_memory_usage_bytes{{{c}}}"));
    assert!(memory > 0.0 && memory < 67_108_864.0, "{memory}");
    assert!(number(format!("sandvisor_container_cpu_seconds_total{{{c}}}")) > 0.0);

    // Paused, as the export sees it.
    rt.ok(&["pause", &id]);
    let filtered = call(
        "Metrics.Export",
        json!({"name_regex": "sandvisor_containers"}),
    );
    let text = filtered["ok"]["text"].as_str().expect("text");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("# TYPE"))
            .collect::<Vec<_>>(),
        ["# TYPE sandvisor_containers gauge"]
    );
    assert_eq!(
        samples(text).get(&format!("sandvisor_containers{{{sb},state=\"paused\"}}")),
        Some(&"1".to_owned())
    );
    rt.ok(&["resume", &id]);
    let bad = call("Metrics.Export", json!({"name_regex": "sandvisor_(rpc"}));
    assert_eq!(bad["err"]["code"], "invalid_argument");
    assert!(
        bad["err"]["message"]
            .as_str()
            .expect("message")
            .starts_with("invalid metric name regex \"sandvisor_(rpc\": "),
        "{bad}"
    );

    // Two sandboxes behind one server.
    let other = unique("metrics");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &other]);
    let (mut server, address) = start_metric_server(&rt);
    let get = |path: &str| -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        // The server keeps a connection for a next request unless asked
        // not to; this client reads to the end.
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        response
    };
    let page = get("/metrics");
    let (head, body) = page.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(body.matches("# EOF").count(), 1);
    assert_eq!(body.matches("# TYPE sandvisor_containers gauge").count(), 1);
    let got = samples(body);
    for sandbox in [&id, &other] {
        let key = format!("sandvisor_containers{{sandbox=\"{sandbox}\",state=\"running\"}}");
        assert_eq!(
            got.get(&key).map(String::as_str),
            Some("1"),
            "{key} in\n{body}"
        );
    }
    assert!(get("/other").starts_with("HTTP/1.1 404 Not Found\r\n"));
    let _ = server.kill();
    let _ = server.wait();

    let refused = rt.fails(&[
        "metric-server",
        "--listen",
        "127.0.0.1:0",
        "--sandbox",
        "nope",
    ]);
    assert!(
        refused.contains("container \"nope\" does not exist"),
        "{refused}"
    );
    rt.ok(&["delete", "-f", &other]);
    rt.ok(&["delete", "-f", &id]);
}

/// Starts `metric-server` on a free port of 127.0.0.1; returns it and the
/// address it serves on.
fn start_metric_server(rt: &Runtime) -> (std::process::Child, String) {
    let mut server = Command::new(SANDVISOR)
        .args([
            "--root",
            rt.root(),
            "metric-server",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("metric-server");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().expect("stdout")),
        &mut first,
    )
    .expect("the address line");
    let address = first
        .trim()
        .strip_prefix("serving metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_owned();
    (server, address)
}

#[test]
fn a_client_that_sends_nothing_does_not_stall_another_s_scrape() {
    use std::io::{Read, Write};
    let rt = Runtime::new();
    let (mut server, address) = start_metric_server(&rt);
    // One client connects and sends nothing; another sends half a request.
    let silent = std::net::TcpStream::connect(&address).expect("connect");
    let mut half = std::net::TcpStream::connect(&address).expect("connect");
    half.write_all(b"GET /metr").expect("half a request");
    // Meanwhile a scrape is answered, well before the slow ones time out.
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n# EOF\n"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The silent client is let go after the server's timeout.
    let mut silent = silent;
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut rest = Vec::new();
    let closed = silent.read_to_end(&mut rest);
    assert!(
        closed.is_ok() && started.elapsed() < Duration::from_secs(15),
        "{closed:?} after {:?}",
        started.elapsed()
    );
    drop(half);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_root_too_long_for_a_socket_address_works() {
    // docker's exec root plus `runtime-runc/moby/ID` passes the 107 bytes
    // of a socket address as soon as the exec root is a little long.
    become_subreaper();
    let rt = Runtime::with_root_of_length(200);
    assert!(rt.root().len() >= 200);
    let bundle = Bundle::new("long", &["sleep", "100"]);
    let id = unique("long-root");
    let pid_file = rt.pid_file("long.pid");
    rt.ok(&[
        "create",
        "-b",
        &bundle.path_string(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ]);
    let init = read_pid(&pid_file);
    assert_eq!(rt.state(&id)["status"], "created");
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    assert_eq!(rt.ok(&["exec", &id, "sh", "-c", "echo $((6*7))"]), "42\n");
    rt.ok(&["kill", &id, "KILL"]);
    assert_killed(reap(init, Duration::from_secs(10)));
    eventually("stopped", || rt.state(&id)["status"] == "stopped");
    rt.ok(&["delete", &id]);
    assert!(rt.ids().is_empty());
}

#[test]
fn a_supervisor_that_cannot_boot_says_why_to_the_caller() {
    // containerd and conmon see create's stderr and --log, never the
    // supervisor's: its reason must come through create.
    let rt = runtime();
    let bundle = Bundle::new("noboot", &["true"]);
    let id = unique("noboot");
    let log = "/proc/version/not-a-directory/log.json";
    let outcome = rt.cli(&[
        "--log",
        log,
        "--log-format",
        "json",
        "create",
        "-b",
        &bundle.path_string(),
        &id,
    ]);
    assert_eq!(outcome.code(), Some(1), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!(
            "sandvisor: start the supervisor: open log file \"{log}\""
        )),
        "{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("before serving"),
        "{}",
        outcome.stderr
    );
    assert!(rt.ids().is_empty());
}

#[test]
fn a_container_joining_another_ones_namespaces_by_path_is_in_them_and_not_the_hosts() {
    // docker's --pid container:X and --ipc container:X, podman's pods: the
    // spec names the other container's /proc/PID/ns/* files.
    let rt = runtime();
    let first = unique("ns-owner");
    let owner = Bundle::new("ns-owner", &["sleep", "100"]);
    rt.ok(&["run", "-d", "-b", &owner.path_string(), &first]);
    let owner_init = rt.state(&first)["pid"].as_i64().expect("pid") as i32;
    let mut joiner = Bundle::new("ns-joiner", &["sh", "-c", "echo $$ > /tmp/pid; sleep 100"]);
    joiner.edit(|c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid", "path": format!("/proc/{owner_init}/ns/pid")},
            {"type": "network", "path": format!("/proc/{owner_init}/ns/net")},
            {"type": "ipc", "path": format!("/proc/{owner_init}/ns/ipc")},
            {"type": "uts", "path": format!("/proc/{owner_init}/ns/uts")},
            {"type": "mount"}
        ]);
    });
    let second = unique("ns-joiner");
    rt.ok(&["run", "-d", "-b", &joiner.path_string(), &second]);
    let joiner_init = rt.state(&second)["pid"].as_i64().expect("pid") as i32;
    let link =
        |pid: &str, ns: &str| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns");
    for ns in ["pid", "net", "ipc", "uts"] {
        assert_eq!(
            link(&joiner_init.to_string(), ns),
            link(&owner_init.to_string(), ns),
            "{ns}"
        );
        assert_ne!(link(&joiner_init.to_string(), ns), link("self", ns), "{ns}");
    }
    assert_ne!(
        link(&joiner_init.to_string(), "mnt"),
        link(&owner_init.to_string(), "mnt")
    );
    // Seen from inside, it is a later process of the owner's pid
    // namespace, whose init (pid 1) is the owner's sleep.
    let ps = rt.ok(&["exec", &second, "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(|r| r.as_slice()),
        Some(&["1", "sleep"][..]),
        "{ps}"
    );
    let inner = rt.ok(&["exec", &second, "cat", "/tmp/pid"]);
    assert_ne!(inner.trim(), "1", "{ps}");
    // The shell exec'd its last command.
    assert!(
        rows.iter().any(|r| r[0] == inner.trim() && r[1] == "sleep"),
        "{ps}"
    );
    rt.ok(&["delete", "-f", &second]);
    // Reaped before the owner goes: a zombie in its pid namespace would
    // keep the owner's init from ending (as it would under runc).
    assert_killed(reap(joiner_init, Duration::from_secs(10)));
    rt.ok(&["delete", "-f", &first]);
    assert_killed(reap(owner_init, Duration::from_secs(10)));
}

#[test]
fn a_pids_limit_leaves_the_container_all_its_processes_under_run() {
    // `run` (not create) clones through the supervisor, whose resident
    // spawner for the container would stand in its cgroups: not with a
    // pids limit, whose every slot is the container's.
    let rt = runtime();
    let mut bundle = Bundle::new("pids", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    bundle.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 3}));
    let id = unique("pids-run");
    let mut run = Command::new(SANDVISOR)
        .args(["--root", rt.root(), "run", "-b", &bundle.path_string(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run");
    eventually("running", || {
        rt.cli(&["state", &id]).code() == Some(0) && rt.state(&id)["status"] == "running"
    });
    let init = rt.state(&id)["pid"].as_i64().expect("pid");
    let current = || pids_current_of(init as i32);
    // The shell and its two sleeps: the limit's three, and nothing else.
    eventually("three processes", || current() == "3");
    let listed: Vec<i64> =
        serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).expect("ps json");
    assert_eq!(listed.len(), 3, "{listed:?}");
    let full = rt.cli(&["exec", &id, "true"]);
    assert_ne!(
        full.code(),
        Some(0),
        "a fourth process fit under pids.max 3"
    );
    assert_eq!(current(), "3");
    rt.ok(&["kill", &id, "KILL"]);
    let status = run.wait().expect("run");
    assert_eq!(status.code(), Some(137));
}

/// The pid of the supervisor of sandbox `id` (its `boot --id ID`).
fn supervisor_of(id: &str) -> i32 {
    let wanted = format!("\0boot\0--id\0{id}\0");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&wanted))
        })
        .expect("the sandbox's supervisor")
}

#[test]
fn a_created_container_dies_with_its_supervisor() {
    // The init is the caller's child, not the supervisor's: no death
    // signal ties it to the supervisor, but a sandbox's containers must
    // not outlive it.
    let rt = runtime();
    let bundle = Bundle::new("orphan", &["sleep", "100"]);
    let id = unique("orphan");
    let pid_file = rt.pid_file("orphan.pid");
    rt.ok(&[
        "create",
        "-b",
        &bundle.path_string(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ]);
    rt.ok(&["start", &id]);
    let init = read_pid(&pid_file);
    let supervisor = supervisor_of(&id);
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(supervisor, libc::SIGKILL) }, 0);
    assert_killed(reap(init, PATIENCE));
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.ok(&["delete", &id]);
    assert!(rt.ids().is_empty());
}
