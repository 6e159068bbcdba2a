//! Reaper: collects every child exit and reports it to the ContainerManager and trace sessions.

use super::pending_actor;

pending_actor! {
    /// Reaps children (pidfd and `waitid`). It owns no methods; it lands with the containers issue.
    Reaper
}
