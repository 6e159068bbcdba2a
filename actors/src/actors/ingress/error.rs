//! What ends a connection, or refuses one request on it.

use std::io;

use thiserror::Error;

use crate::wire::FrameError;

/// What ends a connection, or refuses one request on it.
#[derive(Debug, Error)]
pub enum IngressError {
    /// The byte stream broke the framing rules.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// More descriptors arrived than the control buffer holds.
    #[error("control message truncated (MSG_CTRUNC): more than 64 file descriptors in one message; {received} were received and closed")]
    ControlTruncated {
        /// How many were received before the truncation.
        received: usize,
    },
    /// Reading the socket failed.
    #[error("read from connection: {0}")]
    Read(io::Error),
    /// A request reused the id of a call still in flight.
    #[error("request id {0} is already in flight on this connection")]
    DuplicateId(u64),
    /// Handling a frame panicked (a bug); the connection is closed.
    #[error("internal error while decoding a request; the connection is closed")]
    DecodePanicked,
    /// A frame was begun and not finished in time.
    #[error("a frame begun {waited_ms} ms ago is still incomplete ({buffered} bytes received); the limit is {limit_ms} ms")]
    IncompleteFrame {
        /// Bytes of it received.
        buffered: usize,
        /// How long it has been waited for.
        waited_ms: u128,
        /// The limit.
        limit_ms: u128,
    },
    /// The incomplete frames of all connections hold too many bytes.
    #[error("incomplete frames of all connections would hold {total} bytes (this one {buffered}), over the supervisor's limit of {limit}")]
    PartialFramesBudget {
        /// This connection's incomplete frame, in bytes.
        buffered: usize,
        /// All connections' together.
        total: usize,
        /// The limit.
        limit: usize,
    },
}
