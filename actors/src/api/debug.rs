//! `debug.*`: health checks, the actor tree, fault injection.

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use super::{CarriesFds, Empty, Fds, Method};

/// `debug.Ping`: echoes its payload, and any descriptors sent with it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Ping {
    /// Bytes echoed back unchanged.
    #[serde(with = "super::bytes")]
    pub payload: Vec<u8>,
    /// Descriptors echoed back unchanged (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

/// The reply to [`Ping`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingReply {
    /// The request's payload.
    #[serde(with = "super::bytes")]
    pub payload: Vec<u8>,
    /// The request's descriptors.
    #[serde(skip)]
    pub fds: Fds,
}

impl Method for Ping {
    const NAME: &'static str = "debug.Ping";
    type Reply = PingReply;
}

impl CarriesFds for Ping {
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        self.fds.take()
    }

    fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
        self.fds = Fds(fds);
        Ok(())
    }
}

impl CarriesFds for PingReply {
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        self.fds.take()
    }

    fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
        self.fds = Fds(fds);
        Ok(())
    }
}

/// `debug.Stacks`: the actor tree and the supervisor's threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Stacks {}

impl Method for Stacks {
    const NAME: &'static str = "debug.Stacks";
    type Reply = StacksReply;
}

impl CarriesFds for Stacks {}

/// The reply to [`Stacks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StacksReply {
    /// Every actor of the supervised tree, root first.
    pub actors: Vec<ActorReport>,
    /// The supervisor's threads.
    pub threads: Vec<ThreadReport>,
    /// Open control connections.
    pub connections: u64,
    /// Milliseconds since the supervisor booted.
    pub uptime_ms: u64,
    /// Whether debug.InjectFault is enabled.
    pub fault_injection: bool,
}

impl CarriesFds for StacksReply {}

/// One actor in [`StacksReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorReport {
    /// The name debug.InjectFault takes.
    pub name: String,
    /// Its supervision state.
    pub state: ActorState,
    /// Restarts so far.
    pub restarts: u32,
    /// Messages queued and not yet being handled.
    pub mailbox: u64,
    /// The message being handled, if any.
    pub handling: Option<Handling>,
}

/// The supervision state of an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    /// Serving its mailbox.
    Running,
    /// Stopped after a failure and waiting out its back-off.
    Restarting,
    /// Failed too often in a row; answers every call with an error.
    Failed,
}

/// The message an actor is handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handling {
    /// The method or internal message name.
    pub message: String,
    /// How long it has been handled so far.
    pub for_ms: u64,
}

/// One thread of the supervisor process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadReport {
    /// Kernel thread id.
    pub tid: u32,
    /// Thread name (comm).
    pub name: String,
    /// Scheduler state letter from /proc (R, S, D, ...).
    pub state: String,
}

/// `debug.InjectFault`: queue a fault to an actor; it strikes while the
/// actor handles it. Only when booted with `--enable-fault-injection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InjectFault {
    /// An actor name as debug.Stacks reports it.
    pub actor: String,
    /// What to do to it.
    pub kind: FaultKind,
}

impl Method for InjectFault {
    const NAME: &'static str = "debug.InjectFault";
    type Reply = Empty;
}

impl CarriesFds for InjectFault {}

/// The faults that can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FaultKind {
    /// The handler panics.
    Panic,
    /// The actor stops, as if it had returned an error from its loop.
    Stop,
    /// The actor handles nothing else for `ms` milliseconds.
    Stall {
        /// Duration of the stall.
        ms: u64,
    },
}

/// The longest stall that may be injected.
pub const MAX_STALL_MS: u64 = 600_000;
