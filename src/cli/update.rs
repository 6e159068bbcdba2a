//! `sandvisor update`: changes a live container's resource limits, from a
//! JSON `linux.resources` (`--resources FILE`, `-` for stdin, as
//! containerd passes them) and runc's flags, which take precedence.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use oci_spec::runtime::LinuxResources;
use sandvisor_actors::api::container::Update;
use serde_json::{json, Map, Value};

use super::error::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, Status};

/// Arguments of `sandvisor update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file of resources (the spec's linux.resources); - for stdin.
    #[arg(long, short = 'r', value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g; -1 for none).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation (soft limit) in bytes.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes; -1 for unlimited swap.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long, value_name = "N")]
    cpu_share: Option<u64>,
    /// CPU CFS period, in microseconds.
    #[arg(long, value_name = "US")]
    cpu_period: Option<u64>,
    /// CPU CFS quota, in microseconds per period (-1: none).
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// The CPUs it may run on (e.g. 0-1).
    #[arg(long, value_name = "CPUS")]
    cpuset_cpus: Option<String>,
    /// The memory nodes it may use.
    #[arg(long, value_name = "MEMS")]
    cpuset_mems: Option<String>,
    /// Most processes it may have (0 or less: no limit).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000.
    #[arg(long, value_name = "N")]
    blkio_weight: Option<u16>,
    /// The container id.
    id: String,
}

/// Applies the new limits.
pub fn update(global: &GlobalOptions, args: UpdateArgs) -> Result<ExitCode, RunError> {
    let resources = resources_of(&args)?;
    let entry = StateDir::open(&global.root)?.load(&args.id)?;
    if entry.status().0 == Status::Stopped {
        return Err(RunError::Refused(format!(
            "container {:?} is not running",
            args.id
        )));
    }
    Client::connect(&entry.socket)?.invoke(Update {
        cid: args.id,
        resources,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The resources the file and the flags describe (the flags win).
fn resources_of(args: &UpdateArgs) -> Result<LinuxResources, RunError> {
    let mut value = match &args.resources {
        None => json!({}),
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(io("read resources from stdin"))?;
                text
            } else {
                std::fs::read_to_string(path).map_err(|e| RunError::BadConfig {
                    path: path.display().to_string(),
                    detail: e.to_string().to_lowercase(),
                })?
            };
            serde_json::from_str(&text).map_err(|e| RunError::BadConfig {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?
        }
    };
    let bytes = |flag: &str, text: &Option<String>| -> Result<Option<i64>, RunError> {
        text.as_deref()
            .map(|t| {
                parse_bytes(t).ok_or_else(|| {
                    RunError::Refused(format!("invalid --{flag} {t:?}: use bytes, with k, m or g"))
                })
            })
            .transpose()
    };
    let mut set = |section: &str, key: &str, v: Option<Value>| {
        if let (Some(v), Some(root)) = (v, value.as_object_mut()) {
            let entry = root
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(section) = entry.as_object_mut() {
                section.insert(key.to_owned(), v);
            }
        }
    };
    set(
        "memory",
        "limit",
        bytes("memory", &args.memory)?.map(Value::from),
    );
    set(
        "memory",
        "reservation",
        bytes("memory-reservation", &args.memory_reservation)?.map(Value::from),
    );
    set(
        "memory",
        "swap",
        bytes("memory-swap", &args.memory_swap)?.map(Value::from),
    );
    set("cpu", "shares", args.cpu_share.map(Value::from));
    set("cpu", "period", args.cpu_period.map(Value::from));
    set("cpu", "quota", args.cpu_quota.map(Value::from));
    set("cpu", "cpus", args.cpuset_cpus.clone().map(Value::from));
    set("cpu", "mems", args.cpuset_mems.clone().map(Value::from));
    set("pids", "limit", args.pids_limit.map(Value::from));
    set("blockIO", "weight", args.blkio_weight.map(Value::from));
    serde_json::from_value(value).map_err(|e| RunError::BadConfig {
        path: "resources".into(),
        detail: e.to_string(),
    })
}

/// Bytes as runc's flags take them: a number with an optional binary
/// suffix (k, m, g, t; case and a trailing b ignored), or -1.
fn parse_bytes(text: &str) -> Option<i64> {
    let lower = text.trim().to_ascii_lowercase();
    if lower == "-1" {
        return Some(-1);
    }
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.chars().last()? {
        'k' => (&lower[..lower.len() - 1], 10),
        'm' => (&lower[..lower.len() - 1], 20),
        'g' => (&lower[..lower.len() - 1], 30),
        't' => (&lower[..lower.len() - 1], 40),
        _ => (lower, 0),
    };
    let n: i64 = digits.parse().ok().filter(|n| *n >= 0)?;
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_as_runc_s_flags() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("512kb"), Some(512 << 10));
        assert_eq!(parse_bytes("-1"), Some(-1));
        for bad in ["", "m", "-5", "12x", "1.5g"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
