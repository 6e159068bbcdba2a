//! Waiting for a container's init or one of its processes, and the
//! container's lifecycle state.

use actix::{ActorFutureExt, Context, WrapFuture};
use tokio::sync::oneshot;

use super::error::ContainerError;
use super::ContainerManager;
use crate::api::container::{ContainerRuntimeState, RuntimeState, Wait, WaitPid, WaitStatusReply};
use crate::supervision::Reply;
use crate::sys::process::WaitStatus;
use crate::wire::RpcError;

impl ContainerManager {
    /// Where a container is in the OCI lifecycle.
    pub(super) fn runtime_state(
        &mut self,
        req: ContainerRuntimeState,
        _: &mut Context<Self>,
    ) -> Result<RuntimeState, RpcError> {
        self.apply_exits();
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        Ok(RuntimeState {
            status: c.phase.runtime_status(),
            pid: c.init,
            exit_status: c
                .exit
                .filter(|s| *s != WaitStatus::UNKNOWN)
                .map(|status| status.0),
            oom_killed: c.init_oom_killed,
        })
    }

    pub(super) fn wait(
        &mut self,
        req: Wait,
        _: &mut Context<Self>,
    ) -> Reply<Self, WaitStatusReply> {
        let Some(c) = self.containers.get_mut(&req.cid) else {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        };
        let init = c.init.unwrap_or(0);
        if let Some(status) = c.exit {
            return Reply::Now(status_reply(status, c.init_oom_killed, init).map_err(Into::into));
        }
        let (tx, rx) = oneshot::channel();
        c.waiters.push(tx);
        let cid = req.cid;
        Reply::Later(Box::pin(rx.into_actor(self).map(move |status, act, _| {
            let oom_killed = act.containers.get(&cid).is_some_and(|c| c.init_oom_killed);
            let status = status.map_err(|_| ContainerError::NotFound(cid))?;
            status_reply(status, oom_killed, init).map_err(Into::into)
        })))
    }

    pub(super) fn wait_pid(
        &mut self,
        req: WaitPid,
        _: &mut Context<Self>,
    ) -> Reply<Self, WaitStatusReply> {
        if !self.containers.contains_key(&req.cid) {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        }
        let found = self
            .processes
            .iter()
            .filter(|(_, p)| p.container == req.cid && p.container_pid == req.pid && !p.resident)
            .max_by_key(|(_, p)| p.registered)
            .map(|(host, _)| *host);
        let Some(host) = found else {
            return Reply::Now(Err(ContainerError::NoSuchProcess {
                cid: req.cid,
                pid: req.pid,
            }
            .into()));
        };
        let is_init = self
            .containers
            .get(&req.cid)
            .is_some_and(|c| c.init == Some(host));
        let Some(p) = self.processes.get_mut(&host) else {
            return Reply::Now(Err(ContainerError::NoSuchProcess {
                cid: req.cid,
                pid: req.pid,
            }
            .into()));
        };
        if let Some(status) = p.exit {
            let oom_killed = p.oom_killed;
            // Collected: an exec'd process's status is released (the init's
            // stays with its container).
            if !is_init {
                self.processes.remove(&host);
            }
            return Reply::Now(status_reply(status, oom_killed, host).map_err(Into::into));
        }
        let (tx, rx) = oneshot::channel();
        p.waiters.push(tx);
        let (cid, pid) = (req.cid, req.pid);
        Reply::Later(Box::pin(rx.into_actor(self).map(move |status, act, _| {
            let status = status.map_err(|_| {
                RpcError::from(ContainerError::NoSuchProcess {
                    cid: cid.clone(),
                    pid,
                })
            })?;
            let oom_killed = act.processes.get(&host).is_some_and(|p| p.oom_killed);
            if !is_init {
                act.processes.remove(&host);
            }
            status_reply(status, oom_killed, host).map_err(Into::into)
        })))
    }
}

/// The answer to a wait for host pid `pid`, which ended with `status`.
fn status_reply(
    status: WaitStatus,
    oom_killed: bool,
    pid: i32,
) -> Result<WaitStatusReply, ContainerError> {
    if status == WaitStatus::UNKNOWN {
        return Err(ContainerError::StatusUnknown(pid));
    }
    Ok(WaitStatusReply {
        status: status.0,
        oom_killed,
    })
}
