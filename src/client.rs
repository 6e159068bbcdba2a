//! The blocking client: std threads only, usable from any thread, many calls
//! in flight on one connection.
//!
//! There is no reader thread. A thread waiting for its reply reads the
//! socket itself if no other thread is reading, and hands over any replies
//! that belong to other callers (leader/follower). A lone caller therefore
//! gets its reply without a thread switch.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sandvisor_actors::api::debug::{FaultKind, InjectFault, Ping, Stacks, StacksReply};
use sandvisor_actors::api::logging::{Change, LogFormat, LogLevel, LoggingState};
use sandvisor_actors::api::{CarriesFds, Fds, Method};
use sandvisor_actors::sys::socket::{recv_with_fds, send_with_fds, ControlBuffer};
use sandvisor_actors::wire::envelope::{frame_buffer, parse_response, seal_frame, write_request};
use sandvisor_actors::wire::frame::{HEADER_LEN, MAX_BODY_LEN, MAX_FDS};
use sandvisor_actors::wire::{ErrorCode, Frame, FrameDecoder, FrameLimits, RpcError};
use serde::de::DeserializeOwned;
use thiserror::Error;

/// What a call can fail with.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket could not be connected.
    #[error("connect to {path:?}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The server answered with an error.
    #[error("{0}")]
    Rpc(RpcError),
    /// The request could not be sent.
    #[error("send request: {0}")]
    Send(io::Error),
    /// The socket could not be read.
    #[error("receive reply: {0}")]
    Receive(io::Error),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The connection broke (the server reported a protocol error, or sent
    /// bytes this client cannot decode); every pending call fails.
    #[error("connection broken: {0}")]
    Broken(String),
    /// The request is too large or carries too many descriptors.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The arguments could not be encoded.
    #[error("encode arguments for {method}: {detail}")]
    Encode {
        /// The method.
        method: String,
        /// What serde said.
        detail: String,
    },
    /// The reply did not have the expected shape.
    #[error("decode reply to {method}: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// No reply came in time.
    #[error("no reply within {0:?}")]
    DeadlineExceeded(Duration),
}

impl ClientError {
    /// The wire code: the server's for [`ClientError::Rpc`],
    /// `deadline_exceeded` for a timeout, `protocol` for a broken
    /// connection, `None` for local I/O failures.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            ClientError::DeadlineExceeded(_) => Some(ErrorCode::DeadlineExceeded),
            ClientError::Broken(_) => Some(ErrorCode::Protocol),
            _ => None,
        }
    }
}

/// A successful reply: the CBOR of its `ok` value and its descriptors.
#[derive(Debug)]
pub struct Reply {
    /// The raw `ok` item.
    pub value: Vec<u8>,
    /// Descriptors bound to the reply frame.
    pub fds: Vec<OwnedFd>,
}

impl Reply {
    /// Decodes the `ok` value.
    pub fn decode<T: DeserializeOwned>(&self, method: &str) -> Result<T, ClientError> {
        serde_cbor::from_slice(&self.value).map_err(|e| ClientError::Decode {
            method: method.to_owned(),
            detail: e.to_string(),
        })
    }
}

/// The state of the connection's read side.
struct ReadSide {
    decoder: FrameDecoder<OwnedFd>,
    control: ControlBuffer,
    buf: Vec<u8>,
}

struct State {
    /// Calls awaiting a reply; `Some` once it arrived.
    pending: HashMap<u64, Option<Result<Reply, RpcError>>>,
    /// Taken by the thread currently reading.
    read_side: Option<ReadSide>,
    /// Set once the connection is unusable.
    broken: Option<Breakage>,
    /// Threads waiting on the condition variable: notifying costs a futex
    /// call, which a lone caller should not pay.
    waiters: usize,
}

/// Why a connection can no longer be used.
#[derive(Debug, Clone)]
enum Breakage {
    /// The server closed it.
    Closed,
    /// It broke, for this reason.
    Broken(String),
}

impl Breakage {
    fn to_error(&self) -> ClientError {
        match self {
            Breakage::Closed => ClientError::Closed,
            Breakage::Broken(reason) => ClientError::Broken(reason.clone()),
        }
    }
}

struct Shared {
    socket: UnixStream,
    write_lock: Mutex<()>,
    state: Mutex<State>,
    replies: Condvar,
    next_id: AtomicU64,
}

/// A connection to a supervisor's control socket. Cloning shares it.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// A call that has been sent; wait for its reply with [`PendingCall::wait`].
/// Dropping it abandons the reply.
pub struct PendingCall {
    shared: Arc<Shared>,
    id: u64,
    method: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking caller cannot leave the state half-updated: every update
    // is a single insert or remove. Keep serving the other callers.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let socket = sandvisor_actors::sys::socket::connect(path).map_err(|source| {
            ClientError::Connect {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(Client::from_stream(socket))
    }

    /// Uses an already connected stream.
    pub fn from_stream(socket: UnixStream) -> Client {
        let read_side = ReadSide {
            decoder: FrameDecoder::new(FrameLimits::default()),
            control: ControlBuffer::default(),
            buf: vec![0; 64 * 1024],
        };
        Client {
            shared: Arc::new(Shared {
                socket,
                write_lock: Mutex::new(()),
                state: Mutex::new(State {
                    pending: HashMap::new(),
                    read_side: Some(read_side),
                    broken: None,
                    waiters: 0,
                }),
                replies: Condvar::new(),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Sends a call with pre-encoded CBOR `args` and returns at once.
    pub fn start_raw(
        &self,
        method: &str,
        args: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<PendingCall, ClientError> {
        if fds.len() > usize::from(MAX_FDS) {
            return Err(ClientError::TooLarge(format!(
                "{} file descriptors, at most {MAX_FDS}",
                fds.len()
            )));
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = frame_buffer(32 + method.len() + args.len());
        write_request(&mut frame, id, method, args);
        let len = frame.len() - HEADER_LEN;
        if len > MAX_BODY_LEN as usize {
            return Err(ClientError::TooLarge(format!(
                "body of {len} bytes, at most {MAX_BODY_LEN}"
            )));
        }
        seal_frame(&mut frame, fds.len() as u8);
        {
            let mut state = lock(&self.shared.state);
            if let Some(breakage) = &state.broken {
                return Err(breakage.to_error());
            }
            state.pending.insert(id, None);
        }
        let call = PendingCall {
            shared: self.shared.clone(),
            id,
            method: method.to_owned(),
        };
        if let Err(e) = self.shared.send_frame(&frame, fds) {
            // A server that refused the connection (or broke it) explains
            // why in an error frame before closing: report that reason
            // rather than the broken pipe.
            return Err(self.shared.closing_reason().unwrap_or(e));
        }
        Ok(call)
    }

    /// Sends a call with JSON-like CBOR `args` and waits for the reply.
    pub fn call(
        &self,
        method: &str,
        args: &serde_cbor::Value,
        fds: Vec<OwnedFd>,
    ) -> Result<(serde_cbor::Value, Vec<OwnedFd>), ClientError> {
        let reply = self.call_bytes(method, args, fds, None)?;
        let value = reply.decode(method)?;
        Ok((value, reply.fds))
    }

    /// [`Client::call`] with a deadline.
    pub fn call_timeout(
        &self,
        method: &str,
        args: &serde_cbor::Value,
        fds: Vec<OwnedFd>,
        timeout: Duration,
    ) -> Result<(serde_cbor::Value, Vec<OwnedFd>), ClientError> {
        let reply = self.call_bytes(method, args, fds, Some(timeout))?;
        let value = reply.decode(method)?;
        Ok((value, reply.fds))
    }

    fn call_bytes(
        &self,
        method: &str,
        args: &serde_cbor::Value,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<Reply, ClientError> {
        let args = serde_cbor::to_vec(args).map_err(|e| ClientError::Encode {
            method: method.to_owned(),
            detail: e.to_string(),
        })?;
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let call = self.start_raw(method, &args, &borrowed)?;
        drop(borrowed);
        // The kernel duplicated the descriptors into the message.
        drop(fds);
        match timeout {
            Some(t) => call.wait_timeout(t),
            None => call.wait(),
        }
    }

    /// Calls a typed method and decodes its typed reply.
    pub fn invoke<M: Method>(&self, mut msg: M) -> Result<M::Reply, ClientError> {
        let args = serde_cbor::to_vec(&msg).map_err(|e| ClientError::Encode {
            method: M::NAME.to_owned(),
            detail: e.to_string(),
        })?;
        let fds = msg.take_fds();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let call = self.start_raw(M::NAME, &args, &borrowed)?;
        drop(borrowed);
        drop(fds);
        let reply = call.wait()?;
        let mut value: M::Reply = reply.decode(M::NAME)?;
        value
            .attach_fds(reply.fds)
            .map_err(|detail| ClientError::Decode {
                method: M::NAME.to_owned(),
                detail,
            })?;
        Ok(value)
    }

    /// `debug.Ping`: returns the echoed payload.
    pub fn ping(&self, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
        let reply = self.invoke(Ping {
            payload: payload.to_vec(),
            fds: Fds::none(),
        })?;
        Ok(reply.payload)
    }

    /// `debug.Stacks`.
    pub fn stacks(&self) -> Result<StacksReply, ClientError> {
        self.invoke(Stacks {})
    }

    /// `debug.InjectFault`.
    pub fn inject_fault(&self, actor: &str, kind: FaultKind) -> Result<(), ClientError> {
        self.invoke(InjectFault {
            actor: actor.to_owned(),
            kind,
        })
        .map(drop)
    }

    /// `Logging.Change`.
    pub fn change_logging(
        &self,
        level: Option<LogLevel>,
        format: Option<LogFormat>,
    ) -> Result<LoggingState, ClientError> {
        self.invoke(Change { level, format })
    }
}

impl Shared {
    /// Writes one frame. The descriptors go with the first `sendmsg`, whose
    /// data starts with the frame's first byte.
    fn send_frame(&self, frame: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), ClientError> {
        let _writer = lock(&self.write_lock);
        let mut sent = 0;
        let mut fds = fds;
        while sent < frame.len() {
            let n = send_with_fds(
                self.socket.as_fd(),
                &[IoSlice::new(&frame[sent..])],
                fds,
                false,
            )
            .map_err(|e| {
                self.break_connection(Breakage::Broken(format!("send failed: {e}")));
                ClientError::Send(e)
            })?;
            sent += n;
            fds = &[];
        }
        Ok(())
    }

    /// After a failed send: reads what the server sent before closing, and
    /// returns its explanation if it gave one.
    fn closing_reason(&self) -> Option<ClientError> {
        let mut side = lock(&self.state).read_side.take()?;
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut reason = None;
        while reason.is_none() && Instant::now() < deadline {
            match self.read_once(&mut side, Some(deadline)) {
                Ok(frames) => {
                    let mut state = lock(&self.state);
                    reason = Shared::file_replies(&mut state, frames);
                }
                Err(_) => break,
            }
        }
        lock(&self.state).read_side = Some(side);
        match reason? {
            Breakage::Broken(reason) => Some(ClientError::Broken(reason)),
            Breakage::Closed => None,
        }
    }

    fn break_connection(&self, breakage: Breakage) {
        let mut state = lock(&self.state);
        state.broken.get_or_insert(breakage);
        if state.waiters > 0 {
            self.replies.notify_all();
        }
    }

    /// Reads once (blocking, up to `deadline`) and files the replies found.
    fn read_once(
        &self,
        side: &mut ReadSide,
        deadline: Option<Instant>,
    ) -> Result<Vec<Frame<OwnedFd>>, Breakage> {
        let broken =
            |what: &str, e: &dyn std::fmt::Display| Breakage::Broken(format!("{what}: {e}"));
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !wait_readable(self.socket.as_fd(), left).map_err(|e| broken("poll", &e))? {
                return Ok(Vec::new());
            }
        }
        let received = recv_with_fds(self.socket.as_fd(), &mut side.buf, &mut side.control, false)
            .map_err(|e| broken("receive", &e))?;
        if received.truncated {
            return Err(Breakage::Broken(
                "reply carried more file descriptors than the control buffer holds".into(),
            ));
        }
        if received.len == 0 && received.fds.is_empty() {
            return Err(Breakage::Closed);
        }
        side.decoder
            .push(&side.buf[..received.len], received.fds)
            .map_err(|e| broken("bad reply frame", &e))?;
        let mut frames = Vec::new();
        while let Some(frame) = side
            .decoder
            .next_frame()
            .map_err(|e| broken("bad reply frame", &e))?
        {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Files `frames` into the pending table. Returns the reason the
    /// connection broke, if one of them says so.
    fn file_replies(state: &mut State, frames: Vec<Frame<OwnedFd>>) -> Option<Breakage> {
        for frame in frames {
            let response = match parse_response(&frame.body) {
                Ok(r) => r,
                Err(e) => return Some(Breakage::Broken(format!("undecodable reply: {e}"))),
            };
            let outcome = match response.outcome {
                Ok(value) => Ok(Reply {
                    value: value.to_vec(),
                    fds: frame.fds,
                }),
                Err(e) => Err(e),
            };
            if response.id == 0 {
                // An error about no request in particular: the server is
                // about to close the connection.
                let reason = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "reply with id 0".to_owned(),
                };
                return Some(Breakage::Broken(reason));
            }
            if let Some(slot) = state.pending.get_mut(&response.id) {
                *slot = Some(outcome);
            }
        }
        None
    }
}

fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl PendingCall {
    /// The request id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the reply.
    pub fn wait(self) -> Result<Reply, ClientError> {
        self.wait_until(None)
    }

    /// Waits for the reply at most `timeout`.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + timeout;
        self.wait_until(Some(deadline)).map_err(|e| match e {
            ClientError::DeadlineExceeded(_) => ClientError::DeadlineExceeded(timeout),
            other => other,
        })
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<Reply, ClientError> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        loop {
            if let Some(Some(_)) = state.pending.get(&self.id) {
                let outcome = state.pending.remove(&self.id).flatten();
                return match outcome {
                    Some(Ok(reply)) => Ok(reply),
                    Some(Err(e)) => Err(ClientError::Rpc(e)),
                    None => Err(ClientError::Closed),
                };
            }
            if let Some(breakage) = &state.broken {
                return Err(breakage.to_error());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ClientError::DeadlineExceeded(Duration::ZERO));
            }
            if let Some(mut side) = state.read_side.take() {
                drop(state);
                let outcome = shared.read_once(&mut side, deadline);
                state = lock(&shared.state);
                state.read_side = Some(side);
                let broken = match outcome {
                    Ok(frames) => Shared::file_replies(&mut state, frames),
                    Err(breakage) => Some(breakage),
                };
                if let Some(breakage) = broken {
                    state.broken.get_or_insert(breakage);
                }
                if state.waiters > 0 {
                    shared.replies.notify_all();
                }
            } else {
                state.waiters += 1;
                state = match deadline {
                    None => shared
                        .replies
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        shared
                            .replies
                            .wait_timeout(state, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
                state.waiters -= 1;
            }
        }
    }

    /// The method called.
    pub fn method(&self) -> &str {
        &self.method
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        lock(&self.shared.state).pending.remove(&self.id);
    }
}
