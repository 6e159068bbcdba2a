//! Containment, attacked (issue 10). Each test is the attack: a static
//! program, `tests/security/attacker.c` (compiled here with `gcc -static`),
//! runs inside a container and tries to reach the host; it prints what it
//! reached, and the test fails on anything that escaped:
//!
//! 1. host descriptors, exe, cwd and root of exec children, opened through
//!    /proc from the container while the host execs into it;
//! 2. `process.cwd` and `exec --cwd` set to `/proc/self/fd/N`;
//! 3. the control sockets seen from a built-in-spec container, and a
//!    supervisor answering a peer inside its own container;
//! 4. the built-in spec's /proc and /sys: masked and read-only paths;
//! 5. the runtime binary opened through /proc/PID/exe, and held until
//!    nothing runs it, then opened for writing;
//! 6. WaitPID statuses across ContainerManager restarts (a pid reused by
//!    the host must not inherit a killed process's status);
//! 7. a host process pulled into a container's cgroup through
//!    `Cgroups.WriteControlFiles` of `cgroup.procs`.
//!
//! Needs root, gcc with a static libc and /bin/busybox (static), as in CI.
//! Every command runs with a private `--root`.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "security/harness.rs"]
mod harness;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime::{unique, Outcome, Runtime};
use common::SANDVISOR;
use harness::*;
use sandvisor::api::cgroups::{ControlFile, WriteControlFiles};
use sandvisor::api::debug::FaultKind;
use sandvisor::ErrorCode;
use serde_json::json;

/// Runs the scanning attacker as the init of a bundle container while the
/// host execs `/bin/true` into it `EXECS` times; returns its report.
fn scan_during_execs(prefix: &str, marker: &Marker) -> Vec<String> {
    let rt = Runtime::new();
    let runtime = std::fs::metadata(SANDVISOR).expect("stat sandvisor");
    let (dev, ino) = (runtime.dev().to_string(), runtime.ino().to_string());
    let bundle = attacker_bundle(&["/attacker", "scan", &marker.path, &dev, &ino]);
    let id = unique(prefix);
    let mut init = Background::run(&rt, &id, &bundle);
    init.wait_line("READY");
    for i in 0..EXECS {
        let outcome = rt.cli(&["exec", &id, "/bin/true"]);
        assert_eq!(outcome.code(), Some(0), "exec {i}: {}", outcome.stderr);
    }
    rt.ok(&["kill", &id, "USR1"]);
    let (status, lines) = init.finish();
    assert_eq!(status.code(), Some(0), "the attacker's run: {lines:?}");
    let done = lines_of(&lines, &["DONE "]);
    let pids: usize = done
        .first()
        .and_then(|l| field(l, "pids")?.parse().ok())
        .unwrap_or_else(|| panic!("no DONE line: {lines:?}"));
    // The scan saw the exec children (or it proves nothing).
    assert!(
        pids >= EXECS / 2,
        "the scan saw {pids} of {EXECS} execs: {done:?}"
    );
    eprintln!("{}", done[0]);
    lines
}

#[test]
fn exec_children_hold_no_host_descriptors() {
    let _heavy = heavy();
    let marker = Marker::new();
    let lines = scan_during_execs("scan-fds", &marker);
    let escaped = lines_of(&lines, &["FINDING", "MARKER"]);
    let read_marker = escaped.iter().any(|l| l.contains(&marker.content));
    let caught = lines_of(&lines, &["DONE"])[0];
    assert!(
        escaped.is_empty(),
        "during {EXECS} `sandvisor exec ID /bin/true` the container's init opened, through \
         /proc/PID/{{fd/N,exe,cwd,root}}, what exec children held from the host ({caught}; \
         caught = children it got something from); host file {} read through them: \
         {read_marker}:\n{}",
        marker.path,
        summary(escaped)
    );
}

/// What one attempt with cwd `/proc/self/fd/N` did: `None` if it was
/// refused or stayed inside, else what escaped.
fn cwd_escape(what: &str, outcome: &Outcome, marker: &Marker) -> Option<String> {
    let lines: Vec<String> = outcome.stdout.lines().map(str::to_owned).collect();
    let marker_lines = lines_of(&lines, &["MARKER"]);
    let cwd = lines_of(&lines, &["CWD"]);
    let outside = cwd.iter().any(|l| field(l, "inside") != Some("1"));
    if outcome.code() != Some(0) && cwd.is_empty() {
        return None; // refused
    }
    assert!(
        !cwd.is_empty(),
        "{what}: the attacker did not report: {outcome:?}"
    );
    (outside || !marker_lines.is_empty()).then(|| {
        format!(
            "{what}: {}{}",
            cwd.join(" "),
            marker_lines
                .iter()
                .map(|m| format!("; read host file {} ({m})", marker.path))
                .collect::<String>()
        )
    })
}

#[test]
fn cwd_through_proc_self_fd_is_refused() {
    let rt = Runtime::new();
    let marker = Marker::new();
    let mut escapes = Vec::new();
    let mut refused = 0;
    // The image's WORKDIR: config.json's process.cwd.
    let mut bundle = attacker_bundle(&["/attacker", "cwd", &marker.path]);
    for n in 3..40 {
        let cwd = format!("/proc/self/fd/{n}");
        bundle.edit(|c| c["process"]["cwd"] = json!(cwd));
        let id = unique("cwd-run");
        let outcome = rt.cli(&["run", "--bundle", &bundle.path_string(), &id]);
        match cwd_escape(&format!("process.cwd {cwd}"), &outcome, &marker) {
            Some(escape) => escapes.push(escape),
            None => refused += 1,
        }
    }
    // `exec --cwd` into a running container.
    bundle.edit(|c| {
        c["process"]["cwd"] = json!("/");
        c["process"]["args"] = json!(["sleep", "3600"]);
    });
    let id = unique("cwd-exec");
    rt.ok(&["run", "-d", "--bundle", &bundle.path_string(), &id]);
    for n in 3..40 {
        let cwd = format!("/proc/self/fd/{n}");
        let outcome = rt.cli(&["exec", "--cwd", &cwd, &id, "/attacker", "cwd", &marker.path]);
        match cwd_escape(&format!("exec --cwd {cwd}"), &outcome, &marker) {
            Some(escape) => escapes.push(escape),
            None => refused += 1,
        }
    }
    rt.ok(&["delete", "--force", &id]);
    assert!(
        escapes.is_empty(),
        "{} of {} processes started with cwd /proc/self/fd/N outside the container's root \
         ({refused} refused or inside):\n{}",
        escapes.len(),
        escapes.len() + refused,
        escapes.join("\n")
    );
}

#[test]
fn builtin_spec_hides_control_sockets() {
    let mut rt = Runtime::new();
    // Where the default root is: under /run (the container's /tmp is a
    // tmpfs of its own; /run is not).
    rt.root = tempfile::Builder::new()
        .prefix("svtest-root-")
        .tempdir_in("/run")
        .expect("temp dir in /run");
    let other = unique("other");
    rt.ok(&["run", "-d", "--id", &other, "--", "sleep", "3600"]);
    let attacker = attacker().to_str().expect("utf-8");
    let id = unique("sockets");
    let hex = ping_hex();
    let args = ["run", "--id", &id, "--", attacker, "sockets", &hex];
    let outcome = rt.cli(&[&args[..], &["/run", "/var/run", rt.root()]].concat());
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    let lines: Vec<String> = outcome.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines_of(&lines, &["DONE"]).len(), 1, "{outcome:?}");
    let reached: Vec<String> = lines_of(&lines, &["CONNECTED", "REPLY"])
        .into_iter()
        .map(|l| match l.starts_with("REPLY") && l.contains(" hex=") {
            true => format!("{l}\n  => {:?}", reply_of(l)),
            false => l.to_owned(),
        })
        .collect();
    rt.ok(&["delete", "--force", &other]);
    assert!(
        reached.is_empty(),
        "a container of the built-in spec reached {} host sockets (its own supervisor's \
         and sandbox {other}'s control sockets under --root {}; Ok(()) = a Ping answered):\n{}",
        lines_of(&lines, &["CONNECTED"]).len(),
        rt.root(),
        reached.join("\n")
    );
}

#[test]
fn supervisor_refuses_peers_inside_its_containers() {
    let rt = Runtime::new();
    let id = unique("peer");
    let socket = format!("/sv/{id}/ctl.sock");
    let hex = ping_hex();
    let mut bundle = attacker_bundle(&["/attacker", "ping", &socket, &hex]);
    // The state root, bound into the container: what a hiding mistake
    // would show it.
    std::fs::create_dir(bundle.rootfs().join("sv")).expect("mount point");
    let root = rt.root().to_owned();
    bundle.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/sv", "type": "bind", "source": root, "options": ["rbind", "ro"]}),
        )
    });
    let outcome = rt.cli(&["run", "--bundle", &bundle.path_string(), &id]);
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    let lines: Vec<String> = outcome.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines_of(&lines, &["DONE"]).len(), 1, "{outcome:?}");
    for reply in lines_of(&lines, &["REPLY"]) {
        if !reply.contains(" hex=") {
            continue; // closed: refused
        }
        match reply_of(reply) {
            Err((ErrorCode::PermissionDenied, _)) => {}
            other => panic!(
                "the supervisor answered a Ping from the init of its own container {id} \
                 (uid 0) over {socket}: {other:?}; expected permission_denied\n{lines:?}"
            ),
        }
    }
}

#[test]
fn builtin_spec_masks_proc() {
    let rt = Runtime::new();
    // runc's default masked and read-only paths, as `sandvisor spec` writes.
    let spec_dir = tempfile::tempdir().expect("temp dir");
    rt.ok(&["spec", "--bundle", spec_dir.path().to_str().expect("utf-8")]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec_dir.path().join("config.json")).expect("read"))
            .expect("config.json");
    let list = |key: &str| -> Vec<String> {
        config["linux"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no linux.{key} in `sandvisor spec`"))
            .iter()
            .map(|p| p.as_str().expect("a path").to_owned())
            .collect()
    };
    let (masked, readonly) = (list("maskedPaths"), list("readonlyPaths"));
    assert!(masked.contains(&"/proc/keys".to_owned()), "{masked:?}");
    assert!(readonly.contains(&"/proc/sys".to_owned()), "{readonly:?}");
    let core_pattern = "/proc/sys/kernel/core_pattern";
    let before = std::fs::read(core_pattern).expect("read core_pattern");
    let mut args = vec![
        "run".to_owned(),
        "--id".to_owned(),
        unique("proc"),
        "--".to_owned(),
    ];
    args.push(attacker().to_str().expect("utf-8").to_owned());
    args.push("proc".to_owned());
    args.extend(masked.iter().map(|p| format!("M:{p}")));
    args.extend(readonly.iter().map(|p| format!("R:{p}")));
    // Each written with its own value: a success changes nothing, but shows.
    args.push(format!("W:{core_pattern}"));
    args.push("W:/proc/sys/vm/overcommit_ratio".to_owned());
    let outcome = rt.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let after = std::fs::read(core_pattern).expect("read core_pattern");
    if after != before {
        std::fs::write(core_pattern, &before).expect("restore core_pattern");
    }
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&before),
        "the container changed the host's core_pattern (restored)"
    );
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    let lines: Vec<String> = outcome.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines_of(&lines, &["DONE"]).len(), 1, "{outcome:?}");
    let open = lines_of(&lines, &["EXPOSED", "WRITABLE", "WROTE"]);
    assert!(
        open.is_empty(),
        "a container of the built-in spec reached {} of the host kernel's interfaces that \
         `sandvisor spec` masks or makes read-only (EXPOSED: read, WRITABLE: on a read-write \
         mount, WROTE: written):\n{}",
        open.len(),
        open.join("\n")
    );
}

#[test]
fn runtime_binary_cannot_be_opened_or_written() {
    let _heavy = heavy();
    let marker = Marker::new();
    let lines = scan_during_execs("scan-exe", &marker);
    let runtime = lines_of(&lines, &["RUNTIME"]);
    let exes: Vec<&str> = lines_of(&lines, &["FINDING"])
        .into_iter()
        .filter(|l| field(l, "link").is_some_and(|k| k.starts_with("exe")))
        .collect();
    assert!(
        runtime.is_empty() && exes.is_empty(),
        "during {EXECS} execs the container opened the runtime binary {SANDVISOR} through \
         /proc/PID/exe of exec children (pids= how many; write= what reopening it through \
         /proc/self/fd for writing did), and exe links outside its root:\n{}\n{}",
        runtime.join("\n"),
        summary(exes)
    );
}

/// The spawners are the processes containers are cloned from. The attack
/// of CVE-2019-5736, by the host's root: hold the spawner's executable
/// through /proc/PID/exe, wait until nothing runs it any more, and open it
/// for writing. It is a read-only mount of the binary: EROFS. (That the
/// container cannot reach the link at all is the exec-children scans'.)
#[test]
fn the_binary_that_enters_containers_is_read_only() {
    // A copy nobody else runs, so that it stops being busy.
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = dir.path().join("sandvisor");
    std::fs::copy(SANDVISOR, &binary).expect("copy the binary");
    let socket = dir.path().join("run/ctl.sock");
    let mut boot = std::process::Command::new(&binary)
        .args(["--root"])
        .arg(dir.path().join("state"))
        .args(["boot", "--id", "ro", "--socket"])
        .arg(&socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("boot the copy");
    // The spawner names itself once it has re-executed: wait for that.
    let deadline = Instant::now() + Duration::from_secs(30);
    let spawner = loop {
        if let Some(pid) = child_named(boot.id(), "sv-spawner") {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "no sv-spawner under {}",
            boot.id()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let held = nix::fcntl::open(
        format!("/proc/{spawner}/exe").as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("hold the spawner's executable");
    let held_stat = nix::sys::stat::fstat(&held).expect("fstat");
    let copy = std::fs::metadata(&binary).expect("stat the copy");
    assert_eq!(
        (held_stat.st_dev, held_stat.st_ino),
        (copy.dev(), copy.ino())
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(boot.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop the supervisor");
    boot.wait().expect("the supervisor's exit");
    // Its spawner dies with it (its parent-death signal): then nothing
    // runs the copy.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{spawner}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the spawner outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()));
    assert_eq!(
        reopened.as_ref().map_err(|e| e.raw_os_error()).err(),
        Some(Some(libc::EROFS)),
        "reopening the spawner's executable for writing once nobody ran it: {reopened:?}"
    );
    // The copy is untouched and writable by its own path.
    assert!(std::fs::OpenOptions::new()
        .write(true)
        .open(&binary)
        .is_ok());
}

/// A child of `parent` whose comm is `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            ppid == Some(parent) && name.trim() == comm
        })
}

/// A wait status in words.
fn described(status: u32) -> String {
    match status & 0x7f {
        0 => format!("`exit {}`", status >> 8),
        signal => format!("killed by signal {signal}"),
    }
}

#[test]
fn exit_statuses_survive_manager_restarts() {
    let _heavy = heavy();
    let cid = unique("statuses");
    let sandbox = Sandbox::start(&cid, &["--enable-fault-injection"]);
    let (sv, client) = (&sandbox.sv, &sandbox.client);
    let (_, status, _) = exec_and_wait(client, &cid, 0);
    assert_eq!(status, 0);
    let baseline = sv.baseline_fds(1);

    // Execs while the ContainerManager panics: once per exec that got
    // through since the last panic (so that it is never failed for good,
    // after 10 panics in a row), at most every 5 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU32::new(0));
    let injected = Arc::new(AtomicU32::new(0));
    let injector = {
        let (client, stop) = (sv.client(), stop.clone());
        let (progress, injected) = (progress.clone(), injected.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                if progress.load(Ordering::Relaxed) == seen {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                client
                    .inject_fault("ContainerManager", FaultKind::Panic)
                    .expect("inject");
                injected.fetch_add(1, Ordering::Relaxed);
                seen = progress.load(Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut wrong = Vec::new();
    let mut suspects = Vec::new();
    let started = Instant::now();
    let mut execs: u32 = 0;
    while execs < 1000 && started.elapsed() < Duration::from_secs(30) {
        let code = execs % 50;
        let (executed, status, killed) = exec_and_wait(client, &cid, code);
        if status != code << 8 {
            wrong.push(format!(
                "pid {}: `exit {code}` reported as {}",
                executed.host_pid,
                described(status)
            ));
        }
        suspects.extend(killed);
        execs += 1;
        progress.store(execs, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    injector.join().expect("injector");
    let faults = injected.load(Ordering::Relaxed);

    // The host reuses pids: each one a killed exec may have had, the last
    // killed first, goes to a new exec (the host's next pid is set just
    // before it), whose status must be its own.
    let mut seen = std::collections::HashSet::new();
    suspects.reverse();
    suspects.retain(|pid| seen.insert(*pid));
    let (mut reused, mut reuse_execs) = (0, 0);
    for (i, &pid) in suspects.iter().take(300).enumerate() {
        let code = 100 + (i % 50) as u32;
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).expect("ns_last_pid");
        let (executed, status, _) = exec_and_wait(client, &cid, code);
        reuse_execs += 1;
        reused += usize::from(executed.host_pid == pid);
        if status != code << 8 {
            wrong.push(format!(
                "pid {} (a killed exec's, reused): `exit {code}` reported as {}",
                executed.host_pid,
                described(status)
            ));
        }
    }
    eprintln!(
        "{execs} execs under {faults} injected panics in {:?}; {} pids of killed execs, \
         {reused} reused by {reuse_execs} execs; {} wrong statuses",
        started.elapsed(),
        suspects.len(),
        wrong.len()
    );
    let fds = sv.settle_fds(baseline);
    assert!(
        wrong.is_empty() && fds == baseline,
        "WaitPID reported {} statuses that are not what the process did (of {} execs, {faults} \
         ContainerManager panics; `reused`: the host gave the exec the pid of an exec killed \
         by a restart's rollback), and the supervisor holds {fds} descriptors after, \
         {baseline} before:\n{}",
        wrong.len(),
        execs + reuse_execs,
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn control_files_cannot_pull_host_processes_into_a_container() {
    let cid = unique("procs");
    let sandbox = Sandbox::start(&cid, &[]);
    // A host process, outside the sandbox: the victim.
    let mut host = std::process::Command::new("sleep")
        .arg("3600")
        .spawn()
        .expect("spawn sleep");
    let cgroups = format!("/proc/{}/cgroup", host.id());
    let before = std::fs::read_to_string(&cgroups).expect("read cgroup");
    let write = WriteControlFiles {
        files: vec![ControlFile {
            controller: "pids".into(),
            path: cid.clone(),
            name: "cgroup.procs".into(),
            value: Some(host.id().to_string()),
        }],
    };
    let result = sandbox.client.invoke(write).expect("WriteControlFiles");
    let after = std::fs::read_to_string(&cgroups).expect("read cgroup");
    let _ = host.kill();
    let _ = host.wait();
    let moved: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    assert!(
        moved.is_empty(),
        "Cgroups.WriteControlFiles of {cid}/cgroup.procs moved host process {} (not the \
         sandbox's) into the container's cgroup: now {moved:?}; the call said {result:?}",
        host.id()
    );
    let refused = result.results[0]
        .error
        .as_ref()
        .map(|e| (e.code, e.message.contains("cgroup.procs")));
    assert_eq!(
        refused,
        Some((ErrorCode::PermissionDenied, true)),
        "{result:?}"
    );
}
