//! `sandvisor usage [--full] [--fd] ID`: the memory use of the sandbox that
//! container ID is in, as one JSON object: the reply of Usage.Collect, or
//! with `--fd` the figures of the usage page (Usage.UsageFD), read from
//! shared memory as a monitor would, without a Collect call.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::Args;
use sandvisor_actors::api::usage::{Collect, UsageFd};
use sandvisor_actors::sys::usage_page;
use serde::Serialize;

use super::error::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::StateDir;

/// Arguments of `sandvisor usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Break the figures down per container too.
    #[arg(long, conflicts_with = "fd")]
    full: bool,
    /// Read the figures from the usage page the supervisor keeps current
    /// (Usage.UsageFD), with its sequence and update time.
    #[arg(long)]
    fd: bool,
    /// The container id (any container of the sandbox).
    id: String,
}

/// What `--fd` prints: the page's fields, by their documented names.
#[derive(Debug, Serialize)]
struct PageFigures {
    sequence: u64,
    updated_unix_ns: u64,
    #[serde(flatten)]
    figures: usage_page::Figures,
}

/// Prints the sandbox's memory use.
pub fn usage(global: &GlobalOptions, args: UsageArgs) -> Result<ExitCode, RunError> {
    let entry = StateDir::open(&global.root)?.load(&args.id)?;
    // The sandbox answers as long as its supervisor lives, whatever state
    // this one container is in.
    if !entry.supervisor.is_alive() {
        return Err(RunError::Refused(format!(
            "container {:?} is not running",
            args.id
        )));
    }
    let client = Client::connect(&entry.socket)?;
    let mut out = Vec::new();
    let encoded = if args.fd {
        let reply = client.invoke(UsageFd {})?;
        let page = reply.fds.0.first().ok_or_else(|| {
            io("read the usage page")(std::io::Error::other("the reply carried no descriptor"))
        })?;
        let s = usage_page::read(page.as_fd())
            .map_err(|e| io("read the usage page")(std::io::Error::other(e)))?;
        serde_json::to_writer(
            &mut out,
            &PageFigures {
                sequence: s.sequence,
                updated_unix_ns: s.updated_unix_ns,
                figures: s.figures,
            },
        )
    } else {
        let usage = client.invoke(Collect { full: args.full })?;
        serde_json::to_writer(&mut out, &usage)
    };
    encoded.map_err(|e| io("encode the usage")(e.into()))?;
    out.push(b'\n');
    let mut stdout = std::io::stdout();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(io("write standard output"))?;
    Ok(ExitCode::SUCCESS)
}
