//! Hooks: the spec's hook entries as plans, and the plan that runs one.

use oci_spec::runtime::Hook;

use super::{invalid, Blueprint, FdSource, FdTable, RuntimeHooks, SpecError};
use crate::container::plan::{HookPlan, PlanKind, ProcessPlan, SpawnPlan, StdioPlan};

/// The plan for a runtime hook: a plain process with the state on stdin.
pub fn build_hook(hook: &HookPlan, supervisor_pid: i32) -> Blueprint {
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);
    let stdio = StdioPlan::Fds {
        stdin: fds.add(FdSource::HookStdin),
        stdout: fds.add(FdSource::SupervisorStderr),
        stderr: fds.add(FdSource::SupervisorStderr),
    };
    Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Hook,
            process: ProcessPlan {
                executable: Some(hook.path.clone()),
                args: if hook.args.is_empty() {
                    vec![hook.path.clone()]
                } else {
                    hook.args.clone()
                },
                env: hook.env.clone(),
                cwd: "/".into(),
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
                umask: None,
                capabilities: None,
                rlimits: Vec::new(),
                no_new_privileges: false,
                oom_score_adj: None,
                stdio,
                preserved_fds: Vec::new(),
                seccomp: None,
            },
            status,
            supervisor_pid,
            clone_into_cgroup: None,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: RuntimeHooks::default(),
        terminal: false,
        warnings: Vec::new(),
    }
}

pub(super) fn hook_plan(h: &Hook, field: &str) -> Result<HookPlan, SpecError> {
    let path = h
        .path()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.path"), "not valid utf-8"))?;
    if !path.starts_with('/') {
        return Err(invalid(
            format!("{field}.path"),
            format!("{path:?} is not absolute"),
        ));
    }
    let timeout_secs = match h.timeout() {
        None => None,
        Some(t) if t > 0 => Some(t as u64),
        Some(t) => {
            return Err(invalid(
                format!("{field}.timeout"),
                format!("{t} is not positive"),
            ))
        }
    };
    Ok(HookPlan {
        path: path.to_owned(),
        args: h.args().clone().unwrap_or_else(|| vec![path.to_owned()]),
        env: h.env().clone().unwrap_or_default(),
        timeout_secs,
    })
}
