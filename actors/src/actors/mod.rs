//! The actor tree, one module per actor (DESIGN.md, Actors).

mod cgroups;
mod connections;
mod container_manager;
mod debug;
mod ingress;
mod lifecycle;
mod listener;
mod logging;
mod metrics;
mod network;
mod profiler;
mod reaper;
mod stats;
mod supervisor;
mod trace_sessions;
mod usage;

pub use cgroups::Cgroups;
pub use connections::ConnectionStats;
pub use container_manager::{
    valid_container_id, ContainerCgroups, ContainerError, ContainerListing, ContainerManager,
    ManagerConfig, PrewarmedRoot, Teardown,
};
pub use debug::{Debug, DebugError};
pub use ingress::{Drain, Ingress, IngressError};
pub use lifecycle::Lifecycle;
pub use listener::{AdmissionError, Listener, StopListening};
pub use logging::Logging;
pub use metrics::{Metrics, MetricsError};
pub use network::Network;
pub use profiler::Profiler;
pub use reaper::{ChildrenExited, ExitJournal, Reaper};
pub use supervisor::{boot, BootError, SandboxSupervisor, Shutdown};
pub use trace_sessions::TraceSessions;
pub use usage::{Usage, UsageError};

/// Declares an actor whose methods have not landed yet: it is part of the
/// tree (it can be inspected, faulted and restarted) and answers each of
/// its methods with `unsupported`.
macro_rules! pending_actor {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            status: std::sync::Arc<$crate::supervision::ActorStatus>,
            logger: slog::Logger,
        }

        impl $name {
            /// The actor, reporting into `status`.
            pub fn new(status: std::sync::Arc<$crate::supervision::ActorStatus>, logger: slog::Logger) -> Self {
                $name { status, logger }
            }
        }

        impl $crate::supervision::Subsystem for $name {
            fn status(&self) -> &std::sync::Arc<$crate::supervision::ActorStatus> {
                &self.status
            }

            fn logger(&self) -> &slog::Logger {
                &self.logger
            }
        }

        $crate::supervision::supervised_actor!($name);
    };
}

use pending_actor;
