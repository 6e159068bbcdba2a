//! `Cgroups.*`: reading and writing the sandbox's cgroup control files, in
//! gVisor's shape (a batch, a result per item).

use serde::{Deserialize, Serialize};

use super::{CarriesFds, Method};
use crate::wire::ErrorCode;

/// One control file of the sandbox's cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ControlFile {
    /// A v1 controller (`memory`, `cpu`, `pids`, ...), or `unified` (also
    /// the empty string) for the v2 hierarchy.
    pub controller: String,
    /// A cgroup under the sandbox's own (e.g. a container's id); empty for
    /// the sandbox's. It may not leave it: no `..`, no symlinks.
    #[serde(default)]
    pub path: String,
    /// The file's name, e.g. `memory.max`.
    pub name: String,
    /// What to write (WriteControlFiles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Cgroups.ReadControlFiles`: reads each file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReadControlFiles {
    /// The files, read in order.
    pub files: Vec<ControlFile>,
}

impl Method for ReadControlFiles {
    const NAME: &'static str = "Cgroups.ReadControlFiles";
    type Reply = ControlFileResults;
}

impl CarriesFds for ReadControlFiles {}

/// `Cgroups.WriteControlFiles`: writes each file's `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WriteControlFiles {
    /// The files, written in order.
    pub files: Vec<ControlFile>,
}

impl Method for WriteControlFiles {
    const NAME: &'static str = "Cgroups.WriteControlFiles";
    type Reply = ControlFileResults;
}

impl CarriesFds for WriteControlFiles {}

/// A result per file, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlFileResults {
    /// One per file.
    pub results: Vec<ControlFileResult>,
}

impl CarriesFds for ControlFileResults {}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlFileResult {
    /// The file's content (reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ControlFileError>,
}

/// A failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlFileError {
    /// The wire code.
    pub code: ErrorCode,
    /// What failed, naming the file (and the value).
    pub message: String,
}
