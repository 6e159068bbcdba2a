//! `sandvisor create` and `sandvisor start`: runc's lifecycle in two steps.
//! `create` sets the container up with its init waiting before the user
//! program; `start` lets it go on. A container whose annotations name an
//! existing sandbox becomes a subcontainer of that sandbox's supervisor;
//! any other gets a supervisor (a new sandbox) of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use oci_spec::runtime::Spec;
use sandvisor_actors::api::container::{
    CreateSubcontainer, DestroySubcontainer, Start, StartRoot, StartSubcontainer,
};
use sandvisor_actors::api::Fds;

use super::bundle::{read_bundle_spec, EntryMeta};
use super::caller_spawner::CallerSpawner;
use super::error::{io, RunError};
use super::inspect::live_status;
use super::stdio::caller_stdio;
use super::supervisor::{supervisor_identity, Supervisor};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{check_id, Entry, Locked, StateDir, StateError, Status};

/// CRI's annotation of a container's role: `sandbox` or `container`.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// CRI's annotation naming the pod sandbox a container belongs to.
const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// For plain use: the id of the sandbox (its root container) to join.
pub const SANDBOX_ANNOTATION: &str = "io.sandvisor.sandbox-id";

/// Flags `create` and `run` share (runc's).
#[derive(Debug, Clone, Default, Args)]
pub struct CreateFlags {
    /// A Unix socket to send the pty master to, when the process has a
    /// terminal.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the container's init's pid here. The init is a descendant of
    /// this command, so that a subreaper above (containerd's shim, conmon)
    /// inherits it when this command exits and reaps it.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Enter the root without pivot_root (unsupported: sandvisor always
    /// uses pivot_root).
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container a new session keyring (sandvisor never
    /// does: the flag is accepted, and changes nothing).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this command's descriptors 3 to 3+N-1 to the container's
    /// process, as its 3, 4, ...
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
}

/// Arguments of `sandvisor create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle: a directory with config.json.
    #[arg(long, short = 'b', value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    #[command(flatten)]
    flags: CreateFlags,
    /// The container id.
    id: String,
}

/// Arguments of `sandvisor start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The container id.
    id: String,
}

/// Creates a container from its bundle.
pub fn create(global: &GlobalOptions, args: CreateArgs) -> Result<ExitCode, RunError> {
    let bundle = std::fs::canonicalize(&args.bundle).map_err(|e| RunError::BadConfig {
        path: args.bundle.display().to_string(),
        detail: e.to_string().to_lowercase(),
    })?;
    let spec = read_bundle_spec(&bundle)?;
    create_container(global, &args.id, spec, &bundle, &args.flags)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts a created container.
pub fn start(global: &GlobalOptions, args: StartArgs) -> Result<ExitCode, RunError> {
    start_container(global, &args.id)?;
    Ok(ExitCode::SUCCESS)
}

/// Creates container `id` from `spec` (whose relative paths resolve against
/// the absolute `bundle`): its init waits at its start gate.
pub(super) fn create_container(
    global: &GlobalOptions,
    id: &str,
    spec: Spec,
    bundle: &Path,
    flags: &CreateFlags,
) -> Result<(), RunError> {
    check_id(id).map_err(|_| RunError::BadId(id.to_owned()))?;
    flags.check_supported()?;
    let terminal = has_terminal(&spec);
    let console_socket = match (&flags.console_socket, terminal) {
        (None, true) => {
            return Err(RunError::Refused(
                "cannot allocate tty if sandvisor will detach without setting console socket"
                    .into(),
            ))
        }
        (Some(_), false) => {
            return Err(RunError::Refused(
                "cannot use console socket if sandvisor will not allocate a tty".into(),
            ))
        }
        (Some(path), true) => Some(absolute_text(path)?),
        (None, false) => None,
    };
    let mut stdio = caller_stdio(terminal, flags.preserve_fds)?;
    let mut spawner = CallerSpawner::fork()?;
    stdio.insert(0, spawner.take_socket()?);
    let dir = StateDir::open(&global.root)?;
    let locked = dir.create(id)?;
    let bundle_text = bundle.display().to_string();
    let request = Request {
        id,
        meta: EntryMeta::of(&spec, Some(&bundle_text)),
        spec,
        bundle: bundle_text,
        console_socket,
        preserve_fds: flags.preserve_fds,
        fds: Fds(stdio),
    };
    let created = match sandbox_of(&request.spec) {
        Some(sandbox) => create_member(&dir, &locked, &sandbox, request),
        None => create_root(global, &locked, request),
    };
    let entry = match created {
        Ok(entry) => entry,
        Err(e) => {
            let _ = locked.remove();
            return Err(e);
        }
    };
    spawner.finish();
    if let (Some(pid_file), Some(init)) = (&flags.pid_file, entry.init) {
        write_pid_file(pid_file, init.pid)?;
    }
    Ok(())
}

/// What a create sends, and what its state entry keeps.
struct Request<'a> {
    id: &'a str,
    meta: EntryMeta,
    spec: Spec,
    bundle: String,
    console_socket: Option<String>,
    preserve_fds: u32,
    fds: Fds,
}

/// The sandbox a spec's annotations make it a member of: CRI's container
/// type `container` with its sandbox id, or sandvisor's own annotation.
fn sandbox_of(spec: &Spec) -> Option<String> {
    let annotations = spec.annotations().as_ref()?;
    if annotations.get(CRI_CONTAINER_TYPE).map(String::as_str) == Some("container") {
        if let Some(sandbox) = annotations.get(CRI_SANDBOX_ID) {
            return Some(sandbox.clone());
        }
    }
    annotations.get(SANDBOX_ANNOTATION).cloned()
}

/// Boots a supervisor for a new sandbox and creates its root container.
fn create_root(
    global: &GlobalOptions,
    locked: &Locked,
    request: Request<'_>,
) -> Result<Entry, RunError> {
    let id = request.id;
    // No prewarmed resident: the init comes from this command's spawner.
    let mut supervisor = Supervisor::start(global, id, false, true)?;
    let created = (|| {
        let started = Client::connect(&supervisor.socket)?.invoke(StartRoot {
            cid: id.to_owned(),
            spec: request.spec,
            bundle: Some(request.bundle),
            console_socket: request.console_socket,
            hold: true,
            preserve_fds: request.preserve_fds,
            caller_spawner: true,
            fds: request.fds,
        })?;
        let identity = supervisor_identity(&supervisor)?;
        let entry = request
            .meta
            .entry(id, id, supervisor.socket.clone(), identity, started.pid);
        locked.save(&entry)?;
        Ok(entry)
    })();
    if created.is_err() {
        supervisor.stop();
    }
    created
}

/// Creates a subcontainer in the sandbox of container `sandbox`.
fn create_member(
    dir: &StateDir,
    locked: &Locked,
    sandbox: &str,
    request: Request<'_>,
) -> Result<Entry, RunError> {
    let id = request.id;
    let host = match dir.load(sandbox) {
        Ok(entry) => entry,
        Err(StateError::NotFound(_)) => {
            return Err(RunError::Refused(format!(
                "sandbox {sandbox} does not exist"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !host.supervisor.is_alive() {
        return Err(RunError::Refused(format!(
            "sandbox {sandbox} is not running"
        )));
    }
    let client = Client::connect(&host.socket)?;
    client.invoke(CreateSubcontainer {
        cid: id.to_owned(),
        fds: Fds::none(),
    })?;
    let created = (|| {
        let started = client.invoke(StartSubcontainer {
            cid: id.to_owned(),
            spec: request.spec,
            bundle: Some(request.bundle),
            console_socket: request.console_socket,
            hold: true,
            preserve_fds: request.preserve_fds,
            caller_spawner: true,
            fds: request.fds,
        })?;
        let entry = request.meta.entry(
            id,
            &host.sandbox,
            host.socket.clone(),
            host.supervisor,
            started.pid,
        );
        locked.save(&entry)?;
        Ok(entry)
    })();
    if created.is_err() {
        let _ = client.invoke(DestroySubcontainer { cid: id.to_owned() });
    }
    created
}

/// Lets created container `id` run its program.
pub(super) fn start_container(global: &GlobalOptions, id: &str) -> Result<(), RunError> {
    let dir = StateDir::open(&global.root)?;
    let _locked = dir.lock(id)?;
    let entry = dir.load(id)?;
    let refusal = match live_status(&entry).0 {
        Status::Created => None,
        Status::Creating => Some("cannot start a container that is being created"),
        Status::Running => Some("cannot start an already running container"),
        Status::Paused => Some("cannot start a paused container"),
        Status::Stopped => Some("cannot start a container that has stopped"),
    };
    if let Some(refusal) = refusal {
        return Err(RunError::Refused(refusal.into()));
    }
    Client::connect(&entry.socket)?.invoke(Start { cid: id.to_owned() })?;
    Ok(())
}

/// Writes `pid` to `path` atomically (a temporary file, then rename), as
/// runc does: a reader never sees it half-written.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<(), RunError> {
    let path = std::path::absolute(path).map_err(io("resolve the pid file path"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, pid.to_string()).map_err(io("write the pid file"))?;
    std::fs::rename(&temporary, &path).map_err(io("rename the pid file"))
}

/// `path` as the supervisor must get it: absolute (its working directory
/// is not this command's).
pub(super) fn absolute_text(path: &Path) -> Result<String, RunError> {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .map_err(io("resolve a path"))
}

/// Whether the spec's process has a terminal.
pub(super) fn has_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

impl CreateFlags {
    /// Refuses the flags sandvisor does not honour.
    pub(super) fn check_supported(&self) -> Result<(), RunError> {
        if self.no_pivot {
            return Err(RunError::Unsupported(
                "--no-pivot: the root is always entered with pivot_root".into(),
            ));
        }
        Ok(())
    }
}
