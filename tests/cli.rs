//! `sandvisor spec` and `sandvisor features`: the files and documents a
//! user of runc expects from them. Neither needs root.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const SANDVISOR: &str = env!("CARGO_BIN_EXE_sandvisor");

fn sandvisor(args: &[&str]) -> Output {
    Command::new(SANDVISOR)
        .args(args)
        .output()
        .expect("run sandvisor")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[test]
fn spec_writes_runc_s_starting_config_and_never_overwrites_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().to_str().expect("utf-8");
    let out = sandvisor(&["spec", "--bundle", bundle]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"");
    let path = dir.path().join("config.json");
    let written = std::fs::read(&path).expect("config.json");
    let spec: Value = serde_json::from_slice(&written).expect("JSON");
    // It is a spec oci-spec reads, and runc's container.
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone()).expect("an OCI spec");
    assert_eq!(
        spec["root"],
        serde_json::json!({"path": "rootfs", "readonly": true})
    );
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(strings(&spec["process"]["args"]), ["sh"]);
    assert_eq!(spec["process"]["cwd"], "/");
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    let runc_caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    for set in ["bounding", "effective", "permitted", "ambient"] {
        assert_eq!(
            strings(&spec["process"]["capabilities"][set]),
            runc_caps,
            "{set}"
        );
    }
    assert!(spec["process"]["capabilities"].get("inheritable").is_none());
    let namespaces: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .map(|n| n["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        namespaces,
        ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    );
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": false, "access": "rwm"}])
    );
    let mounts: Vec<&str> = spec["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["destination"].as_str().expect("destination"))
        .collect();
    assert_eq!(
        mounts,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup"
        ]
    );
    assert!(strings(&spec["linux"]["maskedPaths"]).contains(&"/proc/kcore"));
    assert!(strings(&spec["linux"]["readonlyPaths"]).contains(&"/proc/sys"));
    // The same bytes every time.
    let again = tempfile::tempdir().expect("temp dir");
    let out = sandvisor(&["spec", "--bundle", again.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(again.path().join("config.json")).expect("read"),
        written
    );

    // A second run refuses, as runc does, and leaves the file alone.
    let out = sandvisor(&["spec", "--bundle", bundle]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "sandvisor: File {} exists. Remove it first\n",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).expect("read"), written);
}

#[test]
fn spec_refuses_rootless_and_a_missing_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().to_str().expect("utf-8");
    let out = sandvisor(&["spec", "--rootless", "--bundle", bundle]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sandvisor: unsupported: --rootless: rootless containers need new user namespaces, which are not supported yet\n"
    );
    assert!(!dir.path().join("config.json").exists());
    let missing = dir.path().join("nope");
    let out = sandvisor(&["spec", "--bundle", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "sandvisor: write {}: no such file or directory (os error 2)\n",
            missing.join("config.json").display()
        )
    );
}

#[test]
fn features_says_what_this_runtime_supports() {
    let out = sandvisor(&["features"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"),
        "{text}"
    );
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(doc["ociVersionMax"], "1.1.0");
    assert_eq!(
        strings(&doc["hooks"]),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let options = strings(&doc["mountOptions"]);
    assert_eq!(options.len(), 49);
    for option in [
        "ro",
        "rbind",
        "rro",
        "rnosymfollow",
        "rslave",
        "nosuid",
        "tmpcopyup",
    ] {
        assert!(options.contains(&option), "{option}");
    }
    assert!(!options.contains(&"idmap"));
    let linux = &doc["linux"];
    let namespaces = strings(&linux["namespaces"]);
    assert_eq!(
        namespaces,
        ["cgroup", "ipc", "mount", "network", "pid", "time", "uts"]
    );
    let caps = strings(&linux["capabilities"]);
    assert!(caps.contains(&"CAP_SYS_ADMIN") && caps.contains(&"CAP_CHECKPOINT_RESTORE"));
    assert_eq!(
        linux["cgroup"],
        serde_json::json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false})
    );
    let seccomp = &linux["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    let actions = strings(&seccomp["actions"]);
    assert!(actions.contains(&"SCMP_ACT_ERRNO") && actions.contains(&"SCMP_ACT_KILL_PROCESS"));
    assert!(!actions.contains(&"SCMP_ACT_NOTIFY"));
    assert_eq!(strings(&seccomp["operators"]).len(), 7);
    assert!(strings(&seccomp["archs"]).contains(&"SCMP_ARCH_X86_64"));
    assert!(
        !strings(&seccomp["supportedFlags"]).contains(&"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
    );
    assert_eq!(strings(&seccomp["knownFlags"]).len(), 4);
    assert_eq!(linux["apparmor"]["enabled"], false);
    assert_eq!(linux["selinux"]["enabled"], false);
    assert_eq!(
        doc["annotations"]["sandvisor.version"],
        env!("CARGO_PKG_VERSION")
    );
}
