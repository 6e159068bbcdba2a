//! Network: links, addresses and routes in the sandbox's network namespace (rtnetlink).

use super::pending_actor;

pending_actor! {
    /// Configures the sandbox network. Its methods land with their own issue.
    Network
}
