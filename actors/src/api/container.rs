//! `containerManager.*`: containers, exec, wait, signals, processes.
//!
//! Argument shapes follow gVisor's (`runsc/boot/controller.go`) in
//! snake_case; descriptors travel in the frame, in the documented order.

use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::{CarriesFds, Fds, Method};

macro_rules! carries_fds {
    ($($ty:ty),+) => {
        $(
            impl CarriesFds for $ty {
                fn take_fds(&mut self) -> Vec<OwnedFd> {
                    self.fds.take()
                }

                fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
                    self.fds = Fds(fds);
                    Ok(())
                }
            }
        )+
    };
}

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

/// `containerManager.Wait`: waits for a container's init to exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Wait {
    /// The container id.
    pub cid: String,
}

impl Method for Wait {
    const NAME: &'static str = "containerManager.Wait";
    type Reply = WaitStatusReply;
}

impl CarriesFds for Wait {}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStatusReply {
    /// The Linux wait status (`code << 8` for an exit; the signal, `| 0x80`
    /// for a core dump, for a kill), as gVisor returns it.
    pub status: u32,
}

impl CarriesFds for WaitStatusReply {}

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
            fds: Fds::none(),
        })
    }
}

/// `containerManager.Signal`: sends a signal, in one of gVisor's modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Signal {
    /// The container id.
    pub cid: String,
    /// The signal number, 1 to 64.
    pub signo: i32,
    /// A pid in the container's pid namespace; 0 means the container's init.
    #[serde(default)]
    pub pid: i32,
    /// Who receives it.
    #[serde(default)]
    pub mode: SignalMode,
}

/// Who receives a signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SignalMode {
    /// The process `pid` (0: the init).
    #[default]
    Process,
    /// Every process of the container (`pid` must be 0).
    AllProcesses,
    /// The foreground process group of the terminal `pid` (0: the init) has.
    ForegroundProcessGroup,
    /// The process group of `pid` (0: the init).
    ProcessGroup,
}

impl Method for Signal {
    const NAME: &'static str = "containerManager.Signal";
    type Reply = super::Empty;
}

impl CarriesFds for Signal {}
