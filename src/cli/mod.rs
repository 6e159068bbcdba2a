//! The command-line interface: one module per command group.

mod boot;
mod bundle;
mod call;
mod caller_spawner;
mod create;
mod delete;
mod error;
mod events;
mod exec;
mod features;
mod inspect;
mod json;
mod kill;
mod metric_server;
mod pause;
mod ps;

mod run;
mod signals;
mod spec;
mod stdio;
mod supervisor;
mod update;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sandvisor_actors::api::logging::{LogFormat, LogLevel};
use sandvisor_actors::logging::LogConfig;

/// sandvisor: a sandbox supervisor for Linux containers.
#[derive(Debug, Parser)]
#[command(name = "sandvisor", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes (as runc's global flags).
#[derive(Debug, clap::Args)]
pub struct GlobalOptions {
    /// State directory: one directory per sandbox goes inside.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/run/sandvisor"
    )]
    root: PathBuf,
    /// Append log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_name = "text|json", default_value = "text", value_parser = parse_format)]
    log_format: LogFormat,
    /// Log at debug level (shorthand for --log-level debug).
    #[arg(long, global = true)]
    debug: bool,
    /// Log level: trace, debug, info, warning, error or critical.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_level)]
    log_level: Option<LogLevel>,
    /// Use systemd's cgroup driver (unsupported: cgroups are managed
    /// through the cgroup file system; `create` and `run` refuse it).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    s.parse()
}

impl GlobalOptions {
    fn log_config(&self) -> LogConfig {
        let level = match (self.log_level, self.debug) {
            (Some(level), _) => level,
            (None, true) => LogLevel::Debug,
            (None, false) => LogLevel::Info,
        };
        LogConfig {
            level,
            format: self.log_format,
            path: self.log.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a sandbox supervisor in the foreground, serving its control socket.
    Boot(boot::BootArgs),
    /// Call any method on a supervisor's control socket and print the reply as JSON.
    Call(call::CallArgs),
    /// Run a container in a new sandbox and exit with its status.
    Run(run::RunArgs),
    /// Create a container: set up, its program not started yet (as runc create).
    Create(create::CreateArgs),
    /// Start a created container's program (as runc start).
    Start(create::StartArgs),
    /// Run a process in a running container (as runc exec).
    Exec(exec::ExecArgs),
    /// List a container's processes (as runc ps).
    Ps(ps::PsArgs),
    /// Freeze every process of a container (as runc pause).
    Pause(pause::PauseArgs),
    /// Thaw a paused container (as runc resume).
    Resume(pause::PauseArgs),
    /// Print a container's resource use as JSON events (as runc events).
    Events(events::EventsArgs),
    /// Change a running container's resource limits (as runc update).
    Update(update::UpdateArgs),
    /// Print the memory use of a container's sandbox, as JSON.
    Usage(usage::UsageArgs),
    /// Write a starting config.json (as runc spec).
    Spec(spec::SpecArgs),
    /// Print what this runtime supports, as JSON (as runc features).
    Features,
    /// Print a container's OCI state, as JSON (as runc state).
    State(inspect::StateArgs),
    /// List the containers under --root (as runc list).
    List(inspect::ListArgs),
    /// Send a signal to a container's init, or every process with --all (as runc kill).
    Kill(kill::KillArgs),
    /// Remove a stopped container, and its sandbox with a root container (as runc delete).
    Delete(delete::DeleteArgs),
    /// Serve the sandboxes' metrics over HTTP for Prometheus (GET /metrics).
    MetricServer(metric_server::MetricServerArgs),
}

/// Parses the command line, runs the command, and returns its exit status.
pub fn main() -> ExitCode {
    // A spawner re-executed from a read-only mount of this binary: still
    // single-threaded, it must do nothing else first.
    let spawner_arg =
        std::ffi::OsStr::new(sandvisor_actors::sys::spawn::protected_exe::SPAWNER_ARG);
    if std::env::args_os().nth(1).as_deref() == Some(spawner_arg) {
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
        sandvisor_actors::sys::spawn::serve_reexecuted(&args);
    }
    let cli = Cli::parse();
    let makes_cgroups = matches!(cli.command, Command::Create(_) | Command::Run(_));
    if cli.global.systemd_cgroup && makes_cgroups {
        let e = "unsupported: --systemd-cgroup: sandvisor manages cgroups through the cgroup file system only";
        report_error(&cli.global, e);
        return ExitCode::FAILURE;
    }
    let result: Result<ExitCode, Box<dyn std::error::Error>> = match cli.command {
        Command::Boot(args) => boot::run(&cli.global, args).map_err(Into::into),
        Command::Call(args) => call::run(args).map_err(Into::into),
        Command::Run(args) => run::run(&cli.global, args).map_err(Into::into),
        Command::Create(args) => create::create(&cli.global, args).map_err(Into::into),
        Command::Start(args) => create::start(&cli.global, args).map_err(Into::into),
        Command::Exec(args) => exec::exec(&cli.global, args).map_err(Into::into),
        Command::Ps(args) => ps::ps(&cli.global, args).map_err(Into::into),
        Command::Pause(args) => pause::pause(&cli.global, args).map_err(Into::into),
        Command::Resume(args) => pause::resume(&cli.global, args).map_err(Into::into),
        Command::Events(args) => events::events(&cli.global, args).map_err(Into::into),
        Command::Update(args) => update::update(&cli.global, args).map_err(Into::into),
        Command::Usage(args) => usage::usage(&cli.global, args).map_err(Into::into),
        Command::Spec(args) => spec::run(args).map_err(Into::into),
        Command::Features => features::run().map_err(Into::into),
        Command::State(args) => inspect::state(&cli.global, args).map_err(Into::into),
        Command::List(args) => inspect::list(&cli.global, args).map_err(Into::into),
        Command::Kill(args) => kill::kill(&cli.global, args).map_err(Into::into),
        Command::Delete(args) => delete::delete(&cli.global, args).map_err(Into::into),
        Command::MetricServer(args) => metric_server::serve(&cli.global, args).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&cli.global, &e.to_string());
            match e.downcast_ref::<error::RunError>() {
                Some(error::RunError::Exec { code, .. }) => ExitCode::from(*code),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Prints a command's error to stderr and, with --log, appends it to the
/// log in its format (as runc does; containerd reads the last error of a
/// JSON log to say why a call failed).
fn report_error(global: &GlobalOptions, message: &str) {
    eprintln!("sandvisor: {message}");
    let Some(path) = &global.log else { return };
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let line = match global.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={message:?}"),
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(e) = appended {
        eprintln!("sandvisor: write the error to {}: {e}", path.display());
    }
}
