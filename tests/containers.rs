//! Containers, black box: `sandvisor run`, and the containerManager methods
//! of a booted supervisor, against busybox bundles built per test.
//!
//! Needs root, cgroups and /bin/busybox (static), as in CI.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::bundle::*;
use common::*;
use sandvisor::actors::sys::process::WaitStatus;
use sandvisor::api::container::{
    CreateSubcontainer, DestroySubcontainer, ExecCapabilities, ExecuteAsync, Executed, ProcessInfo,
    Processes, Signal, SignalMode, StartRoot, StartSubcontainer, Started, Wait, WaitPid,
};
use sandvisor::api::{CarriesFds, Fds, Method};
use sandvisor::{Client, ClientError, ErrorCode};
use serde_json::{json, Value};

/// Every call gets this long before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long container output may take to arrive.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);
/// The sandbox id `Supervisor::boot` gives its supervisor.
const SANDBOX: &str = "test";
// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A container id no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A typed call with a deadline (`Client::invoke` has none).
fn call<M: Method>(client: &Client, mut msg: M) -> Result<M::Reply, ClientError> {
    let args = serde_cbor::to_vec(&msg).expect("encode arguments");
    let fds = msg.take_fds();
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let pending = client.start_raw(M::NAME, &args, &borrowed)?;
    drop(borrowed);
    // The kernel duplicated them into the message: the container must hold
    // the only copies, or pipes would never see EOF.
    drop(fds);
    let reply = pending.wait_timeout(CALL_TIMEOUT)?;
    let mut value: M::Reply = reply.decode(M::NAME)?;
    value
        .attach_fds(reply.fds)
        .map_err(|detail| ClientError::Decode {
            method: M::NAME.to_owned(),
            detail,
        })?;
    Ok(value)
}

/// The server's error code and message; panics on success or on a local error.
fn rpc_error<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Rpc(e)) => (e.code, e.message),
        other => panic!("expected an error from the server, got {other:?}"),
    }
}

/// Asserts an error with `code` whose message contains every one of `parts`.
fn assert_rpc_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: ErrorCode,
    parts: &[&str],
) -> String {
    let (got, message) = rpc_error(result);
    assert_eq!(got, code, "code of error {message:?}");
    for part in parts {
        assert!(
            message.contains(part),
            "error message {message:?} does not contain {part:?}"
        );
    }
    message
}

/// The decoded Linux wait status.
fn exit_code(status: u32) -> Option<i32> {
    WaitStatus(status).exit_code()
}

/// A supervisor with a private state directory (`--root`), and a client.
struct Sandbox {
    client: Client,
    root: tempfile::TempDir,
    sv: Supervisor,
}

impl Sandbox {
    fn boot() -> Sandbox {
        Sandbox::boot_with(&[])
    }

    fn boot_with(extra: &[&str]) -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        let root_arg = root.path().to_str().expect("utf-8 temp dir").to_owned();
        let mut args = vec!["--enable-fault-injection", "--root", &root_arg];
        args.extend_from_slice(extra);
        let sv = Supervisor::boot_with(&args);
        let client = sv.client();
        Sandbox { client, root, sv }
    }

    /// The sandbox's state directory.
    fn state_dir(&self) -> PathBuf {
        self.root.path().join(SANDBOX)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // A graceful stop tears the containers down and removes their
        // cgroups; the harness kills whatever is left. A supervisor already
        // reaped (a test stopped it) is not signalled: its pid may be reused.
        if self.sv.wait_exit(Duration::ZERO).is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.sv.pid() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.sv.wait_exit(Duration::from_secs(10));
    }
}

/// Tests that load the host (hundreds of execs) run alone: the others
/// share this lock, so their timing is not at the mercy of the load.
static LOAD: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Taken by ordinary tests.
fn shared_host() -> std::sync::RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|p| p.into_inner())
}

/// Taken by tests that load the host.
fn whole_host() -> std::sync::RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(|p| p.into_inner())
}

/// The read ends of a process's stdout and stderr.
struct Output {
    out: OwnedFd,
    err: OwnedFd,
    out_buf: Vec<u8>,
}

/// Descriptors for a process (stdin /dev/null, stdout and stderr pipes) and
/// the ends the test reads.
fn stdio() -> (Vec<OwnedFd>, Output) {
    stdio_with_stdin(File::open("/dev/null").expect("/dev/null").into())
}

/// As [`stdio`], with the given stdin.
fn stdio_with_stdin(stdin: OwnedFd) -> (Vec<OwnedFd>, Output) {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    (
        vec![stdin, out_w, err_w],
        Output {
            out: out_r,
            err: err_r,
            out_buf: Vec::new(),
        },
    )
}

/// Reads what is available within the deadline; false at EOF.
fn read_some(fd: &OwnedFd, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no output (or EOF) in time; read so far: {:?}",
            String::from_utf8_lossy(buf)
        );
        let ms = PollTimeout::try_from(left.as_millis().min(10_000) as i32).expect("timeout");
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, ms).expect("poll") == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        let n = nix::unistd::read(fd, &mut chunk).expect("read");
        buf.extend_from_slice(&chunk[..n]);
        return n > 0;
    }
}

fn read_to_eof(fd: &OwnedFd, mut buf: Vec<u8>) -> String {
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    while read_some(fd, &mut buf, deadline) {}
    String::from_utf8(buf).expect("utf-8 output")
}

impl Output {
    /// Stdout up to EOF (every writer closed).
    fn stdout(&mut self) -> String {
        read_to_eof(&self.out, std::mem::take(&mut self.out_buf))
    }

    /// Stderr up to EOF.
    fn stderr(&self) -> String {
        read_to_eof(&self.err, Vec::new())
    }

    /// Reads stdout until it contains `needle` (kept for `stdout`).
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        while !String::from_utf8_lossy(&self.out_buf).contains(needle) {
            assert!(
                read_some(&self.out, &mut self.out_buf, deadline),
                "EOF before {needle:?}; stdout: {:?}",
                String::from_utf8_lossy(&self.out_buf)
            );
        }
    }
}

/// `key=value` lines (in order, keys may repeat).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}= line in {pairs:?}"))
}

/// `Name:\tvalue` lines of a /proc/PID/status text.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {status:?}"))
}

/// A shell loop that prints its own status lines: builtins only, so the
/// numbers are the shell's own.
const OWN_CAPS: &str = "while read -r l; do case \"$l\" in Cap*|NoNewPrivs*|Seccomp:*) echo \"$l\";; esac; done < /proc/$$/status";

/// Capability numbers (linux/capability.h).
fn capability_number(name: &str) -> u32 {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The mask /proc/PID/status shows for a list of capability names, as
/// `%016x`.
fn capability_mask<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mask = names
        .into_iter()
        .fold(0u64, |m, n| m | 1 << capability_number(n));
    format!("{mask:016x}")
}

/// The mask of one capability set of a spec's process.
fn spec_capability_mask(config: &Value, set: &str) -> String {
    let names: Vec<&str> = config["process"]["capabilities"][set]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().expect("name")).collect())
        .unwrap_or_default();
    capability_mask(names)
}

/// The StartRoot request for a bundle, with stdio pipes.
fn start_root_request(cid: &str, bundle: &Bundle) -> (StartRoot, Output) {
    let (fds, output) = stdio();
    (
        StartRoot {
            cid: cid.to_owned(),
            spec: bundle.spec(),
            bundle: Some(bundle.path_string()),
            console_socket: None,
            preserve_fds: 0,
            hold: false,
            caller_spawner: false,
            fds: Fds(fds),
        },
        output,
    )
}

/// Starts the root container; panics on failure.
fn start_root(client: &Client, cid: &str, bundle: &Bundle) -> (Started, Output) {
    let (req, output) = start_root_request(cid, bundle);
    let started = call(client, req).unwrap_or_else(|e| panic!("StartRoot {cid}: {e}"));
    (started, output)
}

fn exec_request(cid: &str, argv: &[&str]) -> ExecuteAsync {
    ExecuteAsync {
        cid: cid.to_owned(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        envv: Vec::new(),
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
        fds: Fds::none(),
    }
}

/// Runs `req` with stdio pipes.
fn exec_with(client: &Client, mut req: ExecuteAsync) -> (Result<Executed, ClientError>, Output) {
    let (fds, output) = stdio();
    req.fds = Fds(fds);
    (call(client, req), output)
}

/// Runs `argv` in the container; panics on failure.
fn exec(client: &Client, cid: &str, argv: &[&str]) -> (Executed, Output) {
    let (result, output) = exec_with(client, exec_request(cid, argv));
    let executed = result.unwrap_or_else(|e| panic!("ExecuteAsync {argv:?} in {cid}: {e}"));
    (executed, output)
}

fn wait(client: &Client, cid: &str) -> u32 {
    call(
        client,
        Wait {
            cid: cid.to_owned(),
        },
    )
    .unwrap_or_else(|e| panic!("Wait {cid}: {e}"))
    .status
}

fn wait_pid(client: &Client, cid: &str, pid: i32) -> Result<u32, ClientError> {
    call(
        client,
        WaitPid {
            cid: cid.to_owned(),
            pid,
        },
    )
    .map(|r| r.status)
}

fn signal(
    client: &Client,
    cid: &str,
    signo: i32,
    pid: i32,
    mode: SignalMode,
) -> Result<(), ClientError> {
    call(
        client,
        Signal {
            cid: cid.to_owned(),
            signo,
            pid,
            mode,
        },
    )
    .map(|_| ())
}

fn processes(client: &Client, cid: &str) -> Vec<ProcessInfo> {
    call(
        client,
        Processes {
            cid: cid.to_owned(),
        },
    )
    .unwrap_or_else(|e| panic!("Processes {cid}: {e}"))
    .processes
}

/// Fields of /proc/PID/stat: state, ppid, start time (ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostStat {
    state: char,
    ppid: i32,
    start: u64,
}

fn host_stat(pid: i32) -> Option<HostStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(HostStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process of the host, with its stat.
fn host_processes() -> Vec<(i32, HostStat)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| host_stat(pid).map(|s| (pid, s)))
        .collect()
}

/// Children of `parent` that are zombies, after giving them `patience` to
/// be reaped.
fn zombie_children(parent: u32, patience: Duration) -> Vec<i32> {
    let deadline = Instant::now() + patience;
    loop {
        let zombies: Vec<i32> = host_processes()
            .into_iter()
            .filter(|(_, s)| s.ppid == parent as i32 && s.state == 'Z')
            .map(|(pid, _)| pid)
            .collect();
        if zombies.is_empty() || Instant::now() > deadline {
            return zombies;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Children of `parent` (any state).
fn children(parent: u32) -> BTreeSet<i32> {
    host_processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == parent as i32)
        .map(|(pid, _)| pid)
        .collect()
}

/// The processes (pid, start time) that still exist (zombies included).
fn still_there(procs: &[(i32, u64)]) -> Vec<(i32, HostStat)> {
    procs
        .iter()
        .filter_map(|&(pid, start)| {
            host_stat(pid)
                .filter(|s| s.start == start)
                .map(|s| (pid, s))
        })
        .collect()
}

/// Host processes whose cgroup path names the container.
fn processes_in_cgroup_of(cid: &str) -> Vec<i32> {
    let needle = format!("/sandvisor/{SANDBOX}/{cid}");
    host_processes()
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|t| t.lines().any(|l| l.ends_with(&needle)))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// The cgroup hierarchies of the host (v1 controllers, the unified one, or
/// /sys/fs/cgroup itself on a pure v2 host).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("/sys/fs/cgroup")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    out.sort();
    out
}

/// The container's cgroup directories that exist.
fn cgroup_dirs(sandbox: &str, cid: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(sandbox).join(cid))
        .filter(|d| d.exists())
        .collect()
}

fn namespace_inode(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_str()
        .expect("utf-8")
        .to_owned()
}

fn mountinfo(pid: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// SIGKILLs a child and its descendants (a `sandvisor run`'s supervisor
/// would otherwise outlive it, holding its output pipes), and reaps it.
fn kill_tree(child: &mut std::process::Child) {
    let mut tree = vec![child.id() as i32];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i] as u32;
        tree.extend(children(parent));
        i += 1;
    }
    // Parents first: none of them can fork again afterwards. Every pid is
    // a live (unreaped) descendant, so none has been reused.
    for pid in tree {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
}

/// Starts `sandvisor --root ROOT run --id ID --bundle B` in the background,
/// stdout as given, stderr piped.
fn spawn_run(root: &str, id: &str, bundle: &Bundle, stdout: Stdio) -> std::process::Child {
    Command::new(SANDVISOR)
        .args(["--root", root, "run", "--id", id, "--bundle"])
        .arg(bundle.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandvisor run")
}

/// Runs the sandvisor binary; returns its status, stdout and stderr.
fn run_cli(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    run_program(SANDVISOR, args, timeout)
}

fn run_program(program: &str, args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandvisor");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            kill_tree(&mut child);
            panic!("{program} {args:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        status,
        out_thread.join().expect("stdout thread"),
        err_thread.join().expect("stderr thread"),
    )
}

// ---------------------------------------------------------------------------
// 1. sandvisor run
// ---------------------------------------------------------------------------

#[test]
fn run_prints_pid_one_and_the_id_as_hostname_and_cleans_up() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-echo");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "echo $$; hostname",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(stdout, format!("1\n{id}\n"), "stderr: {stderr}");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    // Nothing of the sandbox is left: state directory, cgroups.
    assert!(
        !root.path().join(&id).exists(),
        "state directory {} left behind",
        root.path().join(&id).display()
    );
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
    let sandbox_cgroups: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(&id))
        .filter(|d| d.exists())
        .collect();
    assert_eq!(sandbox_cgroups, Vec::<PathBuf>::new());
}

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

/// `sandvisor state ID` once `run` has registered the container.
fn state_once_registered(root: &str, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, stdout, _) = run_cli(&["--root", root, "state", id], Duration::from_secs(10));
        if status.code() == Some(0) {
            return serde_json::from_str(&stdout).expect("state JSON");
        }
        assert!(Instant::now() < deadline, "no state for {id}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_registers_its_container_for_state_and_list() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-state");
    let bundle = Bundle::new(
        "state",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ],
    );
    let mut child = spawn_run(root_arg, &id, &bundle, Stdio::piped());
    // The entry appears once the container runs.
    let state = state_once_registered(root_arg, &id);
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .expect("the init")
            .trim(),
        "sh"
    );
    let bundle_path = std::fs::canonicalize(bundle.path()).expect("bundle");
    assert_eq!(
        state,
        serde_json::json!({
            "ociVersion": bundle.spec().version(),
            "id": id,
            "pid": pid,
            "status": "running",
            "bundle": bundle_path,
            "rootfs": bundle_path.join("rootfs"),
            "created": state["created"],
            "owner": "",
        })
    );
    let created = state["created"].as_str().expect("created");
    assert!(created.ends_with('Z') && created.len() >= 20, "{created}");

    let (status, table, _) = run_cli(&["--root", root_arg, "list"], Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID    ") && lines[0].ends_with("OWNER"),
        "{table}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            id.as_str(),
            &pid.to_string(),
            "running",
            &bundle_path.display().to_string(),
            created,
            "root"
        ]
    );
    let (_, quiet, _) = run_cli(&["--root", root_arg, "list", "-q"], Duration::from_secs(10));
    assert_eq!(quiet, format!("{id}\n"));
    let (_, json, _) = run_cli(
        &["--root", root_arg, "list", "--format", "json"],
        Duration::from_secs(10),
    );
    let listed: serde_json::Value = serde_json::from_str(&json).expect("list JSON");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["owner"], "root");

    // Unknown and escaping ids.
    let (status, _, stderr) = run_cli(
        &["--root", root_arg, "state", "nope"],
        Duration::from_secs(10),
    );
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container \"nope\" does not exist\n")
    );
    let (status, _, stderr) = run_cli(
        &["--root", root_arg, "state", "../x"],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.starts_with("sandvisor: invalid container id \"../x\""),
        "{stderr}"
    );

    // Once run is over, the entry is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(7), "the container's trap ran");
    let (status, quiet, _) = run_cli(&["--root", root_arg, "list", "-q"], Duration::from_secs(10));
    assert_eq!((status.code(), quiet.as_str()), (Some(0), ""));
    let (_, json, _) = run_cli(
        &["--root", root_arg, "list", "--format", "json"],
        Duration::from_secs(10),
    );
    assert_eq!(json, "null\n");
}

#[test]
fn kill_signals_a_running_container_by_its_id() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-kill");
    let bundle = Bundle::new(
        "kill",
        &[
            "sh",
            "-c",
            "trap 'echo usr1' USR1; trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let mut child = spawn_run(root_arg, &id, &bundle, Stdio::piped());
    let stdout: OwnedFd = child.stdout.take().expect("stdout").into();
    let mut seen = Vec::new();
    assert!(
        read_some(&stdout, &mut seen, Instant::now() + PATIENCE),
        "no output"
    );
    assert_eq!(seen, b"ready\n");
    state_once_registered(root_arg, &id);
    let kill = |args: &[&str]| {
        let mut all = vec!["--root", root_arg, "kill"];
        all.extend_from_slice(args);
        run_cli(&all, Duration::from_secs(10))
    };
    // A signal by name reaches the init's trap; 0 only asks.
    let (status, _, stderr) = kill(&[&id, "usr1"]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    seen.clear();
    assert!(read_some(&stdout, &mut seen, Instant::now() + PATIENCE));
    assert_eq!(seen, b"usr1\n");
    assert_eq!(kill(&[&id, "0"]).0.code(), Some(0));
    // Bad signals and unknown ids.
    let (status, _, stderr) = kill(&[&id, "NOPE"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: unknown signal \"NOPE\"\n")
    );
    let (status, _, stderr) = kill(&[&id, "65"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: unknown signal \"65\"\n")
    );
    let (status, _, stderr) = kill(&["nope", "KILL"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container \"nope\" does not exist\n")
    );
    // The default is SIGTERM: the trap ends the container, and run with it.
    let (status, _, stderr) = kill(&[&id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert_eq!(child.wait().expect("wait").code(), Some(9));
    let (status, _, stderr) = kill(&[&id, "KILL"]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: container {id:?} does not exist\n")
        )
    );
}

#[test]
fn delete_refuses_a_running_container_and_cleans_up_after_a_killed_supervisor() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let cli = |args: &[&str]| {
        let mut all = vec!["--root", root_arg];
        all.extend_from_slice(args);
        run_cli(&all, Duration::from_secs(30))
    };
    let start = |id: &str| {
        let bundle = Bundle::new("delete", &["sleep", "30"]);
        let child = spawn_run(root_arg, id, &bundle, Stdio::null());
        let state = state_once_registered(root_arg, id);
        (child, bundle, state["pid"].as_i64().expect("pid") as i32)
    };

    // A running container is not deleted without --force.
    let id = unique("del-run");
    let (mut child, _bundle, init) = start(&id);
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: cannot delete container {id} that is not stopped: running\n")
        )
    );
    // With --force it is killed, its sandbox stopped, and `run` ends.
    let (status, _, stderr) = cli(&["delete", "--force", &id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert_eq!(
        child.wait().expect("wait").code(),
        Some(128 + libc::SIGKILL)
    );
    assert!(host_stat(init).is_none_or(|s| s.state == 'Z'));
    assert_eq!(cli(&["list", "-q"]).1, "");
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());
    // Deleting what is not there: an error, unless forced.
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!(
        (status.code(), stderr),
        (
            Some(1),
            format!("sandvisor: container {id:?} does not exist\n")
        )
    );
    assert_eq!(cli(&["delete", "--force", &id]).0.code(), Some(0));

    // A supervisor killed outright leaves its entry and cgroups behind:
    // the container reads as stopped, and delete removes it all.
    let id = unique("del-stale");
    let (mut child, _bundle, _init) = start(&id);
    let entry: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join(&id).join("state.json")).expect("entry"),
    )
    .expect("JSON");
    let supervisor = entry["supervisor"]["pid"].as_i64().expect("pid") as i32;
    for pid in [child.id() as i32, supervisor] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL");
    }
    child.wait().expect("wait");
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        let state: serde_json::Value = serde_json::from_str(&cli(&["state", &id]).1).expect("JSON");
        if state["status"] == "stopped" || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        (state["status"].as_str(), state["pid"].as_i64()),
        (Some("stopped"), Some(0))
    );
    let (status, _, stderr) = cli(&["kill", &id, "KILL"]);
    assert_eq!(
        (status.code(), stderr.as_str()),
        (Some(1), "sandvisor: container not running\n")
    );
    let (status, _, stderr) = cli(&["delete", &id]);
    assert_eq!((status.code(), stderr.as_str()), (Some(0), ""));
    assert!(!root.path().join(&id).exists(), "entry left");
    let left: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("sandvisor").join(&id))
        .filter(|d| d.exists())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
}

#[test]
fn run_exits_with_the_container_status() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-exit");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root", root_arg, "run", "--id", &id, "--", "sh", "-c", "exit 7",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(7), "", "")
    );
}

#[test]
fn run_of_a_missing_program_exits_127_naming_it() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");
    let id = unique("run-missing");
    let (status, stdout, stderr) = run_cli(
        &["--root", root_arg, "run", "--id", &id, "--", "/nonexistent"],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(127), "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("\"/nonexistent\"") && stderr.contains("errno 2"),
        "stderr names the path and errno 2: {stderr:?}"
    );
    assert!(
        !root.path().join(&id).exists(),
        "state directory left behind"
    );
}

#[test]
fn run_reports_a_kill_from_outside_as_137() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8").to_owned();
    let id = unique("run-kill");
    let (tx, rx) = std::sync::mpsc::channel();
    let args = id.clone();
    let runner = std::thread::spawn(move || {
        let result = run_cli(
            &[
                "--root", &root_arg, "run", "--id", &args, "--", "sleep", "30",
            ],
            Duration::from_secs(30),
        );
        let _ = tx.send(());
        result
    });
    // The supervisor's socket is <root>/<id>/ctl.sock: connect and kill the
    // container's init once it runs.
    let socket = root.path().join(&id).join("ctl.sock");
    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        if let Ok(c) = Client::connect(&socket) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let deadline = Instant::now() + PATIENCE;
    while processes_or_empty(&client, &id).is_empty() {
        assert!(Instant::now() < deadline, "container {id} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its init is listed while the container is still starting, when a
    // signal is refused as "not running": retry until it is running.
    loop {
        match signal(&client, &id, libc::SIGKILL, 0, SignalMode::Process) {
            Ok(()) => break,
            Err(ClientError::Rpc(e))
                if e.code == ErrorCode::FailedPrecondition && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("SIGKILL the init: {e}"),
        }
    }
    rx.recv_timeout(Duration::from_secs(20))
        .expect("run exits after the kill");
    let (status, stdout, stderr) = runner.join().expect("runner");
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(137), "", "")
    );
}

#[test]
fn run_forwards_stdin_and_signals() {
    let _host = shared_host();
    let root = tempfile::tempdir().expect("temp dir");
    let root_arg = root.path().to_str().expect("utf-8");

    // stdin reaches the container.
    let id = unique("run-stdin");
    let mut child = Command::new(SANDVISOR)
        .args([
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "read line; echo \"got: $line\"; exit 2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello container\n").expect("write stdin");
    }
    let (status, stdout, stderr) = finish(child, "run with stdin");
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(2), "got: hello container\n", "")
    );

    // SIGTERM to `sandvisor run` goes to the container's init.
    let id = unique("run-term");
    let mut child = Command::new(SANDVISOR)
        .args([
            "--root",
            root_arg,
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "trap 'echo trapped; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut output = Output {
        out: child.stdout.take().expect("stdout").into(),
        err: child.stderr.take().expect("stderr").into(),
        out_buf: Vec::new(),
    };
    output.wait_for("ready\n");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    assert_eq!(output.stdout(), "ready\ntrapped\n");
    assert_eq!(output.stderr(), "");
    let (status, _, _) = finish(child, "run after SIGTERM");
    assert_eq!(status.code(), Some(3));
}

/// Waits (bounded) for a child and collects what is left of its output.
fn finish(mut child: std::process::Child, what: &str) -> (ExitStatus, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            kill_tree(&mut child);
            panic!("{what}: sandvisor did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The container's processes, or none while it does not exist yet.
fn processes_or_empty(client: &Client, cid: &str) -> Vec<ProcessInfo> {
    call(
        client,
        Processes {
            cid: cid.to_owned(),
        },
    )
    .map(|p| p.processes)
    .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 2. Isolation
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
// 3. Exec
// ---------------------------------------------------------------------------

/// A sandbox whose root container runs `sleep 30`.
fn sleeping_root(prefix: &str) -> (Sandbox, Bundle, String, Started) {
    let sb = Sandbox::boot();
    let cid = unique(prefix);
    let bundle = Bundle::new(&format!("host-{prefix}"), &["sleep", "30"]);
    let (started, _output) = start_root(&sb.client, &cid, &bundle);
    (sb, bundle, cid, started)
}

#[test]
fn exec_joins_the_running_container() {
    let _host = shared_host();
    let (sb, _bundle, cid, started) = sleeping_root("exec");
    let (executed, mut output) = exec(
        &sb.client,
        &cid,
        &["sh", "-c", "ps -o pid,comm > /tmp/ps; echo \"pid=$$\"; echo \"hostname=$(hostname)\"; while read -r a b; do echo \"ps=$a $b\"; done < /tmp/ps"],
    );
    let stdout = output.stdout();
    assert_eq!(
        exit_code(wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID")),
        Some(0),
        "stderr: {}",
        output.stderr()
    );
    let kv = pairs(&stdout);
    // Its pid in the container's namespace, as the reply said.
    assert!(executed.pid > 1, "container pid {}", executed.pid);
    assert_eq!(value(&kv, "pid"), executed.pid.to_string());
    assert_ne!(executed.host_pid, executed.pid);
    assert_ne!(executed.host_pid, started.pid);
    // It sees the container's processes: the init first.
    let ps: Vec<&str> = kv
        .iter()
        .filter(|(k, _)| k == "ps")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ps[0], "PID COMMAND");
    assert_eq!(ps[1], "1 sleep");
    assert_eq!(ps[2], format!("{} sh", executed.pid));
    assert_eq!(ps.len(), 4, "init, sh, ps: {ps:?}");
    assert_eq!(value(&kv, "hostname"), "host-exec");
}

/// Children of `parent` named `comm`.
fn children_named(parent: u32, comm: &str) -> Vec<i32> {
    children(parent)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup")
}

#[test]
fn exec_is_born_in_the_container_cgroups_even_without_its_resident_spawner() {
    let _host = shared_host();
    let (sb, _bundle, cid, started) = sleeping_root("resident");
    let init_cgroups = cgroup_of(started.pid);
    assert!(
        init_cgroups
            .lines()
            .any(|l| l.ends_with(&format!("/sandvisor/{SANDBOX}/{cid}"))),
        "init cgroups: {init_cgroups}"
    );
    // One resident spawner, in the container's cgroups, and not one of its
    // processes for callers.
    let residents = children_named(sb.sv.pid(), "sv-resident");
    assert_eq!(residents.len(), 1, "residents: {residents:?}");
    // In the v1 hierarchies it is where the init is; in the v2 one it
    // stays where the supervisor is (its clones enter the container's v2
    // cgroup by CLONE_INTO_CGROUP).
    let v1 = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("0::"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(v1(&cgroup_of(residents[0])), v1(&init_cgroups));
    let supervisor_v2 = cgroup_of(sb.sv.pid() as i32)
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_owned);
    let resident_v2 = cgroup_of(residents[0])
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(str::to_owned);
    assert_eq!(resident_v2, supervisor_v2);
    let (executed, _output) = exec(&sb.client, &cid, &["sleep", "30"]);
    assert_eq!(cgroup_of(executed.host_pid), init_cgroups);
    let listed: Vec<i32> = processes(&sb.client, &cid)
        .iter()
        .map(|p| p.host_pid)
        .collect();
    assert_eq!(listed, vec![started.pid, executed.host_pid]);
    // Without it (killed from outside), execs go through the main spawner
    // and still join the container's cgroups.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(residents[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the resident");
    assert_eq!(residents_after(&sb, PATIENCE), Vec::<i32>::new());
    assert_eq!(zombie_children(sb.sv.pid(), PATIENCE), Vec::<i32>::new());
    let (again, _output) = exec(&sb.client, &cid, &["sleep", "30"]);
    assert_eq!(cgroup_of(again.host_pid), init_cgroups);
    let listed: Vec<i32> = processes(&sb.client, &cid)
        .iter()
        .map(|p| p.host_pid)
        .collect();
    assert_eq!(listed, vec![started.pid, executed.host_pid, again.host_pid]);
    // Once the init has exited, no resident spawner is left.
    signal(&sb.client, &cid, libc::SIGKILL, 0, SignalMode::Process).expect("kill the init");
    assert_eq!(wait(&sb.client, &cid), libc::SIGKILL as u32);
    assert_eq!(residents_after(&sb, PATIENCE), Vec::<i32>::new());
}

#[test]
fn a_prewarmed_root_container_is_used_by_its_start_and_dropped_by_another() {
    let _host = shared_host();
    for (prewarmed, started_as) in [("warm-a", "warm-a"), ("warm-b", "warm-c")] {
        let mut sb = Sandbox::boot_with(&["--prewarm", prewarmed]);
        // Made while booting: the resident, which joins its v1 cgroups
        // while the supervisor starts (perhaps not yet when it is ready).
        // It takes its name once it has re-executed from the read-only
        // binary: wait for that, not for a time.
        let named = Instant::now() + PATIENCE;
        let mut residents = children_named(sb.sv.pid(), "sv-resident");
        while residents.is_empty() && Instant::now() < named {
            std::thread::sleep(Duration::from_millis(5));
            residents = children_named(sb.sv.pid(), "sv-resident");
        }
        assert_eq!(residents.len(), 1, "residents: {residents:?}");
        let prewarm_path = format!("/sandvisor/{SANDBOX}/{prewarmed}");
        let deadline = Instant::now() + PATIENCE;
        while !cgroup_of(residents[0])
            .lines()
            .any(|l| l.ends_with(&prewarm_path))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            cgroup_of(residents[0])
                .lines()
                .any(|l| l.ends_with(&prewarm_path)),
            "{}",
            cgroup_of(residents[0])
        );
        let bundle = Bundle::new("warm", &["sleep", "30"]);
        let (started, _output) = start_root(&sb.client, started_as, &bundle);
        let init_cgroups = cgroup_of(started.pid);
        let expected = format!("/sandvisor/{SANDBOX}/{started_as}");
        assert!(
            init_cgroups.lines().all(|l| l.ends_with(&expected)),
            "{init_cgroups}"
        );
        if prewarmed == started_as {
            // The same resident cloned the init: none was added.
            assert_eq!(children_named(sb.sv.pid(), "sv-resident"), residents);
        } else {
            // The prewarm is stopped; the container got its own resident.
            let after = residents_after_change(&sb, &residents, PATIENCE);
            assert_eq!(after.len(), 1, "residents: {after:?}");
            assert_ne!(after, residents);
        }
        sb.sv.stop_with(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(cgroup_dirs(SANDBOX, prewarmed), Vec::<PathBuf>::new());
        assert_eq!(cgroup_dirs(SANDBOX, started_as), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_subcontainer_takes_the_spare_resident_and_a_new_spare_is_made() {
    let _host = shared_host();
    let (sb, _root_bundle, _root_cid, _root) = sleeping_root("sparehost");
    // The spare lives in cgroups of its own beside the containers', in the
    // v1 hierarchies only.
    let v1: Vec<PathBuf> = cgroup_hierarchies()
        .into_iter()
        .filter(|h| !h.join("cgroup.controllers").exists())
        .collect();
    if v1.is_empty() {
        eprintln!("skipped: no cgroup v1 hierarchy, so no spare");
        return;
    }
    let spare_dirs = |serial: u32| -> Vec<PathBuf> {
        v1.iter()
            .map(|h| {
                h.join("sandvisor")
                    .join(SANDBOX)
                    .join(format!("spare@{}.{serial}", sb.sv.pid()))
            })
            .filter(|d| d.exists())
            .collect()
    };
    let first = unique("sparesub");
    create_sub(&sb.client, &first).expect("CreateSubcontainer");
    // Once ready, its resident is in spare@PID.1 in every v1 hierarchy.
    let spare_pid = wait_for_spare(&sb, &format!("spare@{}.1", sb.sv.pid()));
    assert_eq!(spare_dirs(1).len(), v1.len());
    let bundle = Bundle::new("spare", &["sleep", "30"]);
    let (started, _output) = start_sub(&sb.client, &first, &bundle);
    let started = started.expect("StartSubcontainer");
    // The start took it: its cgroups were renamed to the container's, and
    // its resident cloned the init.
    assert_eq!(spare_dirs(1), Vec::<PathBuf>::new());
    let init_cgroups = cgroup_of(started.pid);
    assert!(
        init_cgroups
            .lines()
            .all(|l| l.ends_with(&format!("/sandvisor/{SANDBOX}/{first}"))),
        "{init_cgroups}"
    );
    assert!(
        cgroup_of(spare_pid)
            .lines()
            .filter(|l| !l.starts_with("0::"))
            .all(|l| l.ends_with(&format!("/sandvisor/{SANDBOX}/{first}"))),
        "the adopted resident: {}",
        cgroup_of(spare_pid)
    );
    // A new spare is on its way for the next one.
    wait_for_spare(&sb, &format!("spare@{}.2", sb.sv.pid()));
    destroy_sub(&sb.client, &first).expect("DestroySubcontainer");
    assert_eq!(cgroup_dirs(SANDBOX, &first), Vec::<PathBuf>::new());
    assert!(host_stat(spare_pid).is_none_or(|s| s.state == 'Z'));
}

/// The pid of the supervisor's resident whose cgroups are `name`, once
/// there is one.
fn wait_for_spare(sb: &Sandbox, name: &str) -> i32 {
    let needle = format!("/sandvisor/{SANDBOX}/{name}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = children_named(sb.sv.pid(), "sv-resident")
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|c| c.lines().any(|l| l.ends_with(&needle)))
            });
        if let Some(pid) = found {
            return pid;
        }
        assert!(Instant::now() < deadline, "no resident in {name}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The supervisor's resident spawners once they differ from `before`.
fn residents_after_change(sb: &Sandbox, before: &[i32], patience: Duration) -> Vec<i32> {
    let deadline = Instant::now() + patience;
    loop {
        let residents = children_named(sb.sv.pid(), "sv-resident");
        if residents != before || Instant::now() > deadline {
            return residents;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The supervisor's resident spawners once none is left, or at the end of
/// `patience`.
fn residents_after(sb: &Sandbox, patience: Duration) -> Vec<i32> {
    let deadline = Instant::now() + patience;
    loop {
        let residents = children_named(sb.sv.pid(), "sv-resident");
        if residents.is_empty() || Instant::now() > deadline {
            return residents;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn wait_pid_returns_the_status_once() {
    let _host = shared_host();
    let (sb, _bundle, cid, _started) = sleeping_root("waitpid");
    let (executed, _output) = exec(&sb.client, &cid, &["sh", "-c", "exit 4"]);
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        1024
    );
    assert_rpc_error(
        wait_pid(&sb.client, &cid, executed.pid),
        ErrorCode::NotFound,
        &[&format!("no process {}", executed.pid), &cid],
    );
    // A pid that never was.
    assert_rpc_error(
        wait_pid(&sb.client, &cid, 4000),
        ErrorCode::NotFound,
        &["4000"],
    );
}

#[test]
fn exec_errors_name_what_is_wrong() {
    let _host = shared_host();
    let (sb, _bundle, cid, _started) = sleeping_root("execerr");

    // Unknown container.
    let (result, _) = exec_with(&sb.client, exec_request("no-such-container", &["true"]));
    assert_rpc_error(result, ErrorCode::NotFound, &["\"no-such-container\""]);

    // Missing program.
    let (result, _) = exec_with(&sb.client, exec_request(&cid, &["/bin/nope"]));
    assert_rpc_error(
        result,
        ErrorCode::NotFound,
        &["exec", "\"/bin/nope\"", "errno 2"],
    );

    // Missing working directory.
    let mut req = exec_request(&cid, &["true"]);
    req.working_directory = Some("/no/such/cwd".into());
    let (result, _) = exec_with(&sb.client, req);
    assert_rpc_error(
        result,
        ErrorCode::NotFound,
        &["\"/no/such/cwd\"", "errno 2"],
    );

    // Empty argv.
    let (result, _) = exec_with(&sb.client, exec_request(&cid, &[]));
    assert_rpc_error(result, ErrorCode::InvalidArgument, &["argv"]);

    // Wrong descriptor count.
    let mut req = exec_request(&cid, &["true"]);
    req.fds = Fds(vec![File::open("/dev/null").expect("null").into()]);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["3", "got 1"],
    );

    // The container still runs, and exec still works.
    let (executed, mut output) = exec(&sb.client, &cid, &["echo", "still fine"]);
    assert_eq!(output.stdout(), "still fine\n");
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        0
    );
    // The failed execs left no descriptor and no zombie behind.
    assert_eq!(zombie_children(sb.sv.pid(), PATIENCE), Vec::<i32>::new());
    let baseline = sb.sv.baseline_fds(1);
    let (result, _) = exec_with(&sb.client, exec_request(&cid, &["/bin/nope"]));
    assert_rpc_error(result, ErrorCode::NotFound, &["\"/bin/nope\""]);
    assert_eq!(
        sb.sv.settle_fds(baseline),
        baseline,
        "supervisor descriptors"
    );
}

#[test]
fn exec_overrides_environment_cwd_and_no_new_privileges() {
    let _host = shared_host();
    let (sb, _bundle, cid, _started) = sleeping_root("execenv");
    let mut req = exec_request(
        &cid,
        &["sh", "-c", "echo \"foo=$FOO\"; echo \"path=$PATH\"; echo \"term=$TERM\"; echo \"cwd=$(pwd)\"; while read -r l; do case \"$l\" in NoNewPrivs*) echo \"nnp=$l\";; esac; done < /proc/$$/status"],
    );
    req.envv = vec!["FOO=bar".into(), "TERM=dumb".into()];
    req.working_directory = Some("/tmp".into());
    req.no_new_privileges = Some(false);
    let (result, mut output) = exec_with(&sb.client, req);
    let executed = result.expect("exec");
    let stdout = output.stdout();
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        0
    );
    let kv = pairs(&stdout);
    assert_eq!(value(&kv, "foo"), "bar");
    // The container's PATH is kept; its TERM is overridden.
    assert_eq!(
        value(&kv, "path"),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(value(&kv, "term"), "dumb");
    assert_eq!(value(&kv, "cwd"), "/tmp");
    assert_eq!(status_field(value(&kv, "nnp"), "NoNewPrivs"), "0");
}

#[test]

fn exec_as_another_user() {
    let _host = shared_host();
    let (sb, bundle, cid, _started) = sleeping_root("execuser");
    let mut req = exec_request(
        &cid,
        &[
            "sh",
            "-c",
            &format!("echo \"uid=$(id -u)\"; echo \"gid=$(id -g)\"; {OWN_CAPS}"),
        ],
    );
    req.kuid = Some(1000);
    req.kgid = Some(1000);
    let (result, mut output) = exec_with(&sb.client, req);
    // Today: permission_denied, "drop bounding capability \"0\": operation
    // not permitted (errno 1)".
    let executed = result.expect("exec as uid 1000");
    let stdout = output.stdout();
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        0
    );
    let kv = pairs(&stdout);
    assert_eq!(value(&kv, "uid"), "1000");
    assert_eq!(value(&kv, "gid"), "1000");
    // The bounding set is the container's; a non-root process keeps no
    // permitted or effective capability across its exec (no ambient set).
    assert_eq!(
        status_field(&stdout, "CapBnd"),
        spec_capability_mask(&bundle.config, "bounding")
    );
    assert_eq!(status_field(&stdout, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(&stdout, "CapEff"), "0000000000000000");
}

#[test]
fn exec_into_a_stopped_container_fails_its_precondition() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("stopped");
    let bundle = Bundle::new("stopped", &["true"]);
    let (_started, _output) = start_root(&sb.client, &cid, &bundle);
    assert_eq!(wait(&sb.client, &cid), 0);
    let (result, _) = exec_with(&sb.client, exec_request(&cid, &["true"]));
    assert_rpc_error(
        result,
        ErrorCode::FailedPrecondition,
        &[&format!("{cid:?}"), "not running"],
    );
}

#[test]
fn exec_gets_the_container_capabilities_unless_given_others() {
    let _host = shared_host();
    let (sb, bundle, cid, _started) = sleeping_root("execcaps");
    let (executed, mut output) = exec(&sb.client, &cid, &["sh", "-c", OWN_CAPS]);
    let status = output.stdout();
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        0
    );
    for (field, set) in [
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapBnd", "bounding"),
    ] {
        assert_eq!(
            status_field(&status, field),
            spec_capability_mask(&bundle.config, set),
            "{field}"
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");

    let mut req = exec_request(&cid, &["sh", "-c", OWN_CAPS]);
    req.capabilities = Some(ExecCapabilities {
        bounding: vec!["CAP_KILL".into(), "CAP_CHOWN".into()],
        effective: vec!["CAP_KILL".into()],
        inheritable: Vec::new(),
        permitted: vec!["CAP_KILL".into()],
        ambient: Vec::new(),
    });
    let (result, mut output) = exec_with(&sb.client, req);
    let executed = result.expect("exec with capabilities");
    let status = output.stdout();
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        0
    );
    assert_eq!(
        status_field(&status, "CapEff"),
        capability_mask(["CAP_KILL"])
    );
    assert_eq!(
        status_field(&status, "CapPrm"),
        capability_mask(["CAP_KILL"])
    );
    assert_eq!(
        status_field(&status, "CapBnd"),
        capability_mask(["CAP_KILL", "CAP_CHOWN"])
    );
    assert_eq!(status_field(&status, "CapEff"), "0000000000000020");

    // An unknown capability name is refused, naming it.
    let mut req = exec_request(&cid, &["true"]);
    req.capabilities = Some(ExecCapabilities {
        effective: vec!["CAP_NOPE".into()],
        ..Default::default()
    });
    let (result, _) = exec_with(&sb.client, req);
    assert_rpc_error(
        result,
        ErrorCode::InvalidArgument,
        &["capabilities.effective", "CAP_NOPE"],
    );
}

// ---------------------------------------------------------------------------
// 4. Signals
// ---------------------------------------------------------------------------

#[test]
fn signal_to_the_init_runs_its_trap() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("sigterm");
    let bundle = Bundle::new(
        "sigterm",
        &[
            "sh",
            "-c",
            "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let (_started, mut output) = start_root(&sb.client, &cid, &bundle);
    // The trap is set once "ready" is out (an init ignores signals it has
    // no handler for).
    output.wait_for("ready\n");
    signal(&sb.client, &cid, libc::SIGTERM, 0, SignalMode::Process).expect("SIGTERM");
    assert_eq!(wait(&sb.client, &cid), 5 << 8);
}

#[test]
fn signal_all_processes_kills_every_process_of_the_container() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("sigall");
    let bundle = Bundle::new(
        "sigall",
        &["sh", "-c", "sleep 30 & sleep 30 & echo ready; wait"],
    );
    let (started, mut output) = start_root(&sb.client, &cid, &bundle);
    output.wait_for("ready\n");
    let (executed, _exec_output) = exec(&sb.client, &cid, &["sleep", "30"]);
    let listed = processes(&sb.client, &cid);
    let host: Vec<(i32, u64)> = listed
        .iter()
        .map(|p| {
            let stat = host_stat(p.host_pid)
                .unwrap_or_else(|| panic!("listed host pid {} does not exist", p.host_pid));
            (p.host_pid, stat.start)
        })
        .collect();
    assert_eq!(
        host.len(),
        4,
        "sh, two sleeps, the exec'd sleep: {listed:?}"
    );
    assert!(host.iter().any(|(pid, _)| *pid == started.pid));
    assert!(host.iter().any(|(pid, _)| *pid == executed.host_pid));

    signal(&sb.client, &cid, libc::SIGKILL, 0, SignalMode::AllProcesses).expect("SIGKILL all");
    assert_eq!(wait(&sb.client, &cid), libc::SIGKILL as u32);
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        libc::SIGKILL as u32
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = still_there(&host);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(zombie_children(sb.sv.pid(), PATIENCE), Vec::<i32>::new());
}

#[test]
fn signal_process_group_reaches_the_whole_group_only() {
    let _host = shared_host();
    let (sb, _bundle, cid, started) = sleeping_root("sigpgrp");
    // An exec'd process leads its own session and group; its children
    // (no job control) stay in it.
    let (executed, mut output) = exec(
        &sb.client,
        &cid,
        &["sh", "-c", "sleep 30 & sleep 30 & echo ready; wait"],
    );
    output.wait_for("ready\n");
    let listed = processes(&sb.client, &cid);
    assert_eq!(listed.len(), 4, "{listed:?}");
    let group: Vec<(i32, u64)> = listed
        .iter()
        .filter(|p| p.host_pid != started.pid)
        .map(|p| {
            assert_eq!(p.pgid, executed.host_pid, "{p:?}");
            (p.host_pid, host_stat(p.host_pid).expect("exists").start)
        })
        .collect();
    assert_eq!(group.len(), 3);

    signal(
        &sb.client,
        &cid,
        libc::SIGTERM,
        executed.pid,
        SignalMode::ProcessGroup,
    )
    .expect("SIGTERM the group");
    assert_eq!(
        wait_pid(&sb.client, &cid, executed.pid).expect("WaitPID"),
        libc::SIGTERM as u32
    );
    // Every member is dead: gone, or (its parent died first) a zombie
    // orphan of the container's init, which, like a runc container's
    // `sleep` init, does not reap: pid namespace semantics, not the
    // supervisor's doing.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let alive: Vec<(i32, HostStat)> = still_there(&group)
            .into_iter()
            .filter(|(_, s)| !(s.state == 'Z' && s.ppid == started.pid))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "group members left: {alive:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The init, in another group, still runs.
    let left = processes(&sb.client, &cid);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].pid, left[0].host_pid), (1, started.pid));
}

#[test]
fn signal_errors_name_what_is_wrong() {
    let _host = shared_host();
    let (sb, _bundle, cid, _started) = sleeping_root("sigerr");
    for signo in [0, 65, -1] {
        assert_rpc_error(
            signal(&sb.client, &cid, signo, 0, SignalMode::Process),
            ErrorCode::InvalidArgument,
            &[&format!("invalid signal {signo}")],
        );
    }
    assert_rpc_error(
        signal(
            &sb.client,
            "no-such-container",
            libc::SIGTERM,
            0,
            SignalMode::Process,
        ),
        ErrorCode::NotFound,
        &["\"no-such-container\""],
    );
    assert_rpc_error(
        signal(&sb.client, &cid, libc::SIGTERM, 4000, SignalMode::Process),
        ErrorCode::NotFound,
        &["4000"],
    );
    assert_rpc_error(
        signal(&sb.client, &cid, libc::SIGKILL, 1, SignalMode::AllProcesses),
        ErrorCode::InvalidArgument,
        &["all_processes", "1"],
    );
    // The init has no terminal.
    assert_rpc_error(
        signal(
            &sb.client,
            &cid,
            libc::SIGINT,
            0,
            SignalMode::ForegroundProcessGroup,
        ),
        ErrorCode::FailedPrecondition,
        &["terminal"],
    );
    // None of that touched the container.
    assert_eq!(processes(&sb.client, &cid).len(), 1);

    // A stopped container.
    signal(&sb.client, &cid, libc::SIGKILL, 0, SignalMode::Process).expect("SIGKILL");
    assert_eq!(wait(&sb.client, &cid), libc::SIGKILL as u32);
    assert_rpc_error(
        signal(&sb.client, &cid, libc::SIGTERM, 0, SignalMode::Process),
        ErrorCode::FailedPrecondition,
        &[&format!("{cid:?}"), "not running"],
    );
}

// ---------------------------------------------------------------------------
// 5. Processes
// ---------------------------------------------------------------------------

#[test]
fn processes_lists_the_init_and_an_exec_exactly() {
    let _host = shared_host();
    let (sb, _bundle, cid, started) = sleeping_root("procs");
    let (executed, _output) = exec(&sb.client, &cid, &["sleep", "31"]);
    let listed = processes(&sb.client, &cid);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (init, other) = (&listed[0], &listed[1]);

    assert_eq!(
        (init.pid, init.host_pid, init.ppid, init.uid),
        (1, started.pid, 0, 0)
    );
    assert_eq!(init.command, "sleep 30");
    assert_eq!(init.tty, "?");
    assert_eq!(init.threads, 1);
    // Every spawned process leads its own session and group.
    assert_eq!(init.pgid, started.pid);

    assert_eq!(
        (other.pid, other.host_pid, other.ppid, other.uid),
        (executed.pid, executed.host_pid, 0, 0)
    );
    assert_eq!(other.command, "sleep 31");
    assert_eq!(other.tty, "?");
    assert_eq!(other.threads, 1);
    assert_eq!(other.pgid, executed.host_pid);

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    for p in &listed {
        // The host pids are real, and are those processes.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.host_pid))
            .unwrap_or_else(|e| panic!("host pid {}: {e}", p.host_pid));
        let cmdline: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(cmdline.join(" "), p.command);
        // Started moments ago (start times are in clock ticks: allow 2 s).
        assert!(
            p.start_time_ms <= now_ms + 2_000 && p.start_time_ms + 60_000 >= now_ms,
            "start time {} vs now {now_ms}",
            p.start_time_ms
        );
        assert!(p.cpu_percent >= 0.0 && p.cpu_percent <= 100.0, "{p:?}");
    }

    assert_rpc_error(
        call(
            &sb.client,
            Processes {
                cid: "no-such-container".into(),
            },
        ),
        ErrorCode::NotFound,
        &["\"no-such-container\""],
    );
}

// ---------------------------------------------------------------------------
// 6. Wait
// ---------------------------------------------------------------------------

#[test]
fn concurrent_waiters_all_get_the_status_and_later_waits_get_it_at_once() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("waiters");
    let bundle = Bundle::new("waiters", &["sh", "-c", "read x; exit 3"]);
    let (stdin_read, stdin_write) = pipe();
    let (fds, mut output) = stdio_with_stdin(stdin_read);
    let started = call(
        &sb.client,
        StartRoot {
            cid: cid.clone(),
            spec: bundle.spec(),
            bundle: Some(bundle.path_string()),
            console_socket: None,
            preserve_fds: 0,
            hold: false,
            caller_spawner: false,
            fds: Fds(fds),
        },
    )
    .expect("StartRoot");
    assert!(started.pid > 0);

    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let client = sb.sv.client();
            let cid = cid.clone();
            std::thread::spawn(move || {
                let status = wait(&client, &cid);
                (status, Instant::now())
            })
        })
        .collect();
    // Let every waiter reach the supervisor before the container exits.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "a Wait returned early"
    );
    let released = Instant::now();
    nix::unistd::write(&stdin_write, b"go\n").expect("write stdin");
    drop(stdin_write);
    for waiter in waiters {
        let (status, answered) = waiter.join().expect("waiter");
        assert_eq!(status, 3 << 8);
        assert!(answered >= released, "a Wait was answered before the exit");
    }
    assert_eq!(output.stdout(), "");

    // After the exit: at once, as often as asked (a Wait that waited for
    // another exit would never return: any bound tells them apart, so a
    // loose one, not a guess at a loaded machine's speed).
    for _ in 0..3 {
        let t0 = Instant::now();
        assert_eq!(wait(&sb.client, &cid), 3 << 8);
        assert!(t0.elapsed() < PATIENCE, "{:?}", t0.elapsed());
    }
    assert_rpc_error(
        call(
            &sb.client,
            Wait {
                cid: "no-such-container".into(),
            },
        ),
        ErrorCode::NotFound,
        &["\"no-such-container\""],
    );
}

// ---------------------------------------------------------------------------
// 7. Subcontainers
// ---------------------------------------------------------------------------

fn create_sub(client: &Client, cid: &str) -> Result<(), ClientError> {
    call(
        client,
        CreateSubcontainer {
            cid: cid.to_owned(),
            fds: Fds::none(),
        },
    )
    .map(|_| ())
}

fn start_sub(
    client: &Client,
    cid: &str,
    bundle: &Bundle,
) -> (Result<Started, ClientError>, Output) {
    let (fds, output) = stdio();
    let result = call(
        client,
        StartSubcontainer {
            cid: cid.to_owned(),
            spec: bundle.spec(),
            bundle: Some(bundle.path_string()),
            console_socket: None,
            preserve_fds: 0,
            hold: false,
            caller_spawner: false,
            fds: Fds(fds),
        },
    );
    (result, output)
}

fn destroy_sub(client: &Client, cid: &str) -> Result<(), ClientError> {
    call(
        client,
        DestroySubcontainer {
            cid: cid.to_owned(),
        },
    )
    .map(|_| ())
}

#[test]
fn a_subcontainer_shares_uts_and_net_and_has_its_own_pid_and_mount_namespaces() {
    let _host = shared_host();
    let (sb, _root_bundle, root_cid, root) = sleeping_root("subroot");
    let sub_cid = unique("sub");
    // Its spec's hostname is not applied: the UTS namespace is the sandbox's.
    let sub_bundle = Bundle::new(
        "sub-own-name",
        &[
            "sh",
            "-c",
            "echo \"pid=$$\"; echo \"hostname=$(hostname)\"; for ns in net uts ipc mnt pid; do echo \"$ns=$(readlink /proc/self/ns/$ns)\"; done",
        ],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let started = started.expect("StartSubcontainer");
    assert_ne!(started.pid, root.pid);
    let stdout = output.stdout();
    assert_eq!(
        exit_code(wait(&sb.client, &sub_cid)),
        Some(0),
        "stderr: {}",
        output.stderr()
    );
    let kv = pairs(&stdout);
    assert_eq!(value(&kv, "pid"), "1");
    assert_eq!(value(&kv, "hostname"), "host-subroot");
    for shared in ["net", "uts", "ipc"] {
        assert_eq!(
            value(&kv, shared),
            namespace_inode(root.pid, shared),
            "{shared} namespace"
        );
    }
    for own in ["mnt", "pid"] {
        let root_ns = namespace_inode(root.pid, own);
        assert_ne!(value(&kv, own), root_ns, "{own} namespace");
        assert_ne!(
            value(&kv, own),
            namespace_inode(std::process::id() as i32, own),
            "{own} namespace is the host's"
        );
    }
    // The root is untouched.
    let listed = processes(&sb.client, &root_cid);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].host_pid, root.pid);
}

#[test]
fn destroying_a_subcontainer_leaves_nothing_of_it() {
    let _host = shared_host();
    let (sb, _root_bundle, _root_cid, _root) = sleeping_root("destroyroot");
    let sub_cid = unique("doomed");
    let sub_bundle = Bundle::new(
        "doomed",
        &[
            "sh",
            "-c",
            "for i in $(seq 20); do sleep 30 & done; echo ready; wait",
        ],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let started = started.expect("StartSubcontainer");
    output.wait_for("ready\n");
    let (executed, _exec_output) = exec(&sb.client, &sub_cid, &["sleep", "30"]);
    let listed = processes(&sb.client, &sub_cid);
    assert_eq!(
        listed.len(),
        22,
        "sh, 20 sleeps, an exec'd sleep: {listed:?}"
    );
    assert!(listed
        .iter()
        .any(|p| p.host_pid == started.pid && p.pid == 1));
    assert!(listed.iter().any(|p| p.host_pid == executed.host_pid));
    let host: Vec<(i32, u64)> = listed
        .iter()
        .map(|p| (p.host_pid, host_stat(p.host_pid).expect("exists").start))
        .collect();
    let dirs = cgroup_dirs(SANDBOX, &sub_cid);
    assert_eq!(
        dirs.len(),
        cgroup_hierarchies().len(),
        "one cgroup per hierarchy: {dirs:?}"
    );
    assert!(sb.state_dir().join(&sub_cid).exists());

    destroy_sub(&sb.client, &sub_cid).expect("DestroySubcontainer");
    assert_eq!(
        still_there(&host),
        Vec::new(),
        "processes left after destroy"
    );
    assert_eq!(
        zombie_children(sb.sv.pid(), Duration::ZERO),
        Vec::<i32>::new(),
        "zombies of the supervisor right after destroy"
    );
    assert_eq!(cgroup_dirs(SANDBOX, &sub_cid), Vec::<PathBuf>::new());
    assert!(
        !sb.state_dir().join(&sub_cid).exists(),
        "state directory left"
    );
    assert_eq!(processes_in_cgroup_of(&sub_cid), Vec::<i32>::new());

    assert_rpc_error(
        destroy_sub(&sb.client, &sub_cid),
        ErrorCode::NotFound,
        &[&format!("{sub_cid:?}")],
    );
    assert_rpc_error(
        call(
            &sb.client,
            Wait {
                cid: sub_cid.clone(),
            },
        ),
        ErrorCode::NotFound,
        &[&format!("{sub_cid:?}")],
    );
}

#[test]
fn subcontainer_preconditions_and_ids() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let bundle = Bundle::new("subpre", &["true"]);
    let sub_cid = unique("early");

    // No root container yet.
    assert_rpc_error(
        create_sub(&sb.client, &sub_cid),
        ErrorCode::FailedPrecondition,
        &["root container"],
    );
    let (result, _) = start_sub(&sb.client, &sub_cid, &bundle);
    assert_rpc_error(result, ErrorCode::FailedPrecondition, &["root container"]);

    let root_cid = unique("subpre-root");
    let root_bundle = Bundle::new("subpre", &["sleep", "30"]);
    let (root, _root_output) = start_root(&sb.client, &root_cid, &root_bundle);

    // Ids: the root's, a created one, an invalid one.
    assert_rpc_error(
        create_sub(&sb.client, &root_cid),
        ErrorCode::AlreadyExists,
        &[&format!("{root_cid:?}")],
    );
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    assert_rpc_error(
        create_sub(&sb.client, &sub_cid),
        ErrorCode::AlreadyExists,
        &[&format!("{sub_cid:?}")],
    );
    assert_rpc_error(
        create_sub(&sb.client, "../escape"),
        ErrorCode::InvalidArgument,
        &["\"../escape\""],
    );
    // Start of an id never created; the root cannot be destroyed this way.
    let (result, _) = start_sub(&sb.client, "never-created", &bundle);
    assert_rpc_error(result, ErrorCode::NotFound, &["\"never-created\""]);
    assert_rpc_error(
        destroy_sub(&sb.client, &root_cid),
        ErrorCode::FailedPrecondition,
        &[&format!("{root_cid:?}")],
    );

    // Started once only.
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &bundle);
    started.expect("StartSubcontainer");
    assert_eq!(output.stdout(), "");
    assert_eq!(wait(&sb.client, &sub_cid), 0);
    let (result, _) = start_sub(&sb.client, &sub_cid, &bundle);
    assert_rpc_error(
        result,
        ErrorCode::FailedPrecondition,
        &[&format!("{sub_cid:?}"), "started"],
    );
    destroy_sub(&sb.client, &sub_cid).expect("destroy an exited subcontainer");

    // Once the root has exited, no new subcontainer.
    signal(&sb.client, &root_cid, libc::SIGKILL, 0, SignalMode::Process).expect("SIGKILL");
    assert_eq!(wait(&sb.client, &root_cid), libc::SIGKILL as u32);
    assert!(root.pid > 0);
    assert_rpc_error(
        create_sub(&sb.client, &unique("late")),
        ErrorCode::FailedPrecondition,
        &["root container"],
    );
}

// ---------------------------------------------------------------------------
// 8. A failed start leaves nothing behind
// ---------------------------------------------------------------------------

/// Starts `bundle` as the root `cid`, expects the failure, and checks that
/// nothing of the container is left; returns the error message.
fn failed_start_leaves_nothing(
    sb: &Sandbox,
    cid: &str,
    bundle: &Bundle,
    code: ErrorCode,
    parts: &[&str],
) -> String {
    let baseline = sb.sv.baseline_fds(1);
    let host_mounts = mountinfo("self");
    let supervisor_mounts = mountinfo(&sb.sv.pid().to_string());
    let children_before = children(sb.sv.pid());

    let (req, mut output) = start_root_request(cid, bundle);
    let message = assert_rpc_error(call(&sb.client, req), code, parts);

    // The supervisor closed its copies of the pipes, and nothing else
    // holds them: no process of the container is left.
    assert_eq!(output.stdout(), "");
    assert_eq!(
        children(sb.sv.pid()),
        children_before,
        "children of the supervisor"
    );
    assert_eq!(
        zombie_children(sb.sv.pid(), Duration::ZERO),
        Vec::<i32>::new()
    );
    assert_eq!(processes_in_cgroup_of(cid), Vec::<i32>::new());
    assert_eq!(cgroup_dirs(SANDBOX, cid), Vec::<PathBuf>::new());
    assert!(
        !sb.state_dir().join(cid).exists(),
        "state directory {} left",
        sb.state_dir().join(cid).display()
    );
    assert_eq!(mountinfo("self"), host_mounts, "host mounts changed");
    assert_eq!(
        mountinfo(&sb.sv.pid().to_string()),
        supervisor_mounts,
        "supervisor mounts changed"
    );
    assert_eq!(
        sb.sv.settle_fds(baseline),
        baseline,
        "supervisor descriptors"
    );
    // The id is free again.
    assert_rpc_error(
        call(
            &sb.client,
            Wait {
                cid: cid.to_owned(),
            },
        ),
        ErrorCode::NotFound,
        &[&format!("{cid:?}")],
    );
    message
}

#[test]
fn a_start_failing_on_a_missing_bind_source_leaves_nothing_and_frees_the_id() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("badbind");
    let mut bundle = Bundle::new("badbind", &["sh", "-c", "echo started; cat /data/x"]);
    let missing = format!("/nonexistent-source-{cid}");
    bundle.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "bind", "source": missing,
            "options": ["rbind", "ro"]
        }));
    });
    failed_start_leaves_nothing(
        &sb,
        &cid,
        &bundle,
        ErrorCode::NotFound,
        &[&missing, "errno 2"],
    );

    // Fixed, the same id starts.
    let source = tempfile::tempdir().expect("temp dir");
    std::fs::write(source.path().join("x"), "bound\n").expect("write");
    let source_path = source.path().to_str().expect("utf-8").to_owned();
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.last_mut().expect("the bind")["source"] = json!(source_path);
    });
    let (_started, mut output) = start_root(&sb.client, &cid, &bundle);
    assert_eq!(output.stdout(), "started\nbound\n");
    assert_eq!(wait(&sb.client, &cid), 0);
}

#[test]
fn a_start_failing_on_a_missing_program_leaves_nothing_and_frees_the_id() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let cid = unique("badexec");
    let mut bundle = Bundle::new("badexec", &["/bin/no-such-program"]);
    failed_start_leaves_nothing(
        &sb,
        &cid,
        &bundle,
        ErrorCode::NotFound,
        &["exec", "\"/bin/no-such-program\"", "errno 2"],
    );
    bundle.edit(|c| c["process"]["args"] = json!(["echo", "second try"]));
    let (_started, mut output) = start_root(&sb.client, &cid, &bundle);
    assert_eq!(output.stdout(), "second try\n");
    assert_eq!(wait(&sb.client, &cid), 0);
}

// ---------------------------------------------------------------------------
// 9. Bad input
// ---------------------------------------------------------------------------

/// `sandvisor run --bundle` of a bundle; returns (exit code, stderr).
fn run_bundle(bundle: &Bundle, id: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("temp dir");
    let (status, stdout, stderr) = run_cli(
        &[
            "--root",
            root.path().to_str().expect("utf-8"),
            "run",
            "--bundle",
            &bundle.path_string(),
            "--id",
            id,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(stdout, "", "stderr: {stderr}");
    (status.code(), stderr, root)
}

/// The 1-based line of config.json holding `needle`.
fn config_line(bundle: &Bundle, needle: &str) -> usize {
    let text = std::fs::read_to_string(bundle.path().join("config.json")).expect("config");
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in config.json"))
        + 1
}

#[test]
fn run_refuses_invalid_configs_naming_the_problem() {
    let _host = shared_host();
    let config_path = |b: &Bundle| b.path().join("config.json").display().to_string();

    // JSON syntax error.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\",\n \"process\": {\n",
    )
    .expect("write");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("syntax"));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid {}: EOF while parsing an object at line 3 column 0\n",
            config_path(&bundle)
        )
    );

    // Wrong type for process.args.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| c["process"]["args"] = json!("sh -c true"));
    let line = config_line(&bundle, "\"args\": \"sh -c true\"");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("argstype"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "sandvisor: invalid {}: invalid type: string \"sh -c true\", expected a sequence at line {line} column ",
            config_path(&bundle)
        )),
        "{stderr:?}"
    );

    // Unknown namespace type.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({"type": "foo"}))
    });
    let line = config_line(&bundle, "\"foo\"");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("nstype"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "sandvisor: invalid {}: unknown variant `foo`, expected one of ",
            config_path(&bundle)
        )) && stderr.contains(&format!("at line {line} column ")),
        "{stderr:?}"
    );

    // Relative mount destination.
    let mut bundle = Bundle::new("bad", &["true"]);
    bundle.edit(|c| c["mounts"][0]["destination"] = json!("proc"));
    let id = unique("reldest");
    let (code, stderr, root) = run_bundle(&bundle, &id);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "sandvisor: invalid_argument: mounts[0].destination: \"proc\" is not absolute\n"
    );
    assert!(!root.path().join(&id).exists(), "state left by {id}");

    // Missing rootfs directory.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::remove_dir_all(bundle.rootfs()).expect("remove rootfs");
    let id = unique("norootfs");
    let (code, stderr, root) = run_bundle(&bundle, &id);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid_argument: root.path: {} is not a directory\n",
            bundle.rootfs().display()
        )
    );
    assert!(!root.path().join(&id).exists(), "state left by {id}");
    assert_eq!(cgroup_dirs(&id, &id), Vec::<PathBuf>::new());

    // No config.json at all.
    let bundle = Bundle::new("bad", &["true"]);
    std::fs::remove_file(bundle.path().join("config.json")).expect("remove");
    let (code, stderr, _root) = run_bundle(&bundle, &unique("noconfig"));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "sandvisor: invalid {}: no such file or directory (os error 2)\n",
            config_path(&bundle)
        )
    );
}

#[test]
fn start_root_refuses_bad_descriptors_specs_and_duplicates() {
    let _host = shared_host();
    let sb = Sandbox::boot();
    let bundle = Bundle::new("dup", &["sleep", "30"]);
    let cid = unique("fds");

    // Two descriptors instead of three: refused, and both are closed.
    let (out_r, out_w) = pipe();
    let null: OwnedFd = File::open("/dev/null").expect("null").into();
    let req = StartRoot {
        cid: cid.clone(),
        spec: bundle.spec(),
        bundle: Some(bundle.path_string()),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: Fds(vec![null, out_w]),
    };
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["3", "stdin, stdout, stderr", "got 2"],
    );
    assert!(writers_all_closed(&out_r, PATIENCE));

    // Spec errors, by field.
    let mut bad = Bundle::new("dup", &["sleep", "30"]);
    bad.edit(|c| c["mounts"][0]["destination"] = json!("proc"));
    let (req, _output) = start_root_request(&cid, &bad);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["mounts[0].destination", "\"proc\"", "not absolute"],
    );
    let mut bad = Bundle::new("dup", &["sleep", "30"]);
    bad.edit(|c| c["process"]["args"] = json!([]));
    let (req, _output) = start_root_request(&cid, &bad);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["process.args"],
    );
    let (mut req, _output) = start_root_request("../up", &bundle);
    req.cid = "../up".into();
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::InvalidArgument,
        &["\"../up\""],
    );

    // The id is still free: it starts.
    let (started, _output) = start_root(&sb.client, &cid, &bundle);
    assert!(started.pid > 0);

    // The same id again, or another root.
    let (out_r, out_w) = pipe();
    let null: OwnedFd = File::open("/dev/null").expect("null").into();
    let err_w = out_w.try_clone().expect("dup");
    let req = StartRoot {
        cid: cid.clone(),
        spec: bundle.spec(),
        bundle: Some(bundle.path_string()),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: Fds(vec![null, out_w, err_w]),
    };
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::AlreadyExists,
        &[&format!("{cid:?}")],
    );
    assert!(writers_all_closed(&out_r, PATIENCE));
    let (req, _output) = start_root_request(&unique("second-root"), &bundle);
    assert_rpc_error(
        call(&sb.client, req),
        ErrorCode::AlreadyExists,
        &["root container", &format!("{cid:?}")],
    );
    // The running root was not disturbed.
    let listed = processes(&sb.client, &cid);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].host_pid, started.pid);
}

// ---------------------------------------------------------------------------
// 10. No zombies, no leaks
// ---------------------------------------------------------------------------

/// Exec+WaitPID cycles of `true`. The issue asks for 1,000: on a 2-core
/// host 1,000 take about 4 s in a debug build, well under the ~20 s
/// budget, so all 1,000 are run.
const CYCLES: usize = 1_000;

#[test]
fn many_exec_and_wait_cycles_leave_no_zombie_and_no_descriptor() {
    let _host = whole_host();
    let (sb, _bundle, cid, _started) = sleeping_root("cycles");
    let baseline = sb.sv.baseline_fds(1);
    let t0 = Instant::now();
    for i in 0..CYCLES {
        let null = || -> OwnedFd { File::open("/dev/null").expect("null").into() };
        let mut req = exec_request(&cid, &["true"]);
        req.fds = Fds(vec![null(), null(), null()]);
        let executed = call(&sb.client, req).unwrap_or_else(|e| panic!("exec #{i}: {e}"));
        let status = wait_pid(&sb.client, &cid, executed.pid)
            .unwrap_or_else(|e| panic!("WaitPID #{i} (pid {}): {e}", executed.pid));
        assert_eq!(status, 0, "exec #{i}");
    }
    let elapsed = t0.elapsed();
    eprintln!("{CYCLES} exec+WaitPID cycles in {elapsed:?}");
    assert_eq!(
        zombie_children(sb.sv.pid(), PATIENCE),
        Vec::<i32>::new(),
        "zombies of the supervisor"
    );
    assert_eq!(
        sb.sv.settle_fds(baseline),
        baseline,
        "supervisor descriptors"
    );
    // Only the init is left in the container.
    let listed = processes(&sb.client, &cid);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].pid, 1);
}

#[test]
fn concurrent_execs_on_several_connections_are_all_reaped() {
    let _host = whole_host();
    let (sb, _bundle, cid, _started) = sleeping_root("concexec");
    let baseline = sb.sv.baseline_fds(1);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let client = sb.sv.client();
            let cid = cid.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    // Exit codes differ per worker and round: statuses must
                    // not be swapped between processes.
                    let code = (w * 100 + i) % 256;
                    let script = format!("exit {code}");
                    let (executed, _output) = exec(&client, &cid, &["sh", "-c", &script]);
                    let status = wait_pid(&client, &cid, executed.pid)
                        .unwrap_or_else(|e| panic!("worker {w} WaitPID #{i}: {e}"));
                    assert_eq!(status, (code as u32) << 8, "worker {w} round {i}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    assert_eq!(zombie_children(sb.sv.pid(), PATIENCE), Vec::<i32>::new());
    assert_eq!(
        sb.sv.settle_fds(baseline),
        baseline,
        "supervisor descriptors"
    );
    assert_eq!(processes(&sb.client, &cid).len(), 1);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[test]
fn a_graceful_stop_kills_and_removes_every_container() {
    let _host = shared_host();
    let (mut sb, _bundle, root_cid, root) = sleeping_root("shutdown");
    let sub_cid = unique("shutdown-sub");
    let sub_bundle = Bundle::new("ignored", &["sh", "-c", "sleep 30 & echo ready; wait"]);
    create_sub(&sb.client, &sub_cid).expect("CreateSubcontainer");
    let (started, mut output) = start_sub(&sb.client, &sub_cid, &sub_bundle);
    let sub = started.expect("StartSubcontainer");
    output.wait_for("ready\n");
    let mut host: Vec<(i32, u64)> = Vec::new();
    for cid in [&root_cid, &sub_cid] {
        assert_eq!(cgroup_dirs(SANDBOX, cid).len(), cgroup_hierarchies().len());
        for p in processes(&sb.client, cid) {
            host.push((p.host_pid, host_stat(p.host_pid).expect("exists").start));
        }
    }
    assert_eq!(host.len(), 3, "root init, sub init, its sleep: {host:?}");
    assert!(host.iter().any(|(p, _)| *p == root.pid) && host.iter().any(|(p, _)| *p == sub.pid));

    let status = sb.sv.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        still_there(&host),
        Vec::new(),
        "processes left after shutdown"
    );
    for cid in [&root_cid, &sub_cid] {
        assert_eq!(cgroup_dirs(SANDBOX, cid), Vec::<PathBuf>::new(), "{cid}");
        assert!(!sb.state_dir().join(cid).exists(), "state of {cid} left");
    }
}

// ---------------------------------------------------------------------------
// A lost exit
// ---------------------------------------------------------------------------

/// Busy threads, stopped when dropped.
struct Spinners {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start(n: usize) -> Spinners {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Spinners { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// An init that exits before the ContainerManager has handled the
/// spawner's reply has its exit collected by the Reaper first; the manager
/// then registers the process (replaying the early exit) before it records
/// the process as the container's init, so the container's exit is never
/// recorded: Wait never returns, the container stays "running". Starving
/// the manager's thread (`sv-containers`, reniced to 19, against busy
/// threads) while inits run `true` makes this happen in most starts; on an
/// idle host it is rare (it hung `sandvisor run` in about one in ten runs of
/// this file, before the load-heavy tests were made to run alone).
#[test]

fn wait_returns_for_inits_that_exit_at_once() {
    let _host = whole_host();
    let sb = Sandbox::boot();
    let root_cid = unique("lost-root");
    let root_bundle = Bundle::new("lost", &["sleep", "300"]);
    let (_root, _root_output) = start_root(&sb.client, &root_cid, &root_bundle);
    let mut reniced = 0;
    for task in std::fs::read_dir(format!("/proc/{}/task", sb.sv.pid())).expect("tasks") {
        let task = task.expect("task");
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "sv-containers" {
            let tid: libc::id_t = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse().ok())
                .expect("tid");
            // SAFETY: setpriority with plain integers.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) }, 0);
            reniced += 1;
        }
    }
    assert_eq!(reniced, 1, "the ContainerManager's thread");
    let _spinners = Spinners::start(2);
    let bundle = Bundle::new("ignored", &["true"]);
    for i in 0..30 {
        let cid = format!("{root_cid}-{i}");
        create_sub(&sb.client, &cid).expect("CreateSubcontainer");
        let (started, _output) = start_sub(&sb.client, &cid, &bundle);
        started.expect("StartSubcontainer");
        let pending = sb
            .client
            .start_raw(
                Wait::NAME,
                &serde_cbor::to_vec(&Wait { cid: cid.clone() }).expect("cbor"),
                &[],
            )
            .expect("send Wait");
        match pending.wait_timeout(Duration::from_secs(5)) {
            Ok(reply) => {
                let status: sandvisor::api::container::WaitStatusReply =
                    reply.decode(Wait::NAME).expect("decode");
                assert_eq!(status.status, 0, "start #{i}");
            }
            Err(e) => {
                // Today: the container has no process left, yet Wait never
                // answers; a Signal to it goes to the dead init's raw pid.
                let left = processes(&sb.client, &cid);
                panic!(
                    "start #{i}: Wait did not return within 5 s ({e}) although the container has {} processes left",
                    left.len()
                );
            }
        }
        destroy_sub(&sb.client, &cid).expect("DestroySubcontainer");
    }
}
