//! A subcontainer's spec, sharing its sandbox's namespaces.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::namespaces::ns_kind;

/// A subcontainer's spec: the sandbox's network, IPC and UTS namespaces
/// (those of the root container's init, `root_pid`) and pid and mount
/// namespaces of its own; other namespaces as the spec says.
pub fn subcontainer_spec(spec: &Spec, root_pid: i32) -> Spec {
    use oci_spec::runtime::LinuxNamespace;
    let mut spec = spec.clone();
    let shared = [
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    let own = [LinuxNamespaceType::Pid, LinuxNamespaceType::Mount];
    let mut namespaces: Vec<LinuxNamespace> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| !shared.contains(&ns.typ()) && !own.contains(&ns.typ()))
        .collect();
    for typ in shared {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns.set_path(Some(PathBuf::from(format!(
            "/proc/{root_pid}/ns/{}",
            ns_kind(typ).proc_name()
        ))));
        namespaces.push(ns);
    }
    for typ in own {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        namespaces.push(ns);
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
    // The hostname belongs to the shared UTS namespace.
    spec.set_hostname(None);
    spec.set_domainname(None);
    spec
}
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::container::plan::{NsKind, PlanKind};
    use crate::container::spec::test_support::ctx;
    use crate::container::spec::{build_container, default_spec, FdSource};

    #[test]
    fn subcontainers_share_net_ipc_uts_and_own_pid_and_mount() {
        let spec = default_spec("sub", vec!["sh".into()], false);
        let sub = subcontainer_spec(&spec, 4242);
        assert_eq!(sub.hostname(), &None);
        let bp = build_container(&sub, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        let mut new = c.new_namespaces.clone();
        new.sort_by_key(|k| k.proc_name());
        assert_eq!(new, [NsKind::Mount, NsKind::Pid]);
        let joined: Vec<(NsKind, FdSource)> = c
            .join
            .iter()
            .map(|j| (j.kind, bp.fds[j.fd].clone()))
            .collect();
        assert_eq!(
            joined,
            [
                (
                    NsKind::Net,
                    FdSource::Namespace(NsKind::Net, PathBuf::from("/proc/4242/ns/net"))
                ),
                (
                    NsKind::Ipc,
                    FdSource::Namespace(NsKind::Ipc, PathBuf::from("/proc/4242/ns/ipc"))
                ),
                (
                    NsKind::Uts,
                    FdSource::Namespace(NsKind::Uts, PathBuf::from("/proc/4242/ns/uts"))
                ),
            ]
        );
        assert!(
            !c.loopback_up,
            "the shared namespace's loopback is the root's business"
        );
    }
}
