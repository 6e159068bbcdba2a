//! `sandvisor usage`, black box: sandboxes whose containers write known
//! amounts to a tmpfs (shmem, which stays charged while the file exists),
//! read through Usage.Collect (`usage`, `usage --full`) and through the
//! usage page (`usage --fd`), and bad input.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::bundle::Bundle;
use common::runtime::{unique, Runtime};
use common::PATIENCE;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

/// Room for what a sandbox holds besides the tmpfs file: its processes'
/// own pages, page tables, kernel objects, and v1's per-CPU charge
/// batches in `total`.
const MARGIN: u64 = 16 * MIB;

/// `sandvisor usage ARGS`, parsed.
fn usage_of(rt: &Runtime, args: &[&str]) -> Value {
    let out = rt.ok(&[&["usage"], args].concat());
    assert_eq!(out.lines().count(), 1, "one JSON object: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("usage printed {out:?}: {e}"))
}

/// A bundle whose process writes `mib` MiB to a file in its tmpfs /tmp,
/// then waits.
fn filling(mib: u64) -> Bundle {
    let script = format!("dd if=/dev/zero of=/tmp/fill bs=1M count={mib} 2>/dev/null; sleep 1000");
    Bundle::new("usage", &["sh", "-c", &script])
}

fn figure(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// Polls `usage` until the sandbox's shmem reaches `bytes` (the container
/// has written its file).
fn usage_once_filled(rt: &Runtime, id: &str, bytes: u64) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let usage = usage_of(rt, &[id]);
        if figure(&usage, "shmem") >= bytes {
            return usage;
        }
        assert!(
            Instant::now() < deadline,
            "shmem never reached {bytes}: {usage}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_within(value: &Value, key: &str, low: u64, high: u64) {
    let n = figure(value, key);
    assert!(
        (low..high).contains(&n),
        "{key} = {n}, expected {low}..{high}: {value}"
    );
}

#[test]
fn usage_reports_a_sandbox_s_tmpfs_by_call_and_through_its_page() {
    let rt = Runtime::new();
    let bundle = filling(64);
    let id = unique("usage");
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    let written = 64 * MIB;

    let usage = usage_once_filled(&rt, &id, written);
    let keys: Vec<&str> = usage
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "total",
        "anonymous",
        "page_cache",
        "mapped",
        "shmem",
        "kernel",
        "supervisor_rss",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "no per-container figures without --full");
    assert_within(&usage, "shmem", written, written + MARGIN);
    assert_within(&usage, "total", written, written + MARGIN);
    assert_within(&usage, "anonymous", 0, MARGIN);
    assert_within(&usage, "kernel", 0, MARGIN);
    assert_within(&usage, "supervisor_rss", 1, 100 * MIB);

    let full = usage_of(&rt, &["--full", &id]);
    assert_within(&full, "shmem", written, written + MARGIN);
    let containers = full["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{full}");
    let own = &containers[0];
    assert_eq!(own["id"], id.as_str());
    assert_eq!(own["in_sandbox_cgroup"], true);
    assert_within(own, "shmem", written, written + MARGIN);
    assert_within(own, "total", written, figure(&full, "total") + 1);
    for key in ["anonymous", "page_cache", "mapped", "kernel"] {
        assert!(own[key].is_u64(), "{key} in {own}");
    }

    // The page: the same figures, a sequence that is even and moves on.
    // Waits for two refreshes (one of them whole after `first`), however
    // late a loaded machine fires the supervisor's timer.
    let first = usage_of(&rt, &["--fd", &id]);
    let deadline = Instant::now() + PATIENCE;
    let second = loop {
        let page = usage_of(&rt, &["--fd", &id]);
        if figure(&page, "sequence") >= figure(&first, "sequence") + 4 {
            break page;
        }
        assert!(Instant::now() < deadline, "the page stayed at {page}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for page in [&first, &second] {
        assert_eq!(figure(page, "sequence") % 2, 0, "{page}");
        assert_within(page, "shmem", written, written + MARGIN);
        assert_within(page, "total", written, written + MARGIN);
        assert_within(page, "supervisor_rss", 1, 100 * MIB);
        let shmem = figure(page, "shmem");
        let called = figure(&usage, "shmem");
        assert!(shmem.abs_diff(called) < MARGIN, "{page} against {usage}");
    }
    let (t1, t2) = (
        figure(&first, "updated_unix_ns"),
        figure(&second, "updated_unix_ns"),
    );
    assert!(t2 > t1, "{t1} then {t2}");

    let clash = rt.cli(&["usage", "--fd", "--full", &id]);
    assert_eq!(clash.status.code(), Some(2), "{}", clash.stderr);

    rt.ok(&["delete", "--force", &id]);
    let gone = rt.cli(&["usage", &id]);
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(
        gone.stderr,
        format!("sandvisor: container {id:?} does not exist\n")
    );
}

#[test]
fn usage_of_an_unknown_container_fails_as_events_does() {
    let rt = Runtime::new();
    let usage = rt.cli(&["usage", "nope"]);
    let events = rt.cli(&["events", "nope"]);
    assert_eq!(usage.status.code(), Some(1));
    assert_eq!(events.status.code(), Some(1));
    assert_eq!(
        usage.stderr,
        "sandvisor: container \"nope\" does not exist\n"
    );
    assert_eq!(usage.stderr, events.stderr);
    assert_eq!(usage.stdout, "");
    for flag in ["--full", "--fd"] {
        let refused = rt.cli(&["usage", flag, "nope"]);
        assert_eq!(refused.status.code(), Some(1));
        assert_eq!(refused.stderr, usage.stderr);
    }
}

#[test]
fn usage_full_breaks_a_sandbox_down_and_leaves_out_a_cgroup_outside_it() {
    let rt = Runtime::new();
    let pod = unique("pod");
    let pause = Bundle::new("pod", &["sleep", "1000"]);
    rt.ok(&["run", "-d", "-b", &pause.path_string(), &pod]);

    let member_of_pod = |mib: u64, cgroups_path: Option<&str>| {
        let mut bundle = filling(mib);
        bundle.edit(|c| {
            c["annotations"] = json!({"io.sandvisor.sandbox-id": pod});
            if let Some(path) = cgroups_path {
                c["linux"]["cgroupsPath"] = json!(path);
            }
        });
        bundle
    };
    let inside = member_of_pod(32, None);
    let inside_id = unique("inside");
    rt.ok(&["run", "-d", "-b", &inside.path_string(), &inside_id]);
    // Its own cgroup, at the top of each hierarchy: not the sandbox's.
    let outside_cgroup = format!("/sandvisor-usage-test-{}", std::process::id());
    let outside = member_of_pod(16, Some(&outside_cgroup));
    let outside_id = unique("outside");
    rt.ok(&["run", "-d", "-b", &outside.path_string(), &outside_id]);

    usage_once_filled(&rt, &pod, 32 * MIB);
    let deadline = Instant::now() + PATIENCE;
    let full = loop {
        let full = usage_of(&rt, &["--full", &pod]);
        let filled = full["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .all(|c| c["id"] == pod.as_str() || figure(c, "shmem") >= 16 * MIB);
        if filled {
            break full;
        }
        assert!(Instant::now() < deadline, "never filled: {full}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The sandbox's figures are its own cgroup's: the outside container's
    // 16 MiB are not in them.
    assert_within(&full, "shmem", 32 * MIB, 32 * MIB + MARGIN);
    let containers = full["containers"].as_array().expect("containers");
    let find = |id: &str| {
        containers
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {full}"))
    };
    assert_eq!(containers.len(), 3, "{full}");
    let (root, member, apart) = (find(&pod), find(&inside_id), find(&outside_id));
    assert_within(root, "shmem", 0, MARGIN);
    assert_within(member, "shmem", 32 * MIB, 32 * MIB + MARGIN);
    assert_within(apart, "shmem", 16 * MIB, 16 * MIB + MARGIN);
    assert_eq!(
        (
            &root["in_sandbox_cgroup"],
            &member["in_sandbox_cgroup"],
            &apart["in_sandbox_cgroup"]
        ),
        (&json!(true), &json!(true), &json!(false))
    );
    // Any container of the sandbox names it.
    let through_member = usage_of(&rt, &[&inside_id]);
    assert_within(&through_member, "shmem", 32 * MIB, 32 * MIB + MARGIN);

    rt.ok(&["delete", "--force", &outside_id]);
    rt.ok(&["delete", "--force", &inside_id]);
    rt.ok(&["delete", "--force", &pod]);
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/memory")
            .join(outside_cgroup.trim_start_matches('/'))
            .exists(),
        "the outside cgroup was left behind"
    );
}
