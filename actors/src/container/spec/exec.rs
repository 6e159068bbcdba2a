//! The plan for a process joining a running container.

use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::process::{process_plan, stdio};
use super::{Blueprint, FdSource, FdTable, RuntimeHooks, SpecError};
use crate::container::plan::{ExecPlan, JoinNs, NsKind, PlanKind, SpawnPlan};

/// Where an exec'd process joins its container.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// The container init's namespaces, as /proc/PID/ns paths, excluding pid.
    pub namespaces: Vec<(NsKind, PathBuf)>,
    /// The container init's pid namespace.
    pub pid_namespace: Option<PathBuf>,
    /// The container's v1 cgroups (`cgroup.procs` files).
    pub cgroup_procs: Vec<PathBuf>,
    /// The container's cgroup v2 directory.
    pub cgroup_v2_dir: Option<PathBuf>,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// The container's seccomp profile (exec'd processes get it too).
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The caller gives the terminal (else the child allocates one).
    pub caller_terminal: bool,
    /// Descriptors the caller passes through after stdio.
    pub preserve_fds: u32,
}

/// The plan for a process joining a running container.
pub fn build_exec(process: &Process, ctx: &ExecContext) -> Result<Blueprint, SpecError> {
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);
    let join = NsKind::JOIN_ORDER
        .iter()
        .flat_map(|kind| ctx.namespaces.iter().filter(move |(k, _)| k == kind))
        .map(|(kind, path)| JoinNs {
            kind: *kind,
            fd: fds.add(FdSource::Namespace(*kind, path.clone())),
        })
        .collect();
    let pid_ns = ctx
        .pid_namespace
        .as_ref()
        .map(|p| fds.add(FdSource::Namespace(NsKind::Pid, p.clone())));
    let cgroup_procs = ctx
        .cgroup_procs
        .iter()
        .map(|p| fds.add(FdSource::CgroupProcs(p.clone())))
        .collect();
    let clone_into_cgroup = ctx
        .cgroup_v2_dir
        .as_ref()
        .map(|d| fds.add(FdSource::CgroupDir(d.clone())));
    let terminal = process.terminal().unwrap_or(false);
    let stdio = stdio(process, terminal, ctx.caller_terminal, &mut fds);
    let (mut process_plan, warnings) = process_plan(process, ctx.seccomp.as_ref(), stdio)?;
    process_plan.preserved_fds = (0..ctx.preserve_fds)
        .map(|n| fds.add(FdSource::Preserved(n)))
        .collect();
    Ok(Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Exec(ExecPlan {
                join,
                pid_ns,
                cgroup_procs,
                root: None,
            }),
            process: process_plan,
            status,
            supervisor_pid: ctx.supervisor_pid,
            clone_into_cgroup,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: RuntimeHooks::default(),
        terminal,
        warnings,
    })
}
