//! What the tests of the spec's modules share.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::ContainerContext;

pub(super) fn ctx<'a>(bundle: &'a Path, scratch: &'a Path) -> ContainerContext<'a> {
    ContainerContext {
        bundle,
        scratch_root: scratch,
        cgroup_procs: vec![PathBuf::from("/sys/fs/cgroup/pids/x/cgroup.procs")],
        cgroup_v2_dir: Some(PathBuf::from("/sys/fs/cgroup/unified/x")),
        cgroup_dirs: vec![
            (Some("pids".into()), PathBuf::from("/sys/fs/cgroup/pids/x")),
            (
                Some("unified".into()),
                PathBuf::from("/sys/fs/cgroup/unified/x"),
            ),
        ],
        supervisor_pid: 42,
        gated: false,
        loopback_up: true,
        hook_state: None,
        caller_terminal: false,
        preserve_fds: 0,
    }
}

pub(super) fn parse(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}
