//! ContainerManager: containers, exec, wait, signal, processes, procfs dump, mounts, events, checkpoint/restore and port forwarding.

use super::pending_actor;

pending_actor! {
    /// Owns the sandbox's containers and their processes. Its methods land with the containers issue; until then each answers `unsupported`.
    ContainerManager
}
