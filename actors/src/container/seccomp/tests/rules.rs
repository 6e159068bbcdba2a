//! Compiling rules: whole instructions, architectures, rules dropped or
//! split, their conditions and operators, and values out of range.

use super::{compile_json, invalid, program};
use crate::sys::seccomp::SeccompProgram;

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
    let (field, _) = invalid(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#);
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
