//! Faults, restarts and abusive clients: the supervisor survives them,
//! loses nothing, and leaks nothing.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use sandvisor::api::debug::{ActorState, FaultKind, StacksReply};
use sandvisor::api::logging::LogLevel;
use sandvisor::{Client, ClientError, ErrorCode};

fn actor<'a>(stacks: &'a StacksReply, name: &str) -> &'a sandvisor::api::debug::ActorReport {
    stacks
        .actors
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no actor {name}"))
}

/// Waits until `name` is in `state`; returns the last report.
fn wait_state(
    client: &Client,
    name: &str,
    state: ActorState,
) -> sandvisor::api::debug::ActorReport {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stacks = client.stacks().unwrap();
        let report = actor(&stacks, name).clone();
        if report.state == state || Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_panicking_actor_is_restarted_and_serves_the_next_call() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let before = client.change_logging(Some(LogLevel::Trace), None).unwrap();
    client.inject_fault("Logging", FaultKind::Panic).unwrap();
    // Queued behind the fault: handled by the restarted actor.
    let after = client.change_logging(None, None).unwrap();
    assert_eq!(after, before, "the logging state survived the restart");
    let report = actor(&client.stacks().unwrap(), "Logging").clone();
    assert_eq!(
        (report.state, report.restarts, report.mailbox),
        (ActorState::Running, 1, 0)
    );
    assert!(sv.log_contains("handler panicked"), "the panic is logged");
}

#[test]
fn a_stopped_actor_is_restarted() {
    let sv = Supervisor::boot();
    let client = sv.client();
    client.inject_fault("Debug", FaultKind::Stop).unwrap();
    assert_eq!(client.ping(b"again").unwrap(), b"again");
    let report = actor(&client.stacks().unwrap(), "Debug").clone();
    assert_eq!((report.state, report.restarts), (ActorState::Running, 1));
}

#[test]
fn faults_reach_every_actor_and_the_process_survives() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let names: Vec<String> = client
        .stacks()
        .unwrap()
        .actors
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names.len(), 13);
    for name in &names {
        client.inject_fault(name, FaultKind::Panic).unwrap();
    }
    for name in &names {
        let report = wait_state(&client, name, ActorState::Running);
        assert_eq!(
            (report.state, report.restarts),
            (ActorState::Running, 1),
            "{name}"
        );
    }
    // The listener restarted on the same socket and still accepts.
    assert_eq!(
        sv.client().ping(b"new connection").unwrap(),
        b"new connection"
    );
}

#[test]
fn a_stalled_actor_does_not_stop_the_others() {
    let sv = Supervisor::boot();
    let client = sv.client();
    // The stall starts after this instant: no answer from Logging can come
    // before this plus the stall.
    let injected = Instant::now();
    let stall = Duration::from_millis(2_000);
    client
        .inject_fault(
            "Logging",
            FaultKind::Stall {
                ms: stall.as_millis() as u64,
            },
        )
        .unwrap();
    let queued = {
        let client = client.clone();
        std::thread::spawn(move || client.change_logging(None, None).map(|_| Instant::now()))
    };
    // The call waits in the mailbox (however late its thread ran).
    let deadline = Instant::now() + PATIENCE;
    while actor(&client.stacks().unwrap(), "Logging").mailbox == 0 {
        assert!(Instant::now() < deadline, "the call never reached Logging");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.ping(b"fast").unwrap(), b"fast");
    // Answered while Logging still stalls: the ping did not wait for it.
    let logging = actor(&client.stacks().unwrap(), "Logging").clone();
    let handling = logging
        .handling
        .expect("the stalled actor reports what it handles");
    assert_eq!(handling.message, "fault.stall");
    assert_eq!(logging.mailbox, 1, "the queued call waits in the mailbox");
    let answered = queued.join().unwrap().unwrap();
    assert!(
        answered.duration_since(injected) >= stall,
        "the queued call ran during the stall"
    );
    assert_eq!(actor(&client.stacks().unwrap(), "Logging").handling, None);
}

#[test]
fn a_restart_storm_backs_off_then_fails_the_actor_without_spinning() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let cpu_before = sv.cpu_ticks();
    let started = Instant::now();
    for _ in 0..30 {
        client.inject_fault("Usage", FaultKind::Panic).unwrap();
    }
    let report = wait_state(&client, "Usage", ActorState::Failed);
    let elapsed = started.elapsed();
    assert_eq!((report.state, report.restarts), (ActorState::Failed, 11));
    // Back-off: 0 + 10 + 20 + ... + 640 + 1000 + 1000 ms before failing.
    assert!(
        elapsed >= Duration::from_millis(3200),
        "restarted too fast: {elapsed:?}"
    );
    let cpu = sv.cpu_ticks() - cpu_before;
    assert!(cpu < 50, "the storm used {cpu} ticks of CPU in {elapsed:?}");
    let err = client
        .call("Usage.Collect", &serde_cbor::Value::Null, vec![])
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Internal));
    assert_eq!(
        err.to_string(),
        "internal: actor Usage has failed for good after 11 consecutive failures; restart the supervisor"
    );
    let refused = client.inject_fault("Usage", FaultKind::Panic).unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::FailedPrecondition));
    assert_eq!(client.ping(b"others serve").unwrap(), b"others serve");
}

#[test]
fn a_client_that_disconnects_mid_call_leaks_nothing() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let baseline = sv.baseline_fds(1);
    client
        .inject_fault("Debug", FaultKind::Stall { ms: 300 })
        .unwrap();
    for i in 0..20 {
        let stream = sv.raw();
        send(
            &stream,
            &request(1, "debug.Ping", &ping_args(&[i; 100]), 0),
            &[],
        );
        drop(stream);
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(sv.settle_fds(baseline), baseline);
    let stacks = client.stacks().unwrap();
    assert_eq!(stacks.connections, 1);
    assert_eq!(
        actor(&stacks, "Debug").mailbox,
        0,
        "cancelled calls left the mailbox"
    );
    assert!(
        sv.log_contains("cancelled: 1"),
        "the server saw the calls cancelled"
    );
}

#[test]
fn a_client_that_never_reads_is_no_longer_read() {
    let sv = Supervisor::boot();
    let bystander = sv.client();
    let baseline = sv.baseline_fds(1);
    let rss_before = sv.rss_kib();
    let mut stream = UnixStream::connect(&sv.socket).unwrap();
    stream.set_nonblocking(true).unwrap();
    let payload = vec![7u8; 60 * 1024];
    let mut written = 0usize;
    let mut id = 1;
    let mut pending = request(id, "debug.Ping", &ping_args(&payload), 0);
    let mut offset = 0;
    let deadline = Instant::now() + PATIENCE;
    let mut stuck_since: Option<Instant> = None;
    // Write until the server has stopped reading for half a second.
    while Instant::now() < deadline {
        match stream.write(&pending[offset..]) {
            Ok(n) => {
                stuck_since = None;
                written += n;
                offset += n;
                if offset == pending.len() {
                    id += 1;
                    pending = request(id, "debug.Ping", &ping_args(&payload), 0);
                    offset = 0;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        stuck_since.is_some(),
        "the server kept reading {written} bytes"
    );
    // 4 MiB budget plus what the kernel buffers hold.
    assert!(
        written < 24 * 1024 * 1024,
        "the server read {written} bytes"
    );
    let growth = sv.rss_kib().saturating_sub(rss_before);
    assert!(growth < 32 * 1024, "supervisor RSS grew by {growth} KiB");
    // Still served (a server stuck on the flood would never answer; how
    // fast it answers is the scheduler's business).
    assert_eq!(bystander.ping(b"unaffected").unwrap(), b"unaffected");
    drop(stream);
    assert_eq!(sv.settle_fds(baseline), baseline);
}

#[test]
fn a_thousand_simultaneous_connections_are_served_and_released() {
    // The test process needs room for a thousand sockets too.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let sv = Supervisor::boot();
    let baseline = sv.baseline_fds(0);
    let rss_before = sv.rss_kib();
    let clients: Vec<Client> = (0..1000).map(|_| sv.client()).collect();
    let handles: Vec<_> = clients
        .chunks(100)
        .enumerate()
        .map(|(t, chunk)| {
            let chunk: Vec<Client> = chunk.to_vec();
            std::thread::spawn(move || {
                for (i, c) in chunk.iter().enumerate() {
                    let payload = format!("{t}-{i}");
                    assert_eq!(c.ping(payload.as_bytes()).unwrap(), payload.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stacks = sv.client().stacks().unwrap();
    assert_eq!(stacks.connections, 1001);
    // The connection that asked for the stacks closes asynchronously.
    assert_eq!(sv.settle_fds(baseline + 1000), baseline + 1000);
    let rss_during = sv.rss_kib();
    drop(clients);
    assert_eq!(sv.settle_fds(baseline), baseline);
    assert_eq!(sv.baseline_fds(0), baseline);
    // Per-connection state is small: well under 32 KiB each.
    assert!(
        rss_during.saturating_sub(rss_before) < 32 * 1000,
        "RSS grew from {rss_before} to {rss_during} KiB"
    );
}

#[test]
fn many_threads_share_one_connection() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let payload = format!("thread {t} call {i}");
                    assert_eq!(client.ping(payload.as_bytes()).unwrap(), payload.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sv.client().stacks().unwrap().connections, 2);
}

#[test]
fn answers_come_in_the_order_they_are_ready() {
    let sv = Supervisor::boot();
    sv.client()
        .inject_fault("Logging", FaultKind::Stall { ms: 300 })
        .unwrap();
    let stream = sv.raw();
    send(&stream, &request(1, "Logging.Change", &[0xa0], 0), &[]);
    send(
        &stream,
        &request(2, "debug.Ping", &ping_args(b"second"), 0),
        &[],
    );
    let mut reader = Reader::default();
    let first = reader.next(&stream).unwrap();
    let second = reader.next(&stream).unwrap();
    assert_eq!((first.id, second.id), (2, 1));
    assert!(second.outcome.is_ok());
}

#[test]
fn a_timed_out_call_does_not_disturb_later_ones() {
    let sv = Supervisor::boot();
    let client = sv.client();
    client
        .inject_fault("Debug", FaultKind::Stall { ms: 300 })
        .unwrap();
    let args = serde_cbor::Value::Map(
        [(
            serde_cbor::Value::Text("payload".into()),
            serde_cbor::Value::Bytes(b"late".to_vec()),
        )]
        .into_iter()
        .collect(),
    );
    let err = client
        .call_timeout("debug.Ping", &args, vec![], Duration::from_millis(50))
        .unwrap_err();
    assert!(
        matches!(err, ClientError::DeadlineExceeded(d) if d == Duration::from_millis(50)),
        "{err}"
    );
    assert_eq!(err.code(), Some(ErrorCode::DeadlineExceeded));
    // The late reply to the abandoned call is discarded, not mistaken for this one.
    assert_eq!(client.ping(b"next").unwrap(), b"next");
}

#[test]
fn descriptors_travel_both_ways() {
    use std::io::Read;
    let sv = Supervisor::boot();
    let client = sv.client();
    let (read_end, write_end) = pipe();
    let reply = client
        .invoke(sandvisor::api::debug::Ping {
            payload: b"fd".to_vec(),
            fds: sandvisor::api::Fds(vec![write_end]),
        })
        .unwrap();
    assert_eq!(reply.payload, b"fd");
    assert_eq!(reply.fds.len(), 1);
    let echoed = std::fs::File::from(reply.fds.0.into_iter().next().unwrap());
    (&echoed).write_all(b"through the supervisor").unwrap();
    drop(echoed);
    let mut text = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "through the supervisor");
}

#[test]
fn pending_calls_fail_when_the_supervisor_dies() {
    let mut sv = Supervisor::boot();
    let client = sv.client();
    // Logging stalls, so that Debug tells when the call waits for it.
    client
        .inject_fault("Logging", FaultKind::Stall { ms: 120_000 })
        .unwrap();
    let waiting = {
        let client = client.clone();
        std::thread::spawn(move || client.change_logging(None, None))
    };
    // Pending for sure (however late its thread ran) before the kill.
    let deadline = Instant::now() + PATIENCE;
    while actor(&client.stacks().unwrap(), "Logging").mailbox == 0 {
        assert!(Instant::now() < deadline, "the call never reached Logging");
        std::thread::sleep(Duration::from_millis(5));
    }
    sv.stop_with(nix::sys::signal::Signal::SIGKILL);
    let err = waiting.join().unwrap().unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err}");
    assert!(matches!(client.ping(b"x"), Err(ClientError::Closed)));
}
