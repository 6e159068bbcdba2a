//! The command line as a test drives it: a state directory of its own per
//! test, each `sandvisor --root DIR ...` run with its output in files, and
//! whatever a failed test left running deleted at the end.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::SANDVISOR;

/// How long any one command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// A state directory of its own and where command output goes.
pub struct Runtime {
    /// The state directory (`--root`).
    pub root: tempfile::TempDir,
    /// The directory passed as `--root`: `root` or one under it.
    root_dir: PathBuf,
    out: tempfile::TempDir,
    serial: AtomicU32,
}

/// What a command did: its status, stdout and stderr.
pub struct Outcome {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        let root = tempfile::tempdir().expect("temp dir");
        Runtime {
            root_dir: root.path().to_owned(),
            root,
            out: tempfile::tempdir().expect("temp dir"),
            serial: AtomicU32::new(0),
        }
    }

    /// A runtime whose `--root` is `depth` bytes long or more: a socket
    /// under it does not fit in a `sockaddr_un` (108 bytes).
    #[allow(dead_code)]
    pub fn with_root_of_length(depth: usize) -> Runtime {
        let mut runtime = Runtime::new();
        let mut dir = runtime.root.path().to_owned();
        while dir.as_os_str().len() < depth {
            dir.push("a-directory-name-of-some-length");
        }
        std::fs::create_dir_all(&dir).expect("long root");
        runtime.root_dir = dir;
        runtime
    }

    pub fn root(&self) -> &str {
        self.root_dir.to_str().expect("utf-8")
    }

    /// Runs `sandvisor --root ROOT ARGS` with stdout and stderr in files
    /// (a created container keeps them: pipes would not end with the
    /// command).
    pub fn cli(&self, args: &[&str]) -> Outcome {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let stdout = self.out.path().join(format!("{n}.out"));
        let stderr = self.out.path().join(format!("{n}.err"));
        let mut child = Command::new(SANDVISOR)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn sandvisor");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sandvisor {args:?} did not exit within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Outcome {
            status,
            stdout: std::fs::read_to_string(&stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let outcome = self.cli(args);
        assert_eq!(
            outcome.code(),
            Some(0),
            "sandvisor {args:?} failed: {}",
            outcome.stderr
        );
        outcome.stdout
    }

    /// Runs a command that must fail with exit status 1; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let outcome = self.cli(args);
        assert_eq!(
            outcome.code(),
            Some(1),
            "sandvisor {args:?} should have failed (stdout {:?})",
            outcome.stdout
        );
        outcome.stderr
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state JSON")
    }

    pub fn ids(&self) -> Vec<String> {
        self.ok(&["list", "-q"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Whatever a failed test left running goes.
        for id in self.ids() {
            let _ = self.cli(&["delete", "--force", &id]);
        }
    }
}

/// An id no other test of this process uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
