//! Supervision: every actor of the tree runs under actix's `Supervisor`
//! (restart on stop) and handles each message under a guard that turns a
//! panic into an `unavailable` reply and a restart with back-off. Status
//! lives outside the actors so that debug.Stacks can always report it.

mod guard;
mod mailbox;
mod messages;
mod status;

pub use guard::{
    answer_unsupported, guarded, guarded_reply, on_restarting, on_started, strike, Reply,
    Subsystem, SupervisionError,
};
pub(crate) use guard::{handles, supervised_actor};
pub use mailbox::MailboxTicket;
pub use messages::{Call, Fault, Unsupported};
pub use status::{ActorStatus, Registry, RestartPolicy};
