//! Profiler: CPU, heap, trace, block and mutex profiles.

use super::pending_actor;

pending_actor! {
    /// Collects profiles of the supervisor. Its methods land with their own issue.
    Profiler
}
