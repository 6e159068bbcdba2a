//! The rules as the v1 devices cgroup reduces them: a default behaviour
//! and a list of exceptions.

use super::{DeviceFilterError, DeviceRule, ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR};

/// An exception of the v1 model: a device class and the access bits that
/// differ from the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exception {
    pub(super) kind: u32,
    pub(super) major: Option<u32>,
    pub(super) minor: Option<u32>,
    pub(super) access: u32,
}

/// What a rule list leaves in a v1 devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reduced {
    pub(super) default_allow: bool,
    pub(super) exceptions: Vec<Exception>,
}

/// Applies `rules` in order as the v1 devices cgroup does, from deny-all.
pub(super) fn reduce(rules: &[DeviceRule]) -> Result<Reduced, DeviceFilterError> {
    let mut out = Reduced {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for (index, rule) in rules.iter().enumerate() {
        let bad = |detail: String| DeviceFilterError::Rule {
            index,
            line: rule.line(),
            detail,
        };
        let kind = match rule.kind {
            // v1 reads nothing after `a`: any numbers or access are ignored.
            'a' => {
                out.default_allow = rule.allow;
                out.exceptions.clear();
                continue;
            }
            'c' => DEV_CHAR,
            'b' => DEV_BLOCK,
            other => return Err(bad(format!("type {other:?} is not a, c or b"))),
        };
        let number = |n: Option<u64>, name: &str| match n {
            None => Ok(None),
            // v1 parses a u32 and takes all ones for `*`.
            Some(n) if n == u64::from(u32::MAX) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| bad(format!("{name} {n} is over {}", u32::MAX))),
        };
        let (major, minor) = (number(rule.major, "major")?, number(rule.minor, "minor")?);
        let mut access = 0;
        for c in rule.access.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => return Err(bad(format!("access {other:?} is not r, w or m"))),
            };
        }
        let same = |e: &Exception| e.kind == kind && e.major == major && e.minor == minor;
        if rule.allow == out.default_allow {
            // Only the exception with exactly these numbers shrinks: a
            // wildcard one is left whole, as v1 leaves it.
            for e in out.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !access;
            }
            out.exceptions.retain(|e| !same(e) || e.access != 0);
        } else if let Some(e) = out.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= access;
        } else {
            out.exceptions.push(Exception {
                kind,
                major,
                minor,
                access,
            });
        }
    }
    Ok(out)
}
