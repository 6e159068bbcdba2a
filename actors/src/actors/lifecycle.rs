//! Lifecycle: `Lifecycle.Pause` and `Lifecycle.Resume` of the whole
//! sandbox. The ContainerManager owns the containers and their phases, so
//! the freezing itself is its `Pause`/`Resume` without a container id; this
//! actor is the sandbox-level entry point gVisor's clients call.

use std::sync::Arc;

use actix::{Addr, Context, WrapFuture};
use slog::Logger;

use super::ContainerManager;
use crate::api::container;
use crate::api::lifecycle::{Pause, Resume};
use crate::api::{Empty, Method};
use crate::supervision::{
    handles, supervised_actor, ActorStatus, Call, Reply, Subsystem, SupervisionError,
};
use crate::wire::RpcError;

/// Pauses and resumes the whole sandbox.
pub struct Lifecycle {
    status: Arc<ActorStatus>,
    logger: Logger,
    containers: Addr<ContainerManager>,
    containers_status: Arc<ActorStatus>,
}

impl Lifecycle {
    /// The actor, freezing through the ContainerManager at `containers`.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        containers: Addr<ContainerManager>,
        containers_status: Arc<ActorStatus>,
    ) -> Self {
        Lifecycle {
            status,
            logger,
            containers,
            containers_status,
        }
    }

    /// Sends `msg` to the ContainerManager; the answer is this call's.
    fn forward<M>(&self, msg: M) -> Reply<Self, Empty>
    where
        M: Method<Reply = Empty>,
        ContainerManager: actix::Handler<Call<M>>,
    {
        let request = self
            .containers
            .send(Call::new(msg, self.containers_status.ticket()));
        Reply::Later(Box::pin(
            async move {
                request.await.unwrap_or_else(|_| {
                    Err(RpcError::from(SupervisionError::Stopped {
                        actor: "ContainerManager",
                        message: M::NAME,
                    }))
                })
            }
            .into_actor(self),
        ))
    }

    fn pause(&mut self, _: Pause, _: &mut Context<Self>) -> Reply<Self, Empty> {
        self.forward(container::Pause { cid: None })
    }

    fn resume(&mut self, _: Resume, _: &mut Context<Self>) -> Reply<Self, Empty> {
        self.forward(container::Resume { cid: None })
    }
}

impl Subsystem for Lifecycle {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }
}

supervised_actor!(Lifecycle);
handles!(Lifecycle {
    Pause => pause,
    Resume => resume,
});
