//! `sandvisor exec`: runs a process in a running container, as `runc exec`:
//! from `--process FILE` (an OCI process) or from the command line, in the
//! foreground (this command exits with the process's status) or detached.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::{Process, Spec};
use sandvisor_actors::api::container::{ExecCapabilities, ExecRlimit, ExecuteAsync, WaitPid};
use sandvisor_actors::api::Fds;
use sandvisor_actors::sys::process::WaitStatus;
use sandvisor_actors::wire::ErrorCode;

use super::bundle::read_bundle_spec;
use super::caller_spawner::CallerSpawner;
use super::create::{absolute_text, write_pid_file};
use super::error::{io, RunError};
use super::inspect::live_status;
use super::signals::{forward_signals, FORWARDED};
use super::stdio::{caller_stdio, dup, AttachedTerminal};
use super::GlobalOptions;
use crate::client::{Client, ClientError};
use crate::state::{StateDir, Status};

/// Arguments of `sandvisor exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// An OCI process (JSON) to run; the command line's other process
    /// flags then do not apply.
    #[arg(long, short = 'p', value_name = "FILE")]
    process: Option<PathBuf>,
    /// Do not wait: print nothing and exit once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// A Unix socket to send the pty master to (with --tty --detach).
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// With --detach: write the pid of a process that stands for it (see
    /// `create --pid-file`).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Environment entries (KEY=VALUE), added to the container's.
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// User, as UID[:GID].
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    user: Option<String>,
    /// Supplementary group ids.
    #[arg(long, short = 'g', value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Capabilities added to the container's (CAP_* names).
    #[arg(long, short = 'c', value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    no_new_privs: bool,
    /// Pass this command's descriptors 3 to 3+N-1 to the process, as its
    /// 3, 4, ...
    #[arg(long, value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Runs the process; in the foreground, returns its shell exit status.
pub fn exec(global: &GlobalOptions, args: ExecArgs) -> Result<ExitCode, RunError> {
    let dir = StateDir::open(&global.root)?;
    let entry = dir.load(&args.id)?;
    match live_status(&entry).0 {
        Status::Running => {}
        Status::Paused => {
            return Err(RunError::Refused(
                "cannot exec in a paused container".into(),
            ))
        }
        Status::Stopped => {
            return Err(RunError::Refused(
                "cannot exec in a stopped container".into(),
            ))
        }
        Status::Creating | Status::Created => {
            return Err(RunError::Refused(
                "cannot exec in a container that has not started".into(),
            ))
        }
    }
    let mut request = match &args.process {
        Some(path) => from_process_file(&args.id, path)?,
        None => from_flags(&args, &entry.bundle)?,
    };
    if request.terminal && args.detach && args.console_socket.is_none() {
        return Err(RunError::Refused(
            "cannot allocate tty if sandvisor will detach without setting console socket".into(),
        ));
    }
    if args.console_socket.is_some() && !request.terminal {
        return Err(RunError::Refused(
            "cannot use console socket if sandvisor will not allocate a tty".into(),
        ));
    }
    request.console_socket = args
        .console_socket
        .as_deref()
        .map(absolute_text)
        .transpose()?;
    request.preserve_fds = args.preserve_fds;
    let mut fds = caller_stdio(request.terminal, args.preserve_fds)?;
    // Before any thread exists, and before signals are blocked.
    let mut spawner = CallerSpawner::fork()?;
    fds.insert(0, spawner.take_socket()?);
    request.fds = Fds(fds);
    request.caller_spawner = true;
    // Forwarded signals are taken by one thread: block them before any
    // thread exists.
    let mut forwarded = SigSet::empty();
    if !args.detach {
        for s in FORWARDED {
            forwarded.add(s);
        }
        if request.terminal {
            forwarded.add(Signal::SIGWINCH);
        }
        forwarded
            .thread_block()
            .map_err(|e| io("block signals")(e.into()))?;
    }
    let client = Client::connect(&entry.socket)?;
    let executed = match client.invoke(request) {
        Ok(executed) => executed,
        Err(e) => return Err(exec_failed(e)),
    };
    // The process is this command's child from here on (see
    // `caller_spawner`): a detached one passes to the subreaper above when
    // this command exits.
    spawner.finish();
    if let Some(pid_file) = &args.pid_file {
        write_pid_file(pid_file, executed.host_pid)?;
    }
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let master = executed.fds.0.into_iter().next();
    let attached = AttachedTerminal::new(master.as_ref(), &args.id)?;
    forward_signals(
        client.clone(),
        args.id.clone(),
        executed.pid,
        forwarded,
        master.as_ref().map(|m| dup(m.as_fd())).transpose()?,
    );
    let status = client.invoke(WaitPid {
        cid: args.id.clone(),
        pid: executed.pid,
    });
    // The supervisor read the status from the zombie: reap it.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(executed.host_pid), None);
    let status = status?;
    attached.finish();
    if status.oom_killed {
        eprintln!(
            "sandvisor: process {} was killed by the OOM killer",
            executed.pid
        );
    }
    let status = WaitStatus(status.status);
    Ok(ExitCode::from(status.shell_code().clamp(0, 255) as u8))
}

/// A failed exec: as shells do, 127 when the program is missing and 126
/// when it cannot be executed; 1 for anything else.
pub(super) fn exec_failed(source: ClientError) -> RunError {
    RunError::Exec {
        code: exec_failure_code(&source),
        source,
    }
}

/// The exit status for a start that failed: as shells give it, 127 when
/// the program is missing and 126 when it cannot be executed; 1 else.
pub(super) fn exec_failure_code(e: &ClientError) -> u8 {
    let exec_step = matches!(e, ClientError::Rpc(r) if r.message.starts_with("exec "));
    match e.code() {
        Some(ErrorCode::NotFound) if exec_step => 127,
        Some(ErrorCode::PermissionDenied) if exec_step => 126,
        _ => 1,
    }
}

/// The request `--process FILE` describes.
fn from_process_file(cid: &str, path: &std::path::Path) -> Result<ExecuteAsync, RunError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| RunError::BadConfig {
        path: shown.clone(),
        detail: e.to_string().to_lowercase(),
    })?;
    let process: Process = serde_json::from_str(&text).map_err(|e| RunError::BadConfig {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let refused = |field: &str| {
        RunError::Unsupported(format!("{shown}: process.{field} in an exec'd process"))
    };
    if process.apparmor_profile().is_some() {
        return Err(refused("apparmorProfile"));
    }
    if process.selinux_label().is_some() {
        return Err(refused("selinuxLabel"));
    }
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(RunError::BadConfig {
            path: shown,
            detail: "process.args is empty".into(),
        });
    }
    let user = process.user();
    let capabilities = process.capabilities().as_ref().map(capability_names);
    Ok(ExecuteAsync {
        cid: cid.to_owned(),
        argv: args,
        envv: process.env().clone().unwrap_or_default(),
        working_directory: Some(process.cwd().display().to_string()),
        kuid: Some(user.uid()),
        kgid: Some(user.gid()),
        extra_kgids: user.additional_gids().clone(),
        capabilities,
        no_new_privileges: process.no_new_privileges(),
        rlimits: process.rlimits().as_ref().map(|limits| {
            limits
                .iter()
                .map(|r| ExecRlimit {
                    kind: serde_json::to_value(r.typ())
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    hard: r.hard(),
                    soft: r.soft(),
                })
                .collect()
        }),
        terminal: process.terminal().unwrap_or(false),
        console_socket: None,
        preserve_fds: 0,
        caller_spawner: false,
        fds: Fds::none(),
    })
}

/// An OCI process's capability sets, by `CAP_*` name.
fn capability_names(caps: &oci_spec::runtime::LinuxCapabilities) -> ExecCapabilities {
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        set.iter().flatten().map(|c| format!("CAP_{c}")).collect()
    };
    ExecCapabilities {
        bounding: names(caps.bounding()),
        effective: names(caps.effective()),
        inheritable: names(caps.inheritable()),
        permitted: names(caps.permitted()),
        ambient: names(caps.ambient()),
    }
}

/// The request the command-line flags describe.
fn from_flags(args: &ExecArgs, bundle: &std::path::Path) -> Result<ExecuteAsync, RunError> {
    if args.command.is_empty() {
        return Err(RunError::Refused(
            "exec needs a command, or --process".into(),
        ));
    }
    let (kuid, kgid) = match &args.user {
        None => (None, None),
        Some(user) => {
            let bad = || RunError::Refused(format!("invalid --user {user:?}: use UID[:GID]"));
            let (uid, gid) = match user.split_once(':') {
                Some((uid, gid)) => (uid, Some(gid)),
                None => (user.as_str(), None),
            };
            let uid: u32 = uid.parse().map_err(|_| bad())?;
            let gid: Option<u32> = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
            (Some(uid), gid)
        }
    };
    let capabilities = if args.cap.is_empty() {
        None
    } else {
        Some(with_added_capabilities(bundle, &args.cap)?)
    };
    Ok(ExecuteAsync {
        cid: args.id.clone(),
        argv: args.command.clone(),
        envv: args.env.clone(),
        working_directory: args.cwd.clone(),
        kuid,
        kgid,
        extra_kgids: (!args.additional_gids.is_empty()).then(|| args.additional_gids.clone()),
        capabilities,
        no_new_privileges: args.no_new_privs.then_some(true),
        rlimits: None,
        terminal: args.tty,
        console_socket: None,
        preserve_fds: 0,
        caller_spawner: false,
        fds: Fds::none(),
    })
}

/// The container's capability sets (from its bundle's config.json) with
/// `added` in the bounding, effective and permitted sets, and in the
/// ambient set when the inheritable set is not empty (as runc adds them).
fn with_added_capabilities(
    bundle: &std::path::Path,
    added: &[String],
) -> Result<ExecCapabilities, RunError> {
    let spec: Spec = read_bundle_spec(bundle)?;
    let mut sets = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .map(capability_names)
        .unwrap_or_default();
    let with_ambient = !sets.inheritable.is_empty();
    for cap in added {
        let cap = cap.to_uppercase();
        let cap = if cap.starts_with("CAP_") {
            cap
        } else {
            format!("CAP_{cap}")
        };
        sets.bounding.push(cap.clone());
        sets.effective.push(cap.clone());
        sets.permitted.push(cap.clone());
        if with_ambient {
            sets.ambient.push(cap);
        }
    }
    Ok(sets)
}
