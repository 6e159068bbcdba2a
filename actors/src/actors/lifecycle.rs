//! Lifecycle: pause and resume of one container or the whole sandbox (freezer).

use super::pending_actor;

pending_actor! {
    /// Freezes and thaws containers. Its methods land with the resources issue.
    Lifecycle
}
