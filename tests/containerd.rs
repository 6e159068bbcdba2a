//! containerd drives sandvisor as it drives runc: `ctr run --runc-binary`
//! through Debian's containerd and its io.containerd.runc.v2 shim, with an
//! image imported from an OCI archive built here (no registry).
//!
//! The test starts its own containerd (config, root and state in a temp
//! dir) in a private mount namespace with a tmpfs on /run, since
//! containerd 1.6 hard-codes /run/containerd/s and the shim's runc root
//! under /run: the host's /run is never touched. Needs root, containerd
//! and /bin/busybox (test.sh installs both).
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::bundle::{APPLETS, BUSYBOX};
use common::{PATIENCE, SANDVISOR};
use serde_json::json;

/// The image's name, as its index annotates it.
const IMAGE: &str = "localhost/sandvisor-test/busybox:latest";

/// A containerd of the test's own, stopped when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

/// What a command did.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Containerd {
    fn start() -> Containerd {
        for program in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .expect("sh")
                    .success(),
                "{program} is missing: install containerd (test.sh does)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_str().expect("utf-8").to_owned();
        std::fs::create_dir_all(dir.path().join("fifo")).expect("fifo dir");
        let config = format!(
            "version = 2\n\
             root = \"{path}/root\"\n\
             state = \"{path}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{path}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{path}/containerd.sock.ttrpc\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("config.toml");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log");
        let daemon = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs tmpfs /run && exec containerd --config {path}/config.toml"
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(20);
        while containerd.ctr(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "containerd did not serve: {}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    fn fifo_dir(&self) -> String {
        self.dir.path().join("fifo").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr -a SOCKET ARGS`, with a deadline.
    fn ctr(&self, args: &[&str]) -> Outcome {
        let socket = self.dir.path().join("containerd.sock");
        let stdout = self.dir.path().join("ctr.out");
        let stderr = self.dir.path().join("ctr.err");
        let mut child = Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout"))
            .stderr(std::fs::File::create(&stderr).expect("stderr"))
            .spawn()
            .expect("spawn ctr");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait ctr") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ctr {args:?} did not exit; containerd log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Outcome {
            status,
            stdout: std::fs::read_to_string(&stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
        }
    }

    /// Runs a ctr command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let outcome = self.ctr(args);
        assert!(
            outcome.status.success(),
            "ctr {args:?}: {}\n{}",
            outcome.stderr,
            self.log()
        );
        outcome.stdout
    }

    /// `ctr run OPTIONS --runc-binary SANDVISOR --fifo-dir F IMAGE ID
    /// COMMAND`: container `id` of the test image, run by sandvisor.
    fn run(&self, options: &[&str], id: &str, command: &[&str]) -> Outcome {
        let fifo = self.fifo_dir();
        let mut args = vec!["run"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--runc-binary", SANDVISOR, "--fifo-dir", &fifo, IMAGE, id]);
        args.extend_from_slice(command);
        self.ctr(&args)
    }

    /// The status `ctr task ls` gives `id`.
    fn task_status(&self, id: &str) -> Option<String> {
        self.ok(&["task", "ls"]).lines().find_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells.first() == Some(&id)).then(|| cells.get(2).map(|s| s.to_string()))?
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // What a failed test left: its tasks and containers go first, so
        // that no shim or sandbox outlives containerd.
        for task in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["task", "delete", "--force", task]);
        }
        for container in self.ctr(&["containers", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["containers", "delete", container]);
        }
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")[..64].to_owned()
}

/// Stores `path` as a blob of the layout in `oci`; returns its descriptor.
fn add_blob(oci: &Path, path: &Path, media_type: &str) -> serde_json::Value {
    let digest = sha256(path);
    std::fs::copy(path, oci.join("blobs/sha256").join(&digest)).expect("blob");
    json!({
        "mediaType": media_type,
        "digest": format!("sha256:{digest}"),
        "size": std::fs::metadata(path).expect("size").len(),
    })
}

/// An OCI image archive of a static busybox: one uncompressed layer.
fn busybox_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dir");
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    let layer = dir.join("layer.tar");
    let tarred = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .expect("tar");
    assert!(tarred.success());
    let oci = dir.join("oci");
    std::fs::create_dir_all(oci.join("blobs/sha256")).expect("blobs");
    let layer_desc = add_blob(&oci, &layer, "application/vnd.oci.image.layer.v1.tar");
    let config = dir.join("config.json");
    let config_json = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    });
    std::fs::write(&config, config_json.to_string()).expect("config");
    let config_desc = add_blob(&oci, &config, "application/vnd.oci.image.config.v1+json");
    let manifest = dir.join("manifest.json");
    let manifest_json = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    });
    std::fs::write(&manifest, manifest_json.to_string()).expect("manifest");
    let mut manifest_desc = add_blob(
        &oci,
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
    );
    manifest_desc["annotations"] = json!({
        "io.containerd.image.name": IMAGE,
        "org.opencontainers.image.ref.name": "latest",
    });
    let index = json!({"schemaVersion": 2, "manifests": [manifest_desc]});
    std::fs::write(oci.join("index.json"), index.to_string()).expect("index");
    std::fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let archive = dir.join("image.tar");
    let tarred = Command::new("tar")
        .arg("-C")
        .arg(&oci)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(tarred.success());
    archive
}

/// The supervisor of sandbox `id` and its spawners (their command line
/// says `boot --id ID`).
fn supervisors_of(id: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.windows(3)
                    .any(|w| w[0] == b"boot" && w[1] == b"--id" && w[2] == id.as_bytes())
            })
        })
        .collect()
}

#[test]
fn ctr_runs_execs_pauses_kills_and_deletes_through_sandvisor() {
    let containerd = Containerd::start();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = busybox_image(work.path());
    containerd.ok(&["images", "import", archive.to_str().expect("utf-8")]);
    let images = containerd.ok(&["images", "ls", "-q"]);
    assert!(images.lines().any(|l| l == IMAGE), "{images}");
    let fifo = containerd.fifo_dir();
    let suffix = std::process::id();

    // In the foreground: output, then the exit status.
    let once = format!("once-{suffix}");
    let ran = containerd.run(
        &["--rm"],
        &once,
        &["sh", "-c", "echo hello from $$; exit 3"],
    );
    assert_eq!(ran.stdout, "hello from 1\n", "{}", ran.stderr);
    assert_eq!(ran.status.code(), Some(3), "{}", ran.stderr);
    assert!(supervisors_of(&once).is_empty());

    // Detached: exec, ps, pause and resume, kill, delete.
    let id = format!("long-{suffix}");
    let started = containerd.run(
        &["-d", "--memory-limit", "67108864"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'exit 5' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert!(started.status.success(), "{}", started.stderr);
    assert_eq!(containerd.task_status(&id).as_deref(), Some("RUNNING"));
    // The shim reads the task's cgroup through the pid it was given.
    let metrics = containerd.ok(&["task", "metrics", "--format", "json", &id]);
    assert!(
        metrics.contains("67108864"),
        "the memory limit in {metrics}"
    );
    // The supervisor, and its spawners (forks: the same command line).
    assert!(!supervisors_of(&id).is_empty());

    let exec = containerd.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "probe",
        &id,
        "sh",
        "-c",
        "echo exec in $(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(exec.stdout, "exec in sh\n", "{}", exec.stderr);
    assert_eq!(exec.status.code(), Some(4), "{}", exec.stderr);

    let ps = containerd.ok(&["task", "ps", &id]);
    let pids: Vec<&str> = ps.lines().skip(1).collect();
    assert!(!pids.is_empty(), "{ps}");

    containerd.ok(&["task", "pause", &id]);
    assert_eq!(containerd.task_status(&id).as_deref(), Some("PAUSED"));
    containerd.ok(&["task", "resume", &id]);
    assert_eq!(containerd.task_status(&id).as_deref(), Some("RUNNING"));

    containerd.ok(&["task", "kill", &id]);
    let deadline = Instant::now() + PATIENCE;
    while containerd.task_status(&id).as_deref() != Some("STOPPED") {
        assert!(Instant::now() < deadline, "the task did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deleted = containerd.ctr(&["task", "delete", &id]);
    assert!(deleted.status.success(), "{}", deleted.stderr);
    assert!(
        deleted.stderr.contains("exit code 5"),
        "the trap's status: {}",
        deleted.stderr
    );
    containerd.ok(&["containers", "delete", &id]);
    assert_eq!(containerd.task_status(&id), None);
    let deadline = Instant::now() + PATIENCE;
    while !supervisors_of(&id).is_empty() {
        assert!(Instant::now() < deadline, "the supervisor outlived delete");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A failed create says why, from the runtime's JSON log.
    let bad = format!("bad-{suffix}");
    let failed = containerd.run(&["--rm", "--rdt-class", "gold"], &bad, &["true"]);
    assert!(!failed.status.success());
    assert!(
        failed
            .stderr
            .contains("linux.intelRdt: intel rdt is not supported"),
        "{}",
        failed.stderr
    );
    let _ = containerd.ctr(&["containers", "delete", &bad]);
}
