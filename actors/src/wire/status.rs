//! Wire error codes and the error value every failed call carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The error codes of wire protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ErrorCode {
    /// The request is malformed or its arguments are wrong.
    InvalidArgument,
    /// The method, or an object it names, does not exist.
    NotFound,
    /// The object to create exists already.
    AlreadyExists,
    /// The object is not in a state that allows the call.
    FailedPrecondition,
    /// The caller may not make this call.
    PermissionDenied,
    /// A limit was reached.
    ResourceExhausted,
    /// The callee cannot answer now; the same call may succeed when retried.
    Unavailable,
    /// The capability is not supported by this build or host.
    Unsupported,
    /// The call did not finish in time.
    DeadlineExceeded,
    /// A bug or an unexpected host failure.
    Internal,
    /// The byte stream broke the framing rules; the connection is closed.
    Protocol,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::PermissionDenied,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unavailable,
        ErrorCode::Unsupported,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
        ErrorCode::Protocol,
    ];

    /// The code as it is spelled on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Internal => "internal",
            ErrorCode::Protocol => "protocol",
        }
    }

    /// Parses the wire spelling.
    pub fn from_wire(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: a code and a lower-case message saying what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(deny_unknown_fields)]
pub struct RpcError {
    /// The wire code.
    pub code: ErrorCode,
    /// What failed, and with which value.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// `invalid_argument`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        RpcError::new(ErrorCode::InvalidArgument, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        RpcError::new(ErrorCode::NotFound, message)
    }

    /// `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        RpcError::new(ErrorCode::Unavailable, message)
    }

    /// `unsupported`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        RpcError::new(ErrorCode::Unsupported, message)
    }

    /// `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        RpcError::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_wire_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            let cbor = serde_cbor::to_vec(&code).unwrap();
            assert_eq!(
                serde_cbor::from_slice::<String>(&cbor).unwrap(),
                code.as_str()
            );
        }
        assert_eq!(ErrorCode::from_wire("ok"), None);
    }
}
