//! Listener: accepts connections on the control socket, checks each peer's
//! credentials, and starts one Ingress per admitted connection.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::prelude::Stream;
use actix::{AsyncContext, Context, Handler, Message, SpawnHandle, StreamHandler, WeakAddr};
use slog::{debug, info, o, warn, Logger};
use thiserror::Error;
use tokio::io::unix::AsyncFd;

use super::connections::{ConnectionSlot, ConnectionStats};
use super::ingress::{Drain, Ingress, PartialFrames};
use crate::config::ServerLimits;
use crate::containment::{check_peer, ContainedNamespaces, ContainedPeer, OwnPlace};
use crate::router::Router;
use crate::supervision::{guarded, supervised_actor, ActorStatus, MailboxTicket, Subsystem};
use crate::sys::socket::{
    accept, peer_credentials, register_async, send_with_fds, PeerCredentials,
};
use crate::wire::envelope::error_frame;
use crate::wire::RpcError;

/// Why a connection was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdmissionError {
    /// The peer is neither root nor the supervisor's uid.
    #[error("peer uid {uid} (pid {pid}) may not use this socket: only root and uid {allowed} may")]
    PeerDenied {
        /// The peer's uid.
        uid: u32,
        /// The peer's pid.
        pid: i32,
        /// The supervisor's uid.
        allowed: u32,
    },
    /// The peer lives inside a container.
    #[error("a process inside a container may not use this socket: {0}")]
    Contained(#[from] ContainedPeer),
    /// Too many connections are open.
    #[error("too many connections: the limit is {limit}")]
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
}

/// What the accept stream yields.
enum Accepted {
    Connection(OwnedFd),
    Failed(io::Error),
}

/// How long accepting pauses when the process is out of descriptors, so a
/// listening socket that stays readable does not spin the thread.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

struct AcceptStream {
    socket: AsyncFd<Arc<OwnedFd>>,
    pause: Option<Pin<Box<actix_rt::time::Sleep>>>,
}

impl Stream for AcceptStream {
    type Item = Accepted;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Accepted>> {
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        loop {
            let mut ready = match self.socket.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(ready)) => ready,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Accepted::Failed(e))),
            };
            match ready.try_io(|socket| accept(socket.get_ref().as_fd())) {
                Err(_would_block) => continue,
                Ok(Ok(conn)) => return Poll::Ready(Some(Accepted::Connection(conn))),
                Ok(Err(e)) => match e.raw_os_error() {
                    Some(libc::ECONNABORTED | libc::EPROTO | libc::EINTR) => continue,
                    _ => {
                        self.pause = Some(Box::pin(actix_rt::time::sleep(ACCEPT_PAUSE)));
                        return Poll::Ready(Some(Accepted::Failed(e)));
                    }
                },
            }
        }
    }
}

/// Stops accepting, removes the socket file, and drains every connection
/// (graceful shutdown).
pub struct StopListening {
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
}

impl Message for StopListening {
    type Result = ();
}

/// Accepts connections on the control socket.
pub struct Listener {
    status: Arc<ActorStatus>,
    logger: Logger,
    /// The parent of every connection's logger.
    ingress_logger: Logger,
    /// The listening socket: survives restarts; `None` once closed.
    socket: Option<Arc<OwnedFd>>,
    path: PathBuf,
    router: Router,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
    allowed_uid: u32,
    /// The supervisor's pid namespace (read at start).
    own_place: Option<OwnPlace>,
    /// The mount namespaces of this supervisor's containers.
    contained: Arc<ContainedNamespaces>,
    /// Bytes of incomplete frames, all connections together.
    partial_frames: Arc<PartialFrames>,
    connections: Vec<WeakAddr<Ingress>>,
    accepting: Option<SpawnHandle>,
    next_connection: u64,
}

impl Listener {
    /// A listener on the bound, listening `socket` at `path`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        ingress_logger: Logger,
        socket: OwnedFd,
        path: PathBuf,
        router: Router,
        limits: ServerLimits,
        stats: Arc<ConnectionStats>,
        contained: Arc<ContainedNamespaces>,
    ) -> Self {
        Listener {
            status,
            logger,
            ingress_logger,
            socket: Some(Arc::new(socket)),
            path,
            router,
            limits,
            stats,
            allowed_uid: nix::unistd::geteuid().as_raw(),
            own_place: OwnPlace::read().ok(),
            contained,
            partial_frames: Arc::new(PartialFrames::new(limits.partial_frames_budget)),
            connections: Vec::new(),
            accepting: None,
            next_connection: 0,
        }
    }

    fn admit(&mut self, conn: OwnedFd) {
        let creds = match peer_credentials(conn.as_fd()) {
            Ok(creds) => creds,
            Err(e) => {
                warn!(self.logger, "cannot read peer credentials; closing"; "error" => %e);
                return;
            }
        };
        if let Err(refusal) = self.check(creds) {
            self.stats.note_refused();
            warn!(self.logger, "connection refused"; "reason" => %refusal);
            let error: RpcError = refusal.into();
            // Best effort: the refused peer may not be reading.
            let _ = send_with_fds(
                conn.as_fd(),
                &[IoSlice::new(&error_frame(0, &error))],
                &[],
                true,
            );
            return;
        }
        self.next_connection += 1;
        let logger = self.ingress_logger.new(o!(
            "conn" => self.next_connection, "peer_pid" => creds.pid, "peer_uid" => creds.uid));
        debug!(logger, "connection accepted");
        let slot = ConnectionSlot::new(self.stats.clone());
        match Ingress::start(
            conn,
            self.router.clone(),
            self.limits,
            logger,
            slot,
            self.partial_frames.clone(),
        ) {
            Ok(addr) => {
                self.connections.retain(|c| c.upgrade().is_some());
                self.connections.push(addr.downgrade());
            }
            Err(e) => warn!(self.logger, "cannot serve connection"; "error" => %e),
        }
    }

    fn check(&self, creds: PeerCredentials) -> Result<(), AdmissionError> {
        if creds.uid != 0 && creds.uid != self.allowed_uid {
            return Err(AdmissionError::PeerDenied {
                uid: creds.uid,
                pid: creds.pid,
                allowed: self.allowed_uid,
            });
        }
        // Whatever its uid: container root is uid 0 too.
        match self.own_place {
            Some(own) => check_peer(creds.pid, own, &self.contained)?,
            None => {
                return Err(ContainedPeer::Unknown {
                    pid: creds.pid,
                    detail: "the supervisor's own pid namespace is unknown".into(),
                }
                .into())
            }
        }
        let limit = self.limits.max_connections;
        if self.stats.open() as usize >= limit {
            return Err(AdmissionError::TooManyConnections { limit });
        }
        Ok(())
    }

    fn stop_listening(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.accepting.take() {
            ctx.cancel_future(handle);
        }
        if self.socket.take().is_some() {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!(self.logger, "cannot remove socket file"; "path" => %self.path.display(), "error" => %e);
            }
            info!(self.logger, "stopped accepting connections"; "open" => self.stats.open());
        }
        for conn in self.connections.drain(..) {
            if let Some(addr) = conn.upgrade() {
                addr.do_send(Drain);
            }
        }
    }
}

impl Subsystem for Listener {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }

    fn recover(&mut self, _: &mut Context<Self>) {
        // The accept stream died with the old context; on_start makes a new one.
        self.accepting = None;
    }

    fn on_start(&mut self, ctx: &mut Context<Self>) {
        let Some(socket) = self.socket.clone() else {
            return;
        };
        match register_async(socket) {
            Ok(socket) => {
                let stream = AcceptStream {
                    socket,
                    pause: None,
                };
                self.accepting = Some(ctx.add_stream(stream));
            }
            Err(e) => warn!(self.logger, "cannot poll the control socket"; "error" => %e),
        }
    }
}

impl StreamHandler<Accepted> for Listener {
    fn handle(&mut self, item: Accepted, ctx: &mut Context<Self>) {
        // Stream items bypass the mailbox; they get the same guard.
        let ticket = self.status.ticket();
        let _ = guarded(self, ctx, "accept", ticket, move |act, _| {
            match item {
                Accepted::Connection(conn) => act.admit(conn),
                Accepted::Failed(e) => warn!(act.logger, "accept failed"; "error" => %e),
            }
            Ok(())
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<StopListening> for Listener {
    type Result = ();

    fn handle(&mut self, msg: StopListening, ctx: &mut Context<Self>) {
        let _ = guarded(self, ctx, "StopListening", msg.ticket, |act, ctx| {
            act.stop_listening(ctx);
            Ok(())
        });
    }
}

supervised_actor!(Listener);
