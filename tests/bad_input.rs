//! Every kind of bad input on the control socket: each gets a typed error or
//! a closed connection as DESIGN.md says, leaks no descriptor in the
//! supervisor, and leaves other clients unaffected.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use common::*;
use sandvisor::ErrorCode;
use serde_cbor::Value;

/// Boots a supervisor, opens a bystander client, and records the
/// descriptor count with the bystander connected.
fn setup(extra: &[&str]) -> (Supervisor, sandvisor::Client, usize) {
    let sv = Supervisor::boot_with(extra);
    let bystander = sv.client();
    assert_eq!(bystander.ping(b"before").unwrap(), b"before");
    let baseline = sv.baseline_fds(1);
    (sv, bystander, baseline)
}

/// Checks that no descriptor leaked and the bystander is still served.
fn check_clean(sv: &Supervisor, bystander: &sandvisor::Client, baseline: usize) {
    assert_eq!(
        sv.settle_fds(baseline),
        baseline,
        "descriptor leak in the supervisor"
    );
    assert_eq!(bystander.ping(b"after").unwrap(), b"after");
}

fn protocol_error(bytes: &[u8], fds: &[BorrowedFd<'_>], extra: &[&str]) -> String {
    let (sv, bystander, baseline) = setup(extra);
    let stream = sv.raw();
    send(&stream, bytes, fds);
    let error = expect_error_then_close(&stream);
    assert_eq!(error.code, ErrorCode::Protocol, "{error}");
    drop(stream);
    check_clean(&sv, &bystander, baseline);
    error.message
}

#[test]
fn garbage_bytes_close_the_connection_with_a_protocol_error() {
    let message = protocol_error(b"GET / HTTP/1.1\r\n\r\n", &[], &[]);
    assert_eq!(
        message,
        "bad frame magic [47, 45] at stream offset 0, expected [53, 56]"
    );
}

#[test]
fn wrong_magic_is_a_protocol_error() {
    let mut bytes = frame(0, &[0xa0]);
    bytes[0] = 0x00;
    let message = protocol_error(&bytes, &[], &[]);
    assert!(message.starts_with("bad frame magic [00, 56]"), "{message}");
}

#[test]
fn wrong_version_is_a_protocol_error() {
    let mut bytes = request(1, "debug.Ping", &ping_args(b""), 0);
    bytes[2] = 2;
    let message = protocol_error(&bytes, &[], &[]);
    assert_eq!(
        message,
        "unsupported protocol version 2 at stream offset 0, expected 1"
    );
}

#[test]
fn length_over_the_configured_limit_is_a_protocol_error() {
    let header = sandvisor::actors::wire::frame::encode_header(0, 1025);
    let message = protocol_error(&header, &[], &["--max-frame-len", "1024"]);
    assert_eq!(
        message,
        "frame body length 1025 is over the limit of 1024 bytes"
    );
}

#[test]
fn length_over_16_mib_is_a_protocol_error() {
    let header = sandvisor::actors::wire::frame::encode_header(0, 16 * 1024 * 1024 + 1);
    let message = protocol_error(&header, &[], &[]);
    assert_eq!(
        message,
        "frame body length 16777217 is over the limit of 16777216 bytes"
    );
}

#[test]
fn fd_count_over_64_is_a_protocol_error() {
    let bytes = request(1, "debug.Ping", &ping_args(b""), 65);
    let message = protocol_error(&bytes, &[], &[]);
    assert_eq!(
        message,
        "frame announces 65 file descriptors, over the limit of 64"
    );
}

#[test]
fn a_frame_announcing_fds_that_never_arrive_is_a_protocol_error() {
    let bytes = request(1, "debug.Ping", &ping_args(b""), 2);
    let message = protocol_error(&bytes, &[], &[]);
    assert_eq!(
        message,
        "frame at stream offset 0 announces 2 file descriptors but only 0 arrived with it"
    );
}

#[test]
fn fds_with_no_frame_are_closed_with_the_connection() {
    let (read_end, write_end) = pipe();
    let bytes = request(1, "debug.Ping", &ping_args(b""), 0);
    let message = protocol_error(&bytes, &[write_end.as_fd(), write_end.as_fd()], &[]);
    assert_eq!(
        message,
        format!(
            "2 file descriptors arrived with bytes 0..{} of the stream but no frame header there claims them",
            bytes.len()
        )
    );
    drop(write_end);
    assert!(
        writers_all_closed(&read_end, PATIENCE),
        "the supervisor kept a copy"
    );
}

#[test]
fn more_fds_than_the_control_buffer_holds_is_a_protocol_error() {
    let (read_end, write_end) = pipe();
    let many: Vec<BorrowedFd<'_>> = (0..100).map(|_| write_end.as_fd()).collect();
    let bytes = request(1, "debug.Ping", &ping_args(b""), 64);
    let message = protocol_error(&bytes, &many, &[]);
    assert!(
        message.starts_with("control message truncated (MSG_CTRUNC)"),
        "{message}"
    );
    drop(many);
    drop(write_end);
    assert!(
        writers_all_closed(&read_end, PATIENCE),
        "the supervisor kept a copy"
    );
}

/// Sends one body error, expects `invalid_argument` with `id`, and checks
/// that the same connection still serves a ping.
fn body_error(body: &[u8], id: u64) -> String {
    let (sv, bystander, baseline) = setup(&[]);
    let stream = sv.raw();
    send(&stream, &frame(0, body), &[]);
    let mut reader = Reader::default();
    let response = reader.next(&stream).expect("a reply");
    assert_eq!(response.id, id);
    let error = response.outcome.expect_err("an error");
    assert_eq!(error.code, ErrorCode::InvalidArgument, "{error}");
    send(
        &stream,
        &request(9, "debug.Ping", &ping_args(b"still open"), 0),
        &[],
    );
    let pong = reader.next(&stream).expect("the connection stays open");
    assert_eq!(pong.id, 9);
    assert_eq!(pong.outcome.unwrap(), ping_args(b"still open"));
    drop(stream);
    check_clean(&sv, &bystander, baseline);
    error.message
}

#[test]
fn a_body_that_is_not_cbor_is_invalid_argument_with_id_0() {
    let message = body_error(&[0xff, 0xff], 0);
    assert_eq!(
        message,
        "body is not valid cbor: unexpected cbor break at byte 0"
    );
}

#[test]
fn trailing_bytes_after_the_request_are_invalid_argument() {
    let mut body = request(3, "debug.Ping", &ping_args(b""), 0)[HEADER..].to_vec();
    body.push(0);
    let message = body_error(&body, 0);
    assert_eq!(message, "1 trailing bytes after the cbor item");
}

#[test]
fn cbor_that_is_not_a_map_is_invalid_argument() {
    let message = body_error(&cbor(&vec![1, 2]), 0);
    assert_eq!(message, "body is a cbor item of major type 4, not a map");
}

#[test]
fn a_request_without_a_method_is_invalid_argument_with_its_id() {
    let mut map = std::collections::BTreeMap::new();
    map.insert("id", Value::Integer(7));
    let message = body_error(&cbor(&map), 7);
    assert_eq!(message, "body has no \"method\" key");
}

#[test]
fn request_id_0_is_reserved() {
    let body = request(0, "debug.Ping", &ping_args(b""), 0)[HEADER..].to_vec();
    assert_eq!(body_error(&body, 0), "request id 0 is reserved");
}

#[test]
fn deeply_nested_cbor_is_invalid_argument() {
    let mut args = vec![0x81u8; 200];
    args.push(0);
    let body = request(4, "debug.Ping", &args, 0)[HEADER..].to_vec();
    let message = body_error(&body, 0);
    assert!(
        message.starts_with("body is not valid cbor: cbor nesting deeper than 128"),
        "{message}"
    );
}

#[test]
fn an_unknown_method_is_not_found() {
    let sv = Supervisor::boot();
    let client = sv.client();
    let err = client
        .call("containerManager.Teleport", &Value::Null, vec![])
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    assert_eq!(
        err.to_string(),
        "not_found: unknown method \"containerManager.Teleport\""
    );
}

#[test]
fn args_of_the_wrong_shape_are_invalid_argument_naming_the_method() {
    let mut args = std::collections::BTreeMap::new();
    args.insert("payload", Value::Text("not bytes".into()));
    let body = request(5, "debug.Ping", &cbor(&args), 0)[HEADER..].to_vec();
    let message = body_error(&body, 5);
    assert!(
        message.starts_with("bad args for debug.Ping: invalid type: string"),
        "{message}"
    );
}

#[test]
fn fds_sent_to_a_method_that_takes_none_are_refused_and_closed() {
    let (sv, bystander, baseline) = setup(&[]);
    let (read_end, write_end) = pipe();
    let stream = sv.raw();
    send(
        &stream,
        &request(6, "debug.Stacks", &[0xa0], 2),
        &[write_end.as_fd(), write_end.as_fd()],
    );
    let response = Reader::default().next(&stream).expect("a reply");
    assert_eq!(response.id, 6);
    let error = response.outcome.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(
        error.message,
        "bad file descriptors for debug.Stacks: takes no file descriptors, got 2"
    );
    drop(write_end);
    assert!(writers_all_closed(&read_end, PATIENCE));
    drop(stream);
    check_clean(&sv, &bystander, baseline);
}

#[test]
fn a_duplicate_id_in_flight_is_refused() {
    let (sv, bystander, baseline) = setup(&["--enable-fault-injection"]);
    bystander
        .inject_fault("Debug", sandvisor::api::debug::FaultKind::Stall { ms: 300 })
        .unwrap();
    let stream = sv.raw();
    send(
        &stream,
        &request(8, "debug.Ping", &ping_args(b"first"), 0),
        &[],
    );
    send(
        &stream,
        &request(8, "debug.Ping", &ping_args(b"second"), 0),
        &[],
    );
    let mut reader = Reader::default();
    let refused = reader.next(&stream).unwrap();
    assert_eq!(refused.id, 8);
    assert_eq!(
        refused.outcome.unwrap_err().message,
        "request id 8 is already in flight on this connection"
    );
    let first = reader.next(&stream).unwrap();
    assert_eq!((first.id, first.outcome.unwrap()), (8, ping_args(b"first")));
    drop(stream);
    check_clean(&sv, &bystander, baseline);
}

#[test]
fn a_peer_with_another_uid_is_denied() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let sv = Supervisor::boot();
    // Let uid 65534 reach the socket, as a misconfigured directory would.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        socket_dir(&sv.socket),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    std::fs::set_permissions(&sv.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let baseline = sv.baseline_fds(0);
    let mut command = std::process::Command::new(SANDVISOR);
    command
        .args(["call", "--socket"])
        .arg(&sv.socket)
        .arg("debug.Stacks");
    use std::os::unix::process::CommandExt;
    // SAFETY: setgid and setuid are async-signal-safe system calls, made in
    // the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr.starts_with("sandvisor: connection broken: permission_denied: peer uid 65534 (pid "),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("may not use this socket: only root and uid 0 may"),
        "{stderr}"
    );
    assert_eq!(sv.settle_fds(baseline), baseline);
    assert_eq!(sv.client().ping(b"root").unwrap(), b"root");
}

#[test]
fn a_frame_left_incomplete_closes_its_connection_after_the_timeout() {
    let (sv, bystander, baseline) = setup(&["--partial-frame-timeout-ms", "300"]);
    // Under a header, and nothing more: before, this held a connection
    // slot (and its descriptor) for as long as the peer liked.
    let stalled = sv.raw();
    send(&stalled, &frame(0, &[0xa0])[..3], &[]);
    // Half a frame, the header included.
    let half = sv.raw();
    send(&half, &frame(0, &[0u8; 4096])[..2048], &[]);
    for stream in [&stalled, &half] {
        // The read blocks until the server gives up: no sleep here (the
        // timeout only turns a server that never gives up into a failure).
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let error = expect_error_then_close(stream);
        assert_eq!(error.code, ErrorCode::DeadlineExceeded, "{error}");
        assert!(error.message.contains("still incomplete"), "{error}");
        assert!(error.message.contains("the limit is 300 ms"), "{error}");
    }
    drop((stalled, half));
    check_clean(&sv, &bystander, baseline);
}

#[test]
fn half_sent_large_frames_are_bounded_across_connections() {
    let (sv, bystander, baseline) = setup(&[]);
    let rss_before = sv.rss_kib();
    const BODY: usize = 15 * 1024 * 1024;
    let header = sandvisor::actors::wire::frame::encode_header(0, BODY as u32);
    let half = vec![0u8; BODY / 2];
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..10 {
        let stream = sv.raw();
        send(&stream, &header, &[]);
        // A refused connection is closed while its bytes still arrive.
        if std::io::Write::write_all(&mut &stream, &half).is_err() {
            refused.push(stream);
            continue;
        }
        open.push(stream);
    }
    // 64 MiB hold eight halves of 7.5 MiB: the ninth and tenth are refused
    // (while their bytes still arrived, so their writes failed).
    assert_eq!((open.len(), refused.len()), (8, 2));
    // The error frame is sent before the close, but a peer still sending
    // when a Unix socket closes with unread bytes may only see a reset:
    // the supervisor's log says why each was closed.
    for stream in &refused {
        let mut reader = Reader::default();
        let mut buf = [0u8; 1];
        if nix::sys::socket::recv(
            stream.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::MSG_PEEK,
        )
        .is_ok()
        {
            if let Some(response) = reader.next(stream) {
                let error = response.outcome.expect_err("an error frame");
                assert_eq!(error.code, ErrorCode::ResourceExhausted, "{error}");
            }
        }
    }
    // The log is written asynchronously: wait for its lines.
    let closed = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("closing connection")
                    && l.contains("over the supervisor's limit of 67108864")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut log = sv.log_text();
    while closed(&log) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        log = sv.log_text();
    }
    assert_eq!(closed(&log), 2, "{log}");
    for stream in &open {
        let mut ready = [nix::poll::PollFd::new(
            stream.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut ready, nix::poll::PollTimeout::ZERO).unwrap();
        assert_eq!(n, 0, "a connection within the budget got an answer");
    }
    let grown_mib = (sv.rss_kib().saturating_sub(rss_before)) / 1024;
    eprintln!("the supervisor grew by {grown_mib} MiB");
    assert!(
        grown_mib <= 64 + 16,
        "the supervisor grew by {grown_mib} MiB for 10 half-sent 15 MiB frames"
    );
    drop(open);
    drop(refused);
    check_clean(&sv, &bystander, baseline);
}
