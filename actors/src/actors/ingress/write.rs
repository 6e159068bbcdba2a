//! Writing replies: the outbox, gathered `sendmsg`s, waiting for the socket
//! to take more, and the connection's read flow control and end.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use actix::{ActorContext, ActorFutureExt, AsyncContext, Context, WrapFuture};
use slog::{debug, warn};

use super::{Ingress, IngressError};
use crate::router::OutFrame;
use crate::sys::socket::send_with_fds;
use crate::wire::envelope::error_frame;
use crate::wire::RpcError;

/// A reply waiting to be written.
pub(super) struct PendingWrite {
    bytes: Vec<u8>,
    written: usize,
    fds: Vec<OwnedFd>,
}

/// The most frames gathered into one `sendmsg`.
const MAX_GATHER: usize = 64;

impl Ingress {
    pub(super) fn queue_error(&mut self, id: u64, error: RpcError, ctx: &mut Context<Self>) {
        let frame = OutFrame {
            bytes: error_frame(id, &error),
            fds: Vec::new(),
            code: Some(error.code),
        };
        self.queue(frame, ctx);
    }

    pub(super) fn queue(&mut self, frame: OutFrame, ctx: &mut Context<Self>) {
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

    pub(super) fn update_flow(&self) {
        let paused = self.in_flight.len() >= self.limits.max_in_flight
            || self.in_flight_bytes + self.out_bytes >= self.limits.connection_buffer_budget;
        self.flow.set_paused(paused);
    }

    pub(super) fn finish_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.reading_done && self.in_flight.is_empty() && self.outbox.is_empty() {
            ctx.stop();
        }
    }

    /// Ends the connection after a framing error: the calls in flight are
    /// cancelled, an error frame goes out if the socket takes it, and every
    /// descriptor received on the connection is closed.
    pub(super) fn break_connection(&mut self, error: IngressError, ctx: &mut Context<Self>) {
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
