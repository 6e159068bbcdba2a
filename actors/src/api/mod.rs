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

/// The protocol's one table: every method, the actor that owns it, and, for
/// those implemented, the variant of [`Request`] that carries its typed
/// arguments (whose [`Method::NAME`] is its wire name). It hands the table
/// to `$callback`: [`Request`] and [`METHODS`] are generated from it here,
/// and the router's dispatch in `crate::router`, where the owner written
/// here must be the actor that handles the type (the compiler checks it).
/// Adding a method is one line here and its handler.
macro_rules! with_methods {
    ($callback:ident) => {
        $callback! {
            implemented {
                StartRoot($crate::api::container::StartRoot) => ContainerManager container_manager,
                Start($crate::api::container::Start) => ContainerManager container_manager,
                Update($crate::api::container::Update) => ContainerManager container_manager,
                CreateSubcontainer($crate::api::container::CreateSubcontainer) => ContainerManager container_manager,
                StartSubcontainer($crate::api::container::StartSubcontainer) => ContainerManager container_manager,
                DestroySubcontainer($crate::api::container::DestroySubcontainer) => ContainerManager container_manager,
                ExecuteAsync($crate::api::container::ExecuteAsync) => ContainerManager container_manager,
                Wait($crate::api::container::Wait) => ContainerManager container_manager,
                WaitPid($crate::api::container::WaitPid) => ContainerManager container_manager,
                Signal($crate::api::container::Signal) => ContainerManager container_manager,
                Processes($crate::api::container::Processes) => ContainerManager container_manager,
                Event($crate::api::container::Event) => ContainerManager container_manager,
                ContainerRuntimeState($crate::api::container::ContainerRuntimeState) => ContainerManager container_manager,
                Pause($crate::api::container::Pause) => ContainerManager container_manager,
                Resume($crate::api::container::Resume) => ContainerManager container_manager,
                SandboxPause($crate::api::lifecycle::Pause) => Lifecycle lifecycle,
                SandboxResume($crate::api::lifecycle::Resume) => Lifecycle lifecycle,
                ReadControlFiles($crate::api::cgroups::ReadControlFiles) => Cgroups cgroups,
                WriteControlFiles($crate::api::cgroups::WriteControlFiles) => Cgroups cgroups,
                Collect($crate::api::usage::Collect) => Usage usage,
                UsageFd($crate::api::usage::UsageFd) => Usage usage,
                GetRegisteredMetrics($crate::api::metrics::GetRegisteredMetrics) => Metrics metrics,
                ExportMetrics($crate::api::metrics::Export) => Metrics metrics,
                LoggingChange($crate::api::logging::Change) => Logging logging,
                Ping($crate::api::debug::Ping) => Debug debug,
                Stacks($crate::api::debug::Stacks) => Debug debug,
                InjectFault($crate::api::debug::InjectFault) => Debug debug,
            }
            pending {
                "containerManager.ProcfsDump" => ContainerManager container_manager,
                "containerManager.Mount" => ContainerManager container_manager,
                "containerManager.PortForward" => ContainerManager container_manager,
                "containerManager.Checkpoint" => ContainerManager container_manager,
                "containerManager.WaitCheckpoint" => ContainerManager container_manager,
                "containerManager.Restore" => ContainerManager container_manager,
                "containerManager.RestoreSubcontainer" => ContainerManager container_manager,
                "containerManager.CreateTraceSession" => TraceSessions trace_sessions,
                "containerManager.DeleteTraceSession" => TraceSessions trace_sessions,
                "containerManager.ListTraceSessions" => TraceSessions trace_sessions,
                "Network.CreateLinksAndRoutes" => Network network,
                "Profile.CPU" => Profiler profiler,
                "Profile.Heap" => Profiler profiler,
                "Profile.Block" => Profiler profiler,
                "Profile.Mutex" => Profiler profiler,
                "Profile.Trace" => Profiler profiler,
            }
        }
    };
}
pub(crate) use with_methods;

/// Generates [`Request`] and [`METHODS`] from the table of [`with_methods`].
macro_rules! requests {
    (
        implemented { $($variant:ident($ty:ty) => $owner:ident $_field:ident,)+ }
        pending { $($name:literal => $pending_owner:ident $_pending_field:ident,)+ }
    ) => {
        /// Every method name the protocol defines, with its owner. Those
        /// without a typed request answer `unsupported` until their
        /// capability lands.
        pub const METHODS: &[(&str, Owner)] = &[
            $((<$ty as Method>::NAME, Owner::$owner),)+
            $(($name, Owner::$pending_owner),)+
        ];

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

            /// The actor that owns the method.
            pub fn owner(&self) -> Owner {
                match self {
                    $(Request::$variant(_) => Owner::$owner,)+
                    Request::NotYetSupported(n) => n.owner,
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

with_methods!(requests);

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
