//! Specs as docker and the OCI runtime validation suite write them, handled
//! as runc handles them: docker's block I/O weight of 0, kernel memory
//! settings, hugetlb limits, and hook failures named by their point.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bundle::Bundle;
use common::runtime::{unique, Runtime};
use common::SANDVISOR;
use serde_json::json;

/// The directory of process `pid`'s cgroup in the hierarchy that has
/// `controller`: its v1 one, else the v2 one.
fn cgroup_dir_of(pid: i64, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let v1 = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}")))
    });
    v1.unwrap_or_else(|| {
        let path = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a v2 line");
        let mount = if Path::new("/sys/fs/cgroup/unified").is_dir() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        PathBuf::from(format!("{mount}{path}"))
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// A detached container of `bundle`, and its init's pid.
fn run_detached(rt: &Runtime, bundle: &Bundle, prefix: &str) -> (String, i64) {
    let id = unique(prefix);
    rt.ok(&["run", "-d", "-b", &bundle.path_string(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    (id, pid)
}

#[test]
fn docker_s_block_io_weight_of_0_is_unset_as_runc_reads_it() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new("blkio", &["sleep", "100"]);
    bundle.edit(|c| c["linux"]["resources"]["blockIO"] = json!({"weight": 0, "leafWeight": 0}));
    let (id, pid) = run_detached(&rt, &bundle, "blkio");
    let blkio = cgroup_dir_of(pid, "blkio");
    rt.ok(&["update", "--blkio-weight", "0", &id]);

    // A real weight goes to CFQ's file, else BFQ's; with neither, the
    // refusal names both.
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| blkio.join(f).exists());
    let update = rt.cli(&["update", "--blkio-weight", "500", &id]);
    match weight_file {
        Some(file) => {
            assert_eq!(update.code(), Some(0), "{}", update.stderr);
            assert_eq!(read(&blkio.join(file)), "500");
        }
        None => {
            assert_eq!(update.code(), Some(1));
            assert!(
                update.stderr.contains("invalid_argument")
                    && update
                        .stderr
                        .contains("has no blkio.weight or blkio.bfq.weight file"),
                "{}",
                update.stderr
            );
        }
    }
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn kernel_memory_settings_are_ignored_with_a_warning_and_the_memory_limit_applies() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new("kmem", &["sleep", "100"]);
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 67_108_864, "kernel": 16_777_216, "kernelTCP": 8_388_608});
    });
    let log = rt.pid_file("supervisor.log");
    let log_arg = log.to_str().expect("utf-8");
    let id = unique("kmem");
    rt.ok(&[
        "--log",
        log_arg,
        "--log-format",
        "json",
        "run",
        "-d",
        "-b",
        &bundle.path_string(),
        &id,
    ]);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let memory = cgroup_dir_of(pid, "memory");
    let limit_file = if memory.join("memory.limit_in_bytes").exists() {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(read(&memory.join(limit_file)), "67108864");
    let logged = std::fs::read_to_string(&log).expect("supervisor log");
    let warned: Vec<String> = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|entry| entry["msg"] == "resource setting ignored")
        .map(|entry| entry["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        warned,
        [
            "linux.resources.memory.kernel",
            "linux.resources.memory.kernelTCP"
        ],
        "{logged}"
    );
    rt.ok(&["delete", "--force", &id]);
}

/// The hugetlb page sizes of this host, as cgroup file names have them
/// (2MB, 1GB).
fn huge_page_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kib: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kib {
                k if k >= 1 << 20 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            })
        })
        .collect()
}

/// Whether a hierarchy of this host has the hugetlb controller: a v1 one,
/// or the v2 one offering it.
fn host_has_hugetlb() -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let v1 = mounts
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o.trim() == "hugetlb"));
    let v2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .filter_map(|m| std::fs::read_to_string(format!("{m}/cgroup.controllers")).ok())
        .any(|c| c.split_whitespace().any(|c| c == "hugetlb"));
    v1 || v2
}

#[test]
fn hugetlb_limits_apply_where_the_host_has_the_controller_and_bad_page_sizes_are_refused() {
    let sizes = huge_page_sizes();
    if !host_has_hugetlb() || sizes.is_empty() {
        eprintln!("skipped: this host has no hugetlb controller or no huge page sizes");
        return;
    }
    let rt = Runtime::new();
    let limit: u64 = 2 << 30;
    let mut bundle = Bundle::new("hugetlb", &["sleep", "100"]);
    let limits: Vec<_> = sizes
        .iter()
        .map(|s| json!({"pageSize": s, "limit": limit}))
        .collect();
    bundle.edit(|c| c["linux"]["resources"]["hugepageLimits"] = json!(limits));
    let (id, pid) = run_detached(&rt, &bundle, "hugetlb");
    let dir = cgroup_dir_of(pid, "hugetlb");
    for size in &sizes {
        let v1 = dir.join(format!("hugetlb.{size}.limit_in_bytes"));
        let file = if v1.exists() {
            v1
        } else {
            dir.join(format!("hugetlb.{size}.max"))
        };
        assert_eq!(read(&file), limit.to_string(), "{size}");
    }
    rt.ok(&["delete", "--force", &id]);

    // The validation suite's wrong page size.
    bundle.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 1 << 30}])
    });
    let refused = rt.fails(&["run", "-b", &bundle.path_string(), &unique("hugetlb-3mb")]);
    assert!(
        refused.contains("invalid_argument") && refused.contains("hugetlb.3MB."),
        "{refused}"
    );
    assert_eq!(rt.ids(), Vec::<String>::new());
}

#[test]
fn hugetlb_limits_are_refused_naming_the_controller_where_no_hierarchy_has_it() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let v1_hugetlb = mounts
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o.trim() == "hugetlb"));
    if v1_hugetlb || !unified.join("cgroup.controllers").exists() {
        eprintln!("skipped: needs a hybrid host without a v1 hugetlb hierarchy");
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let mut bundle = Bundle::new("no-hugetlb", &["true"]);
    bundle.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 1 << 30}])
    });
    // A host without cgroup v2: its only home for hugetlb is gone.
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\"")
        .arg(SANDVISOR)
        .arg("--root")
        .arg(root.path())
        .args(["run", "-b", &bundle.path_string(), &unique("no-hugetlb")])
        .output()
        .expect("unshare");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed_precondition")
            && stderr
                .contains("cannot set hugetlb limits: no cgroup hierarchy of this host has it"),
        "{stderr}"
    );
}

#[test]
fn a_failing_prestart_hook_fails_create_and_is_named_prestart() {
    let rt = Runtime::new();
    let failing = json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]);
    for point in ["prestart", "createRuntime"] {
        let mut bundle = Bundle::new("hooks", &["true"]);
        bundle.edit(|c| c["hooks"] = json!({ point: failing }));
        let id = unique(point);
        let refused = rt.fails(&["create", "-b", &bundle.path_string(), &id]);
        assert!(
            refused.contains(&format!("{point} hook")) && refused.contains("exit status: 3"),
            "{point}: {refused}"
        );
        let other = if point == "prestart" {
            "createRuntime"
        } else {
            "prestart"
        };
        assert!(!refused.contains(other), "{point}: {refused}");
        assert_eq!(rt.ids(), Vec::<String>::new(), "{point}");
    }
    // Each point's hooks run in the spec's order, prestart's first.
    let out = tempfile::tempdir().expect("temp dir");
    let record = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}/order", out.path().display())]});
    let mut bundle = Bundle::new("hooks", &["true"]);
    bundle.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [record("createRuntime")],
            "prestart": [record("prestart-0"), record("prestart-1")],
        })
    });
    let id = unique("hook-order");
    rt.ok(&["create", "-b", &bundle.path_string(), &id]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("order")).expect("order"),
        "prestart-0\nprestart-1\ncreateRuntime\n"
    );
    rt.ok(&["delete", "--force", &id]);
}
