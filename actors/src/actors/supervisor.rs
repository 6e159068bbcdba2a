//! SandboxSupervisor: builds the actor tree, owns it, and shuts it down
//! gracefully on SIGTERM or SIGINT.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Addr, Arbiter, AsyncContext, Context, Handler, Message, Supervisor, System};
use slog::{info, o, warn, Logger};
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};

use super::connections::ConnectionStats;
use super::container_manager::{ManagerConfig, PrewarmedRoot, Teardown};
use super::listener::{Listener, StopListening};
use super::reaper::ExitJournal;
use super::{
    Cgroups, ContainerManager, Debug, Lifecycle, Logging, Metrics, Network, Profiler, Reaper,
    TraceSessions, Usage,
};
use crate::config::BootConfig;
use crate::logging::LogControl;
use crate::metrics::SandboxMetrics;
use crate::router::{Endpoint, Router};
use crate::supervision::{
    guarded, supervised_actor, ActorStatus, Fault, MailboxTicket, Registry, Subsystem,
};
use crate::sys::process::set_thread_name;
use crate::sys::spawn::SpawnerHandle;

/// Why the supervisor could not boot.
#[derive(Debug, Error)]
pub enum BootError {
    /// Signal handlers could not be installed.
    #[error("install handler for {signal}: {source}")]
    Signals {
        /// The signal.
        signal: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// A termination signal arrived.
pub struct Shutdown {
    /// Which one.
    pub signal: &'static str,
    /// Counts it in the mailbox.
    pub ticket: MailboxTicket,
}

impl Message for Shutdown {
    type Result = ();
}

/// The root of the tree.
pub struct SandboxSupervisor {
    status: Arc<ActorStatus>,
    logger: Logger,
    listener: Addr<Listener>,
    listener_status: Arc<ActorStatus>,
    containers: Addr<ContainerManager>,
    containers_status: Arc<ActorStatus>,
    connections: Arc<ConnectionStats>,
    grace: Duration,
    shutdown_started: Option<Instant>,
    tearing_down: bool,
    _arbiters: Vec<Arbiter>,
}

impl SandboxSupervisor {
    fn shutdown(&mut self, signal: &'static str, ctx: &mut Context<Self>) {
        if self.shutdown_started.is_some() {
            warn!(self.logger, "second termination signal; stopping now"; "signal" => signal);
            System::current().stop();
            return;
        }
        info!(self.logger, "shutting down"; "signal" => signal,
            "connections" => self.connections.open(), "grace_ms" => self.grace.as_millis() as u64);
        self.shutdown_started = Some(Instant::now());
        self.listener.do_send(StopListening {
            ticket: self.listener_status.ticket(),
        });
        self.watch_shutdown(ctx);
    }

    /// Once every connection has closed (or the grace period is over,
    /// cancelling what is still in flight), tears the containers down and
    /// stops the system.
    fn watch_shutdown(&mut self, ctx: &mut Context<Self>) {
        // Idle connections close as soon as the listener stops: the first
        // checks come quickly, so that a plain stop takes no longer than
        // the teardown itself.
        self.check_shutdown();
        ctx.run_interval(Duration::from_millis(1), |act, _| act.check_shutdown());
    }

    fn check_shutdown(&mut self) {
        let Some(started) = self.shutdown_started else {
            return;
        };
        if self.tearing_down {
            return;
        }
        let open = self.connections.open();
        if open != 0 && started.elapsed() < self.grace {
            return;
        }
        if open != 0 {
            warn!(self.logger, "shutdown grace period over; cancelling calls in flight";
                "connections" => open);
        }
        self.tearing_down = true;
        let (done, finished) = tokio::sync::oneshot::channel();
        self.containers.do_send(Teardown {
            ticket: self.containers_status.ticket(),
            done,
        });
        let logger = self.logger.clone();
        actix_rt::spawn(async move {
            if tokio::time::timeout(Duration::from_secs(10), finished)
                .await
                .is_err()
            {
                warn!(logger, "container teardown did not finish; exiting anyway");
            }
            info!(logger, "exiting");
            System::current().stop();
        });
    }
}

impl Subsystem for SandboxSupervisor {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }

    fn on_start(&mut self, ctx: &mut Context<Self>) {
        // A restart drops the shutdown watch with the old context.
        if self.shutdown_started.is_some() {
            self.watch_shutdown(ctx);
        }
    }
}

impl Handler<Shutdown> for SandboxSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        let signal = msg.signal;
        let _ = guarded(self, ctx, "Shutdown", msg.ticket, move |act, ctx| {
            act.shutdown(signal, ctx);
            Ok(())
        });
    }
}

supervised_actor!(SandboxSupervisor);

/// Starts `make` on its own arbiter (thread), so that a handler that
/// blocks by mistake cannot stall the control socket.
fn start_dedicated<A>(
    thread: &'static str,
    status: &Arc<ActorStatus>,
    arbiters: &mut Vec<Arbiter>,
    make: impl FnOnce() -> A + Send + 'static,
) -> Addr<A>
where
    A: Subsystem + actix::Handler<Fault>,
{
    let arbiter = Arbiter::new();
    arbiter.spawn_fn(move || set_thread_name(thread));
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| make());
    status.set_fault_inbox(addr.clone().recipient());
    arbiters.push(arbiter);
    addr
}

/// Starts `make` on the current (control) arbiter.
fn start_local<A>(status: &Arc<ActorStatus>, make: impl FnOnce() -> A + 'static) -> Addr<A>
where
    A: Subsystem + actix::Handler<Fault>,
{
    let addr = Supervisor::start(move |_| make());
    status.set_fault_inbox(addr.clone().recipient());
    addr
}

/// The statuses of every actor, in tree order.
struct Statuses {
    supervisor: Arc<ActorStatus>,
    listener: Arc<ActorStatus>,
    container_manager: Arc<ActorStatus>,
    reaper: Arc<ActorStatus>,
    lifecycle: Arc<ActorStatus>,
    cgroups: Arc<ActorStatus>,
    network: Arc<ActorStatus>,
    trace_sessions: Arc<ActorStatus>,
    profiler: Arc<ActorStatus>,
    metrics: Arc<ActorStatus>,
    usage: Arc<ActorStatus>,
    logging: Arc<ActorStatus>,
    debug: Arc<ActorStatus>,
}

/// Boots the actor tree on the current actix system, serving the bound and
/// listening `socket`, spawning containers through `spawner` (and the
/// root container `prewarmed` at start, if any). Must be
/// called from inside the system's runtime.
pub fn boot(
    config: BootConfig,
    socket: OwnedFd,
    spawner: Option<SpawnerHandle>,
    prewarmed: Option<PrewarmedRoot>,
    logger: Logger,
    log_control: LogControl,
) -> Result<Addr<SandboxSupervisor>, BootError> {
    let policy = config.restart_policy;
    let new = |name| ActorStatus::new(name, policy);
    let s = Statuses {
        supervisor: new("SandboxSupervisor"),
        listener: new("Listener"),
        container_manager: new("ContainerManager"),
        reaper: new("Reaper"),
        lifecycle: new("Lifecycle"),
        cgroups: new("Cgroups"),
        network: new("Network"),
        trace_sessions: new("TraceSessions"),
        profiler: new("Profiler"),
        metrics: new("Metrics"),
        usage: new("Usage"),
        logging: new("Logging"),
        debug: new("Debug"),
    };
    let mut registry = Registry::default();
    for status in [
        &s.supervisor,
        &s.listener,
        &s.container_manager,
        &s.reaper,
        &s.lifecycle,
        &s.cgroups,
        &s.network,
        &s.trace_sessions,
        &s.profiler,
        &s.metrics,
        &s.usage,
        &s.logging,
        &s.debug,
    ] {
        registry.add(status.clone());
    }
    let registry = Arc::new(registry);
    let connections = Arc::new(ConnectionStats::default());
    let log = |name: &'static str| logger.new(o!("actor" => name));
    let mut arbiters = Vec::new();

    macro_rules! dedicated {
        ($thread:literal, $status:expr, $actor:ident) => {{
            let (status, logger) = ($status.clone(), log($status.name()));
            let addr = start_dedicated($thread, &$status, &mut arbiters, move || {
                $actor::new(status, logger)
            });
            addr
        }};
    }
    let journal = Arc::new(ExitJournal::default());
    let contained = Arc::new(crate::containment::ContainedNamespaces::default());
    let instruments = SandboxMetrics::new(&config.id);
    let spawner_pid = spawner.as_ref().map(|s| s.pid);
    // Read once, for the actors that use them.
    let hierarchies = crate::sys::cgroup::hierarchies().unwrap_or_else(|e| {
        warn!(log("ContainerManager"), "cannot read cgroup hierarchies"; "error" => %e);
        Vec::new()
    });
    let container_manager = {
        let (status, logger) = (s.container_manager.clone(), log("ContainerManager"));
        let manager_config = ManagerConfig {
            sandbox_id: config.id.clone(),
            state_dir: config.state_dir.clone(),
            cgroup_parent: config.cgroup_parent.clone(),
            supervisor_pid: std::process::id() as i32,
            instruments: instruments.clone(),
            contained: contained.clone(),
        };
        let (journal, socket) = (journal.clone(), spawner.map(|s| s.socket));
        let hierarchies = hierarchies.clone();
        start_dedicated(
            "sv-containers",
            &s.container_manager,
            &mut arbiters,
            move || {
                ContainerManager::new(
                    status,
                    logger,
                    manager_config,
                    hierarchies,
                    socket,
                    prewarmed,
                    journal,
                )
            },
        )
    };
    let _reaper = {
        let (status, logger) = (s.reaper.clone(), log("Reaper"));
        let (manager, manager_status) = (
            container_manager.clone().recipient(),
            s.container_manager.clone(),
        );
        start_dedicated("sv-reaper", &s.reaper, &mut arbiters, move || {
            Reaper::new(
                status,
                logger,
                journal,
                manager,
                manager_status,
                spawner_pid,
            )
        })
    };
    let lifecycle = {
        let (status, logger) = (s.lifecycle.clone(), log("Lifecycle"));
        let (containers, containers_status) =
            (container_manager.clone(), s.container_manager.clone());
        start_dedicated("sv-lifecycle", &s.lifecycle, &mut arbiters, move || {
            Lifecycle::new(status, logger, containers, containers_status)
        })
    };
    let usage = {
        let (status, logger) = (s.usage.clone(), log("Usage"));
        let (hierarchies, parent) = (hierarchies.clone(), config.cgroup_parent.clone());
        let (manager, manager_status) = (
            container_manager.clone().recipient(),
            s.container_manager.clone(),
        );
        start_dedicated("sv-usage", &s.usage, &mut arbiters, move || {
            Usage::new(status, logger, hierarchies, parent, manager, manager_status)
        })
    };
    let cgroups = {
        let (status, logger) = (s.cgroups.clone(), log("Cgroups"));
        let (parent, hierarchies) = (config.cgroup_parent.clone(), hierarchies.clone());
        start_dedicated("sv-cgroups", &s.cgroups, &mut arbiters, move || {
            Cgroups::new(status, logger, hierarchies, parent)
        })
    };
    let network = dedicated!("sv-network", s.network, Network);
    let trace_sessions = dedicated!("sv-trace", s.trace_sessions, TraceSessions);
    let profiler = dedicated!("sv-profiler", s.profiler, Profiler);
    let metrics = {
        let (status, logger) = (s.metrics.clone(), log("Metrics"));
        let (instruments, registry, connections) =
            (instruments.clone(), registry.clone(), connections.clone());
        let (containers, containers_status, hierarchies) = (
            container_manager.clone(),
            s.container_manager.clone(),
            hierarchies.clone(),
        );
        start_dedicated("sv-metrics", &s.metrics, &mut arbiters, move || {
            Metrics::new(
                status,
                logger,
                instruments,
                registry,
                connections,
                containers,
                containers_status,
                hierarchies,
            )
        })
    };

    let logging = {
        let (status, logger) = (s.logging.clone(), log("Logging"));
        start_local(&s.logging, move || {
            Logging::new(status, logger, log_control)
        })
    };
    let debug = {
        let (status, logger) = (s.debug.clone(), log("Debug"));
        let (registry, connections) = (registry.clone(), connections.clone());
        let fault_injection = config.fault_injection;
        start_local(&s.debug, move || {
            Debug::new(status, logger, registry, connections, fault_injection)
        })
    };
    let router = Router {
        container_manager: Endpoint::new(
            container_manager.clone(),
            s.container_manager.clone(),
            instruments.clone(),
        ),
        lifecycle: Endpoint::new(lifecycle, s.lifecycle.clone(), instruments.clone()),
        cgroups: Endpoint::new(cgroups, s.cgroups.clone(), instruments.clone()),
        network: Endpoint::new(network, s.network.clone(), instruments.clone()),
        trace_sessions: Endpoint::new(
            trace_sessions,
            s.trace_sessions.clone(),
            instruments.clone(),
        ),
        profiler: Endpoint::new(profiler, s.profiler.clone(), instruments.clone()),
        metrics: Endpoint::new(metrics, s.metrics.clone(), instruments.clone()),
        usage: Endpoint::new(usage, s.usage.clone(), instruments.clone()),
        logging: Endpoint::new(logging, s.logging.clone(), instruments.clone()),
        debug: Endpoint::new(debug, s.debug.clone(), instruments.clone()),
    };
    let listener = {
        let (status, logger, ingress_logger) =
            (s.listener.clone(), log("Listener"), log("Ingress"));
        let (path, limits, connections) = (
            config.socket_path.clone(),
            config.limits,
            connections.clone(),
        );
        start_local(&s.listener, move || {
            Listener::new(
                status,
                logger,
                ingress_logger,
                socket,
                path,
                router,
                limits,
                connections,
                contained,
            )
        })
    };

    let mut terminate = signal(SignalKind::terminate()).map_err(|source| BootError::Signals {
        signal: "SIGTERM",
        source,
    })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| BootError::Signals {
        signal: "SIGINT",
        source,
    })?;
    let supervisor = {
        let status = s.supervisor.clone();
        let logger = log("SandboxSupervisor");
        let listener_status = s.listener.clone();
        let (containers, containers_status) =
            (container_manager.clone(), s.container_manager.clone());
        let grace = config.shutdown_grace;
        start_local(&s.supervisor, move || SandboxSupervisor {
            status,
            logger,
            listener,
            listener_status,
            containers,
            containers_status,
            connections,
            grace,
            shutdown_started: None,
            tearing_down: false,
            _arbiters: arbiters,
        })
    };
    let (addr, status) = (supervisor.clone(), s.supervisor.clone());
    actix_rt::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            addr.do_send(Shutdown {
                signal,
                ticket: status.ticket(),
            });
        }
    });
    info!(logger, "supervisor ready";
        "id" => &config.id, "socket" => %config.socket_path.display(),
        "fault_injection" => config.fault_injection, "pid" => std::process::id());
    Ok(supervisor)
}
