//! An exec into a running container: joining it, then the process's
//! own steps.

use nix::errno::Errno;

use super::{descriptors, failure, position, process, raw, steps};
use super::{CGROUP_PROCS, MOUNT_NS, ROOT, USER_NS};
use crate::sys::plan::{ExecPlan, JoinNs, NsKind};
use crate::sys::spawn::child::{exec_process, join_container, Fds};
use crate::sys::spawn::recording_kernel::{Call, RecordingKernel};

fn exec_plan() -> ExecPlan {
    ExecPlan {
        join: vec![
            JoinNs {
                kind: NsKind::Mount,
                fd: MOUNT_NS,
            },
            JoinNs {
                kind: NsKind::User,
                fd: USER_NS,
            },
        ],
        pid_ns: None,
        cgroup_procs: vec![CGROUP_PROCS],
        root: Some(ROOT),
    }
}

#[test]
fn an_exec_joins_the_cgroups_then_the_namespaces_then_the_root() {
    let k = RecordingKernel::default();
    let fds = descriptors();
    assert!(join_container(&k, &exec_plan(), &Fds(&fds)).is_ok());
    assert_eq!(
        k.calls(),
        [
            Call::JoinCgroup(raw(&fds, CGROUP_PROCS)),
            Call::Setns(NsKind::User, raw(&fds, USER_NS)),
            Call::Setns(NsKind::Mount, raw(&fds, MOUNT_NS)),
            Call::Fchdir(raw(&fds, ROOT)),
            Call::Chroot(".".into()),
        ]
    );

    let k = RecordingKernel::default();
    k.fail_when(|c| matches!(c, Call::Fchdir(_)), Errno::EACCES);
    let failure = join_container(&k, &exec_plan(), &Fds(&fds)).expect_err("fails");
    assert_eq!(
        (failure.step, failure.path.as_str(), failure.errno),
        ("fchdir", "container root", libc::EACCES)
    );
    assert!(matches!(k.calls().last(), Some(Call::Fchdir(_))));
}

#[test]
fn a_descriptor_the_plan_names_but_did_not_send_is_a_plan_failure() {
    let mut e = exec_plan();
    e.cgroup_procs = vec![99];
    let k = RecordingKernel::default();
    let fds = descriptors();
    let failure = join_container(&k, &e, &Fds(&fds)).expect_err("fails");
    assert_eq!(
        (failure.step, failure.path.as_str()),
        ("plan", "cgroup.procs")
    );
    assert!(k.calls().is_empty());
}

#[test]
fn an_exec_s_process_does_only_the_process_s_steps() {
    let k = RecordingKernel::default();
    let fds = descriptors();
    let mut p = process(false);
    p.oom_score_adj = Some(-500);
    let failure = failure(exec_process(&k, &p, &Fds(&fds), false));
    assert_eq!(failure.step, "exec");
    let steps = steps(&k);
    assert_eq!(
        steps[..3],
        ["rlimit 7", "oom_score_adj -500", "chdir /work"]
    );
    assert!(position(&steps, "seccomp") < position(&steps, "setresuid 1000"));
}
