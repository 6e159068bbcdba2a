//! The container's last root filesystem steps, inside the new root:
//! `pivot_root` (or move + chroot), then, in this order, the sysctls, the
//! masked and read-only paths and a read-only `/`.
//!
//! Sysctls come first because the read-only paths usually include
//! `/proc/sys` (docker's and podman's do), after which every write there
//! fails with EROFS; runc writes them at the same point.

use std::ffi::CString;

use super::child::{errno_failure, io_failure, other, Step};
use super::kernel::Kernel;
use crate::sys::mount::AsFdRef;
use crate::sys::plan::RootfsPlan;

/// One step after the root is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FinalStep<'a> {
    /// Write a `/proc/sys` setting, as (dotted key, value).
    Sysctl(&'a str, &'a str),
    /// Hide a path.
    Mask(&'a str),
    /// Make a path read-only.
    ReadOnly(&'a str),
    /// Make `/` read-only.
    ReadOnlyRoot,
}

/// The steps for `r` and `sysctl`, in the order they run.
fn final_steps<'a>(r: &'a RootfsPlan, sysctl: &'a [(String, String)]) -> Vec<FinalStep<'a>> {
    let sysctls = sysctl
        .iter()
        .map(|(key, value)| FinalStep::Sysctl(key, value));
    let masked = r.masked_paths.iter().map(|p| FinalStep::Mask(p));
    let readonly = r.readonly_paths.iter().map(|p| FinalStep::ReadOnly(p));
    let root = r.readonly.then_some(FinalStep::ReadOnlyRoot);
    sysctls.chain(masked).chain(readonly).chain(root).collect()
}

/// Enters the root `r` names and finishes it, writing `sysctl` on the way.
pub(super) fn enter_rootfs<K: Kernel>(k: &K, r: &RootfsPlan, sysctl: &[(String, String)]) -> Step {
    let root = CString::new(r.path.as_str())
        .map_err(|_| other("chdir", &r.path, "path has a nul byte"))?;
    k.chdir(root.as_c_str())
        .map_err(|e| errno_failure("chdir", &r.path, e))?;
    if r.pivot_root {
        k.pivot_root()?;
    } else {
        k.move_root()?;
    }
    for step in final_steps(r, sysctl) {
        match step {
            FinalStep::Sysctl(key, value) => k
                .write_sysctl(key, value)
                .map_err(|e| io_failure("sysctl", key, &e))?,
            FinalStep::Mask(path) => k.mask_path(path)?,
            FinalStep::ReadOnly(path) => k.make_readonly(path)?,
            FinalStep::ReadOnlyRoot => make_root_readonly(k)?,
        }
    }
    Ok(())
}

fn make_root_readonly<K: Kernel>(k: &K) -> Step {
    let root = k
        .open_directory("/")
        .map_err(|e| errno_failure("open", "/", e))?;
    k.set_mount_attributes(root.as_fd_ref(), false, libc::MOUNT_ATTR_RDONLY, 0, "/")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(readonly: bool) -> RootfsPlan {
        RootfsPlan {
            path: "/bundle/rootfs".into(),
            readonly,
            propagation: 0,
            mounts: Vec::new(),
            devices: Vec::new(),
            dev_symlinks: false,
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            pivot_root: true,
        }
    }

    #[test]
    fn sysctls_are_written_before_any_path_is_masked_or_made_read_only() {
        let r = plan(true);
        let sysctl = vec![
            ("kernel.msgmax".to_owned(), "65536".to_owned()),
            (
                "net.ipv4.ip_unprivileged_port_start".to_owned(),
                "0".to_owned(),
            ),
        ];
        assert_eq!(
            final_steps(&r, &sysctl),
            vec![
                FinalStep::Sysctl("kernel.msgmax", "65536"),
                FinalStep::Sysctl("net.ipv4.ip_unprivileged_port_start", "0"),
                FinalStep::Mask("/proc/kcore"),
                FinalStep::ReadOnly("/proc/sys"),
                FinalStep::ReadOnlyRoot,
            ]
        );
    }

    #[test]
    fn a_writable_root_stays_writable() {
        assert_eq!(
            final_steps(&plan(false), &[]),
            vec![
                FinalStep::Mask("/proc/kcore"),
                FinalStep::ReadOnly("/proc/sys"),
            ]
        );
    }
}
