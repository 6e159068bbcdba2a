//! The container's root filesystem before `pivot_root`: the propagation
//! that keeps the host out of it, the new root bound onto itself, then the
//! plan's mounts, device nodes and `/dev` symlinks, all resolved inside
//! the new root.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use super::child::{errno_failure, Failure, Step};
use super::kernel::Kernel;
use super::tmpcopyup;
use crate::sys::mount::{self, AsFdRef, Target};
use crate::sys::plan::{MountPlan, RootfsPlan};

/// Mounts everything under the new root, before `pivot_root`.
pub(super) fn prepare_rootfs<K: Kernel>(k: &K, r: &RootfsPlan) -> Step {
    // Nothing done from here on may propagate back to the host.
    k.mount(None, "/", None, r.propagation, None, "/")?;
    // A shared propagation (`rootfsPropagation: shared`) must not reach
    // the new root's own mount, nor its parent's.
    k.make_parent_mount_private(&r.path)?;
    // pivot_root needs the new root to be a mount point.
    k.mount(
        Some(&r.path),
        &r.path,
        None,
        (libc::MS_BIND | libc::MS_REC) as u64,
        None,
        &r.path,
    )?;
    let open_root = || {
        k.open_directory(&r.path)
            .map_err(|e| errno_failure("open rootfs", &r.path, e))
    };
    let mut root = open_root()?;
    for m in &r.mounts {
        mount_one(k, root.as_fd_ref(), m)?;
        if m.destination == "/" {
            // A mount over the root hides what the old descriptor names.
            root = open_root()?;
        }
    }
    for d in &r.devices {
        k.make_device(root.as_fd_ref(), d)?;
    }
    if r.dev_symlinks {
        for (target, link) in [
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
            ("pts/ptmx", "/dev/ptmx"),
        ] {
            k.make_symlink(root.as_fd_ref(), target, link)?;
        }
    }
    Ok(())
}

fn mount_one<K: Kernel>(k: &K, root: BorrowedFd<'_>, m: &MountPlan) -> Step {
    if m.flags & libc::MS_REMOUNT as u64 != 0 {
        // Changes flags of something mounted earlier in the plan.
        let dest = k
            .open_in_root(root, &m.destination, libc::O_PATH)
            .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
        k.mount(
            None,
            &mount::fd_path(dest.as_fd_ref()),
            None,
            m.flags,
            None,
            &m.destination,
        )?;
        return Ok(());
    }
    let target_kind = if m.is_bind() {
        let is_dir = k
            .is_directory(&m.source)
            .map_err(|e| errno_failure("stat bind source", &m.source, e))?;
        if is_dir {
            Target::Directory
        } else {
            Target::File
        }
    } else {
        Target::Directory
    };
    let covered = tmpcopyup::open_covered(k, root, m)?;
    let dest = k.create_in_root(root, &m.destination, target_kind)?;
    let target = mount::fd_path(dest.as_fd_ref());
    let fstype = (!m.fstype.is_empty()).then_some(m.fstype.as_str());
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let source = (!m.source.is_empty()).then_some(m.source.as_str());
    if m.is_bind() {
        let recursive = m.flags & libc::MS_REC as u64;
        k.mount(
            source,
            &target,
            None,
            libc::MS_BIND as u64 | recursive,
            None,
            &m.destination,
        )?;
        // A bind ignores other flags: apply them with a remount.
        let extra = m.flags & !(libc::MS_BIND as u64 | libc::MS_REC as u64);
        if extra != 0 {
            let dest = k
                .open_in_root(root, &m.destination, libc::O_PATH)
                .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
            k.mount(
                None,
                &mount::fd_path(dest.as_fd_ref()),
                None,
                libc::MS_BIND as u64 | libc::MS_REMOUNT as u64 | extra,
                None,
                &m.destination,
            )?;
        }
    } else {
        let flags = tmpcopyup::mount_flags(m);
        k.mount(source, &target, fstype, flags, data, &m.destination)
            .map_err(|f| {
                let unknown_type = f.errno == Errno::ENODEV;
                let mut failure = Failure::from(f);
                if unknown_type {
                    failure.message = format!("unknown filesystem type {:?}", m.fstype);
                }
                failure
            })?;
    }
    // Re-open: the descriptor taken before mounting names the covered
    // directory, not the new mount.
    if let Some(covered) = &covered {
        tmpcopyup::fill(k, root, m, covered)?;
    }
    let mounted = k
        .open_in_root(root, &m.destination, libc::O_PATH)
        .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
    if m.propagation != 0 {
        k.mount(
            None,
            &mount::fd_path(mounted.as_fd_ref()),
            None,
            m.propagation,
            None,
            &m.destination,
        )?;
    }
    if m.recursive_attr_set != 0 || m.recursive_attr_clear != 0 {
        k.set_mount_attributes(
            mounted.as_fd_ref(),
            true,
            m.recursive_attr_set,
            m.recursive_attr_clear,
            &m.destination,
        )?;
    }
    Ok(())
}
