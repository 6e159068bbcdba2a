//! `sandvisor boot` and `sandvisor call` as a user runs them: start, serve
//! every method name, change logging, shut down cleanly.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use sandvisor::api::debug::{ActorState, FaultKind};
use sandvisor::api::logging::{LogFormat, LogLevel, LoggingState};
use sandvisor::api::{Request, METHODS};
use sandvisor::{ClientError, ErrorCode};
use serde_cbor::Value;

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut sv = Supervisor::boot();
    assert_eq!(sv.client().ping(b"x").unwrap(), b"x");
    let status = sv.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(!sv.socket.exists(), "the socket file is removed");
    assert!(sv.log_contains("supervisor exited, code: 0"));
}

#[test]
fn sigint_shuts_down_cleanly() {
    let mut sv = Supervisor::boot();
    let status = sv.stop_with(Signal::SIGINT);
    assert_eq!(status.code(), Some(0));
    assert!(!sv.socket.exists());
}

/// Waits until `actor`'s mailbox holds a message: a call another thread
/// sent has arrived, however late that thread ran.
fn wait_until_queued(client: &sandvisor::Client, actor: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !client
        .stacks()
        .unwrap()
        .actors
        .iter()
        .any(|a| a.name == actor && a.mailbox > 0)
    {
        assert!(Instant::now() < deadline, "no call reached {actor}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn calls_in_flight_at_shutdown_are_answered() {
    let mut sv = Supervisor::boot();
    let client = sv.client();
    // Long enough to see the call queued behind it; shorter than the
    // shutdown's grace (5 s), so that the call is answered.
    client
        .inject_fault("Logging", FaultKind::Stall { ms: 2_000 })
        .unwrap();
    let pending = {
        let client = client.clone();
        std::thread::spawn(move || client.change_logging(None, None))
    };
    wait_until_queued(&client, "Logging");
    let pid = nix::unistd::Pid::from_raw(sv.pid() as i32);
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    // New connections are refused at once.
    let deadline = Instant::now() + PATIENCE;
    while sv.socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!sv.socket.exists());
    assert!(sandvisor::Client::connect(&sv.socket).is_err());
    let answer = pending.join().unwrap().unwrap();
    assert_eq!(answer.level, LogLevel::Debug);
    let status = sv.wait_exit(PATIENCE).unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn calls_still_in_flight_after_the_grace_period_are_cancelled() {
    let mut sv = Supervisor::boot_with(&["--enable-fault-injection", "--shutdown-grace-ms", "200"]);
    let client = sv.client();
    client
        .inject_fault("Logging", FaultKind::Stall { ms: 120_000 })
        .unwrap();
    let pending = {
        let client = client.clone();
        std::thread::spawn(move || client.change_logging(None, None))
    };
    wait_until_queued(&client, "Logging");
    let started = Instant::now();
    let status = sv.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    // Cancelled, not waited for: long before the stall would have ended
    // (a loose bound, not a guess at a loaded machine's speed).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(pending.join().unwrap(), Err(ClientError::Closed)));
}

#[test]
fn a_second_supervisor_on_a_live_socket_is_refused_and_a_stale_socket_is_replaced() {
    let sv = Supervisor::boot();
    let out = Command::new(SANDVISOR)
        .args(["boot", "--id", "second", "--socket"])
        .arg(&sv.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "sandvisor: another server is listening on {:?}\n",
            sv.socket
        )
    );
    // A supervisor killed with SIGKILL leaves its socket file behind.
    let mut killed = Supervisor::boot();
    killed.stop_with(Signal::SIGKILL);
    assert!(killed.socket.exists());
    let mut child = Command::new(SANDVISOR)
        .args(["boot", "--id", "again", "--socket"])
        .arg(&killed.socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let pong = loop {
        if let Ok(c) = sandvisor::Client::connect(&killed.socket) {
            break c.ping(b"replaced").unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no supervisor on the stale socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(pong, b"replaced");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_boot_arguments_are_refused_with_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(SANDVISOR).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let socket = dir.path().join("s/ctl.sock");
    let socket = socket.to_str().unwrap();
    let (code, err) = run(&["boot", "--id", "../x", "--socket", socket]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("sandvisor: invalid sandbox id \"../x\""),
        "{err}"
    );
    let (code, err) = run(&["boot", "--id", "ok", "--socket", "/tmp/sandvisor-test.sock"]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("sandvisor: socket directory \"/tmp\" has mode 1777"),
        "{err}"
    );
    // A long directory is reached through a descriptor; a file name that
    // alone does not fit in a socket address cannot be.
    let long = format!("{}/s/{}", dir.path().display(), "x".repeat(120));
    let (code, err) = run(&["boot", "--id", "ok", "--socket", &long]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is too long"), "{err}");
    let (code, err) = run(&[
        "boot",
        "--id",
        "ok",
        "--socket",
        socket,
        "--max-frame-len",
        "17000000",
    ]);
    assert_eq!(code, Some(2), "clap refuses it");
    assert!(err.contains("17000000"), "{err}");
}

#[test]
fn every_method_not_yet_implemented_answers_unsupported_naming_it() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let mut unsupported = 0;
    for (method, owner) in METHODS {
        if Request::IMPLEMENTED.contains(method) {
            continue;
        }
        let err = client.call(method, &Value::Null, vec![]).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unsupported), "{method}");
        assert_eq!(
            err.to_string(),
            format!("unsupported: {method} is not supported yet: the {owner} actor does not implement it in this build")
        );
        unsupported += 1;
    }
    assert_eq!(unsupported, METHODS.len() - Request::IMPLEMENTED.len());
}

#[test]
fn stacks_reports_the_tree_its_threads_and_connections() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let stacks = client.stacks().unwrap();
    let names: Vec<&str> = stacks.actors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SandboxSupervisor",
            "Listener",
            "ContainerManager",
            "Reaper",
            "Lifecycle",
            "Cgroups",
            "Network",
            "TraceSessions",
            "Profiler",
            "Metrics",
            "Usage",
            "Logging",
            "Debug"
        ]
    );
    for a in &stacks.actors {
        assert_eq!(
            (a.state, a.restarts, a.mailbox),
            (ActorState::Running, 0, 0),
            "{}",
            a.name
        );
        let handling = a.handling.as_ref().map(|h| h.message.as_str());
        let expected = (a.name == "Debug").then_some("debug.Stacks");
        assert_eq!(handling, expected, "{}", a.name);
    }
    // Threads name themselves once they first run: allow them a moment.
    let wanted = [
        "sandvisor",
        "sandvisor-log",
        "sv-containers",
        "sv-cgroups",
        "sv-usage",
    ];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let threads: Vec<String> = client
            .stacks()
            .unwrap()
            .threads
            .into_iter()
            .map(|t| t.name)
            .collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !threads.iter().any(|t| t == w))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} missing from {threads:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stacks.connections, 1);
    assert!(stacks.fault_injection);
}

#[test]
fn fault_injection_needs_the_boot_flag_and_a_known_actor() {
    let sv = Supervisor::boot_with(&[]);
    let client = sv.client();
    let err = client.inject_fault("Debug", FaultKind::Panic).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied));
    assert_eq!(
        err.to_string(),
        "permission_denied: fault injection is disabled: boot the supervisor with --enable-fault-injection"
    );
    let sv = Supervisor::boot();
    let client = sv.client();
    let err = client.inject_fault("Nobody", FaultKind::Panic).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    assert!(err.to_string().starts_with("not_found: no actor named \"Nobody\"; debug.Stacks lists them: SandboxSupervisor, Listener,"));
    let err = client
        .inject_fault("Debug", FaultKind::Stall { ms: 600_001 })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid_argument: stall of 600001 ms is longer than the limit of 600000 ms"
    );
}

#[test]
fn logging_changes_level_and_format_at_run_time() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let state = client.change_logging(Some(LogLevel::Info), None).unwrap();
    assert_eq!(
        state,
        LoggingState {
            level: LogLevel::Info,
            format: LogFormat::Text
        }
    );
    client.ping(b"quiet").unwrap();
    let marker = "logging changed, format: text, level: info";
    assert!(sv.log_contains(marker));
    std::thread::sleep(Duration::from_millis(100));
    let at_info = sv.log_text();
    let after_info = &at_info[at_info.find(marker).unwrap()..];
    assert!(
        !after_info.contains("rpc"),
        "debug lines after the change to info: {after_info}"
    );

    let state = client
        .change_logging(Some(LogLevel::Debug), Some(LogFormat::Json))
        .unwrap();
    assert_eq!(
        state,
        LoggingState {
            level: LogLevel::Debug,
            format: LogFormat::Json
        }
    );
    client.ping(b"loud").unwrap();
    assert!(sv.log_contains("\"method\":\"debug.Ping\""));
    let text = sv.log_text();
    let rpc_line = text
        .lines()
        .find(|l| l.contains("\"method\":\"debug.Ping\""))
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(rpc_line).unwrap();
    assert_eq!(line["level"], "debug");
    assert_eq!(line["method"], "debug.Ping");
    assert_eq!(line["code"], "ok");

    let err = client
        .call(
            "Logging.Change",
            &serde_cbor::Value::Map(
                [(Value::Text("level".into()), Value::Text("loud".into()))]
                    .into_iter()
                    .collect(),
            ),
            vec![],
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidArgument));
    assert!(err.to_string().contains("unknown variant `loud`"), "{err}");
}

#[test]
fn call_prints_replies_and_errors_as_json() {
    let sv = Supervisor::boot();
    let call = |args: &[&str]| {
        let out = Command::new(SANDVISOR)
            .arg("call")
            .arg("--socket")
            .arg(&sv.socket)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        call(&["debug.Ping", r#"{"payload": {"$hex": "00ff"}}"#]),
        (
            Some(0),
            "{\"ok\":{\"payload\":{\"$hex\":\"00ff\"}}}\n".into(),
            String::new()
        )
    );
    assert_eq!(
        call(&["Profile.CPU"]),
        (
            Some(1),
            "{\"err\":{\"code\":\"unsupported\",\"message\":\"Profile.CPU is not supported yet: the Profiler actor does not implement it in this build\"}}\n".into(),
            String::new()
        )
    );
    assert_eq!(
        call(&["Logging.Change", r#"{"level": "warning"}"#]),
        (
            Some(0),
            "{\"ok\":{\"format\":\"text\",\"level\":\"warning\"}}\n".into(),
            String::new()
        )
    );
    let (code, out, err) = call(&["debug.Ping", "{not json"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(
        err.starts_with("sandvisor: arguments are not valid JSON"),
        "{err}"
    );
    let (code, _, err) = call(&["debug.Ping", r#"{"payload": {"$hex": "0"}}"#]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "sandvisor: arguments: $hex value has an odd number of digits: \"0\"\n"
    );
    let (code, out, _) = call(&[
        "debug.Ping",
        r#"{"payload": {"$hex": ""}}"#,
        "--fd",
        "1",
        "--fd",
        "2",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(0),
            "{\"fds\":2,\"ok\":{\"payload\":{\"$hex\":\"\"}}}\n"
        )
    );
    let (code, _, err) = call(&["debug.Stacks", "--fd", "999"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("sandvisor: --fd 999: EBADF"), "{err}");
}
