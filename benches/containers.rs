//! Container benchmark: `cargo bench --bench containers`.
//!
//! Measures, in one run, on the same busybox bundle (built in a temporary
//! directory: a static busybox and its applet links, config.json from
//! `runc spec` with `process.terminal=false` and `process.args=["/bin/true"]`):
//!
//! 1. `run` of /bin/true in a fresh sandbox, whole command from spawn to
//!    exit: `sandvisor run` against `runc run` and against the floor
//!    `unshare -p -f -m -u -i -n --mount-proc /bin/true`; plus the same
//!    steps `sandvisor run` takes done one by one by the bench (boot to
//!    readiness, StartRoot, Wait, teardown), to show where its time goes;
//! 2. exec of /bin/true into a running container: ExecuteAsync + WaitPID
//!    through the client against `runc exec` into a `runc run -d`
//!    container;
//! 3. CreateSubcontainer + StartSubcontainer + Wait of /bin/true in the
//!    warm sandbox of 2 (DestroySubcontainer timed apart).
//!
//! The cases of each part alternate one iteration at a time (the order
//! rotating every round, a pause before each), so that a noisy stretch of
//! the machine hits them all alike. Every command exits 0 or the bench
//! stops and says why; a /bin/true container whose end is never reported
//! is torn down, left out of the figures and listed at the end.
//!
//! Every child starts in its own process group and dies with the bench
//! (`PR_SET_PDEATHSIG`); guards stop, reap and sweep the group of every
//! child, delete runc's containers and the temporary directory, and a leak
//! check at the end (also after SIGINT or SIGTERM) looks for processes,
//! mounts, cgroups and directories left behind.
//!
//! Knobs (environment):
//! - `SANDVISOR_BENCH_RUNS`: timed iterations of each `run` case
//!   (default 50);
//! - `SANDVISOR_BENCH_EXEC_RUNS`: timed iterations of each exec and
//!   subcontainer case (default 200);
//! - `SANDVISOR_BENCH_WARMUP`: untimed rounds first (default 3);
//! - `SANDVISOR_BENCH_RUNC`: the runc binary (default: `runc` in `PATH`;
//!   without one the runc rows are skipped);
//! - `SANDVISOR_BENCH_BUSYBOX`: a statically linked busybox (default:
//!   `/bin/busybox`, `/usr/bin/busybox` or `busybox` in `PATH`);
//! - `SANDVISOR_BENCH_GAP_MS`: pause before every iteration (default 50).
//!   Every case moves a process into cgroups; the first such move after a
//!   quiet spell waits for an RCU grace period (the kernel's cgroup
//!   threadgroup lock leaves its fast mode), which costs 5 to 15 ms on a
//!   small VM, while a move within about 20 ms of the previous one does
//!   not. Back to back (0), a case would ride on the lock state the case
//!   before left, and exec would look several times faster than it is for
//!   a lone command; with the gap every case pays its own way;
//! - `SANDVISOR_BENCH_QUICK=1`: small defaults for a smoke run.
// A bench: a failed unwrap stops the run where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::env;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    catch_termination, check_interrupted, env_parse, failed, find_in_path, is_executable, note,
    quick, read_log, unwatch, verdict, watch, Boot, ChildSetup, Stats,
};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{kill, killpg, SigHandler, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use sandvisor::api::container::{
    CreateSubcontainer, DestroySubcontainer, ExecuteAsync, StartRoot, StartSubcontainer, Wait,
    WaitPid,
};
use sandvisor::api::{CarriesFds, Fds, Method};
use sandvisor::{Client, ClientError};

/// How long one timed command may take, and a supervisor to get ready.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a /bin/true container may take to be reported gone (a Wait
/// or a whole `sandvisor run`): past that it counts as hung, is torn down
/// and reported, and the bench goes on.
const HANG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any other call to the supervisor may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child gets to exit after its stop signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long processes on their way out get before they count as left
/// behind.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Targets from the design.
const RUN_VS_RUNC_TARGET: f64 = 0.5;
const RUN_VS_UNSHARE_STRETCH: f64 = 2.0;
const EXEC_VS_RUNC_TARGET: f64 = 0.15;
const SUBCONTAINER_TARGET_MS: f64 = 3.0;

/// Set in the environment of the re-executed bench binary that cleans up
/// after a bench killed outright (SIGKILL, OOM): the workspace, the id
/// prefix and runc, if any. Its descriptor 3 is a pipe from the bench.
const JANITOR_DIR_ENV: &str = "SANDVISOR_BENCH_JANITOR_DIR";
const JANITOR_PREFIX_ENV: &str = "SANDVISOR_BENCH_JANITOR_PREFIX";
const JANITOR_RUNC_ENV: &str = "SANDVISOR_BENCH_JANITOR_RUNC";

/// What the bench writes to the janitor once it has cleaned up itself.
const JANITOR_DONE: &[u8] = b"done";

fn main() {
    if let Some(dir) = env::var_os(JANITOR_DIR_ENV) {
        janitor(PathBuf::from(dir));
        return;
    }
    let config = Config::from_env();
    catch_termination();
    become_subreaper();
    run(&config);
    if LEAKED.load(Ordering::Relaxed) {
        let _ = writeln!(io::stderr(), "containers bench: something was left behind");
        std::process::exit(1);
    }
}

/// Set by the leak check when something outlived the bench's guards.
static LEAKED: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------
// Configuration

struct Config {
    runs: usize,
    exec_runs: usize,
    warmup: usize,
    runc: Option<PathBuf>,
    busybox: PathBuf,
    unshare: Option<PathBuf>,
    gap: Duration,
}

impl Config {
    /// The pause before an iteration.
    fn settle(&self) {
        check_interrupted();
        if !self.gap.is_zero() {
            thread::sleep(self.gap);
        }
    }
}

/// True when `data` is a 64-bit little-endian ELF file without an
/// interpreter (statically linked).
fn is_static_elf(data: &[u8]) -> bool {
    let u16_at = |at: usize| -> Option<usize> {
        let bytes = data.get(at..at + 2)?;
        Some(u16::from_le_bytes([bytes[0], bytes[1]]).into())
    };
    let u64_at = |at: usize| -> Option<usize> {
        let bytes: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(bytes)).ok()
    };
    let check = || -> Option<bool> {
        if data.get(..6)? != b"\x7fELF\x02\x01" {
            return Some(false);
        }
        let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
        for i in 0..phnum {
            let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
            let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            // PT_INTERP: a dynamic loader is needed.
            if u32::from_le_bytes(bytes) == 3 {
                return Some(false);
            }
        }
        Some(true)
    };
    check().unwrap_or(false)
}

fn find_busybox() -> PathBuf {
    let candidates: Vec<PathBuf> = match env::var_os("SANDVISOR_BENCH_BUSYBOX") {
        Some(path) => vec![PathBuf::from(path)],
        None => [
            PathBuf::from("/bin/busybox"),
            PathBuf::from("/usr/bin/busybox"),
        ]
        .into_iter()
        .chain(find_in_path("busybox"))
        .collect(),
    };
    for candidate in &candidates {
        match fs::read(candidate) {
            Ok(data) if is_static_elf(&data) => return candidate.clone(),
            Ok(_) => eprintln!("{candidate:?} is not a statically linked 64-bit ELF; skipped"),
            Err(_) => {}
        }
    }
    panic!(
        "no statically linked busybox found (tried {candidates:?}): install Debian's \
         busybox-static, or point SANDVISOR_BENCH_BUSYBOX at one"
    );
}

impl Config {
    fn from_env() -> Config {
        let (runs, exec_runs, warmup) = if quick() { (10, 30, 1) } else { (50, 200, 3) };
        let runs = env_parse("SANDVISOR_BENCH_RUNS", runs);
        let exec_runs = env_parse("SANDVISOR_BENCH_EXEC_RUNS", exec_runs);
        assert!(runs > 0, "SANDVISOR_BENCH_RUNS must be positive");
        assert!(exec_runs > 0, "SANDVISOR_BENCH_EXEC_RUNS must be positive");
        let runc = match env::var_os("SANDVISOR_BENCH_RUNC") {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(
                    is_executable(&path),
                    "SANDVISOR_BENCH_RUNC={path:?} is not an executable file"
                );
                Some(path)
            }
            None => find_in_path("runc"),
        };
        Config {
            runs,
            exec_runs,
            warmup: env_parse("SANDVISOR_BENCH_WARMUP", warmup),
            runc,
            busybox: find_busybox(),
            unshare: find_in_path("unshare"),
            gap: Duration::from_millis(env_parse("SANDVISOR_BENCH_GAP_MS", 50)),
        }
    }
}

// ---------------------------------------------------------------------------
// Processes

/// Pids of the children a [`Proc`] owns (and reaps); any other child of
/// the bench is an orphan that came back to it.
static OWNED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn owned() -> std::sync::MutexGuard<'static, Vec<i32>> {
    OWNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Orphans of the bench's descendants (runc's detached container init,
/// a supervisor whose `sandvisor run` was killed) come back to the bench
/// rather than to the machine's init, which may leave them zombies for a
/// while: [`reap_orphans`] reaps them.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments; it touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        eprintln!(
            "warning: cannot become a child subreaper: {}",
            io::Error::last_os_error()
        );
    }
}

/// Reaps the children of the bench that no [`Proc`] owns and that have
/// exited; returns how many are still running.
fn reap_orphans() -> usize {
    let me = std::process::id() as i32;
    let owned = owned().clone();
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut running = 0;
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| !owned.contains(pid))
    {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) != Some(me) {
            continue;
        }
        if fields.first() == Some(&"Z") {
            let mut status = 0;
            // SAFETY: waitpid on one exited child no Proc owns (so no
            // std::process::Child will wait for it), with a valid pointer
            // to a local status word.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        } else {
            running += 1;
        }
    }
    running
}

/// Makes `cmd`'s child the leader of a new process group (so that a
/// terminal's Ctrl-C reaches the bench alone, which then stops its
/// children in order), optionally makes it get `death_signal` when the
/// bench dies (`PR_SET_PDEATHSIG`), and optionally hands it descriptor
/// `ready` as descriptor 3.
fn prepare_child(cmd: &mut Command, death_signal: Option<Signal>, ready: Option<RawFd>) {
    ChildSetup {
        death_signal,
        own_group: true,
        fd3: ready,
        ..ChildSetup::default()
    }
    .apply(cmd);
}

/// A descriptor that becomes readable when process `pid` exits.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: a plain system call with integer arguments; it touches no
    // memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `timeout` for `fd` to become readable; false on timeout or
/// interruption (the caller checks again).
fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(
        poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)),
        Ok(n) if n > 0
    )
}

/// The live processes (not zombies) of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold anything.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first() != Some(&"Z")
                && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
        })
        .collect()
}

/// Signals every live member of group `pgid`, waits up to `patience` for
/// the group to empty, then kills what is left. Returns how many were
/// found.
fn sweep_group(pgid: i32, patience: Duration) -> usize {
    // A process killed by its parent's death signal may still be on its
    // way out: give the group a moment to empty by itself.
    let grace = Instant::now() + EXIT_GRACE;
    let mut found = group_members(pgid);
    while !found.is_empty() && Instant::now() < grace {
        thread::sleep(Duration::from_millis(2));
        found = group_members(pgid);
    }
    if found.is_empty() {
        return 0;
    }
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline && !group_members(pgid).is_empty() {
        thread::sleep(Duration::from_millis(5));
    }
    for pid in group_members(pgid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    found.len()
}

/// A child leading its own process group. Dropped, it gets `stop_signal`
/// (its whole group does) unless it was reaped already, then it is reaped
/// and whatever is left of its group is stopped too: no process outlives
/// the bench, even when it panics.
struct Proc {
    child: Child,
    pidfd: Option<OwnedFd>,
    what: String,
    stop_signal: Signal,
    reaped: Option<ExitStatus>,
}

impl Proc {
    fn spawn(cmd: &mut Command, what: &str, stop_signal: Signal) -> io::Result<Proc> {
        let child = cmd.spawn()?;
        owned().push(child.id() as i32);
        let pidfd = pidfd_open(child.id());
        Ok(Proc {
            child,
            pidfd,
            what: what.to_owned(),
            stop_signal,
            reaped: None,
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `timeout` for the child to exit, and reaps it.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.reaped.is_some() {
            return self.reaped;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = Some(status);
                    return self.reaped;
                }
                Ok(None) => {}
                Err(e) => {
                    note(&format!("warning: waiting for the {}: {e}", self.what));
                    return None;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match &self.pidfd {
                Some(fd) => {
                    wait_readable(fd.as_fd(), left.min(Duration::from_millis(200)));
                }
                None => thread::sleep(left.min(Duration::from_millis(1))),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        let finished = self.reaped.is_some();
        if !finished {
            let _ = killpg(Pid::from_raw(pgid), self.stop_signal);
            if self.wait_exit(STOP_TIMEOUT).is_none() {
                note(&format!(
                    "warning: the {} did not exit within {STOP_TIMEOUT:?} of {}; killing it",
                    self.what, self.stop_signal
                ));
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        owned().retain(|&pid| pid != pgid);
        let left = sweep_group(pgid, STOP_TIMEOUT);
        reap_orphans();
        if left > 0 && finished {
            note(&format!(
                "warning: the {} exited leaving {left} process(es) of its group behind; stopped them",
                self.what
            ));
        }
    }
}

/// `getrusage(RUSAGE_CHILDREN)` user + system time: what reaped children
/// (and the descendants they reaped) spent.
fn children_cpu() -> Duration {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return Duration::ZERO;
    };
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// One timed command: wall clock from spawn to exit, and the CPU it and
/// the descendants it reaped spent.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Runs `cmd` to completion with stdin and stdout on /dev/null and stderr
/// in `log`; panics unless it exits 0 within `timeout`. With `hangs`, a
/// command still running after `timeout` is stopped, reported there, and
/// yields no timing instead.
fn time_command(
    cmd: &mut Command,
    what: &str,
    log: &Path,
    stop_signal: Signal,
    timeout: Duration,
    hangs: Option<&mut Vec<String>>,
) -> Option<Timing> {
    check_interrupted();
    let stderr = fs::File::create(log).unwrap_or_else(|e| failed(&format!("create {log:?}"), e));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    prepare_child(cmd, Some(stop_signal), None);
    let cpu_before = children_cpu();
    let start = Instant::now();
    let mut proc =
        Proc::spawn(cmd, what, stop_signal).unwrap_or_else(|e| failed(&format!("spawn {what}"), e));
    let deadline = start + timeout;
    let status = loop {
        // In slices, to notice a signal: the child is in another process
        // group and does not get the terminal's.
        let left = deadline.saturating_duration_since(Instant::now());
        let status = proc.wait_exit(left.min(Duration::from_millis(100)));
        if status.is_some() || left.is_zero() {
            break status;
        }
        check_interrupted();
    };
    let wall = start.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    match (status, hangs) {
        (Some(status), _) if status.success() => Some(Timing { wall, cpu }),
        (Some(status), _) => {
            check_interrupted();
            panic!(
                "{what} exited with {status}: {cmd:?}\nits stderr:\n{}",
                read_log(log)
            )
        }
        (None, Some(hangs)) => {
            // Stop it (its group gets `stop_signal`) before going on.
            drop(proc);
            hangs.push(format!("{what} did not exit within {timeout:?}: {cmd:?}"));
            note(&format!(
                "warning: {}",
                hangs.last().map_or("", String::as_str)
            ));
            None
        }
        (None, None) => panic!(
            "{what} did not exit within {timeout:?}: {cmd:?}\nits stderr:\n{}",
            read_log(log)
        ),
    }
}

/// Runs `cmd` untimed and quietly; its exit status, if it exited in time.
/// Never panics (used by guards).
fn run_quietly(mut cmd: Command, what: &str) -> Option<ExitStatus> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    prepare_child(&mut cmd, Some(Signal::SIGKILL), None);
    let mut proc = Proc::spawn(&mut cmd, what, Signal::SIGKILL).ok()?;
    proc.wait_exit(COMMAND_TIMEOUT)
}

/// Three descriptors on /dev/null: a process's stdin, stdout and stderr.
fn dev_null_stdio() -> Fds {
    let open = || -> OwnedFd {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap_or_else(|e| failed("open /dev/null", e))
            .into()
    };
    Fds(vec![open(), open(), open()])
}

// ---------------------------------------------------------------------------
// Calls to the supervisor

/// A client connection whose socket the signal handler shuts down.
struct Connection {
    client: Client,
    slot: Option<usize>,
    /// The registered descriptor: a duplicate of the client's socket,
    /// closed (after unregistering) when the connection is dropped.
    _watch: Option<UnixStream>,
}

impl Connection {
    fn open(path: &Path) -> Connection {
        check_interrupted();
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| failed(&format!("connect to {path:?}"), e));
        let watched = stream.try_clone().ok();
        let slot = watched.as_ref().and_then(|w| watch(w.as_raw_fd()));
        Connection {
            client: Client::from_stream(stream),
            slot,
            _watch: watched,
        }
    }

    /// Calls `M` and waits at most `timeout` for the reply (the client's
    /// `invoke`, with a deadline).
    fn call<M: Method>(&self, mut msg: M, timeout: Duration) -> Result<M::Reply, ClientError> {
        let args = serde_cbor::to_vec(&msg).map_err(|e| ClientError::Encode {
            method: M::NAME.to_owned(),
            detail: e.to_string(),
        })?;
        let fds = msg.take_fds();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let pending = self.client.start_raw(M::NAME, &args, &borrowed)?;
        drop(borrowed);
        // The kernel duplicated the descriptors into the message.
        drop(fds);
        let reply = pending.wait_timeout(timeout)?;
        let mut value: M::Reply = reply.decode(M::NAME)?;
        value
            .attach_fds(reply.fds)
            .map_err(|detail| ClientError::Decode {
                method: M::NAME.to_owned(),
                detail,
            })?;
        Ok(value)
    }

    /// [`Connection::call`] that must succeed within [`CALL_TIMEOUT`].
    fn must<M: Method>(&self, msg: M) -> M::Reply {
        self.call(msg, CALL_TIMEOUT)
            .unwrap_or_else(|e| failed(M::NAME, e))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            unwatch(slot);
        }
    }
}

/// Waits for a /bin/true container to end: its wait status, or `None`
/// (reported in `hangs`) if no reply came within [`HANG_TIMEOUT`].
fn wait_container(conn: &Connection, cid: &str, hangs: &mut Vec<String>) -> Option<u32> {
    match conn.call(
        Wait {
            cid: cid.to_owned(),
        },
        HANG_TIMEOUT,
    ) {
        Ok(reply) => Some(reply.status),
        Err(ClientError::DeadlineExceeded(_)) => {
            check_interrupted();
            hangs.push(format!(
                "containerManager.Wait for {cid} (/bin/true) got no reply within {HANG_TIMEOUT:?}"
            ));
            note(&format!(
                "warning: {}",
                hangs.last().map_or("", String::as_str)
            ));
            None
        }
        Err(e) => failed("containerManager.Wait", e),
    }
}

// ---------------------------------------------------------------------------
// The supervisor, booted by the bench as `sandvisor run` boots it

/// A `sandvisor boot` child with a readiness pipe, as `sandvisor run`
/// starts it.
struct Supervisor {
    proc: Proc,
    socket: PathBuf,
    log: PathBuf,
}

impl Supervisor {
    /// Spawns `sandvisor --root <root> boot --id <id> --ready-fd 3`, with
    /// `--prewarm <id>` when `prewarm` (as `sandvisor run` boots it), and
    /// waits for "ready\n"; returns it and the time from spawn to ready.
    fn boot(root: &Path, id: &str, log: PathBuf, prewarm: bool) -> (Supervisor, Duration) {
        check_interrupted();
        let socket = root.join(id).join("ctl.sock");
        let stderr =
            fs::File::create(&log).unwrap_or_else(|e| failed("create the supervisor's log", e));
        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .unwrap_or_else(|e| failed("create the readiness pipe", e));
        let mut cmd = Boot {
            id,
            socket: &socket,
            root: Some(root),
            log_level: Some("error"),
            ready_fd3: true,
            prewarm,
        }
        .command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        prepare_child(
            &mut cmd,
            Some(Signal::SIGTERM),
            Some(ready_write.as_raw_fd()),
        );
        let start = Instant::now();
        let proc = Proc::spawn(&mut cmd, "supervisor", Signal::SIGTERM)
            .unwrap_or_else(|e| failed("spawn `sandvisor boot`", e));
        drop(ready_write);
        let mut sup = Supervisor { proc, socket, log };
        let ready = sup.wait_ready(ready_read);
        let elapsed = start.elapsed();
        if ready != b"ready\n" {
            let status = sup.proc.wait_exit(STOP_TIMEOUT);
            check_interrupted();
            panic!(
                "`sandvisor boot` did not get ready (it said {:?}; status {status:?}); its log:\n{}",
                String::from_utf8_lossy(&ready),
                read_log(&sup.log)
            );
        }
        (sup, elapsed)
    }

    /// Reads the readiness pipe until "ready\n", EOF or the timeout.
    fn wait_ready(&mut self, pipe: OwnedFd) -> Vec<u8> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut pipe = fs::File::from(pipe);
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < b"ready\n".len() {
            check_interrupted();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if !wait_readable(pipe.as_fd(), left) {
                continue;
            }
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => failed("read the readiness pipe", e),
            }
        }
        got
    }

    fn connect(&self) -> Connection {
        Connection::open(&self.socket)
    }

    /// SIGTERM, then wait for it to be reaped; returns how long that took.
    /// Panics unless it exits 0 in time.
    fn shutdown(mut self) -> Duration {
        let start = Instant::now();
        if let Err(e) = kill(self.proc.pid(), Signal::SIGTERM) {
            failed("SIGTERM to the supervisor", e);
        }
        let status = self.proc.wait_exit(STOP_TIMEOUT);
        let elapsed = start.elapsed();
        match status {
            Some(status) if status.success() => elapsed,
            Some(status) => {
                check_interrupted();
                panic!(
                    "the supervisor exited with {status} after SIGTERM; its log:\n{}",
                    read_log(&self.log)
                )
            }
            None => panic!("the supervisor did not exit within {STOP_TIMEOUT:?} of SIGTERM"),
        }
    }
}

// ---------------------------------------------------------------------------
// runc

/// runc's state directory; dropped, every container in it is deleted.
struct RuncRoot {
    runc: PathBuf,
    root: PathBuf,
}

impl RuncRoot {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.runc);
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Deletes every container runc knows in this root; the ids it could
    /// not delete.
    fn delete_all(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        let mut stuck = Vec::new();
        for id in ids {
            let mut cmd = self.command();
            cmd.args(["delete", "-f", &id]);
            let deleted = run_quietly(cmd, "runc delete").is_some_and(|s| s.success());
            if !deleted || self.root.join(&id).exists() {
                stuck.push(id);
            }
        }
        stuck
    }
}

impl Drop for RuncRoot {
    fn drop(&mut self) {
        for id in self.delete_all() {
            note(&format!(
                "warning: `runc delete -f {id}` failed (root {:?})",
                self.root
            ));
        }
    }
}

/// A `runc run -d` container, deleted when dropped.
struct RuncContainer<'a> {
    root: &'a RuncRoot,
    id: String,
}

impl<'a> RuncContainer<'a> {
    fn start(root: &'a RuncRoot, bundle: &Path, id: &str, log: &Path) -> RuncContainer<'a> {
        let container = RuncContainer {
            root,
            id: id.to_owned(),
        };
        let mut cmd = root.command();
        cmd.args(["run", "-d", "--bundle"]).arg(bundle).arg(id);
        time_command(
            &mut cmd,
            "`runc run -d`",
            log,
            Signal::SIGTERM,
            COMMAND_TIMEOUT,
            None,
        );
        container
    }
}

impl Drop for RuncContainer<'_> {
    fn drop(&mut self) {
        let mut cmd = self.root.command();
        cmd.args(["delete", "-f", &self.id]);
        if !run_quietly(cmd, "runc delete").is_some_and(|s| s.success()) {
            note(&format!("warning: `runc delete -f {}` failed", self.id));
        }
    }
}

// ---------------------------------------------------------------------------
// The workspace: bundles, state directories, and the leak check

/// The temporary directory and what goes in it. Dropped (last of all),
/// it removes the directory and checks that nothing was left behind.
struct Workspace {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    /// Every sandbox, container and cgroup name of this run starts so.
    prefix: String,
    /// The bundle running /bin/true, and one running `sleep 3600` on the
    /// same root filesystem.
    bundle: PathBuf,
    sleep_bundle: PathBuf,
    true_spec: Spec,
    sleep_spec: Spec,
    /// `--root` of sandvisor and of runc.
    sv_root: PathBuf,
    rc_root: PathBuf,
    /// Whether config.json came from `runc spec`.
    spec_from_runc: bool,
    /// Cleans up if the bench is killed before its guards can.
    janitor: Option<Janitor>,
}

fn mkdir_private(path: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .unwrap_or_else(|e| failed(&format!("create {path:?}"), e));
}

/// The applets a busybox binary provides, from `busybox --list`.
fn applets(busybox: &Path) -> Vec<String> {
    let output = Command::new(busybox)
        .arg("--list")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let listed: Vec<String> = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|name| !name.is_empty() && *name != "busybox" && !name.contains('/'))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if listed.is_empty() {
        ["sh", "true", "sleep"].map(str::to_owned).to_vec()
    } else {
        listed
    }
}

impl Workspace {
    fn create(config: &Config) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("sandvisor-bench-containers-")
            .tempdir()
            .unwrap_or_else(|e| failed("create a temporary directory", e));
        let path = dir.path().to_owned();
        let bundle = path.join("bundle");
        let sleep_bundle = path.join("bundle-sleep");
        let sv_root = path.join("sv-root");
        let rc_root = path.join("rc-root");
        for d in [&bundle, &sleep_bundle, &sv_root, &rc_root] {
            mkdir_private(d);
        }
        let prefix = format!("svb{}-", std::process::id());
        let janitor = Janitor::spawn(&path, &prefix, config.runc.as_deref());
        // Keep the workspace (and so its Drop) from here on.
        let mut ws = Workspace {
            dir: Some(dir),
            path,
            prefix,
            bundle,
            sleep_bundle,
            true_spec: Spec::default(),
            sleep_spec: Spec::default(),
            sv_root,
            rc_root,
            spec_from_runc: false,
            janitor: Some(janitor),
        };
        ws.build_bundles(config);
        ws
    }

    fn build_bundles(&mut self, config: &Config) {
        let rootfs = self.bundle.join("rootfs");
        let bin = rootfs.join("bin");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
            mkdir_private(&rootfs.join(d));
        }
        let busybox = bin.join("busybox");
        fs::copy(&config.busybox, &busybox)
            .unwrap_or_else(|e| failed(&format!("copy {:?} into the bundle", config.busybox), e));
        for applet in applets(&config.busybox) {
            symlink("busybox", bin.join(&applet))
                .unwrap_or_else(|e| failed(&format!("link the {applet} applet"), e));
        }
        let mut spec: serde_json::Value = match &config.runc {
            Some(runc) => {
                let status = Command::new(runc)
                    .arg("spec")
                    .current_dir(&self.bundle)
                    .stdin(Stdio::null())
                    .status()
                    .unwrap_or_else(|e| failed("run `runc spec`", e));
                assert!(status.success(), "`runc spec` exited with {status}");
                self.spec_from_runc = true;
                let path = self.bundle.join("config.json");
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|e| failed("read the config.json of `runc spec`", e));
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| failed("parse the config.json of `runc spec`", e))
            }
            // oci-spec's default is the one `runc spec` writes.
            None => serde_json::to_value(Spec::default())
                .unwrap_or_else(|e| failed("encode the default spec", e)),
        };
        let set = |spec: &mut serde_json::Value, pointer: &str, value: serde_json::Value| match spec
            .pointer_mut(pointer)
        {
            Some(slot) => *slot = value,
            None => panic!("config.json has no {pointer}"),
        };
        set(&mut spec, "/process/terminal", false.into());
        set(&mut spec, "/process/args", serde_json::json!(["/bin/true"]));
        set(&mut spec, "/root/path", "rootfs".into());
        let mut sleep = spec.clone();
        set(
            &mut sleep,
            "/process/args",
            serde_json::json!(["sleep", "3600"]),
        );
        set(
            &mut sleep,
            "/root/path",
            rootfs.to_string_lossy().into_owned().into(),
        );
        self.true_spec = write_spec(&self.bundle, &spec);
        self.sleep_spec = write_spec(&self.sleep_bundle, &sleep);
    }

    fn id(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    fn log(&self, what: &str) -> PathBuf {
        self.path.join(format!("{what}.log"))
    }

    fn bundle_arg(bundle: &Path) -> Option<String> {
        Some(bundle.to_string_lossy().into_owned())
    }
}

/// Writes config.json into `bundle`; returns it as the supervisor takes it.
fn write_spec(bundle: &Path, spec: &serde_json::Value) -> Spec {
    let text =
        serde_json::to_string_pretty(spec).unwrap_or_else(|e| failed("encode config.json", e));
    fs::write(bundle.join("config.json"), text).unwrap_or_else(|e| failed("write config.json", e));
    serde_json::from_value(spec.clone()).unwrap_or_else(|e| failed("config.json as a Spec", e))
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // Mounts under the directory would make removing it reach into
        // whatever they show: leave it then.
        let mounts = mounts_under(&self.path);
        if let Some(dir) = self.dir.take() {
            if mounts.is_empty() {
                if let Err(e) = dir.close() {
                    note(&format!("warning: removing {:?}: {e}", self.path));
                }
            } else {
                let _ = dir.keep();
            }
        }
        if let Some(janitor) = self.janitor.take() {
            janitor.dismiss();
        }
        let leaks = leak_check(&self.prefix, &self.path);
        if leaks.is_empty() {
            note("leak check: no process, mount, cgroup, runc state or temporary directory left behind");
        } else {
            LEAKED.store(true, Ordering::Relaxed);
            for leak in leaks {
                note(&format!("LEAK: {leak}"));
            }
        }
    }
}

/// Mount points at or under `dir`, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let dir = dir.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| {
            *m == dir
                || m.strip_prefix(dir.as_ref())
                    .is_some_and(|r| r.starts_with('/'))
        })
        .map(str::to_owned)
        .collect()
}

/// Where cgroups of this run could be: every cgroup mount, its
/// `sandvisor` directory (sandvisor's default parent) and this process's
/// own cgroup in it (runc's parent when the spec names none).
fn cgroup_parents() -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let own: Vec<String> = fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(|p| p.trim_start_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let mut parents = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(mount) = left.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        parents.push(mount.join("sandvisor"));
        for p in &own {
            parents.push(mount.join(p));
        }
        parents.push(mount);
    }
    parents.retain(|p| p.is_dir());
    parents.sort();
    parents.dedup();
    parents
}

/// What this run left behind: processes (by command line or cgroup),
/// mounts, cgroup directories, the temporary directory.
fn leak_check(prefix: &str, dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + 3 * EXIT_GRACE;
    loop {
        let orphans = reap_orphans();
        let mut leaks = leaks_now(prefix, dir);
        if orphans > 0 {
            leaks.push(format!("{orphans} orphaned descendant(s) still running"));
        }
        if leaks.is_empty() || Instant::now() >= deadline {
            return leaks;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes (not zombies) of this run: by command line (the
/// workspace or an id in it) or by cgroup (an id).
fn processes_of(prefix: &str, dir: &Path) -> Vec<i32> {
    let dir_text = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // A zombie holds nothing but its pid, until its parent reaps it.
        let state = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()?.to_owned()));
        if matches!(state.as_deref(), Some("Z" | "X") | None) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let cgroup = fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cmdline.contains(&dir_text) || cmdline.contains(prefix) || cgroup.contains(prefix) {
            found.push(pid);
        }
    }
    found
}

/// Cgroup directories of this run (named with the id prefix).
fn cgroups_of(prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for parent in cgroup_parents() {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(prefix));
            if ours && entry.path().is_dir() {
                found.push(entry.path());
            }
        }
    }
    found
}

fn leaks_now(prefix: &str, dir: &Path) -> Vec<String> {
    let mut leaks = Vec::new();
    for pid in processes_of(prefix, dir) {
        let read = |name: &str| {
            fs::read(format!("/proc/{pid}/{name}"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default()
        };
        leaks.push(format!(
            "process {pid} ({}): {}",
            read("comm").trim(),
            read("cmdline").trim()
        ));
    }
    for mount in mounts_under(dir) {
        leaks.push(format!("mount {mount}"));
    }
    for cgroup in cgroups_of(prefix) {
        leaks.push(format!("cgroup {}", cgroup.display()));
    }
    if dir.exists() {
        leaks.push(format!("directory {}", dir.display()));
    }
    leaks
}

// ---------------------------------------------------------------------------
// The janitor: cleans up after a bench that could not

/// The janitor child, told through a pipe when the bench has cleaned up.
struct Janitor {
    proc: Proc,
    pipe: Option<fs::File>,
}

impl Janitor {
    fn spawn(dir: &Path, prefix: &str, runc: Option<&Path>) -> Janitor {
        let (theirs, ours) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .unwrap_or_else(|e| failed("create the janitor's pipe", e));
        let exe = env::current_exe().unwrap_or_else(|e| failed("path of the bench binary", e));
        let mut cmd = Command::new(exe);
        cmd.env(JANITOR_DIR_ENV, dir)
            .env(JANITOR_PREFIX_ENV, prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(runc) = runc {
            cmd.env(JANITOR_RUNC_ENV, runc);
        }
        // No death signal: it must outlive a bench that was killed.
        prepare_child(&mut cmd, None, Some(theirs.as_raw_fd()));
        let proc = Proc::spawn(&mut cmd, "janitor", Signal::SIGKILL)
            .unwrap_or_else(|e| failed("spawn the janitor", e));
        Janitor {
            proc,
            pipe: Some(fs::File::from(ours)),
        }
    }

    /// Tells it all is clean and reaps it.
    fn dismiss(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(JANITOR_DONE);
        }
        if self.proc.wait_exit(STOP_TIMEOUT).is_none() {
            note("warning: the janitor did not exit when dismissed; killing it");
        }
    }
}

/// Runs in the re-executed bench binary: waits for the bench to go away,
/// and cleans up unless the bench said it had.
fn janitor(dir: PathBuf) {
    for signal in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGTERM] {
        // SAFETY: SIG_IGN installs no handler, so nothing runs in signal
        // context; this process has a single thread.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigIgn) };
    }
    // SAFETY: the bench handed this pipe over as descriptor 3 for this one
    // purpose; nothing else in this process knows or owns it.
    let mut pipe = unsafe { fs::File::from_raw_fd(3) };
    let mut said = Vec::new();
    let _ = pipe.read_to_end(&mut said);
    if said == JANITOR_DONE {
        return;
    }
    let prefix = env::var(JANITOR_PREFIX_ENV).unwrap_or_default();
    if prefix.is_empty() {
        note("janitor: no id prefix given; nothing done");
        return;
    }
    note(&format!(
        "janitor: the bench went away without cleaning up; cleaning {dir:?}"
    ));
    // Supervisors get SIGTERM when the bench dies, and tear their
    // sandboxes down: let them.
    let deadline = Instant::now() + 2 * STOP_TIMEOUT;
    while Instant::now() < deadline && !processes_of(&prefix, &dir).is_empty() {
        thread::sleep(Duration::from_millis(50));
    }
    if let Some(runc) = env::var_os(JANITOR_RUNC_ENV) {
        // Dropped at once: deletes every container in runc's root.
        drop(RuncRoot {
            runc: PathBuf::from(runc),
            root: dir.join("rc-root"),
        });
    }
    for pid in processes_of(&prefix, &dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    thread::sleep(Duration::from_millis(100));
    for cgroup in cgroups_of(&prefix) {
        remove_cgroup_tree(&cgroup);
    }
    if mounts_under(&dir).is_empty() {
        let _ = fs::remove_dir_all(&dir);
    }
    let leaks = leak_check(&prefix, &dir);
    if leaks.is_empty() {
        note("janitor: nothing left behind");
    }
    for leak in leaks {
        note(&format!("janitor: LEAK: {leak}"));
    }
}

/// Removes a cgroup directory and the ones below it (rmdir only: a cgroup
/// with processes stays).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

// ---------------------------------------------------------------------------
// Measurements

/// Wall-clock samples of one case, and CPU samples where known.
#[derive(Default)]
struct Series {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Series {
    fn push(&mut self, t: Timing) {
        self.wall.push(t.wall);
        self.cpu.push(t.cpu);
    }
}

/// The steps of `sandvisor run`, done one by one by the bench.
#[derive(Default)]
struct RunSteps {
    boot: Vec<Duration>,
    start: Vec<Duration>,
    wait: Vec<Duration>,
    teardown: Vec<Duration>,
    total: Vec<Duration>,
}

/// Boots a supervisor, runs /bin/true as its root container, stops it:
/// what `sandvisor run` does, step by step.
fn run_steps_once(ws: &Workspace, id: &str, steps: Option<&mut RunSteps>, hangs: &mut Vec<String>) {
    let (sup, boot) = Supervisor::boot(&ws.sv_root, id, ws.log("supervisor-steps"), true);
    let spec = ws.true_spec.clone();
    let stdio = dev_null_stdio();
    let start = Instant::now();
    let conn = sup.connect();
    conn.must(StartRoot {
        cid: id.to_owned(),
        spec,
        bundle: Workspace::bundle_arg(&ws.bundle),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: stdio,
    });
    let started = start.elapsed();
    let status = wait_container(&conn, id, hangs);
    let waited = start.elapsed() - started;
    drop(conn);
    let teardown = sup.shutdown();
    let Some(status) = status else {
        return;
    };
    assert!(
        status == 0,
        "/bin/true as a root container ended with wait status {status:#x}"
    );
    if let Some(steps) = steps {
        steps.boot.push(boot);
        steps.start.push(started);
        steps.wait.push(waited);
        steps.teardown.push(teardown);
        steps.total.push(boot + started + waited + teardown);
    }
}

/// Part 1: `run` of /bin/true, whole commands, plus the steps.
struct RunResults {
    sandvisor: Series,
    runc: Option<Series>,
    unshare: Option<Series>,
    steps: RunSteps,
    /// Calls or commands that never finished (torn down, not timed).
    hangs: Vec<String>,
}

fn run_cases(config: &Config, ws: &Workspace, runc: Option<&RuncRoot>) -> RunResults {
    let mut results = RunResults {
        sandvisor: Series::default(),
        runc: runc.map(|_| Series::default()),
        unshare: config.unshare.as_ref().map(|_| Series::default()),
        steps: RunSteps::default(),
        hangs: Vec::new(),
    };
    let total = config.warmup + config.runs;
    for round in 0..total {
        let timed = round >= config.warmup;
        let tag = if timed {
            format!("r{}", round - config.warmup)
        } else {
            format!("w{round}")
        };
        // Rotate the order so that no case always follows another.
        for k in 0..4 {
            config.settle();
            match (round + k) % 4 {
                0 => {
                    let id = ws.id(&format!("sv{tag}"));
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandvisor"));
                    cmd.arg("--root")
                        .arg(&ws.sv_root)
                        .args(["run", "--bundle"])
                        .arg(&ws.bundle)
                        .args(["--id", &id]);
                    let t = time_command(
                        &mut cmd,
                        "`sandvisor run`",
                        &ws.log("sandvisor-run"),
                        Signal::SIGTERM,
                        HANG_TIMEOUT,
                        Some(&mut results.hangs),
                    );
                    if let (true, Some(t)) = (timed, t) {
                        results.sandvisor.push(t);
                    }
                }
                1 => {
                    if let (Some(root), Some(series)) = (runc, results.runc.as_mut()) {
                        let id = ws.id(&format!("rc{tag}"));
                        let mut cmd = root.command();
                        cmd.args(["run", "--bundle"]).arg(&ws.bundle).arg(&id);
                        let t = time_command(
                            &mut cmd,
                            "`runc run`",
                            &ws.log("runc-run"),
                            Signal::SIGTERM,
                            COMMAND_TIMEOUT,
                            None,
                        );
                        if let (true, Some(t)) = (timed, t) {
                            series.push(t);
                        }
                    }
                }
                2 => {
                    if let (Some(unshare), Some(series)) =
                        (&config.unshare, results.unshare.as_mut())
                    {
                        let mut cmd = Command::new(unshare);
                        cmd.args(["-p", "-f", "-m", "-u", "-i", "-n", "--mount-proc"])
                            .arg("/bin/true");
                        let t = time_command(
                            &mut cmd,
                            "`unshare ... /bin/true`",
                            &ws.log("unshare"),
                            Signal::SIGKILL,
                            COMMAND_TIMEOUT,
                            None,
                        );
                        if let (true, Some(t)) = (timed, t) {
                            series.push(t);
                        }
                    }
                }
                _ => {
                    let id = ws.id(&format!("st{tag}"));
                    let steps = timed.then_some(&mut results.steps);
                    run_steps_once(ws, &id, steps, &mut results.hangs);
                }
            }
        }
    }
    results
}

/// Part 2 and 3: exec and subcontainers in a warm sandbox.
#[derive(Default)]
struct ExecResults {
    exec: Vec<Duration>,
    exec_start: Vec<Duration>,
    runc_exec: Option<Series>,
    sub: Vec<Duration>,
    sub_create: Vec<Duration>,
    sub_start: Vec<Duration>,
    sub_wait: Vec<Duration>,
    sub_destroy: Vec<Duration>,
    sub_all: Vec<Duration>,
    hangs: Vec<String>,
}

fn sandvisor_exec_once(conn: &Connection, cid: &str, results: &mut ExecResults, timed: bool) {
    check_interrupted();
    let stdio = dev_null_stdio();
    let start = Instant::now();
    let executed = conn.must(ExecuteAsync {
        cid: cid.to_owned(),
        argv: vec!["/bin/true".to_owned()],
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
        fds: stdio,
    });
    let started = start.elapsed();
    let status = conn.must(WaitPid {
        cid: cid.to_owned(),
        pid: executed.pid,
    });
    let total = start.elapsed();
    assert!(
        status.status == 0,
        "exec of /bin/true ended with wait status {:#x}",
        status.status
    );
    if timed {
        results.exec.push(total);
        results.exec_start.push(started);
    }
}

fn subcontainer_once(
    ws: &Workspace,
    conn: &Connection,
    cid: &str,
    results: &mut ExecResults,
    timed: bool,
) {
    check_interrupted();
    let spec = ws.true_spec.clone();
    let stdio = dev_null_stdio();
    let start = Instant::now();
    conn.must(CreateSubcontainer {
        cid: cid.to_owned(),
        fds: Fds::none(),
    });
    let created = start.elapsed();
    conn.must(StartSubcontainer {
        cid: cid.to_owned(),
        spec,
        bundle: Workspace::bundle_arg(&ws.bundle),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: stdio,
    });
    let started = start.elapsed();
    let status = wait_container(conn, cid, &mut results.hangs);
    let waited = start.elapsed();
    let destroy_start = Instant::now();
    conn.must(DestroySubcontainer {
        cid: cid.to_owned(),
    });
    let destroyed = destroy_start.elapsed();
    let Some(status) = status else {
        return;
    };
    assert!(
        status == 0,
        "/bin/true as a subcontainer ended with wait status {status:#x}"
    );
    if timed {
        results.sub.push(waited);
        results.sub_create.push(created);
        results.sub_start.push(started - created);
        results.sub_wait.push(waited - started);
        results.sub_destroy.push(destroyed);
        results.sub_all.push(waited + destroyed);
    }
}

fn exec_cases(config: &Config, ws: &Workspace, runc: Option<&RuncRoot>) -> ExecResults {
    let mut results = ExecResults {
        runc_exec: runc.map(|_| Series::default()),
        ..ExecResults::default()
    };
    // The warm sandbox: a supervisor whose root container sleeps.
    let sid = ws.id("warm");
    let (sup, _) = Supervisor::boot(&ws.sv_root, &sid, ws.log("supervisor-warm"), false);
    let conn = sup.connect();
    conn.must(StartRoot {
        cid: sid.clone(),
        spec: ws.sleep_spec.clone(),
        bundle: Workspace::bundle_arg(&ws.sleep_bundle),
        console_socket: None,
        preserve_fds: 0,
        hold: false,
        caller_spawner: false,
        fds: dev_null_stdio(),
    });
    // The runc container to exec into.
    let runc_container = runc.map(|root| {
        RuncContainer::start(root, &ws.sleep_bundle, &ws.id("rcx"), &ws.log("runc-run-d"))
    });
    let total = config.warmup + config.exec_runs;
    for round in 0..total {
        let timed = round >= config.warmup;
        for k in 0..3 {
            config.settle();
            match (round + k) % 3 {
                0 => sandvisor_exec_once(&conn, &sid, &mut results, timed),
                1 => {
                    if let Some(container) = &runc_container {
                        let mut cmd = container.root.command();
                        cmd.args(["exec", &container.id, "/bin/true"]);
                        let t = time_command(
                            &mut cmd,
                            "`runc exec`",
                            &ws.log("runc-exec"),
                            Signal::SIGTERM,
                            COMMAND_TIMEOUT,
                            None,
                        );
                        if let (true, Some(t), Some(series)) =
                            (timed, t, results.runc_exec.as_mut())
                        {
                            series.push(t);
                        }
                    }
                }
                _ => {
                    let cid = ws.id(&format!("sub{round}"));
                    subcontainer_once(ws, &conn, &cid, &mut results, timed);
                }
            }
        }
    }
    drop(runc_container);
    drop(conn);
    sup.shutdown();
    results
}

// ---------------------------------------------------------------------------
// Report

fn header(first: &str, middle: &str, last: &str) {
    println!(
        "{first:<34} {:>7} {:>7} {:>7}  {middle:<10} {last}",
        "mean_ms", "p50_ms", "p90_ms"
    );
}

fn case_row(case: &str, s: &Stats, middle: &str, target: &str) {
    println!(
        "{case:<34} {:>7.2} {:>7.2} {:>7.2}  {middle:<10} {target}",
        s.mean, s.p50, s.p90
    );
}

fn ratio_row(case: &str, num: &Stats, den: &Stats, target: &str, limit: f64) {
    let ratio = num.mean / den.mean;
    println!(
        "{case:<34} {:>7} {:>7} {:>7}  {:<10} {target} {}   (p50 ratio {:.2})",
        "",
        "",
        "",
        format!("{ratio:.2}"),
        verdict(ratio <= limit),
        num.p50 / den.p50
    );
}

/// CPU time the whole machine and the bench (with every descendant it
/// reaped) have used, to tell how much other processes disturbed a run.
struct CpuMeter {
    start: Instant,
    machine: Duration,
    ours: Duration,
}

/// Busy time of all CPUs, from the first line of /proc/stat.
fn machine_busy() -> Duration {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    // SAFETY: sysconf with a constant name reads a value; no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(busy.saturating_mul(1_000_000) / hz)
}

fn our_cpu() -> Duration {
    let own = getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |v: nix::sys::time::TimeVal| {
                Duration::from_secs(v.tv_sec().max(0) as u64)
                    + Duration::from_micros(v.tv_usec().max(0) as u64)
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default();
    own + children_cpu()
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            start: Instant::now(),
            machine: machine_busy(),
            ours: our_cpu(),
        }
    }

    /// Share of the machine's CPU that other processes used since the
    /// start, in percent (descendants still running count as others).
    fn others_percent(&self) -> f64 {
        let wall = self.start.elapsed().as_secs_f64();
        let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let machine = machine_busy().saturating_sub(self.machine).as_secs_f64();
        let ours = our_cpu().saturating_sub(self.ours).as_secs_f64();
        (100.0 * (machine - ours).max(0.0) / (wall * cpus)).min(100.0)
    }
}

fn print_report(
    config: &Config,
    ws: &Workspace,
    run: &RunResults,
    exec: &ExecResults,
    meter: &CpuMeter,
) {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("container benchmark ({cpus} CPUs)");
    let others = meter.others_percent();
    println!(
        "other processes used {others:.0}% of the machine's CPU meanwhile{}",
        if others >= 10.0 {
            ": a noisy run, compare with care"
        } else {
            ""
        }
    );
    println!(
        "{} timed runs per run case, {} per exec and subcontainer case, after {} warm-up round(s); \
         {} ms between iterations; bundle: static busybox, config.json from {}",
        config.runs,
        config.exec_runs,
        config.warmup,
        config.gap.as_millis(),
        if ws.spec_from_runc {
            "`runc spec`"
        } else {
            "oci-spec's default (no runc)"
        }
    );
    header("case", "ratio", "target");
    let sv = Stats::millis(&run.sandvisor.wall);
    case_row("run /bin/true: sandvisor", &sv, "", "");
    let rc = run.runc.as_ref().map(|s| Stats::millis(&s.wall));
    match &rc {
        Some(rc) => case_row("run /bin/true: runc", rc, "", ""),
        None => println!("run /bin/true: runc                skipped: runc not found"),
    }
    let un = run.unshare.as_ref().map(|s| Stats::millis(&s.wall));
    match &un {
        Some(un) => case_row("run /bin/true: unshare floor", un, "", ""),
        None => println!("run /bin/true: unshare floor       skipped: unshare not found"),
    }
    if let Some(rc) = &rc {
        ratio_row("sandvisor/runc", &sv, rc, "<= 0.5", RUN_VS_RUNC_TARGET);
    }
    if let Some(un) = &un {
        ratio_row(
            "sandvisor/unshare",
            &sv,
            un,
            "<= 2 (stretch)",
            RUN_VS_UNSHARE_STRETCH,
        );
    }
    let ex = Stats::millis(&exec.exec);
    case_row("exec /bin/true: sandvisor", &ex, "", "");
    let rx = exec.runc_exec.as_ref().map(|s| Stats::millis(&s.wall));
    match &rx {
        Some(rx) => {
            case_row("exec /bin/true: runc exec", rx, "", "");
            ratio_row(
                "sandvisor/runc exec",
                &ex,
                rx,
                "<= 0.15",
                EXEC_VS_RUNC_TARGET,
            );
        }
        None => println!("exec /bin/true: runc exec          skipped: runc not found"),
    }
    let sub = Stats::millis(&exec.sub);
    case_row(
        "subcontainer create+start+wait",
        &sub,
        "",
        &format!("<= 3 ms {}", verdict(sub.mean <= SUBCONTAINER_TARGET_MS)),
    );
    println!("ratio = mean / mean; p50 ratio likewise for medians.");

    println!();
    println!("where `sandvisor run` goes (the same steps done one by one by the bench)");
    header("step", "share", "");
    let share = |s: &Stats| format!("{:.0}%", 100.0 * s.mean / sv.mean);
    let steps = &run.steps;
    let rows: [(&str, &[Duration]); 4] = [
        ("boot: spawn to \"ready\\n\"", &steps.boot),
        ("connect + StartRoot (to exec)", &steps.start),
        ("Wait (to /bin/true's exit)", &steps.wait),
        ("teardown: SIGTERM to reaped", &steps.teardown),
    ];
    for (name, samples) in rows {
        let s = Stats::millis(samples);
        case_row(name, &s, &share(&s), "");
    }
    let sum = Stats::millis(&steps.total);
    case_row("sum of the steps", &sum, &share(&sum), "");
    case_row("`sandvisor run` (whole command)", &sv, "100%", "");
    let rest = sv.mean - sum.mean;
    println!(
        "{:<34} {rest:>7.2} {:>7} {:>7}  {:<10} (run's own exec and config parse)",
        "rest: run - sum (means)",
        "",
        "",
        format!("{:.0}%", 100.0 * rest / sv.mean),
    );

    println!();
    println!("CPU per command (user+sys of it and the descendants it reaped; getrusage)");
    println!("{:<34} {:>7} {:>7}", "case", "cpu_ms", "wall_ms");
    let cpu_rows = [
        ("run /bin/true: sandvisor", Some(&run.sandvisor)),
        ("run /bin/true: runc", run.runc.as_ref()),
        ("run /bin/true: unshare floor", run.unshare.as_ref()),
        ("exec /bin/true: runc exec", exec.runc_exec.as_ref()),
    ];
    for (name, series) in cpu_rows {
        if let Some(series) = series {
            println!(
                "{name:<34} {:>7.2} {:>7.2}",
                Stats::millis(&series.cpu).mean,
                Stats::millis(&series.wall).mean
            );
        }
    }

    println!();
    println!("exec and subcontainer steps (warm sandbox, root running `sleep 3600`)");
    header("step", "", "");
    let info: [(&str, &[Duration]); 6] = [
        ("exec: ExecuteAsync (to exec)", &exec.exec_start),
        ("subcontainer: Create", &exec.sub_create),
        ("subcontainer: Start (to exec)", &exec.sub_start),
        ("subcontainer: Wait (to exit)", &exec.sub_wait),
        ("subcontainer: Destroy (apart)", &exec.sub_destroy),
        ("subcontainer: all four", &exec.sub_all),
    ];
    for (name, samples) in info {
        case_row(name, &Stats::millis(samples), "", "");
    }
    let hangs: Vec<&String> = run.hangs.iter().chain(&exec.hangs).collect();
    if !hangs.is_empty() {
        println!();
        println!(
            "WARNING: {} call(s) or command(s) never finished; they were torn down and \
             left out of the figures above:",
            hangs.len()
        );
        for hang in hangs {
            println!("  {hang}");
        }
    }
}

// ---------------------------------------------------------------------------

fn run(config: &Config) {
    eprintln!(
        "containers bench: {} runs per run case, {} per exec case, {} warm-up round(s); \
         busybox {:?}; runc {}; unshare {}",
        config.runs,
        config.exec_runs,
        config.warmup,
        config.busybox,
        config.runc.as_ref().map_or(
            "not found: the runc rows are skipped".to_owned(),
            |p| format!("{p:?}")
        ),
        config
            .unshare
            .as_ref()
            .map_or("not found: the floor is skipped".to_owned(), |p| format!(
                "{p:?}"
            )),
    );
    // Dropped last: removes the directory and checks for leaks.
    let ws = Workspace::create(config);
    // Dropped before it: deletes runc's containers.
    let runc = config.runc.as_ref().map(|runc| RuncRoot {
        runc: runc.clone(),
        root: ws.rc_root.clone(),
    });
    let meter = CpuMeter::start();
    eprintln!("run /bin/true...");
    let run_results = run_cases(config, &ws, runc.as_ref());
    eprintln!("exec and subcontainers...");
    let exec_results = exec_cases(config, &ws, runc.as_ref());
    print_report(config, &ws, &run_results, &exec_results, &meter);
}
