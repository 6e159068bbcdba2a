//! `sandvisor state ID` and `sandvisor list`: what the state directory
//! knows of the containers, in runc's formats.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use sandvisor_actors::api::container::{ContainerRuntimeState, RuntimeStatus};
use sandvisor_actors::sys::process::WaitStatus;

use super::GlobalOptions;
use crate::client::Client;
use crate::state::{Entry, StateDir, StateError, Status};

/// Arguments of `sandvisor state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The container id.
    id: String,
}

/// Output formats of `sandvisor list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// A table, as runc prints it.
    Table,
    /// A JSON array of OCI states.
    Json,
}

/// Arguments of `sandvisor list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    format: ListFormat,
    /// Print the ids only.
    #[arg(short, long)]
    quiet: bool,
}

/// The OCI state of a container, with runc's fields in runc's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OciState<'a> {
    oci_version: &'a str,
    id: &'a str,
    pid: i32,
    status: Status,
    bundle: &'a PathBuf,
    rootfs: &'a PathBuf,
    created: &'a str,
    owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
    /// Beyond runc's fields, once stopped and while the supervisor still
    /// knows: the init's exit code as a shell gives it (128+N when killed
    /// by signal N)...
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    /// ...and why: `exited`, `signaled` or `oom-killed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_reason: Option<&'static str>,
}

/// How a stopped container's init ended, asked of its supervisor (`None`
/// when it is gone, or the container has not stopped).
fn exit_of(entry: &Entry) -> Option<(i32, &'static str)> {
    let state = Client::connect(&entry.socket)
        .and_then(|client| {
            client.invoke(ContainerRuntimeState {
                cid: entry.id.clone(),
            })
        })
        .ok()?;
    let status = WaitStatus(state.exit_status?);
    let reason = match (status.signal(), state.oom_killed) {
        (Some(_), true) => "oom-killed",
        (Some(_), false) => "signaled",
        (None, _) => "exited",
    };
    Some((status.shell_code(), reason))
}

/// The status of a container now, and its init's pid (0 once stopped):
/// /proc says whether the init lives, and its supervisor whether a live
/// one is created or running.
pub(super) fn live_status(entry: &Entry) -> (Status, i32) {
    let (alive, pid) = entry.status();
    if alive == Status::Stopped {
        return (alive, pid);
    }
    let asked = Client::connect(&entry.socket).and_then(|client| {
        client.invoke(ContainerRuntimeState {
            cid: entry.id.clone(),
        })
    });
    match asked.map(|state| state.status) {
        Ok(RuntimeStatus::Creating) => (Status::Creating, pid),
        Ok(RuntimeStatus::Created) => (Status::Created, pid),
        Ok(RuntimeStatus::Running) => (Status::Running, pid),
        Ok(RuntimeStatus::Paused) => (Status::Paused, pid),
        Ok(RuntimeStatus::Stopped) => (Status::Stopped, 0),
        // A supervisor that cannot answer still has a live init.
        Err(_) => (alive, pid),
    }
}

impl<'a> OciState<'a> {
    fn of(entry: &'a Entry, owner: String) -> OciState<'a> {
        let (status, pid) = live_status(entry);
        OciState {
            oci_version: &entry.oci_version,
            id: &entry.id,
            pid,
            status,
            bundle: &entry.bundle,
            rootfs: &entry.rootfs,
            created: &entry.created,
            owner,
            annotations: &entry.annotations,
            exit_code: None,
            exit_reason: None,
        }
    }
}

/// Prints one container's OCI state (JSON, as `runc state`).
pub fn state(global: &GlobalOptions, args: StateArgs) -> Result<ExitCode, StateError> {
    let dir = StateDir::open(&global.root)?;
    let entry = dir.load(&args.id)?;
    let mut state = OciState::of(&entry, String::new());
    if state.status == Status::Stopped {
        if let Some((code, reason)) = exit_of(&entry) {
            state.exit_code = Some(code);
            state.exit_reason = Some(reason);
        }
    }
    let mut out = serde_json::to_vec_pretty(&state).map_err(|e| io_error(e.into()))?;
    out.push(b'\n');
    std::io::stdout().write_all(&out).map_err(io_error)?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the containers (as `runc list`).
pub fn list(global: &GlobalOptions, args: ListArgs) -> Result<ExitCode, StateError> {
    let dir = StateDir::open(&global.root)?;
    let mut entries = Vec::new();
    for id in dir.ids()? {
        // An entry removed meanwhile is simply not listed.
        match dir.load(&id) {
            Ok(entry) => entries.push(entry),
            Err(StateError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let owner = |entry: &Entry| {
        dir.dir(&entry.id)
            .ok()
            .and_then(|d| std::fs::metadata(d).ok())
            .and_then(|m| nix::unistd::User::from_uid(m.uid().into()).ok().flatten())
            .map(|u| u.name)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if args.quiet {
        for entry in &entries {
            writeln!(out, "{}", entry.id).map_err(io_error)?;
        }
    } else {
        match args.format {
            ListFormat::Json => {
                let states: Vec<OciState<'_>> =
                    entries.iter().map(|e| OciState::of(e, owner(e))).collect();
                // runc prints null for no container.
                if states.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    serde_json::to_writer(&mut out, &states).map_err(|e| io_error(e.into()))?;
                }
                out.push(b'\n');
            }
            ListFormat::Table => {
                let rows: Vec<[String; 6]> = entries
                    .iter()
                    .map(|e| {
                        let state = OciState::of(e, owner(e));
                        [
                            e.id.clone(),
                            state.pid.to_string(),
                            state.status.as_str().to_owned(),
                            e.bundle.display().to_string(),
                            e.created.clone(),
                            state.owner,
                        ]
                    })
                    .collect();
                write_table(
                    &mut out,
                    ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                    &rows,
                )
                .map_err(io_error)?;
            }
        }
    }
    std::io::stdout().write_all(&out).map_err(io_error)?;
    Ok(ExitCode::SUCCESS)
}

/// Columns padded as Go's tabwriter pads runc's (minimum width 12, three
/// spaces of padding); the last column is not padded.
fn write_table(out: &mut Vec<u8>, header: [&str; 6], rows: &[[String; 6]]) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |out: &mut Vec<u8>, cells: [&str; 6]| -> std::io::Result<()> {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                let width = (widths[i] + 3).max(12);
                write!(out, "{cell:<width$}")?;
            }
        }
        Ok(())
    };
    line(out, header)?;
    for row in rows {
        line(out, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

fn io_error(source: std::io::Error) -> StateError {
    StateError::Io {
        what: "write",
        path: "standard output".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_pads_as_runc_s() {
        let mut out = Vec::new();
        let rows = [[
            "rs1".to_owned(),
            "15691".to_owned(),
            "running".to_owned(),
            "/tmp/bbs".to_owned(),
            "2026-11-29T05:05:03.988688413Z".to_owned(),
            "root".to_owned(),
        ]];
        write_table(
            &mut out,
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
            &rows,
        )
        .unwrap();
        // What runc 1.1.5 printed for the same container.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID          PID         STATUS      BUNDLE      CREATED                          OWNER\n\
             rs1         15691       running     /tmp/bbs    2026-11-29T05:05:03.988688413Z   root\n"
        );
    }
}
