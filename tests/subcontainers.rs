//! Subcontainers and starts, black box: subcontainers of a booted
//! supervisor's sandbox, the prewarmed and spare resident spawners, starts
//! that fail or are refused leaving nothing behind, and a graceful stop.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::bundle::Bundle;
use common::host::*;
use common::rpc::*;
use common::runtime::unique;
use common::{pipe, writers_all_closed, PATIENCE};
use sandvisor::api::container::{SignalMode, StartRoot, Wait};
use sandvisor::api::Fds;
use sandvisor::ErrorCode;
use serde_json::json;

// ---------------------------------------------------------------------------
// Subcontainers
// ---------------------------------------------------------------------------

#[test]
fn a_subcontainer_shares_uts_and_net_and_has_its_own_pid_and_mount_namespaces() {
    let _host = shared_host();
    let (sb, _root_bundle, root_cid, root) = sleeping_root("subroot");
    let sub_cid = unique("sub");
    // Its spec's hostname is not applied: the UTS namespace is the sandbox's.
    let sub_bundle = Bundle::new(
        "sub-own-name",
        &[
            "sh",
            "-c",
            "echo \"pid=$$\"; echo \"hostname=$(hostname)\"; for ns in net uts ipc mnt pid; do echo \"$ns=$(readlink /proc/self/ns/$ns)\"; done",
        ],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let started = started.expect("StartSubcontainer");
    assert_ne!(started.pid, root.pid);
    let stdout = output.stdout();
    assert_eq!(
        exit_code(wait(&sb.client, &sub_cid)),
        Some(0),
        "stderr: {}",
        output.stderr()
    );
    let kv = pairs(&stdout);
    assert_eq!(value(&kv, "pid"), "1");
    assert_eq!(value(&kv, "hostname"), "host-subroot");
    for shared in ["net", "uts", "ipc"] {
        assert_eq!(
            value(&kv, shared),
            namespace_inode(root.pid, shared),
            "{shared} namespace"
        );
    }
    for own in ["mnt", "pid"] {
        let root_ns = namespace_inode(root.pid, own);
        assert_ne!(value(&kv, own), root_ns, "{own} namespace");
        assert_ne!(
            value(&kv, own),
            namespace_inode(std::process::id() as i32, own),
            "{own} namespace is the host's"
        );
    }
    // The root is untouched.
    let listed = processes(&sb.client, &root_cid);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].host_pid, root.pid);
}

#[test]
fn destroying_a_subcontainer_leaves_nothing_of_it() {
    let _host = shared_host();
    let (sb, _root_bundle, _root_cid, _root) = sleeping_root("destroyroot");
    let sub_cid = unique("doomed");
    let sub_bundle = Bundle::new(
        "doomed",
        &[
            "sh",
            "-c",
            "for i in $(seq 20); do sleep 30 & done; echo ready; wait",
        ],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let started = started.expect("StartSubcontainer");
    output.wait_for("ready\n");
    let (executed, _exec_output) = exec(&sb.client, &sub_cid, &["sleep", "30"]);
    let listed = processes(&sb.client, &sub_cid);
    assert_eq!(
        listed.len(),
        22,
        "sh, 20 sleeps, an exec'd sleep: {listed:?}"
    );
    assert!(listed
        .iter()
        .any(|p| p.host_pid == started.pid && p.pid == 1));
    assert!(listed.iter().any(|p| p.host_pid == executed.host_pid));
    let host: Vec<(i32, u64)> = listed
        .iter()
        .map(|p| (p.host_pid, host_stat(p.host_pid).expect("exists").start))
        .collect();
    let dirs = cgroup_dirs(SANDBOX, &sub_cid);
    assert_eq!(
        dirs.len(),
        cgroup_hierarchies().len(),
        "one cgroup per hierarchy: {dirs:?}"
    );
    assert!(sb.state_dir().join(&sub_cid).exists());

    destroy_sub(&sb.client, &sub_cid).expect("DestroySubcontainer");
    assert_eq!(
        still_there(&host),
        Vec::new(),
        "processes left after destroy"
    );
    assert_eq!(
        zombie_children(sb.sv.pid(), Duration::ZERO),
        Vec::<i32>::new(),
        "zombies of the supervisor right after destroy"
    );
    assert_eq!(cgroup_dirs(SANDBOX, &sub_cid), Vec::<PathBuf>::new());
    assert!(
        !sb.state_dir().join(&sub_cid).exists(),
        "state directory left"
    );
    assert_eq!(processes_in_cgroup_of(&sub_cid), Vec::<i32>::new());

    assert_rpc_error(
        destroy_sub(&sb.client, &sub_cid),
        ErrorCode::NotFound,
        &[&format!("{sub_cid:?}")],
    );
    assert_rpc_error(
        call(
            &sb.client,
            Wait {
                cid: sub_cid.clone(),
            },
        ),
        ErrorCode::NotFound,
        &[&format!("{sub_cid:?}")],
    );
}

#[test]
fn subcontainer_preconditions_and_ids() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let bundle = Bundle::new("subpre", &["true"]);
    let sub_cid = unique("early");

    // No root container yet.
    assert_rpc_error(
        create_sub(&sb.client, &sub_cid),
        ErrorCode::FailedPrecondition,
        &["root container"],
    );
    let (result, _) = start_sub(&sb.client, &sub_cid, &bundle);
    assert_rpc_error(result, ErrorCode::FailedPrecondition, &["root container"]);

    let root_cid = unique("subpre-root");
    let root_bundle = Bundle::new("subpre", &["sleep", "30"]);
    let (root, _root_output) = start_root(&sb.client, &root_cid, &root_bundle);

    // Ids: the root's, a created one, an invalid one.
    assert_rpc_error(
        create_sub(&sb.client, &root_cid),
        ErrorCode::AlreadyExists,
        &[&format!("{root_cid:?}")],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    assert_rpc_error(
        create_sub(&sb.client, &sub_cid),
        ErrorCode::AlreadyExists,
        &[&format!("{sub_cid:?}")],
    );
    assert_rpc_error(
        create_sub(&sb.client, "../escape"),
        ErrorCode::InvalidArgument,
        &["\"../escape\""],
    );
    // Start of an id never created; the root cannot be destroyed this way.
    let (result, _) = start_sub(&sb.client, "never-created", &bundle);
    assert_rpc_error(result, ErrorCode::NotFound, &["\"never-created\""]);
    assert_rpc_error(
        destroy_sub(&sb.client, &root_cid),
        ErrorCode::FailedPrecondition,
        &[&format!("{root_cid:?}")],
    );

    // Started once only.
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &bundle);
    started.expect("StartSubcontainer");
    assert_eq!(output.stdout(), "");
    assert_eq!(wait(&sb.client, &sub_cid), 0);
    let (result, _) = start_sub(&sb.client, &sub_cid, &bundle);
    assert_rpc_error(
        result,
        ErrorCode::FailedPrecondition,
        &[&format!("{sub_cid:?}"), "started"],
    );
    destroy_sub(&sb.client, &sub_cid).expect("destroy an exited subcontainer");

    // Once the root has exited, no new subcontainer.
    signal(&sb.client, &root_cid, libc::SIGKILL, 0, SignalMode::Process).expect("SIGKILL");
    assert_eq!(wait(&sb.client, &root_cid), libc::SIGKILL as u32);
    assert!(root.pid > 0);
    assert_rpc_error(
        create_sub(&sb.client, &unique("late")),
        ErrorCode::FailedPrecondition,
        &["root container"],
    );
}

// ---------------------------------------------------------------------------
// Resident spawners: prewarmed and spare
// ---------------------------------------------------------------------------

#[test]
fn a_prewarmed_root_container_is_used_by_its_start_and_dropped_by_another() {
    let _host = shared_host();
    for (prewarmed, started_as) in [("warm-a", "warm-a"), ("warm-b", "warm-c")] {
        let mut sb = Sandbox::boot_with(&["--prewarm", prewarmed]);
        // Made while booting: the resident, which joins its v1 cgroups
        // while the supervisor starts (perhaps not yet when it is ready).
        // It takes its name once it has re-executed from the read-only
        // binary: wait for that, not for a time.
        let named = Instant::now() + PATIENCE;
        let mut residents = children_named(sb.sv.pid(), "sv-resident");
        while residents.is_empty() && Instant::now() < named {
            std::thread::sleep(Duration::from_millis(5));
            residents = children_named(sb.sv.pid(), "sv-resident");
        }
        assert_eq!(residents.len(), 1, "residents: {residents:?}");
        let prewarm_path = format!("/sandvisor/{SANDBOX}/{prewarmed}");
        let deadline = Instant::now() + PATIENCE;
        while !cgroup_of(residents[0])
            .lines()
            .any(|l| l.ends_with(&prewarm_path))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            cgroup_of(residents[0])
                .lines()
                .any(|l| l.ends_with(&prewarm_path)),
            "{}",
            cgroup_of(residents[0])
        );
        let bundle = Bundle::new("warm", &["sleep", "30"]);
        let (started, _output) = start_root(&sb.client, started_as, &bundle);
        let init_cgroups = cgroup_of(started.pid);
        let expected = format!("/sandvisor/{SANDBOX}/{started_as}");
        assert!(
            init_cgroups.lines().all(|l| l.ends_with(&expected)),
            "{init_cgroups}"
        );
        if prewarmed == started_as {
            // The same resident cloned the init: none was added.
            assert_eq!(children_named(sb.sv.pid(), "sv-resident"), residents);
        } else {
            // The prewarm is stopped; the container got its own resident.
            let after = residents_after_change(&sb, &residents, PATIENCE);
            assert_eq!(after.len(), 1, "residents: {after:?}");
            assert_ne!(after, residents);
        }
        sb.sv.stop_with(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(cgroup_dirs(SANDBOX, prewarmed), Vec::<PathBuf>::new());
        assert_eq!(cgroup_dirs(SANDBOX, started_as), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_subcontainer_takes_the_spare_resident_and_a_new_spare_is_made() {
    let _host = shared_host();
    let (sb, _root_bundle, _root_cid, _root) = sleeping_root("sparehost");
    // The spare lives in cgroups of its own beside the containers', in the
    // v1 hierarchies only.
    let v1: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .filter(|h| !h.join("cgroup.controllers").exists())
        .collect();
    if v1.is_empty() {
        eprintln!("skipped: no cgroup v1 hierarchy, so no spare");
        return;
    }
    let spare_dirs = |serial: u32| -> Vec<PathBuf> {
        v1.iter()
            .map(|h| {
                h.join("sandvisor")
                    .join(SANDBOX)
                    .join(format!("spare@{}.{serial}", sb.sv.pid()))
            })
            .filter(|d| d.exists())
            .collect()
    };
    let first = unique("sparesub");
    create_sub(&sb.client, &first).expect("CreateSubcontainer");
    // Once ready, its resident is in spare@PID.1 in every v1 hierarchy.
    let spare_pid = wait_for_spare(&sb, &format!("spare@{}.1", sb.sv.pid()));
    assert_eq!(spare_dirs(1).len(), v1.len());
    let bundle = Bundle::new("spare", &["sleep", "30"]);
    let (started, _output) = start_sub(&sb.client, &first, &bundle);
    let started = started.expect("StartSubcontainer");
    // The start took it: its cgroups were renamed to the container's, and
    // its resident cloned the init.
    assert_eq!(spare_dirs(1), Vec::<PathBuf>::new());
    let init_cgroups = cgroup_of(started.pid);
    assert!(
        init_cgroups
            .lines()
            .all(|l| l.ends_with(&format!("/sandvisor/{SANDBOX}/{first}"))),
        "{init_cgroups}"
    );
    assert!(
        cgroup_of(spare_pid)
            .lines()
            .filter(|l| !l.starts_with("0::"))
            .all(|l| l.ends_with(&format!("/sandvisor/{SANDBOX}/{first}"))),
        "the adopted resident: {}",
        cgroup_of(spare_pid)
    );
    // A new spare is on its way for the next one.
    wait_for_spare(&sb, &format!("spare@{}.2", sb.sv.pid()));
    destroy_sub(&sb.client, &first).expect("DestroySubcontainer");
    assert_eq!(cgroup_dirs(SANDBOX, &first), Vec::<PathBuf>::new());
    assert!(host_stat(spare_pid).is_none_or(|s| s.state == 'Z'));
}

/// The pid of the supervisor's resident whose cgroups are `name`, once
/// there is one.
fn wait_for_spare(sb: &Sandbox, name: &str) -> i32 {
    let needle = format!("/sandvisor/{SANDBOX}/{name}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = children_named(sb.sv.pid(), "sv-resident")
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|c| c.lines().any(|l| l.ends_with(&needle)))
            });
        if let Some(pid) = found {
            return pid;
        }
        assert!(Instant::now() < deadline, "no resident in {name}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The supervisor's resident spawners once they differ from `before`.
fn residents_after_change(sb: &Sandbox, before: &[i32], patience: Duration) -> Vec<i32> {
    let deadline = Instant::now() + patience;
    loop {
        let residents = children_named(sb.sv.pid(), "sv-resident");
        if residents != before || Instant::now() > deadline {
            return residents;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// A failed start leaves nothing behind
// ---------------------------------------------------------------------------

/// Starts `bundle` as the root `cid`, expects the failure, and checks that
/// nothing of the container is left; returns the error message.
fn failed_start_leaves_nothing(
    sb: &Sandbox,
    cid: &str,
    bundle: &Bundle,
    code: ErrorCode,
    parts: &[&str],
) -> String {
    let baseline = sb.sv.baseline_fds(1);
    // Mounts naming this test's directories or the container: other
    // processes of the machine mount elsewhere meanwhile.
    let ours = [
        cid,
        bundle.path().to_str().expect("utf-8"),
        sb.root.path().to_str().expect("utf-8"),
        sb.sv.dir.path().to_str().expect("utf-8"),
    ];
    let supervisor = sb.sv.pid().to_string();
    let host_mounts = mountinfo_naming("self", &ours);
    let supervisor_mounts = mountinfo_naming(&supervisor, &ours);
    let children_before = children(sb.sv.pid());

    let (req, mut output) = start_root_request(cid, bundle);
    let message = assert_rpc_error(call(&sb.client, req), code, parts);

    // The supervisor closed its copies of the pipes, and nothing else
    // holds them: no process of the container is left.
    assert_eq!(output.stdout(), "");
    assert_eq!(
        children(sb.sv.pid()),
        children_before,
        "children of the supervisor"
    );
    assert_eq!(
        zombie_children(sb.sv.pid(), Duration::ZERO),
        Vec::<i32>::new()
    );
    assert_eq!(processes_in_cgroup_of(cid), Vec::<i32>::new());
    assert_eq!(cgroup_dirs(SANDBOX, cid), Vec::<PathBuf>::new());
    assert!(
        !sb.state_dir().join(cid).exists(),
        "state directory {} left",
        sb.state_dir().join(cid).display()
    );
    assert_eq!(
        mountinfo_naming("self", &ours),
        host_mounts,
        "host mounts changed"
    );
    assert_eq!(
        mountinfo_naming(&supervisor, &ours),
        supervisor_mounts,
        "supervisor mounts changed"
    );
    assert_eq!(
        sb.sv.settle_fds(baseline),
        baseline,
        "supervisor descriptors"
    );
    // The id is free again.
    assert_rpc_error(
        call(
            &sb.client,
            Wait {
                cid: cid.to_owned(),
            },
        ),
        ErrorCode::NotFound,
        &[&format!("{cid:?}")],
    );
    message
}

#[test]
fn a_start_failing_on_a_missing_bind_source_leaves_nothing_and_frees_the_id() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("badbind");
    let mut bundle = Bundle::new("badbind", &["sh", "-c", "echo started; cat /data/x"]);
    let missing = format!("/nonexistent-source-{cid}");
    bundle.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "bind", "source": missing,
            "options": ["rbind", "ro"]
        }));
    });
    failed_start_leaves_nothing(
        &sb,
        &cid,
        &bundle,
        ErrorCode::NotFound,
        &[&missing, "errno 2"],
    );

    // Fixed, the same id starts.
    let source = tempfile::tempdir().expect("temp dir");
    std::fs::write(source.path().join("x"), "bound\n").expect("write");
    let source_path = source.path().to_str().expect("utf-8").to_owned();
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.last_mut().expect("the bind")["source"] = json!(source_path);
    });
    let (_started, mut output) = start_root(&sb.client, &cid, &bundle);
    assert_eq!(output.stdout(), "started\nbound\n");
    assert_eq!(wait(&sb.client, &cid), 0);
}

#[test]
fn a_start_failing_on_a_missing_program_leaves_nothing_and_frees_the_id() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("badexec");
    let mut bundle = Bundle::new("badexec", &["/bin/no-such-program"]);
    failed_start_leaves_nothing(
        &sb,
        &cid,
        &bundle,
        ErrorCode::NotFound,
        &["exec", "\"/bin/no-such-program\"", "errno 2"],
    );
    bundle.edit(|c| c["process"]["args"] = json!(["echo", "second try"]));
    let (_started, mut output) = start_root(&sb.client, &cid, &bundle);
    assert_eq!(output.stdout(), "second try\n");
    assert_eq!(wait(&sb.client, &cid), 0);
}

#[test]
fn start_root_refuses_bad_descriptors_specs_and_duplicates() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let bundle = Bundle::new("dup", &["sleep", "30"]);
    let cid = unique("fds");

    // Two descriptors instead of three: refused, and both are closed.
    let (out_r, out_w) = pipe();
    let null: OwnedFd = File::open("/dev/null").expect("null").into();
    let req = StartRoot {
        cid: cid.clone(),
        spec: bundle.spec(),
        bundle: Some(bundle.path_string()),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: Fds(vec![null, out_w]),
    };
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["3", "stdin, stdout, stderr", "got 2"],
    );
    assert!(writers_all_closed(&out_r, PATIENCE));

    // Spec errors, by field.
    let mut bad = Bundle::new("dup", &["sleep", "30"]);
    bad.edit(|c| c["mounts"][0]["destination"] = json!("proc"));
    let (req, _output) = start_root_request(&cid, &bad);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["mounts[0].destination", "\"proc\"", "not absolute"],
    );
    let mut bad = Bundle::new("dup", &["sleep", "30"]);
    bad.edit(|c| c["process"]["args"] = json!([]));
    let (req, _output) = start_root_request(&cid, &bad);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["process.args"],
    );
    let (mut req, _output) = start_root_request("../up", &bundle);
    req.cid = "../up".into();
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["\"../up\""],
    );

    // The id is still free: it starts.
    let (started, _output) = start_root(&sb.client, &cid, &bundle);
    assert!(started.pid > 0);

    // The same id again, or another root.
    let (out_r, out_w) = pipe();
    let null: OwnedFd = File::open("/dev/null").expect("null").into();
    let err_w = out_w.try_clone().expect("dup");
    let req = StartRoot {
        cid: cid.clone(),
        spec: bundle.spec(),
        bundle: Some(bundle.path_string()),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: Fds(vec![null, out_w, err_w]),
    };
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::AlreadyExists,
        &[&format!("{cid:?}")],
    );
    assert!(writers_all_closed(&out_r, PATIENCE));
    let (req, _output) = start_root_request(&unique("second-root"), &bundle);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::AlreadyExists,
        &["root container", &format!("{cid:?}")],
    );
    // The running root was not disturbed.
    let listed = processes(&sb.client, &cid);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].host_pid, started.pid);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[test]
fn a_graceful_stop_kills_and_removes_every_container() {
    let _host = shared_host();
    let (mut sb, _bundle, root_cid, root) = sleeping_root("shutdown");
    let sub_cid = unique("shutdown-sub");
    let sub_bundle = Bundle::new("ignored", &["sh", "-c", "sleep 30 & echo ready; wait"]);
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let sub = started.expect("StartSubcontainer");
    output.wait_for("ready\n");
    let mut host: Vec<(i32, u64)> = Vec::new();
    for cid in [&root_cid, &sub_cid] {
        assert_eq!(cgroup_dirs(SANDBOX, cid).len(), cgroup_hierarchies().len());
        for p in processes(&sb.client, cid) {
            host.push((p.host_pid, host_stat(p.host_pid).expect("exists").start));
        }
    }
    assert_eq!(host.len(), 3, "root init, sub init, its sleep: {host:?}");
    assert!(host.iter().any(|(p, _)| *p == root.pid) && host.iter().any(|(p, _)| *p == sub.pid));

    let status = sb.sv.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        still_there(&host),
        Vec::new(),
        "processes left after shutdown"
    );
    for cid in [&root_cid, &sub_cid] {
        assert_eq!(cgroup_dirs(SANDBOX, cid), Vec::<PathBuf>::new(), "{cid}");
        assert!(!sb.state_dir().join(cid).exists(), "state of {cid} left");
    }
}
