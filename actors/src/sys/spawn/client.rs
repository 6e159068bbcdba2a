//! The supervisor's side of the spawner socket: sends plans, awaits pids.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use super::{Order, Reply, Request, SpawnFailure, MAX_MESSAGE};
use crate::sys::plan::{ResidentPlan, SpawnPlan};
use crate::sys::socket::{recv_with_fds, register_async, send_with_fds, ControlBuffer};

/// A cloned child.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid in the supervisor's pid namespace.
    pub pid: i32,
    /// A pidfd naming it.
    pub pidfd: OwnedFd,
    /// The exec helper that cloned it, a child of the supervisor that has
    /// exited or is about to: its exit belongs to no process.
    pub helper: Option<i32>,
}

/// Why a spawn failed before the child existed.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The spawner refused or failed (clone3, namespace join).
    #[error("spawner: {step}: {}", nix::errno::Errno::from_raw(*errno).desc().to_lowercase())]
    Failed {
        /// The step.
        step: String,
        /// The errno.
        errno: i32,
    },
    /// The spawner is gone (it died, or the socket broke).
    #[error("spawner unavailable: {0}")]
    Unavailable(String),
    /// The plan could not be encoded or is too large.
    #[error("spawn plan: {0}")]
    Plan(String),
}

impl From<SpawnFailure> for SpawnError {
    fn from(f: SpawnFailure) -> Self {
        SpawnError::Failed {
            step: f.step,
            errno: f.errno,
        }
    }
}

type Waiter = oneshot::Sender<Result<Spawned, SpawnError>>;

/// The connection to the spawner, used from one arbiter thread.
pub struct SpawnerConnection {
    socket: AsyncFd<OwnedFd>,
    next_id: Cell<u64>,
    waiting: RefCell<VecDeque<(u64, Waiter)>>,
    reading: Cell<bool>,
    broken: RefCell<Option<String>>,
}

impl SpawnerConnection {
    /// Wraps the socket returned by `fork_spawner`; must be called on the
    /// arbiter that will use it.
    pub fn new(socket: OwnedFd) -> io::Result<Rc<Self>> {
        Ok(Rc::new(SpawnerConnection {
            socket: register_async(socket)?,
            next_id: Cell::new(1),
            waiting: RefCell::new(VecDeque::new()),
            reading: Cell::new(false),
            broken: RefCell::new(None),
        }))
    }

    /// Spawns `plan` with `fds`; resolves once the child exists.
    pub async fn spawn(
        self: Rc<Self>,
        plan: &SpawnPlan,
        fds: Vec<OwnedFd>,
    ) -> Result<Spawned, SpawnError> {
        self.order(Order::Spawn(Box::new(plan.clone())), fds).await
    }

    /// Clones a resident spawner (main spawner only); resolves once it
    /// exists. It reports on the plan's status pipe once it has joined the
    /// cgroups, and serves the socket sent with it.
    pub async fn spawn_resident(
        self: Rc<Self>,
        plan: &ResidentPlan,
        fds: Vec<OwnedFd>,
    ) -> Result<Spawned, SpawnError> {
        self.order(Order::Resident(plan.clone()), fds).await
    }

    /// Has the main spawner kill process `pid` (behind `pidfd`) when the
    /// supervisor dies; resolves once it holds it.
    pub async fn guard(self: Rc<Self>, pid: i32, pidfd: OwnedFd) -> Result<(), SpawnError> {
        self.order(Order::Guard { pid }, vec![pidfd])
            .await
            .map(drop)
    }

    /// True once the connection has failed (the spawner is gone).
    pub fn is_broken(&self) -> bool {
        self.broken.borrow().is_some()
    }

    async fn order(self: Rc<Self>, order: Order, fds: Vec<OwnedFd>) -> Result<Spawned, SpawnError> {
        if let Some(reason) = self.broken.borrow().as_ref() {
            return Err(SpawnError::Unavailable(reason.clone()));
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let bytes = serde_cbor::to_vec(&Request { id, order })
            .map_err(|e| SpawnError::Plan(e.to_string()))?;
        if bytes.len() > MAX_MESSAGE {
            return Err(SpawnError::Plan(format!(
                "plan is {} bytes, over the limit of {MAX_MESSAGE}",
                bytes.len()
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().push_back((id, tx));
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|fd| fd.as_fd()).collect();
        if let Err(e) = self.send(&bytes, &borrowed).await {
            self.fail(format!("send: {e}"));
        }
        // The spawner has its own copies now (or never will).
        drop(borrowed);
        drop(fds);
        if !self.reading.replace(true) {
            actix_rt::spawn(self.clone().read_replies());
        }
        rx.await.unwrap_or_else(|_| {
            Err(SpawnError::Unavailable(
                "the spawner connection closed".into(),
            ))
        })
    }

    async fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        loop {
            match send_with_fds(
                self.socket.get_ref().as_fd(),
                &[IoSlice::new(bytes)],
                fds,
                true,
            ) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut ready = self.socket.writable().await?;
                    ready.clear_ready();
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_replies(self: Rc<Self>) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut control = ControlBuffer::default();
        while !self.waiting.borrow().is_empty() {
            let mut ready = match self.socket.readable().await {
                Ok(r) => r,
                Err(e) => return self.fail(format!("poll: {e}")),
            };
            let received = match ready
                .try_io(|s| recv_with_fds(s.get_ref().as_fd(), &mut buf, &mut control, true))
            {
                Err(_would_block) => continue,
                Ok(Err(e)) => return self.fail(format!("receive: {e}")),
                Ok(Ok(r)) => r,
            };
            if received.len == 0 && received.fds.is_empty() {
                return self.fail("the spawner exited".into());
            }
            let reply: Reply = match serde_cbor::from_slice(&buf[..received.len]) {
                Ok(r) => r,
                Err(e) => return self.fail(format!("undecodable reply: {e}")),
            };
            let Some((id, waiter)) = self.waiting.borrow_mut().pop_front() else {
                continue;
            };
            let outcome = if reply.id != id {
                Err(SpawnError::Unavailable(format!(
                    "reply {} for request {id}",
                    reply.id
                )))
            } else {
                match (reply.outcome, received.fds.into_iter().next()) {
                    (Ok(cloned), Some(pidfd)) => Ok(Spawned {
                        pid: cloned.pid,
                        pidfd,
                        helper: cloned.helper,
                    }),
                    (Ok(cloned), None) => Err(SpawnError::Unavailable(format!(
                        "no pidfd for pid {}",
                        cloned.pid
                    ))),
                    (Err(failure), _) => Err(failure.into()),
                }
            };
            if let Err(Ok(unclaimed)) = waiter.send(outcome) {
                // Its caller is gone (the manager restarted and answered it
                // `unavailable`, so it will retry): a process nobody knows
                // of must not run.
                let _ = crate::sys::process::pidfd_signal(unclaimed.pidfd.as_fd(), libc::SIGKILL);
            }
        }
        self.reading.set(false);
    }

    fn fail(&self, reason: String) {
        self.reading.set(false);
        self.broken.replace(Some(reason.clone()));
        for (_, waiter) in self.waiting.borrow_mut().drain(..) {
            let _ = waiter.send(Err(SpawnError::Unavailable(reason.clone())));
        }
    }
}
