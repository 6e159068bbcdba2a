//! Capabilities as a process's /proc/PID/status shows them: the masks of
//! capability names (numbers from the `caps` crate, which follows
//! linux/capability.h), the masks a spec's process should get, and the
//! status lines a shell prints about itself.

use ::caps::Capability;
use serde_json::Value;

/// A shell loop that prints its own status lines: builtins only, so the
/// numbers are the shell's own.
pub const OWN_CAPS: &str = "while read -r l; do case \"$l\" in Cap*|NoNewPrivs*|Seccomp:*) echo \"$l\";; esac; done < /proc/$$/status";

/// `Name:\tvalue` lines of a /proc/PID/status text.
pub fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {status:?}"))
}

/// The number of a capability named as in a spec (`CAP_KILL`).
pub fn capability_number(name: &str) -> u32 {
    name.parse::<Capability>()
        .unwrap_or_else(|_| panic!("unknown capability {name}"))
        .index()
        .into()
}

/// The mask /proc/PID/status shows for a list of capability names, as
/// `%016x`.
pub fn capability_mask<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mask = names
        .into_iter()
        .fold(0u64, |m, n| m | 1 << capability_number(n));
    format!("{mask:016x}")
}

/// The mask of one capability set of a spec's process.
pub fn spec_capability_mask(config: &Value, set: &str) -> String {
    let names: Vec<&str> = config["process"]["capabilities"][set]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().expect("name")).collect())
        .unwrap_or_default();
    capability_mask(names)
}
