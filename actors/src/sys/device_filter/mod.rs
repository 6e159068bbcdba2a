//! Device cgroup rules on cgroup v2: the v2 hierarchy has no `devices`
//! controller, so the rules become a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to the container's cgroup (as runc and youki do).
//!
//! The program must decide exactly as the v1 devices cgroup does with the
//! same rules written in order (`cgroup::write_device_rules`), so that a
//! spec means the same on every host. The rules are therefore first
//! reduced the way the v1 kernel reduces them (a default behaviour plus a
//! list of exceptions, `security/device_cgroup.c`), and that outcome is
//! compiled:
//! - a type `a` rule resets everything: the default becomes the rule's
//!   (allow or deny) and the exceptions are dropped;
//! - a rule that agrees with the default takes its access bits out of the
//!   exception with the very same type, major and minor (the kernel does
//!   not split wildcard exceptions, and neither do we);
//! - a rule that disagrees merges its bits into that exception, or adds one.
//!
//! A request (type, major, minor, access) under default deny is allowed when
//! one exception covers it with all its access bits; under default allow it
//! is denied when any exception matches it with any of its access bits. So
//! for the usual lists (deny everything, then allow some devices) the last
//! matching rule decides, a type `a` rule matches everything, and a
//! request's access must be a subset of an allowing rule's.
//!
//! Unlike a fresh v1 cgroup, which starts with its parent's allow-all, the
//! reduction starts from deny-all, as runc's does: every spec sandvisor
//! applies begins with a deny-all rule anyway (runc's, containerd's and the
//! built-in one), and a list that does not must not open every device.
//!
//! Attaching uses `BPF_F_ALLOW_MULTI`, so programs of parent cgroups still
//! apply. A program sandvisor attached to the same cgroup earlier is
//! detached only after the new one is in place, so the cgroup is never left
//! without a filter.

mod asm;
mod bpf;
mod reduce;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::cgroup::DeviceRule;
pub use asm::{compile, Insn};
use bpf::{attach_program, detach_program, load, ours};

// `struct bpf_cgroup_dev_ctx`: the device type in the low 16 bits of
// `access_type`, the access asked for in the high 16 bits.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;

/// Why device rules could not be compiled or put in force.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    /// A rule the v1 devices cgroup would refuse too.
    #[error("device rule {index} ({line:?}): {detail}")]
    Rule {
        /// Its position in the list.
        index: usize,
        /// The rule, as v1 would read it.
        line: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The cgroup directory cannot be opened.
    #[error("open cgroup {path}: {source}")]
    Open {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel refused the program.
    #[error("load the device program for cgroup {path}: {source}{}", verifier(.log))]
    Load {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
        /// The end of the verifier's log, if it gave one.
        log: String,
    },
    /// The kernel refused to attach the program.
    #[error("attach the device program to cgroup {path}: {source}")]
    Attach {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The programs already attached could not be listed.
    #[error("list the device programs of cgroup {path}: {source}")]
    Query {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// An earlier program of sandvisor's could not be detached (the new
    /// one is attached: both apply).
    #[error("detach the earlier device program {id} from cgroup {path}: {source}")]
    Detach {
        /// The cgroup directory.
        path: String,
        /// The earlier program's id.
        id: u32,
        /// The error.
        source: io::Error,
    },
}

impl DeviceFilterError {
    /// Whether the rules themselves are at fault (not the host).
    pub fn is_bad_rule(&self) -> bool {
        matches!(self, DeviceFilterError::Rule { .. })
    }
}

fn verifier(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log: {log}")
    }
}

/// Compiles `rules` and attaches the program to the cgroup v2 directory
/// `dir`, replacing one sandvisor attached there before (the new one is
/// attached first, so the cgroup is never without a filter).
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), DeviceFilterError> {
    let program = compile(rules)?;
    let path = || dir.display().to_string();
    let cgroup = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| DeviceFilterError::Open {
            path: path(),
            source,
        })?;
    let prog = load(&program).map_err(|(source, log)| DeviceFilterError::Load {
        path: path(),
        source,
        log,
    })?;
    let earlier = ours(&cgroup).map_err(|source| DeviceFilterError::Query {
        path: path(),
        source,
    })?;
    attach_program(&cgroup, prog.as_fd()).map_err(|source| DeviceFilterError::Attach {
        path: path(),
        source,
    })?;
    for (id, old) in earlier {
        match detach_program(&cgroup, old.as_fd()) {
            Ok(()) => {}
            // Detached meanwhile: what was wanted.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                return Err(DeviceFilterError::Detach {
                    path: path(),
                    id,
                    source,
                })
            }
        }
    }
    Ok(())
}
