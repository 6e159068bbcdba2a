//! What the attacks of tests/security.rs share: the attacker program, the
//! containers it runs in, its report, and the calls of the restart test.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sandvisor::actors::container::spec::default_spec;
use sandvisor::actors::wire::envelope::parse_response;
use sandvisor::actors::wire::{FrameDecoder, FrameLimits};
use sandvisor::api::container::{ExecuteAsync, Executed, StartRoot, WaitPid};
use sandvisor::api::Fds;
use sandvisor::{Client, ClientError, ErrorCode};

use super::common::bundle::Bundle;
use super::common::runtime::{unique, Outcome, Runtime};
use super::common::{ping_args, request, Supervisor, SANDVISOR};

/// Execs into the scanned container: the issue caught 7-12 of 400.
pub const EXECS: usize = 300;
/// How long a container's report may take once asked for.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The tests that exec hundreds of times race the attacker against the
/// runtime: they run one at a time, so that each has the host to itself.
static HEAVY: Mutex<()> = Mutex::new(());

pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The attacker, compiled once per test binary. Not under /tmp: the
/// built-in spec hides /tmp behind a tmpfs, and shows the rest of the host.
pub fn attacker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        assert!(nix::unistd::geteuid().is_root(), "containers need root");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("security");
        std::fs::create_dir_all(&dir).expect("attacker dir");
        let out = dir.join("attacker");
        let partial = dir.join(format!("attacker.{}", std::process::id()));
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/security/attacker.c");
        let built = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&partial)
            .arg(source)
            .output()
            .expect("run gcc");
        assert!(
            built.status.success(),
            "gcc -static {source} failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::rename(&partial, &out).expect("install attacker");
        out
    })
}

/// A host file no container should reach: the attacker prints its content
/// when it does.
pub struct Marker {
    _dir: tempfile::TempDir,
    pub path: String,
    pub content: String,
}

impl Marker {
    pub fn new() -> Marker {
        let dir = tempfile::Builder::new()
            .prefix("svtest-marker-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("host-only");
        let content = format!("host-only-{}", unique("marker"));
        std::fs::write(&path, &content).expect("marker");
        let path = path.to_str().expect("utf-8").to_owned();
        Marker {
            _dir: dir,
            path,
            content,
        }
    }
}

/// A busybox bundle with the attacker at /attacker.
pub fn attacker_bundle(args: &[&str]) -> Bundle {
    let bundle = Bundle::new("attacked", args);
    std::fs::copy(attacker(), bundle.rootfs().join("attacker")).expect("copy attacker");
    bundle
}

/// `sandvisor run` in the background, its stdout read line by line.
pub struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    pub fn run(rt: &Runtime, id: &str, bundle: &Bundle) -> Background {
        let mut child = Command::new(SANDVISOR)
            .args(["--root", rt.root(), "run", "--id", id, "--bundle"])
            .arg(bundle.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sandvisor run");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line equal to `wanted`.
    pub fn wait_line(&mut self, wanted: &str) {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        while !self.seen.iter().any(|l| l == wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "no {wanted:?} from the container ({e}); got {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Every line up to EOF, and how `run` exited.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("the container's report did not end ({e}); {:?}", self.seen),
            }
        }
        let status = self.child.wait().expect("wait for run");
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // The Runtime's own drop deletes the container (`delete --force`).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of `lines` that start with one of `kinds`.
pub fn lines_of<'a>(lines: &'a [String], kinds: &[&str]) -> Vec<&'a str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| kinds.iter().any(|k| l.starts_with(k)))
        .collect()
}

/// A field `key=value` of a report line (the last field, `target=`, runs
/// to the end of the line).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    Some(if key == "target" || key == "content" {
        rest
    } else {
        rest.split(' ').next().unwrap_or("")
    })
}

/// Report lines, host files read first, then the most frequent (`pids=`),
/// at most 25 of them.
pub fn summary(mut lines: Vec<&str>) -> String {
    let count = |l: &str| field(l, "pids").and_then(|n| n.parse::<u32>().ok());
    lines.sort_by_key(|l| (!l.starts_with("MARKER"), std::cmp::Reverse(count(l))));
    let mut text = lines
        .iter()
        .take(25)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > 25 {
        text += &format!("\n... and {} more", lines.len() - 25);
    }
    text
}

/// The Ping request the attacker sends to every control socket, as hex.
pub fn ping_hex() -> String {
    request(1, "debug.Ping", &ping_args(b"from inside"), 0)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a reply frame (hex) says: the Ping answered, or an error.
pub fn reply_of(line: &str) -> Result<(), (ErrorCode, String)> {
    let hex = field(line, "hex").unwrap_or_else(|| panic!("no reply frame in {line:?}"));
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut decoder = FrameDecoder::<OwnedFd>::new(FrameLimits::default());
    decoder.push(&bytes, Vec::new()).expect("push");
    let frame = decoder.next_frame().expect("frame").expect("a whole frame");
    let response = parse_response(&frame.body).expect("a response");
    response
        .outcome
        .map(|_| ())
        .map_err(|e| (e.code, e.message))
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} stdout {:?} stderr {:?}",
            self.status, self.stdout, self.stderr
        )
    }
}

pub fn dev_null() -> Vec<OwnedFd> {
    (0..3)
        .map(|_| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null");
            f.expect("/dev/null").into()
        })
        .collect()
}

pub fn exec_request(cid: &str, code: u32) -> ExecuteAsync {
    ExecuteAsync {
        cid: cid.into(),
        argv: vec!["sh".into(), "-c".into(), format!("exit {code}")],
        envv: vec![],
        working_directory: None,
        kuid: None,
        kgid: None,
        extra_kgids: None,
        capabilities: None,
        no_new_privileges: None,
        rlimits: None,
        terminal: false,
        console_socket: None,
        preserve_fds: 0,
        caller_spawner: false,
        fds: Fds(dev_null()),
    }
}

pub fn unavailable<T>(result: &Result<T, ClientError>) -> bool {
    matches!(result, Err(ClientError::Rpc(e)) if e.code == ErrorCode::Unavailable)
}

pub fn last_pid() -> i32 {
    let text = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").expect("ns_last_pid");
    text.trim().parse().expect("a pid")
}

/// Execs `sh -c 'exit CODE'` (retrying calls caught in a restart) and
/// waits for it. Returns the process, the status WaitPID gave, and the
/// host pids an exec answered `unavailable` may have used (the rollback
/// killed such a process).
pub fn exec_and_wait(client: &Client, cid: &str, code: u32) -> (Executed, u32, Vec<i32>) {
    let mut suspects = Vec::new();
    let mut tries = 0..100;
    let executed = loop {
        let before = last_pid();
        let result = client.invoke(exec_request(cid, code));
        if unavailable(&result) && tries.next().is_some() {
            suspects.extend(before + 1..=last_pid());
            continue;
        }
        break result.unwrap_or_else(|e| panic!("exec of `exit {code}`: {e}"));
    };
    let status = loop {
        let result = client.invoke(WaitPid {
            cid: cid.into(),
            pid: executed.pid,
        });
        if !unavailable(&result) || tries.next().is_none() {
            break result
                .unwrap_or_else(|e| panic!("WaitPID {}: {e}", executed.pid))
                .status;
        }
    };
    (executed, status, suspects)
}

/// A supervisor with a private `--root` running a root container `cid`
/// (`sleep 3600`, the built-in spec); stopped with SIGTERM when dropped, so
/// that its containers and cgroups go.
pub struct Sandbox {
    pub sv: Supervisor,
    pub client: Client,
    _root: tempfile::TempDir,
}

impl Sandbox {
    pub fn start(cid: &str, extra: &[&str]) -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        let mut args = vec!["--root", root.path().to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        let sv = Supervisor::boot_with(&args);
        let client = sv.client();
        let spec = default_spec(cid, vec!["sleep".into(), "3600".into()], false);
        let start = StartRoot {
            cid: cid.to_owned(),
            spec,
            bundle: None,
            console_socket: None,
            preserve_fds: 0,
            hold: false,
            caller_spawner: false,
            fds: Fds(dev_null()),
        };
        client.invoke(start).expect("StartRoot");
        Sandbox {
            sv,
            client,
            _root: root,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.sv.wait_exit(Duration::ZERO).is_none() {
            let pid = nix::unistd::Pid::from_raw(self.sv.pid() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = self.sv.wait_exit(Duration::from_secs(10));
        }
    }
}
