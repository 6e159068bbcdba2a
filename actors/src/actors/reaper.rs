//! Reaper: the one place children are reaped. On every SIGCHLD it collects
//! every exited child with `waitid(P_ALL)`, appends each status to the exit
//! journal, and tells the ContainerManager.
//!
//! The journal lives outside both actors: a status the Reaper collected is
//! never lost, even if the ContainerManager restarts before applying it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use actix::prelude::Stream;
use actix::{Context, Message, Recipient, StreamHandler};
use slog::{error, warn, Logger};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::supervision::{guarded, supervised_actor, ActorStatus, MailboxTicket, Subsystem};
use crate::sys::process::{reap_any, Reaped};

/// Exit statuses collected and not yet applied by the ContainerManager.
#[derive(Debug, Default)]
pub struct ExitJournal {
    entries: Mutex<VecDeque<Reaped>>,
}

impl ExitJournal {
    fn push(&self, reaped: Reaped) {
        self.lock().push_back(reaped);
    }

    /// The oldest entry, left in place until [`ExitJournal::pop`].
    pub fn front(&self) -> Option<Reaped> {
        self.lock().front().copied()
    }

    /// Removes the oldest entry, once applied.
    pub fn pop(&self) {
        self.lock().pop_front();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Reaped>> {
        // Every update is a single push or pop: a poisoned lock holds a
        // consistent queue.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Tells the ContainerManager that the journal has entries.
pub struct ChildrenExited {
    /// Counts it in the manager's mailbox.
    pub ticket: MailboxTicket,
}

impl Message for ChildrenExited {
    type Result = ();
}

struct Sigchld(Signal);

impl Stream for Sigchld {
    type Item = ();

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<()>> {
        self.0.poll_recv(cx)
    }
}

/// Reaps children.
pub struct Reaper {
    status: Arc<ActorStatus>,
    logger: Logger,
    journal: Arc<ExitJournal>,
    manager: Recipient<ChildrenExited>,
    manager_status: Arc<ActorStatus>,
    spawner_pid: Option<i32>,
}

impl Reaper {
    /// The reaper, feeding `journal` and notifying `manager`.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        journal: Arc<ExitJournal>,
        manager: Recipient<ChildrenExited>,
        manager_status: Arc<ActorStatus>,
        spawner_pid: Option<i32>,
    ) -> Self {
        Reaper {
            status,
            logger,
            journal,
            manager,
            manager_status,
            spawner_pid,
        }
    }

    fn sweep(&mut self) {
        let mut any = false;
        loop {
            match reap_any() {
                Ok(Some(reaped)) => {
                    if Some(reaped.pid) == self.spawner_pid {
                        // It exits 0 when the supervisor closes its socket.
                        if reaped.status.exit_code() == Some(0) {
                            slog::info!(self.logger, "the spawner exited"; "pid" => reaped.pid);
                        } else {
                            error!(self.logger, "the spawner died; new containers cannot start";
                                "pid" => reaped.pid, "status" => reaped.status.0);
                        }
                    }
                    self.journal.push(reaped);
                    any = true;
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(self.logger, "waitid failed"; "error" => %e);
                    break;
                }
            }
        }
        if any {
            self.manager.do_send(ChildrenExited {
                ticket: self.manager_status.ticket(),
            });
        }
    }
}

impl Subsystem for Reaper {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }

    fn on_start(&mut self, ctx: &mut Context<Self>) {
        match signal(SignalKind::child()) {
            Ok(sigchld) => {
                actix::AsyncContext::add_stream(ctx, Sigchld(sigchld));
            }
            Err(e) => {
                error!(self.logger, "cannot watch SIGCHLD; children will not be reaped"; "error" => %e)
            }
        }
        // Children that exited while the reaper was (re)starting.
        self.sweep();
    }
}

impl StreamHandler<()> for Reaper {
    fn handle(&mut self, (): (), ctx: &mut Context<Self>) {
        let ticket = self.status.ticket();
        let _ = guarded(self, ctx, "SIGCHLD", ticket, |act, _| {
            act.sweep();
            Ok(())
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

supervised_actor!(Reaper);
