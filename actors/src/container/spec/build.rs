//! The plan for a new container's init process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, Spec};

use super::hooks::hook_plan;
use super::namespaces::{ns_kind, sysctls};
use super::process::{process_plan, stdio};
use super::refusals::check_unsupported;
use super::rootfs::rootfs;
use super::{invalid, unsupported, Blueprint, FdSource, FdTable, RuntimeHooks, SpecError};
use crate::container::plan::{ContainerPlan, HookPlan, JoinNs, NsKind, PlanKind, SpawnPlan};

/// What [`build_container`] needs besides the spec.
#[derive(Debug, Clone)]
pub struct ContainerContext<'a> {
    /// The bundle directory (relative `root.path` is resolved against it).
    pub bundle: &'a Path,
    /// An empty directory to mount a root of `/` onto (the host's root is
    /// bind-mounted there, since `/` itself cannot be pivoted into).
    pub scratch_root: &'a Path,
    /// The `cgroup.procs` files of the container's v1 cgroups.
    pub cgroup_procs: Vec<PathBuf>,
    /// The container's cgroup v2 directory, entered by `CLONE_INTO_CGROUP`.
    pub cgroup_v2_dir: Option<PathBuf>,
    /// The container's cgroup directories, by the name they get under a
    /// `cgroup` mount (the hierarchy's mount point name: `memory`,
    /// `unified`...); one unnamed entry on a cgroup v2 host.
    pub cgroup_dirs: Vec<(Option<String>, PathBuf)>,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// Wait for a start signal after setup (OCI create/start).
    pub gated: bool,
    /// Bring `lo` up in a new network namespace.
    pub loopback_up: bool,
    /// The OCI state handed to hooks (id, bundle, annotations).
    pub hook_state: Option<oci_spec::runtime::State>,
    /// The caller gives the terminal (else the child allocates one).
    pub caller_terminal: bool,
    /// Descriptors the caller passes through after stdio.
    pub preserve_fds: u32,
}

/// The plan for a new container's init process.
pub fn build_container(spec: &Spec, ctx: &ContainerContext<'_>) -> Result<Blueprint, SpecError> {
    check_unsupported(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "a container needs a process"))?;
    let linux = spec.linux().as_ref();
    let mut fds = FdTable::default();
    let status = fds.add(FdSource::StatusPipe);

    let mut new_namespaces = Vec::new();
    let mut join = Vec::new();
    let mut kinds = HashSet::new();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("linux.namespaces[{i}]");
        let kind = ns_kind(ns.typ());
        if !kinds.insert(kind) {
            return Err(invalid(
                field,
                format!("namespace type {:?} appears twice", ns.typ()),
            ));
        }
        match ns.path() {
            Some(path) => {
                if !path.is_absolute() {
                    return Err(invalid(
                        format!("{field}.path"),
                        format!("{} is not absolute", path.display()),
                    ));
                }
                let fd = fds.add(FdSource::Namespace(kind, path.clone()));
                join.push(JoinNs { kind, fd });
            }
            None if kind == NsKind::User => {
                return Err(unsupported(field, "new user namespaces (uid/gid mappings) are not supported yet; join one by path"));
            }
            None => new_namespaces.push(kind),
        }
    }
    let new_ns = |k: NsKind| new_namespaces.contains(&k);
    let has_ns = |k: NsKind| kinds.contains(&k);
    if !new_ns(NsKind::Mount) {
        return Err(unsupported(
            "linux.namespaces",
            "a container needs a new mount namespace",
        ));
    }
    if let Some(l) = linux {
        if l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        {
            return Err(unsupported(
                "linux.uidMappings",
                "user namespace id mappings are not supported yet",
            ));
        }
    }

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    if (hostname.is_some() || domainname.is_some()) && !has_ns(NsKind::Uts) {
        return Err(invalid(
            "hostname",
            "setting a hostname or domainname needs a uts namespace",
        ));
    }
    let sysctl = sysctls(spec, &kinds)?;

    let rootfs = rootfs(spec, ctx)?;
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
    let (mut process_plan, warnings) =
        process_plan(process, linux.and_then(|l| l.seccomp().as_ref()), stdio)?;
    process_plan.preserved_fds = (0..ctx.preserve_fds)
        .map(|n| fds.add(FdSource::Preserved(n)))
        .collect();
    let start_gate = ctx.gated.then(|| fds.add(FdSource::StartGate));
    let hooks = spec.hooks().as_ref();
    let hook_list = |list: Option<&Vec<Hook>>, field: &str| -> Result<Vec<HookPlan>, SpecError> {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, h)| hook_plan(h, &format!("hooks.{field}[{i}]")))
            .collect()
    };
    let runtime_hooks = RuntimeHooks {
        prestart: hook_list(hooks.and_then(|h| h.prestart().as_ref()), "prestart")?,
        create_runtime: hook_list(
            hooks.and_then(|h| h.create_runtime().as_ref()),
            "createRuntime",
        )?,
        poststart: hook_list(hooks.and_then(|h| h.poststart().as_ref()), "poststart")?,
        poststop: hook_list(hooks.and_then(|h| h.poststop().as_ref()), "poststop")?,
    };
    let runtime_hooks_gate = (!runtime_hooks.prestart.is_empty()
        || !runtime_hooks.create_runtime.is_empty())
    .then(|| fds.add(FdSource::RuntimeHooksGate));
    let new_net = new_ns(NsKind::Net);
    let unshare_cgroup_ns = new_ns(NsKind::Cgroup);
    new_namespaces.retain(|k| *k != NsKind::Cgroup);
    let container = ContainerPlan {
        new_namespaces,
        join,
        cgroup_procs,
        unshare_cgroup_ns,
        rootfs,
        hostname,
        domainname,
        sysctl,
        loopback_up: ctx.loopback_up && new_net,
        create_container_hooks: hook_list(
            hooks.and_then(|h| h.create_container().as_ref()),
            "createContainer",
        )?,
        start_container_hooks: hook_list(
            hooks.and_then(|h| h.start_container().as_ref()),
            "startContainer",
        )?,
        hook_state: ctx.hook_state.clone(),
        runtime_hooks_gate,
        start_gate,
    };
    Ok(Blueprint {
        plan: SpawnPlan {
            kind: PlanKind::Container(Box::new(container)),
            process: process_plan,
            status,
            supervisor_pid: ctx.supervisor_pid,
            clone_into_cgroup,
            caller_parented: false,
        },
        fds: fds.0,
        hooks: runtime_hooks,
        terminal,
        warnings,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::test_support::{ctx, parse};

    #[test]
    fn bad_specs_name_the_field() {
        let base = |extra: &str| {
            format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"/r"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}}{extra}}}"#
            )
        };
        let cases = [
            (base(r#","mounts":[{"destination":"rel","type":"tmpfs"}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].destination: \"rel\" is not absolute"),
            (base(r#","linux":{"namespaces":[{"type":"mount"},{"type":"mount"}]}"#), "linux.namespaces[1]: namespace type Mount appears twice"),
            (base(r#","linux":{"namespaces":[{"type":"pid"}]}"#), "linux.namespaces: a container needs a new mount namespace"),
            (base(r#","hostname":"h","linux":{"namespaces":[{"type":"mount"}]}"#), "hostname: setting a hostname or domainname needs a uts namespace"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"kernel.panic":"1"}}"#), "linux.sysctl.kernel.panic: not a namespaced sysctl; it would change the host"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#), "linux.sysctl.net.ipv4.ip_forward: needs a net namespace"),
            (base(r#","linux":{"namespaces":[{"type":"mount"}],"resources":{"network":{"classID":1}}}"#), "linux.resources.network: network class ids and priorities are not supported"),
            (base(r#","linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}"#), "linux.namespaces[1]: new user namespaces (uid/gid mappings) are not supported yet; join one by path"),
            (base(r#","mounts":[{"destination":"/x","type":"tmpfs","options":["idmap"]}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].options: mount option \"idmap\" is not supported yet"),
            (base(r#","mounts":[{"destination":"/x","type":"bind","source":"/y","options":["tmpcopyup"]}],"linux":{"namespaces":[{"type":"mount"}]}"#), "mounts[0].options: tmpcopyup applies to tmpfs mounts only, not to type \"bind\""),
        ];
        for (json, expected) in cases {
            let err =
                build_container(&parse(&json), &ctx(Path::new("/b"), Path::new("/s"))).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
        let mut spec = parse(&base(r#","linux":{"namespaces":[{"type":"mount"}]}"#));
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_cwd(PathBuf::from("relative"));
        let err = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap_err();
        assert_eq!(err.to_string(), "process.cwd: \"relative\" is not absolute");
    }
}
