//! Runtime hooks run by the manager (poststart, poststop, and the ones
//! run while the child waits).

use std::time::Duration;

use actix::{fut, ActorFutureExt, ResponseActFuture, WrapFuture};
use nix::fcntl::OFlag;
use slog::warn;

use super::fds::open_fds;
use super::{ContainerManager, DetachedHooks};
use crate::container::spec;
use crate::sys::hooks::HookError;
use crate::sys::plan::HookPlan;

/// When runtime hooks run.
#[derive(Debug, Clone, Copy)]
pub(super) enum HookPoint {
    Poststart,
    Poststop,
}

impl ContainerManager {
    /// Queues poststart or poststop hooks; their failures are logged, as the
    /// runtime spec asks, and change nothing.
    pub(super) fn run_detached_hooks(&self, cid: &str, point: HookPoint, pid: Option<i32>) {
        let Some(c) = self.containers.get(cid) else {
            return;
        };
        let (hooks, status) = match point {
            HookPoint::Poststart => (
                &c.hooks.poststart,
                oci_spec::runtime::ContainerState::Running,
            ),
            HookPoint::Poststop => (
                &c.hooks.poststop,
                oci_spec::runtime::ContainerState::Stopped,
            ),
        };
        if hooks.is_empty() {
            return;
        }
        let Some(myself) = &self.myself else { return };
        myself.do_send(DetachedHooks {
            cid: cid.to_owned(),
            point,
            hooks: hooks.clone(),
            state: hook_state_json(c.hook_state.clone(), status, pid),
            ticket: self.status.ticket(),
        });
    }

    /// Runs each container's hooks in turn, logging failures.
    pub(super) fn run_all_hooks(
        &mut self,
        mut jobs: Vec<(String, Vec<HookPlan>, Vec<u8>)>,
    ) -> ResponseActFuture<Self, ()> {
        let Some((cid, hooks, state)) = jobs.pop() else {
            return Box::pin(fut::ready(()));
        };
        Box::pin(self.run_hooks(hooks, state).then(move |ran, act, _| {
            if let Err(e) = ran {
                warn!(act.logger, "poststop hook failed"; "cid" => &cid, "error" => %e);
            }
            act.run_all_hooks(jobs)
        }))
    }

    /// Runs runtime hooks one after the other, each spawned through the
    /// spawner (so that the Reaper is the only one waiting for children),
    /// with `state` on its stdin.
    pub(super) fn run_hooks(
        &mut self,
        mut hooks: Vec<HookPlan>,
        state: Vec<u8>,
    ) -> ResponseActFuture<Self, Result<(), HookError>> {
        if hooks.is_empty() {
            return Box::pin(fut::ready(Ok(())));
        }
        let hook = hooks.remove(0);
        let blueprint = spec::build_hook(&hook, self.config.supervisor_pid);
        let mut opened = match open_fds(&blueprint, &mut Vec::new(), None, Vec::new()) {
            Ok(o) => o,
            Err(e) => {
                return Box::pin(fut::ready(Err(HookError::Spawn {
                    path: hook.path,
                    reason: e.to_string(),
                    errno: 0,
                })))
            }
        };
        let stdin = opened.hook_stdin.take();
        let path = hook.path.clone();
        let spawned = self.spawn_process(String::new(), blueprint, opened, false, None);
        Box::pin(spawned.then(move |outcome, act, _| -> ResponseActFuture<Self, Result<(), HookError>> {
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    return Box::pin(fut::ready(Err(HookError::Spawn {
                        path,
                        reason: e.to_string(),
                        errno: 0,
                    })))
                }
            };
            if let Some(stdin) = stdin {
                // The state is far below a pipe's capacity: this never blocks.
                let _ = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                let _ = nix::unistd::write(&stdin, &state);
            }
            let pid = outcome.host_pid;
            let exit = act.exit_waiter(pid);
            let timeout = Duration::from_secs(hook.timeout_secs.unwrap_or(3600));
            Box::pin(async move { tokio::time::timeout(timeout, exit).await }.into_actor(act).then(
                move |waited, act, _| -> ResponseActFuture<Self, Result<(), HookError>> {
                    let result = match waited {
                        Err(_elapsed) => {
                            if let Some(p) = act.processes.get(&pid) {
                                let _ = p.signal(libc::SIGKILL);
                            }
                            Err(HookError::TimedOut {
                                path: hook.path.clone(),
                                secs: hook.timeout_secs.unwrap_or(0),
                            })
                        }
                        Ok(Ok(status)) if status.exit_code() == Some(0) => Ok(()),
                        Ok(Ok(status)) => Err(HookError::Failed {
                            path: hook.path.clone(),
                            status: match (status.exit_code(), status.signal()) {
                                (Some(code), _) => format!("exit status: {code}"),
                                (None, Some(sig)) => format!("killed by signal {sig}"),
                                _ => format!("wait status {}", status.0),
                            },
                        }),
                        Ok(Err(_)) => Err(HookError::Failed {
                            path: hook.path.clone(),
                            status: "lost".into(),
                        }),
                    };
                    act.forget_process(pid);
                    match result {
                        Ok(()) => act.run_hooks(hooks, state),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    }
                },
            ))
        }))
    }
}

/// The JSON state a hook gets.
pub(super) fn hook_state_json(
    state: Option<oci_spec::runtime::State>,
    status: oci_spec::runtime::ContainerState,
    pid: Option<i32>,
) -> Vec<u8> {
    state
        .map(|mut s| {
            s.set_status(status);
            s.set_pid(pid);
            serde_json::to_vec(&s).unwrap_or_default()
        })
        .unwrap_or_default()
}
