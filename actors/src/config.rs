//! The supervisor's configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::supervision::RestartPolicy;
use crate::wire::FrameLimits;

/// Per-connection and server-wide limits of the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Frame size and fd count limits.
    pub frame: FrameLimits,
    /// Open connections at most; more are refused with `resource_exhausted`.
    pub max_connections: usize,
    /// Calls in flight on one connection before the server stops reading it.
    pub max_in_flight: usize,
    /// Bytes of requests in flight plus replies not yet written on one
    /// connection before the server stops reading it.
    pub connection_buffer_budget: usize,
    /// How long a frame may take from its first byte to its last; a
    /// connection that leaves one incomplete longer is closed.
    pub partial_frame_timeout: std::time::Duration,
    /// Bytes of incomplete frames all connections together may hold; a
    /// connection whose incomplete frame would go beyond is refused.
    pub partial_frames_budget: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            frame: FrameLimits::default(),
            max_connections: 4096,
            max_in_flight: 1024,
            connection_buffer_budget: 4 * 1024 * 1024,
            partial_frame_timeout: std::time::Duration::from_secs(10),
            partial_frames_budget: 64 * 1024 * 1024,
        }
    }
}

/// Everything `sandvisor boot` decides before the actor tree starts.
#[derive(Debug, Clone)]
pub struct BootConfig {
    /// The sandbox id.
    pub id: String,
    /// The control socket's path.
    pub socket_path: PathBuf,
    /// Whether debug.InjectFault is allowed.
    pub fault_injection: bool,
    /// Control socket limits.
    pub limits: ServerLimits,
    /// How long in-flight calls may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How actors are restarted.
    pub restart_policy: RestartPolicy,
    /// The sandbox's state directory (containers' scratch directories).
    pub state_dir: PathBuf,
    /// Cgroup path, relative to each hierarchy's root, containers go under.
    pub cgroup_parent: PathBuf,
}

impl BootConfig {
    /// A configuration with default limits and policy.
    pub fn new(id: impl Into<String>, socket_path: impl Into<PathBuf>) -> Self {
        let id = id.into();
        BootConfig {
            state_dir: PathBuf::from("/run/sandvisor").join(&id),
            cgroup_parent: PathBuf::from("sandvisor").join(&id),
            id,
            socket_path: socket_path.into(),
            fault_injection: false,
            limits: ServerLimits::default(),
            shutdown_grace: Duration::from_secs(5),
            restart_policy: RestartPolicy::default(),
        }
    }
}
