//! Wire protocol v1: frames, bodies, error codes (see PROTOCOL.md).

pub mod cbor;
pub mod envelope;
pub mod frame;
pub mod status;

pub use envelope::{BodyError, BodyFault, RawRequest, RawResponse};
pub use frame::{Frame, FrameDecoder, FrameError, FrameLimits};
pub use status::{ErrorCode, RpcError};
