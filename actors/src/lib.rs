//! The sandvisor supervisor: the actor tree, its supervision, the control
//! socket ingress, and the wire protocol both it and the client speak.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod api;
pub mod wire;
