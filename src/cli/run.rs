//! `sandvisor run`: the main job. Boots a supervisor, starts the root
//! container, forwards signals (and the terminal) to it, waits, tears
//! everything down, and exits with the container's status.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use sandvisor_actors::api::container::{Start, StartRoot, Wait};
use sandvisor_actors::api::Fds;
use sandvisor_actors::container::id::valid_container_id;
use sandvisor_actors::sys::process::WaitStatus;

use super::bundle::{load_spec, EntryMeta};
use super::create::{
    absolute_text, create_container, has_terminal, start_container, write_pid_file, CreateFlags,
};
use super::delete::force_delete;
use super::error::{io, RunError};
use super::exec::exec_failure_code;
use super::signals::{forward_signals, FORWARDED};
use super::stdio::{caller_stdio, dup, AttachedTerminal};
use super::supervisor::{supervisor_identity, Supervisor};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, StateError};

/// Arguments of `sandvisor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// An OCI bundle (a directory with config.json). Without one: the
    /// host's root read-only, a fresh /proc, a minimal /dev, a tmpfs /tmp.
    #[arg(long, short = 'b', value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// The sandbox and container id (also the default hostname); generated
    /// when absent.
    #[arg(long = "id", value_name = "ID")]
    id_flag: Option<String>,
    /// Give the container a terminal (this one, in raw mode, if stdin is one).
    #[arg(long, short = 't')]
    tty: bool,
    /// Create and start the container, then exit (as runc run -d) instead
    /// of waiting for it.
    #[arg(long, short = 'd')]
    detach: bool,
    #[command(flatten)]
    create: CreateFlags,
    /// The container id, as runc takes it (the same as --id).
    #[arg(value_name = "ID")]
    id: Option<String>,
    /// The command to run (replaces the bundle's process.args; default /bin/sh).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn generated_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sv-{hex}")
}

/// Runs the container; returns its shell exit status.
pub fn run(global: &GlobalOptions, args: RunArgs) -> Result<ExitCode, RunError> {
    let id = match (&args.id, &args.id_flag) {
        (Some(a), Some(b)) if a != b => {
            return Err(RunError::Refused(format!(
                "two ids given: {a:?} and --id {b:?}"
            )))
        }
        (Some(id), _) | (None, Some(id)) => id.clone(),
        (None, None) => generated_id(),
    };
    if !valid_container_id(&id) {
        return Err(RunError::BadId(id));
    }
    let spec = load_spec(global, args.bundle.as_deref(), &args.command, args.tty, &id)?;
    if args.detach {
        let bundle = match &args.bundle {
            Some(b) => std::fs::canonicalize(b).map_err(|e| RunError::BadConfig {
                path: b.display().to_string(),
                detail: e.to_string().to_lowercase(),
            })?,
            None => std::env::current_dir().map_err(io("read the current directory"))?,
        };
        create_container(global, &id, spec, &bundle, &args.create)?;
        if let Err(e) = start_container(global, &id) {
            // As runc run -d: a container that cannot start is removed.
            let _ = force_delete(global, &id);
            return Err(e);
        }
        return Ok(ExitCode::SUCCESS);
    }
    args.create.check_supported()?;
    let terminal = has_terminal(&spec);
    // Forwarded signals are taken synchronously by one thread; block them
    // before any thread exists (children of Command get a clean mask).
    let mut forwarded = SigSet::empty();
    for s in FORWARDED {
        forwarded.add(s);
    }
    if terminal {
        forwarded.add(Signal::SIGWINCH);
    }
    forwarded
        .thread_block()
        .map_err(|e| io("block signals")(e.into()))?;

    let default_cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .is_none();
    // Before anything else here opens a descriptor at 3 or above.
    let stdio = caller_stdio(terminal, args.create.preserve_fds)?;
    let mut supervisor = Supervisor::start(global, &id, default_cgroup, false)?;
    let client = Client::connect(&supervisor.socket)?;
    let bundle = args
        .bundle
        .as_deref()
        .map(|b| std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf()))
        .map(|b| b.display().to_string());
    let meta = EntryMeta::of(&spec, bundle.as_deref());
    let started = client.invoke(StartRoot {
        cid: id.clone(),
        spec,
        bundle,
        console_socket: args
            .create
            .console_socket
            .as_deref()
            .map(absolute_text)
            .transpose()?,
        // As runc's run is create then start: the state entry exists before
        // the program runs, so that `exec`, `state` and `kill` find it as
        // soon as the program can be seen to run.
        hold: true,
        preserve_fds: args.create.preserve_fds,
        caller_spawner: false,
        fds: Fds(stdio),
    });
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            supervisor.stop();
            eprintln!("sandvisor: {e}");
            return Ok(ExitCode::from(exec_failure_code(&e)));
        }
    };
    if let Some(pid_file) = &args.create.pid_file {
        write_pid_file(pid_file, started.pid)?;
    }
    let registered = match register(global, &id, meta, &supervisor, started.pid) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("sandvisor: warning: the state entry of {id:?} was not written: {e}");
            false
        }
    };
    if let Err(e) = client.invoke(Start { cid: id.clone() }) {
        if registered {
            let _ = StateDir::open(&global.root).and_then(|dir| dir.lock(&id)?.forget());
        }
        supervisor.stop();
        eprintln!("sandvisor: {e}");
        return Ok(ExitCode::from(exec_failure_code(&e)));
    }
    let master = started.fds.0.into_iter().next();
    let attached = AttachedTerminal::new(master.as_ref(), &id)?;
    forward_signals(
        client.clone(),
        id.clone(),
        0,
        forwarded,
        master.as_ref().map(|m| dup(m.as_fd())).transpose()?,
    );
    let status = client.invoke(Wait { cid: id.clone() });
    attached.finish();
    if registered {
        let forgotten = StateDir::open(&global.root).and_then(|dir| dir.lock(&id)?.forget());
        match forgotten {
            // `delete --force` took it meanwhile.
            Ok(()) | Err(StateError::NotFound(_)) => {}
            Err(e) => eprintln!("sandvisor: warning: {e}"),
        }
    }
    supervisor.stop();
    let status = status?;
    if status.oom_killed {
        eprintln!("sandvisor: container {id} was killed by the OOM killer");
    }
    let status = WaitStatus(status.status);
    Ok(ExitCode::from(status.shell_code().clamp(0, 255) as u8))
}

/// Writes the container's state entry, so that `state` and `list` see it
/// (the lock is held only while writing).
fn register(
    global: &GlobalOptions,
    id: &str,
    meta: EntryMeta,
    supervisor: &Supervisor,
    init: i32,
) -> Result<(), StateError> {
    let identity = supervisor_identity(supervisor)?;
    // The sandbox directory `boot` made is the root container's entry.
    let locked = StateDir::open(&global.root)?.lock(id)?;
    locked.save(&meta.entry(id, id, supervisor.socket.clone(), identity, init))
}
