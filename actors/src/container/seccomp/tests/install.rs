//! Compiled filters installed in forked children: what the kernel then
//! answers each system call.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::program;
use crate::container::seccomp::OPTIMIZE_ABOVE;
use crate::sys::seccomp::{install, SeccompProgram};

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

/// The checks of a filter that fails getcwd with `GETCWD` and uname with
/// `UNAME` and lets getppid and getpriority through, run in the child.
fn getcwd_and_uname_fail_with<const GETCWD: i32, const UNAME: i32>() -> i32 {
    if sys_getcwd() != GETCWD {
        return 1;
    }
    if sys_uname() != UNAME {
        return 2;
    }
    if sys_getppid() != 0 {
        return 3;
    }
    if sys_getpriority(PRIO_PROCESS, 0) != 0 {
        return 4;
    }
    0
}

#[test]
fn installed_filter_returns_the_configured_errno() {
    let program = program(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]}"#,
    );
    // getppid: SCMP_ACT_LOG lets the call through.
    // getpriority: not in the filter at all.
    assert_exited_ok(run_filtered(
        &program,
        getcwd_and_uname_fail_with::<{ libc::EPERM }, 38>,
    ));
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
    assert_exited_ok(run_filtered(&program, getcwd_and_uname_fail_with::<77, 77>));
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
