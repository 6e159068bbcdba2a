//! Removing containers: a subcontainer destroyed, a failed start
//! discarded, and every container at shutdown.

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use slog::{info, warn};
use tokio::sync::oneshot;

use super::error::ContainerError;
use super::hooks::{hook_state_json, HookPoint};
use super::resident::stop_spare;
use super::ContainerManager;
use crate::api::container::DestroySubcontainer;
use crate::api::Empty;
use crate::supervision::Reply;

impl ContainerManager {
    pub(super) fn destroy_subcontainer(
        &mut self,
        req: DestroySubcontainer,
        _: &mut Context<Self>,
    ) -> Reply<Self, Empty> {
        let Some(c) = self.containers.get(&req.cid) else {
            return Reply::Now(Err(ContainerError::NotFound(req.cid).into()));
        };
        if c.root {
            return Reply::Now(Err(ContainerError::DestroyRoot(req.cid).into()));
        }
        let exits = self.kill_container(&req.cid);
        let cid = req.cid;
        let all = async move {
            for exit in exits {
                let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
            }
        };
        Reply::Later(Box::pin(all.into_actor(self).map(move |(), act, _| {
            act.apply_exits();
            act.discard(&cid);
            act.processes.retain(|_, p| p.container != cid);
            info!(act.logger, "container destroyed"; "cid" => &cid);
            Ok(Empty {})
        })))
    }

    /// Removes everything a container had: kills what runs, removes its
    /// cgroups and state directory, forgets it.
    pub(super) fn discard(&mut self, cid: &str) {
        self.run_detached_hooks(cid, HookPoint::Poststop, None);
        self.retire_resident(cid);
        self.config.contained.remove_container(cid);
        let Some(c) = self.containers.remove(cid) else {
            return;
        };
        if let Some(pid) = c.init {
            if let Some(p) = self.processes.get(&pid) {
                if p.exit.is_none() {
                    let _ = p.signal(libc::SIGKILL);
                }
            }
        }
        if let Some(cgroup) = &c.cgroup {
            if let Err(e) = cgroup.remove(Duration::from_millis(200)) {
                warn!(self.logger, "cannot remove cgroup"; "cid" => cid, "error" => %e);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&c.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(self.logger, "cannot remove state directory"; "cid" => cid, "error" => %e);
            }
        }
    }

    /// Kills every container and waits (at most `patience`) for them to be
    /// reaped, then removes what they had.
    pub fn teardown(&mut self, ctx: &mut Context<Self>, done: oneshot::Sender<()>) {
        let mut exits = Vec::new();
        let spare = self.spare.take();
        if let Some(p) = self.prewarmed.take() {
            self.kill_resident_process(p.link.pid);
            exits.push(self.exit_waiter(p.link.pid));
            self.unused_cgroups.push(p.cgroup);
        }
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        for cid in &ids {
            let pids: Vec<i32> = self
                .processes
                .iter()
                .filter(|(_, p)| &p.container == cid && p.exit.is_none())
                .map(|(pid, _)| *pid)
                .collect();
            for pid in pids {
                if let Some(p) = self.processes.get(&pid) {
                    let _ = p.signal(libc::SIGKILL);
                }
                exits.push(self.exit_waiter(pid));
            }
            self.thaw_killed(cid);
        }
        let all = async move {
            for exit in exits {
                let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
            }
            match spare {
                Some(spare) => Some(stop_spare(spare).await),
                None => None,
            }
        };
        ctx.spawn(all.into_actor(self).then(move |spare_cgroup, act, _| {
            act.apply_exits();
            act.unused_cgroups.extend(spare_cgroup);
            // Poststop hooks run before the supervisor exits, not detached.
            let mut poststop = Vec::new();
            for cid in &ids {
                if let Some(c) = act.containers.get_mut(cid) {
                    let hooks = std::mem::take(&mut c.hooks.poststop);
                    if !hooks.is_empty() {
                        let state = hook_state_json(
                            c.hook_state.clone(),
                            oci_spec::runtime::ContainerState::Stopped,
                            None,
                        );
                        poststop.push((cid.clone(), hooks, state));
                    }
                }
            }
            for cid in &ids {
                act.discard(cid);
            }
            for cgroup in std::mem::take(&mut act.unused_cgroups) {
                if let Err(e) = cgroup.remove(Duration::from_millis(200)) {
                    warn!(act.logger, "cannot remove an unused cgroup"; "error" => %e);
                }
            }
            let _ = std::fs::remove_dir(&act.config.state_dir);
            // The sandbox's own cgroup, parent of its containers'.
            for h in &act.hierarchies {
                let _ = std::fs::remove_dir(h.mount.join(&act.config.cgroup_parent));
            }
            act.run_all_hooks(poststop).map(move |(), _, _| {
                let _ = done.send(());
            })
        }));
    }
}
