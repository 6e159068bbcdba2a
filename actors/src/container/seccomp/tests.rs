use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::*;
use crate::sys::seccomp::{install, FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};

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

fn compile_json(json: &str) -> Result<Compiled, ProfileError> {
    compile(&profile(json))
}

fn program(json: &str) -> SeccompProgram {
    let compiled = compile_json(json).expect("profile compiles");
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    compiled.program
}

fn unsupported(json: &str) -> (String, String) {
    match compile_json(json) {
        Err(ProfileError::Unsupported { field, value }) => (field, value),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn invalid(json: &str) -> (String, String) {
    match compile_json(json) {
        Err(ProfileError::Invalid { field, value, .. }) => (field, value),
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
