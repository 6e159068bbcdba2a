//! The one place where every module's typed errors become wire error codes.

use crate::actors::{
    AdmissionError, ContainerError, DebugError, IngressError, MetricsError, UsageError,
};
use crate::api::DecodeError;
use crate::container::spec::SpecError;
use crate::router::ReplyError;
use crate::supervision::SupervisionError;
use crate::sys::cgroup_writes::LimitError;
use crate::sys::spawn::SpawnError;
use crate::wire::{BodyError, ErrorCode, FrameError, RpcError};

fn rpc(code: ErrorCode, error: &impl std::fmt::Display) -> RpcError {
    RpcError::new(code, error.to_string())
}

impl From<FrameError> for RpcError {
    fn from(e: FrameError) -> Self {
        rpc(ErrorCode::Protocol, &e)
    }
}

impl From<BodyError> for RpcError {
    fn from(e: BodyError) -> Self {
        rpc(ErrorCode::InvalidArgument, &e)
    }
}

impl From<DecodeError> for RpcError {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::UnknownMethod(_) => ErrorCode::NotFound,
            DecodeError::BadArgs { .. } | DecodeError::BadFds { .. } => ErrorCode::InvalidArgument,
        };
        rpc(code, &e)
    }
}

impl From<IngressError> for RpcError {
    fn from(e: IngressError) -> Self {
        let code = match e {
            IngressError::Frame(_)
            | IngressError::ControlTruncated { .. }
            | IngressError::Read(_) => ErrorCode::Protocol,
            IngressError::DuplicateId(_) => ErrorCode::InvalidArgument,
            IngressError::IncompleteFrame { .. } => ErrorCode::DeadlineExceeded,
            IngressError::PartialFramesBudget { .. } => ErrorCode::ResourceExhausted,
            IngressError::DecodePanicked => ErrorCode::Internal,
        };
        rpc(code, &e)
    }
}

impl From<AdmissionError> for RpcError {
    fn from(e: AdmissionError) -> Self {
        let code = match e {
            AdmissionError::PeerDenied { .. } | AdmissionError::Contained(_) => {
                ErrorCode::PermissionDenied
            }
            AdmissionError::TooManyConnections { .. } => ErrorCode::ResourceExhausted,
        };
        rpc(code, &e)
    }
}

impl From<SupervisionError> for RpcError {
    fn from(e: SupervisionError) -> Self {
        let code = match e {
            SupervisionError::Panicked { .. } | SupervisionError::Stopped { .. } => {
                ErrorCode::Unavailable
            }
            SupervisionError::Failed { .. } => ErrorCode::Internal,
            SupervisionError::NotYetSupported { .. } => ErrorCode::Unsupported,
        };
        rpc(code, &e)
    }
}

impl From<ReplyError> for RpcError {
    fn from(e: ReplyError) -> Self {
        let code = match e {
            ReplyError::TooLarge { .. } => ErrorCode::ResourceExhausted,
            ReplyError::TooManyFds { .. } | ReplyError::Encode { .. } => ErrorCode::Internal,
        };
        rpc(code, &e)
    }
}

impl From<DebugError> for RpcError {
    fn from(e: DebugError) -> Self {
        let code = match e {
            DebugError::FaultInjectionDisabled => ErrorCode::PermissionDenied,
            DebugError::UnknownActor { .. } => ErrorCode::NotFound,
            DebugError::ActorFailed(_) | DebugError::Unreachable(_) => {
                ErrorCode::FailedPrecondition
            }
            DebugError::StallTooLong { .. } => ErrorCode::InvalidArgument,
        };
        rpc(code, &e)
    }
}

impl From<ContainerError> for RpcError {
    fn from(e: ContainerError) -> Self {
        let code = match &e {
            ContainerError::BadId(_) | ContainerError::FdCount { .. } => ErrorCode::InvalidArgument,
            ContainerError::NotFound(_) => ErrorCode::NotFound,
            ContainerError::Exists(_) | ContainerError::RootExists(_) => ErrorCode::AlreadyExists,
            ContainerError::Spec(SpecError::Invalid { .. }) => ErrorCode::InvalidArgument,
            ContainerError::Spec(SpecError::Unsupported { .. }) => ErrorCode::Unsupported,
            // A name the caller chose is missing or too long (an
            // over-long cgroupsPath).
            ContainerError::Host { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidFilename
                ) =>
            {
                ErrorCode::InvalidArgument
            }
            ContainerError::Host { .. } | ContainerError::Tty(_) => ErrorCode::Internal,
            ContainerError::Devices(e) if e.is_bad_rule() => ErrorCode::InvalidArgument,
            ContainerError::Devices(_) => ErrorCode::Internal,
            // The host lacks the controller a limit needs, as runc says.
            ContainerError::Limits {
                source: LimitError::NoController { .. },
                ..
            } => ErrorCode::FailedPrecondition,
            // A setting the cgroup has no file for (a page size the host
            // does not have).
            ContainerError::Limits {
                source: LimitError::NoFile { .. },
                ..
            } => ErrorCode::InvalidArgument,
            // The refusal's message names the file and the value; its kind
            // keeps the errno's meaning.
            ContainerError::Limits {
                source: LimitError::Kernel(source),
                ..
            } => match source.kind() {
                // A memory limit below what the cgroup uses now.
                std::io::ErrorKind::ResourceBusy => ErrorCode::FailedPrecondition,
                std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::InvalidFilename => ErrorCode::InvalidArgument,
                std::io::ErrorKind::Unsupported => ErrorCode::Unsupported,
                _ => match source.raw_os_error() {
                    Some(libc::EINVAL | libc::ERANGE | libc::ENOENT) => ErrorCode::InvalidArgument,
                    Some(libc::EBUSY) => ErrorCode::FailedPrecondition,
                    _ => ErrorCode::Internal,
                },
            },
            ContainerError::Spawn(SpawnError::Unavailable(_)) => ErrorCode::Unavailable,
            ContainerError::Spawn(SpawnError::Plan(_)) => ErrorCode::InvalidArgument,
            ContainerError::Spawn(SpawnError::Failed { .. }) => ErrorCode::Internal,
            ContainerError::BadSignal(_) | ContainerError::PidWithAll(_) => {
                ErrorCode::InvalidArgument
            }
            ContainerError::NotRunning(_)
            | ContainerError::NoTerminal(_)
            | ContainerError::NoRoot
            | ContainerError::AlreadyStarted(_)
            | ContainerError::NotCreated { .. }
            | ContainerError::NotPaused(_)
            | ContainerError::NoneInPhase(_)
            | ContainerError::DestroyRoot(_)
            | ContainerError::StatusUnknown(_) => ErrorCode::FailedPrecondition,
            ContainerError::NoSuchProcess { .. } => ErrorCode::NotFound,
            ContainerError::Kill { source, .. } => match source {
                nix::Error::ESRCH => ErrorCode::NotFound,
                nix::Error::EPERM => ErrorCode::PermissionDenied,
                _ => ErrorCode::Internal,
            },
            ContainerError::Child { errno, .. } => match *errno {
                libc::ENOENT | libc::ENOTDIR => ErrorCode::NotFound,
                libc::EACCES | libc::EPERM => ErrorCode::PermissionDenied,
                // A spec's value the kernel does not take: an unknown
                // filesystem type (ENODEV), a source that is no block
                // device, a path too long or looping.
                libc::EINVAL | libc::ENODEV | libc::ENOTBLK | libc::ENAMETOOLONG | libc::ELOOP => {
                    ErrorCode::InvalidArgument
                }
                libc::EBUSY => ErrorCode::FailedPrecondition,
                _ => ErrorCode::Internal,
            },
        };
        rpc(code, &e)
    }
}

impl From<MetricsError> for RpcError {
    fn from(e: MetricsError) -> Self {
        let code = match e {
            MetricsError::BadRegex { .. } => ErrorCode::InvalidArgument,
        };
        rpc(code, &e)
    }
}

impl From<UsageError> for RpcError {
    fn from(e: UsageError) -> Self {
        let code = match e {
            UsageError::NoMemoryController | UsageError::NoMemoryFiles(_) => ErrorCode::Unsupported,
            UsageError::Read { .. } | UsageError::Rss(_) | UsageError::Page(_) => {
                ErrorCode::Internal
            }
        };
        rpc(code, &e)
    }
}
