//! The `tmpcopyup` mount option: a tmpfs that starts with a copy of the
//! directory it covers, as runc's does.
//!
//! runc mounts the tmpfs on a temporary directory of the host, copies
//! into it and moves it over the destination. The child gets the same
//! result without a directory on the host: it opens the destination
//! before mounting (a descriptor taken then keeps naming the covered
//! directory), mounts the tmpfs writable, copies from that descriptor
//! into the new mount, and only then makes it read-only if asked (no
//! process of the container runs yet to see it half filled). The tmpfs's
//! root takes the covered directory's mode and owner, unless the mount's
//! options set them; over a directory the image lacks it keeps its own.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use super::child::{errno_failure, Step};
use super::kernel::Kernel;
use crate::sys::mount::AsFdRef;
use crate::sys::plan::MountPlan;
use crate::sys::tree_copy::TopAttributes;

/// The flags to mount `m` with: a copy-up tmpfs is filled before it is
/// made read-only.
pub(super) fn mount_flags(m: &MountPlan) -> u64 {
    if m.copy_up {
        m.flags & !(libc::MS_RDONLY as u64)
    } else {
        m.flags
    }
}

/// The directory a copy-up tmpfs will cover, opened (under `root`)
/// before it does; `None` when there is nothing to copy: not a copy-up
/// mount, or a destination the image does not have (created for the
/// mount, it keeps the tmpfs's own mode, as runc's does).
pub(super) fn open_covered<K: Kernel>(
    k: &K,
    root: BorrowedFd<'_>,
    m: &MountPlan,
) -> Step<Option<OwnedFd>> {
    if !m.copy_up {
        return Ok(None);
    }
    match k.open_in_root(root, &m.destination, libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno_failure(
            "tmpcopyup: open covered directory",
            &m.destination,
            e,
        )),
    }
}

/// Copies `covered` into the tmpfs now mounted at `m.destination` (under
/// `root`), then makes it read-only if `m` asks.
pub(super) fn fill<K: Kernel>(
    k: &K,
    root: BorrowedFd<'_>,
    m: &MountPlan,
    covered: &OwnedFd,
) -> Step {
    let tmpfs = k
        .open_in_root(root, &m.destination, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| errno_failure("tmpcopyup: open tmpfs", &m.destination, e))?;
    k.copy_directory(
        covered.as_fd(),
        tmpfs.as_fd(),
        TopAttributes::unset_by(&m.data),
    )
    .map_err(|e| {
        let path = if e.path.as_os_str().is_empty() {
            m.destination.clone()
        } else {
            format!(
                "{}/{}",
                m.destination.trim_end_matches('/'),
                e.path.display()
            )
        };
        errno_failure("tmpcopyup", path, e.errno).with_message(format!(
            "{}: {}",
            e.op,
            e.errno.desc().to_lowercase()
        ))
    })?;
    if m.flags & libc::MS_RDONLY as u64 != 0 {
        k.set_mount_attributes(
            tmpfs.as_fd_ref(),
            false,
            libc::MOUNT_ATTR_RDONLY,
            0,
            &m.destination,
        )?;
    }
    Ok(())
}
