//! Debug: `debug.Ping`, `debug.Stacks` and `debug.InjectFault`.

use std::sync::Arc;
use std::time::Instant;

use actix::Context;
use slog::{warn, Logger};
use thiserror::Error;

use super::connections::ConnectionStats;
use crate::api::debug::{
    ActorState, FaultKind, InjectFault, Ping, PingReply, Stacks, StacksReply, ThreadReport,
    MAX_STALL_MS,
};
use crate::api::Empty;
use crate::supervision::{handles, supervised_actor, ActorStatus, Fault, Registry, Subsystem};
use crate::sys::process;
use crate::wire::RpcError;

/// Why a debug call was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DebugError {
    /// The supervisor was booted without `--enable-fault-injection`.
    #[error("fault injection is disabled: boot the supervisor with --enable-fault-injection")]
    FaultInjectionDisabled,
    /// No actor has that name.
    #[error("no actor named {name:?}; debug.Stacks lists them: {known}")]
    UnknownActor {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// The actor has failed for good and takes no more faults.
    #[error("actor {0} has failed for good and takes no faults")]
    ActorFailed(String),
    /// A stall longer than allowed.
    #[error("stall of {ms} ms is longer than the limit of {MAX_STALL_MS} ms")]
    StallTooLong {
        /// The requested duration.
        ms: u64,
    },
    /// The actor's mailbox is gone.
    #[error("actor {0} is not accepting messages")]
    Unreachable(String),
}

/// Serves the debug methods.
pub struct Debug {
    status: Arc<ActorStatus>,
    logger: Logger,
    registry: Arc<Registry>,
    connections: Arc<ConnectionStats>,
    booted_at: Instant,
    fault_injection: bool,
}

impl Debug {
    /// The actor, reporting on `registry`.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        registry: Arc<Registry>,
        connections: Arc<ConnectionStats>,
        fault_injection: bool,
    ) -> Self {
        Debug {
            status,
            logger,
            registry,
            connections,
            booted_at: Instant::now(),
            fault_injection,
        }
    }

    fn ping(&mut self, ping: Ping, _: &mut Context<Self>) -> Result<PingReply, RpcError> {
        Ok(PingReply {
            payload: ping.payload,
            fds: ping.fds,
        })
    }

    fn stacks(&mut self, _: Stacks, _: &mut Context<Self>) -> Result<StacksReply, RpcError> {
        // The thread list is best effort: a /proc read error leaves it empty
        // rather than hiding the actor tree.
        let threads = process::threads()
            .unwrap_or_default()
            .into_iter()
            .map(|t| ThreadReport {
                tid: t.tid,
                name: t.name,
                state: t.state,
            })
            .collect();
        Ok(StacksReply {
            actors: self.registry.report(),
            threads,
            connections: self.connections.open(),
            uptime_ms: self.booted_at.elapsed().as_millis() as u64,
            fault_injection: self.fault_injection,
        })
    }

    fn inject_fault(&mut self, req: InjectFault, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        if !self.fault_injection {
            return Err(DebugError::FaultInjectionDisabled.into());
        }
        if let FaultKind::Stall { ms } = req.kind {
            if ms > MAX_STALL_MS {
                return Err(DebugError::StallTooLong { ms }.into());
            }
        }
        let target = self
            .registry
            .find(&req.actor)
            .ok_or_else(|| DebugError::UnknownActor {
                name: req.actor.clone(),
                known: self.registry.names().join(", "),
            })?;
        if target.state() == ActorState::Failed {
            return Err(DebugError::ActorFailed(req.actor).into());
        }
        let inbox = target
            .fault_inbox()
            .ok_or_else(|| DebugError::Unreachable(req.actor.clone()))?;
        if !inbox.connected() {
            return Err(DebugError::Unreachable(req.actor).into());
        }
        // do_send queues past the mailbox capacity: a busy actor still gets
        // its fault, behind the messages already queued.
        inbox.do_send(Fault {
            kind: req.kind,
            ticket: target.ticket(),
        });
        warn!(self.logger, "fault injected"; "actor" => &req.actor, "kind" => ?req.kind);
        Ok(Empty {})
    }
}

impl Subsystem for Debug {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }
}

supervised_actor!(Debug);
handles!(Debug {
    Ping => ping,
    Stacks => stacks,
    InjectFault => inject_fault,
});
