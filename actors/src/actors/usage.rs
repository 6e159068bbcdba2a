//! Usage: the sandbox's memory use, by call and through a shared page.

use super::pending_actor;

pending_actor! {
    /// Reports memory usage. Its methods land with the resources issue.
    Usage
}
