//! Exec: a new process in a running container, from the container's
//! process with the call's overrides.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Instant;

use actix::{ActorFutureExt, Context};
use slog::debug;

use super::error::ContainerError;
use super::fds::{open_fds, take_preserved, Opened};
use super::registry::Phase;
use super::spawn::take_caller_spawner;
use super::ContainerManager;
use crate::api::container::{ExecCapabilities, ExecRlimit, ExecuteAsync, Executed};
use crate::container::spec::{self, Blueprint, SpecError};
use crate::supervision::Reply;
use crate::sys::plan::NsKind;
use crate::sys::procfs;
use crate::wire::RpcError;

impl ContainerManager {
    pub(super) fn execute_async(
        &mut self,
        mut req: ExecuteAsync,
        _: &mut Context<Self>,
    ) -> Reply<Self, Executed> {
        let started = Instant::now();
        let mut fds = req.fds.take();
        let console_socket = req.console_socket.take();
        let cid = req.cid.clone();
        let caller = match take_caller_spawner(
            &mut fds,
            req.caller_spawner,
            <ExecuteAsync as crate::api::Method>::NAME,
        ) {
            Ok(caller) => caller,
            Err(e) => return Reply::Now(Err(e.into())),
        };
        match self.prepare_exec(req, fds) {
            Err(e) => Reply::Now(Err(e.into())),
            Ok((blueprint, opened)) => {
                let spawned = self.spawn_process(cid.clone(), blueprint, opened, false, caller);
                Reply::Later(Box::pin(spawned.map(move |outcome, act, _| {
                    let outcome = outcome?;
                    act.config.instruments.observe_exec(started.elapsed());
                    debug!(act.logger, "process started"; "cid" => &cid, "pid" => outcome.container_pid, "host_pid" => outcome.host_pid);
                    Ok(Executed {
                        pid: outcome.container_pid,
                        host_pid: outcome.host_pid,
                        fds: act.hand_over_master(outcome.tty_master, console_socket),
                    })
                }).map(|r: Result<Executed, ContainerError>, _, _| r.map_err(RpcError::from))))
            }
        }
    }

    /// The exec'd process's spec: the container's process, overridden.
    fn prepare_exec(
        &mut self,
        req: ExecuteAsync,
        mut fds: Vec<OwnedFd>,
    ) -> Result<(Blueprint, Opened), ContainerError> {
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        if c.phase != Phase::Running {
            return Err(ContainerError::NotRunning(req.cid.clone()));
        }
        let init = c
            .init
            .ok_or_else(|| ContainerError::NotRunning(req.cid.clone()))?;
        let spec = c
            .spec
            .as_deref()
            .ok_or_else(|| ContainerError::NotRunning(req.cid.clone()))?;
        let preserved = take_preserved(
            &mut fds,
            req.preserve_fds,
            <ExecuteAsync as crate::api::Method>::NAME,
        )?;
        let expected = match (req.terminal, fds.len()) {
            (true, 0 | 1) => fds.len(),
            (true, _) => 1,
            (false, _) => 3,
        };
        if fds.len() != expected {
            return Err(ContainerError::FdCount {
                method: <ExecuteAsync as crate::api::Method>::NAME,
                expected: expected + preserved.len(),
                what: if req.terminal {
                    "a terminal, or none to allocate one, then the preserved ones"
                } else {
                    "stdin, stdout, stderr, then the preserved ones"
                },
                got: fds.len() + preserved.len(),
            });
        }
        let caller_tty = if req.terminal { fds.pop() } else { None };
        let process = exec_process(spec, &req)?;
        let init_pid = init.to_string();
        let mut namespaces = Vec::new();
        let mut pid_namespace = None;
        for kind in [
            NsKind::Cgroup,
            NsKind::Ipc,
            NsKind::Uts,
            NsKind::Net,
            NsKind::Mount,
            NsKind::Pid,
        ] {
            let theirs = procfs::namespace_inode(&init_pid, kind.proc_name());
            let ours = procfs::namespace_inode("self", kind.proc_name());
            match (theirs, ours) {
                (Ok(t), Ok(o)) if t == o => {}
                (Ok(_), _) => {
                    let path = procfs::namespace_path(&init_pid, kind.proc_name());
                    if kind == NsKind::Pid {
                        pid_namespace = Some(path);
                    } else {
                        namespaces.push((kind, path));
                    }
                }
                (Err(_), _) => return Err(ContainerError::NotRunning(req.cid.clone())),
            }
        }
        let ctx = spec::ExecContext {
            namespaces,
            pid_namespace,
            cgroup_procs: c
                .cgroup
                .as_ref()
                .map(|cg| cg.v1_procs_files())
                .unwrap_or_default(),
            cgroup_v2_dir: c.cgroup.as_ref().and_then(|cg| cg.unified.clone()),
            supervisor_pid: self.config.supervisor_pid,
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
            caller_terminal: caller_tty.is_some(),
            preserve_fds: req.preserve_fds,
        };
        let blueprint = spec::build_exec(&process, &ctx)?;
        let opened = open_fds(&blueprint, &mut fds, caller_tty, preserved)?;
        Ok((blueprint, opened))
    }
}

/// The container's process with an exec's overrides, as runc exec builds it.
fn exec_process(
    spec: &oci_spec::runtime::Spec,
    req: &ExecuteAsync,
) -> Result<oci_spec::runtime::Process, ContainerError> {
    let mut process = spec.process().clone().unwrap_or_default();
    if req.argv.is_empty() || req.argv[0].is_empty() {
        return Err(SpecError::Invalid {
            field: "argv".into(),
            detail: "must name a program".into(),
        }
        .into());
    }
    process.set_args(Some(req.argv.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &req.envv {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &req.working_directory {
        process.set_cwd(PathBuf::from(cwd));
    }
    let mut user = process.user().clone();
    if let Some(uid) = req.kuid {
        user.set_uid(uid);
    }
    if let Some(gid) = req.kgid {
        user.set_gid(gid);
    }
    if let Some(gids) = &req.extra_kgids {
        user.set_additional_gids(Some(gids.clone()));
    }
    process.set_user(user);
    if let Some(caps) = &req.capabilities {
        process.set_capabilities(Some(exec_capabilities(caps)?));
    }
    if let Some(nnp) = req.no_new_privileges {
        process.set_no_new_privileges(Some(nnp));
    }
    if let Some(rlimits) = &req.rlimits {
        process.set_rlimits(Some(
            rlimits.iter().map(exec_rlimit).collect::<Result<_, _>>()?,
        ));
    }
    process.set_terminal(Some(req.terminal));
    process.set_console_size(None);
    Ok(process)
}

fn exec_rlimit(r: &ExecRlimit) -> Result<oci_spec::runtime::PosixRlimit, ContainerError> {
    let kind = serde_cbor::value::from_value::<oci_spec::runtime::PosixRlimitType>(
        serde_cbor::Value::Text(r.kind.clone()),
    )
    .map_err(|_| {
        ContainerError::Spec(SpecError::Invalid {
            field: "rlimits".into(),
            detail: format!("unknown resource {:?}", r.kind),
        })
    })?;
    oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(kind)
        .hard(r.hard)
        .soft(r.soft)
        .build()
        .map_err(|e| {
            ContainerError::Spec(SpecError::Invalid {
                field: "rlimits".into(),
                detail: e.to_string(),
            })
        })
}

fn exec_capabilities(
    caps: &ExecCapabilities,
) -> Result<oci_spec::runtime::LinuxCapabilities, ContainerError> {
    let set = |names: &[String],
               field: &str|
     -> Result<oci_spec::runtime::Capabilities, ContainerError> {
        names
            .iter()
            .map(|n| {
                serde_cbor::value::from_value::<oci_spec::runtime::Capability>(
                    serde_cbor::Value::Text(n.clone()),
                )
                .map_err(|_| {
                    ContainerError::Spec(SpecError::Invalid {
                        field: format!("capabilities.{field}"),
                        detail: format!("unknown capability {n:?}"),
                    })
                })
            })
            .collect()
    };
    let mut out = oci_spec::runtime::LinuxCapabilities::default();
    out.set_bounding(Some(set(&caps.bounding, "bounding")?));
    out.set_effective(Some(set(&caps.effective, "effective")?));
    out.set_inheritable(Some(set(&caps.inheritable, "inheritable")?));
    out.set_permitted(Some(set(&caps.permitted, "permitted")?));
    out.set_ambient(Some(set(&caps.ambient, "ambient")?));
    Ok(out)
}
