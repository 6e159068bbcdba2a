//! Seccomp filters, the kernel side. An OCI `linux.seccomp` profile is
//! compiled into a classic BPF program in the (multi-threaded) supervisor,
//! with libseccomp (see `container::seccomp`); the program travels to the
//! single-threaded child, which installs it right before execve with
//! seccomp(2) alone: no libseccomp and no allocation on that side.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The size of one `struct sock_filter`.
const INSN_LEN: usize = std::mem::size_of::<libc::sock_filter>();
const _: () = assert!(INSN_LEN == 8, "struct sock_filter is 8 bytes");

/// The most instructions the kernel accepts in one filter.
const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

pub(crate) const FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
pub(crate) const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
pub(crate) const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
/// Every flag `container::seccomp::compile` may set, and so every flag
/// [`install`] accepts.
const KNOWN_FLAGS: u32 = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW;

/// Why a program could not be installed.
#[derive(Debug, Error)]
pub enum SeccompError {
    /// The program is not 1 to 4096 whole instructions.
    #[error("seccomp program of {len} bytes is not 1 to {max} whole {INSN_LEN}-byte instructions")]
    BadProgram {
        /// Its length in bytes.
        len: usize,
        /// The most instructions the kernel accepts.
        max: usize,
    },
    /// The program asks for filter flags `container::seccomp::compile`
    /// never sets.
    #[error("seccomp filter flags {flags:#x} include {unknown:#x}, which sandvisor never sets")]
    UnknownFlags {
        /// The flags.
        flags: u32,
        /// The bits not known.
        unknown: u32,
    },
    /// seccomp(2) failed.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}): {errno}")]
    Install {
        /// The flags passed.
        flags: u32,
        /// The error; EACCES means neither no_new_privs nor CAP_SYS_ADMIN.
        errno: Errno,
    },
    /// seccomp(2) with `SECCOMP_FILTER_FLAG_TSYNC` found a thread it could
    /// not synchronize.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}): thread {tid} cannot be synchronized")]
    Tsync {
        /// The flags passed.
        flags: u32,
        /// The thread.
        tid: libc::c_long,
    },
}

/// A compiled filter, ready to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    /// struct sock_filter array, as raw bytes (8 bytes per instruction, native endian).
    pub bpf: Vec<u8>,
    /// SECCOMP_FILTER_FLAG_* to pass to seccomp(2).
    pub flags: u32,
}

/// Installs in the calling thread (the child, which has no other threads,
/// calls it just before execve, or before it changes user and drops
/// capabilities when no_new_privs is off).
/// Uses seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog) directly (libc::syscall), not libseccomp.
///
/// The thread must have no_new_privs set or `CAP_SYS_ADMIN` in its user
/// namespace, or the kernel answers EACCES. It allocates nothing, so it is
/// safe in a child forked from a multi-threaded process.
pub fn install(program: &SeccompProgram) -> Result<(), SeccompError> {
    let len = program.bpf.len();
    let count = check_program_len(len)?;
    let unknown = program.flags & !KNOWN_FLAGS;
    if unknown != 0 {
        return Err(SeccompError::UnknownFlags {
            flags: program.flags,
            unknown,
        });
    }
    // The bytes need not be aligned for `sock_filter`: the pointer is only
    // handed to the kernel, which copies the instructions byte-wise.
    let fprog = libc::sock_fprog {
        len: count,
        filter: program.bpf.as_ptr().cast_mut().cast::<libc::sock_filter>(),
    };
    // SAFETY: `fprog` describes `count` instructions, exactly the bytes of
    // `program.bpf`, which outlives the call. The kernel only reads them
    // (copy_from_user), validates them as a classic BPF program before
    // attaching it, and keeps no pointer into this memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(program.flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        // With TSYNC, a positive result is the thread that could not follow.
        tid if tid > 0 => Err(SeccompError::Tsync {
            flags: program.flags,
            tid,
        }),
        _ => Err(SeccompError::Install {
            flags: program.flags,
            errno: Errno::last(),
        }),
    }
}

impl SeccompError {
    /// The errno the kernel answered, for a failure of seccomp(2) itself.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            SeccompError::Install { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Checks that `len` bytes are 1 to [`MAX_INSNS`] whole instructions, and
/// returns how many.
pub(crate) fn check_program_len(len: usize) -> Result<u16, SeccompError> {
    let bad = SeccompError::BadProgram {
        len,
        max: MAX_INSNS,
    };
    if len == 0 || len % INSN_LEN != 0 || len / INSN_LEN > MAX_INSNS {
        return Err(bad);
    }
    u16::try_from(len / INSN_LEN).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_refuses_malformed_programs_before_calling_the_kernel() {
        for len in [0, 7, 12, (MAX_INSNS + 1) * INSN_LEN] {
            let bad = SeccompProgram {
                bpf: vec![0; len],
                flags: 0,
            };
            assert!(
                matches!(install(&bad), Err(SeccompError::BadProgram { len: l, .. }) if l == len),
                "{len} bytes"
            );
        }
        let listener = SeccompProgram {
            bpf: vec![0; 8],
            flags: libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
        };
        assert!(matches!(
            install(&listener),
            Err(SeccompError::UnknownFlags { unknown: 8, .. })
        ));
    }
}
