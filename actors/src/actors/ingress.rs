//! Ingress: one actor per connection. Frames and descriptors come in, typed
//! messages go to the owning actors, response frames go out in whatever
//! order the answers arrive.
//!
//! Flow control: the connection is read only while it has fewer than
//! `max_in_flight` calls outstanding and fewer than
//! `connection_buffer_budget` bytes of requests in flight plus replies not
//! yet written. A client that never reads its replies therefore stops
//! being read, instead of growing the server's memory.

use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, StreamHandler,
    WrapFuture,
};
use slog::{debug, error, warn, Drain as _, Logger};
use thiserror::Error;
use tokio::io::unix::AsyncFd;

use super::connections::ConnectionSlot;
use crate::api::Request;
use crate::config::ServerLimits;
use crate::router::{OutFrame, Router};
use crate::sys::socket::{
    peer_hung_up, recv_with_fds, register_async, send_with_fds, ControlBuffer,
};
use crate::wire::envelope::{error_frame, parse_request};
use crate::wire::{Frame, FrameDecoder, FrameError, RpcError};

/// What ends a connection, or refuses one request on it.
#[derive(Debug, Error)]
pub enum IngressError {
    /// The byte stream broke the framing rules.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// More descriptors arrived than the control buffer holds.
    #[error("control message truncated (MSG_CTRUNC): more than 64 file descriptors in one message; {received} were received and closed")]
    ControlTruncated {
        /// How many were received before the truncation.
        received: usize,
    },
    /// Reading the socket failed.
    #[error("read from connection: {0}")]
    Read(io::Error),
    /// A request reused the id of a call still in flight.
    #[error("request id {0} is already in flight on this connection")]
    DuplicateId(u64),
    /// Handling a frame panicked (a bug); the connection is closed.
    #[error("internal error while decoding a request; the connection is closed")]
    DecodePanicked,
    /// A frame was begun and not finished in time.
    #[error("a frame begun {waited_ms} ms ago is still incomplete ({buffered} bytes received); the limit is {limit_ms} ms")]
    IncompleteFrame {
        /// Bytes of it received.
        buffered: usize,
        /// How long it has been waited for.
        waited_ms: u128,
        /// The limit.
        limit_ms: u128,
    },
    /// The incomplete frames of all connections hold too many bytes.
    #[error("incomplete frames of all connections would hold {total} bytes (this one {buffered}), over the supervisor's limit of {limit}")]
    PartialFramesBudget {
        /// This connection's incomplete frame, in bytes.
        buffered: usize,
        /// All connections' together.
        total: usize,
        /// The limit.
        limit: usize,
    },
}

/// Bytes of incomplete frames held by all of a supervisor's connections:
/// each may hold up to a frame's limit, so without a common bound a few
/// half-sent frames hold hundreds of megabytes.
#[derive(Debug)]
pub struct PartialFrames {
    held: AtomicUsize,
    limit: usize,
}

impl PartialFrames {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        PartialFrames {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Tells a connection to stop reading requests, answer the calls in flight
/// and close (graceful shutdown).
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

/// Read flow control, shared by the actor and its frame stream.
#[derive(Default)]
struct FlowControl {
    paused: Cell<bool>,
    stopped: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl FlowControl {
    fn set_paused(&self, paused: bool) {
        if self.paused.replace(paused) && !paused {
            self.wake();
        }
    }

    fn stop_reading(&self) {
        self.stopped.set(true);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn park(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

/// What the frame stream yields.
enum Incoming {
    Frame(Frame<OwnedFd>),
    Broken(IngressError),
    Closed { hangup: bool },
}

/// How many reads one connection may do before letting others run.
const READ_BUDGET: u32 = 32;
/// Bytes read per `recvmsg`.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// One read buffer per thread: every connection on it copies out of it
    /// at once, so idle connections hold no read buffer.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Reads the connection and yields frames with their descriptors.
struct FrameStream {
    conn: Rc<AsyncFd<OwnedFd>>,
    decoder: FrameDecoder<OwnedFd>,
    control: ControlBuffer,
    flow: Rc<FlowControl>,
    done: bool,
    reads_in_a_row: u32,
    /// The supervisor-wide budget, and this connection's share of it.
    partial_frames: Arc<PartialFrames>,
    held: usize,
    /// When the incomplete frame began, and the timer that ends its wait.
    partial_since: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    partial_frame_timeout: Duration,
}

impl FrameStream {
    fn finish(&mut self, item: Incoming) -> Poll<Option<Incoming>> {
        self.done = true;
        self.account(0);
        Poll::Ready(Some(item))
    }

    /// Sets this connection's share of the budget to `now` bytes; returns
    /// the total held by all connections.
    fn account(&mut self, now: usize) -> usize {
        let total = if now >= self.held {
            self.partial_frames
                .held
                .fetch_add(now - self.held, Ordering::Relaxed)
                + (now - self.held)
        } else {
            self.partial_frames
                .held
                .fetch_sub(self.held - now, Ordering::Relaxed)
                - (self.held - now)
        };
        self.held = now;
        total
    }

    /// Checks the incomplete frame left once every whole frame is out:
    /// within the common budget, and not older than the timeout.
    fn check_partial(&mut self) -> Result<(), IngressError> {
        let buffered = self.decoder.buffered();
        let total = self.account(buffered);
        if buffered == 0 {
            self.partial_since = None;
            return Ok(());
        }
        if total > self.partial_frames.limit {
            return Err(IngressError::PartialFramesBudget {
                buffered,
                total,
                limit: self.partial_frames.limit,
            });
        }
        if self.partial_since.is_none() {
            let deadline = tokio::time::Instant::now() + self.partial_frame_timeout;
            self.partial_since =
                Some((Instant::now(), Box::pin(tokio::time::sleep_until(deadline))));
        }
        Ok(())
    }

    /// Polls the incomplete frame's timer: an error once it has run out.
    fn poll_partial_deadline(&mut self, cx: &mut TaskContext<'_>) -> Result<(), IngressError> {
        let Some((since, timer)) = self.partial_since.as_mut() else {
            return Ok(());
        };
        match timer.as_mut().poll(cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(()) => Err(IngressError::IncompleteFrame {
                buffered: self.decoder.buffered(),
                waited_ms: since.elapsed().as_millis(),
                limit_ms: self.partial_frame_timeout.as_millis(),
            }),
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        self.account(0);
    }
}

impl actix::prelude::Stream for FrameStream {
    type Item = Incoming;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Incoming>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.decoder.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Incoming::Frame(frame))),
                Ok(None) => {}
                Err(e) => return this.finish(Incoming::Broken(e.into())),
            }
            if let Err(e) = this.check_partial() {
                return this.finish(Incoming::Broken(e));
            }
            if this.flow.stopped.get() {
                this.done = true;
                return Poll::Ready(None);
            }
            if this.flow.paused.get() {
                // Not reading is the server's choice: the frame's time
                // starts again when reading resumes.
                this.partial_since = None;
                this.flow.park(cx.waker());
                return Poll::Pending;
            }
            if this.reads_in_a_row >= READ_BUDGET {
                this.reads_in_a_row = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut ready = match this.conn.poll_read_ready(cx) {
                Poll::Pending => {
                    if let Err(e) = this.poll_partial_deadline(cx) {
                        return this.finish(Incoming::Broken(e));
                    }
                    this.reads_in_a_row = 0;
                    this.flow.park(cx.waker());
                    return Poll::Pending;
                }
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(e)) => return this.finish(Incoming::Broken(IngressError::Read(e))),
            };
            this.reads_in_a_row += 1;
            let control = &mut this.control;
            let decoder = &mut this.decoder;
            let outcome = SCRATCH.with(|scratch| {
                let mut buf = scratch.borrow_mut();
                let received =
                    ready.try_io(|fd| recv_with_fds(fd.get_ref().as_fd(), &mut buf, control, true));
                match received {
                    Err(_would_block) => None,
                    Ok(Err(e)) => Some(Err(IngressError::Read(e))),
                    Ok(Ok(r)) if r.truncated => Some(Err(IngressError::ControlTruncated {
                        received: r.fds.len(),
                    })),
                    Ok(Ok(r)) if r.len == 0 && r.fds.is_empty() => Some(Ok(false)),
                    Ok(Ok(r)) => Some(
                        decoder
                            .push(&buf[..r.len], r.fds)
                            .map(|()| true)
                            .map_err(IngressError::from),
                    ),
                }
            });
            match outcome {
                None | Some(Ok(true)) => continue,
                Some(Ok(false)) => {
                    let hangup = peer_hung_up(this.conn.get_ref().as_fd());
                    return this.finish(Incoming::Closed { hangup });
                }
                Some(Err(e)) => return this.finish(Incoming::Broken(e)),
            }
        }
    }
}

/// A reply waiting to be written.
struct PendingWrite {
    bytes: Vec<u8>,
    written: usize,
    fds: Vec<OwnedFd>,
}

/// The most frames gathered into one `sendmsg`.
const MAX_GATHER: usize = 64;

/// One connection.
pub struct Ingress {
    conn: Rc<AsyncFd<OwnedFd>>,
    router: Router,
    logger: Logger,
    limits: ServerLimits,
    flow: Rc<FlowControl>,
    in_flight: HashSet<u64>,
    in_flight_bytes: usize,
    outbox: VecDeque<PendingWrite>,
    out_bytes: usize,
    awaiting_writable: bool,
    reading_done: bool,
    _slot: ConnectionSlot,
}

impl Ingress {
    /// Starts serving `conn` on the current arbiter.
    pub fn start(
        conn: OwnedFd,
        router: Router,
        limits: ServerLimits,
        logger: Logger,
        slot: ConnectionSlot,
        partial_frames: Arc<PartialFrames>,
    ) -> io::Result<actix::Addr<Ingress>> {
        let conn = Rc::new(register_async(conn)?);
        Ok(Ingress::create(move |ctx| {
            let flow = Rc::new(FlowControl::default());
            ctx.add_stream(FrameStream {
                conn: conn.clone(),
                decoder: FrameDecoder::new(limits.frame),
                control: ControlBuffer::default(),
                flow: flow.clone(),
                done: false,
                reads_in_a_row: 0,
                partial_frames,
                held: 0,
                partial_since: None,
                partial_frame_timeout: limits.partial_frame_timeout,
            });
            Ingress {
                conn,
                router,
                logger,
                limits,
                flow,
                in_flight: HashSet::new(),
                in_flight_bytes: 0,
                outbox: VecDeque::new(),
                out_bytes: 0,
                awaiting_writable: false,
                reading_done: false,
                _slot: slot,
            }
        }))
    }

    fn on_frame(&mut self, frame: Frame<OwnedFd>, ctx: &mut Context<Self>) {
        let Frame { body, fds } = frame;
        let raw = match parse_request(&body) {
            Ok(raw) => raw,
            Err(fault) => {
                drop(fds);
                debug!(self.logger, "bad request body"; "id" => fault.id, "error" => %fault.error);
                return self.queue_error(fault.id, fault.error.into(), ctx);
            }
        };
        let id = raw.id;
        if self.in_flight.contains(&id) {
            drop(fds);
            return self.queue_error(id, IngressError::DuplicateId(id).into(), ctx);
        }
        let request = match Request::decode(&raw, fds) {
            Ok(request) => request,
            Err(e) => {
                debug!(self.logger, "bad request"; "id" => id, "error" => %e);
                return self.queue_error(id, e.into(), ctx);
            }
        };
        let method = request.method();
        let cost = body.len();
        drop(body);
        self.in_flight.insert(id);
        self.in_flight_bytes += cost;
        self.update_flow();
        let started = Instant::now();
        let pending = self.router.dispatch(id, request);
        ctx.spawn(pending.into_actor(self).map(move |frame, act, ctx| {
            act.in_flight.remove(&id);
            act.in_flight_bytes -= cost;
            if act.logger.is_debug_enabled() {
                debug!(act.logger, "rpc"; "method" => method, "id" => id,
                    "code" => frame.code.map_or("ok", |c| c.as_str()),
                    "us" => started.elapsed().as_micros() as u64);
            }
            act.queue(frame, ctx);
        }));
    }

    fn queue_error(&mut self, id: u64, error: RpcError, ctx: &mut Context<Self>) {
        let frame = OutFrame {
            bytes: error_frame(id, &error),
            fds: Vec::new(),
            code: Some(error.code),
        };
        self.queue(frame, ctx);
    }

    fn queue(&mut self, frame: OutFrame, ctx: &mut Context<Self>) {
        self.out_bytes += frame.bytes.len();
        self.outbox.push_back(PendingWrite {
            bytes: frame.bytes,
            written: 0,
            fds: frame.fds,
        });
        if !self.awaiting_writable {
            self.flush(ctx);
        }
        self.update_flow();
        self.finish_if_done(ctx);
    }

    /// Writes queued replies until the socket is full. A frame carrying
    /// descriptors starts its own `sendmsg`, so its descriptors arrive with
    /// its first byte; runs of frames without descriptors are gathered.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        while let Some(first) = self.outbox.front() {
            let sent = {
                let mut iov: Vec<IoSlice<'_>> = Vec::new();
                let fds: Vec<BorrowedFd<'_>> = first.fds.iter().map(|f| f.as_fd()).collect();
                if fds.is_empty() {
                    for w in self
                        .outbox
                        .iter()
                        .take(MAX_GATHER)
                        .take_while(|w| w.fds.is_empty())
                    {
                        iov.push(IoSlice::new(&w.bytes[w.written..]));
                    }
                } else {
                    iov.push(IoSlice::new(&first.bytes[first.written..]));
                }
                send_with_fds(self.conn.get_ref().as_fd(), &iov, &fds, true)
            };
            match sent {
                Ok(mut n) => {
                    self.out_bytes -= n;
                    // The descriptors went with the first byte.
                    if let Some(front) = self.outbox.front_mut() {
                        front.fds.clear();
                    }
                    while n > 0 {
                        let Some(front) = self.outbox.front_mut() else {
                            break;
                        };
                        let rest = front.bytes.len() - front.written;
                        if n >= rest {
                            n -= rest;
                            self.outbox.pop_front();
                        } else {
                            front.written += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.await_writable(ctx);
                    return;
                }
                Err(e) => {
                    debug!(self.logger, "write failed; closing"; "error" => %e);
                    ctx.stop();
                    return;
                }
            }
        }
    }

    fn await_writable(&mut self, ctx: &mut Context<Self>) {
        if self.awaiting_writable {
            return;
        }
        self.awaiting_writable = true;
        let conn = self.conn.clone();
        let writable = async move {
            if let Ok(mut ready) = conn.writable().await {
                ready.clear_ready();
            }
        };
        ctx.spawn(writable.into_actor(self).map(|(), act, ctx| {
            act.awaiting_writable = false;
            act.flush(ctx);
            act.update_flow();
            act.finish_if_done(ctx);
        }));
    }

    fn update_flow(&self) {
        let paused = self.in_flight.len() >= self.limits.max_in_flight
            || self.in_flight_bytes + self.out_bytes >= self.limits.connection_buffer_budget;
        self.flow.set_paused(paused);
    }

    fn finish_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.reading_done && self.in_flight.is_empty() && self.outbox.is_empty() {
            ctx.stop();
        }
    }

    /// Ends the connection after a framing error: the calls in flight are
    /// cancelled, an error frame goes out if the socket takes it, and every
    /// descriptor received on the connection is closed.
    fn break_connection(&mut self, error: IngressError, ctx: &mut Context<Self>) {
        warn!(self.logger, "closing connection"; "error" => %error);
        let error: RpcError = error.into();
        self.outbox.push_back(PendingWrite {
            bytes: error_frame(0, &error),
            written: 0,
            fds: Vec::new(),
        });
        if !self.awaiting_writable {
            self.flush(ctx);
        }
        ctx.stop();
    }
}

impl Actor for Ingress {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        debug!(self.logger, "connection closed"; "cancelled" => self.in_flight.len());
    }
}

impl StreamHandler<Incoming> for Ingress {
    fn handle(&mut self, item: Incoming, ctx: &mut Context<Self>) {
        match item {
            Incoming::Frame(frame) => {
                // A decoding bug must cost this connection, not the thread
                // every connection shares.
                let outcome = catch_unwind(AssertUnwindSafe(|| self.on_frame(frame, ctx)));
                if outcome.is_err() {
                    error!(self.logger, "panic while handling a frame");
                    self.break_connection(IngressError::DecodePanicked, ctx);
                }
            }
            Incoming::Broken(error) => self.break_connection(error, ctx),
            Incoming::Closed { hangup: true } => ctx.stop(),
            Incoming::Closed { hangup: false } => {
                self.reading_done = true;
                self.finish_if_done(ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.reading_done = true;
        self.finish_if_done(ctx);
    }
}

impl Handler<Drain> for Ingress {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.flow.stop_reading();
        self.reading_done = true;
        self.finish_if_done(ctx);
    }
}
