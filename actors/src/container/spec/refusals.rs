//! The spec fields this build refuses rather than ignores.

use oci_spec::runtime::{Process, Spec};

use super::{unsupported, SpecError};

/// Fields this build refuses rather than ignores: the first one present,
/// in the order listed, is the error.
pub(super) fn check_unsupported(spec: &Spec) -> Result<(), SpecError> {
    fn set(s: &Option<String>) -> bool {
        s.as_ref().is_some_and(|s| !s.is_empty())
    }
    let process = spec.process().as_ref();
    let process_has = |field: fn(&Process) -> bool| process.is_some_and(field);
    let linux = spec.linux().as_ref();
    let linux_has = |field: fn(&oci_spec::runtime::Linux) -> bool| linux.is_some_and(field);
    let checks: [(bool, &str, &str); 13] = [
        (
            process_has(|p| set(p.apparmor_profile())),
            "process.apparmorProfile",
            "apparmor is not supported",
        ),
        (
            process_has(|p| set(p.selinux_label())),
            "process.selinuxLabel",
            "selinux is not supported",
        ),
        (
            process_has(|p| p.scheduler().is_some()),
            "process.scheduler",
            "scheduler settings are not supported yet",
        ),
        (
            process_has(|p| p.io_priority().is_some()),
            "process.ioPriority",
            "io priorities are not supported yet",
        ),
        (
            process_has(|p| p.exec_cpu_affinity().is_some()),
            "process.execCPUAffinity",
            "cpu affinity is not supported yet",
        ),
        (
            process_has(|p| set(p.user().username())),
            "process.user.username",
            "user names are a windows field",
        ),
        (
            linux_has(|l| set(l.mount_label())),
            "linux.mountLabel",
            "selinux is not supported",
        ),
        (
            linux_has(|l| l.intel_rdt().is_some()),
            "linux.intelRdt",
            "intel rdt is not supported",
        ),
        (
            linux_has(|l| l.personality().is_some()),
            "linux.personality",
            "personality is not supported yet",
        ),
        (
            linux_has(|l| l.time_offsets().as_ref().is_some_and(|t| !t.is_empty())),
            "linux.timeOffsets",
            "time namespace offsets are not supported yet",
        ),
        (
            linux_has(|l| l.net_devices().as_ref().is_some_and(|d| !d.is_empty())),
            "linux.netDevices",
            "moving network devices is not supported yet",
        ),
        (
            linux_has(|l| l.memory_policy().is_some()),
            "linux.memoryPolicy",
            "memory policies are not supported yet",
        ),
        (
            spec.vm().is_some(),
            "vm",
            "virtual-machine containers are not supported",
        ),
    ];
    match checks.into_iter().find(|(present, _, _)| *present) {
        Some((_, field, reason)) => Err(unsupported(field, reason)),
        None => match linux.and_then(|l| l.resources().as_ref()) {
            Some(resources) => crate::container::resources::refuse_unsupported(resources),
            None => Ok(()),
        },
    }
}
