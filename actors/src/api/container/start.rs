//! Starting containers: the root, subcontainers, and a held container's
//! start; a subcontainer's creation and destruction.

use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::is_zero;
use crate::api::{CarriesFds, Empty, Fds, Method};

/// `containerManager.StartRoot`: creates and starts the sandbox's root
/// container; answers once its process has exec'd (or with the exact error).
///
/// Descriptors: without a terminal, exactly three (stdin, stdout, stderr);
/// with `process.terminal`, none, and the reply carries the pty master
/// unless `console_socket` is given.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRoot {
    /// The container id.
    pub cid: String,
    /// The OCI runtime spec.
    pub spec: Spec,
    /// The bundle directory: relative `root.path` and bind sources resolve
    /// against it. Absent: the current directory of the supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// A Unix socket to send the pty master to (runc's `--console-socket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_socket: Option<String>,
    /// Create only (runc's `create`): the init is set up and waits before
    /// the startContainer hooks and the exec; the reply comes then, the
    /// container is `created`, and [`Start`] lets it go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Descriptors passed through (runc's `--preserve-fds`): the last this
    /// many of the call's descriptors become the process's 3, 4, ...
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

impl Method for StartRoot {
    const NAME: &'static str = "containerManager.StartRoot";
    type Reply = Started;
}

/// The reply to [`StartRoot`] and `StartSubcontainer`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Started {
    /// The container's init, as a pid of the supervisor's pid namespace.
    pub pid: i32,
    /// The pty master, when the process has a terminal and no console
    /// socket was given.
    #[serde(skip)]
    pub fds: Fds,
}

carries_fds!(StartRoot, Started);

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for StartRoot {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let cid: String = u.arbitrary()?;
        let args: Vec<String> = u.arbitrary()?;
        Ok(StartRoot {
            spec: crate::container::spec::default_spec(&cid, args, u.arbitrary()?),
            cid,
            bundle: u.arbitrary()?,
            console_socket: u.arbitrary()?,
            hold: u.arbitrary()?,
            preserve_fds: 0,
            caller_spawner: false,
            fds: Fds::none(),
        })
    }
}

/// `containerManager.CreateSubcontainer`: reserves a subcontainer id in the
/// sandbox. Descriptors: none, or one terminal that its process will use
/// (when its spec asks for a terminal).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateSubcontainer {
    /// The container id.
    pub cid: String,
    /// The terminal, if any (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

impl Method for CreateSubcontainer {
    const NAME: &'static str = "containerManager.CreateSubcontainer";
    type Reply = Empty;
}

/// `containerManager.StartSubcontainer`: starts a created subcontainer. It
/// shares the sandbox's network, IPC and UTS namespaces and gets its own
/// pid and mount namespaces. Answers once its process has exec'd.
///
/// Descriptors: without a terminal, exactly three (stdin, stdout, stderr);
/// with one, none (the terminal given at create is used, or a pty is
/// allocated and its master comes back in the reply or goes to
/// `console_socket`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSubcontainer {
    /// The container id.
    pub cid: String,
    /// The OCI runtime spec.
    pub spec: Spec,
    /// The bundle directory (relative paths resolve against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Where to send an allocated pty master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_socket: Option<String>,
    /// Create only, as [`StartRoot::hold`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Descriptors passed through (runc's `--preserve-fds`): the last this
    /// many of the call's descriptors become the process's 3, 4, ...
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

impl Method for StartSubcontainer {
    const NAME: &'static str = "containerManager.StartSubcontainer";
    type Reply = Started;
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for StartSubcontainer {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let cid: String = u.arbitrary()?;
        let args: Vec<String> = u.arbitrary()?;
        Ok(StartSubcontainer {
            spec: crate::container::spec::default_spec(&cid, args, u.arbitrary()?),
            cid,
            bundle: u.arbitrary()?,
            console_socket: u.arbitrary()?,
            hold: u.arbitrary()?,
            preserve_fds: 0,
            caller_spawner: false,
            fds: Fds::none(),
        })
    }
}

/// `containerManager.DestroySubcontainer`: kills every process of a
/// subcontainer, reaps them, unmounts and frees everything it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DestroySubcontainer {
    /// The container id.
    pub cid: String,
}

impl Method for DestroySubcontainer {
    const NAME: &'static str = "containerManager.DestroySubcontainer";
    type Reply = Empty;
}

impl CarriesFds for DestroySubcontainer {}

carries_fds!(CreateSubcontainer, StartSubcontainer);

/// `containerManager.Start`: lets a container created with `hold` go on:
/// its startContainer hooks run and its process is exec'd. Answers once it
/// has exec'd (or with the exact error), as StartRoot does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Start {
    /// The container id.
    pub cid: String,
}

impl Method for Start {
    const NAME: &'static str = "containerManager.Start";
    type Reply = Started;
}

impl CarriesFds for Start {}
