//! The methods of the control protocol: their names, which actor owns each,
//! and the typed arguments and replies of those that are implemented.
//!
//! A method's argument type is both the wire payload (serde) and the message
//! its owning actor handles: it is defined once, here.

pub mod bytes;
pub mod cgroups;
pub mod container;
pub mod debug;
pub mod fds;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod usage;

use std::fmt;
use std::os::fd::OwnedFd;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use fds::{CarriesFds, Fds};

use crate::wire::RawRequest;

/// A method: its wire name, its arguments (`Self`) and its reply.
pub trait Method: Serialize + DeserializeOwned + CarriesFds + Send + 'static {
    /// The wire name, e.g. `debug.Ping`.
    const NAME: &'static str;
    /// What a successful call returns.
    type Reply: Serialize + DeserializeOwned + CarriesFds + Send + 'static;
}

/// A reply with no content: encoded as an empty map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Empty {}

impl CarriesFds for Empty {}

/// The actors that own methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Owner {
    /// Containers, exec, wait, signal, processes, checkpoint/restore.
    ContainerManager,
    /// Pause and resume.
    Lifecycle,
    /// Cgroup control files.
    Cgroups,
    /// Links, addresses and routes.
    Network,
    /// Trace sessions.
    TraceSessions,
    /// Profiles.
    Profiler,
    /// Metrics.
    Metrics,
    /// Memory usage.
    Usage,
    /// Log level and format.
    Logging,
    /// Ping, stacks, fault injection.
    Debug,
}

impl Owner {
    /// The actor's name as debug.Stacks reports it.
    pub fn actor_name(self) -> &'static str {
        match self {
            Owner::ContainerManager => "ContainerManager",
            Owner::Lifecycle => "Lifecycle",
            Owner::Cgroups => "Cgroups",
            Owner::Network => "Network",
            Owner::TraceSessions => "TraceSessions",
            Owner::Profiler => "Profiler",
            Owner::Metrics => "Metrics",
            Owner::Usage => "Usage",
            Owner::Logging => "Logging",
            Owner::Debug => "Debug",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.actor_name())
    }
}

/// Every method name the protocol defines, with its owner. Those without a
/// typed request below answer `unsupported` until their capability lands.
pub const METHODS: &[(&str, Owner)] = &[
    ("containerManager.StartRoot", Owner::ContainerManager),
    ("containerManager.Start", Owner::ContainerManager),
    ("containerManager.Update", Owner::ContainerManager),
    (
        "containerManager.CreateSubcontainer",
        Owner::ContainerManager,
    ),
    (
        "containerManager.StartSubcontainer",
        Owner::ContainerManager,
    ),
    (
        "containerManager.DestroySubcontainer",
        Owner::ContainerManager,
    ),
    ("containerManager.ExecuteAsync", Owner::ContainerManager),
    ("containerManager.Wait", Owner::ContainerManager),
    ("containerManager.WaitPID", Owner::ContainerManager),
    ("containerManager.Signal", Owner::ContainerManager),
    ("containerManager.Processes", Owner::ContainerManager),
    ("containerManager.Event", Owner::ContainerManager),
    ("containerManager.ProcfsDump", Owner::ContainerManager),
    ("containerManager.Mount", Owner::ContainerManager),
    ("containerManager.PortForward", Owner::ContainerManager),
    ("containerManager.Checkpoint", Owner::ContainerManager),
    ("containerManager.WaitCheckpoint", Owner::ContainerManager),
    ("containerManager.Restore", Owner::ContainerManager),
    (
        "containerManager.RestoreSubcontainer",
        Owner::ContainerManager,
    ),
    (
        "containerManager.ContainerRuntimeState",
        Owner::ContainerManager,
    ),
    ("containerManager.Pause", Owner::ContainerManager),
    ("containerManager.Resume", Owner::ContainerManager),
    ("containerManager.CreateTraceSession", Owner::TraceSessions),
    ("containerManager.DeleteTraceSession", Owner::TraceSessions),
    ("containerManager.ListTraceSessions", Owner::TraceSessions),
    ("Lifecycle.Pause", Owner::Lifecycle),
    ("Lifecycle.Resume", Owner::Lifecycle),
    ("Cgroups.ReadControlFiles", Owner::Cgroups),
    ("Cgroups.WriteControlFiles", Owner::Cgroups),
    ("Network.CreateLinksAndRoutes", Owner::Network),
    ("Profile.CPU", Owner::Profiler),
    ("Profile.Heap", Owner::Profiler),
    ("Profile.Block", Owner::Profiler),
    ("Profile.Mutex", Owner::Profiler),
    ("Profile.Trace", Owner::Profiler),
    ("Usage.Collect", Owner::Usage),
    ("Usage.UsageFD", Owner::Usage),
    ("Metrics.GetRegisteredMetrics", Owner::Metrics),
    ("Metrics.Export", Owner::Metrics),
    ("Logging.Change", Owner::Logging),
    ("debug.Ping", Owner::Debug),
    ("debug.Stacks", Owner::Debug),
    ("debug.InjectFault", Owner::Debug),
];

/// The owner of a method name, if the protocol defines it.
pub fn owner_of(method: &str) -> Option<(&'static str, Owner)> {
    METHODS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(name, owner)| (*name, *owner))
}

/// A call to a method the protocol names whose capability has not landed:
/// its owner answers `unsupported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotYetSupported {
    /// The method name.
    pub method: &'static str,
    /// The actor that will own it.
    pub owner: Owner,
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for NotYetSupported {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let pending: Vec<(&'static str, Owner)> = METHODS
            .iter()
            .copied()
            .filter(|(name, _)| !Request::IMPLEMENTED.contains(name))
            .collect();
        let (method, owner) = *u.choose(&pending)?;
        Ok(NotYetSupported { method, owner })
    }
}

/// Why a sound envelope does not make a valid request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The method name is not defined.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// The arguments do not have the method's shape.
    #[error("bad args for {method}: {detail}")]
    BadArgs {
        /// The method.
        method: &'static str,
        /// What serde reported.
        detail: String,
    },
    /// The frame's descriptors do not fit the method.
    #[error("bad file descriptors for {method}: {detail}")]
    BadFds {
        /// The method.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// CBOR of an empty map: what absent arguments decode as.
const EMPTY_MAP: &[u8] = &[0xa0];

fn decode_args<M: Method>(args: Option<&[u8]>, fds: Vec<OwnedFd>) -> Result<M, DecodeError> {
    let mut message: M =
        serde_cbor::from_slice(args.unwrap_or(EMPTY_MAP)).map_err(|e| DecodeError::BadArgs {
            method: M::NAME,
            detail: e.to_string(),
        })?;
    message
        .attach_fds(fds)
        .map_err(|detail| DecodeError::BadFds {
            method: M::NAME,
            detail,
        })?;
    Ok(message)
}

fn encode_args<M: Method>(message: &M) -> Vec<u8> {
    // Serializing plain structs of strings, integers and byte strings into a
    // Vec cannot fail.
    serde_cbor::to_vec(message).unwrap_or_else(|_| EMPTY_MAP.to_vec())
}

macro_rules! requests {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// A decoded request: one variant per implemented method, and
        /// [`Request::NotYetSupported`] for the rest of [`METHODS`].
        #[derive(Debug, PartialEq)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        // A request lives for one dispatch: boxing the spec-carrying
        // variants would buy nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum Request {
            $(
                #[doc = concat!("`", stringify!($ty), "`")]
                $variant($ty),
            )+
            /// A method whose capability has not landed.
            NotYetSupported(NotYetSupported),
        }

        impl Request {
            /// The methods decoded into typed requests.
            pub const IMPLEMENTED: &'static [&'static str] = &[$(<$ty as Method>::NAME),+];

            /// Decodes the arguments of a sound envelope and binds the
            /// frame's descriptors.
            pub fn decode(raw: &RawRequest<'_>, fds: Vec<OwnedFd>) -> Result<Request, DecodeError> {
                $(
                    if raw.method == <$ty as Method>::NAME {
                        return decode_args::<$ty>(raw.args, fds).map(Request::$variant);
                    }
                )+
                match owner_of(raw.method) {
                    Some((method, owner)) => Ok(Request::NotYetSupported(NotYetSupported { method, owner })),
                    None => Err(DecodeError::UnknownMethod(raw.method.to_owned())),
                }
            }

            /// The method name.
            pub fn method(&self) -> &'static str {
                match self {
                    $(Request::$variant(_) => <$ty as Method>::NAME,)+
                    Request::NotYetSupported(n) => n.method,
                }
            }

            /// The CBOR of the arguments.
            pub fn encode_args(&self) -> Vec<u8> {
                match self {
                    $(Request::$variant(m) => encode_args(m),)+
                    Request::NotYetSupported(_) => EMPTY_MAP.to_vec(),
                }
            }
        }
    };
}

requests! {
    StartRoot(container::StartRoot),
    Wait(container::Wait),
    Signal(container::Signal),
    ExecuteAsync(container::ExecuteAsync),
    WaitPid(container::WaitPid),
    Processes(container::Processes),
    CreateSubcontainer(container::CreateSubcontainer),
    StartSubcontainer(container::StartSubcontainer),
    DestroySubcontainer(container::DestroySubcontainer),
    Start(container::Start),
    ContainerRuntimeState(container::ContainerRuntimeState),
    Pause(container::Pause),
    Update(container::Update),
    Event(container::Event),
    ReadControlFiles(cgroups::ReadControlFiles),
    WriteControlFiles(cgroups::WriteControlFiles),
    Resume(container::Resume),
    SandboxPause(lifecycle::Pause),
    SandboxResume(lifecycle::Resume),
    GetRegisteredMetrics(metrics::GetRegisteredMetrics),
    ExportMetrics(metrics::Export),
    Collect(usage::Collect),
    UsageFd(usage::UsageFd),
    Ping(debug::Ping),
    Stacks(debug::Stacks),
    InjectFault(debug::InjectFault),
    LoggingChange(logging::Change),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::envelope::{parse_request, write_request};

    fn round_trip(request: &Request) -> Request {
        let mut body = Vec::new();
        write_request(&mut body, 1, request.method(), &request.encode_args());
        let raw = parse_request(&body).unwrap();
        Request::decode(&raw, Vec::new()).unwrap()
    }

    #[test]
    fn every_method_is_named_once_and_implemented_ones_are_listed() {
        let mut names: Vec<_> = METHODS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
        for name in Request::IMPLEMENTED {
            assert!(owner_of(name).is_some(), "{name} is not in METHODS");
        }
    }

    #[test]
    fn typed_requests_round_trip() {
        let requests = [
            Request::Ping(debug::Ping {
                payload: vec![0, 1, 255],
                fds: Fds::none(),
            }),
            Request::Stacks(debug::Stacks {}),
            Request::InjectFault(debug::InjectFault {
                actor: "Debug".into(),
                kind: debug::FaultKind::Stall { ms: 5 },
            }),
            Request::LoggingChange(logging::Change {
                level: Some(logging::LogLevel::Trace),
                format: None,
            }),
            Request::SandboxPause(lifecycle::Pause {}),
            Request::Collect(usage::Collect { full: true }),
            Request::UsageFd(usage::UsageFd {}),
            Request::NotYetSupported(NotYetSupported {
                method: "Profile.CPU",
                owner: Owner::Profiler,
            }),
        ];
        for request in requests {
            assert_eq!(round_trip(&request), request);
        }
    }

    #[test]
    fn unknown_methods_and_bad_args_are_typed() {
        let raw = RawRequest {
            id: 1,
            method: "debug.Nope",
            args: None,
        };
        assert_eq!(
            Request::decode(&raw, Vec::new()),
            Err(DecodeError::UnknownMethod("debug.Nope".into()))
        );
        let args = serde_cbor::to_vec(&serde_cbor::Value::Text("x".into())).unwrap();
        let raw = RawRequest {
            id: 1,
            method: "debug.Ping",
            args: Some(&args),
        };
        assert!(matches!(
            Request::decode(&raw, Vec::new()),
            Err(DecodeError::BadArgs {
                method: "debug.Ping",
                ..
            })
        ));
    }

    #[test]
    fn absent_args_decode_as_an_empty_map() {
        let raw = RawRequest {
            id: 1,
            method: "debug.Stacks",
            args: None,
        };
        assert_eq!(
            Request::decode(&raw, Vec::new()),
            Ok(Request::Stacks(debug::Stacks {}))
        );
    }
}
