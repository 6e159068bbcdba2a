//! The descriptors a spawn takes: the caller's, the preserved ones and
//! those the plan's descriptor list names.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;

use super::error::ContainerError;
use crate::container::spec::{Blueprint, FdSource};
use crate::sys::plan::NsKind;

/// Descriptors opened for a spawn, and what the manager keeps.
pub(super) struct Opened {
    pub(super) fds: Vec<OwnedFd>,
    pub(super) status_read: OwnedFd,
    /// Our end of the socket a new pty's master comes back on.
    pub(super) console: Option<OwnedFd>,
    /// Write end of the runtime hooks gate, when there are such hooks.
    pub(super) runtime_gate: Option<OwnedFd>,
    /// Write end of a hook's stdin.
    pub(super) hook_stdin: Option<OwnedFd>,
    /// Write end of the start gate of a create-only init.
    pub(super) start_gate: Option<OwnedFd>,
}

/// The last `count` of a call's descriptors: those it passes through to
/// the process after its stdio (or terminal).
pub(super) fn take_preserved(
    fds: &mut Vec<OwnedFd>,
    count: u32,
    method: &'static str,
) -> Result<Vec<OwnedFd>, ContainerError> {
    let count = count as usize;
    if count > fds.len() {
        return Err(ContainerError::FdCount {
            method,
            expected: count,
            what: "at least the preserved ones",
            got: fds.len(),
        });
    }
    Ok(fds.split_off(fds.len() - count))
}

/// Opens what the blueprint's descriptor list names, taking the caller's
/// descriptors (stdio) from `given`.
pub(super) fn open_fds(
    blueprint: &Blueprint,
    given: &mut Vec<OwnedFd>,
    mut caller_tty: Option<OwnedFd>,
    preserved: Vec<OwnedFd>,
) -> Result<Opened, ContainerError> {
    let mut preserved: Vec<Option<OwnedFd>> = preserved.into_iter().map(Some).collect();
    let mut given = std::mem::take(given).into_iter();
    let mut stdio: Vec<Option<OwnedFd>> = (0..3).map(|_| given.next()).collect();
    let (status_read, status_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::host("create", "status pipe", e.into()))?;
    let mut status_write = Some(status_write);
    let mut console = None;
    let mut runtime_gate = None;
    let mut hook_stdin = None;
    let mut start_gate = None;
    let mut fds = Vec::with_capacity(blueprint.fds.len());
    for source in &blueprint.fds {
        let fd = match source {
            FdSource::StatusPipe => status_write.take().ok_or_else(|| {
                ContainerError::host("use", "status pipe", std::io::Error::other("listed twice"))
            })?,
            FdSource::Stdio(n) => stdio
                .get_mut(usize::from(*n))
                .and_then(Option::take)
                .ok_or_else(|| {
                    ContainerError::host(
                        "use",
                        format!("stdio {n}"),
                        std::io::Error::other("missing"),
                    )
                })?,
            FdSource::Preserved(n) => preserved
                .get_mut(*n as usize)
                .and_then(Option::take)
                .ok_or_else(|| {
                    ContainerError::host(
                        "use",
                        format!("preserved descriptor {n}"),
                        std::io::Error::other("missing"),
                    )
                })?,
            FdSource::TerminalSlave => caller_tty.take().ok_or_else(|| {
                ContainerError::host("use", "terminal", std::io::Error::other("none given"))
            })?,
            FdSource::ConsoleChannel => {
                let (ours, theirs) = nix::sys::socket::socketpair(
                    nix::sys::socket::AddressFamily::Unix,
                    nix::sys::socket::SockType::SeqPacket,
                    None,
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                )
                .map_err(|e| ContainerError::host("create", "console channel", e.into()))?;
                console = Some(ours);
                theirs
            }
            FdSource::Namespace(kind, path) => open(path, OFlag::O_RDONLY, ns_what(*kind))?,
            FdSource::CgroupProcs(path) => open(path, OFlag::O_WRONLY, "open cgroup.procs")?,
            FdSource::CgroupDir(path) => open(
                path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                "open cgroup directory",
            )?,
            FdSource::StartGate => {
                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| ContainerError::host("create", "start gate", e.into()))?;
                start_gate = Some(write);
                read
            }
            FdSource::HookStdin => {
                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| ContainerError::host("create", "hook stdin", e.into()))?;
                hook_stdin = Some(write);
                read
            }
            FdSource::SupervisorStderr => std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| ContainerError::host("duplicate", "stderr", e))?,
            FdSource::RuntimeHooksGate => {
                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| ContainerError::host("create", "runtime hooks gate", e.into()))?;
                runtime_gate = Some(write);
                read
            }
        };
        fds.push(fd);
    }
    Ok(Opened {
        fds,
        status_read,
        console,
        runtime_gate,
        hook_stdin,
        start_gate,
    })
}

fn ns_what(_kind: NsKind) -> &'static str {
    "open namespace"
}

pub(super) fn open(
    path: &Path,
    flags: OFlag,
    what: &'static str,
) -> Result<OwnedFd, ContainerError> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ContainerError::host(what, path, e.into()))
}
