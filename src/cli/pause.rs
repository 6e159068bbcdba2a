//! `sandvisor pause ID` and `sandvisor resume ID`: freeze and thaw every
//! process of a container (its cgroup), as runc's.

use std::process::ExitCode;

use clap::Args;
use sandvisor_actors::api::container::{Pause, Resume};

use super::error::RunError;
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, Status};

/// Arguments of `sandvisor pause` and `sandvisor resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The container id.
    id: String,
}

/// Freezes a running container.
pub fn pause(global: &GlobalOptions, args: PauseArgs) -> Result<ExitCode, RunError> {
    let client = connect(global, &args.id)?;
    client.invoke(Pause { cid: Some(args.id) })?;
    Ok(ExitCode::SUCCESS)
}

/// Thaws a paused container.
pub fn resume(global: &GlobalOptions, args: PauseArgs) -> Result<ExitCode, RunError> {
    let client = connect(global, &args.id)?;
    client.invoke(Resume { cid: Some(args.id) })?;
    Ok(ExitCode::SUCCESS)
}

/// The supervisor of a container whose init lives.
fn connect(global: &GlobalOptions, id: &str) -> Result<Client, RunError> {
    let entry = StateDir::open(&global.root)?.load(id)?;
    if entry.status().0 == Status::Stopped {
        return Err(RunError::Refused(format!(
            "container {id:?} is not running"
        )));
    }
    Ok(Client::connect(&entry.socket)?)
}
