//! The process: its stdio, user, capabilities, rlimits, env, cwd and
//! seccomp profile.

use std::collections::HashSet;

use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

use super::{invalid, unsupported, FdSource, FdTable, SpecError};
use crate::container::plan::{CapabilityPlan, ProcessPlan, RlimitPlan, StdioPlan};
use crate::container::seccomp::{self, ProfileError};
use crate::sys::tty::WindowSize;

pub(super) fn stdio(
    process: &Process,
    terminal: bool,
    caller_terminal: bool,
    fds: &mut FdTable,
) -> StdioPlan {
    if terminal {
        let size = process.console_size().map(|b| WindowSize {
            rows: b.height().min(u64::from(u16::MAX)) as u16,
            cols: b.width().min(u64::from(u16::MAX)) as u16,
        });
        if caller_terminal {
            StdioPlan::Terminal {
                slave: fds.add(FdSource::TerminalSlave),
                size,
            }
        } else {
            StdioPlan::NewTerminal {
                channel: fds.add(FdSource::ConsoleChannel),
                size,
            }
        }
    } else {
        StdioPlan::Fds {
            stdin: fds.add(FdSource::Stdio(0)),
            stdout: fds.add(FdSource::Stdio(1)),
            stderr: fds.add(FdSource::Stdio(2)),
        }
    }
}

pub(super) fn process_plan(
    p: &Process,
    seccomp_spec: Option<&oci_spec::runtime::LinuxSeccomp>,
    stdio: StdioPlan,
) -> Result<(ProcessPlan, Vec<String>), SpecError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid("process.args", "must name a program"));
    }
    if p.command_line().as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(unsupported("process.commandLine", "a windows field"));
    }
    let cwd = p
        .cwd()
        .to_str()
        .ok_or_else(|| invalid("process.cwd", "not valid utf-8"))?;
    if !cwd.starts_with('/') {
        return Err(invalid("process.cwd", format!("{cwd:?} is not absolute")));
    }
    let user = p.user();
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let resource = rlimit_number(r.typ());
        if !seen.insert(resource) {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("{:?} given twice", r.typ()),
            ));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
            ));
        }
        rlimits.push(RlimitPlan {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let (seccomp, mut warnings) = match seccomp_spec {
        None => (None, Vec::new()),
        Some(s) => {
            let compiled = seccomp::compile(s).map_err(|e| match e {
                ProfileError::Unsupported { field, value } => {
                    unsupported(field, format!("{value} is not supported"))
                }
                other => invalid("linux.seccomp", other.to_string()),
            })?;
            (Some(compiled.program), compiled.warnings)
        }
    };
    let capabilities = p.capabilities().as_ref().map(capability_plan);
    if let Some(caps) = &capabilities {
        // The kernel raises an ambient capability only if it is permitted
        // and inheritable; like runc, say which are not raised and go on.
        let dropped = caps.ambient & !(caps.permitted & caps.inheritable);
        if dropped != 0 {
            warnings.push(format!(
                "process.capabilities.ambient: {} not raised: an ambient capability must also be permitted and inheritable",
                capability_names(dropped).join(", ")
            ));
        }
    }
    let capabilities = capabilities.map(|mut c| {
        c.ambient &= c.permitted & c.inheritable;
        c
    });
    Ok((
        ProcessPlan {
            executable: None,
            args,
            env: p.env().clone().unwrap_or_default(),
            cwd: cwd.to_owned(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            capabilities,
            rlimits,
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            stdio,
            preserved_fds: Vec::new(),
            seccomp,
        },
        warnings,
    ))
}

fn rlimit_number(t: PosixRlimitType) -> u32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as u32
}

/// The bit of an OCI capability.
pub fn capability_bit(c: &oci_spec::runtime::Capability) -> u64 {
    let name = format!("CAP_{c}");
    name.parse::<caps::Capability>()
        .map_or(0, |cap| cap.bitmask())
}

/// The names of the capabilities in `mask`.
fn capability_names(mask: u64) -> Vec<String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .map(capability_bit)
        .fold(0, |acc, b| acc | b)
}

fn capability_plan(c: &LinuxCapabilities) -> CapabilityPlan {
    CapabilityPlan {
        bounding: mask(c.bounding()),
        effective: mask(c.effective()),
        inheritable: mask(c.inheritable()),
        permitted: mask(c.permitted()),
        ambient: mask(c.ambient()),
    }
}

/// The names of every capability this runtime knows, for `sandvisor
/// features`.
pub fn known_capabilities() -> Vec<String> {
    capability_names(u64::MAX)
}
