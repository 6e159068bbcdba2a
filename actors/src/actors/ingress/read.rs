//! Reading a connection: the frame stream, its read flow control, and the
//! incomplete frame's budget (shared by all connections) and deadline.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use super::IngressError;
use crate::config::ServerLimits;
use crate::sys::socket::{peer_hung_up, recv_with_fds, ControlBuffer};
use crate::wire::{Frame, FrameDecoder};

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

/// Read flow control, shared by the actor and its frame stream.
#[derive(Default)]
pub(super) struct FlowControl {
    paused: Cell<bool>,
    stopped: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl FlowControl {
    pub(super) fn set_paused(&self, paused: bool) {
        if self.paused.replace(paused) && !paused {
            self.wake();
        }
    }

    pub(super) fn stop_reading(&self) {
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
pub(super) enum Incoming {
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
pub(super) struct FrameStream {
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
    /// A stream reading `conn` under `limits`, its incomplete frame counted
    /// against `partial_frames`.
    pub(super) fn new(
        conn: Rc<AsyncFd<OwnedFd>>,
        flow: Rc<FlowControl>,
        limits: &ServerLimits,
        partial_frames: Arc<PartialFrames>,
    ) -> Self {
        FrameStream {
            conn,
            decoder: FrameDecoder::new(limits.frame),
            control: ControlBuffer::default(),
            flow,
            done: false,
            reads_in_a_row: 0,
            partial_frames,
            held: 0,
            partial_since: None,
            partial_frame_timeout: limits.partial_frame_timeout,
        }
    }

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
