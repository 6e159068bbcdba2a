//! A table of failing steps: what each reports, and that nothing after it
//! runs.

use nix::errno::Errno;

use super::{container, container_plan, run};
use crate::sys::plan::NsKind;
use crate::sys::spawn::recording_kernel::{Call, RecordingKernel};

type Rule = fn(&Call) -> bool;

/// A step made to fail, and what the child must report.
struct Case {
    rule: Rule,
    errno: Errno,
    step: &'static str,
    path: &'static str,
}

fn case(rule: Rule, errno: Errno, step: &'static str, path: &'static str) -> Case {
    Case {
        rule,
        errno,
        step,
        path,
    }
}

#[test]
fn a_failing_step_stops_the_sequence_and_reports_its_step_path_and_errno() {
    use Errno::*;
    let cases = [
        case(
            |c| matches!(c, Call::SetParentDeathSignal),
            EPERM,
            "set parent death signal",
            "",
        ),
        case(
            |c| matches!(c, Call::Setns(NsKind::Net, _)),
            EINVAL,
            "setns",
            "net",
        ),
        case(
            |c| matches!(c, Call::JoinCgroup(_)),
            ENOSPC,
            "join cgroup",
            "cgroup.procs",
        ),
        case(
            |c| matches!(c, Call::Unshare(_)),
            ENOMEM,
            "unshare cgroup namespace",
            "",
        ),
        case(
            |c| matches!(c, Call::Sethostname(_)),
            EPERM,
            "sethostname",
            "box",
        ),
        case(
            |c| matches!(c, Call::Setdomainname(_)),
            EPERM,
            "setdomainname",
            "example.org",
        ),
        case(
            |c| matches!(c, Call::Mount { path, .. } if path == "/"),
            EINVAL,
            "mount",
            "/",
        ),
        case(
            |c| matches!(c, Call::OpenDirectory(_)),
            ENOENT,
            "open rootfs",
            "/bundle/rootfs",
        ),
        case(
            |c| matches!(c, Call::Mount { path, .. } if path == "/proc"),
            EPERM,
            "mount",
            "/proc",
        ),
        case(
            |c| matches!(c, Call::IsDirectory(_)),
            ENOENT,
            "stat bind source",
            "/host/data",
        ),
        case(
            |c| matches!(c, Call::Mount { flags, .. } if flags & libc::MS_REMOUNT as u64 != 0),
            EPERM,
            "mount",
            "/data",
        ),
        case(
            |c| matches!(c, Call::Chdir(p) if p == "/bundle/rootfs"),
            ENOENT,
            "chdir",
            "/bundle/rootfs",
        ),
        case(|c| matches!(c, Call::PivotRoot), EINVAL, "pivot_root", "."),
        case(
            |c| matches!(c, Call::WriteSysctl(..)),
            EROFS,
            "sysctl",
            "net.ipv4.ip_forward",
        ),
        case(
            |c| matches!(c, Call::MaskPath(_)),
            EPERM,
            "mount",
            "/proc/kcore",
        ),
        case(
            |c| matches!(c, Call::MakeReadonly(_)),
            EPERM,
            "mount_setattr",
            "/proc/sys",
        ),
        case(
            |c| matches!(c, Call::SetMountAttributes { path, .. } if path == "/"),
            EPERM,
            "mount_setattr",
            "/",
        ),
        case(
            |c| matches!(c, Call::Setrlimit(..)),
            EPERM,
            "setrlimit",
            "resource 7",
        ),
        case(
            |c| matches!(c, Call::Chdir(p) if p == "/work"),
            ENOENT,
            "chdir",
            "/work",
        ),
        case(
            |c| matches!(c, Call::DropBoundingCapability(_)),
            EPERM,
            "drop bounding capability",
            "1",
        ),
        case(
            |c| matches!(c, Call::Setgroups(_)),
            EPERM,
            "setgroups",
            "[10]",
        ),
        case(|c| matches!(c, Call::Setresgid(_)), EPERM, "setgid", "1000"),
        case(
            |c| matches!(c, Call::Setresuid(_)),
            EAGAIN,
            "setuid",
            "1000",
        ),
        case(
            |c| matches!(c, Call::RaiseAmbientCapability(_)),
            EPERM,
            "raise ambient capability",
            "0",
        ),
        case(
            |c| matches!(c, Call::SetDumpable(_)),
            EINVAL,
            "set non-dumpable",
            "",
        ),
        case(|c| matches!(c, Call::Setsid), EPERM, "setsid", ""),
        case(|c| matches!(c, Call::Dup2(_, 1)), EBADF, "dup2", "1"),
        case(
            |c| matches!(c, Call::Dup2(_, 3)),
            EBADF,
            "pass descriptor",
            "3",
        ),
        case(
            |c| matches!(c, Call::SetNoNewPrivs),
            EINVAL,
            "set no_new_privs",
            "",
        ),
        case(
            |c| matches!(c, Call::InstallSeccomp),
            EACCES,
            "install seccomp filter",
            "",
        ),
        case(
            |c| matches!(c, Call::Execve { .. }),
            ENOEXEC,
            "exec",
            "/usr/bin/sh",
        ),
    ];
    for case in cases {
        let k = RecordingKernel::default();
        k.fail_when(case.rule, case.errno);
        let failure = run(&k, &container_plan(container(), true));
        assert_eq!(
            (failure.step, failure.path.as_str(), failure.errno),
            (case.step, case.path, case.errno as i32),
            "{failure:?}"
        );
        let calls = k.calls();
        let last = calls.last().expect("a call");
        assert!(
            (case.rule)(last),
            "{}: nothing runs after the failing step, but {last:?} did",
            case.step
        );
        assert_eq!(
            calls.iter().filter(|c| (case.rule)(c)).count(),
            1,
            "{}: the failing step runs once",
            case.step
        );
    }
}
