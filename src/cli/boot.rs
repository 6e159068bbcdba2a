//! `sandvisor boot`: a supervisor in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sandvisor_actors::actors::PrewarmedRoot;
use sandvisor_actors::container::id::valid_container_id;
use sandvisor_actors::logging::{self, LogError};
use sandvisor_actors::sys::cgroup::{self, ContainerCgroup};
use sandvisor_actors::sys::process::{become_subreaper, raise_open_file_limit};
use sandvisor_actors::sys::socket::{bind_control_socket, SocketError};
use sandvisor_actors::sys::spawn::{fork_resident, fork_spawner};
use sandvisor_actors::wire::frame::MAX_BODY_LEN;
use sandvisor_actors::{boot, BootConfig};
use slog::{error, info, warn, Logger};
use thiserror::Error;

use super::GlobalOptions;

/// Arguments of `sandvisor boot`.
#[derive(Debug, Args)]
pub struct BootArgs {
    /// The sandbox id: letters, digits, '_', '+', '-' and '.'.
    #[arg(long)]
    id: String,
    /// Path of the control socket (its directory must be 0700; created if missing).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Allow debug.InjectFault (chaos testing).
    #[arg(long)]
    enable_fault_injection: bool,
    /// Largest request body accepted, in bytes (at most 16 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = MAX_BODY_LEN,
          value_parser = clap::value_parser!(u32).range(64..=i64::from(MAX_BODY_LEN)))]
    max_frame_len: u32,
    /// Milliseconds a frame may take from its first byte to its last; a
    /// connection that leaves one incomplete longer is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    partial_frame_timeout_ms: u64,
    /// Bytes of incomplete frames all connections together may hold; a
    /// connection whose incomplete frame would go beyond is refused.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    partial_frames_budget: usize,
    /// Milliseconds in-flight calls get to finish after SIGTERM or SIGINT.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    shutdown_grace_ms: u64,
    /// Write "ready\n" to this inherited descriptor, then close it, once the
    /// socket accepts calls.
    #[arg(long, value_name = "FD")]
    ready_fd: Option<i32>,
    /// Make the cgroups and resident spawner of root container CID (at its
    /// default cgroup path) while booting, so that its StartRoot finds them
    /// ready: on cgroup v1, joining a cgroup waits for an RCU grace period,
    /// which then overlaps the start. `sandvisor run` passes its id.
    #[arg(long, value_name = "CID")]
    prewarm: Option<String>,
}

/// Why boot failed.
#[derive(Debug, Error)]
pub enum BootCommandError {
    /// The id has characters that are not allowed.
    #[error("invalid sandbox id {0:?}: use 1 to 1024 letters, digits, '_', '+', '-' or '.', not only dots")]
    BadId(String),
    /// Logging could not start.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The control socket could not be created.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The actor tree could not start.
    #[error("boot: {0}")]
    Boot(#[from] sandvisor_actors::actors::BootError),
    /// The runtime failed.
    #[error("actor system: {0}")]
    System(std::io::Error),
    /// The spawner process could not be started.
    #[error("start the spawner: {0}")]
    Spawner(std::io::Error),
}

fn install_panic_hook(logger: Logger) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        error!(logger, "panic";
            "thread" => thread.name().unwrap_or("unnamed"),
            "location" => info.location().map(|l| l.to_string()).unwrap_or_default(),
            "message" => info.payload().downcast_ref::<&str>().copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("non-string payload"));
    }));
}

/// Writes the readiness line to `fd` and closes it.
fn signal_ready(fd: i32) {
    READY_FD_USED.store(true, std::sync::atomic::Ordering::SeqCst);
    tell_parent(fd, b"ready\n");
}

/// Set once the readiness pipe is written and closed: its number may name
/// another file afterwards.
static READY_FD_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the parent why the boot failed, on its readiness pipe: the
/// command that started it (`create`, `run`) gives the reason to its own
/// caller (containerd, conmon), who never sees this process's stderr.
pub fn report_boot_failure(fd: i32, error: &BootCommandError) {
    if READY_FD_USED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    tell_parent(fd, format!("error: {error}\n").as_bytes());
}

/// Writes `line` to `fd` (once: it is closed after).
fn tell_parent(fd: i32, line: &[u8]) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptor was handed over by the parent for this one
    // purpose; F_GETFD on a number that is not open fails with EBADF and
    // touches nothing.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
        // SAFETY: `fd` is open (checked above) and ours alone to close.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let _ = file.write_all(line);
    }
}

/// Makes root container `cid`'s cgroups in the v1 hierarchies and forks a
/// resident spawner into them; nothing to do on a cgroup v2 host, where
/// processes are cloned straight into their cgroup. Runs while the process
/// has a single thread.
fn prewarm_root(
    cid: &str,
    cgroup_parent: &std::path::Path,
) -> std::io::Result<Option<PrewarmedRoot>> {
    if !valid_container_id(cid) {
        return Err(std::io::Error::other(format!(
            "invalid container id {cid:?}"
        )));
    }
    let v1: Vec<cgroup::Hierarchy> = cgroup::hierarchies()?
        .into_iter()
        .filter(|h| h.v1_controllers.is_some())
        .collect();
    if v1.is_empty() {
        return Ok(None);
    }
    let cgroup = ContainerCgroup::create(&v1, &cgroup_parent.join(cid))?;
    let resident = match fork_resident(&cgroup.v1_procs_files()) {
        Ok(r) => r,
        Err(e) => {
            let _ = cgroup.remove(std::time::Duration::ZERO);
            return Err(e);
        }
    };
    Ok(Some(PrewarmedRoot {
        cid: cid.to_owned(),
        cgroup,
        resident,
    }))
}

/// Undoes a prewarm when the boot fails: kills and reaps the resident,
/// then removes its cgroups.
fn discard_prewarm(prewarm: Option<(i32, ContainerCgroup)>) {
    let Some((pid, cgroup)) = prewarm else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    let _ = cgroup.remove(std::time::Duration::from_millis(200));
}

/// Runs the supervisor until SIGTERM or SIGINT.
pub fn run(global: &GlobalOptions, args: BootArgs) -> Result<ExitCode, BootCommandError> {
    let ready_fd = args.ready_fd;
    let served = serve(global, args);
    if let (Err(e), Some(fd)) = (&served, ready_fd) {
        report_boot_failure(fd, e);
    }
    served
}

fn serve(global: &GlobalOptions, args: BootArgs) -> Result<ExitCode, BootCommandError> {
    // A sandbox id is checked as runc checks container ids.
    if !valid_container_id(&args.id) {
        return Err(BootCommandError::BadId(args.id));
    }
    // The spawner must be forked while this process has one thread: before
    // logging (its writer thread) and the actor system start.
    let spawner = fork_spawner().map_err(BootCommandError::Spawner)?;
    // Bound before anything is prewarmed: a socket in use is the usual way
    // a boot fails, and then nothing needs undoing.
    let socket = bind_control_socket(&args.socket)?;
    let cgroup_parent = BootConfig::new(args.id.clone(), args.socket.clone()).cgroup_parent;
    let prewarmed = args
        .prewarm
        .as_deref()
        .map(|cid| prewarm_root(cid, &cgroup_parent));
    let undo_prewarm = match &prewarmed {
        Some(Ok(Some(p))) => Some((p.resident.handle.pid, p.cgroup.clone())),
        _ => None,
    };
    let (logger, log_control, log_guard) = match logging::init(&global.log_config()) {
        Ok(logging) => logging,
        Err(e) => {
            discard_prewarm(undo_prewarm);
            let _ = std::fs::remove_file(&args.socket);
            return Err(e.into());
        }
    };
    let prewarmed = match prewarmed {
        Some(Err(e)) => {
            warn!(logger, "cannot prewarm the root container"; "error" => %e);
            None
        }
        Some(Ok(p)) => p,
        None => None,
    };
    if let Err(e) = become_subreaper() {
        warn!(logger, "cannot become a child subreaper"; "error" => %e);
    }
    install_panic_hook(logger.clone());
    if let Err(e) = raise_open_file_limit() {
        warn!(logger, "cannot raise the open file limit"; "error" => %e);
    }
    let mut config = BootConfig::new(args.id.clone(), args.socket.clone());
    config.fault_injection = args.enable_fault_injection;
    config.limits.frame.max_body_len = args.max_frame_len;
    config.limits.partial_frame_timeout =
        std::time::Duration::from_millis(args.partial_frame_timeout_ms);
    config.limits.partial_frames_budget = args.partial_frames_budget;
    config.shutdown_grace = std::time::Duration::from_millis(args.shutdown_grace_ms);
    config.state_dir = global.root.join(&args.id);

    let system = actix_rt::System::new();
    let booted = system.block_on(async {
        boot(
            config,
            socket,
            Some(spawner),
            prewarmed,
            logger.clone(),
            log_control,
        )
    });
    if let Err(e) = booted {
        discard_prewarm(undo_prewarm);
        let _ = std::fs::remove_file(&args.socket);
        return Err(e.into());
    }
    if let Some(fd) = args.ready_fd {
        signal_ready(fd);
    }
    let code = system.run_with_code().map_err(BootCommandError::System)?;
    // The listener removes the socket file when it stops; if it had failed,
    // do it here so a stale file is not left behind.
    if args.socket.exists() {
        let _ = std::fs::remove_file(&args.socket);
    }
    info!(logger, "supervisor exited"; "id" => &args.id, "code" => code);
    drop(logger);
    drop(log_guard);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
