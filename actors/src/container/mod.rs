//! Container policy: what a spec means, as a plan a spawned child carries
//! out. No system calls here, but for libseccomp's (and a memfd to export
//! its program) when `seccomp` compiles a profile.

pub mod block_io;
pub mod plan;
pub mod resources;
pub mod seccomp;
pub mod spec;
