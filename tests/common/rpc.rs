//! A booted supervisor driven over its socket, as the container tests drive
//! it: a [`Sandbox`] (a supervisor with a private `--root`, and a client),
//! typed calls with a deadline, the containerManager methods a test needs
//! (StartRoot, ExecuteAsync, Wait, WaitPID, Signal, Processes, the
//! subcontainer calls), and the stdio pipes of a process with what it
//! printed ([`Output`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sandvisor::actors::sys::process::WaitStatus;
use sandvisor::api::container::{
    CreateSubcontainer, DestroySubcontainer, ExecuteAsync, Executed, ProcessInfo, Processes,
    Signal, SignalMode, StartRoot, StartSubcontainer, Started, Wait, WaitPid,
};
use sandvisor::api::{CarriesFds, Fds, Method};
use sandvisor::{Client, ClientError, ErrorCode};

use super::bundle::Bundle;
use super::runtime::unique;
use super::{pipe, Supervisor};

/// Every call gets this long before the test fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long container output may take to arrive.
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);
/// The sandbox id `Supervisor::boot` gives its supervisor.
pub const SANDBOX: &str = "test";

/// A typed call with a deadline (`Client::invoke` has none).
pub fn call<M: Method>(client: &Client, mut msg: M) -> Result<M::Reply, ClientError> {
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
pub fn rpc_error<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Rpc(e)) => (e.code, e.message),
        other => panic!("expected an error from the server, got {other:?}"),
    }
}

/// Asserts an error with `code` whose message contains every one of `parts`.
pub fn assert_rpc_error<T: std::fmt::Debug>(
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
pub fn exit_code(status: u32) -> Option<i32> {
    WaitStatus(status).exit_code()
}

/// A supervisor with a private state directory (`--root`), and a client.
pub struct Sandbox {
    pub client: Client,
    pub root: tempfile::TempDir,
    pub sv: Supervisor,
}

impl Sandbox {
    pub fn boot() -> Sandbox {
        Sandbox::boot_with(&[])
    }

    pub fn boot_with(extra: &[&str]) -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        let root_arg = root.path().to_str().expect("utf-8 temp dir").to_owned();
        let mut args = vec!["--enable-fault-injection", "--root", &root_arg];
        args.extend_from_slice(extra);
        let sv = Supervisor::boot_with(&args);
        let client = sv.client();
        Sandbox { client, root, sv }
    }

    /// The sandbox's state directory.
    pub fn state_dir(&self) -> PathBuf {
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

/// The read ends of a process's stdout and stderr.
pub struct Output {
    pub out: OwnedFd,
    pub err: OwnedFd,
    pub out_buf: Vec<u8>,
}

/// Descriptors for a process (stdin /dev/null, stdout and stderr pipes) and
/// the ends the test reads.
pub fn stdio() -> (Vec<OwnedFd>, Output) {
    stdio_with_stdin(File::open("/dev/null").expect("/dev/null").into())
}

/// As [`stdio`], with the given stdin.
pub fn stdio_with_stdin(stdin: OwnedFd) -> (Vec<OwnedFd>, Output) {
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
pub fn read_some(fd: &OwnedFd, buf: &mut Vec<u8>, deadline: Instant) -> bool {
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

pub fn read_to_eof(fd: &OwnedFd, mut buf: Vec<u8>) -> String {
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    while read_some(fd, &mut buf, deadline) {}
    String::from_utf8(buf).expect("utf-8 output")
}

impl Output {
    /// Stdout up to EOF (every writer closed).
    pub fn stdout(&mut self) -> String {
        read_to_eof(&self.out, std::mem::take(&mut self.out_buf))
    }

    /// Stderr up to EOF.
    pub fn stderr(&self) -> String {
        read_to_eof(&self.err, Vec::new())
    }

    /// Reads stdout until it contains `needle` (kept for `stdout`).
    pub fn wait_for(&mut self, needle: &str) {
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
pub fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}= line in {pairs:?}"))
}

/// The StartRoot request for a bundle, with stdio pipes.
pub fn start_root_request(cid: &str, bundle: &Bundle) -> (StartRoot, Output) {
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
pub fn start_root(client: &Client, cid: &str, bundle: &Bundle) -> (Started, Output) {
    let (req, output) = start_root_request(cid, bundle);
    let started = call(client, req).unwrap_or_else(|e| panic!("StartRoot {cid}: {e}"));
    (started, output)
}

pub fn exec_request(cid: &str, argv: &[&str]) -> ExecuteAsync {
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
pub fn exec_with(
    client: &Client,
    mut req: ExecuteAsync,
) -> (Result<Executed, ClientError>, Output) {
    let (fds, output) = stdio();
    req.fds = Fds(fds);
    (call(client, req), output)
}

/// Runs `argv` in the container; panics on failure.
pub fn exec(client: &Client, cid: &str, argv: &[&str]) -> (Executed, Output) {
    let (result, output) = exec_with(client, exec_request(cid, argv));
    let executed = result.unwrap_or_else(|e| panic!("ExecuteAsync {argv:?} in {cid}: {e}"));
    (executed, output)
}

pub fn wait(client: &Client, cid: &str) -> u32 {
    call(
        client,
        Wait {
            cid: cid.to_owned(),
        },
    )
    .unwrap_or_else(|e| panic!("Wait {cid}: {e}"))
    .status
}

pub fn wait_pid(client: &Client, cid: &str, pid: i32) -> Result<u32, ClientError> {
    call(
        client,
        WaitPid {
            cid: cid.to_owned(),
            pid,
        },
    )
    .map(|r| r.status)
}

pub fn signal(
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

pub fn processes(client: &Client, cid: &str) -> Vec<ProcessInfo> {
    call(
        client,
        Processes {
            cid: cid.to_owned(),
        },
    )
    .unwrap_or_else(|e| panic!("Processes {cid}: {e}"))
    .processes
}

/// A sandbox whose root container runs `sleep 30`.
pub fn sleeping_root(prefix: &str) -> (Sandbox, Bundle, String, Started) {
    let sb = Sandbox::boot();
    let cid = unique(prefix);
    let bundle = Bundle::new(&format!("host-{prefix}"), &["sleep", "30"]);
    let (started, _output) = start_root(&sb.client, &cid, &bundle);
    (sb, bundle, cid, started)
}

pub fn create_sub(client: &Client, cid: &str) -> Result<(), ClientError> {
    call(
        client,
        CreateSubcontainer {
            cid: cid.to_owned(),
            fds: Fds::none(),
        },
    )
    .map(|_| ())
}

pub fn start_sub(
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

pub fn destroy_sub(client: &Client, cid: &str) -> Result<(), ClientError> {
    call(
        client,
        DestroySubcontainer {
            cid: cid.to_owned(),
        },
    )
    .map(|_| ())
}
