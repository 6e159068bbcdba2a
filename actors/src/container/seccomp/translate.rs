//! The OCI profile's names, one by one, as libseccomp's: actions,
//! architectures, filter flags and argument operators; and the listener
//! fields this build refuses.

use libseccomp::error::SeccompErrno;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::{libseccomp_version, LibseccompError, ProfileError, DEFAULT_ERRNO_RET};
use crate::sys::seccomp::{FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};

pub(super) fn refuse_listener(spec: &LinuxSeccomp) -> Result<(), ProfileError> {
    if let Some(path) = spec.listener_path() {
        if !path.as_os_str().is_empty() {
            return Err(ProfileError::Unsupported {
                field: "linux.seccomp.listenerPath".to_owned(),
                value: format!("{path:?}"),
            });
        }
    }
    if let Some(metadata) = spec.listener_metadata() {
        if !metadata.is_empty() {
            return Err(ProfileError::Unsupported {
                field: "linux.seccomp.listenerMetadata".to_owned(),
                value: format!("{metadata:?}"),
            });
        }
    }
    Ok(())
}

/// The libseccomp action for an OCI action and its `errnoRet`.
pub(super) fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    action_field: &str,
    errno_field: &str,
) -> Result<ScmpAction, ProfileError> {
    let data = || match errno_ret {
        None => Ok(DEFAULT_ERRNO_RET),
        Some(value) => u16::try_from(value).map_err(|_| ProfileError::Invalid {
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
            return Err(ProfileError::Unsupported {
                field: action_field.to_owned(),
                value: action.to_string(),
            })
        }
    })
}

pub(super) fn scmp_arch(arch: Arch) -> ScmpArch {
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
pub(super) fn arch_refusal(source: &LibseccompError) -> String {
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
pub(super) fn set_flags(
    ctx: &mut ScmpFilterContext,
    flags: &[LinuxSeccompFilterFlag],
) -> Result<u32, ProfileError> {
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
                return Err(ProfileError::Unsupported {
                    field: field(),
                    value: flag.to_string(),
                })
            }
        };
        set.map_err(|source| ProfileError::FlagUnavailable {
            field: field(),
            flag: flag.to_string(),
            version: libseccomp_version(),
            source,
        })?;
        bits |= bit;
    }
    Ok(bits)
}

pub(super) fn condition(arg: &LinuxSeccompArg) -> ScmpArgCompare {
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

/// The argument index, already checked to be below [`MAX_ARGS`](super::MAX_ARGS).
fn arg_number(arg: &LinuxSeccompArg) -> u32 {
    u32::try_from(arg.index()).unwrap_or(u32::MAX)
}
