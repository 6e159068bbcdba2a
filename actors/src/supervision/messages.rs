//! The messages every supervised actor takes: method calls, injected
//! faults, and calls to methods whose capability has not landed.

use actix::Message;

use super::mailbox::MailboxTicket;
use crate::api::debug::FaultKind;
use crate::api::Method;
use crate::wire::RpcError;

/// A method call on its way to the owning actor.
pub struct Call<M> {
    msg: M,
    ticket: MailboxTicket,
}

impl<M: Method> Call<M> {
    /// Wraps `msg`; `ticket` counts it in the target's mailbox.
    pub fn new(msg: M, ticket: MailboxTicket) -> Self {
        Call { msg, ticket }
    }

    /// The message and its mailbox ticket.
    pub fn into_parts(self) -> (M, MailboxTicket) {
        (self.msg, self.ticket)
    }
}

impl<M: Method> Message for Call<M> {
    type Result = Result<M::Reply, RpcError>;
}

/// A fault to strike while the actor handles this message.
pub struct Fault {
    /// What to do.
    pub kind: FaultKind,
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
}

impl Fault {
    /// The name debug.Stacks shows while the fault is handled.
    pub fn message_name(&self) -> &'static str {
        match self.kind {
            FaultKind::Panic => "fault.panic",
            FaultKind::Stop => "fault.stop",
            FaultKind::Stall { .. } => "fault.stall",
        }
    }
}

impl Message for Fault {
    type Result = ();
}

/// A call to a method this build does not implement yet.
pub struct Unsupported {
    /// The method name.
    pub method: &'static str,
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
}

impl Message for Unsupported {
    type Result = Result<(), RpcError>;
}
