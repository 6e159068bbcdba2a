//! Test harness: a real `sandvisor boot` process, raw socket helpers, and
//! readings of the supervisor's /proc entries.

#![allow(dead_code)]
// A test harness: a failed unwrap fails the test that called it, which is
// what it is for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bundle;
pub mod caps;
pub mod command;
pub mod host;
pub mod rpc;
pub mod runtime;

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sandvisor::actors::sys::socket::{recv_with_fds, send_with_fds, ControlBuffer};
use sandvisor::actors::wire::envelope::{frame_buffer, parse_response, seal_frame, write_request};
use sandvisor::actors::wire::frame::{encode_header, HEADER_LEN};
use sandvisor::actors::wire::{FrameDecoder, FrameLimits, RpcError};
use sandvisor::Client;

/// The binary under test.
pub const SANDVISOR: &str = env!("CARGO_BIN_EXE_sandvisor");

/// How long a test waits for something that must happen (a process
/// reaped, a descriptor closed, a line logged) before it fails: waits end
/// as soon as it happens, so only a wait that never ends runs this out,
/// and a loaded machine's scheduler delays nothing past it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A supervisor running for one test; killed when dropped.
pub struct Supervisor {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Supervisor {
    /// Boots with fault injection enabled.
    pub fn boot() -> Supervisor {
        Supervisor::boot_with(&["--enable-fault-injection"])
    }

    /// Boots with extra `boot` arguments.
    pub fn boot_with(extra: &[&str]) -> Supervisor {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("run/ctl.sock");
        let log = dir.path().join("supervisor.log");
        let child = Command::new(SANDVISOR)
            .args(["--debug", "--log"])
            .arg(&log)
            .args(["boot", "--id", "test"])
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sandvisor boot");
        let supervisor = Supervisor {
            child: Some(child),
            dir,
            socket,
            log,
        };
        supervisor.wait_ready();
        supervisor
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(client) = Client::connect(&self.socket) {
                if client.ping(b"ready").is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "supervisor did not serve {} within 10 s; log:\n{}",
            self.socket.display(),
            self.log_text()
        );
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// Waits until debug.Stacks reports `others` open connections besides
    /// the one asking, then returns the supervisor's descriptor count
    /// without that probing connection.
    pub fn baseline_fds(&self, others: u64) -> usize {
        let deadline = Instant::now() + PATIENCE;
        let probe = self.client();
        loop {
            let open = probe.stacks().expect("stacks").connections;
            if open == others + 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} connections open, expected {}",
                others + 1
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Each connection holds exactly one descriptor in the supervisor.
        let with_probe = self.fd_count();
        drop(probe);
        let baseline = with_probe - 1;
        assert_eq!(
            self.settle_fds(baseline),
            baseline,
            "probe connection not closed"
        );
        baseline
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect")
    }

    /// A new raw connection.
    pub fn raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Open descriptors of the supervisor.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// Waits until the supervisor's descriptor count is `expected`, and
    /// returns what it settled at.
    pub fn settle_fds(&self, expected: usize) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let n = self.fd_count();
            if n == expected || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A field of /proc/PID/status, in its own unit (kB for sizes).
    pub fn status_field(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS")
    }

    /// User plus system CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after comm.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// Waits (up to [`PATIENCE`]) for the log to contain `text` (lines are written by
    /// a background thread).
    pub fn log_contains(&self, text: &str) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.log_text().contains(text) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal");
        self.wait_exit(PATIENCE).expect("supervisor exits")
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A frame from a header and a body.
pub fn frame(nfds: u8, body: &[u8]) -> Vec<u8> {
    let mut v = encode_header(nfds, body.len() as u32).to_vec();
    v.extend_from_slice(body);
    v
}

/// A request frame with CBOR `args`.
pub fn request(id: u64, method: &str, args: &[u8], nfds: u8) -> Vec<u8> {
    let mut f = frame_buffer(64);
    write_request(&mut f, id, method, args);
    seal_frame(&mut f, nfds);
    f
}

/// CBOR of any serde value.
pub fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_cbor::to_vec(value).expect("cbor")
}

/// CBOR of `{"payload": bytes}`.
pub fn ping_args(payload: &[u8]) -> Vec<u8> {
    let mut map = std::collections::BTreeMap::new();
    map.insert("payload", serde_cbor::Value::Bytes(payload.to_vec()));
    cbor(&map)
}

/// Sends `bytes` with `fds` in one sendmsg.
pub fn send(stream: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let n = send_with_fds(stream.as_fd(), &[IoSlice::new(bytes)], fds, false).expect("sendmsg");
    assert_eq!(n, bytes.len(), "short write");
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct Response {
    pub id: u64,
    pub outcome: Result<Vec<u8>, RpcError>,
    pub fds: Vec<OwnedFd>,
}

/// Reads responses off a raw connection.
pub struct Reader {
    decoder: FrameDecoder<OwnedFd>,
    control: ControlBuffer,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            decoder: FrameDecoder::new(FrameLimits::default()),
            control: ControlBuffer::default(),
        }
    }
}

impl Reader {
    /// The next response, or `None` at end of stream.
    pub fn next(&mut self, stream: &UnixStream) -> Option<Response> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(frame) = self
                .decoder
                .next_frame()
                .expect("sound frames from the server")
            {
                let r = parse_response(&frame.body).expect("sound response body");
                return Some(Response {
                    id: r.id,
                    outcome: r.outcome.map(|v| v.to_vec()),
                    fds: frame.fds,
                });
            }
            let got =
                recv_with_fds(stream.as_fd(), &mut buf, &mut self.control, false).expect("recvmsg");
            if got.len == 0 && got.fds.is_empty() {
                return None;
            }
            self.decoder.push(&buf[..got.len], got.fds).expect("push");
        }
    }
}

/// Reads one error response and expects the connection to close after it.
pub fn expect_error_then_close(stream: &UnixStream) -> RpcError {
    let mut reader = Reader::default();
    let response = reader
        .next(stream)
        .expect("an error frame before the close");
    assert_eq!(response.id, 0, "connection-level errors carry id 0");
    let error = response.outcome.expect_err("an error");
    assert!(
        reader.next(stream).is_none(),
        "the server must close the connection"
    );
    error
}

/// A pipe whose write end can be sent; its read end sees EOF once every
/// copy of the write end is closed.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}

/// True when the read end sees EOF within `timeout` (every writer closed).
pub fn writers_all_closed(read_end: &OwnedFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis() as i32).expect("timeout");
    poll(&mut fds, ms).expect("poll") > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

/// Reads all of a stream (to EOF).
pub fn read_all(mut stream: &UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Writes all bytes.
pub fn write_all(mut stream: &UnixStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
}

/// The socket path's parent directory.
pub fn socket_dir(path: &Path) -> &Path {
    path.parent().expect("parent")
}

/// Header length, re-exported for tests.
pub const HEADER: usize = HEADER_LEN;
