//! Namespaces and the namespaced sysctls.

use std::collections::HashSet;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{invalid, SpecError};
use crate::container::plan::NsKind;

pub(super) fn ns_kind(t: LinuxNamespaceType) -> NsKind {
    match t {
        LinuxNamespaceType::Mount => NsKind::Mount,
        LinuxNamespaceType::Cgroup => NsKind::Cgroup,
        LinuxNamespaceType::Uts => NsKind::Uts,
        LinuxNamespaceType::Ipc => NsKind::Ipc,
        LinuxNamespaceType::User => NsKind::User,
        LinuxNamespaceType::Pid => NsKind::Pid,
        LinuxNamespaceType::Network => NsKind::Net,
        LinuxNamespaceType::Time => NsKind::Time,
    }
}

/// Namespaced sysctls only, each in a namespace the container has, as runc
/// checks them.
pub(super) fn sysctls(
    spec: &Spec,
    kinds: &HashSet<NsKind>,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut out: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.sort();
    for (key, _) in &out {
        let field = format!("linux.sysctl.{key}");
        if key.contains("..") || key.contains('/') || key.is_empty() {
            return Err(invalid(field, "not a sysctl name"));
        }
        let needs = if matches!(
            key.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || key.starts_with("fs.mqueue.")
        {
            NsKind::Ipc
        } else if key.starts_with("net.") {
            NsKind::Net
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            return Err(invalid(
                field,
                "set the hostname with the hostname field instead",
            ));
        } else {
            return Err(invalid(
                field,
                "not a namespaced sysctl; it would change the host",
            ));
        };
        if !kinds.contains(&needs) {
            return Err(invalid(
                field,
                format!("needs a {} namespace", needs.proc_name()),
            ));
        }
    }
    Ok(out)
}

/// The namespaces a container may have new (a new user namespace is
/// refused: see [`build_container`](super::build_container)), for `sandvisor features`.
pub const NEW_NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Uts,
];
#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::container::plan::{JoinNs, PlanKind};
    use crate::container::spec::test_support::{ctx, parse};
    use crate::container::spec::{build_container, known_capabilities, FdSource};

    #[test]
    fn the_new_namespaces_advertised_are_accepted_and_user_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        for kind in NEW_NAMESPACES {
            let kind = serde_json::to_value(kind).unwrap();
            let kind = kind.as_str().unwrap();
            let namespaces = if kind == "mount" {
                r#"{"type":"mount"}"#.to_owned()
            } else {
                format!(r#"{{"type":"mount"}},{{"type":"{kind}"}}"#)
            };
            let json = format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"/r"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},"linux":{{"namespaces":[{namespaces}]}}}}"#
            );
            let spec = parse(&json);
            let built = build_container(&spec, &ctx(dir.path(), scratch.path()));
            assert!(built.is_ok(), "{kind}: {:?}", built.err());
        }
        let user = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}}"#,
        );
        assert!(build_container(&user, &ctx(dir.path(), scratch.path())).is_err());
        assert!(known_capabilities().contains(&"CAP_SYS_ADMIN".to_owned()));
    }

    #[test]
    fn namespaces_given_by_path_are_joined() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"}]}}"#,
        );
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        assert_eq!(c.new_namespaces, [NsKind::Mount]);
        assert_eq!(
            c.join,
            [JoinNs {
                kind: NsKind::Net,
                fd: 1
            }]
        );
        assert_eq!(
            bp.fds[1],
            FdSource::Namespace(NsKind::Net, PathBuf::from("/proc/1/ns/net"))
        );
        assert!(!c.loopback_up, "lo belongs to the joined namespace");
    }
}
