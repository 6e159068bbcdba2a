//! A dockerd of the test's own: data root, pid file, socket and
//! daemon.json in a temp dir, its own containerd (the one dockerd starts
//! under its exec root), no iptables, no bridge, cgroupfs, and sandvisor
//! added as a runtime. It runs in a private mount namespace with a tmpfs
//! on /run (containerd 1.6 puts its shims' sockets under /run/containerd)
//! and a private /etc/docker (where dockerd writes its key): the host's are
//! never touched. Its exec root is /run/docker on that tmpfs (as long as a
//! default install's /var/run/docker), or a deliberately long one in the
//! temp dir. Stopped by its pid when dropped.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::engine::Engine;
use super::host::{
    image_tarball, kill_processes_naming, mounts_of, stop_pid, unmount_under, wait_until, Remains,
    Runtime,
};

/// Debian's client (/usr/local/bin/docker may be another).
const DOCKER: &str = "/usr/bin/docker";
/// The image `docker import` makes.
const IMAGE: &str = "sandvisor-test/busybox:latest";

pub struct Docker {
    runtime: Runtime,
    dir: tempfile::TempDir,
    exec_root: PathBuf,
    socket: String,
    daemon: Child,
    pid: i32,
    baseline: BTreeSet<String>,
}

impl Docker {
    /// A daemon whose exec root is /run/docker (its private /run).
    pub fn start(runtime: Runtime) -> Docker {
        Docker::start_with_exec_root(runtime, None)
    }

    /// A daemon whose exec root is the temp dir's `name`.
    pub fn start_with_long_exec_root(runtime: Runtime, name: &str) -> Docker {
        Docker::start_with_exec_root(runtime, Some(name))
    }

    fn start_with_exec_root(runtime: Runtime, name: Option<&str>) -> Docker {
        for program in ["dockerd", "containerd", "containerd-shim-runc-v2", DOCKER] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .expect("sh")
                    .success(),
                "{program} is missing: install docker.io (test.sh does)"
            );
        }
        // The private /etc/docker is mounted over this one.
        std::fs::create_dir_all("/etc/docker").expect("/etc/docker");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        let exec_root = match name {
            Some(name) => path.join(name),
            None => PathBuf::from("/run/docker"),
        };
        let socket = format!("unix://{}", path.join("docker.sock").display());
        std::fs::create_dir_all(path.join("etc-docker")).expect("etc-docker");
        let config = serde_json::json!({
            "runtimes": {"sandvisor": {"path": Runtime::Sandvisor.path()}},
        });
        std::fs::write(path.join("daemon.json"), config.to_string()).expect("daemon.json");
        let log = std::fs::File::create(path.join("dockerd.log")).expect("log");
        let dockerd = format!(
            "mount -t tmpfs tmpfs /run && mount --bind {p}/etc-docker /etc/docker && \
             exec dockerd --config-file {p}/daemon.json --data-root {p}/data \
             --exec-root {e} --pidfile {p}/dockerd.pid -H {socket} \
             --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
             --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs \
             --storage-driver overlay2",
            p = path.display(),
            e = exec_root.display(),
        );
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c", &dockerd])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // If the test process is killed, the daemon stops (and stops its
        // containers): the test's thread outlives the guard, so the signal
        // comes only then.
        // SAFETY: prctl(2) is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let daemon = command.spawn().expect("start dockerd");
        let pid = daemon.id() as i32;
        let mut docker = Docker {
            runtime,
            dir,
            exec_root,
            socket,
            daemon,
            pid,
            baseline: BTreeSet::new(),
        };
        wait_until(
            "dockerd to serve",
            || {
                assert!(
                    !exited(pid),
                    "dockerd exited before serving; {}",
                    docker.diagnostics()
                );
                docker.cli(&["version"]).code() == Some(0)
            },
            || docker.diagnostics(),
        );
        let pidfile = std::fs::read_to_string(docker.dir.path().join("dockerd.pid"))
            .expect("dockerd's pid file");
        assert_eq!(pidfile.trim(), pid.to_string(), "dockerd's pid file");
        let tarball = image_tarball(docker.dir.path());
        docker.ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV PATH=/bin",
            tarball.to_str().expect("utf-8"),
            IMAGE,
        ]);
        docker.baseline = mounts_of(&pid.to_string(), &docker.private(), &[]);
        docker
    }

    /// The exec root given to dockerd.
    pub fn exec_root(&self) -> &Path {
        &self.exec_root
    }

    /// `path` of the daemon's mount namespace, as this process reaches it.
    fn seen(&self, path: &Path) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.pid)).join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Where nothing but the daemon's own mounts may stay.
    fn private(&self) -> Vec<PathBuf> {
        vec![self.dir.path().to_owned(), self.exec_root.clone()]
    }

    /// Every container the daemon made (its events of this run).
    fn container_ids(&self) -> Vec<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 1;
        let events = self.cli(&[
            "events",
            "--since",
            "1",
            "--until",
            &now.to_string(),
            "--filter",
            "type=container",
            "--format",
            "{{.Actor.ID}}",
        ]);
        let ids: BTreeSet<String> = events
            .stdout
            .lines()
            .filter(|l| l.len() == 64)
            .map(str::to_owned)
            .collect();
        ids.into_iter().collect()
    }

    fn remains(&self) -> Remains {
        let runtime_roots = ["runc", "sandvisor"]
            .iter()
            .map(|name| self.seen(&self.exec_root.join(format!("runtime-{name}/moby"))))
            .collect();
        Remains {
            ids: self.container_ids(),
            pods: Vec::new(),
            state_dirs: Vec::new(),
            empty_dirs: runtime_roots,
            mount_namespaces: vec![self.pid],
            private: self.private(),
            baseline: self.baseline.clone(),
            own: self.daemon_pids(),
        }
    }

    /// dockerd and the containerd it started.
    fn daemon_pids(&self) -> Vec<i32> {
        let mut pids = vec![self.pid];
        let containerd = self.seen(&self.exec_root.join("containerd/containerd.pid"));
        if let Some(pid) = std::fs::read_to_string(containerd)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            pids.push(pid);
        }
        pids
    }
}

/// Whether `pid` (our child) has exited: it is a zombie, not yet waited for.
fn exited(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
}

impl Engine for Docker {
    const CLIENT: &'static str = "docker";
    const TMPFS_COPIES_UP: bool = false;
    const READ_ONLY_KEEPS_TMP: bool = false;
    const INIT_COMM: &'static str = "docker-init";

    fn runtime(&self) -> Runtime {
        self.runtime
    }

    fn command(&self) -> Command {
        let mut command = Command::new(DOCKER);
        command
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(["-H", &self.socket]);
        command
    }

    fn run_options(&self, _options: &[&str]) -> Vec<String> {
        vec![
            "--runtime".to_owned(),
            self.runtime.name().to_owned(),
            "--network".to_owned(),
            "none".to_owned(),
        ]
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn image(&self) -> &str {
        IMAGE
    }

    fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("dockerd's log ends with:\n{tail}")
    }

    fn assert_nothing_left(&self) {
        self.remains().assert_none();
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // What a failed test left: its containers go while the daemon can
        // still remove them, then the daemon, by the pid it wrote.
        let ids = self.container_ids();
        if !ids.is_empty() {
            let mut args = vec!["rm", "--force"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.cli(&args);
        }
        let own = self.daemon_pids();
        let pid = std::fs::read_to_string(self.dir.path().join("dockerd.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(self.pid);
        let daemon = &mut self.daemon;
        stop_pid(pid, || daemon.try_wait().ok().flatten().is_some());
        let _ = self.daemon.wait();
        kill_processes_naming(&ids, &own);
        unmount_under(self.dir.path());
    }
}
