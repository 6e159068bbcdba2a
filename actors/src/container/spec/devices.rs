//! Devices: the device cgroup rules and the device nodes of `/dev`.

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::{invalid, SpecError};
use crate::container::plan::DevicePlan;

/// The device cgroup rules of a spec: its own, then the devices every
/// container may use (runc's list, so that the default `/dev` works under a
/// deny-all rule).
pub fn device_rules(spec: &Spec) -> Result<Option<Vec<crate::sys::cgroup::DeviceRule>>, SpecError> {
    use crate::sys::cgroup::DeviceRule;
    let Some(rules) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => {
                return Err(invalid(
                    format!("{field}.type"),
                    "fifos have no device rules",
                ))
            }
        };
        let number = |n: Option<i64>, name: &str| match n {
            None | Some(-1) => Ok(None),
            Some(v) => u64::try_from(v)
                .map(Some)
                .map_err(|_| invalid(format!("{field}.{name}"), format!("{v} is negative"))),
        };
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(invalid(
                format!("{field}.access"),
                format!("{access:?} is not made of r, w and m"),
            ));
        }
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major: number(r.major(), "major")?,
            minor: number(r.minor(), "minor")?,
            access,
        });
    }
    out.extend(runc_default_device_rules());
    Ok(Some(out))
}

/// The devices every container may use, as runc allows them: mknod of
/// any, then null, zero, full, tty, random, urandom, console, ptmx, the
/// pts and tun.
pub fn runc_default_device_rules() -> Vec<crate::sys::cgroup::DeviceRule> {
    [
        ('c', None, None, "m"),
        ('b', None, None, "m"),
        ('c', Some(1), Some(3), "rwm"),
        ('c', Some(1), Some(5), "rwm"),
        ('c', Some(1), Some(7), "rwm"),
        ('c', Some(1), Some(8), "rwm"),
        ('c', Some(1), Some(9), "rwm"),
        ('c', Some(5), Some(0), "rwm"),
        ('c', Some(5), Some(1), "rwm"),
        ('c', Some(5), Some(2), "rwm"),
        ('c', Some(136), None, "rwm"),
        ('c', Some(10), Some(200), "rwm"),
    ]
    .into_iter()
    .map(
        |(kind, major, minor, access)| crate::sys::cgroup::DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access: access.into(),
        },
    )
    .collect()
}

/// runc's default devices, created in a tmpfs `/dev`.
pub(super) fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| DevicePlan {
        path: path.into(),
        file_type: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub(super) fn device_plan(d: &LinuxDevice, field: &str) -> Result<DevicePlan, SpecError> {
    let path = d
        .path()
        .to_str()
        .ok_or_else(|| invalid(format!("{field}.path"), "not valid utf-8"))?;
    if !path.starts_with("/dev/") || path.split('/').any(|c| c == "..") {
        return Err(invalid(
            format!("{field}.path"),
            format!("{path:?} is not a path under /dev"),
        ));
    }
    let file_type = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(invalid(
                format!("{field}.type"),
                "\"a\" is not a device type",
            ))
        }
    };
    let number = |v: i64, name: &str| {
        u64::try_from(v).map_err(|_| invalid(format!("{field}.{name}"), format!("{v} is negative")))
    };
    Ok(DevicePlan {
        path: path.to_owned(),
        file_type,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666),
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::default_spec;
    use crate::container::spec::test_support::parse;

    #[test]
    fn the_built_in_spec_denies_every_device_but_runcs_list() {
        let rules = device_rules(&default_spec("x", vec!["sh".into()], false))
            .unwrap()
            .expect("the built-in spec has device rules");
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.allow, r.line()))
            .collect();
        assert_eq!(
            lines,
            [
                "false a",
                "true c *:* m",
                "true b *:* m",
                "true c 1:3 rwm",
                "true c 1:5 rwm",
                "true c 1:7 rwm",
                "true c 1:8 rwm",
                "true c 1:9 rwm",
                "true c 5:0 rwm",
                "true c 5:1 rwm",
                "true c 5:2 rwm",
                "true c 136:* rwm",
                "true c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn device_rules_come_first_then_the_default_allow_list() {
        let spec = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":4,"minor":-1,"access":"rw"}]}}}"#,
        );
        let rules = device_rules(&spec).unwrap().unwrap();
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.allow, r.line()))
            .collect();
        assert_eq!(&lines[..3], ["false a", "true c 4:* rw", "true c *:* m"]);
        assert!(lines.contains(&"true c 136:* rwm".to_string()));
        let bad = parse(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},"linux":{"resources":{"devices":[{"allow":true,"access":"x"}]}}}"#,
        );
        assert_eq!(
            device_rules(&bad).unwrap_err().to_string(),
            "linux.resources.devices[0].access: \"x\" is not made of r, w and m"
        );
    }
}
