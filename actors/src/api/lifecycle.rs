//! `Lifecycle.Pause` and `Lifecycle.Resume`: the whole sandbox at once.

use serde::{Deserialize, Serialize};

use super::{CarriesFds, Empty, Method};

/// `Lifecycle.Pause`: freezes every running container of the sandbox. A
/// sandbox with no running container (already paused, or empty) is
/// refused with `failed_precondition`; if one container cannot be frozen,
/// those frozen by this call are thawed again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Pause {}

impl Method for Pause {
    const NAME: &'static str = "Lifecycle.Pause";
    type Reply = Empty;
}

impl CarriesFds for Pause {}

/// `Lifecycle.Resume`: thaws every paused container of the sandbox; one
/// with no paused container is refused with `failed_precondition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Resume {}

impl Method for Resume {
    const NAME: &'static str = "Lifecycle.Resume";
    type Reply = Empty;
}

impl CarriesFds for Resume {}
