//! The guard every handler runs under, the restart hooks, and the macros
//! that give an actor its supervised plumbing.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::Poll;

use actix::dev::MessageResponse;
use actix::{
    ActorContext, ActorFuture, ActorFutureExt, AsyncContext, Context, ResponseActFuture,
    Supervised, WrapFuture,
};
use slog::{error, warn, Logger};
use thiserror::Error;

use super::mailbox::MailboxTicket;
use super::messages::{Call, Fault, Unsupported};
use super::status::ActorStatus;
use crate::api::debug::{ActorState, FaultKind};
use crate::api::Method;
use crate::wire::RpcError;

/// Messages an actor's mailbox holds before senders are parked.
const MAILBOX_CAPACITY: usize = 4096;

/// An actor of the supervised tree.
pub trait Subsystem: actix::Actor<Context = Context<Self>> + Supervised {
    /// Its status slot.
    fn status(&self) -> &Arc<ActorStatus>;

    /// Its logger.
    fn logger(&self) -> &Logger;

    /// Rebuilds state that a failed handler may have left inconsistent;
    /// called before every restart. Durable state must not be lost here.
    fn recover(&mut self, _ctx: &mut Context<Self>) {}

    /// Called whenever the actor (re)starts, after supervision bookkeeping.
    fn on_start(&mut self, _ctx: &mut Context<Self>) {}
}

/// Failures of the supervision machinery itself, as callers see them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SupervisionError {
    /// The handler panicked; the actor is being restarted.
    #[error("actor {actor} panicked while handling {message}: {reason}; it is being restarted")]
    Panicked {
        /// The actor.
        actor: &'static str,
        /// What it was handling.
        message: &'static str,
        /// The panic message.
        reason: String,
    },
    /// The actor failed too often in a row and no longer serves.
    #[error("actor {actor} has failed for good after {failures} consecutive failures; restart the supervisor")]
    Failed {
        /// The actor.
        actor: &'static str,
        /// Its consecutive failures.
        failures: u32,
    },
    /// The actor went away before answering.
    #[error("actor {actor} stopped before answering {message}")]
    Stopped {
        /// The actor.
        actor: &'static str,
        /// The message.
        message: &'static str,
    },
    /// The method is defined but its capability has not landed.
    #[error(
        "{method} is not supported yet: the {actor} actor does not implement it in this build"
    )]
    NotYetSupported {
        /// The method.
        method: &'static str,
        /// Its owner.
        actor: &'static str,
    },
}

fn panic_reason(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs `body` as the handling of `message`: takes it out of the mailbox
/// count, refuses it if the actor has failed, marks it as being handled,
/// and turns a panic into an `unavailable` reply plus a supervised restart.
pub fn guarded<A, R>(
    act: &mut A,
    ctx: &mut Context<A>,
    message: &'static str,
    ticket: MailboxTicket,
    body: impl FnOnce(&mut A, &mut Context<A>) -> Result<R, RpcError>,
) -> Result<R, RpcError>
where
    A: Subsystem,
{
    drop(ticket);
    let status = act.status().clone();
    if status.is_failed() {
        return Err(SupervisionError::Failed {
            actor: status.name(),
            failures: status.consecutive_failures(),
        }
        .into());
    }
    status.begin_handling(message);
    match catch_unwind(AssertUnwindSafe(|| body(act, ctx))) {
        Ok(result) => {
            let stopping = ctx.state() == actix::ActorState::Stopping;
            // A handler that made the actor wait (ctx.wait) is still
            // handling its message; the wait clears the mark when done.
            if stopping || !ctx.waiting() {
                status.end_handling();
            }
            if !stopping {
                status.note_success();
            }
            result
        }
        Err(payload) => {
            status.end_handling();
            let reason = panic_reason(payload.as_ref());
            error!(act.logger(), "handler panicked"; "message" => message, "panic" => &reason);
            ctx.stop();
            Err(SupervisionError::Panicked {
                actor: status.name(),
                message,
                reason,
            }
            .into())
        }
    }
}

/// What a method handler returns: the answer now, or a future (run in the
/// actor's context, so the actor serves other messages meanwhile) that
/// answers later.
pub enum Reply<A: actix::Actor, R> {
    /// Answered.
    Now(Result<R, RpcError>),
    /// Answered when the future resolves.
    Later(ResponseActFuture<A, Result<R, RpcError>>),
}

impl<A: actix::Actor, R> From<Result<R, RpcError>> for Reply<A, R> {
    fn from(result: Result<R, RpcError>) -> Self {
        Reply::Now(result)
    }
}

impl<A, M> MessageResponse<A, Call<M>> for Reply<A, M::Reply>
where
    A: actix::Actor<Context = Context<A>>,
    M: Method,
{
    fn handle(
        self,
        ctx: &mut Context<A>,
        tx: Option<actix::dev::OneshotSender<Result<M::Reply, RpcError>>>,
    ) {
        match self {
            Reply::Now(result) => {
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Reply::Later(future) => {
                ctx.spawn(future.map(move |result, _, _| {
                    if let Some(tx) = tx {
                        let _ = tx.send(result);
                    }
                }));
            }
        }
    }
}

/// [`guarded`] for handlers that may answer later: a panic while the
/// future is polled is caught the same way.
pub fn guarded_reply<A, R>(
    act: &mut A,
    ctx: &mut Context<A>,
    message: &'static str,
    ticket: MailboxTicket,
    body: impl FnOnce(&mut A, &mut Context<A>) -> Reply<A, R>,
) -> Reply<A, R>
where
    A: Subsystem,
    R: 'static,
{
    let mut later = None;
    let now = guarded(act, ctx, message, ticket, |act, ctx| match body(act, ctx) {
        Reply::Now(result) => result.map(Some),
        Reply::Later(future) => {
            later = Some(future);
            Ok(None)
        }
    });
    match (now, later) {
        (Ok(Some(value)), _) => Reply::Now(Ok(value)),
        (Err(e), _) => Reply::Now(Err(e)),
        (Ok(None), Some(future)) => Reply::Later(Box::pin(CatchPanic {
            inner: future,
            message,
        })),
        (Ok(None), None) => Reply::Now(Err(SupervisionError::Stopped {
            actor: act.status().name(),
            message,
        }
        .into())),
    }
}

/// Polls a handler's future under `catch_unwind`.
struct CatchPanic<A: actix::Actor, R> {
    inner: ResponseActFuture<A, Result<R, RpcError>>,
    message: &'static str,
}

impl<A: Subsystem, R> ActorFuture<A> for CatchPanic<A, R> {
    type Output = Result<R, RpcError>;

    fn poll(
        mut self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<Self::Output> {
        let message = self.message;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            self.inner.as_mut().poll(act, ctx, task)
        }));
        match polled {
            Ok(poll) => poll,
            Err(payload) => {
                let reason = panic_reason(payload.as_ref());
                error!(act.logger(), "handler future panicked"; "message" => message, "panic" => &reason);
                ctx.stop();
                Poll::Ready(Err(SupervisionError::Panicked {
                    actor: act.status().name(),
                    message,
                    reason,
                }
                .into()))
            }
        }
    }
}

/// The `Actor::started` of every supervised actor: waits out the restart
/// back-off (without blocking the thread), then hands over to `on_start`.
pub fn on_started<A: Subsystem>(act: &mut A, ctx: &mut Context<A>) {
    // Callers wait in the mailbox rather than being parked at 16 messages,
    // so pipelined calls do not churn through actix's sender parking.
    ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    let status = act.status().clone();
    if status.state() == ActorState::Restarting {
        let delay = status.policy().backoff(status.consecutive_failures());
        if delay.is_zero() {
            status.set_running();
        } else {
            ctx.wait(
                actix_rt::time::sleep(delay)
                    .into_actor(act)
                    .map(|(), act, _| act.status().set_running()),
            );
        }
    }
    act.on_start(ctx);
}

/// The `Supervised::restarting` of every supervised actor.
pub fn on_restarting<A: Subsystem>(act: &mut A, ctx: &mut Context<A>) {
    let status = act.status().clone();
    match status.note_restart() {
        Some(delay) => warn!(act.logger(), "actor restarting";
            "restarts" => status.restarts(), "backoff_ms" => delay.as_millis() as u64),
        None => error!(act.logger(), "actor failed for good";
            "consecutive_failures" => status.consecutive_failures()),
    }
    act.recover(ctx);
}

/// Handles an injected fault.
pub fn strike<A: Subsystem>(act: &mut A, ctx: &mut Context<A>, fault: Fault) {
    let name = fault.message_name();
    let kind = fault.kind;
    let _ = guarded(act, ctx, name, fault.ticket, move |act, ctx| {
        match kind {
            FaultKind::Panic => panic!("injected fault"),
            FaultKind::Stop => ctx.stop(),
            FaultKind::Stall { ms } => ctx.wait(
                actix_rt::time::sleep(Duration::from_millis(ms))
                    .into_actor(act)
                    .map(|(), act, _| act.status().end_handling()),
            ),
        }
        Ok(())
    });
}

/// Answers a method whose capability has not landed.
pub fn answer_unsupported<A: Subsystem>(
    act: &mut A,
    ctx: &mut Context<A>,
    msg: Unsupported,
) -> Result<(), RpcError> {
    let method = msg.method;
    guarded(act, ctx, method, msg.ticket, move |act, _| {
        Err(SupervisionError::NotYetSupported {
            method,
            actor: act.status().name(),
        }
        .into())
    })
}

/// Gives an actor type its supervised plumbing: `Actor`, `Supervised`,
/// and handlers for injected faults and not-yet-supported methods.
macro_rules! supervised_actor {
    ($actor:ty) => {
        impl actix::Actor for $actor {
            type Context = actix::Context<Self>;

            fn started(&mut self, ctx: &mut Self::Context) {
                $crate::supervision::on_started(self, ctx)
            }
        }

        impl actix::Supervised for $actor {
            fn restarting(&mut self, ctx: &mut Self::Context) {
                $crate::supervision::on_restarting(self, ctx)
            }
        }

        impl actix::Handler<$crate::supervision::Fault> for $actor {
            type Result = ();

            fn handle(&mut self, fault: $crate::supervision::Fault, ctx: &mut Self::Context) {
                $crate::supervision::strike(self, ctx, fault)
            }
        }

        impl actix::Handler<$crate::supervision::Unsupported> for $actor {
            type Result = Result<(), $crate::wire::RpcError>;

            fn handle(
                &mut self,
                msg: $crate::supervision::Unsupported,
                ctx: &mut Self::Context,
            ) -> Self::Result {
                $crate::supervision::answer_unsupported(self, ctx, msg)
            }
        }
    };
}

/// Routes method calls to an actor's handler functions, each run under
/// [`guarded_reply`]: `handles!(Debug { Ping => ping, Stacks => stacks });`
/// A handler returns `Result<Reply, RpcError>` or a [`Reply`].
macro_rules! handles {
    ($actor:ty { $($method:ty => $handler:ident),+ $(,)? }) => {
        $(
            impl actix::Handler<$crate::supervision::Call<$method>> for $actor {
                type Result = $crate::supervision::Reply<Self, <$method as $crate::api::Method>::Reply>;

                fn handle(
                    &mut self,
                    call: $crate::supervision::Call<$method>,
                    ctx: &mut Self::Context,
                ) -> Self::Result {
                    let (msg, ticket) = call.into_parts();
                    $crate::supervision::guarded_reply(
                        self,
                        ctx,
                        <$method as $crate::api::Method>::NAME,
                        ticket,
                        move |act, ctx| act.$handler(msg, ctx).into(),
                    )
                }
            }
        )+
    };
}

pub(crate) use {handles, supervised_actor};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix::{Context, Supervisor};
    use slog::Logger;

    use super::Subsystem;
    use crate::api::debug::{ActorState, Ping, PingReply};
    use crate::api::Fds;
    use crate::supervision::{ActorStatus, Call, RestartPolicy};
    use crate::wire::{ErrorCode, RpcError};

    /// Panics on the payload "boom"; counts calls since its last restart.
    struct Flaky {
        status: Arc<ActorStatus>,
        logger: Logger,
        calls_since_restart: u32,
        recoveries: u32,
    }

    impl Flaky {
        fn ping(&mut self, ping: Ping, _: &mut Context<Self>) -> Result<PingReply, RpcError> {
            self.calls_since_restart += 1;
            if ping.payload == b"boom" {
                panic!("boom");
            }
            Ok(PingReply {
                payload: format!("{} {}", self.calls_since_restart, self.recoveries).into_bytes(),
                fds: Fds::none(),
            })
        }
    }

    impl Subsystem for Flaky {
        fn status(&self) -> &Arc<ActorStatus> {
            &self.status
        }

        fn logger(&self) -> &Logger {
            &self.logger
        }

        fn recover(&mut self, _: &mut Context<Self>) {
            self.calls_since_restart = 0;
            self.recoveries += 1;
        }
    }

    supervised_actor!(Flaky);
    handles!(Flaky { Ping => ping });

    fn ping(payload: &[u8]) -> Ping {
        Ping {
            payload: payload.to_vec(),
            fds: Fds::none(),
        }
    }

    #[test]
    fn a_panicking_handler_answers_unavailable_and_the_actor_restarts() {
        let system = actix_rt::System::new();
        system.block_on(async {
            let status = ActorStatus::new("Flaky", RestartPolicy::default());
            let addr = Supervisor::start({
                let status = status.clone();
                move |_| Flaky {
                    status,
                    logger: crate::logging::discard(),
                    calls_since_restart: 0,
                    recoveries: 0,
                }
            });
            let first = addr
                .send(Call::new(ping(b"a"), status.ticket()))
                .await
                .unwrap();
            assert_eq!(first.unwrap().payload, b"1 0");
            let boom = addr
                .send(Call::new(ping(b"boom"), status.ticket()))
                .await
                .unwrap();
            assert_eq!(
                boom.unwrap_err(),
                RpcError::new(
                    ErrorCode::Unavailable,
                    "actor Flaky panicked while handling debug.Ping: boom; it is being restarted"
                )
            );
            // recover() ran once before the restart; the call counter was reset.
            let next = addr
                .send(Call::new(ping(b"b"), status.ticket()))
                .await
                .unwrap();
            assert_eq!(next.unwrap().payload, b"1 1");
            assert_eq!(status.restarts(), 1);
            assert_eq!(status.state(), ActorState::Running);
            assert_eq!(status.mailbox(), 0);
            assert_eq!(status.consecutive_failures(), 0);
        });
    }
}
