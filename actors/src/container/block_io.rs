//! A spec's `linux.resources.blockIO` as control writes, as runc applies
//! it: a weight of 0 means unset (docker sends `"weight": 0` for every
//! container), and the weight goes to the file the kernel's I/O scheduler
//! has: v1's `blkio.weight` (CFQ) or else `blkio.bfq.weight`; v2's
//! `io.bfq.weight` (the v1 scale) or else `io.weight` (its own scale).

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::resources::{unsupported, write, CgroupVersion};
use super::spec::SpecError;
use crate::sys::cgroup_writes::ControlWrite;

/// Plans the block I/O writes of `r`; `v1_blkio` and `io` say where the
/// v1 blkio and the v2 io controllers are.
pub(super) fn block_io(
    r: &LinuxResources,
    v1_blkio: CgroupVersion,
    io: CgroupVersion,
    writes: &mut Vec<ControlWrite>,
) -> Result<(), SpecError> {
    let Some(b) = r.block_io() else {
        return Ok(());
    };
    let weight = b.weight().filter(|w| *w != 0);
    let leaf_weight = b.leaf_weight().filter(|w| *w != 0);
    if v1_blkio == CgroupVersion::V1 {
        if let Some(weight) = weight {
            writes.push(ControlWrite {
                or_else: vec![("blkio.bfq.weight".into(), weight.to_string())],
                ..write("blkio", "blkio.weight", weight)
            });
        }
        // Only CFQ has leaf weights: BFQ has no file for them.
        if let Some(leaf_weight) = leaf_weight {
            writes.push(write("blkio", "blkio.leaf_weight", leaf_weight));
        }
        for (devices, file, _) in throttles(b) {
            for d in devices.iter().flatten() {
                writes.push(write(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
        return Ok(());
    }
    if io == CgroupVersion::V1 {
        return Err(unsupported(
            "linux.resources.blockIO",
            "the host has neither the v1 blkio controller nor the v2 io controller",
        ));
    }
    if leaf_weight.is_some() {
        return Err(unsupported(
            "linux.resources.blockIO.leafWeight",
            "cgroup v2 has no leaf weights",
        ));
    }
    if let Some(weight) = weight {
        writes.push(ControlWrite {
            or_else: vec![("io.weight".into(), format!("default {}", io_weight(weight)))],
            ..write("io", "io.bfq.weight", weight)
        });
    }
    for (devices, _, key) in throttles(b) {
        for d in devices.iter().flatten() {
            writes.push(write(
                "io",
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
            ));
        }
    }
    Ok(())
}

/// The throttles, each with its v1 file and its v2 `io.max` key.
fn throttles(
    b: &LinuxBlockIo,
) -> [(
    &Option<Vec<LinuxThrottleDevice>>,
    &'static str,
    &'static str,
); 4] {
    [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ]
}

/// A v1 blkio weight (10 to 1000) as a v2 io weight (1 to 10000), as runc
/// maps it.
pub fn io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::resources::control_writes;

    fn planned(json: &str, version: CgroupVersion) -> Result<Vec<ControlWrite>, SpecError> {
        control_writes(&serde_json::from_str(json).unwrap(), |_| version)
    }

    /// A write as (file, value, alternatives).
    type Planned<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

    fn files(writes: &[ControlWrite]) -> Vec<Planned<'_>> {
        writes
            .iter()
            .map(|w| {
                let or_else = w
                    .or_else
                    .iter()
                    .map(|(f, v)| (f.as_str(), v.as_str()))
                    .collect();
                (w.file.as_str(), w.value.as_str(), or_else)
            })
            .collect()
    }

    #[test]
    fn a_zero_weight_or_leaf_weight_is_unset() {
        for version in [CgroupVersion::V1, CgroupVersion::V2] {
            let json = r#"{"blockIO":{"weight":0,"leafWeight":0}}"#;
            assert_eq!(planned(json, version).unwrap(), Vec::new(), "{version:?}");
        }
    }

    #[test]
    fn the_weight_goes_to_cfq_s_or_bfq_s_file() {
        let json = r#"{"blockIO":{"weight":500,"leafWeight":300}}"#;
        assert_eq!(
            files(&planned(json, CgroupVersion::V1).unwrap()),
            [
                ("blkio.weight", "500", vec![("blkio.bfq.weight", "500")]),
                ("blkio.leaf_weight", "300", vec![]),
            ]
        );
        let json = r#"{"blockIO":{"weight":500}}"#;
        assert_eq!(
            files(&planned(json, CgroupVersion::V2).unwrap()),
            [("io.bfq.weight", "500", vec![("io.weight", "default 4950")])]
        );
        let json = r#"{"blockIO":{"leafWeight":300}}"#;
        assert!(matches!(
            planned(json, CgroupVersion::V2),
            Err(SpecError::Unsupported { field, .. }) if field == "linux.resources.blockIO.leafWeight"
        ));
    }

    #[test]
    fn the_v2_weight_map_keeps_both_ends() {
        assert_eq!((io_weight(10), io_weight(1000)), (1, 10_000));
        assert_eq!((io_weight(1), io_weight(u16::MAX)), (1, 10_000));
    }
}
