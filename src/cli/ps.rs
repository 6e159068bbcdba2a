//! `sandvisor ps`: a container's processes, as `runc ps` shows them: the
//! lines of `ps` (default `-ef`) for its processes, or their pids as JSON.

use std::io::Write;
use std::process::{Command, ExitCode};

use clap::Args;
use sandvisor_actors::api::container::Processes;

use super::error::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, Status};

/// Output formats of `sandvisor ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PsFormat {
    /// `ps`'s own table, its lines for the container's processes only.
    Table,
    /// A JSON array of host pids.
    Json,
}

/// Arguments of `sandvisor ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    format: PsFormat,
    /// The container id.
    id: String,
    /// Options for ps (default: -ef).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS_ARGS"
    )]
    ps_args: Vec<String>,
}

/// Prints the container's processes.
pub fn ps(global: &GlobalOptions, args: PsArgs) -> Result<ExitCode, RunError> {
    let entry = StateDir::open(&global.root)?.load(&args.id)?;
    let pids: Vec<i32> = if entry.status().0 == Status::Stopped {
        Vec::new()
    } else {
        let list = Client::connect(&entry.socket)?.invoke(Processes {
            cid: args.id.clone(),
        })?;
        list.processes.iter().map(|p| p.host_pid).collect()
    };
    let mut out = Vec::new();
    match args.format {
        PsFormat::Json => {
            serde_json::to_writer(&mut out, &pids).map_err(|e| io("encode")(e.into()))?;
            out.push(b'\n');
        }
        PsFormat::Table => {
            let ps_args = if args.ps_args.is_empty() {
                vec!["-ef".to_owned()]
            } else {
                args.ps_args.clone()
            };
            let output = Command::new("ps")
                .args(&ps_args)
                .output()
                .map_err(io("run ps"))?;
            if !output.status.success() {
                return Err(RunError::Refused(format!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            out = filter_ps_output(&String::from_utf8_lossy(&output.stdout), &pids)?.into_bytes();
        }
    }
    std::io::stdout()
        .write_all(&out)
        .map_err(io("write standard output"))?;
    Ok(ExitCode::SUCCESS)
}

/// `ps`'s header and the lines whose PID column is one of `pids`.
fn filter_ps_output(text: &str, pids: &[i32]) -> Result<String, RunError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|name| name == "PID")
        .ok_or_else(|| RunError::Refused("ps printed no PID column".into()))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_container_s_lines_are_kept() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 06:00 ?        00:00:01 /sbin/init\n\
                    root         812       1  0 06:01 ?        00:00:00 sleep 100\n\
                    root        8120       1  0 06:01 ?        00:00:00 sh\n";
        assert_eq!(
            filter_ps_output(text, &[812]).unwrap(),
            "UID          PID    PPID  C STIME TTY          TIME CMD\n\
             root         812       1  0 06:01 ?        00:00:00 sleep 100\n"
        );
        assert!(filter_ps_output("USER COMMAND\n", &[1]).is_err());
    }
}
