//! `sandvisor run`, black box: what a container prints and exits with,
//! its registration for `state` and `list`, `kill` and `delete` around it,
//! stdin and signals forwarded, and configs it refuses.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::bundle::Bundle;
use common::command::*;
use common::host::*;
use common::rpc::*;
use common::runtime::unique;
use common::{PATIENCE, SANDVISOR};
use sandvisor::api::container::{ProcessInfo, Processes, SignalMode};
use sandvisor::{Client, ClientError, ErrorCode};
use serde_json::json;

// ---------------------------------------------------------------------------
// sandvisor run
// ---------------------------------------------------------------------------

#[test]
fn run_prints_pid_one_and_the_id_as_hostname_and_cleans_up() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-echo");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "echo $$; hostname",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(stdout, format!("1\n{id}\n"), "stderr: {stderr}");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    // Nothing of the sandbox is left: state directory, cgroups.
    assert!(
        !root.path().join(&id).exists(),
        "state directory {} left behind",
        root.path().join(&id).display()
    );
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
    let sandbox_cgroups: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(&id))
        .filter(|d| d.exists())
        .collect();
    assert_eq!(sandbox_cgroups, Vec::<PathBuf>::new());
}

/// `sandvisor state ID` once `run` has registered the container.
fn state_once_registered(root: &str, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, stdout, _) = run_cli(&["--root", root, "state", id], Duration::from_secs(10));
        if status.code() == Some(0) {
            return serde_json::from_str(&stdout).expect("state JSON");
        }
        assert!(Instant::now() < deadline, "no state for {id}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_registers_its_container_for_state_and_list() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-state");
    let bundle = Bundle::new(
        "state",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ],
    );
    let mut child = spawn_run(root_arg, &id, &bundle, Stdio::piped());
    // The entry appears once the container runs.
    let state = state_once_registered(root_arg, &id);
    let pid = state["pid"].as_i64().expect("pid") as i32;
    // Registered before it is started (runc's run is create then start):
    // the init execs the program just after.
    let comm = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .expect("the init")
            .trim()
            .to_owned()
    };
    let deadline = Instant::now() + PATIENCE;
    while comm() != "sh" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(comm(), "sh");
    let bundle_path = std::fs::canonicalize(bundle.path()).expect("bundle");
    assert_eq!(
        state,
        serde_json::json!({
            "ociVersion": bundle.spec().version(),
            "id": id,
            "pid": pid,
            "status": "running",
            "bundle": bundle_path,
            "rootfs": bundle_path.join("rootfs"),
            "created": state["created"],
            "owner": "",
        })
    );
    let created = state["created"].as_str().expect("created");
    assert!(created.ends_with('Z') && created.len() >= 20, "{created}");

    let (status, table, _) = run_cli(&["--root", root_arg, "list"], Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID    ") && lines[0].ends_with("OWNER"),
        "{table}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            id.as_str(),
            &pid.to_string(),
            "running",
            &bundle_path.display().to_string(),
            created,
            "root"
        ]
    );
    let (_, quiet, _) = run_cli(&["--root", root_arg, "list", "-q"], Duration::from_secs(10));
    assert_eq!(quiet, format!("{id}\n"));
    let (_, json, _) = run_cli(
        &["--root", root_arg, "list", "--format", "json"],
        Duration::from_secs(10),
    );
    let listed: serde_json::Value = serde_json::from_str(&json).expect("list JSON");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["owner"], "root");

    // Unknown and escaping ids.
    let (status, _, stderr) = run_cli(
        &["--root", root_arg, "state", "nope"],
        Duration::from_secs(10),
    );
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container \"nope\" does not exist\n")
    );
    let (status, _, stderr) = run_cli(
        &["--root", root_arg, "state", "../x"],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.starts_with("sandvisor: invalid container id \"../x\""),
        "{stderr}"
    );

    // Once run is over, the entry is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(7), "the container's trap ran");
    let (status, quiet, _) = run_cli(&["--root", root_arg, "list", "-q"], Duration::from_secs(10));
    assert_eq!((status.code(), quiet.as_str()), (Some(0), ""));
    let (_, json, _) = run_cli(
        &["--root", root_arg, "list", "--format", "json"],
        Duration::from_secs(10),
    );
    assert_eq!(json, "null\n");
}

#[test]
fn kill_signals_a_running_container_by_its_id() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-kill");
    let bundle = Bundle::new(
        "kill",
        &[
            "sh",
            "-c",
            "trap 'echo usr1' USR1; trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let mut child = spawn_run(root_arg, &id, &bundle, Stdio::piped());
    let stdout: OwnedFd = child.stdout.take().expect("stdout").into();
    let mut seen = Vec::new();
    assert!(
        read_some(&stdout, &mut seen, Instant::now() + PATIENCE),
        "no output"
    );
    assert_eq!(seen, b"ready\n");
    state_once_registered(root_arg, &id);
    let kill = |args: &[&str]| {
        let mut all = vec!["--root", root_arg, "kill"];
        all.extend_from_slice(args);
        run_cli(&all, Duration::from_secs(10))
    };
    // A signal by name reaches the init's trap; 0 only asks.
    let (status, _, stderr) = kill(&[&id, "usr1"]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    seen.clear();
    assert!(read_some(&stdout, &mut seen, Instant::now() + PATIENCE));
    assert_eq!(seen, b"usr1\n");
    assert_eq!(kill(&[&id, "0"]).0.code(), Some(0));
    // Bad signals and unknown ids.
    let (status, _, stderr) = kill(&[&id, "NOPE"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: unknown signal \"NOPE\"\n")
    );
    let (status, _, stderr) = kill(&[&id, "65"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: unknown signal \"65\"\n")
    );
    let (status, _, stderr) = kill(&["nope", "KILL"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container \"nope\" does not exist\n")
    );
    // The default is SIGTERM: the trap ends the container, and run with it.
    let (status, _, stderr) = kill(&[&id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert_eq!(child.wait().expect("wait").code(), Some(9));
    let (status, _, stderr) = kill(&[&id, "KILL"]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: container {id:?} does not exist\n")
        )
    );
}

#[test]
fn delete_refuses_a_running_container_and_cleans_up_after_a_killed_supervisor() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let cli = |args: &[&str]| {
        let mut all = vec!["--root", root_arg];
        all.extend_from_slice(args);
        run_cli(&all, Duration::from_secs(30))
    };
    let start = |id: &str| {
        let bundle = Bundle::new("delete", &["sleep", "30"]);
        let child = spawn_run(root_arg, id, &bundle, Stdio::null());
        let state = state_once_registered(root_arg, id);
        (child, bundle, state["pid"].as_i64().expect("pid") as i32)
    };

    // A running container is not deleted without --force.
    let id = unique("del-run");
    let (mut child, _bundle, init) = start(&id);
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: cannot delete container {id} that is not stopped: running\n")
        )
    );
    // With --force it is killed, its sandbox stopped, and `run` ends.
    let (status, _, stderr) = cli(&["delete", "--force", &id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert_eq!(
        child.wait().expect("wait").code(),
        Some(128 + libc::SIGKILL)
    );
    assert!(host_stat(init).is_none_or(|s| s.state == 'Z'));
    assert_eq!(cli(&["list", "-q"]).1, "");
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
    // Deleting what is not there: an error, unless forced.
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: container {id:?} does not exist\n")
        )
    );
    assert_eq!(cli(&["delete", "--force", &id]).0.code(), Some(0));

    // A supervisor killed outright leaves its entry and cgroups behind:
    // the container reads as stopped, and delete removes it all.
    let id = unique("del-stale");
    let (mut child, _bundle, _init) = start(&id);
    let entry: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join(&id).join("state.json")).expect("entry"),
    )
    .expect("JSON");
    let supervisor = entry["supervisor"]["pid"].as_i64().expect("pid") as i32;
    for pid in [child.id() as i32, supervisor] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL");
    }
    child.wait().expect("wait");
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        let state: serde_json::Value = serde_json::from_str(&cli(&["state", &id]).1).expect("JSON");
        if state["status"] == "stopped" || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        (state["status"].as_str(), state["pid"].as_i64()),
        (Some("stopped"), Some(0))
    );
    let (status, _, stderr) = cli(&["kill", &id, "KILL"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container not running\n")
    );
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert!(!root.path().join(&id).exists(), "entry left");
    let left: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(&id))
        .filter(|d| d.exists())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
}

#[test]
fn run_exits_with_the_container_status() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-exit");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root", root_arg, "run", "--id", &id, "--", "sh", "-c", "exit 7",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(7), "", "")
    );
}

#[test]
fn run_of_a_missing_program_exits_127_naming_it() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-missing");
    let (status, stdout, stderr) = run_cli(
        &["--root", root_arg, "run", "--id", &id, "--", "/nonexistent"],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(127), "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("\"/nonexistent\"") && stderr.contains("errno 2"),
        "stderr names the path and errno 2: {stderr:?}"
    );
    assert!(
        !root.path().join(&id).exists(),
        "state directory left behind"
    );
}

#[test]
fn run_reports_a_kill_from_outside_as_137() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8").to_owned();
    let id = unique("run-kill");
    let (tx, rx) = std::sync::mpsc::channel();
    let args = id.clone();
    let runner = std::thread::spawn(move || {
        let result = run_cli(
            &[
                "--root", &root_arg, "run", "--id", &args, "--", "sleep", "30",
            ],
            Duration::from_secs(30),
        );
        let _ = tx.send(());
        result
    });
    // The supervisor's socket is <root>/<id>/ctl.sock: connect and kill the
    // container's init once it runs.
    let socket = root.path().join(&id).join("ctl.sock");
    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        if let Ok(c) = Client::connect(&socket) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let deadline = Instant::now() + PATIENCE;
    while processes_or_empty(&client, &id).is_empty() {
        assert!(Instant::now() < deadline, "container {id} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its init is listed while the container is still starting, when a
    // signal is refused as "not running": retry until it is running.
    loop {
        match signal(&client, &id, libc::SIGKILL, 0, SignalMode::Process) {
            Ok(()) => break,
            Err(ClientError::Rpc(e))
                if e.code == ErrorCode::FailedPrecondition && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("SIGKILL the init: {e}"),
        }
    }
    rx.recv_timeout(Duration::from_secs(20))
        .expect("run exits after the kill");
    let (status, stdout, stderr) = runner.join().expect("runner");
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(137), "", "")
    );
}

#[test]
fn run_forwards_stdin_and_signals() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");

    // stdin reaches the container.
    let id = unique("run-stdin");
    let mut child = Command::new(SANDVISOR)
        .args([
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "read line; echo \"got: $line\"; exit 2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello container\n").expect("write stdin");
    }
    let (status, stdout, stderr) = finish(child, "run with stdin");
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(2), "got: hello container\n", "")
    );

    // SIGTERM to `sandvisor run` goes to the container's init.
    let id = unique("run-term");
    let mut child = Command::new(SANDVISOR)
        .args([
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "trap 'echo trapped; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut output = Output {
        out: child.stdout.take().expect("stdout").into(),
        err: child.stderr.take().expect("stderr").into(),
        out_buf: Vec::new(),
    };
    output.wait_for("ready\n");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    assert_eq!(output.stdout(), "ready\ntrapped\n");
    assert_eq!(output.stderr(), "");
    let (status, _, _) = finish(child, "run after SIGTERM");
    assert_eq!(status.code(), Some(3));
}

/// Waits (bounded) for a child and collects what is left of its output.
fn finish(mut child: std::process::Child, what: &str) -> (ExitStatus, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            kill_tree(&mut child);
            panic!("{what}: sandvisor did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The container's processes, or none while it does not exist yet.
fn processes_or_empty(client: &Client, cid: &str) -> Vec<ProcessInfo> {
    call(
        client,
        Processes {
            cid: cid.to_owned(),
        },
    )
    .map(|p| p.processes)
    .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

/// `sandvisor run --bundle` of a bundle; returns (exit code, stderr).
fn run_bundle(bundle: &Bundle, id: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("temp dir");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root",
            root.path().to_str().expect("utf-8"),
            "run",
            "--bundle",
            &bundle.path_string(),
            "--id",
            id,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(stdout, "", "stderr: {stderr}");
    (status.code(), stderr, root)
}

/// The 1-based line of config.json holding `needle`.
fn config_line(bundle: &Bundle, needle: &str) -> usize {
    let text = std::fs::read_to_string(bundle.path().join("config.json")).expect("config");
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in config.json"))
        + 1
}

#[test]
fn run_refuses_invalid_configs_naming_the_problem() {
    let _host = shared_host();
    let config_path = |b: &Bundle| b.path().join("config.json").display().to_string();

    // JSON syntax error.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\",\n \"process\": {\n",
    )
    .expect("write");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("syntax"));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid {}: EOF while parsing an object at line 3 column 0\n",
            config_path(&bundle)
        )
    );

    // Wrong type for process.args.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| c["process"]["args"] = json!("sh -c true"));
    let line = config_line(&bundle, "\"args\": \"sh -c true\"");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("argstype"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "sandvisor: invalid {}: invalid type: string \"sh -c true\", expected a sequence at line {line} column ",
            config_path(&bundle)
        )),
        "{stderr:?}"
    );

    // Unknown namespace type.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({"type": "foo"}))
    });
    let line = config_line(&bundle, "\"foo\"");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("nstype"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "sandvisor: invalid {}: unknown variant `foo`, expected one of ",
            config_path(&bundle)
        )) && stderr.contains(&format!("at line {line} column ")),
        "{stderr:?}"
    );

    // Relative mount destination.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| c["mounts"][0]["destination"] = json!("proc"));
    let id = unique("reldest");
    let (code, stderr, root) = run_bundle(&bundle, &id);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "sandvisor: invalid_argument: mounts[0].destination: \"proc\" is not absolute\n"
    );
    assert!(!root.path().join(&id).exists(), "state left by {id}");

    // Missing rootfs directory.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::remove_dir_all(bundle.rootfs()).expect("remove rootfs");
    let id = unique("norootfs");
    let (code, stderr, root) = run_bundle(&bundle, &id);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid_argument: root.path: {} is not a directory\n",
            bundle.rootfs().display()
        )
    );
    assert!(!root.path().join(&id).exists(), "state left by {id}");
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());

    // No config.json at all.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::remove_file(bundle.path().join("config.json")).expect("remove");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("noconfig"));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid {}: no such file or directory (os error 2)\n",
            config_path(&bundle)
        )
    );
}
