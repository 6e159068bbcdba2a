//! Seccomp filters. An OCI `linux.seccomp` profile is compiled into a
//! classic BPF program here in the (multi-threaded) supervisor, with
//! libseccomp; the program travels to the single-threaded child, which
//! installs it right before execve with seccomp(2) alone: no libseccomp and
//! no allocation on that side.
//!
//! A profile means what it means to runc:
//!
//! - `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`; `SCMP_ACT_ERRNO` returns
//!   `errnoRet` and `SCMP_ACT_TRACE` hands it to the tracer as the message,
//!   both EPERM when `errnoRet` is absent; `defaultErrnoRet` does the same
//!   for `defaultAction`. `errnoRet` on any other action is ignored.
//! - A rule whose action equals the default action is dropped (libseccomp
//!   refuses it), silently: it changes nothing.
//! - A system call name libseccomp cannot resolve is skipped with a
//!   warning; a name it knows that exists on none of the filter's
//!   architectures is added (libseccomp makes it a no-op) with a warning.
//! - The conditions of a rule are ANDed, unless two of them test the same
//!   argument: then every condition of that rule becomes a rule of its own,
//!   so they are ORed (runc's fallback for what libseccomp cannot express).
//! - `SCMP_CMP_MASKED_EQ` matches when `arg & value == valueTwo`.
//! - Rulesets of more than 32 rules use libseccomp's binary-tree layout.
//! - The no-new-privs attribute of the filter is off: the caller sets
//!   `PR_SET_NO_NEW_PRIVS` itself, from `process.noNewPrivileges`.
//!
//! Where this differs from runc: `SCMP_ACT_NOTIFY`, `listenerPath`,
//! `listenerMetadata` and `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` are
//! refused with [`ProfileError::Unsupported`]; `SECCOMP_FILTER_FLAG_TSYNC`
//! is passed to the kernel rather than dropped (with one thread it changes
//! nothing); an `errnoRet` above 65535 is refused rather than truncated;
//! every rule is validated even when it is dropped; and the program is
//! libseccomp's as exported, without runc's patchbpf stub that answers
//! ENOSYS for system calls newer than the profile.

mod rules;
mod support;
#[cfg(test)]
mod tests;
mod translate;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use libseccomp::{ScmpArch, ScmpFilterContext, ScmpVersion};
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::LinuxSeccomp;
use thiserror::Error;

use crate::sys::seccomp::{check_program_len, SeccompError, SeccompProgram};
use rules::Rule;
pub use support::{support, Support, FLAG_NAMES};
use translate::{arch_refusal, refuse_listener, scmp_action, scmp_arch, set_flags};

/// The error type of the libseccomp crate.
type LibseccompError = libseccomp::error::SeccompError;

/// System calls have at most six arguments.
const MAX_ARGS: usize = 6;

/// Above this many rules the filter uses libseccomp's binary tree, as in
/// runc (libseccomp up to 2.5.4 misbehaves with the tree and no rules).
const OPTIMIZE_ABOVE: usize = 32;

/// The errno of `SCMP_ACT_ERRNO` and the message of `SCMP_ACT_TRACE`
/// when the profile gives no `errnoRet`.
const DEFAULT_ERRNO_RET: u16 = libc::EPERM as u16;

/// Why a profile could not be compiled.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The profile uses a feature sandvisor does not implement.
    #[error("{field}: {value} is not supported")]
    Unsupported {
        /// The profile field, as `linux.seccomp.syscalls[2].action`.
        field: String,
        /// Its value.
        value: String,
    },
    /// A field has a value no filter can express.
    #[error("{field}: {value} is invalid: {reason}")]
    Invalid {
        /// The profile field.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An architecture cannot be added to the filter: libseccomp does not
    /// know it, or its byte order is not the native one.
    #[error("{field}: architecture {arch} cannot be added to the filter: {reason}")]
    Architecture {
        /// The profile field.
        field: String,
        /// The architecture, as `SCMP_ARCH_LOONGARCH64`.
        arch: String,
        /// Why, in words.
        reason: String,
        /// What libseccomp said.
        source: LibseccompError,
    },
    /// The kernel or libseccomp cannot honour a filter flag.
    #[error(
        "{field}: flag {flag} is not available with this kernel and libseccomp {version}: {source}"
    )]
    FlagUnavailable {
        /// The profile field.
        field: String,
        /// The flag, as `SECCOMP_FILTER_FLAG_LOG`.
        flag: String,
        /// The libseccomp version.
        version: String,
        /// What libseccomp said.
        source: LibseccompError,
    },
    /// libseccomp refused to build the filter.
    #[error("{op}: {source}")]
    Libseccomp {
        /// What was being done.
        op: String,
        /// What libseccomp said.
        source: LibseccompError,
    },
    /// Exporting the program from libseccomp failed.
    #[error("export the seccomp program: {0}")]
    Export(#[source] io::Error),
    /// The compiled program is not one the kernel would take.
    #[error(transparent)]
    Program(#[from] SeccompError),
}

/// What [`compile`] made of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The program.
    pub program: SeccompProgram,
    /// What was skipped or has no effect, one sentence each, for the log.
    pub warnings: Vec<String>,
}

/// Compiles `spec` into a BPF program with libseccomp, with runc's
/// semantics (see the module documentation).
pub fn compile(spec: &LinuxSeccomp) -> Result<Compiled, ProfileError> {
    refuse_listener(spec)?;
    let default_action = scmp_action(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    let rules = spec
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, syscall)| Rule::parse(i, syscall))
        .collect::<Result<Vec<_>, _>>()?;

    let mut ctx =
        ScmpFilterContext::new(default_action).map_err(|source| ProfileError::Libseccomp {
            op: format!(
                "create a seccomp filter with default action {}",
                spec.default_action()
            ),
            source,
        })?;
    ctx.set_ctl_nnp(false)
        .map_err(|source| ProfileError::Libseccomp {
            op: "clear the no-new-privs attribute of the seccomp filter".to_owned(),
            source,
        })?;

    let mut arches = vec![("native".to_owned(), ScmpArch::Native)];
    for (i, arch) in spec
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let scmp = scmp_arch(*arch);
        ctx.add_arch(scmp)
            .map_err(|source| ProfileError::Architecture {
                field: format!("linux.seccomp.architectures[{i}]"),
                arch: arch.to_string(),
                reason: arch_refusal(&source),
                source,
            })?;
        arches.push((arch.to_string(), scmp));
    }

    let flags = set_flags(&mut ctx, spec.flags().as_deref().unwrap_or_default())?;

    let mut warnings = Vec::new();
    let mut added = 0;
    for rule in &rules {
        added += rule.add_to(&mut ctx, default_action, &arches, &mut warnings)?;
    }
    if added > OPTIMIZE_ABOVE {
        if let Err(e) = ctx.set_ctl_optimize(2) {
            warnings.push(format!(
                "libseccomp {} cannot lay out the {added} rules as a binary tree, \
                 the filter tests them one by one: {e}",
                libseccomp_version()
            ));
        }
    }

    let bpf = export_bpf(&ctx)?;
    check_program_len(bpf.len())?;
    Ok(Compiled {
        program: SeccompProgram { bpf, flags },
        warnings,
    })
}

/// Writes the program to a memfd (libseccomp 2.5 exports only to a file
/// descriptor; a pipe could fill up) and reads it back.
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<u8>, ProfileError> {
    let fd = memfd_create("sandvisor-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| ProfileError::Export(e.into()))?;
    ctx.export_bpf(&fd)
        .map_err(|source| ProfileError::Libseccomp {
            op: "export the seccomp filter as BPF".to_owned(),
            source,
        })?;
    let mut file = File::from(fd);
    let mut bpf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(ProfileError::Export)?;
    Ok(bpf)
}

fn libseccomp_version() -> String {
    ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "(unknown version)".to_owned())
}
