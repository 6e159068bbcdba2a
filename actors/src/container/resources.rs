//! A spec's `linux.resources` as cgroup control file writes, for v1 and
//! v2, as runc maps them. Policy only: the writes are applied by the
//! caller (see `sys::cgroup::apply_writes`).
//!
//! Device rules are planned apart (`spec::device_rules`). Limits this
//! build does not apply are refused with [`SpecError::Unsupported`] naming
//! their field, never ignored.

use oci_spec::runtime::LinuxResources;

use super::block_io::block_io;
use super::spec::SpecError;
use crate::sys::cgroup_writes::ControlWrite;

/// Which cgroup version a controller is in on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// A v1 hierarchy with the controller.
    V1,
    /// The unified (v2) hierarchy.
    V2,
}

pub(super) fn write(
    controller: &str,
    file: impl Into<String>,
    value: impl ToString,
) -> ControlWrite {
    ControlWrite {
        controller: controller.to_owned(),
        file: file.into(),
        value: value.to_string(),
        ..ControlWrite::default()
    }
}

pub(super) fn unsupported(field: &str, detail: &str) -> SpecError {
    SpecError::Unsupported {
        field: field.into(),
        detail: detail.into(),
    }
}

fn invalid(field: &str, detail: String) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        detail,
    }
}

/// The writes that apply `resources`; `version` says where each
/// controller is on this host. Only the fields given are written, so the
/// same call updates a running container.
pub fn control_writes(
    resources: &LinuxResources,
    version: impl Fn(&str) -> CgroupVersion,
) -> Result<Vec<ControlWrite>, SpecError> {
    refuse_unsupported(resources)?;
    let mut writes = Vec::new();
    memory(resources, version("memory"), &mut writes)?;
    cpu(resources, &version, &mut writes)?;
    if let Some(pids) = resources.pids() {
        let limit = pids.limit();
        writes.push(write(
            "pids",
            "pids.max",
            if limit > 0 {
                limit.to_string()
            } else {
                "max".into()
            },
        ));
    }
    block_io(resources, version("blkio"), version("io"), &mut writes)?;
    for limit in resources.hugepage_limits().iter().flatten() {
        let size = limit.page_size();
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "linux.resources.hugepageLimits",
                format!("bad page size {size:?}"),
            ));
        }
        let file = match version("hugetlb") {
            CgroupVersion::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            CgroupVersion::V2 => format!("hugetlb.{size}.max"),
        };
        writes.push(write("hugetlb", file, limit.limit()));
    }
    for (key, value) in resources.unified().iter().flatten() {
        let field = format!("linux.resources.unified[{key:?}]");
        let controller = key.split('.').next().unwrap_or_default();
        let plain = !key.is_empty()
            && !key.starts_with('.')
            && !key.starts_with("cgroup.")
            && key.contains('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            return Err(invalid(&field, "not a controller's file name".into()));
        }
        if version(controller) == CgroupVersion::V1 {
            return Err(unsupported(
                &field,
                "unified resources need the controller on cgroup v2",
            ));
        }
        writes.push(write(controller, key.clone(), value));
    }
    Ok(writes)
}

fn memory(
    r: &LinuxResources,
    version: CgroupVersion,
    writes: &mut Vec<ControlWrite>,
) -> Result<(), SpecError> {
    let Some(m) = r.memory() else {
        return Ok(());
    };
    let unlimited_or = |v: i64, field: &str| -> Result<String, SpecError> {
        match v {
            -1 => Ok("max".into()),
            v if v > 0 => Ok(v.to_string()),
            v => Err(invalid(field, format!("{v} is neither positive nor -1"))),
        }
    };
    match version {
        CgroupVersion::V1 => {
            if let Some(limit) = m.limit() {
                writes.push(ControlWrite {
                    swap_with_next: m.swap().is_some(),
                    ..write("memory", "memory.limit_in_bytes", limit)
                });
            }
            if let Some(swap) = m.swap() {
                writes.push(write("memory", "memory.memsw.limit_in_bytes", swap));
            }
            if let Some(reservation) = m.reservation() {
                writes.push(write("memory", "memory.soft_limit_in_bytes", reservation));
            }
            if let Some(swappiness) = m.swappiness() {
                if swappiness > 100 {
                    return Err(invalid(
                        "linux.resources.memory.swappiness",
                        format!("{swappiness} is above 100"),
                    ));
                }
                writes.push(write("memory", "memory.swappiness", swappiness));
            }
            if m.disable_oom_killer() == Some(true) {
                writes.push(write("memory", "memory.oom_control", 1));
            }
        }
        CgroupVersion::V2 => {
            if let Some(limit) = m.limit() {
                writes.push(write(
                    "memory",
                    "memory.max",
                    unlimited_or(limit, "linux.resources.memory.limit")?,
                ));
            }
            if let Some(swap) = m.swap() {
                // The spec's swap is memory plus swap; v2 limits swap alone.
                let value = match (swap, m.limit()) {
                    (-1, _) => "max".to_owned(),
                    (swap, Some(limit)) if limit > 0 && swap >= limit => (swap - limit).to_string(),
                    _ => {
                        return Err(invalid(
                            "linux.resources.memory.swap",
                            format!(
                                "{swap}: on cgroup v2 it needs a memory limit no larger than it"
                            ),
                        ))
                    }
                };
                writes.push(write("memory", "memory.swap.max", value));
            }
            if let Some(reservation) = m.reservation() {
                writes.push(write(
                    "memory",
                    "memory.low",
                    unlimited_or(reservation, "linux.resources.memory.reservation")?,
                ));
            }
            if m.swappiness().is_some() {
                return Err(unsupported(
                    "linux.resources.memory.swappiness",
                    "cgroup v2 has no per-cgroup swappiness",
                ));
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(unsupported(
                    "linux.resources.memory.disableOOMKiller",
                    "cgroup v2 cannot disable the OOM killer",
                ));
            }
        }
    }
    Ok(())
}

fn cpu(
    r: &LinuxResources,
    version: &impl Fn(&str) -> CgroupVersion,
    writes: &mut Vec<ControlWrite>,
) -> Result<(), SpecError> {
    let Some(c) = r.cpu() else {
        return Ok(());
    };
    // 0 means unset, as runc reads it.
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        writes.push(match version("cpu") {
            CgroupVersion::V1 => write("cpu", "cpu.shares", shares),
            CgroupVersion::V2 => write("cpu", "cpu.weight", cpu_weight(shares)),
        });
    }
    if c.quota().is_some() || c.period().is_some() {
        match version("cpu") {
            CgroupVersion::V1 => {
                if let Some(period) = c.period() {
                    writes.push(write("cpu", "cpu.cfs_period_us", period));
                }
                if let Some(quota) = c.quota() {
                    writes.push(write("cpu", "cpu.cfs_quota_us", quota));
                }
            }
            CgroupVersion::V2 => {
                let quota = match c.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                let period = c.period().unwrap_or(100_000);
                writes.push(write("cpu", "cpu.max", format!("{quota} {period}")));
            }
        }
    }
    if let Some(cpus) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
        writes.push(write("cpuset", "cpuset.cpus", cpus));
    }
    if let Some(mems) = c.mems().as_ref().filter(|s| !s.is_empty()) {
        writes.push(write("cpuset", "cpuset.mems", mems));
    }
    Ok(())
}

/// cgroup v1 cpu shares (2 to 262144) as a v2 cpu weight (1 to 10000), by
/// the linear map runc and crun use.
pub fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The settings accepted and not applied, with why, for a warning in the
/// log: runc (since 1.0) accepts kernel memory settings and ignores them,
/// and the OCI validation suite and older clients still send them.
pub fn ignored_settings(r: &LinuxResources) -> Vec<(&'static str, &'static str)> {
    let memory = r.memory().as_ref();
    let mut ignored = Vec::new();
    if memory.is_some_and(|m| m.kernel().is_some()) {
        ignored.push((
            "linux.resources.memory.kernel",
            "ignored, as runc ignores it: the kernel no longer enforces kernel memory limits",
        ));
    }
    if memory.is_some_and(|m| m.kernel_tcp().is_some()) {
        ignored.push((
            "linux.resources.memory.kernelTCP",
            "ignored, as runc ignores kernel memory settings",
        ));
    }
    ignored
}

/// Refuses the limits this build does not apply, naming the first one.
pub fn refuse_unsupported(r: &LinuxResources) -> Result<(), SpecError> {
    let cpu = r.cpu().as_ref();
    let block = r.block_io().as_ref();
    let checks = [
        (
            cpu.is_some_and(|c| c.realtime_runtime().is_some() || c.realtime_period().is_some()),
            "linux.resources.cpu.realtimeRuntime",
            "real-time cpu limits are not supported",
        ),
        (
            cpu.is_some_and(|c| c.idle().is_some()),
            "linux.resources.cpu.idle",
            "cpu.idle is not supported",
        ),
        (
            cpu.is_some_and(|c| c.burst().is_some()),
            "linux.resources.cpu.burst",
            "cpu bursts are not supported",
        ),
        (
            block.is_some_and(|b| b.weight_device().as_ref().is_some_and(|d| !d.is_empty())),
            "linux.resources.blockIO.weightDevice",
            "per-device weights are not supported",
        ),
        (
            r.network().is_some(),
            "linux.resources.network",
            "network class ids and priorities are not supported",
        ),
        (
            r.rdma().as_ref().is_some_and(|h| !h.is_empty()),
            "linux.resources.rdma",
            "rdma limits are not supported",
        ),
    ];
    match checks.into_iter().find(|(present, _, _)| *present) {
        Some((_, field, detail)) => Err(unsupported(field, detail)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn files(json: &str, version: CgroupVersion) -> Vec<(String, String)> {
        control_writes(&resources(json), |_| version)
            .unwrap()
            .into_iter()
            .map(|w| (w.file, w.value))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn memory_maps_to_each_version_s_files() {
        let json = r#"{"memory":{"limit":104857600,"reservation":52428800,"swap":209715200}}"#;
        assert_eq!(
            files(json, CgroupVersion::V1),
            pairs(&[
                ("memory.limit_in_bytes", "104857600"),
                ("memory.memsw.limit_in_bytes", "209715200"),
                ("memory.soft_limit_in_bytes", "52428800"),
            ])
        );
        let v1 = control_writes(&resources(json), |_| CgroupVersion::V1).unwrap();
        assert!(v1[0].swap_with_next && !v1[1].swap_with_next);
        assert_eq!(
            files(json, CgroupVersion::V2),
            pairs(&[
                ("memory.max", "104857600"),
                ("memory.swap.max", "104857600"),
                ("memory.low", "52428800"),
            ])
        );
        assert_eq!(
            files(r#"{"memory":{"limit":-1,"swap":-1}}"#, CgroupVersion::V2),
            pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
        );
        assert_eq!(
            files(
                r#"{"memory":{"swappiness":10,"disableOOMKiller":true}}"#,
                CgroupVersion::V1
            ),
            pairs(&[("memory.swappiness", "10"), ("memory.oom_control", "1")])
        );
    }

    #[test]
    fn cpu_pids_io_and_hugetlb_map_as_runc_maps_them() {
        let json = r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
                       "pids":{"limit":64},"blockIO":{"weight":500,
                       "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]},
                       "hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#;
        assert_eq!(
            files(json, CgroupVersion::V1),
            pairs(&[
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("pids.max", "64"),
                ("blkio.weight", "500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
            ])
        );
        assert_eq!(
            files(json, CgroupVersion::V2),
            pairs(&[
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("pids.max", "64"),
                ("io.bfq.weight", "500"),
                ("io.max", "8:0 rbps=1048576"),
                ("hugetlb.2MB.max", "4194304"),
            ])
        );
        assert_eq!(
            files(
                r#"{"pids":{"limit":0},"cpu":{"shares":0,"quota":-1}}"#,
                CgroupVersion::V2
            ),
            pairs(&[("cpu.max", "max 100000"), ("pids.max", "max")])
        );
    }

    #[test]
    fn the_weight_maps_keep_both_ends() {
        assert_eq!((cpu_weight(2), cpu_weight(262_144)), (1, 10_000));
        assert_eq!((cpu_weight(1), cpu_weight(1_000_000)), (1, 10_000));
    }

    #[test]
    fn kernel_memory_is_accepted_ignored_and_named() {
        let json = r#"{"memory":{"limit":67108864,"kernel":1000000,"kernelTCP":500000}}"#;
        for version in [CgroupVersion::V1, CgroupVersion::V2] {
            let written = files(json, version);
            assert_eq!(written.len(), 1, "{written:?}");
            assert!(written[0].0.starts_with("memory."), "{written:?}");
        }
        let fields: Vec<&str> = ignored_settings(&resources(json))
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "linux.resources.memory.kernel",
                "linux.resources.memory.kernelTCP"
            ]
        );
        assert!(ignored_settings(&resources(r#"{"memory":{"limit":1}}"#)).is_empty());
    }

    #[test]
    fn unified_entries_are_v2_files_only() {
        assert_eq!(
            files(
                r#"{"unified":{"memory.high":"1000000"}}"#,
                CgroupVersion::V2
            ),
            pairs(&[("memory.high", "1000000")])
        );
        for key in ["../memory.max", "cgroup.procs", "memory", "memory/x", ".x"] {
            let json = format!(r#"{{"unified":{{"{key}":"1"}}}}"#);
            assert!(
                matches!(
                    control_writes(&resources(&json), |_| CgroupVersion::V2),
                    Err(SpecError::Invalid { .. })
                ),
                "{key}"
            );
        }
        assert!(matches!(
            control_writes(&resources(r#"{"unified":{"memory.high":"1"}}"#), |_| {
                CgroupVersion::V1
            }),
            Err(SpecError::Unsupported { .. })
        ));
    }

    #[test]
    fn bad_and_unsupported_limits_name_their_field() {
        for (json, version, field) in [
            (
                r#"{"memory":{"swappiness":101}}"#,
                CgroupVersion::V1,
                "linux.resources.memory.swappiness",
            ),
            (
                r#"{"memory":{"swap":100}}"#,
                CgroupVersion::V2,
                "linux.resources.memory.swap",
            ),
            (
                r#"{"memory":{"limit":-5}}"#,
                CgroupVersion::V2,
                "linux.resources.memory.limit",
            ),
            (
                r#"{"memory":{"swappiness":10}}"#,
                CgroupVersion::V2,
                "linux.resources.memory.swappiness",
            ),
            (
                r#"{"cpu":{"realtimeRuntime":1000}}"#,
                CgroupVersion::V1,
                "linux.resources.cpu.realtimeRuntime",
            ),
            (
                r#"{"network":{"classID":1}}"#,
                CgroupVersion::V1,
                "linux.resources.network",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#,
                CgroupVersion::V1,
                "linux.resources.hugepageLimits",
            ),
        ] {
            match control_writes(&resources(json), |_| version) {
                Err(
                    SpecError::Unsupported { field: f, .. } | SpecError::Invalid { field: f, .. },
                ) => {
                    assert_eq!(f, field, "{json}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
