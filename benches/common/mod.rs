//! What the benches share (each bench is a crate of its own that includes
//! this module): stopping cleanly on SIGINT or SIGTERM, knobs from the
//! environment, children that die with the bench, CPU affinity, the
//! `sandvisor boot` command line, statistics of samples and the verdict
//! column of the reports.

#![allow(dead_code)]

use std::env;
use std::fs;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

// ---------------------------------------------------------------------------
// Interruption

/// Set by SIGINT or SIGTERM: the bench panics at the next check, so that
/// unwinding stops the children and removes the temporary directory.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Control sockets (descriptor numbers, -1 for none) that the signal
/// handler shuts down, so that a call blocked on one returns at once: the
/// client retries reads interrupted by a signal.
static WATCHED: [AtomicI32; 4] = [const { AtomicI32::new(-1) }; 4];

extern "C" fn on_termination(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
    for slot in &WATCHED {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: shutdown(2) is async-signal-safe and touches no
            // memory. The benches have a single thread, which this handler
            // interrupted: a registered descriptor is unregistered before
            // it is closed (see `unwatch`), so `fd` is still the registered
            // socket here.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// Installs the SIGINT and SIGTERM handler.
pub fn catch_termination() {
    // A second signal gets the default action (SA_RESETHAND).
    let action = SigAction::new(
        SigHandler::Handler(on_termination),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to atomics and calls shutdown(2),
        // which are async-signal-safe, and no other handler is installed
        // for these signals in this process.
        unsafe { sigaction(signal, &action) }.expect("install a signal handler");
    }
}

/// Panics if a signal asked the bench to stop.
pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::Relaxed) {
        panic!("interrupted by a signal; cleaning up");
    }
}

/// Panics about a failed step, or about the signal that made it fail (a
/// Ctrl-C reaches the children too).
pub fn failed(what: &str, error: impl std::fmt::Display) -> ! {
    check_interrupted();
    panic!("{what}: {error}");
}

/// Prints a line on stderr from code that must not panic (guards run
/// while unwinding; stderr may be a closed pipe by then).
pub fn note(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// Has the signal handler shut `fd` down on SIGINT or SIGTERM; the slot
/// to [`unwatch`] before `fd` is closed, or `None` when all are taken.
pub fn watch(fd: RawFd) -> Option<usize> {
    WATCHED.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Frees a slot of [`watch`].
pub fn unwatch(slot: usize) {
    if let Some(slot) = WATCHED.get(slot) {
        slot.store(-1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Configuration

/// The value of environment variable `name`, or `default` when unset;
/// panics on a value that does not parse.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> T {
    match env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a valid value")),
        Err(_) => default,
    }
}

/// True when environment variable `name` is set, not empty and not "0".
pub fn env_flag(name: &str) -> bool {
    env::var(name).is_ok_and(|v| v != "0" && !v.is_empty())
}

/// `SANDVISOR_BENCH_QUICK=1`: small defaults for a smoke run.
pub fn quick() -> bool {
    env_flag("SANDVISOR_BENCH_QUICK")
}

pub fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

// ---------------------------------------------------------------------------
// Children

/// How a child of the bench is set up between fork and exec.
#[derive(Default)]
pub struct ChildSetup {
    /// Sent to the child when the bench dies (`PR_SET_PDEATHSIG`); a child
    /// whose bench died before that was set fails to start.
    pub death_signal: Option<Signal>,
    /// The child leads a new process group (so that a terminal's Ctrl-C
    /// reaches the bench alone, which then stops its children in order).
    pub own_group: bool,
    /// A descriptor the child inherits under its own number.
    pub inherit: Option<RawFd>,
    /// A descriptor the child gets as its descriptor 3.
    pub fd3: Option<RawFd>,
    /// The CPUs the child runs on, before it executes anything.
    pub pin: Option<CpuSet>,
}

impl ChildSetup {
    /// Applies the setup to `cmd`. The descriptors must stay open until
    /// the spawn returns.
    pub fn apply(self, cmd: &mut Command) {
        let parent = std::process::id() as libc::pid_t;
        let ChildSetup {
            death_signal,
            own_group,
            inherit,
            fd3,
            pin,
        } = self;
        let signal = death_signal.map(|s| s as libc::c_ulong);
        if own_group {
            cmd.process_group(0);
        }
        // SAFETY: the closure runs in the forked child before exec. It only
        // makes async-signal-safe system calls (prctl, getppid, fcntl, dup2,
        // sched_setaffinity) on values copied in before the fork, and
        // neither allocates nor takes locks. `inherit` and `fd3` are
        // descriptors the parent keeps open until the spawn returns, so
        // they are valid in the child.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(signal) = signal {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The bench died between the fork and the prctl.
                    if libc::getppid() != parent {
                        return Err(io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                if let Some(fd) = inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(fd) = fd3 {
                    // dup2 clears close-on-exec on the copy, unless it is a
                    // no-op.
                    let rc = if fd == 3 {
                        libc::fcntl(3, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(fd, 3)
                    };
                    if rc < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(set) = &pin {
                    sched_setaffinity(Pid::from_raw(0), set).map_err(io::Error::from)?;
                }
                Ok(())
            });
        }
    }
}

/// A log file's text, or why it cannot be read.
pub fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {path:?}: {e})"))
}

// ---------------------------------------------------------------------------
// The supervisor's command line

/// `sandvisor [--root ROOT] [--log-level LEVEL] boot --id ID [--ready-fd 3]
/// --socket SOCKET [--prewarm ID]`.
pub struct Boot<'a> {
    pub id: &'a str,
    pub socket: &'a Path,
    /// `--root`: where its state goes.
    pub root: Option<&'a Path>,
    /// `--log-level`.
    pub log_level: Option<&'a str>,
    /// `--ready-fd 3`: it writes "ready\n" on its descriptor 3 once it
    /// serves, as `sandvisor run` starts it.
    pub ready_fd3: bool,
    /// `--prewarm ID`: its root container's resident is made while it
    /// boots, as `sandvisor run` asks.
    pub prewarm: bool,
}

impl Boot<'_> {
    /// The command (stdio and child setup are the caller's).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandvisor"));
        if let Some(root) = self.root {
            cmd.arg("--root").arg(root);
        }
        if let Some(level) = self.log_level {
            cmd.args(["--log-level", level]);
        }
        cmd.args(["boot", "--id", self.id]);
        if self.ready_fd3 {
            cmd.args(["--ready-fd", "3"]);
        }
        cmd.arg("--socket").arg(self.socket);
        if self.prewarm {
            cmd.args(["--prewarm", self.id]);
        }
        cmd
    }
}

// ---------------------------------------------------------------------------
// CPU affinity

pub fn allowed_cpus() -> CpuSet {
    sched_getaffinity(Pid::from_raw(0)).expect("sched_getaffinity")
}

pub fn cpus_in(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

pub fn single_cpu(cpu: usize) -> CpuSet {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu number in range");
    set
}

/// Pins the calling thread.
pub fn pin_self(set: &CpuSet) {
    sched_setaffinity(Pid::from_raw(0), set).expect("sched_setaffinity on the bench thread");
}

// ---------------------------------------------------------------------------
// Statistics

/// The `q` quantile of sorted samples (nearest rank), `None` when there
/// are none.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let n = sorted.len().max(1);
    let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted.get(i).copied()
}

/// Mean and percentiles of a series, in the unit its constructor names.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Stats {
    /// Of durations, in milliseconds.
    pub fn millis(samples: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1);
        let pick = |q: f64| quantile(&ms, q).unwrap_or(f64::NAN);
        Stats {
            mean: ms.iter().sum::<f64>() / n as f64,
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
        }
    }

    /// Of nanosecond counts (which it sorts), in microseconds.
    pub fn micros_of_nanos(samples: &mut [u64]) -> Stats {
        samples.sort_unstable();
        let n = samples.len().max(1);
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        let pick = |q: f64| quantile(samples, q).map_or(f64::NAN, |s| s as f64 / 1000.0);
        Stats {
            mean: sum as f64 / n as f64 / 1000.0,
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
        }
    }
}

// ---------------------------------------------------------------------------
// Reports

/// The verdict column: whether a target was met.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}
