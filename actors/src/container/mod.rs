//! Container policy: what a spec means, as a plan a spawned child carries
//! out. No system calls here.

pub mod block_io;
pub mod id;
pub mod plan;
pub mod resources;
pub mod spec;
