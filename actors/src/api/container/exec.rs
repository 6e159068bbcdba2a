//! Running a process in a running container.

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use super::is_zero;
use crate::api::{CarriesFds, Fds, Method};

/// `containerManager.ExecuteAsync`: runs a process in a running container,
/// as `runc exec` does: it starts from the container's process (user,
/// capabilities, no_new_privs, seccomp, cwd, environment) and overrides
/// what is given. Answers once the process has exec'd.
///
/// Descriptors: without `terminal`, exactly three (stdin, stdout, stderr);
/// with `terminal`, one (a terminal the caller owns, which becomes the
/// process's controlling terminal) or none (a pty is allocated; its master
/// comes back in the reply, or goes to `console_socket`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecuteAsync {
    /// The container id.
    pub cid: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Environment entries added to the container's (later ones win).
    #[serde(default)]
    pub envv: Vec<String>,
    /// Working directory (default: the container's).
    #[serde(default)]
    pub working_directory: Option<String>,
    /// User id (default: the container's).
    #[serde(default)]
    pub kuid: Option<u32>,
    /// Group id (default: the container's).
    #[serde(default)]
    pub kgid: Option<u32>,
    /// Supplementary groups (default: the container's).
    #[serde(default)]
    pub extra_kgids: Option<Vec<u32>>,
    /// Capability sets, by `CAP_*` name (default: the container's).
    #[serde(default)]
    pub capabilities: Option<ExecCapabilities>,
    /// Override no_new_privs.
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    /// Resource limits (default: the container's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Vec<ExecRlimit>>,
    /// Give the process a terminal.
    #[serde(default)]
    pub terminal: bool,
    /// Where to send an allocated pty master (runc's `--console-socket`).
    #[serde(default)]
    pub console_socket: Option<String>,
    /// Descriptors passed through, as [`StartRoot::preserve_fds`](super::StartRoot::preserve_fds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preserve_fds: u32,
    /// The call's first descriptor is a caller's spawner (a socket to a
    /// process the caller forked as `sys::spawn::fork_caller_spawner`):
    /// the process is cloned by it, as the caller's child, and reaped by
    /// the caller or the subreaper above it, as runc's processes are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub caller_spawner: bool,
    /// The descriptors (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

/// A resource limit of an exec'd process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecRlimit {
    /// The resource, by its `RLIMIT_*` name.
    pub kind: String,
    /// The hard limit.
    pub hard: u64,
    /// The soft limit.
    pub soft: u64,
}

/// Capability sets of an exec'd process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ExecCapabilities {
    /// Bounding set.
    #[serde(default)]
    pub bounding: Vec<String>,
    /// Effective set.
    #[serde(default)]
    pub effective: Vec<String>,
    /// Inheritable set.
    #[serde(default)]
    pub inheritable: Vec<String>,
    /// Permitted set.
    #[serde(default)]
    pub permitted: Vec<String>,
    /// Ambient set.
    #[serde(default)]
    pub ambient: Vec<String>,
}

impl Method for ExecuteAsync {
    const NAME: &'static str = "containerManager.ExecuteAsync";
    type Reply = Executed;
}

/// The reply to [`ExecuteAsync`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executed {
    /// Its pid in the container's pid namespace (what WaitPID and Signal take).
    pub pid: i32,
    /// Its pid in the supervisor's pid namespace.
    pub host_pid: i32,
    /// The allocated pty master, if any.
    #[serde(skip)]
    pub fds: Fds,
}

carries_fds!(ExecuteAsync, Executed);
