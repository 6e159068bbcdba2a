//! The count of an actor's queued messages and the ticket each message
//! holds while it waits. A leaf: the messages (which carry tickets) and the
//! status (which owns the count) both use it without importing each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Messages queued for one actor and not yet taken.
#[derive(Debug, Default)]
pub(super) struct Mailbox(Arc<AtomicU64>);

impl Mailbox {
    /// A ticket for one message about to be queued.
    pub(super) fn ticket(&self) -> MailboxTicket {
        self.0.fetch_add(1, Ordering::Relaxed);
        MailboxTicket(self.0.clone())
    }

    /// Messages queued and not yet taken.
    pub(super) fn queued(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts a message in its actor's mailbox from the moment it is sent
/// until the handler takes it, or until it is dropped unhandled (its caller
/// went away first).
#[derive(Debug)]
pub struct MailboxTicket(Arc<AtomicU64>);

impl Drop for MailboxTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Mailbox;

    #[test]
    fn a_ticket_counts_until_it_is_dropped() {
        let mailbox = Mailbox::default();
        let t1 = mailbox.ticket();
        let t2 = mailbox.ticket();
        assert_eq!(mailbox.queued(), 2);
        drop(t1);
        assert_eq!(mailbox.queued(), 1);
        drop(t2);
        assert_eq!(mailbox.queued(), 0);
    }
}
