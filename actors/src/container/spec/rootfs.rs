//! The root filesystem: the root, its propagation, mounts (cgroup mounts
//! included), devices and the masked and read-only paths.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use super::devices::{default_devices, device_plan};
use super::{invalid, unsupported, ContainerContext, SpecError};
use crate::container::plan::{DevicePlan, MountPlan, RootfsPlan};

pub(super) fn rootfs(spec: &Spec, ctx: &ContainerContext<'_>) -> Result<RootfsPlan, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        ctx.bundle.join(root.path())
    };
    let readonly = root.readonly().unwrap_or(false);
    let mut mounts = Vec::new();
    let path = if path == Path::new("/") {
        // The host's root: bind it (recursively, read-only if asked) onto
        // the scratch directory and pivot into that.
        mounts.push(MountPlan {
            destination: "/".into(),
            source: "/".into(),
            fstype: String::new(),
            flags: (libc::MS_BIND | libc::MS_REC) as u64,
            data: String::new(),
            propagation: 0,
            recursive_attr_set: if readonly { libc::MOUNT_ATTR_RDONLY } else { 0 },
            recursive_attr_clear: 0,
            copy_up: false,
        });
        ctx.scratch_root.to_path_buf()
    } else {
        path
    };
    let path = path
        .to_str()
        .ok_or_else(|| invalid("root.path", "not valid utf-8"))?
        .to_owned();
    let propagation = match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => (libc::MS_SLAVE | libc::MS_REC) as u64,
        Some(p) => propagation_flags(p).ok_or_else(|| {
            invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            )
        })?,
    };
    let mut dev_is_tmpfs = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let plan = mount_plan(m, &format!("mounts[{i}]"), ctx.bundle)?;
        if plan.destination == "/dev" && plan.fstype == "tmpfs" {
            dev_is_tmpfs = true;
        }
        if plan.fstype == "cgroup" || plan.fstype == "cgroup2" {
            mounts.extend(cgroup_mounts(&plan, &ctx.cgroup_dirs));
        } else {
            mounts.push(plan);
        }
    }
    let mut devices = Vec::new();
    if dev_is_tmpfs {
        devices.extend(default_devices());
    }
    for (i, d) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let plan = device_plan(d, &format!("linux.devices[{i}]"))?;
        devices.retain(|existing: &DevicePlan| existing.path != plan.path);
        devices.push(plan);
    }
    let paths = |list: Option<&Vec<String>>, field: &str| -> Result<Vec<String>, SpecError> {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| {
                if p.starts_with('/') {
                    Ok(p.clone())
                } else {
                    Err(invalid(
                        format!("linux.{field}[{i}]"),
                        format!("{p:?} is not absolute"),
                    ))
                }
            })
            .collect()
    };
    let linux = spec.linux().as_ref();
    Ok(RootfsPlan {
        path,
        readonly,
        propagation,
        mounts,
        devices,
        dev_symlinks: dev_is_tmpfs,
        masked_paths: paths(linux.and_then(|l| l.masked_paths().as_ref()), "maskedPaths")?,
        readonly_paths: paths(
            linux.and_then(|l| l.readonly_paths().as_ref()),
            "readonlyPaths",
        )?,
        pivot_root: true,
    })
}

fn propagation_flags(name: &str) -> Option<u64> {
    let flags = match name {
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    };
    Some(flags as u64)
}

/// The mount options this runtime gives a meaning (any other is passed to
/// the filesystem as data), for `sandvisor features`.
pub const KNOWN_MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// What one mount option does.
enum MountOption {
    Set(u64),
    Clear(u64),
    Propagation(u64),
    RecursiveSet(u64),
    RecursiveClear(u64),
    /// `tmpcopyup`: a tmpfs filled with what it covers.
    CopyUp,
    Data,
}

fn mount_option(name: &str) -> MountOption {
    use MountOption::*;
    let ms = |f: libc::c_ulong| f as u64;
    match name {
        "ro" => Set(ms(libc::MS_RDONLY)),
        "rw" => Clear(ms(libc::MS_RDONLY)),
        "nosuid" => Set(ms(libc::MS_NOSUID)),
        "suid" => Clear(ms(libc::MS_NOSUID)),
        "nodev" => Set(ms(libc::MS_NODEV)),
        "dev" => Clear(ms(libc::MS_NODEV)),
        "noexec" => Set(ms(libc::MS_NOEXEC)),
        "exec" => Clear(ms(libc::MS_NOEXEC)),
        "sync" => Set(ms(libc::MS_SYNCHRONOUS)),
        "async" => Clear(ms(libc::MS_SYNCHRONOUS)),
        "dirsync" => Set(ms(libc::MS_DIRSYNC)),
        "remount" => Set(ms(libc::MS_REMOUNT)),
        "mand" => Set(ms(libc::MS_MANDLOCK)),
        "nomand" => Clear(ms(libc::MS_MANDLOCK)),
        "atime" => Clear(ms(libc::MS_NOATIME)),
        "noatime" => Set(ms(libc::MS_NOATIME)),
        "diratime" => Clear(ms(libc::MS_NODIRATIME)),
        "nodiratime" => Set(ms(libc::MS_NODIRATIME)),
        "bind" => Set(ms(libc::MS_BIND)),
        "rbind" => Set(ms(libc::MS_BIND | libc::MS_REC)),
        "relatime" => Set(ms(libc::MS_RELATIME)),
        "norelatime" => Clear(ms(libc::MS_RELATIME)),
        "strictatime" => Set(ms(libc::MS_STRICTATIME)),
        "nostrictatime" => Clear(ms(libc::MS_STRICTATIME)),
        "silent" => Set(ms(libc::MS_SILENT)),
        "loud" => Clear(ms(libc::MS_SILENT)),
        "rro" => RecursiveSet(libc::MOUNT_ATTR_RDONLY),
        "rrw" => RecursiveClear(libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => RecursiveSet(libc::MOUNT_ATTR_NOSUID),
        "rsuid" => RecursiveClear(libc::MOUNT_ATTR_NOSUID),
        "rnodev" => RecursiveSet(libc::MOUNT_ATTR_NODEV),
        "rdev" => RecursiveClear(libc::MOUNT_ATTR_NODEV),
        "rnoexec" => RecursiveSet(libc::MOUNT_ATTR_NOEXEC),
        "rexec" => RecursiveClear(libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecursiveSet(libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecursiveClear(libc::MOUNT_ATTR_NODIRATIME),
        "rnoatime" => RecursiveSet(libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveSet(libc::MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => RecursiveSet(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecursiveClear(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "tmpcopyup" => CopyUp,
        other => match propagation_flags(other) {
            Some(f) => Propagation(f),
            None => Data,
        },
    }
}

fn mount_plan(m: &Mount, field: &str, bundle: &Path) -> Result<MountPlan, SpecError> {
    let destination = m
        .destination()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.destination"), "not valid utf-8"))?;
    if !destination.starts_with('/') {
        return Err(invalid(
            format!("{field}.destination"),
            format!("{destination:?} is not absolute"),
        ));
    }
    if destination.split('/').any(|c| c == "..") {
        return Err(invalid(
            format!("{field}.destination"),
            format!("{destination:?} contains \"..\""),
        ));
    }
    let fstype = m.typ().clone().unwrap_or_default();
    let (mut flags, mut propagation, mut rset, mut rclear) = (0u64, 0u64, 0u64, 0u64);
    let mut data = Vec::new();
    let mut copy_up = false;
    for option in m.options().iter().flatten() {
        if matches!(option.as_str(), "idmap" | "ridmap") || option.starts_with("X-mount.") {
            return Err(unsupported(
                format!("{field}.options"),
                format!("mount option {option:?} is not supported yet"),
            ));
        }
        match mount_option(option) {
            MountOption::Set(f) => flags |= f,
            MountOption::Clear(f) => flags &= !f,
            MountOption::Propagation(f) => propagation = f,
            MountOption::RecursiveSet(f) => {
                rset |= f;
                rclear &= !f;
            }
            MountOption::RecursiveClear(f) => {
                rclear |= f;
                rset &= !f;
            }
            MountOption::CopyUp => copy_up = true,
            MountOption::Data => data.push(option.clone()),
        }
    }
    if copy_up && fstype != "tmpfs" {
        return Err(invalid(
            format!("{field}.options"),
            format!("tmpcopyup applies to tmpfs mounts only, not to type {fstype:?}"),
        ));
    }
    let bind = fstype == "bind" || flags & libc::MS_BIND as u64 != 0;
    if bind {
        flags |= libc::MS_BIND as u64;
    }
    if m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
    {
        return Err(unsupported(
            format!("{field}.uidMappings"),
            "id-mapped mounts are not supported yet",
        ));
    }
    let source = m.source().clone().unwrap_or_default();
    let source = if bind && source.is_relative() {
        bundle.join(source)
    } else {
        source
    };
    let source = source
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.source"), "not valid utf-8"))?
        .to_owned();
    if bind && source.is_empty() {
        return Err(invalid(
            format!("{field}.source"),
            "a bind mount needs a source",
        ));
    }
    if !bind && fstype.is_empty() {
        return Err(invalid(
            format!("{field}.type"),
            "a mount that is not a bind needs a type",
        ));
    }
    Ok(MountPlan {
        destination: destination.to_owned(),
        source,
        fstype: if bind { String::new() } else { fstype },
        flags,
        data: data.join(","),
        propagation,
        recursive_attr_set: rset,
        recursive_attr_clear: rclear,
        copy_up,
    })
}

/// A `cgroup` mount shows the container its own cgroups, read-only unless
/// the options say otherwise: on cgroup v2 its directory is bound at the
/// destination; on v1 (or hybrid) a tmpfs holds one bind per hierarchy.
fn cgroup_mounts(m: &MountPlan, dirs: &[(Option<String>, PathBuf)]) -> Vec<MountPlan> {
    let bind = |source: &Path, destination: String| MountPlan {
        destination,
        source: source.display().to_string(),
        fstype: String::new(),
        flags: (libc::MS_BIND | libc::MS_REC) as u64
            | (m.flags
                & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u64),
        data: String::new(),
        propagation: m.propagation,
        recursive_attr_set: m.recursive_attr_set,
        recursive_attr_clear: m.recursive_attr_clear,
        copy_up: false,
    };
    if let [(None, dir)] = dirs {
        return vec![bind(dir, m.destination.clone())];
    }
    let mut out = vec![MountPlan {
        destination: m.destination.clone(),
        source: "tmpfs".into(),
        fstype: "tmpfs".into(),
        flags: (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as u64,
        data: "mode=755".into(),
        propagation: 0,
        recursive_attr_set: 0,
        recursive_attr_clear: 0,
        copy_up: false,
    }];
    for (name, dir) in dirs {
        let name = name.clone().unwrap_or_else(|| "unified".into());
        out.push(bind(
            dir,
            format!("{}/{name}", m.destination.trim_end_matches('/')),
        ));
    }
    // The tmpfs itself is read-only once the binds are in, as runc leaves it.
    if m.flags & libc::MS_RDONLY as u64 != 0 {
        out.push(MountPlan {
            destination: m.destination.clone(),
            source: String::new(),
            fstype: String::new(),
            flags: (libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC) as u64,
            data: String::new(),
            propagation: 0,
            recursive_attr_set: 0,
            recursive_attr_clear: 0,
            copy_up: false,
        });
    }
    out
}
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::container::plan::PlanKind;
    use crate::container::spec::build_container;
    use crate::container::spec::test_support::{ctx, parse};

    #[test]
    fn every_known_mount_option_means_something() {
        for name in KNOWN_MOUNT_OPTIONS {
            assert!(
                !matches!(mount_option(name), MountOption::Data),
                "{name} would be passed as data"
            );
        }
        assert!(matches!(mount_option("size=1m"), MountOption::Data));
        assert_eq!(KNOWN_MOUNT_OPTIONS.len(), 49);
    }

    #[test]
    fn mount_options_become_flags_propagation_and_data() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "mounts":[{"destination":"/data","type":"bind","source":"host","options":["rbind","ro","nosuid","rslave","rro"]},
                      {"destination":"/t","type":"tmpfs","source":"tmpfs","options":["size=1m","noexec","mode=700"]}],
            "linux":{"namespaces":[{"type":"mount"}]}}"#,
        );
        let bp = build_container(&spec, &ctx(Path::new("/b"), Path::new("/s"))).unwrap();
        let PlanKind::Container(c) = &bp.plan.kind else {
            panic!()
        };
        assert_eq!(c.rootfs.path, "/b/rootfs");
        let bind = &c.rootfs.mounts[0];
        assert_eq!(bind.source, "/b/host");
        assert_eq!(
            bind.flags,
            (libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID) as u64
        );
        assert_eq!(bind.propagation, (libc::MS_SLAVE | libc::MS_REC) as u64);
        assert_eq!(bind.recursive_attr_set, libc::MOUNT_ATTR_RDONLY);
        let tmp = &c.rootfs.mounts[1];
        assert_eq!(
            (tmp.fstype.as_str(), tmp.data.as_str(), tmp.flags),
            ("tmpfs", "size=1m,mode=700", libc::MS_NOEXEC as u64)
        );
    }
}
