//! Starting a resident spawner for a container: the supervisor's side.
//!
//! A process that writes itself into a cgroup v1 `cgroup.procs` takes the
//! kernel's cgroup threadgroup lock for writing, which waits for an RCU
//! grace period when the lock is in its fast mode (5 to 20 ms on a small
//! VM). A process cloned by a parent that already lives in the cgroups is
//! born there and takes no such lock. So each container gets a resident
//! spawner that joins its cgroups once; its init and every process exec'd
//! into it are cloned by the resident.

use std::path::PathBuf;
use std::rc::Rc;

use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use thiserror::Error;

use super::reports::ReportReader;
use super::{SpawnError, Spawned, SpawnerConnection};
use crate::sys::plan::{ChildFailure, ChildReport, ResidentPlan};

/// Why a resident spawner could not be started.
#[derive(Debug, Error)]
pub enum ResidentError {
    /// A descriptor for it could not be made or opened.
    #[error("{what}: {source}")]
    Host {
        /// What was being done, with the path.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The main spawner could not clone it.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// It could not join the cgroups; it has exited.
    #[error("resident spawner: {step} {path}: {message}", step = .0.step, path = .0.path, message = .0.message)]
    Setup(ChildFailure),
}

/// A resident spawner, ready to serve.
pub struct Resident {
    /// Its pid and pidfd (a child of the supervisor, as every spawn is).
    pub process: Spawned,
    /// Its request socket.
    pub connection: Rc<SpawnerConnection>,
}

/// Asks the main spawner for a resident in the cgroups whose `cgroup.procs`
/// files are `procs`, and waits until it has joined them. A resident that
/// fails exits by itself; the Reaper collects it like any orphan.
pub async fn start(
    spawner: Rc<SpawnerConnection>,
    procs: &[PathBuf],
    supervisor_pid: i32,
) -> Result<Resident, ResidentError> {
    let host = |what: String| {
        move |e: nix::Error| ResidentError::Host {
            what,
            source: e.into(),
        }
    };
    let mut fds = Vec::with_capacity(procs.len() + 2);
    for path in procs {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(host(format!("open {}", path.display())))?;
        fds.push(fd);
    }
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(host("create the resident's socket".into()))?;
    let (status_read, status_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(host("create a status pipe".into()))?;
    let plan = ResidentPlan {
        cgroup_procs: (0..procs.len()).collect(),
        socket: procs.len(),
        status: procs.len() + 1,
        supervisor_pid,
    };
    fds.push(theirs);
    fds.push(status_write);
    let mut reader = ReportReader::new(status_read).map_err(|e| ResidentError::Host {
        what: "watch the resident's status pipe".into(),
        source: e,
    })?;
    let process = spawner.spawn_resident(&plan, fds).await?;
    let pid = process.pid;
    loop {
        let (next, reports, ended) =
            reader.next_batch().await.map_err(|e| ResidentError::Host {
                what: format!("read the status pipe of resident {pid}"),
                source: e,
            })?;
        reader = next;
        for report in reports {
            match report {
                ChildReport::Ready => {
                    let connection =
                        SpawnerConnection::new(ours).map_err(|e| ResidentError::Host {
                            what: format!("watch the socket of resident {pid}"),
                            source: e,
                        })?;
                    return Ok(Resident {
                        process,
                        connection,
                    });
                }
                ChildReport::Failed(f) => return Err(ResidentError::Setup(f)),
                ChildReport::Pid(_) | ChildReport::RuntimeHooks => {}
            }
        }
        if ended {
            return Err(ResidentError::Host {
                what: format!("start resident {pid}"),
                source: std::io::Error::other("it exited without a report"),
            });
        }
    }
}
