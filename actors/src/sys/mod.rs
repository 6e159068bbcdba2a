//! Host-kernel plumbing behind narrow interfaces: sockets, descriptors,
//! process facts. Policy lives in the actors.

pub mod process;
pub mod socket;
