//! Ingress: one actor per connection. Frames and descriptors come in, typed
//! messages go to the owning actors, response frames go out in whatever
//! order the answers arrive.
//!
//! Flow control: the connection is read only while it has fewer than
//! `max_in_flight` calls outstanding and fewer than
//! `connection_buffer_budget` bytes of requests in flight plus replies not
//! yet written. A client that never reads its replies therefore stops
//! being read, instead of growing the server's memory.
//!
//! This file holds the actor, its start and its handlers; `read` the frame
//! stream (with the incomplete frames' budget and deadline), `write` the
//! replies' writing and the flow control, `error` what ends a connection.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, StreamHandler,
    WrapFuture,
};
use slog::{debug, error, Drain as _, Logger};
use tokio::io::unix::AsyncFd;

use super::connections::ConnectionSlot;
use crate::api::Request;
use crate::config::ServerLimits;
use crate::router::Router;
use crate::sys::socket::register_async;
use crate::wire::envelope::parse_request;
use crate::wire::Frame;

mod error;
mod read;
mod write;

pub use self::error::IngressError;
pub use self::read::PartialFrames;
use self::read::{FlowControl, FrameStream, Incoming};
use self::write::PendingWrite;

/// Tells a connection to stop reading requests, answer the calls in flight
/// and close (graceful shutdown).
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

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
            ctx.add_stream(FrameStream::new(
                conn.clone(),
                flow.clone(),
                &limits,
                partial_frames,
            ));
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
