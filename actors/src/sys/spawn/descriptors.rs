//! What a process keeps of its spawner's descriptors once a container can
//! see it: its own (status pipe, stdio or terminal, the ones its spec
//! passes), nothing of the host.

use std::os::fd::{AsRawFd, RawFd};

use super::child::{errno_failure, last_errno, other, Fds, Step};
use crate::sys::plan::{SpawnPlan, StdioPlan};

/// The plan's descriptors the process itself needs: its status pipe, its
/// stdio (or terminal) and the descriptors passed through to it.
pub(super) fn process_fd_indexes(plan: &SpawnPlan) -> Vec<usize> {
    let mut keep = vec![plan.status];
    match plan.process.stdio {
        StdioPlan::Fds {
            stdin,
            stdout,
            stderr,
        } => keep.extend([stdin, stdout, stderr]),
        StdioPlan::NewTerminal { channel, .. } => keep.push(channel),
        StdioPlan::Terminal { slave, .. } => keep.push(slave),
    }
    keep.extend(&plan.process.preserved_fds);
    keep
}

/// The descriptor numbers behind plan indexes.
pub(super) fn raw_fds(fds: &Fds<'_>, indexes: &[usize]) -> Step<Vec<RawFd>> {
    indexes
        .iter()
        .map(|&i| fds.get(i, "kept descriptor").map(|fd| fd.as_raw_fd()))
        .collect()
}

/// Closes every descriptor but `keep` (stdio included: the spawner's
/// 0, 1 and 2 are the supervisor's). The plan's descriptors that are
/// closed are never used again by this process.
pub(super) fn close_all_except(keep: &[RawFd]) -> Step {
    let kept_stdio: Vec<RawFd> = keep
        .iter()
        .copied()
        .filter(|fd| (0..=2).contains(fd))
        .collect();
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 0u32;
    let close = |from: u32, to: u32| -> Step {
        // SAFETY: closes a range of descriptors; none is used afterwards
        // (the kept ones are outside every range).
        if unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) } < 0 {
            return Err(last_errno("close descriptors", format!("{from}..={to}")));
        }
        Ok(())
    };
    for fd in keep {
        if fd > first {
            close(first, fd - 1)?;
        }
        first = fd.saturating_add(1);
    }
    close(first, u32::MAX)?;
    // Descriptors opened from here (a terminal's pair) must not land on 0,
    // 1 or 2, which the process's stdio replaces: hold them with
    // placeholders that name nothing of the host (the root is the
    // container's by now) and close at exec.
    for target in 0..=2 {
        if kept_stdio.contains(&target) {
            continue;
        }
        let placeholder = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| errno_failure("hold stdio", "/", e))?;
        if placeholder.as_raw_fd() != target {
            // Lower numbers are all taken: nothing lands below `target`.
            return Err(other(
                "hold stdio",
                target.to_string(),
                format!("descriptor {} opened instead", placeholder.as_raw_fd()),
            ));
        }
        // Left open on purpose until exec.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(placeholder);
    }
    Ok(())
}
