//! Cgroups: cgroup v1, v2 and hybrid hierarchies; resources, control files, stats and OOM events.

use super::pending_actor;

pending_actor! {
    /// Owns the sandbox's cgroups. Its methods land with the resources issue.
    Cgroups
}
