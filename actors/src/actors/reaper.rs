//! Reaper: the one place children are reaped. On every SIGCHLD it collects
//! every exited child with `waitid(P_ALL)`, appends each status to the exit
//! journal, and tells the ContainerManager.
//!
//! The journal lives outside both actors: a status the Reaper collected is
//! never lost, even if the ContainerManager restarts before applying it.
//!
//! Processes that are not the supervisor's children (a caller's, cloned by
//! a caller's spawner) are watched through their pidfds instead
//! ([`watch_caller_reaped`]), and their exits go into the same journal.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use actix::prelude::Stream;
use actix::{Context, Message, Recipient, StreamHandler};
use slog::{error, warn, Logger};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::supervision::{guarded, supervised_actor, ActorStatus, MailboxTicket, Subsystem};
use crate::sys::pidfd_exit::{probe_exit, ExitProbe};
use crate::sys::process::{reap_any, Reaped, WaitStatus};

/// Exit statuses collected and not yet applied by the ContainerManager.
#[derive(Debug, Default)]
pub struct ExitJournal {
    entries: Mutex<VecDeque<Reaped>>,
}

impl ExitJournal {
    pub(crate) fn push(&self, reaped: Reaped) {
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

/// Where an exit watched through a pidfd goes: the journal, then a word to
/// the ContainerManager.
pub struct ExitSink {
    /// The journal.
    pub journal: Arc<ExitJournal>,
    /// The ContainerManager.
    pub manager: Recipient<ChildrenExited>,
    /// Its status, for the mailbox ticket.
    pub manager_status: Arc<ActorStatus>,
    /// For what cannot be watched.
    pub logger: Logger,
}

/// Journals the exit of process `pid` (behind `pidfd`, named by its
/// `(start time, pidfs inode)`), which another process reaps: at its exit
/// while it is a zombie, or once reaped. The task outlives restarts of the
/// actors; it ends with the process.
pub fn watch_caller_reaped(
    pidfd: std::os::fd::OwnedFd,
    pid: i32,
    (start_time, pidfs_inode): (Option<u64>, Option<u64>),
    sink: ExitSink,
) {
    actix_rt::spawn(async move {
        let watched = match crate::sys::socket::register_async(pidfd) {
            Ok(fd) => fd,
            Err(e) => {
                error!(sink.logger, "cannot watch a caller's process for its exit"; "pid" => pid, "error" => %e);
                return;
            }
        };
        let status = loop {
            let mut ready = match watched.readable().await {
                Ok(ready) => ready,
                Err(e) => {
                    error!(sink.logger, "cannot watch a caller's process for its exit"; "pid" => pid, "error" => %e);
                    return;
                }
            };
            match probe_exit(std::os::fd::AsFd::as_fd(watched.get_ref()), pid) {
                // Readable again at the reap, if not before.
                ExitProbe::Running => ready.clear_ready(),
                ExitProbe::Exited(status) => break status,
                ExitProbe::Unknown => {
                    warn!(sink.logger, "a caller's process was reaped before its status could be read, and this kernel keeps none for pidfds"; "pid" => pid);
                    break WaitStatus::UNKNOWN;
                }
            }
        };
        sink.journal.push(Reaped {
            pid,
            status,
            start_time,
            pidfs_inode,
        });
        sink.manager.do_send(ChildrenExited {
            ticket: sink.manager_status.ticket(),
        });
    });
}
