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
//! refused with [`SeccompError::Unsupported`]; `SECCOMP_FILTER_FLAG_TSYNC`
//! is passed to the kernel rather than dropped (with one thread it changes
//! nothing); an `errnoRet` above 65535 is refused rather than truncated;
//! every rule is validated even when it is dropped; and the program is
//! libseccomp's as exported, without runc's patchbpf stub that answers
//! ENOSYS for system calls newer than the profile.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use libseccomp::error::SeccompErrno;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use nix::errno::Errno;
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The error type of the libseccomp crate.
type LibseccompError = libseccomp::error::SeccompError;

/// The size of one `struct sock_filter`.
const INSN_LEN: usize = std::mem::size_of::<libc::sock_filter>();
const _: () = assert!(INSN_LEN == 8, "struct sock_filter is 8 bytes");

/// The most instructions the kernel accepts in one filter.
const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// System calls have at most six arguments.
const MAX_ARGS: usize = 6;

/// Above this many rules the filter uses libseccomp's binary tree, as in
/// runc (libseccomp up to 2.5.4 misbehaves with the tree and no rules).
const OPTIMIZE_ABOVE: usize = 32;

const FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
/// Every flag [`compile`] may set, and so every flag [`install`] accepts.
const KNOWN_FLAGS: u32 = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW;

/// The errno of `SCMP_ACT_ERRNO` and the message of `SCMP_ACT_TRACE`
/// when the profile gives no `errnoRet`.
const DEFAULT_ERRNO_RET: u16 = libc::EPERM as u16;

/// Why a profile could not be compiled or a program installed.
#[derive(Debug, Error)]
pub enum SeccompError {
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
    /// The program is not 1 to 4096 whole instructions.
    #[error("seccomp program of {len} bytes is not 1 to {max} whole {INSN_LEN}-byte instructions")]
    BadProgram {
        /// Its length in bytes.
        len: usize,
        /// The most instructions the kernel accepts.
        max: usize,
    },
    /// The program asks for filter flags [`compile`] never sets.
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
pub fn compile(spec: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
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
        ScmpFilterContext::new(default_action).map_err(|source| SeccompError::Libseccomp {
            op: format!(
                "create a seccomp filter with default action {}",
                spec.default_action()
            ),
            source,
        })?;
    ctx.set_ctl_nnp(false)
        .map_err(|source| SeccompError::Libseccomp {
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
            .map_err(|source| SeccompError::Architecture {
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

/// What a profile may use on this host: each candidate action, operator,
/// architecture and flag is kept only if a profile using it compiles here
/// (with this libseccomp and this kernel), so `sandvisor features` cannot
/// claim what a start would refuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Support {
    /// `SCMP_ACT_*` names.
    pub actions: Vec<String>,
    /// `SCMP_CMP_*` names.
    pub operators: Vec<String>,
    /// `SCMP_ARCH_*` names.
    pub archs: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` names.
    pub flags: Vec<String>,
}

/// The filter flags the runtime spec names (some may not be supported).
pub const FLAG_NAMES: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Probes [`Support`] by compiling one small profile per candidate.
pub fn support() -> Support {
    let compiles = |json: String| {
        serde_json::from_str::<LinuxSeccomp>(&json).is_ok_and(|profile| compile(&profile).is_ok())
    };
    let keep = |names: &[&str], profile: &dyn Fn(&str) -> String| -> Vec<String> {
        names
            .iter()
            .filter(|name| compiles(profile(name)))
            .map(|name| (*name).to_owned())
            .collect()
    };
    Support {
        actions: keep(
            &[
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
            ],
            &|action| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getcwd"], "action": "{action}"}}]}}"#
                )
            },
        ),
        operators: keep(
            &[
                "SCMP_CMP_NE",
                "SCMP_CMP_LT",
                "SCMP_CMP_LE",
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_MASKED_EQ",
            ],
            &|op| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [{{"index": 0, "value": 1, "valueTwo": 1, "op": "{op}"}}]}}]}}"#
                )
            },
        ),
        archs: keep(
            &[
                "SCMP_ARCH_X86",
                "SCMP_ARCH_X86_64",
                "SCMP_ARCH_X32",
                "SCMP_ARCH_ARM",
                "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_MIPS",
                "SCMP_ARCH_MIPS64",
                "SCMP_ARCH_MIPS64N32",
                "SCMP_ARCH_MIPSEL",
                "SCMP_ARCH_MIPSEL64",
                "SCMP_ARCH_MIPSEL64N32",
                "SCMP_ARCH_PPC",
                "SCMP_ARCH_PPC64",
                "SCMP_ARCH_PPC64LE",
                "SCMP_ARCH_S390",
                "SCMP_ARCH_S390X",
                "SCMP_ARCH_PARISC",
                "SCMP_ARCH_PARISC64",
                "SCMP_ARCH_RISCV64",
                "SCMP_ARCH_LOONGARCH64",
                "SCMP_ARCH_M68K",
                "SCMP_ARCH_SH",
                "SCMP_ARCH_SHEB",
            ],
            &|arch| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["{arch}"], "syscalls": [{{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}}]}}"#
                )
            },
        ),
        flags: keep(FLAG_NAMES, &|flag| {
            format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["{flag}"]}}"#)
        }),
    }
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
fn check_program_len(len: usize) -> Result<u16, SeccompError> {
    let bad = SeccompError::BadProgram {
        len,
        max: MAX_INSNS,
    };
    if len == 0 || len % INSN_LEN != 0 || len / INSN_LEN > MAX_INSNS {
        return Err(bad);
    }
    u16::try_from(len / INSN_LEN).map_err(|_| bad)
}

fn refuse_listener(spec: &LinuxSeccomp) -> Result<(), SeccompError> {
    if let Some(path) = spec.listener_path() {
        if !path.as_os_str().is_empty() {
            return Err(SeccompError::Unsupported {
                field: "linux.seccomp.listenerPath".to_owned(),
                value: format!("{path:?}"),
            });
        }
    }
    if let Some(metadata) = spec.listener_metadata() {
        if !metadata.is_empty() {
            return Err(SeccompError::Unsupported {
                field: "linux.seccomp.listenerMetadata".to_owned(),
                value: format!("{metadata:?}"),
            });
        }
    }
    Ok(())
}

/// The libseccomp action for an OCI action and its `errnoRet`.
fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    action_field: &str,
    errno_field: &str,
) -> Result<ScmpAction, SeccompError> {
    let data = || match errno_ret {
        None => Ok(DEFAULT_ERRNO_RET),
        Some(value) => u16::try_from(value).map_err(|_| SeccompError::Invalid {
            field: errno_field.to_owned(),
            value: value.to_string(),
            reason: "seccomp returns at most 16 bits of data (0 to 65535)",
        }),
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                field: action_field.to_owned(),
                value: action.to_string(),
            })
        }
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Why libseccomp would not add an architecture, in words.
fn arch_refusal(source: &LibseccompError) -> String {
    match source.errno() {
        Some(SeccompErrno::EINVAL) => {
            format!("libseccomp {} does not know it", libseccomp_version())
        }
        // One filter serves architectures of a single byte order.
        Some(SeccompErrno::EDOM) => {
            "its byte order differs from the native architecture's".to_owned()
        }
        _ => format!("libseccomp {}: {source}", libseccomp_version()),
    }
}

/// Sets the filter attributes behind `flags` (libseccomp checks that the
/// kernel has them) and returns the bits for seccomp(2).
fn set_flags(
    ctx: &mut ScmpFilterContext,
    flags: &[LinuxSeccompFilterFlag],
) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for (i, flag) in flags.iter().enumerate() {
        let field = || format!("linux.seccomp.flags[{i}]");
        let (set, bit) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                (ctx.set_ctl_tsync(true).map(drop), FLAG_TSYNC)
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                (ctx.set_ctl_log(true).map(drop), FLAG_LOG)
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                (ctx.set_ctl_ssb(true).map(drop), FLAG_SPEC_ALLOW)
            }
            // Only meaningful with a notification listener.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    field: field(),
                    value: flag.to_string(),
                })
            }
        };
        set.map_err(|source| SeccompError::FlagUnavailable {
            field: field(),
            flag: flag.to_string(),
            version: libseccomp_version(),
            source,
        })?;
        bits |= bit;
    }
    Ok(bits)
}

/// One validated entry of `linux.seccomp.syscalls`.
struct Rule<'a> {
    /// Its index in `linux.seccomp.syscalls`.
    index: usize,
    names: &'a [String],
    action: ScmpAction,
    conditions: Vec<ScmpArgCompare>,
    /// Two conditions test the same argument: each condition becomes a
    /// rule of its own.
    split: bool,
}

impl<'a> Rule<'a> {
    fn parse(index: usize, syscall: &'a LinuxSyscall) -> Result<Self, SeccompError> {
        let field = |rest: &str| format!("linux.seccomp.syscalls[{index}].{rest}");
        let action = scmp_action(
            syscall.action(),
            syscall.errno_ret(),
            &field("action"),
            &field("errnoRet"),
        )?;
        for (j, name) in syscall.names().iter().enumerate() {
            if name.is_empty() {
                return Err(SeccompError::Invalid {
                    field: field(&format!("names[{j}]")),
                    value: "\"\"".to_owned(),
                    reason: "a system call name cannot be empty",
                });
            }
        }
        let args = syscall.args().as_deref().unwrap_or_default();
        let mut per_arg = [0usize; MAX_ARGS];
        let mut conditions = Vec::with_capacity(args.len());
        for (j, arg) in args.iter().enumerate() {
            let Some(count) = per_arg.get_mut(arg.index()) else {
                return Err(SeccompError::Invalid {
                    field: field(&format!("args[{j}].index")),
                    value: arg.index().to_string(),
                    reason: "system calls have arguments 0 to 5",
                });
            };
            *count += 1;
            conditions.push(condition(arg));
        }
        Ok(Rule {
            index,
            names: syscall.names(),
            action,
            conditions,
            split: per_arg.iter().any(|&n| n > 1),
        })
    }

    /// Adds the rule for each of its names, and returns how many
    /// libseccomp rules that made.
    fn add_to(
        &self,
        ctx: &mut ScmpFilterContext,
        default_action: ScmpAction,
        arches: &[(String, ScmpArch)],
        warnings: &mut Vec<String>,
    ) -> Result<usize, SeccompError> {
        if self.action == default_action {
            return Ok(0);
        }
        let mut added = 0;
        for (j, name) in self.names.iter().enumerate() {
            let field = format!("linux.seccomp.syscalls[{}].names[{j}]", self.index);
            // Resolves through libseccomp's table of every architecture:
            // failing means no architecture has the name.
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                warnings.push(format!(
                    "{field}: system call {name:?} is not known to libseccomp {}; rule skipped",
                    libseccomp_version()
                ));
                continue;
            };
            let exists = arches.iter().any(|(_, arch)| {
                ScmpSyscall::from_name_by_arch_rewrite(name, *arch)
                    .is_ok_and(|nr| nr.as_raw_syscall() >= 0)
            });
            if !exists {
                let names: Vec<&str> = arches.iter().map(|(n, _)| n.as_str()).collect();
                warnings.push(format!(
                    "{field}: system call {name:?} does not exist on the filter's \
                     architectures ({}); rule has no effect",
                    names.join(", ")
                ));
            }
            let groups: Vec<&[ScmpArgCompare]> = if self.split {
                self.conditions.chunks(1).collect()
            } else {
                vec![&self.conditions[..]]
            };
            for conditions in groups {
                ctx.add_rule_conditional(self.action, syscall, conditions)
                    .map_err(|source| SeccompError::Libseccomp {
                        op: format!("add the rule for system call {name:?} ({field})"),
                        source,
                    })?;
                added += 1;
            }
        }
        Ok(added)
    }
}

fn condition(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // `value` is the mask, `valueTwo` what the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                arg_number(arg),
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            )
        }
    };
    ScmpArgCompare::new(arg_number(arg), op, arg.value())
}

/// The argument index, already checked to be below [`MAX_ARGS`].
fn arg_number(arg: &LinuxSeccompArg) -> u32 {
    u32::try_from(arg.index()).unwrap_or(u32::MAX)
}

/// Writes the program to a memfd (libseccomp 2.5 exports only to a file
/// descriptor; a pipe could fill up) and reads it back.
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let fd = memfd_create("sandvisor-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| SeccompError::Export(e.into()))?;
    ctx.export_bpf(&fd)
        .map_err(|source| SeccompError::Libseccomp {
            op: "export the seccomp filter as BPF".to_owned(),
            source,
        })?;
    let mut file = File::from(fd);
    let mut bpf = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(SeccompError::Export)?;
    Ok(bpf)
}

fn libseccomp_version() -> String {
    ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "(unknown version)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("profile parses")
    }

    #[test]
    fn support_lists_what_compiles_and_leaves_out_notify() {
        let support = support();
        assert_eq!(
            support.actions,
            [
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_LOG",
            ]
        );
        assert_eq!(support.operators.len(), 7);
        for arch in ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"] {
            assert!(support.archs.iter().any(|a| a == arch), "{arch}");
        }
        assert!(support
            .flags
            .iter()
            .all(|f| f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
        assert!(support.flags.iter().any(|f| f == "SECCOMP_FILTER_FLAG_LOG"));
    }

    fn compile_json(json: &str) -> Result<Compiled, SeccompError> {
        compile(&profile(json))
    }

    fn program(json: &str) -> SeccompProgram {
        let compiled = compile_json(json).expect("profile compiles");
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
        compiled.program
    }

    fn unsupported(json: &str) -> (String, String) {
        match compile_json(json) {
            Err(SeccompError::Unsupported { field, value }) => (field, value),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn invalid(json: &str) -> (String, String) {
        match compile_json(json) {
            Err(SeccompError::Invalid { field, value, .. }) => (field, value),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // ---- compiling --------------------------------------------------------

    #[test]
    fn errno_profile_with_allow_list_compiles_to_whole_instructions() {
        let compiled = compile_json(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                    {"names": ["read", "write", "exit", "exit_group", "brk", "mmap"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
                ]
            }"#,
        )
        .expect("profile compiles");
        let bpf = &compiled.program.bpf;
        assert!(!bpf.is_empty());
        assert_eq!(bpf.len() % 8, 0, "{} bytes", bpf.len());
        assert_eq!(compiled.program.flags, 0);
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    }

    #[test]
    fn unknown_syscall_name_is_skipped_with_a_warning() {
        let with = compile_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .expect("profile compiles");
        let without = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(with.program, without);
        assert_eq!(with.warnings.len(), 1, "{:?}", with.warnings);
        let warning = &with.warnings[0];
        assert!(
            warning.starts_with("linux.seccomp.syscalls[0].names[1]: ")
                && warning.contains("\"no_such_syscall\"")
                && warning.contains("skipped"),
            "{warning}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn name_absent_from_the_filter_architectures_warns_and_changes_nothing() {
        let with = compile_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd", "arm_fadvise64_64"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .expect("profile compiles");
        let without = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(with.program, without);
        assert_eq!(with.warnings.len(), 1, "{:?}", with.warnings);
        assert!(
            with.warnings[0].contains("\"arm_fadvise64_64\"")
                && with.warnings[0].contains("no effect"),
            "{}",
            with.warnings[0]
        );
        // On a filter that includes ARM, the same name is a real rule.
        let arm = compile_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_ARM"],
                "syscalls": [{"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .expect("profile compiles");
        assert!(arm.warnings.is_empty(), "{:?}", arm.warnings);
    }

    #[test]
    fn notify_default_action_is_unsupported() {
        let (field, value) = unsupported(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        assert_eq!(field, "linux.seccomp.defaultAction");
        assert_eq!(value, "SCMP_ACT_NOTIFY");
    }

    #[test]
    fn notify_rule_action_is_unsupported() {
        let (field, value) = unsupported(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert_eq!(field, "linux.seccomp.syscalls[1].action");
        assert_eq!(value, "SCMP_ACT_NOTIFY");
    }

    #[test]
    fn listener_fields_are_unsupported() {
        let (field, _) = unsupported(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#,
        );
        assert_eq!(field, "linux.seccomp.listenerPath");
        let (field, _) =
            unsupported(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "opaque"}"#);
        assert_eq!(field, "linux.seccomp.listenerMetadata");
        let err = compile_json(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"}"#)
            .expect_err("listenerPath is refused");
        assert_eq!(
            err.to_string(),
            "linux.seccomp.listenerPath: \"/x\" is not supported"
        );
    }

    #[test]
    fn wait_killable_recv_flag_is_unsupported() {
        let (field, value) = unsupported(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        assert_eq!(field, "linux.seccomp.flags[1]");
        assert_eq!(value, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }

    #[test]
    fn filter_flags_become_seccomp_flags() {
        let none = program(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
        assert_eq!(none.flags, 0);
        let all = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        );
        assert_eq!(all.flags, FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
        assert_eq!(all.flags, 0b111);
        // Flags do not change the program itself.
        assert_eq!(all.bpf, none.bpf);
    }

    #[test]
    fn unknown_names_are_rejected_by_oci_spec_deserialization() {
        for (json, name) in [
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#,
                "SCMP_ARCH_VAX",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}"#,
                "SECCOMP_FILTER_FLAG_FOO",
            ),
            (r#"{"defaultAction": "SCMP_ACT_FOO"}"#, "SCMP_ACT_FOO"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"],
                    "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}"#,
                "SCMP_CMP_FOO",
            ),
        ] {
            let err = serde_json::from_str::<LinuxSeccomp>(json).expect_err(name);
            assert!(
                err.to_string()
                    .contains(&format!("unknown variant `{name}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn architecture_unknown_to_libseccomp_is_named() {
        let result = compile_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64"]}"#,
        );
        let version = ScmpVersion::current().expect("libseccomp version");
        if (version.major, version.minor) >= (2, 6) {
            assert!(result.is_ok(), "{result:?}");
            return;
        }
        match result {
            Err(e @ SeccompError::Architecture { .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "linux.seccomp.architectures[1]: architecture SCMP_ARCH_LOONGARCH64 \
                     cannot be added to the filter: libseccomp {version} does not know it"
                )
            ),
            other => panic!("expected Architecture, got {other:?}"),
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn architecture_of_the_other_byte_order_is_refused() {
        match compile_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}"#,
        ) {
            Err(SeccompError::Architecture {
                field,
                arch,
                reason,
                ..
            }) => {
                assert_eq!(field, "linux.seccomp.architectures[0]");
                assert_eq!(arch, "SCMP_ARCH_S390X");
                assert!(reason.contains("byte order"), "{reason}");
            }
            other => panic!("expected Architecture, got {other:?}"),
        }
    }

    #[test]
    fn extra_architectures_lengthen_the_program() {
        let native = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let explicit_native = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NATIVE"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(native, explicit_native);
        let three = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(three.bpf.len() > native.bpf.len());
    }

    #[test]
    fn rule_with_the_default_action_is_dropped() {
        let empty = program(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#);
        for rule in [
            r#"{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}"#,
            r#"{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}"#,
        ] {
            let json = format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{rule}]}}"#);
            assert_eq!(program(&json), empty, "{rule}");
        }
        // A different errno is a different action.
        let other = program(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]}"#,
        );
        assert_ne!(other, empty);
        // SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        let kill = program(r#"{"defaultAction": "SCMP_ACT_KILL"}"#);
        let kill_thread = program(
            r#"{"defaultAction": "SCMP_ACT_KILL_THREAD", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_KILL"}]}"#,
        );
        assert_eq!(kill, kill_thread);
    }

    #[test]
    fn conditions_on_one_argument_compile_as_separate_rules() {
        let combined = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 999999, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        let separate = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 999999, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(combined, separate);
    }

    #[test]
    fn errno_ret_beyond_16_bits_is_invalid() {
        let (field, value) = invalid(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]}"#,
        );
        assert_eq!(field, "linux.seccomp.syscalls[0].errnoRet");
        assert_eq!(value, "65536");
        let (field, _) =
            invalid(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#);
        assert_eq!(field, "linux.seccomp.defaultErrnoRet");
        // Ignored, as by runc, where it means nothing.
        program(r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 70000}"#);
    }

    #[test]
    fn argument_index_beyond_5_is_invalid() {
        let (field, value) = invalid(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"],
                "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 5, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(field, "linux.seccomp.syscalls[0].args[1].index");
        assert_eq!(value, "6");
    }

    #[test]
    fn empty_syscall_name_is_invalid() {
        let (field, _) = invalid(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd", ""], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(field, "linux.seccomp.syscalls[0].names[1]");
    }

    #[test]
    fn program_round_trips_through_cbor() {
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let bytes = serde_cbor::to_vec(&program).expect("encode");
        let back: SeccompProgram = serde_cbor::from_slice(&bytes).expect("decode");
        assert_eq!(back, program);
    }

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

    // ---- installing, in forked children -----------------------------------

    const SETUP_FAILED: i32 = 100;
    const INSTALL_FAILED: i32 = 101;

    /// Runs `body` in a forked child under `program` and returns how the
    /// child ended. `body` returns 0, or the number of the check that
    /// failed; like everything in the child, it may only make system calls:
    /// the test binary is multi-threaded.
    fn run_filtered(program: &SeccompProgram, body: fn() -> i32) -> WaitStatus {
        // SAFETY: the child makes system calls only (prctl, setrlimit,
        // seccomp and those of `body`), allocates nothing, takes no lock
        // another thread may have held at the fork, and leaves with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = filtered_child(program, body);
                // SAFETY: _exit ends the child without running the exit
                // handlers of the test harness, which it shares memory with.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    fn filtered_child(program: &SeccompProgram, body: fn() -> i32) -> i32 {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct; prctl takes integers. No core
        // file when a kill action ends the child; no_new_privs lets an
        // unprivileged thread install a filter.
        let ok = unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core) == 0
                && libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        };
        if !ok {
            return SETUP_FAILED;
        }
        match install(program) {
            Ok(()) => body(),
            Err(_) => INSTALL_FAILED,
        }
    }

    fn assert_exited_ok(status: WaitStatus) {
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "child ended with {status:?} (exit code = number of the failed check; \
             {SETUP_FAILED} = setup, {INSTALL_FAILED} = install)"
        );
    }

    /// The errno of a raw system call's result; 0 for success.
    fn errno_of(ret: libc::c_long) -> i32 {
        if ret == -1 {
            Errno::last_raw()
        } else {
            0
        }
    }

    fn sys_getcwd() -> i32 {
        let mut buf = [0u8; 4096];
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        errno_of(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
    }

    fn sys_uname() -> i32 {
        let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
        // SAFETY: the kernel fills the struct, which is large enough.
        errno_of(unsafe { libc::syscall(libc::SYS_uname, uts.as_mut_ptr()) })
    }

    fn sys_getppid() -> i32 {
        // SAFETY: no arguments.
        errno_of(unsafe { libc::syscall(libc::SYS_getppid) })
    }

    fn sys_getpriority(which: libc::c_ulong, who: libc::c_ulong) -> i32 {
        // SAFETY: integer arguments; the call only reads scheduler state.
        errno_of(unsafe { libc::syscall(libc::SYS_getpriority, which, who) })
    }

    fn sys_personality(persona: libc::c_ulong) -> i32 {
        // SAFETY: integer argument; 0xffffffff only queries the persona.
        errno_of(unsafe { libc::syscall(libc::SYS_personality, persona) })
    }

    fn sys_socket(domain: libc::c_ulong) -> i32 {
        let kind = (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as libc::c_ulong;
        // SAFETY: integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_socket, domain, kind, 0) };
        let errno = errno_of(fd);
        if let (0, Ok(fd)) = (errno, libc::c_int::try_from(fd)) {
            // SAFETY: the descriptor was just created and is ours.
            unsafe { libc::close(fd) };
        }
        errno
    }

    const PRIO_PROCESS: libc::c_ulong = libc::PRIO_PROCESS as libc::c_ulong;
    const PRIO_PGRP: libc::c_ulong = libc::PRIO_PGRP as libc::c_ulong;
    const PRIO_USER: libc::c_ulong = libc::PRIO_USER as libc::c_ulong;
    const AF_INET: libc::c_ulong = libc::AF_INET as libc::c_ulong;
    const AF_UNIX: libc::c_ulong = libc::AF_UNIX as libc::c_ulong;

    #[test]
    fn installed_filter_returns_the_configured_errno() {
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}"#,
        );
        assert_exited_ok(run_filtered(&program, || {
            if sys_getcwd() != libc::EPERM {
                return 1;
            }
            if sys_uname() != 38 {
                return 2;
            }
            // SCMP_ACT_LOG lets the call through.
            if sys_getppid() != 0 {
                return 3;
            }
            // Not in the filter at all.
            if sys_getpriority(PRIO_PROCESS, 0) != 0 {
                return 4;
            }
            0
        }));
    }

    #[test]
    fn installed_filter_applies_default_errno_ret() {
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": [
                {"names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_exited_ok(run_filtered(&program, || {
            if sys_getcwd() != 99 {
                return 1;
            }
            if sys_uname() != 99 {
                return 2;
            }
            if sys_getppid() != 0 {
                return 3;
            }
            0
        }));
    }

    #[test]
    fn installed_filter_matches_argument_conditions_exactly() {
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 255, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert_exited_ok(run_filtered(&program, || {
            if sys_personality(0xffff_ffff) != libc::EPERM {
                return 1;
            }
            // PER_LINUX: the persona a fresh process has anyway.
            if sys_personality(0) != 0 {
                return 2;
            }
            // (family & 0xff) == AF_INET.
            if sys_socket(AF_INET) != libc::EACCES {
                return 3;
            }
            if sys_socket(AF_INET | 0x100) != libc::EACCES {
                return 4;
            }
            if sys_socket(AF_UNIX) != 0 {
                return 5;
            }
            // Conditions on different arguments are ANDed.
            if sys_getpriority(PRIO_PROCESS, 1) != 77 {
                return 6;
            }
            if sys_getpriority(PRIO_PROCESS, 0) != 0 {
                return 7;
            }
            if sys_getpriority(PRIO_PGRP, 1) == 77 {
                return 8;
            }
            0
        }));
    }

    #[test]
    fn installed_filter_ors_conditions_split_like_runc() {
        // Two conditions on argument 0: runc makes each of the three
        // conditions a rule of its own, so any one of them matches.
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 999999, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert_exited_ok(run_filtered(&program, || {
            if sys_getpriority(PRIO_PGRP, 0) != 77 {
                return 1;
            }
            if sys_getpriority(PRIO_USER, 0) != 77 {
                return 2;
            }
            if sys_getpriority(PRIO_PROCESS, 999_999) != 77 {
                return 3;
            }
            if sys_getpriority(PRIO_PROCESS, 0) != 0 {
                return 4;
            }
            0
        }));
    }

    #[test]
    fn installed_large_filter_uses_the_tree_and_still_matches() {
        let names = [
            "getcwd",
            "uname",
            "setpriority",
            "sethostname",
            "setdomainname",
            "acct",
            "swapon",
            "swapoff",
            "reboot",
            "init_module",
            "delete_module",
            "kexec_load",
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "syslog",
            "quotactl",
            "settimeofday",
            "clock_settime",
            "adjtimex",
            "add_key",
            "keyctl",
            "request_key",
            "bpf",
            "perf_event_open",
            "unshare",
            "setns",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "fanotify_init",
            "name_to_handle_at",
            "open_by_handle_at",
            "userfaultfd",
            "personality",
            "vhangup",
            "mbind",
            "move_pages",
        ];
        assert!(names.len() > OPTIMIZE_ABOVE);
        let rules: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"names": ["{n}"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}}"#))
            .collect();
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
            rules.join(",")
        );
        let program = program(&json);
        assert_exited_ok(run_filtered(&program, || {
            if sys_getcwd() != 77 {
                return 1;
            }
            if sys_uname() != 77 {
                return 2;
            }
            if sys_getppid() != 0 {
                return 3;
            }
            if sys_getpriority(PRIO_PROCESS, 0) != 0 {
                return 4;
            }
            0
        }));
    }

    #[test]
    fn installed_trace_without_a_tracer_fails_with_enosys() {
        let program = program(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_TRACE"}]}"#,
        );
        assert_exited_ok(run_filtered(&program, || {
            if sys_getcwd() != libc::ENOSYS {
                return 1;
            }
            0
        }));
    }

    #[test]
    fn installed_kill_and_trap_actions_end_the_child_with_sigsys() {
        for action in [
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL",
            "SCMP_ACT_TRAP",
        ] {
            let program = program(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": ["getcwd"], "action": "{action}"}}]}}"#
            ));
            let status = run_filtered(&program, || {
                sys_getcwd();
                1
            });
            assert!(
                matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
                "{action}: child ended with {status:?}"
            );
        }
    }
}
