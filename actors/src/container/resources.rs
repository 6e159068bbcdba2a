//! A spec's `linux.resources` as cgroup control file writes. Policy only:
//! the writes are applied by the caller (see `sys::cgroup`).
//!
//! Device rules are planned apart (`spec::device_rules`). Of the limits,
//! this build applies cpu shares; every other limit is refused with
//! [`SpecError::Unsupported`] naming its field, never ignored.

use oci_spec::runtime::LinuxResources;

use super::spec::SpecError;

/// Which cgroup version a write is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// A v1 hierarchy with the write's controller.
    V1,
    /// The unified (v2) hierarchy.
    V2,
}

/// One control file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlWrite {
    /// The controller the file belongs to (v1: the hierarchy that has it;
    /// v2: the one to enable in the parents' `cgroup.subtree_control`).
    pub controller: &'static str,
    /// The file, in the container's cgroup directory.
    pub file: &'static str,
    /// What is written.
    pub value: String,
}

/// The writes that apply `resources` on a host whose `controller` is in
/// `version` (ask [`controllers`] which ones are needed first).
pub fn control_writes(
    resources: &LinuxResources,
    version: impl Fn(&str) -> CgroupVersion,
) -> Result<Vec<ControlWrite>, SpecError> {
    refuse_unsupported(resources)?;
    let mut writes = Vec::new();
    if let Some(shares) = resources.cpu().as_ref().and_then(|c| c.shares()) {
        // 0 means unset, as runc reads it.
        if shares != 0 {
            writes.push(match version("cpu") {
                CgroupVersion::V1 => ControlWrite {
                    controller: "cpu",
                    file: "cpu.shares",
                    value: shares.to_string(),
                },
                CgroupVersion::V2 => ControlWrite {
                    controller: "cpu",
                    file: "cpu.weight",
                    value: cpu_weight(shares).to_string(),
                },
            });
        }
    }
    Ok(writes)
}

/// cgroup v1 cpu shares (2 to 262144) as a v2 cpu weight (1 to 10000), by
/// the linear map runc and crun use.
pub fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Refuses the limits this build does not apply, naming the first one.
pub fn refuse_unsupported(r: &LinuxResources) -> Result<(), SpecError> {
    let cpu = r.cpu().as_ref();
    let checks = [
        (r.memory().is_some(), "linux.resources.memory"),
        (r.pids().is_some(), "linux.resources.pids"),
        (r.block_io().is_some(), "linux.resources.blockIO"),
        (
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
            "linux.resources.hugepageLimits",
        ),
        (r.network().is_some(), "linux.resources.network"),
        (
            r.rdma().as_ref().is_some_and(|h| !h.is_empty()),
            "linux.resources.rdma",
        ),
        (
            r.unified().as_ref().is_some_and(|h| !h.is_empty()),
            "linux.resources.unified",
        ),
        (
            cpu.is_some_and(|c| c.quota().is_some()),
            "linux.resources.cpu.quota",
        ),
        (
            cpu.is_some_and(|c| c.period().is_some()),
            "linux.resources.cpu.period",
        ),
        (
            cpu.is_some_and(|c| c.realtime_runtime().is_some() || c.realtime_period().is_some()),
            "linux.resources.cpu.realtimeRuntime",
        ),
        (
            cpu.is_some_and(|c| c.cpus().is_some()),
            "linux.resources.cpu.cpus",
        ),
        (
            cpu.is_some_and(|c| c.mems().is_some()),
            "linux.resources.cpu.mems",
        ),
        (
            cpu.is_some_and(|c| c.idle().is_some()),
            "linux.resources.cpu.idle",
        ),
    ];
    match checks.iter().find(|(present, _)| *present) {
        Some((_, field)) => Err(SpecError::Unsupported {
            field: (*field).into(),
            detail: "this resource limit is not supported yet (of the limits, only cpu.shares is applied)".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cpu_shares_are_written_as_each_version_names_them() {
        let r = resources(r#"{"cpu":{"shares":1024}}"#);
        assert_eq!(
            control_writes(&r, |_| CgroupVersion::V1).unwrap(),
            vec![ControlWrite {
                controller: "cpu",
                file: "cpu.shares",
                value: "1024".into()
            }]
        );
        assert_eq!(
            control_writes(&r, |_| CgroupVersion::V2).unwrap(),
            vec![ControlWrite {
                controller: "cpu",
                file: "cpu.weight",
                value: "39".into()
            }]
        );
        let unset = resources(r#"{"cpu":{"shares":0}}"#);
        assert!(control_writes(&unset, |_| CgroupVersion::V1)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_weight_map_keeps_both_ends() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(1), 1);
        assert_eq!(cpu_weight(1_000_000), 10_000);
    }

    #[test]
    fn other_limits_are_refused_by_field() {
        for (json, field) in [
            (r#"{"memory":{"limit":1000000}}"#, "linux.resources.memory"),
            (r#"{"pids":{"limit":10}}"#, "linux.resources.pids"),
            (
                r#"{"cpu":{"shares":2,"quota":1000}}"#,
                "linux.resources.cpu.quota",
            ),
            (r#"{"cpu":{"cpus":"0"}}"#, "linux.resources.cpu.cpus"),
            (
                r#"{"unified":{"memory.max":"1"}}"#,
                "linux.resources.unified",
            ),
        ] {
            match control_writes(&resources(json), |_| CgroupVersion::V1) {
                Err(SpecError::Unsupported { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
