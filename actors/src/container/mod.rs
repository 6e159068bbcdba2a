//! Container policy: what a spec means, as a plan a spawned child carries
//! out. No system calls here, but for libseccomp's (and a memfd to export
//! its program) when `seccomp` compiles a profile.

pub mod block_io;
pub mod id;
pub mod resources;
pub mod seccomp;
pub mod spec;

// The plan is what `sys` carries out, so `sys` defines it (`sys` imports
// neither `container` nor `api`); this path to it stays while the modules
// that name it (spec, the ContainerManager) are being split.
pub use crate::sys::plan;
