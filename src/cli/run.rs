//! `sandvisor run`: the main job. Boots a supervisor, starts the root
//! container, forwards signals (and the terminal) to it, waits, tears
//! everything down, and exits with the container's status.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};

use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::Spec;
use sandvisor_actors::api::container::{Signal as SignalCall, SignalMode, Start, StartRoot, Wait};
use sandvisor_actors::api::Fds;
use sandvisor_actors::container::spec::{default_spec, hide_host_dir};
use sandvisor_actors::sys::process::{self, WaitStatus};
use sandvisor_actors::sys::tty;
use sandvisor_actors::wire::ErrorCode;
use thiserror::Error;

use super::boot::valid_id;
use super::create::{
    absolute_text, create_container, has_terminal, start_container, write_pid_file, CreateFlags,
};
use super::delete::force_delete;
use super::exec::exec_failure_code;
use super::GlobalOptions;
use crate::client::{Client, ClientError};
use crate::state::{Entry, ProcessIdentity, StateDir, StateError};

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

/// Why `run`, `create` or `start` failed (for `run`, before the
/// container's status was known).
#[derive(Debug, Error)]
pub enum RunError {
    /// The id is not acceptable.
    #[error(
        "invalid id {0:?}: use 1 to 1024 letters, digits, '_', '+', '-' or '.', not only dots"
    )]
    BadId(String),
    /// config.json could not be read or parsed.
    #[error("invalid {path}: {detail}")]
    BadConfig {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The supervisor could not be started.
    #[error("start the supervisor: {0}")]
    Supervisor(String),
    /// A call to the supervisor failed.
    #[error("{0}")]
    Call(#[from] ClientError),
    /// The state directory refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// The command does not apply to the container as it is (runc's words).
    #[error("{0}")]
    Refused(String),
    /// A flag or spec feature this runtime does not have.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The process could not be started; `code` is the exit status to
    /// give, as shells give it (127: no such program, 126: not executable).
    #[error("exec failed: {source}")]
    Exec {
        /// The exit status.
        code: u8,
        /// Why.
        source: ClientError,
    },
    /// Local plumbing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

pub(super) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { what, source }
}

/// The signals forwarded to the container.
pub(super) const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn generated_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sv-{hex}")
}

fn load_spec(global: &GlobalOptions, args: &RunArgs, id: &str) -> Result<Spec, RunError> {
    let Some(bundle) = &args.bundle else {
        let command = if args.command.is_empty() {
            vec!["/bin/sh".to_owned()]
        } else {
            args.command.clone()
        };
        let mut spec = default_spec(id, command, args.tty);
        // The host's root is shown: the state root, wherever it is, must not
        // be (its sockets drive supervisors).
        let state_root = std::path::absolute(&global.root).unwrap_or_else(|_| global.root.clone());
        hide_host_dir(&mut spec, &state_root);
        return Ok(spec);
    };
    let mut spec = read_bundle_spec(bundle)?;
    if let Some(process) = spec.process_mut() {
        if !args.command.is_empty() {
            process.set_args(Some(args.command.clone()));
        }
        if args.tty {
            process.set_terminal(Some(true));
        }
    }
    Ok(spec)
}

/// Marks every descriptor from `first` up close-on-exec (between fork and
/// exec: async-signal-safe).
pub(super) fn close_from_on_exec(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range with flags only changes descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads `BUNDLE/config.json`.
pub(super) fn read_bundle_spec(bundle: &std::path::Path) -> Result<Spec, RunError> {
    let path = bundle.join("config.json");
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::BadConfig {
        path: shown.clone(),
        detail: e.to_string().to_lowercase(),
    })?;
    serde_json::from_str(&text).map_err(|e| RunError::BadConfig {
        path: shown,
        detail: e.to_string(),
    })
}

/// The supervisor process, stopped and reaped when dropped (unless
/// detached).
pub(super) struct Supervisor {
    child: Child,
    pub(super) socket: PathBuf,
    detached: bool,
}

impl Supervisor {
    /// Boots the supervisor; with `prewarm`, it makes the root container's
    /// cgroups while it starts (its default cgroup path only). A detached
    /// one (for `create`) outlives this command: it gets a session of its
    /// own and none of this command's standard streams, which may be a
    /// caller's pipes that must see their end when the container's do.
    pub(super) fn start(
        global: &GlobalOptions,
        id: &str,
        prewarm: bool,
        detached: bool,
    ) -> Result<Supervisor, RunError> {
        let socket = global.root.join(id).join("ctl.sock");
        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io("create a pipe")(e.into()))?;
        let exe = std::env::current_exe().map_err(io("find this executable"))?;
        let mut command = Command::new(exe);
        command.arg("--root").arg(&global.root);
        if let Some(log) = &global.log {
            command
                .arg("--log")
                .arg(log)
                .arg("--log-format")
                .arg(global.log_format.as_str());
        }
        if let Some(level) = global.log_level {
            command.args(["--log-level", level.as_str()]);
        } else if global.debug {
            command.arg("--debug");
        } else if global.log.is_none() {
            // Its log shares the terminal with the container: errors only,
            // unless asked otherwise.
            command.args(["--log-level", "error"]);
        }
        command
            .args(["boot", "--id", id, "--ready-fd", "3", "--socket"])
            .arg(&socket);
        if prewarm {
            command.args(["--prewarm", id]);
        }
        command.stdin(Stdio::null()).stdout(Stdio::null());
        if detached {
            command.stderr(Stdio::null());
        }
        let raw = ready_write.as_raw_fd();
        // SAFETY: dup2 and sigprocmask are async-signal-safe; they run in
        // the child between fork and exec and only touch descriptor 3 and
        // the child's signal mask (the signals this process blocks for its
        // forwarding thread must reach the supervisor).
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Whatever else this command inherited (a caller's
                // descriptors, those passed to the container) is not the
                // supervisor's to hold open.
                close_from_on_exec(4)?;
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if detached && libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(io("spawn the supervisor"))?;
        drop(ready_write);
        let mut ready = String::new();
        let _ = std::fs::File::from(ready_read).read_to_string(&mut ready);
        if ready != "ready\n" {
            let status = child.wait().map_err(io("wait for the supervisor"))?;
            return Err(RunError::Supervisor(match ready.strip_prefix("error: ") {
                Some(reason) => reason.trim_end().to_owned(),
                None => format!("it exited with {status} before serving"),
            }));
        }
        Ok(Supervisor {
            child,
            socket,
            detached,
        })
    }

    /// Its pid.
    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Stops it and waits until it has exited.
    pub(super) fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        if let Ok(pidfd) = process::pidfd_open(pid.as_raw()) {
            process::pidfd_wait_exited(pidfd.as_fd(), std::time::Duration::from_secs(10));
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

pub(super) fn dup(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, RunError> {
    fd.try_clone_to_owned()
        .map_err(io("duplicate a standard stream"))
}

/// Duplicates of this command's stdin, stdout and stderr for a process
/// without a terminal (none for one with a terminal), then of its
/// descriptors 3 to 3+`preserve`-1, which the process gets as its own 3,
/// 4, ... (runc's `--preserve-fds`).
pub(super) fn caller_stdio(terminal: bool, preserve: u32) -> Result<Vec<OwnedFd>, RunError> {
    // The copies land above the range passed through, so that none of them
    // is taken for one of its descriptors.
    let floor = 3 + preserve as i32;
    let copy = |raw: i32| -> Result<OwnedFd, std::io::Error> {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor number; it fails with
        // EBADF if nothing is open there.
        let copy = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, floor) };
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(copy) })
    };
    let mut preserved = Vec::new();
    for raw in 3..floor {
        preserved.push(copy(raw).map_err(|e| {
            RunError::Refused(format!(
                "--preserve-fds {preserve}: descriptor {raw} is not open: {e}"
            ))
        })?);
    }
    let mut fds = Vec::new();
    if !terminal {
        for raw in 0..3 {
            fds.push(copy(raw).map_err(io("duplicate a standard stream"))?);
        }
    }
    fds.extend(preserved);
    Ok(fds)
}

/// This command's terminal joined to a container process's pty: raw mode
/// (when stdin is a terminal) and copies both ways.
pub(super) struct AttachedTerminal {
    _raw: Option<tty::RawModeGuard>,
    output: Option<std::thread::JoinHandle<()>>,
}

impl AttachedTerminal {
    /// Attaches to `master`, if the process has a pty.
    pub(super) fn new(master: Option<&OwnedFd>, name: &str) -> Result<AttachedTerminal, RunError> {
        let raw = match master {
            Some(_) if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) => Some(
                tty::make_raw(std::io::stdin().as_fd())
                    .map_err(|e| io("make the terminal raw")(std::io::Error::other(e)))?,
            ),
            _ => None,
        };
        let output = master.map(|m| start_terminal_copies(m, name)).transpose()?;
        Ok(AttachedTerminal { _raw: raw, output })
    }

    /// Lets the last output reach the terminal, then restores it.
    pub(super) fn finish(self) {
        if let Some(output) = self.output {
            let _ = output.join();
        }
    }
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
    if !valid_id(&id) {
        return Err(RunError::BadId(id));
    }
    let spec = load_spec(global, &args, &id)?;
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

/// What the state entry keeps of the spec, taken before the spec goes to
/// the supervisor.
pub(super) struct EntryMeta {
    oci_version: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    annotations: std::collections::BTreeMap<String, String>,
}

impl EntryMeta {
    pub(super) fn of(spec: &Spec, bundle: Option<&str>) -> EntryMeta {
        // Without a bundle, as runc does, the bundle is the current directory.
        let bundle = bundle
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| PathBuf::from("/"));
        EntryMeta {
            oci_version: spec.version().clone(),
            rootfs: bundle.join(root),
            bundle,
            annotations: spec
                .annotations()
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl EntryMeta {
    /// The state entry of container `id` of `sandbox`, whose supervisor
    /// (`supervisor`, serving `socket`) started its init `init`.
    pub(super) fn entry(
        self,
        id: &str,
        sandbox: &str,
        socket: PathBuf,
        supervisor: ProcessIdentity,
        init: i32,
    ) -> Entry {
        Entry {
            id: id.to_owned(),
            oci_version: self.oci_version,
            bundle: self.bundle,
            rootfs: self.rootfs,
            annotations: self.annotations,
            created: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            sandbox: sandbox.to_owned(),
            socket,
            supervisor,
            init: ProcessIdentity::of(init),
        }
    }
}

/// The identity of a live supervisor.
pub(super) fn supervisor_identity(supervisor: &Supervisor) -> Result<ProcessIdentity, StateError> {
    let pid = supervisor.pid();
    ProcessIdentity::of(pid).ok_or_else(|| StateError::Io {
        what: "read the supervisor's start time from",
        path: format!("/proc/{pid}/stat"),
        source: std::io::ErrorKind::NotFound.into(),
    })
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

/// Copies stdin to the pty master and the master to stdout.
fn start_terminal_copies(
    master: &OwnedFd,
    id: &str,
) -> Result<std::thread::JoinHandle<()>, RunError> {
    let mut to_container = std::fs::File::from(dup(master.as_fd())?);
    let mut from_container = std::fs::File::from(dup(master.as_fd())?);
    if let Ok(size) = tty::window_size(std::io::stdin().as_fd()) {
        let _ = tty::set_window_size(master.as_fd(), size);
    }
    std::thread::Builder::new()
        .name(format!("{id}-stdin"))
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .map_err(io("start a thread"))?;
    std::thread::Builder::new()
        .name(format!("{id}-stdout"))
        .spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            // EIO once the container side has closed.
            while let Ok(n) = from_container.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        })
        .map_err(io("start a thread"))
}

/// Forwards blocked signals to process `pid` of the container (0: its
/// init); SIGWINCH resizes the container's terminal.
pub(super) fn forward_signals(
    client: Client,
    cid: String,
    pid: i32,
    set: SigSet,
    master: Option<OwnedFd>,
) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else { return };
            if signal == Signal::SIGWINCH {
                if let (Some(master), Ok(size)) =
                    (&master, tty::window_size(std::io::stdin().as_fd()))
                {
                    let _ = tty::set_window_size(master.as_fd(), size);
                }
                continue;
            }
            let call = SignalCall {
                cid: cid.clone(),
                signo: signal as i32,
                pid,
                mode: SignalMode::Process,
            };
            if let Err(ClientError::Rpc(e)) = client.invoke(call) {
                if e.code != ErrorCode::FailedPrecondition {
                    eprintln!("sandvisor: forward {signal}: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("sandvisor: signals will not be forwarded: {e}");
    }
}
