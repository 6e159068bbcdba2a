//! What the client tests share: the two runtimes, commands run with a
//! deadline, waiting for a condition, the busybox image, the host's
//! namespaces, and the search for what a test left behind (state entries,
//! mounts, cgroups, processes).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::bundle::BUSYBOX;
use crate::common::SANDVISOR;

/// How long one client command may take before the test fails.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(90);
/// How long a test waits for an event (a log line, a state, a cleanup)
/// before it fails: only ever reached on failure.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(60);

/// The OCI runtime a client is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Debian's runc: proves the harness and the scenario.
    Runc,
    /// The binary under test.
    Sandvisor,
}

impl Runtime {
    /// Its name (docker's runtime name, podman's basename).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Sandvisor => "sandvisor",
        }
    }

    /// The binary.
    pub fn path(self) -> &'static str {
        match self {
            Runtime::Runc => "/usr/sbin/runc",
            Runtime::Sandvisor => SANDVISOR,
        }
    }

    /// The state directory it uses when no `--root` is given (podman
    /// gives none).
    pub fn default_root(self) -> &'static str {
        match self {
            Runtime::Runc => "/run/runc",
            Runtime::Sandvisor => "/run/sandvisor",
        }
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `command` with stdin from /dev/null and its output in files of
/// `dir` (a client that leaves a daemon behind could hold a pipe open);
/// fails the test past [`COMMAND_DEADLINE`].
pub fn run_command(mut command: Command, dir: &Path) -> Outcome {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let out = dir.join(format!("cmd-{n}.out"));
    let err = dir.join(format!("cmd-{n}.err"));
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {described}: {e}"));
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{described} did not exit within {COMMAND_DEADLINE:?}; stderr so far:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let outcome = Outcome {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(err);
    outcome
}

/// Polls `done` until it holds; fails the test with `what` (and what
/// `state` says then) after [`EVENT_DEADLINE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + EVENT_DEADLINE;
    while !done() {
        if Instant::now() > deadline {
            panic!(
                "timed out after {EVENT_DEADLINE:?} waiting for {what}; {}",
                state()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The image's root: a static busybox with all its applets, /etc/passwd
/// with root and `user` (1000), a seeded /t (what podman's tmpcopyup must
/// copy into a tmpfs there), as an uncompressed tar for `import`.
pub fn image_tarball(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    for sub in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "var/tmp", "run", "root", "t", "data",
    ] {
        std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dir");
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8(list.stdout).expect("utf-8").lines() {
        if applet != "busybox" {
            symlink("busybox", rootfs.join("bin").join(applet)).expect("applet link");
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
    std::fs::write(rootfs.join("t/seed"), "seeded\n").expect("seed");
    let tarball = dir.join("image.tar");
    let tarred = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("tar");
    assert!(tarred.success(), "tar of the image failed");
    std::fs::remove_dir_all(&rootfs).expect("remove the image's rootfs");
    tarball
}

/// The host's link for namespace `ns` (`net:[4026531833]`).
pub fn host_ns(ns: &str) -> String {
    ns_of("self", ns)
}

/// /proc/PID/ns/NS's link.
pub fn ns_of(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .display()
        .to_string()
}

/// The host's name.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .expect("gethostname")
        .into_string()
        .expect("utf-8")
}

/// What to look for once a test's containers are gone.
pub struct Remains {
    /// Ids of every container the test made.
    pub ids: Vec<String>,
    /// Ids of its pods: searched for like the containers', but in cgroups
    /// (podman with cgroupfs leaves a pod's cgroup in the named `systemd`
    /// hierarchy and the unified one, whatever the runtime).
    pub pods: Vec<String>,
    /// Runtime state directories that must hold no entry named by an id.
    pub state_dirs: Vec<PathBuf>,
    /// State directories that must be empty (a private runtime root).
    pub empty_dirs: Vec<PathBuf>,
    /// Processes whose mount namespaces are searched (besides ours).
    pub mount_namespaces: Vec<i32>,
    /// The test's private directories: no mount may stay under them but
    /// those of `baseline`.
    pub private: Vec<PathBuf>,
    /// The mounts under `private` before the first container.
    pub baseline: BTreeSet<String>,
    /// Processes that are the client's own (a daemon): not remains.
    pub own: Vec<i32>,
}

/// Mount points under one of `private`, or naming one of `ids`, in the
/// mount namespace of `pid`.
pub fn mounts_of(pid: &str, private: &[PathBuf], ids: &[String]) -> BTreeSet<String> {
    let private: Vec<String> = private.iter().map(|p| p.display().to_string()).collect();
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .filter(|point| {
            private.iter().any(|p| point.starts_with(p.as_str()))
                || ids.iter().any(|id| point.contains(id.as_str()))
        })
        .collect()
}

impl Remains {
    /// Everything left, one line each.
    pub fn find(&self) -> Vec<String> {
        let mut left = Vec::new();
        let all: Vec<String> = self.ids.iter().chain(&self.pods).cloned().collect();
        for dir in &self.state_dirs {
            for id in &all {
                if dir.join(id).exists() {
                    left.push(format!("state entry {}", dir.join(id).display()));
                }
            }
        }
        for dir in &self.empty_dirs {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                left.push(format!("state entry {}", entry.path().display()));
            }
        }
        let mut namespaces = vec!["self".to_owned()];
        namespaces.extend(self.mount_namespaces.iter().map(i32::to_string));
        for pid in namespaces {
            for point in mounts_of(&pid, &self.private, &all) {
                if !self.baseline.contains(&point) {
                    left.push(format!("mount {point} (in the mount namespace of {pid})"));
                }
            }
        }
        for controller in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            cgroups_named(&controller.path(), &self.ids, 5, &mut left);
        }
        for pid in processes() {
            if self.own.contains(&pid) || pid == std::process::id() as i32 {
                continue;
            }
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if all.iter().any(|id| cmdline.contains(id.as_str())) {
                left.push(format!("process {pid}: {cmdline}"));
            }
        }
        left
    }

    /// Waits until nothing is left; fails the test with the list.
    pub fn assert_none(&self) {
        assert!(!self.ids.is_empty(), "no container was recorded");
        wait_until(
            "nothing left of the test's containers",
            || self.find().is_empty(),
            || format!("left:\n  {}", self.find().join("\n  ")),
        );
    }
}

fn cgroups_named(dir: &Path, ids: &[String], depth: u32, left: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ids.iter().any(|id| name.contains(id.as_str())) {
            left.push(format!("cgroup {}", entry.path().display()));
        } else {
            cgroups_named(&entry.path(), ids, depth - 1, left);
        }
    }
}

/// Every pid of the machine.
pub fn processes() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Cleanup after a failed test: kills every process whose command line
/// names one of `ids` (a shim, a supervisor, conmon the client left).
pub fn kill_processes_naming(ids: &[String], own: &[i32]) {
    for pid in processes() {
        if own.contains(&pid) || pid == std::process::id() as i32 {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if ids.iter().any(|id| cmdline.contains(id.as_str())) {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Cleanup after a failed test: detaches every mount under `dir` in our
/// mount namespace, deepest first.
pub fn unmount_under(dir: &Path) {
    let mut points: Vec<String> = mounts_of("self", &[dir.to_owned()], &[])
        .into_iter()
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = nix::mount::umount2(OsStr::new(&point), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Sends SIGTERM to `pid`, waits up to 30 s for `exited`, then SIGKILL.
pub fn stop_pid(pid: i32, mut exited: impl FnMut() -> bool) {
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exited() {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = exited();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
