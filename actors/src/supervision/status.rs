//! What debug.Stacks reports about each actor, kept outside the actors so
//! that a stalled or restarting actor can still be described.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::Recipient;

use super::mailbox::{Mailbox, MailboxTicket};
use super::messages::Fault;
use crate::api::debug::{ActorReport, ActorState, Handling};

/// How an actor is restarted after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the second consecutive restart; doubled for each
    /// further one. The first restart is immediate.
    pub base_backoff: Duration,
    /// The longest delay.
    pub max_backoff: Duration,
    /// Consecutive failures (with no message handled successfully in
    /// between) after which the actor is marked failed for good.
    pub max_consecutive_failures: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_consecutive_failures: 10,
        }
    }
}

impl RestartPolicy {
    /// The delay before restarting after the `consecutive`-th failure in a
    /// row (1-based).
    pub fn backoff(&self, consecutive: u32) -> Duration {
        if consecutive <= 1 {
            return Duration::ZERO;
        }
        let doublings = (consecutive - 2).min(31);
        self.base_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

const RUNNING: u8 = 0;
const RESTARTING: u8 = 1;
const FAILED: u8 = 2;

/// The live status of one actor.
#[derive(Debug)]
pub struct ActorStatus {
    name: &'static str,
    policy: RestartPolicy,
    state: AtomicU8,
    restarts: AtomicU32,
    consecutive_failures: AtomicU32,
    mailbox: Mailbox,
    handling: Mutex<Option<(&'static str, Instant)>>,
    fault_inbox: OnceLock<Recipient<Fault>>,
}

impl ActorStatus {
    /// A running actor with an empty mailbox.
    pub fn new(name: &'static str, policy: RestartPolicy) -> Arc<Self> {
        Arc::new(ActorStatus {
            name,
            policy,
            state: AtomicU8::new(RUNNING),
            restarts: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            mailbox: Mailbox::default(),
            handling: Mutex::new(None),
            fault_inbox: OnceLock::new(),
        })
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The restart policy.
    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// Its supervision state.
    pub fn state(&self) -> ActorState {
        match self.state.load(Ordering::Acquire) {
            RUNNING => ActorState::Running,
            RESTARTING => ActorState::Restarting,
            _ => ActorState::Failed,
        }
    }

    /// True once the actor has failed for good.
    pub fn is_failed(&self) -> bool {
        self.state.load(Ordering::Acquire) == FAILED
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Messages queued and not yet taken.
    pub fn mailbox(&self) -> u64 {
        self.mailbox.queued()
    }

    /// A ticket for one message about to be queued.
    pub fn ticket(&self) -> MailboxTicket {
        self.mailbox.ticket()
    }

    /// Where faults for this actor are sent.
    pub fn fault_inbox(&self) -> Option<&Recipient<Fault>> {
        self.fault_inbox.get()
    }

    /// Records where faults for this actor are sent (once, at start).
    pub fn set_fault_inbox(&self, inbox: Recipient<Fault>) {
        let _ = self.fault_inbox.set(inbox);
    }

    pub(crate) fn begin_handling(&self, message: &'static str) {
        if let Ok(mut h) = self.handling.lock() {
            *h = Some((message, Instant::now()));
        }
    }

    pub(crate) fn end_handling(&self) {
        if let Ok(mut h) = self.handling.lock() {
            *h = None;
        }
    }

    pub(crate) fn note_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records a restart; returns the back-off to wait, or `None` when the
    /// actor has now failed for good.
    pub(crate) fn note_restart(&self) -> Option<Duration> {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let consecutive = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if consecutive > self.policy.max_consecutive_failures {
            self.state.store(FAILED, Ordering::Release);
            return None;
        }
        self.state.store(RESTARTING, Ordering::Release);
        Some(self.policy.backoff(consecutive))
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn set_running(&self) {
        let _ =
            self.state
                .compare_exchange(RESTARTING, RUNNING, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The report debug.Stacks gives.
    pub fn report(&self) -> ActorReport {
        let handling = self.handling.lock().ok().and_then(|h| {
            h.map(|(message, since)| Handling {
                message: message.to_owned(),
                for_ms: since.elapsed().as_millis() as u64,
            })
        });
        ActorReport {
            name: self.name.to_owned(),
            state: self.state(),
            restarts: self.restarts(),
            mailbox: self.mailbox(),
            handling,
        }
    }
}

/// Every actor of the tree, in tree order.
#[derive(Debug, Default)]
pub struct Registry {
    actors: Vec<Arc<ActorStatus>>,
}

impl Registry {
    /// Adds an actor.
    pub fn add(&mut self, status: Arc<ActorStatus>) {
        self.actors.push(status);
    }

    /// Finds an actor by name.
    pub fn find(&self, name: &str) -> Option<&Arc<ActorStatus>> {
        self.actors.iter().find(|a| a.name() == name)
    }

    /// The names of all actors.
    pub fn names(&self) -> Vec<&'static str> {
        self.actors.iter().map(|a| a.name()).collect()
    }

    /// Reports on every actor.
    pub fn report(&self) -> Vec<ActorReport> {
        self.actors.iter().map(|a| a.report()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_restart_and_is_capped() {
        let p = RestartPolicy::default();
        let ms: Vec<u64> = (1..=10).map(|k| p.backoff(k).as_millis() as u64).collect();
        assert_eq!(ms, vec![0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn consecutive_failures_past_the_cap_fail_the_actor() {
        let policy = RestartPolicy {
            max_consecutive_failures: 3,
            ..RestartPolicy::default()
        };
        let s = ActorStatus::new("A", policy);
        assert_eq!(s.note_restart(), Some(Duration::ZERO));
        assert_eq!(s.state(), ActorState::Restarting);
        s.set_running();
        s.note_success();
        assert_eq!(s.note_restart(), Some(Duration::ZERO));
        assert_eq!(s.note_restart(), Some(Duration::from_millis(10)));
        assert_eq!(s.note_restart(), Some(Duration::from_millis(20)));
        assert_eq!(s.note_restart(), None);
        assert_eq!(s.state(), ActorState::Failed);
        assert_eq!(s.restarts(), 5);
    }

    #[test]
    fn tickets_count_queued_messages() {
        let s = ActorStatus::new("A", RestartPolicy::default());
        let t1 = s.ticket();
        let t2 = s.ticket();
        assert_eq!(s.mailbox(), 2);
        drop(t1);
        assert_eq!(s.report().mailbox, 1);
        drop(t2);
        assert_eq!(s.mailbox(), 0);
    }
}
