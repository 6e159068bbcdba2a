//! `Metrics.GetRegisteredMetrics` and `Metrics.Export`.

use serde::{Deserialize, Serialize};

use super::{CarriesFds, Method};

/// The type of a metric family, as OpenMetrics names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MetricKind {
    /// Only goes up (exported with a `_total` suffix).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets, with their count and sum.
    Histogram,
}

impl MetricKind {
    /// The OpenMetrics type name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One registered metric family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetricDescriptor {
    /// The family name, as in the export's `# TYPE` line.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// What it measures.
    pub help: String,
    /// The labels of its samples.
    pub labels: Vec<String>,
}

/// `Metrics.GetRegisteredMetrics`: every metric family the supervisor
/// exports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GetRegisteredMetrics {}

/// The registered families.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RegisteredMetrics {
    /// In export order.
    pub metrics: Vec<MetricDescriptor>,
}

impl Method for GetRegisteredMetrics {
    const NAME: &'static str = "Metrics.GetRegisteredMetrics";
    type Reply = RegisteredMetrics;
}

impl CarriesFds for GetRegisteredMetrics {}
impl CarriesFds for RegisteredMetrics {}

/// `Metrics.Export`: the metrics now, as OpenMetrics text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Export {
    /// Only the families whose whole name matches this regular expression
    /// (Rust `regex` syntax, anchored at both ends, as Prometheus matchers
    /// are); all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_regex: Option<String>,
}

/// The exported text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Exported {
    /// OpenMetrics text exposition, ending with `# EOF`.
    pub text: String,
}

impl Method for Export {
    const NAME: &'static str = "Metrics.Export";
    type Reply = Exported;
}

impl CarriesFds for Export {}
impl CarriesFds for Exported {}
