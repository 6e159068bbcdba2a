//! sandvisor: a sandbox supervisor for Linux containers.
//!
//! This crate holds the typed, blocking [`client`] for the control socket
//! and the command-line interface. The supervisor itself (actors, wire
//! protocol) lives in `sandvisor-actors`, re-exported here as [`actors`].

pub mod cli;
pub mod client;
pub mod state;

pub use client::{Client, ClientError, PendingCall, Reply};
pub use sandvisor_actors as actors;
pub use sandvisor_actors::api;
pub use sandvisor_actors::wire::{ErrorCode, RpcError};
