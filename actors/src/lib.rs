//! The sandvisor supervisor: the actor tree, its supervision, the control
//! socket ingress, and the wire protocol both it and the client speak.

#![deny(unsafe_op_in_unsafe_fn)]
// `MS_*` flags are `c_ulong`, which is `u64` only on 64-bit targets: the
// casts to `u64` are needed for the others.
#![allow(clippy::unnecessary_cast)]

pub mod actors;
pub mod api;
pub mod config;
pub mod container;
pub mod containment;
mod errors;
pub mod logging;
pub mod metrics;
pub mod router;
pub mod supervision;
pub mod sys;
pub mod wire;

pub use actors::boot;
pub use config::{BootConfig, ServerLimits};
