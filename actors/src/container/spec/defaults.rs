//! The built-in spec of `sandvisor run` without a bundle, with runc's
//! defaults.

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// The host directory the built-in spec always covers with a fresh tmpfs:
/// where runtimes keep their control sockets.
pub const HIDDEN_RUNTIME_DIR: &str = "/run";

/// An empty, unwritable tmpfs over `destination`.
fn hiding_mount(destination: &str) -> oci_spec::runtime::Mount {
    oci_spec::runtime::MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(
            ["ro", "nosuid", "nodev", "noexec", "mode=755", "size=4k"]
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .unwrap_or_default()
}

/// Hides `dir` (a state root given with `--root`) in a built-in spec,
/// unless a mount of the spec already covers it with something fresh.
pub fn hide_host_dir(spec: &mut Spec, dir: &Path) {
    let covered = spec.mounts().iter().flatten().any(|m| {
        m.destination() != Path::new("/")
            && m.typ().as_deref() == Some("tmpfs")
            && dir.starts_with(m.destination())
    });
    if covered {
        return;
    }
    let Some(dir) = dir.to_str() else {
        return;
    };
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(hiding_mount(dir));
    spec.set_mounts(Some(mounts));
}

/// The built-in spec of `sandvisor run` without a bundle: the host's root
/// read-only, a fresh /proc, a minimal /dev, a tmpfs /tmp, an empty
/// /run, runc's masked and read-only paths, new pid, mount,
/// uts, ipc and net namespaces, hostname = the id, runc's default
/// capabilities, no_new_privs, and `runc spec`'s deny-all device rule
/// (the manager appends runc's allow list; on cgroup v2 an eBPF program
/// enforces them).
pub fn default_spec(id: &str, args: Vec<String>, terminal: bool) -> Spec {
    use oci_spec::runtime::{
        Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
        LinuxNamespaceBuilder, LinuxResourcesBuilder, MountBuilder, ProcessBuilder, RootBuilder,
        SpecBuilder,
    };
    let caps: oci_spec::runtime::Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    // The builder's defaults fill unset sets with oci-spec's own defaults:
    // say empty explicitly.
    let none = oci_spec::runtime::Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(none.clone())
        .ambient(none)
        .build()
        .unwrap_or_default();
    let mount = |dest: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap_or_default()
    };
    let mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]),
        // The host's runtime state (sandvisor's sockets under /run/sandvisor,
        // docker's, containerd's...) must not be reachable: a read-only
        // mount does not stop connect(2).
        mount(
            HIDDEN_RUNTIME_DIR,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=755", "size=65536k"],
        ),
    ];
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .unwrap_or_default()
    })
    .collect::<Vec<_>>();
    let process = ProcessBuilder::default()
        .terminal(terminal)
        .args(args)
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "TERM=xterm".to_string(),
            format!("HOSTNAME={id}"),
        ])
        .cwd("/")
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .unwrap_or_default();
    // As `runc spec`: every device denied, then the manager appends runc's
    // allow list. oci-spec's own default has no rule at all, which a v1
    // devices cgroup reads as "everything its parent allows".
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap_or_default();
    let defaults = oci_spec::runtime::Linux::default();
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("/")
                .readonly(true)
                .build()
                .unwrap_or_default(),
        )
        .hostname(id)
        .mounts(mounts)
        .process(process)
        .linux(
            LinuxBuilder::default()
                .namespaces(namespaces)
                // runc's defaults, as `sandvisor spec` writes them: the
                // kernel knobs and host details a container must not reach.
                .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
                .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
                .resources(
                    LinuxResourcesBuilder::default()
                        .devices(vec![deny_all])
                        .build()
                        .unwrap_or_default(),
                )
                .build()
                .unwrap_or_default(),
        )
        .build()
        .unwrap_or_default()
}
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::container::plan::{NsKind, PlanKind};
    use crate::container::spec::test_support::ctx;
    use crate::container::spec::{build_container, FdSource};

    #[test]
    fn the_default_spec_binds_the_host_root_read_only() {
        let spec = default_spec("box1", vec!["sh".into()], false);
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/run/x/rootfs"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!("not a container")
        };
        assert_eq!(c.rootfs.path, "/run/x/rootfs");
        let first = &c.rootfs.mounts[0];
        assert_eq!(
            (first.destination.as_str(), first.source.as_str()),
            ("/", "/")
        );
        assert_eq!(first.recursive_attr_set, libc::MOUNT_ATTR_RDONLY);
        let dests: Vec<&str> = c
            .rootfs
            .mounts
            .iter()
            .map(|m| m.destination.as_str())
            .collect();
        assert_eq!(
            dests,
            ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"]
        );
        assert!(c.rootfs.masked_paths.contains(&"/proc/keys".to_owned()));
        assert!(c.rootfs.masked_paths.contains(&"/sys/firmware".to_owned()));
        assert!(c.rootfs.readonly_paths.contains(&"/proc/sys".to_owned()));
        let devices: Vec<&str> = c.rootfs.devices.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            devices,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(c.rootfs.dev_symlinks);
        assert_eq!(c.hostname.as_deref(), Some("box1"));
        assert!(c.loopback_up);
        let mut ns = c.new_namespaces.clone();
        ns.sort_by_key(|k| k.proc_name());
        assert_eq!(
            ns,
            [
                NsKind::Ipc,
                NsKind::Mount,
                NsKind::Net,
                NsKind::Pid,
                NsKind::Uts
            ]
        );
        let caps = bp.plan.process.capabilities.unwrap();
        let expected = (1 << 29) | (1 << 5) | (1 << 10); // AUDIT_WRITE, KILL, NET_BIND_SERVICE
        assert_eq!(
            (caps.bounding, caps.effective, caps.permitted, caps.ambient),
            (expected, expected, expected, 0)
        );
        assert!(bp.plan.process.no_new_privileges);
        assert_eq!(bp.fds[0], FdSource::StatusPipe);
        assert!(bp.fds.contains(&FdSource::Stdio(1)));
    }
}
