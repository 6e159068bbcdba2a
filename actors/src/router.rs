//! Routes typed requests to the actor that owns each method, and encodes
//! the answer as a response frame.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix::{Addr, Handler};
use serde::Serialize;
use thiserror::Error;

use crate::actors::{
    Cgroups, ContainerManager, Debug, Lifecycle, Logging, Metrics, Network, Profiler,
    TraceSessions, Usage,
};
use crate::api::{CarriesFds, Method, Owner, Request};
use crate::metrics::SandboxMetrics;
use crate::supervision::{ActorStatus, Call, Subsystem, SupervisionError, Unsupported};
use crate::wire::envelope::{error_frame, frame_buffer, seal_frame, write_ok_prefix};
use crate::wire::frame::{HEADER_LEN, MAX_BODY_LEN, MAX_FDS};
use crate::wire::{ErrorCode, RpcError};

/// An encoded response frame and the descriptors to send with it.
#[derive(Debug)]
pub struct OutFrame {
    /// Header and body.
    pub bytes: Vec<u8>,
    /// Descriptors bound to the frame.
    pub fds: Vec<OwnedFd>,
    /// The error code, `None` for a success.
    pub code: Option<ErrorCode>,
}

/// The pending answer to one request.
pub type PendingReply = Pin<Box<dyn Future<Output = OutFrame>>>;

/// Why a successful reply could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// More descriptors than a frame may carry.
    #[error("reply to {method} carries {count} file descriptors, over the limit of {MAX_FDS}")]
    TooManyFds {
        /// The method.
        method: &'static str,
        /// How many.
        count: usize,
    },
    /// The body would exceed the frame limit.
    #[error("reply to {method} is {len} bytes, over the frame limit of {MAX_BODY_LEN}")]
    TooLarge {
        /// The method.
        method: &'static str,
        /// Its length.
        len: usize,
    },
    /// Serialization failed.
    #[error("encode reply to {method}: {detail}")]
    Encode {
        /// The method.
        method: &'static str,
        /// What serde said.
        detail: String,
    },
}

/// Encodes the answer to request `id` as a frame.
pub fn encode_reply<R>(id: u64, method: &'static str, result: Result<R, RpcError>) -> OutFrame
where
    R: Serialize + CarriesFds,
{
    let failed = |error: RpcError| OutFrame {
        bytes: error_frame(id, &error),
        fds: Vec::new(),
        code: Some(error.code),
    };
    let mut reply = match result {
        Ok(reply) => reply,
        Err(error) => return failed(error),
    };
    let fds = reply.take_fds();
    if fds.len() > usize::from(MAX_FDS) {
        let count = fds.len();
        return failed(ReplyError::TooManyFds { method, count }.into());
    }
    let mut bytes = frame_buffer(64);
    write_ok_prefix(&mut bytes, id);
    if let Err(e) = serde_cbor::to_writer(&mut bytes, &reply) {
        let detail = e.to_string();
        return failed(ReplyError::Encode { method, detail }.into());
    }
    let len = bytes.len() - HEADER_LEN;
    if len > MAX_BODY_LEN as usize {
        return failed(ReplyError::TooLarge { method, len }.into());
    }
    seal_frame(&mut bytes, fds.len() as u8);
    OutFrame {
        bytes,
        fds,
        code: None,
    }
}

/// An actor's address and status, and where its calls are counted.
pub struct Endpoint<A: Subsystem> {
    addr: Addr<A>,
    status: Arc<ActorStatus>,
    instruments: SandboxMetrics,
}

impl<A: Subsystem> Clone for Endpoint<A> {
    fn clone(&self) -> Self {
        Endpoint {
            addr: self.addr.clone(),
            status: self.status.clone(),
            instruments: self.instruments.clone(),
        }
    }
}

impl<A: Subsystem + Handler<Unsupported>> Endpoint<A> {
    /// An endpoint for the actor at `addr`; each call answered is counted
    /// and timed, by method and outcome, in `instruments`.
    pub fn new(addr: Addr<A>, status: Arc<ActorStatus>, instruments: SandboxMetrics) -> Self {
        Endpoint {
            addr,
            status,
            instruments,
        }
    }

    /// Sends a method call; the reply frame comes when the actor answers.
    pub fn call<M>(&self, id: u64, msg: M) -> PendingReply
    where
        M: Method,
        A: Handler<Call<M>>,
    {
        let started = Instant::now();
        let request = self.addr.send(Call::new(msg, self.status.ticket()));
        let (actor, instruments) = (self.status.name(), self.instruments.clone());
        Box::pin(async move {
            let result = request.await.unwrap_or_else(|_| {
                Err(SupervisionError::Stopped {
                    actor,
                    message: M::NAME,
                }
                .into())
            });
            let frame = encode_reply(id, M::NAME, result);
            instruments.observe_call(M::NAME, frame.code, started.elapsed());
            frame
        })
    }

    /// Sends a call of a method whose capability has not landed.
    pub fn unsupported(&self, id: u64, method: &'static str) -> PendingReply {
        let started = Instant::now();
        let request = self.addr.send(Unsupported {
            method,
            ticket: self.status.ticket(),
        });
        let (actor, instruments) = (self.status.name(), self.instruments.clone());
        Box::pin(async move {
            let result = match request.await {
                Ok(Ok(())) => Ok(crate::api::Empty {}),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SupervisionError::Stopped {
                    actor,
                    message: method,
                }
                .into()),
            };
            let frame = encode_reply(id, method, result);
            instruments.observe_call(method, frame.code, started.elapsed());
            frame
        })
    }
}

/// The endpoints of every actor that owns methods.
#[derive(Clone)]
pub struct Router {
    /// ContainerManager.
    pub container_manager: Endpoint<ContainerManager>,
    /// Lifecycle.
    pub lifecycle: Endpoint<Lifecycle>,
    /// Cgroups.
    pub cgroups: Endpoint<Cgroups>,
    /// Network.
    pub network: Endpoint<Network>,
    /// TraceSessions.
    pub trace_sessions: Endpoint<TraceSessions>,
    /// Profiler.
    pub profiler: Endpoint<Profiler>,
    /// Metrics.
    pub metrics: Endpoint<Metrics>,
    /// Usage.
    pub usage: Endpoint<Usage>,
    /// Logging.
    pub logging: Endpoint<Logging>,
    /// Debug.
    pub debug: Endpoint<Debug>,
}

/// Generates [`Router::dispatch`] from the table of `api::with_methods`:
/// each typed request goes to the endpoint of the owner the table names.
macro_rules! dispatch {
    (
        implemented { $($variant:ident($ty:ty) => $owner:ident $field:ident,)+ }
        pending { $($name:literal => $pending_owner:ident $pending_field:ident,)+ }
    ) => {
        impl Router {
            /// Sends `request` (id `id`) to its owner.
            pub fn dispatch(&self, id: u64, request: Request) -> PendingReply {
                match request {
                    $(Request::$variant(m) => self.$field.call(id, m),)+
                    Request::NotYetSupported(n) => self.unsupported(id, n.method, n.owner),
                }
            }

            /// Answers a method whose capability has not landed, from its
            /// owner (which counts it and says `unsupported`).
            fn unsupported(&self, id: u64, method: &'static str, owner: Owner) -> PendingReply {
                match owner {
                    Owner::ContainerManager => self.container_manager.unsupported(id, method),
                    Owner::Lifecycle => self.lifecycle.unsupported(id, method),
                    Owner::Cgroups => self.cgroups.unsupported(id, method),
                    Owner::Network => self.network.unsupported(id, method),
                    Owner::TraceSessions => self.trace_sessions.unsupported(id, method),
                    Owner::Profiler => self.profiler.unsupported(id, method),
                    Owner::Metrics => self.metrics.unsupported(id, method),
                    Owner::Usage => self.usage.unsupported(id, method),
                    Owner::Logging => self.logging.unsupported(id, method),
                    Owner::Debug => self.debug.unsupported(id, method),
                }
            }
        }
    };
}

crate::api::with_methods!(dispatch);
