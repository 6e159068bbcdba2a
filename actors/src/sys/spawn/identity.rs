//! Who the process runs as: its groups, user and capability sets, and
//! when its seccomp filter goes in relative to them.

use nix::errno::Errno;

use super::child::{errno_failure, other, Failure, Step};
use super::kernel::Kernel;
use crate::sys::plan::{CapabilityPlan, ProcessPlan};

/// When a process's seccomp filter goes in (runc's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeccompStage {
    /// Before the user changes and capabilities are dropped: without
    /// no_new_privs the kernel installs a filter only for a thread with
    /// CAP_SYS_ADMIN, which the drop takes away.
    BeforeIdentity,
    /// Just before execve, so that as few of the setup's system calls as
    /// possible run under the filter (and need the profile to allow them).
    BeforeExec,
}

impl SeccompStage {
    pub(super) fn for_no_new_privileges(no_new_privileges: bool) -> SeccompStage {
        if no_new_privileges {
            SeccompStage::BeforeExec
        } else {
            SeccompStage::BeforeIdentity
        }
    }
}

pub(super) fn install_seccomp<K: Kernel>(k: &K, p: &ProcessPlan) -> Step {
    match &p.seccomp {
        Some(program) => k.install_seccomp(program).map_err(seccomp_failure),
        None => Ok(()),
    }
}

/// A refused filter, with the errno the kernel gave (EACCES: neither
/// no_new_privs nor CAP_SYS_ADMIN).
fn seccomp_failure(e: crate::sys::seccomp::SeccompError) -> Failure {
    let failure = other("install seccomp filter", "", e.to_string());
    match e.errno() {
        Some(errno) => failure.with_errno(errno),
        None => failure,
    }
}

pub(super) fn set_identity<K: Kernel>(k: &K, p: &ProcessPlan) -> Step {
    // Dropping from the bounding set needs CAP_SETPCAP, which setuid to a
    // non-root user clears from the effective set: drop first.
    if let Some(caps) = &p.capabilities {
        drop_bounding(k, caps.bounding)?;
    }
    let keep_caps = p.capabilities.is_some() && p.uid != 0;
    if keep_caps {
        k.set_keepcaps(true)
            .map_err(|e| errno_failure("keep capabilities", "", e))?;
    }
    k.setgroups(&p.additional_gids)
        .map_err(|e| errno_failure("setgroups", format!("{:?}", p.additional_gids), e))?;
    k.setresgid(p.gid)
        .map_err(|e| errno_failure("setgid", p.gid.to_string(), e))?;
    k.setresuid(p.uid)
        .map_err(|e| errno_failure("setuid", p.uid.to_string(), e))?;
    if let Some(caps) = &p.capabilities {
        apply_capabilities(k, caps)?;
    }
    Ok(())
}

fn drop_bounding<K: Kernel>(k: &K, bounding: u64) -> Step {
    for cap in 0..=k.last_capability() {
        if bounding & (1 << cap) == 0 {
            match k.drop_bounding_capability(cap) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(e) => {
                    return Err(errno_failure(
                        "drop bounding capability",
                        cap.to_string(),
                        e,
                    ))
                }
            }
        }
    }
    Ok(())
}

fn apply_capabilities<K: Kernel>(k: &K, c: &CapabilityPlan) -> Step {
    let last = k.last_capability();
    k.capset(c)
        .map_err(|e| errno_failure("capset", format!("{c:?}"), e))?;
    k.clear_ambient_capabilities()
        .map_err(|e| errno_failure("clear ambient capabilities", "", e))?;
    for cap in 0..=last {
        if c.ambient & (1 << cap) != 0 {
            k.raise_ambient_capability(cap)
                .map_err(|e| errno_failure("raise ambient capability", cap.to_string(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::SeccompError;

    #[test]
    fn without_no_new_privileges_the_filter_goes_in_before_the_identity_changes() {
        assert_eq!(
            SeccompStage::for_no_new_privileges(false),
            SeccompStage::BeforeIdentity
        );
        assert_eq!(
            SeccompStage::for_no_new_privileges(true),
            SeccompStage::BeforeExec
        );
    }

    #[test]
    fn a_refused_filter_reports_the_kernel_s_errno() {
        let failure = seccomp_failure(SeccompError::Install {
            flags: 0,
            errno: Errno::EACCES,
        });
        assert_eq!(failure.errno, libc::EACCES);
        assert_eq!(failure.step, "install seccomp filter");
        assert!(failure.message.contains("EACCES"), "{}", failure.message);
        let failure = seccomp_failure(SeccompError::BadProgram { len: 3, max: 4096 });
        assert_eq!(failure.errno, 0, "no system call failed");
    }
}
