//! Host-kernel plumbing behind narrow interfaces: sockets, descriptors,
//! processes, mounts, cgroups (and their v2 device programs), terminals,
//! seccomp, and the plan a spawned child carries out. Policy lives in the
//! actors and in `container`: `sys` imports neither them nor `api`, and
//! gives and takes plain data.

pub mod cgroup;
pub mod cgroup_stats;
pub mod cgroup_writes;
pub mod control_files;
pub mod device_filter;
pub mod hooks;
pub mod mount;
pub mod mountinfo;
pub mod oom_watch;
pub mod pidfd_exit;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod socket;
pub mod spawn;
pub mod tree_copy;
pub mod tty;
pub mod usage_page;
