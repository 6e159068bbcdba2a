//! Where the seccomp filter goes in, with and without no_new_privs.

use super::{container, container_plan, position, run, steps};
use crate::sys::spawn::recording_kernel::RecordingKernel;

#[test]
fn without_no_new_privileges_the_filter_goes_in_before_the_user_and_capabilities_change() {
    let k = RecordingKernel::default();
    run(&k, &container_plan(container(), false));
    let steps = steps(&k);
    let seccomp = position(&steps, "seccomp");
    assert!(seccomp < position(&steps, "drop bounding 1"), "{steps:#?}");
    assert!(seccomp < position(&steps, "setresuid 1000"), "{steps:#?}");
    assert!(seccomp < position(&steps, "capset"), "{steps:#?}");
    assert!(!steps.iter().any(|s| s == "no_new_privs"), "{steps:#?}");
    assert_eq!(steps.iter().filter(|s| *s == "seccomp").count(), 1);
}

#[test]
fn with_no_new_privileges_the_filter_goes_in_just_before_execve() {
    let k = RecordingKernel::default();
    run(&k, &container_plan(container(), true));
    let steps = steps(&k);
    let n = steps.len();
    assert_eq!(
        steps[n - 3..],
        ["no_new_privs", "seccomp", "execve /usr/bin/sh"]
    );
    assert_eq!(steps.iter().filter(|s| *s == "seccomp").count(), 1);
}
