//! Metrics: the supervisor's metrics registry and its export.

use super::pending_actor;

pending_actor! {
    /// Owns the metrics registry. Its methods land with the resources issue.
    Metrics
}
