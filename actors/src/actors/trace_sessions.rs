//! TraceSessions: trace sessions, their points and sinks.

use super::pending_actor;

pending_actor! {
    /// Owns trace sessions. Its methods land with their own issue.
    TraceSessions
}
