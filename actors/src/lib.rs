//! The sandvisor supervisor: the actor tree, its supervision, the control
//! socket ingress, and the wire protocol both it and the client speak.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod actors;
pub mod api;
pub mod config;
mod errors;
pub mod logging;
pub mod router;
pub mod supervision;
pub mod sys;
pub mod wire;

pub use actors::boot;
pub use config::{BootConfig, ServerLimits};
