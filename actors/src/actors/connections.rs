//! The connection counters and the slot each open connection holds: shared
//! by the Listener (which admits connections), each Ingress (which holds
//! its slot) and debug.Stacks and the metrics (which read the counters).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Connection counters, shared with debug.Stacks.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl ConnectionStats {
    /// Counts a refused connection.
    pub(super) fn note_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections admitted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Counts one open connection for as long as it lives.
pub struct ConnectionSlot(Arc<ConnectionStats>);

impl ConnectionSlot {
    /// Counts a connection admitted now.
    pub(super) fn new(stats: Arc<ConnectionStats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        ConnectionSlot(stats)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
