//! What a profile translates to, and what is refused: actions, flags,
//! architectures and names.

use libseccomp::ScmpVersion;
use oci_spec::runtime::LinuxSeccomp;

use super::{compile_json, program, unsupported};
use crate::container::seccomp::{support, ProfileError};
use crate::sys::seccomp::{FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};

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
        with.warnings[0].contains("\"arm_fadvise64_64\"") && with.warnings[0].contains("no effect"),
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
    let (field, _) =
        unsupported(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#);
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
        Err(e @ ProfileError::Architecture { .. }) => assert_eq!(
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
        Err(ProfileError::Architecture {
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
