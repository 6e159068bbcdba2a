//! Isolation, black box: a root container isolated and run as its spec
//! says (namespaces, root file system, masked and read-only paths,
//! capabilities, seccomp, rlimits, its user), and device rules, also on a
//! host whose cgroups are v2 only.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use common::bundle::Bundle;
use common::caps::*;
use common::command::*;
use common::host::*;
use common::rpc::*;
use common::runtime::unique;
use common::SANDVISOR;
use serde_json::json;

// ---------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------

/// What the isolation test's init reports about itself.
const ISOLATION_SCRIPT: &str = r#"
ps -o pid,comm > /tmp/ps
echo "pid=$$"
echo "hostname=$(hostname)"
echo "marker=$(cat /marker)"
echo "etc_hostname=$(cat /etc/hostname 2>&1)"
echo "timer_list=$(cat /proc/timer_list 2>&1 | wc -c)"
echo "keys=$(cat /proc/keys 2>&1 | wc -c)"
while read -r l; do case "$l" in Cap*|NoNewPrivs*|Seccomp:*) echo "status=$l";; esac; done < /proc/$$/status
echo "nofile=$(ulimit -n)"
mkdir /tmp/x 2>/tmp/mkdir.err; echo "mkdir_rc=$?"
echo "mkdir_err=$(cat /tmp/mkdir.err)"
if test -e /tmp/x; then echo "x_exists=yes"; else echo "x_exists=no"; fi
touch /tmp/y; echo "touch_rc=$?"
if test -e /tmp/y; then echo "y_exists=yes"; else echo "y_exists=no"; fi
echo "sysctl=$( { echo changed > /proc/sys/kernel/hostname; } 2>&1)"
echo "hostname_after=$(hostname)"
echo "rootfs_write=$(touch /newfile 2>&1)"
while read -r a b; do echo "ps=$a $b"; done < /tmp/ps
"#;

#[test]
fn a_root_container_is_isolated_as_its_spec_says() {
    let _host = shared_host();
    // Masked paths that exist and are non-empty on this host.
    for host_file in ["/proc/timer_list", "/proc/keys"] {
        let len = std::fs::read(host_file)
            .unwrap_or_else(|e| panic!("read host {host_file}: {e}"))
            .len();
        assert!(
            len > 0,
            "host {host_file} is empty: the check would be void"
        );
    }
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();

    let sb = Sandbox::boot();
    let cid = unique("iso");
    let hostname = format!("h-{}", &cid[..cid.len().min(40)]);
    let mut bundle = Bundle::new(&hostname, &["sh", "-c", ISOLATION_SCRIPT]);
    std::fs::write(bundle.rootfs().join("marker"), format!("marker of {cid}")).expect("marker");
    bundle.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let (started, mut output) = start_root(&sb.client, &cid, &bundle);
    assert!(started.pid > 1, "host pid {}", started.pid);
    assert_ne!(started.pid as u32, sb.sv.pid());
    let stdout = output.stdout();
    let stderr = output.stderr();
    assert_eq!(
        exit_code(wait(&sb.client, &cid)),
        Some(0),
        "stderr: {stderr}"
    );
    assert_eq!(stderr, "", "stdout: {stdout}");
    let kv = pairs(&stdout);

    // Its own pid namespace: pid 1, and only its own processes.
    assert_eq!(value(&kv, "pid"), "1");
    let ps: Vec<Vec<String>> = kv
        .iter()
        .filter(|(k, _)| k == "ps")
        .map(|(_, v)| v.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(ps.len(), 3, "header, sh, ps: {ps:?}");
    assert_eq!(ps[0], ["PID", "COMMAND"]);
    assert_eq!(ps[1], ["1", "sh"]);
    assert_eq!(ps[2][1], "ps", "{ps:?}");

    // Its own hostname, from the spec.
    assert_eq!(value(&kv, "hostname"), hostname);

    // The bundle's root filesystem, not the host's.
    assert_eq!(value(&kv, "marker"), format!("marker of {cid}"));
    assert_eq!(
        value(&kv, "etc_hostname"),
        "cat: can't open '/etc/hostname': No such file or directory",
        "host /etc/hostname is {host_hostname:?}"
    );

    // Masked paths read empty.
    assert_eq!(value(&kv, "timer_list"), "0");
    assert_eq!(value(&kv, "keys"), "0");

    // Capabilities exactly as the spec says; no_new_privs; seccomp filter.
    let status: String = kv
        .iter()
        .filter(|(k, _)| k == "status")
        .map(|(_, v)| format!("{v}\n"))
        .collect();
    let config = &bundle.config;
    assert_eq!(
        status_field(&status, "CapEff"),
        spec_capability_mask(config, "effective")
    );
    assert_eq!(
        status_field(&status, "CapPrm"),
        spec_capability_mask(config, "permitted")
    );
    assert_eq!(
        status_field(&status, "CapBnd"),
        spec_capability_mask(config, "bounding")
    );
    assert_eq!(status_field(&status, "CapEff"), "0000000020000420");
    assert_eq!(status_field(&status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");

    // rlimits.
    assert_eq!(value(&kv, "nofile"), "1024");

    // seccomp: mkdir is refused with EPERM; other calls work.
    assert_eq!(value(&kv, "mkdir_rc"), "1");
    assert_eq!(
        value(&kv, "mkdir_err"),
        "mkdir: can't create directory '/tmp/x': Operation not permitted"
    );
    assert_eq!(value(&kv, "x_exists"), "no");
    assert_eq!(value(&kv, "touch_rc"), "0");
    assert_eq!(value(&kv, "y_exists"), "yes");

    // Read-only paths and a read-only root.
    assert_eq!(
        value(&kv, "sysctl"),
        "sh: can't create /proc/sys/kernel/hostname: Read-only file system"
    );
    assert_eq!(value(&kv, "hostname_after"), hostname);
    assert_eq!(
        value(&kv, "rootfs_write"),
        "touch: /newfile: Read-only file system"
    );
    assert!(!bundle.rootfs().join("newfile").exists());
}

#[test]

fn a_root_container_runs_as_its_spec_user() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("user");
    let mut bundle = Bundle::new(
        "user",
        &[
            "sh",
            "-c",
            &format!("echo \"uid=$(id -u)\"; echo \"gid=$(id -g)\"; {OWN_CAPS}"),
        ],
    );
    bundle.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let (req, mut output) = start_root_request(&cid, &bundle);
    // Today: permission_denied, "drop bounding capability \"0\": operation
    // not permitted (errno 1)"; without "capabilities" in the spec it runs.
    call(&sb.client, req).expect("StartRoot as uid 1000");
    let stdout = output.stdout();
    assert_eq!(wait(&sb.client, &cid), 0, "stderr: {}", output.stderr());
    let kv = pairs(&stdout);
    assert_eq!(value(&kv, "uid"), "1000");
    assert_eq!(value(&kv, "gid"), "1000");
    assert_eq!(
        status_field(&stdout, "CapBnd"),
        spec_capability_mask(&bundle.config, "bounding")
    );
    // runc's semantics: capset after setuid, then execve as non-root
    // without ambient capabilities leaves none permitted or effective.
    assert_eq!(status_field(&stdout, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(&stdout, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&stdout, "NoNewPrivs"), "1");
}

// ---------------------------------------------------------------------------
// Devices, and a cgroup v2-only host
// ---------------------------------------------------------------------------

/// Runs `sandvisor --root ROOT ARGS...` in a private mount namespace where
/// /sys/fs/cgroup is the cgroup2 hierarchy alone: what the supervisor sees
/// on a v2-only host.
fn run_on_v2_only_host(root: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut all = vec![
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"",
        SANDVISOR,
        "--root",
        root,
    ];
    all.extend_from_slice(args);
    run_program("unshare", &all, Duration::from_secs(30))
}

/// A node with /dev/kmsg's numbers (outside runc's allow list; anyone may
/// open it for writing) where the built-in spec's container can reach it:
/// its root is the host's, read-only, and its /tmp is its own (so not
/// under /tmp, where a checkout, and so the target directory, may be). Only
/// the device cgroup stands in the way.
fn kmsg_node() -> (tempfile::TempDir, String) {
    let nodes = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let kmsg = nodes.path().join("kmsg");
    nix::sys::stat::mknod(
        &kmsg,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 11),
    )
    .expect("mknod");
    let kmsg = kmsg.to_str().expect("utf-8").to_owned();
    (nodes, kmsg)
}

/// What the built-in spec's container runs to show its device rules.
fn device_script(kmsg: &str) -> String {
    format!(
        "echo x > /dev/null && echo null-writable; \
         dd if=/dev/null of={kmsg} count=0 status=none 2>&1 || echo refused"
    )
}

/// What it prints when they are in force.
fn device_script_output(kmsg: &str) -> String {
    format!("null-writable\ndd: failed to open '{kmsg}': Operation not permitted\nrefused\n")
}

#[test]
fn run_works_on_a_cgroup_v2_only_host() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-v2");
    let (_nodes, kmsg) = kmsg_node();
    let script = format!("grep ^0:: /proc/self/cgroup; {}", device_script(&kmsg));
    let (status, stdout, stderr) =
        run_on_v2_only_host(root_arg, &["run", "--id", &id, "--", "sh", "-c", &script]);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The built-in spec's device rules hold there too (an eBPF program).
    assert_eq!(
        stdout,
        format!("0::/sandvisor/{id}/{id}\n{}", device_script_output(&kmsg)),
        "stderr: {stderr}"
    );
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
}

#[test]
fn run_built_in_spec_denies_devices_outside_runcs_list() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-devices");
    let (_nodes, kmsg) = kmsg_node();
    let script = device_script(&kmsg);
    let (status, stdout, stderr) = run_cli(
        &[
            "--root", root_arg, "run", "--id", &id, "--", "sh", "-c", &script,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stdout, device_script_output(&kmsg), "stderr: {stderr}");
}

#[test]
fn bundle_device_rules_apply_on_a_cgroup_v2_only_host() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-v2-devices");
    let mut bundle = Bundle::new(
        "devices",
        &[
            "sh",
            "-c",
            "echo x > /dev/null && echo null-writable; \
             dd if=/dev/null of=/dev/kmsg count=0 2>/dev/null && echo kmsg-writable; \
             dd if=/dev/null of=/dev/fuse count=0 2>&1 || echo refused",
        ],
    );
    // Two nodes made in the container's /dev (mknod is allowed for every
    // device); the rules allow writing to the first only.
    bundle.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}
        ]);
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
        ]);
    });
    let (status, stdout, stderr) = run_on_v2_only_host(
        root_arg,
        &["run", "--id", &id, "--bundle", &bundle.path_string()],
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        stdout,
        "null-writable\n\
         kmsg-writable\n\
         dd: can't open '/dev/fuse': Operation not permitted\n\
         refused\n",
        "stderr: {stderr}"
    );
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
}
