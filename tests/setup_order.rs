//! The order of a container's setup steps, black box, from the command
//! line: what clients (podman, docker) ask for and what only works when
//! each step comes at its place: the seccomp filter before the capability
//! drop when no_new_privs is off, sysctls before /proc/sys is made
//! read-only, `tmpcopyup` tmpfs mounts, and a shared rootfs propagation
//! before `pivot_root`.
//!
//! Needs root and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::bundle::Bundle;
use common::runtime::{unique, Outcome, Runtime};
use serde_json::{json, Value};

/// A profile that allows everything but `mkdir`, which fails with EPERM.
fn mkdir_denied_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })
}

/// Checks, from inside, that `mkdir` is refused with EPERM and what
/// credentials the process has.
const MKDIR_PROBE: &str = "mkdir /tmp/denied 2>/dev/null; echo mkdir=$?; \
     test -d /tmp/denied && echo created; \
     echo uid=$(id -u); grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status";

/// Runs the bundle to its end; returns what the command did.
fn run(rt: &Runtime, bundle: &Bundle, prefix: &str) -> Outcome {
    let id = unique(prefix);
    rt.cli(&["run", "--bundle", &bundle.path_string(), &id])
}

/// The run's stdout; fails the test, with its stderr, unless it exited 0.
fn run_ok(rt: &Runtime, bundle: &Bundle, prefix: &str) -> String {
    let outcome = run(rt, bundle, prefix);
    assert_eq!(
        outcome.code(),
        Some(0),
        "run failed: stderr {:?}, stdout {:?}",
        outcome.stderr,
        outcome.stdout
    );
    outcome.stdout
}

fn assert_mkdir_denied_for_unprivileged_user(stdout: &str) {
    assert!(stdout.contains("mkdir=1\n"), "{stdout}");
    assert!(!stdout.contains("created"), "{stdout}");
    assert!(stdout.contains("uid=1000\n"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2\n"), "{stdout}");
    assert!(stdout.contains("NoNewPrivs:\t0\n"), "{stdout}");
    assert!(
        stdout.contains("CapEff:\t0000000000000000\n"),
        "capabilities were not dropped: {stdout}"
    );
}

// ---------------------------------------------------------------------------
// Seccomp without no_new_privs
// ---------------------------------------------------------------------------

/// What docker and podman send: a seccomp profile without noNewPrivileges,
/// a non-root user, no capabilities. Without no_new_privs the kernel needs
/// CAP_SYS_ADMIN to install a filter: it must go in before the drop.
#[test]
fn a_seccomp_profile_without_no_new_privileges_applies_to_an_unprivileged_init() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new("seccomp", &["sh", "-c", MKDIR_PROBE]);
    bundle.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] =
            json!({"bounding": [], "effective": [], "permitted": [], "inheritable": []});
        c["linux"]["seccomp"] = mkdir_denied_profile();
    });
    let stdout = run_ok(&rt, &bundle, "seccomp-init");
    assert_mkdir_denied_for_unprivileged_user(&stdout);
}

#[test]
fn a_seccomp_profile_without_no_new_privileges_applies_to_an_unprivileged_exec() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new("seccomp-exec", &["sleep", "100"]);
    bundle.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = mkdir_denied_profile();
    });
    let id = unique("seccomp-exec");
    rt.ok(&["run", "--detach", "--bundle", &bundle.path_string(), &id]);
    let process = rt.pid_file("process.json");
    std::fs::write(
        &process,
        json!({
            "args": ["sh", "-c", MKDIR_PROBE],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 1000, "gid": 1000},
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "noNewPrivileges": false
        })
        .to_string(),
    )
    .expect("process.json");
    let outcome = rt.cli(&["exec", "--process", process.to_str().expect("utf-8"), &id]);
    assert_eq!(outcome.code(), Some(0), "exec failed: {}", outcome.stderr);
    assert_mkdir_denied_for_unprivileged_user(&outcome.stdout);
    rt.ok(&["delete", "--force", &id]);
}

// ---------------------------------------------------------------------------
// Sysctls and a read-only /proc/sys
// ---------------------------------------------------------------------------

/// docker adds net.ipv4 sysctls to every container, and masks /proc/sys
/// read-only: the values are written before it is.
#[test]
fn sysctls_are_written_before_proc_sys_is_made_read_only() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(
        "sysctl",
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax; \
             grep ' /proc/sys ' /proc/self/mounts | grep -c ' ro,'",
        ],
    );
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({
            "net.ipv4.ip_unprivileged_port_start": "0",
            "kernel.msgmax": "65536"
        });
    });
    let readonly = &bundle.config["linux"]["readonlyPaths"];
    assert!(
        readonly
            .as_array()
            .expect("readonlyPaths")
            .contains(&json!("/proc/sys")),
        "{readonly}"
    );
    assert_eq!(run_ok(&rt, &bundle, "sysctl"), "0\n65536\n1\n");
}

// ---------------------------------------------------------------------------
// tmpcopyup
// ---------------------------------------------------------------------------

/// A rootfs whose /data holds a file, a subdirectory, a relative symlink
/// and a symlink to the host's root (which must be copied as a link, not
/// followed).
fn rootfs_with_data(rootfs: &Path) {
    let data = rootfs.join("data");
    std::fs::create_dir_all(data.join("sub")).expect("data dirs");
    std::fs::write(data.join("hello"), "from the image\n").expect("hello");
    // Others may read and write it: the container's root has no
    // CAP_DAC_OVERRIDE.
    std::fs::set_permissions(data.join("hello"), std::fs::Permissions::from_mode(0o646))
        .expect("chmod hello");
    std::os::unix::fs::chown(data.join("hello"), Some(1234), Some(5678)).expect("chown hello");
    std::fs::write(data.join("sub/deep"), "deeper\n").expect("deep");
    std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o710))
        .expect("chmod sub");
    std::os::unix::fs::symlink("hello", data.join("link")).expect("link");
    std::os::unix::fs::symlink("/", data.join("hostroot")).expect("hostroot");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o751)).expect("chmod data");
}

#[test]
fn a_tmpcopyup_tmpfs_starts_with_the_image_s_content_and_leaves_the_image_alone() {
    let rt = Runtime::new();
    let script = "busybox stat -c '%n %a %u:%g' /data /data/hello /data/sub /fresh; \
                  cat /data/hello /data/sub/deep; \
                  readlink /data/link; readlink /data/hostroot; \
                  echo changed > /data/hello && cat /data/hello; \
                  touch /data/new && echo new-file; \
                  grep ' /data ' /proc/self/mounts | cut -d' ' -f3";
    let mut bundle = Bundle::new("copyup", &["sh", "-c", script]);
    rootfs_with_data(&bundle.rootfs());
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(json!({
            "destination": "/data", "type": "tmpfs", "source": "tmpfs",
            "options": ["tmpcopyup", "nosuid", "nodev"]
        }));
        // Not in the image: nothing to copy, the tmpfs keeps its own mode.
        mounts.push(json!({
            "destination": "/fresh", "type": "tmpfs", "source": "tmpfs",
            "options": ["tmpcopyup"]
        }));
    });
    let stdout = run_ok(&rt, &bundle, "copyup");
    assert_eq!(
        stdout,
        "/data 751 0:0\n\
         /data/hello 646 1234:5678\n\
         /data/sub 710 0:0\n\
         /fresh 1777 0:0\n\
         from the image\n\
         deeper\n\
         hello\n\
         /\n\
         changed\n\
         new-file\n\
         tmpfs\n"
    );
    // The image's own directory is as it was.
    let data = bundle.rootfs().join("data");
    assert_eq!(
        std::fs::read_to_string(data.join("hello")).expect("hello"),
        "from the image\n"
    );
    assert!(!data.join("new").exists());
    let meta = std::fs::metadata(data.join("hello")).expect("hello");
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
}

/// A read-only tmpcopyup tmpfs is filled, then made read-only.
#[test]
fn a_read_only_tmpcopyup_tmpfs_is_filled_before_it_is_made_read_only() {
    let rt = Runtime::new();
    let script = "cat /data/hello; touch /data/new 2>/dev/null || echo refused; \
                  grep ' /data ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1";
    let mut bundle = Bundle::new("copyup-ro", &["sh", "-c", script]);
    rootfs_with_data(&bundle.rootfs());
    bundle.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "tmpfs", "source": "tmpfs",
            "options": ["tmpcopyup", "ro"]
        }));
    });
    assert_eq!(
        run_ok(&rt, &bundle, "copyup-ro"),
        "from the image\nrefused\nro\n"
    );
}

// ---------------------------------------------------------------------------
// rootfsPropagation
// ---------------------------------------------------------------------------

#[test]
fn every_rootfs_propagation_starts_a_container() {
    let rt = Runtime::new();
    for propagation in [
        "shared", "rshared", "slave", "rslave", "private", "rprivate",
    ] {
        let mut bundle = Bundle::new("propagation", &["true"]);
        bundle.edit(|c| c["linux"]["rootfsPropagation"] = json!(propagation));
        let outcome = run(&rt, &bundle, "propagation");
        assert_eq!(
            outcome.code(),
            Some(0),
            "rootfsPropagation {propagation:?}: {}",
            outcome.stderr
        );
    }
}
