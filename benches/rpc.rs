//! RPC benchmark: `cargo bench --bench rpc`.
//!
//! Measures, in one run:
//!
//! 1. the raw floor: a ping-pong of N bytes over a Unix socketpair with an
//!    echo server in another process (this binary, re-executed);
//! 2. `debug.Ping` round trips through the whole stack (blocking client,
//!    framing, CBOR envelopes, ingress actor, Debug actor) against a real
//!    `sandvisor boot`, for the same payload sizes;
//! 3. pipelined `debug.Ping` throughput on one connection.
//!
//! Round trips run with the client, the echo server and the supervisor all
//! pinned to one CPU, so that every round trip pays the same two context
//! switches and the ratio compares software paths rather than scheduler
//! luck. The pipelined case is not pinned.
//!
//! Knobs (environment):
//! - `SANDVISOR_BENCH_ITERS`: timed round trips per case (default 20000);
//! - `SANDVISOR_BENCH_WARMUP`: untimed round trips first (default 2000);
//! - `SANDVISOR_BENCH_ROUNDS`: raw and RPC round trips alternate in this
//!   many rounds, so that a noisy stretch hits both (default 5);
//! - `SANDVISOR_BENCH_PIPELINE_MS`: timed pipelined run (default 2000);
//! - `SANDVISOR_BENCH_PIPELINE_WARMUP_MS`: pipelined warm-up (default 300);
//! - `SANDVISOR_BENCH_WINDOWS`: pipeline windows, comma-separated
//!   (default `64,256`);
//! - `SANDVISOR_BENCH_UNPINNED=1`: also 64-byte round trips with nothing
//!   pinned (informative only: on a VM they are bimodal, depending on
//!   whether the scheduler keeps both ends on one CPU);
//! - `SANDVISOR_BENCH_QUICK=1`: small defaults for a smoke run.
// A bench: a failed unwrap stops the run where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::env;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    allowed_cpus, catch_termination, check_interrupted, cpus_in, env_flag, env_parse, failed,
    pin_self, quick, read_log, single_cpu, verdict, Boot, ChildSetup, Stats,
};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sandvisor::api::debug::{Ping, PingReply};
use sandvisor::api::Fds;
use sandvisor::Client;

/// Set in the environment of the re-executed bench binary: the number of
/// the inherited socket it must echo on.
const ECHO_FD_ENV: &str = "SANDVISOR_BENCH_ECHO_FD";

/// Payload sizes of the round-trip cases.
const PAYLOADS: [usize; 2] = [64, 4096];

/// Payload of the pipelined case.
const PIPELINE_PAYLOAD: usize = 64;

/// How long the supervisor may take to accept connections, and to exit.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Targets from the design.
const RATIO_TARGET: f64 = 3.0;
const RATIO_STRETCH: f64 = 2.0;
const THROUGHPUT_TARGET: f64 = 100_000.0;

fn main() {
    if let Ok(fd) = env::var(ECHO_FD_ENV) {
        echo_server(&fd);
        return;
    }
    let config = Config::from_env();
    catch_termination();
    run(&config);
}

// ---------------------------------------------------------------------------
// Configuration

struct Config {
    iters: usize,
    warmup: usize,
    rounds: usize,
    unpinned: bool,
    pipeline: Duration,
    pipeline_warmup: Duration,
    windows: Vec<usize>,
}

impl Config {
    fn from_env() -> Config {
        let (iters, warmup, pipeline_ms, pipeline_warmup_ms) = if quick() {
            (2_000, 200, 300, 50)
        } else {
            (20_000, 2_000, 2_000, 300)
        };
        let windows = env::var("SANDVISOR_BENCH_WINDOWS").unwrap_or_else(|_| "64,256".into());
        let windows: Vec<usize> = windows
            .split(',')
            .map(|w| {
                w.trim()
                    .parse()
                    .ok()
                    .filter(|w| *w > 0)
                    .unwrap_or_else(|| panic!("SANDVISOR_BENCH_WINDOWS: bad window {w:?}"))
            })
            .collect();
        let iters = env_parse("SANDVISOR_BENCH_ITERS", iters);
        assert!(iters > 0, "SANDVISOR_BENCH_ITERS must be positive");
        Config {
            iters,
            warmup: env_parse("SANDVISOR_BENCH_WARMUP", warmup),
            rounds: env_parse("SANDVISOR_BENCH_ROUNDS", 5),
            unpinned: env_flag("SANDVISOR_BENCH_UNPINNED"),
            pipeline: Duration::from_millis(env_parse("SANDVISOR_BENCH_PIPELINE_MS", pipeline_ms)),
            pipeline_warmup: Duration::from_millis(env_parse(
                "SANDVISOR_BENCH_PIPELINE_WARMUP_MS",
                pipeline_warmup_ms,
            )),
            windows,
        }
    }
}

// ---------------------------------------------------------------------------
// Processes

/// Kills and reaps its child when dropped, unless it was reaped already:
/// no process outlives the bench, even when it panics.
struct ChildGuard {
    child: Child,
    what: &'static str,
    reaped: Option<ExitStatus>,
}

impl ChildGuard {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `timeout` for the child to exit.
    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
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
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => return None,
                Err(e) => {
                    eprintln!("warning: waiting for the {}: {e}", self.what);
                    return None;
                }
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The echo server: another process, on an inherited socket.
struct EchoServer {
    child: ChildGuard,
    stream: UnixStream,
}

impl EchoServer {
    fn spawn(pin: CpuSet) -> EchoServer {
        let (ours, theirs) = UnixStream::pair().expect("socketpair for the echo server");
        let exe = env::current_exe().expect("path of the bench binary");
        let mut cmd = Command::new(exe);
        cmd.env(ECHO_FD_ENV, theirs.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // It dies with the bench, pinned, on the inherited socket.
        ChildSetup {
            death_signal: Some(Signal::SIGKILL),
            pin: Some(pin),
            inherit: Some(theirs.as_raw_fd()),
            ..ChildSetup::default()
        }
        .apply(&mut cmd);
        let child = cmd.spawn().expect("spawn the echo server");
        drop(theirs);
        EchoServer {
            child: ChildGuard {
                child,
                what: "echo server",
                reaped: None,
            },
            stream: ours,
        }
    }

    /// Closes the socket; the server exits at EOF (or is killed).
    fn stop(self) {
        let EchoServer { mut child, stream } = self;
        drop(stream);
        match child.wait_timeout(SHUTDOWN_TIMEOUT) {
            Some(status) if status.success() => {}
            Some(status) => eprintln!("warning: the echo server exited with {status}"),
            None => eprintln!("warning: the echo server did not exit at EOF; killing it"),
        }
    }
}

/// Runs in the re-executed bench binary: echoes every byte back until EOF.
fn echo_server(fd: &str) {
    let fd: RawFd = fd
        .parse()
        .unwrap_or_else(|_| panic!("{ECHO_FD_ENV}={fd:?} is not a descriptor number"));
    // SAFETY: the parent bench cleared FD_CLOEXEC on this socket for us and
    // passed its number; nothing else in this process knows or owns it.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("echo server: read: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = stream.write_all(&buf[..n]) {
            eprintln!("echo server: write: {e}");
            std::process::exit(1);
        }
    }
}

/// A `sandvisor boot` child.
struct Supervisor {
    child: ChildGuard,
    socket: PathBuf,
    log: PathBuf,
}

impl Supervisor {
    fn spawn(dir: &Path, label: &str, pin: Option<CpuSet>) -> Supervisor {
        let socket = dir.join("s").join("ctl.sock");
        let log = dir.join(format!("supervisor-{label}.log"));
        let stderr = fs::File::create(&log).expect("create the supervisor's log file");
        let mut cmd = Boot {
            id: "bench",
            socket: &socket,
            root: None,
            log_level: None,
            ready_fd3: false,
            prewarm: false,
        }
        .command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // It dies with the bench (SIGTERM), pinned when asked.
        ChildSetup {
            death_signal: Some(Signal::SIGTERM),
            pin,
            ..ChildSetup::default()
        }
        .apply(&mut cmd);
        let child = cmd.spawn().expect("spawn `sandvisor boot`");
        let mut sup = Supervisor {
            child: ChildGuard {
                child,
                what: "supervisor",
                reaped: None,
            },
            socket,
            log,
        };
        sup.wait_ready();
        sup
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            check_interrupted();
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.child.try_wait() {
                self.child.reaped = Some(status);
                panic!(
                    "`sandvisor boot` exited before accepting connections ({status}); its log:\n{}",
                    self.log_text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "`sandvisor boot` did not accept connections on {:?} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.socket,
                    self.log_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_text(&self) -> String {
        read_log(&self.log)
    }

    fn connect(&self) -> Client {
        Client::connect(&self.socket).expect("connect to the supervisor")
    }

    /// SIGTERM, then wait; warns unless it exits 0 in time.
    fn shutdown(mut self) -> bool {
        if let Err(e) = kill(self.child.pid(), Signal::SIGTERM) {
            eprintln!("warning: SIGTERM to the supervisor: {e}");
        }
        match self.child.wait_timeout(SHUTDOWN_TIMEOUT) {
            Some(status) if status.success() => true,
            Some(status) => {
                eprintln!(
                    "warning: the supervisor exited with {status} after SIGTERM; its log:\n{}",
                    self.log_text()
                );
                false
            }
            None => {
                eprintln!(
                    "warning: the supervisor did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; killing it"
                );
                false
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scheduler accounting from /proc, to see where the time goes

/// Counters of one thread.
#[derive(Debug, Default, Clone, Copy)]
struct Sched {
    /// Nanoseconds on CPU (schedstat), when the kernel reports it.
    cpu_ns: Option<u64>,
    /// Voluntary plus involuntary context switches.
    switches: u64,
}

fn read_task(dir: &Path) -> Option<Sched> {
    let status = fs::read_to_string(dir.join("status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu_ns = fs::read_to_string(dir.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    Some(Sched {
        cpu_ns,
        switches: field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:"),
    })
}

/// Counters of every thread of process `pid`: (tid, name, counters).
fn sample_process(pid: Pid) -> Vec<(String, String, Sched)> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        if let Some(sched) = read_task(&dir) {
            let name = fs::read_to_string(dir.join("comm"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            out.push((task.file_name().to_string_lossy().into_owned(), name, sched));
        }
    }
    out
}

fn sample_self_thread() -> Sched {
    read_task(Path::new("/proc/thread-self")).unwrap_or_default()
}

/// Scheduler costs of a case, summed over its measured stretches.
#[derive(Default)]
struct Costs {
    calls: u64,
    server_cpu_ns: u64,
    server_switches: u64,
    client_cpu_ns: u64,
    client_switches: u64,
    /// Some CPU time could not be read.
    cpu_unknown: bool,
    /// Names of the server threads that were switched in.
    server_active: BTreeSet<String>,
}

impl Costs {
    /// Runs `body`, which makes the calls it returns the count of, and adds
    /// what the server process and the calling thread did meanwhile.
    fn measure<T>(&mut self, server: Pid, body: impl FnOnce() -> (T, u64)) -> T {
        let server_before = sample_process(server);
        let client_before = sample_self_thread();
        let (value, calls) = body();
        let client_after = sample_self_thread();
        let server_after = sample_process(server);
        self.calls += calls;
        for (tid, name, after) in &server_after {
            let before = server_before
                .iter()
                .find(|(t, _, _)| t == tid)
                .map(|(_, _, s)| *s)
                .unwrap_or_default();
            let (cpu, switches) = self.delta(&before, after);
            self.server_cpu_ns += cpu;
            self.server_switches += switches;
            if switches > 0 {
                self.server_active.insert(name.clone());
            }
        }
        let (cpu, switches) = self.delta(&client_before, &client_after);
        self.client_cpu_ns += cpu;
        self.client_switches += switches;
        value
    }

    fn delta(&mut self, before: &Sched, after: &Sched) -> (u64, u64) {
        let cpu = match (before.cpu_ns, after.cpu_ns) {
            (Some(b), Some(a)) => a.saturating_sub(b),
            // A thread born during the stretch.
            (None, Some(a)) => a,
            (_, None) => {
                self.cpu_unknown = true;
                0
            }
        };
        (cpu, after.switches.saturating_sub(before.switches))
    }

    fn per_call(&self, x: u64) -> f64 {
        x as f64 / self.calls.max(1) as f64
    }

    fn cpu_us(&self, ns: u64) -> String {
        if self.cpu_unknown {
            "n/a".to_owned()
        } else {
            format!("{:.2}", self.per_call(ns) / 1000.0)
        }
    }
}

// ---------------------------------------------------------------------------
// Measurements

/// Round-trip samples (ns) and costs of one case.
struct Series {
    samples: Vec<u64>,
    costs: Costs,
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// `n` raw round trips of `out.len()` bytes each; timed when `samples` is
/// given.
fn raw_chunk(stream: &mut UnixStream, out: &[u8], n: usize, mut samples: Option<&mut Vec<u64>>) {
    let mut back = vec![0u8; out.len()];
    for _ in 0..n {
        check_interrupted();
        let start = Instant::now();
        if let Err(e) = stream.write_all(out) {
            failed("write to the echo server", e);
        }
        if let Err(e) = stream.read_exact(&mut back) {
            failed("read from the echo server", e);
        }
        if let Some(samples) = samples.as_deref_mut() {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    assert!(back == out, "the echo server returned other bytes");
}

/// `n` `debug.Ping` round trips; timed when `samples` is given.
fn ping_chunk(client: &Client, out: &[u8], n: usize, mut samples: Option<&mut Vec<u64>>) {
    for _ in 0..n {
        check_interrupted();
        let start = Instant::now();
        let echoed = client.ping(out).unwrap_or_else(|e| failed("debug.Ping", e));
        if let Some(samples) = samples.as_deref_mut() {
            samples.push(start.elapsed().as_nanos() as u64);
        }
        assert!(
            echoed.len() == out.len(),
            "debug.Ping returned another payload"
        );
    }
}

/// Raw and `debug.Ping` round trips for each size, interleaved in rounds
/// so that a noisy stretch of the machine hits both alike.
fn round_trip_cases(
    config: &Config,
    echo: &mut EchoServer,
    sup: &Supervisor,
    sizes: &[usize],
    suffix: &str,
    target: &'static str,
    rows: &mut Vec<Row>,
) {
    let client = sup.connect();
    let echo_pid = echo.child.pid();
    let sup_pid = sup.child.pid();
    let payloads: Vec<Vec<u8>> = sizes.iter().map(|&s| payload(s)).collect();
    for out in &payloads {
        let echoed = client.ping(out).expect("debug.Ping");
        assert!(echoed == *out, "debug.Ping returned another payload");
        raw_chunk(&mut echo.stream, out, config.warmup, None);
        ping_chunk(&client, out, config.warmup, None);
    }
    let rounds = config.rounds.clamp(1, config.iters);
    let series = || Series {
        samples: Vec::with_capacity(config.iters),
        costs: Costs::default(),
    };
    let mut raw: Vec<Series> = sizes.iter().map(|_| series()).collect();
    let mut ping: Vec<Series> = sizes.iter().map(|_| series()).collect();
    for round in 0..rounds {
        // Split iters over the rounds, the remainder going to the first ones.
        let n = config.iters / rounds + usize::from(round < config.iters % rounds);
        for (i, out) in payloads.iter().enumerate() {
            let series = &mut raw[i];
            let stream = &mut echo.stream;
            series.costs.measure(echo_pid, || {
                raw_chunk(stream, out, n, Some(&mut series.samples));
                ((), n as u64)
            });
            let series = &mut ping[i];
            series.costs.measure(sup_pid, || {
                ping_chunk(&client, out, n, Some(&mut series.samples));
                ((), n as u64)
            });
        }
    }
    for ((size, mut raw), mut ping) in sizes.iter().zip(raw).zip(ping) {
        let raw_latency = Stats::micros_of_nanos(&mut raw.samples);
        rows.push(Row {
            case: format!("raw {}{suffix}", size_label(*size)),
            outcome: Outcome::RoundTrip {
                latency: raw_latency,
                baseline: None,
                target: "",
            },
            costs: raw.costs,
        });
        rows.push(Row {
            case: format!("debug.Ping {}{suffix}", size_label(*size)),
            outcome: Outcome::RoundTrip {
                latency: Stats::micros_of_nanos(&mut ping.samples),
                baseline: Some(raw_latency),
                target,
            },
            costs: ping.costs,
        });
    }
}

/// Keeps `window` calls in flight for `duration`; returns calls per second
/// and the calls completed in that time.
fn pipelined(
    client: &Client,
    args: &[u8],
    expected: &[u8],
    window: usize,
    duration: Duration,
) -> (f64, u64) {
    let mut in_flight = VecDeque::with_capacity(window);
    let start = Instant::now();
    let mut done: u64 = 0;
    let elapsed = loop {
        while in_flight.len() < window {
            let call = client
                .start_raw("debug.Ping", args, &[])
                .unwrap_or_else(|e| failed("start debug.Ping", e));
            in_flight.push_back(call);
        }
        let Some(oldest) = in_flight.pop_front() else {
            unreachable!("the window is never empty here");
        };
        let reply = oldest
            .wait()
            .unwrap_or_else(|e| failed("pipelined debug.Ping", e));
        assert!(reply.value == expected, "debug.Ping returned another reply");
        done += 1;
        if done % 64 == 0 {
            check_interrupted();
            let elapsed = start.elapsed();
            if elapsed >= duration {
                break elapsed;
            }
        }
    };
    // Finish the calls still in flight, outside the measured window.
    for call in in_flight {
        call.wait().expect("pipelined debug.Ping");
    }
    (done as f64 / elapsed.as_secs_f64(), done)
}

fn pipelined_throughput(config: &Config, sup: &Supervisor, window: usize) -> (f64, Costs) {
    let client = sup.connect();
    let args = serde_cbor::to_vec(&Ping {
        payload: payload(PIPELINE_PAYLOAD),
        fds: Fds::none(),
    })
    .expect("encode debug.Ping arguments");
    let first = client
        .start_raw("debug.Ping", &args, &[])
        .expect("start debug.Ping")
        .wait()
        .expect("debug.Ping");
    let reply: PingReply = first.decode("debug.Ping").expect("decode debug.Ping reply");
    assert!(
        reply.payload == payload(PIPELINE_PAYLOAD),
        "debug.Ping returned another payload"
    );
    let expected = first.value;
    pipelined(&client, &args, &expected, window, config.pipeline_warmup);
    let mut costs = Costs::default();
    let calls_per_s = costs.measure(sup.child.pid(), || {
        pipelined(&client, &args, &expected, window, config.pipeline)
    });
    (calls_per_s, costs)
}

// ---------------------------------------------------------------------------
// Report

enum Outcome {
    RoundTrip {
        latency: Stats,
        baseline: Option<Stats>,
        target: &'static str,
    },
    Throughput {
        calls_per_s: f64,
        target: &'static str,
    },
}

struct Row {
    case: String,
    outcome: Outcome,
    costs: Costs,
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

fn verdict_ratio(ratio: f64) -> &'static str {
    if ratio <= RATIO_STRETCH {
        "met (stretch too)"
    } else {
        verdict(ratio <= RATIO_TARGET)
    }
}

fn print_report(rows: &[Row], cpus: usize, pinned_cpu: usize, frames: &[(usize, usize, usize)]) {
    println!();
    println!("rpc benchmark ({cpus} CPUs; round trips pinned to CPU {pinned_cpu})");
    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>12} {:>9}  target",
        "case", "mean_us", "p50_us", "p99_us", "ratio_vs_raw", "p50_ratio"
    );
    for row in rows {
        match &row.outcome {
            Outcome::RoundTrip {
                latency,
                baseline,
                target,
            } => {
                let (ratio, p50_ratio, verdict) = match baseline {
                    Some(raw) => {
                        let ratio = latency.mean / raw.mean;
                        let verdict = if target.is_empty() || target.starts_with('(') {
                            ""
                        } else {
                            verdict_ratio(ratio)
                        };
                        (
                            format!("{ratio:.2}x"),
                            format!("{:.2}x", latency.p50 / raw.p50),
                            verdict,
                        )
                    }
                    None => (String::new(), String::new(), ""),
                };
                println!(
                    "{:<30} {:>8.2} {:>8.2} {:>8.2} {:>12} {:>9}  {target} {verdict}",
                    row.case, latency.mean, latency.p50, latency.p99, ratio, p50_ratio
                );
            }
            Outcome::Throughput {
                calls_per_s,
                target,
            } => {
                let verdict = verdict(*calls_per_s >= THROUGHPUT_TARGET);
                let rate = format!(
                    "{calls_per_s:.0} calls/s ({:.2} us/call)",
                    1e6 / calls_per_s
                );
                println!("{:<30} {rate:<49}  {target} {verdict}", row.case);
            }
        }
    }
    println!("ratio_vs_raw = mean / mean of the raw case of the same size and pinning;");
    println!("p50_ratio likewise for medians (less sensitive to a noisy machine).");
    println!();
    println!("where the time goes (per call; /proc schedstat and ctxt_switches deltas)");
    println!(
        "{:<30} {:>10} {:>8} {:>10} {:>8}  server threads switched in",
        "case", "srv_cpu_us", "srv_csw", "cli_cpu_us", "cli_csw"
    );
    for row in rows {
        let c = &row.costs;
        let active: Vec<&str> = c.server_active.iter().map(String::as_str).collect();
        println!(
            "{:<30} {:>10} {:>8.2} {:>10} {:>8.2}  {}",
            row.case,
            c.cpu_us(c.server_cpu_ns),
            c.per_call(c.server_switches),
            c.cpu_us(c.client_cpu_ns),
            c.per_call(c.client_switches),
            active.join(",")
        );
    }
    println!(
        "(srv = the echo server for raw cases, the supervisor otherwise; cli = the bench thread)"
    );
    for (size, request, reply) in frames {
        println!(
            "debug.Ping {}: request frame {request} B, reply frame {reply} B on the wire",
            size_label(*size)
        );
    }
}

/// Bytes on the wire for a debug.Ping of `size` bytes: request and reply.
fn frame_sizes(size: usize) -> (usize, usize) {
    use sandvisor::actors::wire::envelope::{frame_buffer, write_ok, write_request};
    let args = serde_cbor::to_vec(&Ping {
        payload: payload(size),
        fds: Fds::none(),
    })
    .expect("encode debug.Ping arguments");
    let mut request = frame_buffer(args.len() + 32);
    write_request(&mut request, 1, "debug.Ping", &args);
    let mut reply = frame_buffer(args.len() + 32);
    // The reply echoes the payload in the same shape.
    write_ok(&mut reply, 1, &args);
    (request.len(), reply.len())
}

// ---------------------------------------------------------------------------

fn run(config: &Config) {
    let all = allowed_cpus();
    let cpus = cpus_in(&all);
    let Some(&cpu) = cpus.first() else {
        panic!("no CPU in this thread's affinity mask");
    };
    let pinned = single_cpu(cpu);
    eprintln!(
        "rpc bench: {} timed round trips per case in {} rounds after {} warm-up; \
         pipelined {:?} after {:?}; windows {:?}",
        config.iters,
        config.rounds,
        config.warmup,
        config.pipeline,
        config.pipeline_warmup,
        config.windows
    );

    let dir = tempfile::Builder::new()
        .prefix("sandvisor-bench-")
        .tempdir()
        .expect("create a temporary directory");
    let mut rows = Vec::new();
    let mut clean = true;

    // 1 + 2: round trips, raw and through the stack, all on one CPU.
    pin_self(&pinned);
    let mut echo = EchoServer::spawn(pinned);
    let sup = Supervisor::spawn(dir.path(), "pinned", Some(pinned));
    eprintln!("pinned round trips...");
    round_trip_cases(
        config,
        &mut echo,
        &sup,
        &PAYLOADS,
        "",
        "<=3x (stretch 2x)",
        &mut rows,
    );
    clean &= sup.shutdown();

    // Everything else runs unpinned.
    pin_self(&all);
    sched_setaffinity(echo.child.pid(), &all).expect("unpin the echo server");
    let sup = Supervisor::spawn(dir.path(), "unpinned", None);
    if config.unpinned {
        eprintln!("unpinned round trips...");
        round_trip_cases(
            config,
            &mut echo,
            &sup,
            &PAYLOADS[..1],
            " unpinned",
            "(info)",
            &mut rows,
        );
    }
    echo.stop();

    // 3: pipelined throughput on one connection, not pinned.
    for &window in &config.windows {
        eprintln!("pipelined W={window}...");
        let (calls_per_s, costs) = pipelined_throughput(config, &sup, window);
        rows.push(Row {
            case: format!("pipelined debug.Ping W={window}"),
            outcome: Outcome::Throughput {
                calls_per_s,
                target: ">=100k",
            },
            costs,
        });
    }
    clean &= sup.shutdown();

    let frames: Vec<(usize, usize, usize)> = PAYLOADS
        .iter()
        .map(|&size| {
            let (request, reply) = frame_sizes(size);
            (size, request, reply)
        })
        .collect();
    print_report(&rows, cpus.len(), cpu, &frames);
    if !clean {
        println!("warning: a supervisor did not exit cleanly with status 0 (see above)");
    }
}
