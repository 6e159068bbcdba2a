//! Podman in private state: `--root`, `--runroot` and `--tmpdir` in a temp
//! dir, cgroupfs, events in a file there, `--network none` for every
//! container, a containers.conf of its own (CONTAINERS_CONF) that names
//! sandvisor in `runtime_supports_json` (so that podman passes it `--log`
//! and `--log-format json`), and `--runtime PATH`.
//!
//! Podman gives the runtime no `--root` (and `--runtime-flag root=` is not
//! passed on by the `container cleanup` that conmon runs, which would
//! leave state behind), so the runtimes keep their state under their
//! default roots, /run/runc and /run/sandvisor: the checks there look for
//! the test's container ids only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::engine::Engine;
use super::host::{
    image_tarball, kill_processes_naming, mounts_of, unmount_under, Remains, Runtime,
};

/// The image `podman import` makes.
const IMAGE: &str = "localhost/sandvisor-test/busybox:latest";

pub struct Podman {
    runtime: Runtime,
    dir: tempfile::TempDir,
    baseline: BTreeSet<String>,
}

impl Podman {
    /// A private store with the image imported.
    pub fn new(runtime: Runtime) -> Podman {
        for program in ["podman", "conmon", "catatonit"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .expect("sh")
                    .success(),
                "{program} is missing: install podman (test.sh does)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // Podman raises RLIMIT_NOFILE and RLIMIT_NPROC past what this
        // process may when it has no CAP_SYS_RESOURCE (as in some
        // sandboxes): lower limits are always allowed.
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\n\
             runtime_supports_json = [\"runc\", \"sandvisor\"]\n\
             [engine.runtimes]\n\
             sandvisor = [\"{}\"]\n",
            Runtime::Sandvisor.path()
        );
        std::fs::write(dir.path().join("containers.conf"), conf).expect("containers.conf");
        let mut podman = Podman {
            runtime,
            dir,
            baseline: BTreeSet::new(),
        };
        let tarball = image_tarball(podman.dir.path());
        podman.ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV PATH=/bin",
            tarball.to_str().expect("utf-8"),
            IMAGE,
        ]);
        podman.baseline = mounts_of("self", &[podman.dir.path().to_owned()], &[]);
        // The overlay driver's home, which it mounts on itself while any
        // layer is mounted: the store's, not a container's.
        podman
            .baseline
            .insert(podman.path("root/overlay").display().to_string());
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every container (`kind` "container") or pod ("pod") of the
    /// store, from its events file.
    fn ids(&self, kind: &str) -> Vec<String> {
        let events =
            std::fs::read_to_string(self.path("tmp/events/events.log")).unwrap_or_default();
        let ids: BTreeSet<String> = events
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["Type"] == kind)
            .filter_map(|event| event["ID"].as_str().map(str::to_owned))
            .filter(|id| id.len() == 64)
            .collect();
        ids.into_iter().collect()
    }
}

impl Engine for Podman {
    const CLIENT: &'static str = "podman";
    const TMPFS_COPIES_UP: bool = true;
    const READ_ONLY_KEEPS_TMP: bool = true;
    const INIT_COMM: &'static str = "podman-init";

    fn runtime(&self) -> Runtime {
        self.runtime
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .arg("--volumepath")
            .arg(self.path("volumes"))
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "overlay",
                "--runtime",
                self.runtime.path(),
            ]);
        command
    }

    fn run_options(&self, options: &[&str]) -> Vec<String> {
        // A pod's members take the pod's network.
        if options.contains(&"--pod") {
            Vec::new()
        } else {
            vec!["--network".to_owned(), "none".to_owned()]
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn image(&self) -> &str {
        IMAGE
    }

    fn diagnostics(&self) -> String {
        String::new()
    }

    fn assert_nothing_left(&self) {
        let roots = [Runtime::Runc, Runtime::Sandvisor]
            .iter()
            .map(|r| PathBuf::from(r.default_root()))
            .collect();
        Remains {
            ids: self.ids("container"),
            pods: self.ids("pod"),
            state_dirs: roots,
            empty_dirs: Vec::new(),
            mount_namespaces: Vec::new(),
            private: vec![self.dir.path().to_owned()],
            baseline: self.baseline.clone(),
            own: Vec::new(),
        }
        .assert_none();
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // What a failed test left.
        let _ = self.cli(&["pod", "rm", "--all", "--force", "--time", "0"]);
        let _ = self.cli(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.cli(&["rmi", "--all", "--force"]);
        let mut ids = self.ids("container");
        let pods = self.ids("pod");
        ids.extend(pods.iter().cloned());
        kill_processes_naming(&ids, &[]);
        unmount_under(self.dir.path());
        // The pods' cgroups podman leaves (see `Remains::pods`).
        for controller in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for pod in &pods {
                let _ = std::fs::remove_dir(controller.path().join("libpod_parent").join(pod));
            }
        }
    }
}
