//! The supervisor's metrics: the instruments the router and the
//! ContainerManager update as they work, the figures filled in at each
//! export, the table `Metrics.GetRegisteredMetrics` answers from, and the
//! OpenMetrics encoding `Metrics.Export` returns.

use std::time::Duration;

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::api::metrics::{MetricDescriptor, MetricKind};
use crate::sys::cgroup_stats::Brief;
use crate::wire::ErrorCode;

/// A call's method and outcome (`ok` or the error code). Both are
/// static names, so that counting a call allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The method name.
    pub method: &'static str,
    /// `ok`, or the wire error code.
    pub code: &'static str,
}

/// A method name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// The method name.
    pub method: &'static str,
}

/// An actor of the tree.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabel {
    /// Its name, as debug.Stacks gives it.
    pub actor: String,
}

/// A container lifecycle status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// creating, created, running, paused or stopped.
    pub state: String,
}

/// A container.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabel {
    /// Its id.
    pub container: String,
}

/// One container's figures at an export, read from its cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFigures {
    /// The container id.
    pub id: String,
    /// Its lifecycle status.
    pub state: &'static str,
    /// Its processes, memory, CPU and OOM kills.
    pub cgroup: Brief,
}

/// Every status a container can be in, so that the gauge of each is
/// exported even at zero.
pub const CONTAINER_STATES: [&str; 5] = ["creating", "created", "running", "paused", "stopped"];

/// An actor's supervision figures at an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorFigures {
    /// The actor's name.
    pub name: String,
    /// Restarts so far.
    pub restarts: u64,
    /// Messages queued and not yet taken.
    pub mailbox: u64,
}

/// The supervisor's instruments. Cheap to share: every field is a handle
/// on shared atomics.
#[derive(Clone, Debug)]
pub struct SandboxMetrics {
    sandbox: String,
    rpc_calls: Family<CallLabels, Counter>,
    rpc_seconds: Family<MethodLabel, Histogram>,
    exec_seconds: Histogram,
    actor_restarts: Family<ActorLabel, Counter>,
    actor_mailbox: Family<ActorLabel, Gauge>,
    connections: Gauge,
    containers: Family<StateLabel, Gauge>,
    processes: Family<ContainerLabel, Gauge>,
    oom_kills: Family<ContainerLabel, Counter>,
    memory_usage: Family<ContainerLabel, Gauge>,
    memory_limit: Family<ContainerLabel, Gauge>,
    cpu_seconds: Family<ContainerLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
}

/// Latency buckets from 100 µs to about 6.5 s, a factor of 4 apart: an
/// export carries one histogram per method, so they are kept few.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 9))
}

/// The metric families, in export order: name (as in `# TYPE`), kind,
/// help (the encoder ends it with a period), and labels (besides
/// `sandbox`, which every sample carries). A
/// family with no sample yet (no exec so far, say) is left out of an
/// export, as prometheus-client does.
pub const DESCRIPTORS: &[(&str, MetricKind, &str, &[&str])] = &[
    (
        "sandvisor_rpc_requests",
        MetricKind::Counter,
        "Calls answered, by method and outcome (ok or the wire error code)",
        &["method", "code"],
    ),
    (
        "sandvisor_rpc_duration_seconds",
        MetricKind::Histogram,
        "Time from dispatch to the encoded answer, by method",
        &["method"],
    ),
    (
        "sandvisor_exec_duration_seconds",
        MetricKind::Histogram,
        "Time for containerManager.ExecuteAsync to have the process started",
        &[],
    ),
    (
        "sandvisor_actor_restarts",
        MetricKind::Counter,
        "Restarts of each actor after a failure",
        &["actor"],
    ),
    (
        "sandvisor_actor_mailbox_depth",
        MetricKind::Gauge,
        "Messages queued to each actor and not yet taken",
        &["actor"],
    ),
    (
        "sandvisor_connections",
        MetricKind::Gauge,
        "Open control socket connections",
        &[],
    ),
    (
        "sandvisor_containers",
        MetricKind::Gauge,
        "Containers of the sandbox, by lifecycle status",
        &["state"],
    ),
    (
        "sandvisor_container_processes",
        MetricKind::Gauge,
        "Processes in each container's cgroup",
        &["container"],
    ),
    (
        "sandvisor_container_oom_kills",
        MetricKind::Counter,
        "Processes of each container killed by the OOM killer",
        &["container"],
    ),
    (
        "sandvisor_container_memory_usage_bytes",
        MetricKind::Gauge,
        "Memory charged to each container's cgroup",
        &["container"],
    ),
    (
        "sandvisor_container_memory_limit_bytes",
        MetricKind::Gauge,
        "Each container's memory limit (absent when unlimited)",
        &["container"],
    ),
    (
        "sandvisor_container_cpu_seconds",
        MetricKind::Counter,
        "CPU time used by each container's cgroup",
        &["container"],
    ),
];

impl SandboxMetrics {
    /// Instruments for the sandbox `sandbox`.
    pub fn new(sandbox: &str) -> Self {
        SandboxMetrics {
            sandbox: sandbox.to_owned(),
            rpc_calls: Family::default(),
            rpc_seconds: Family::new_with_constructor(latency_histogram),
            exec_seconds: latency_histogram(),
            actor_restarts: Family::default(),
            actor_mailbox: Family::default(),
            connections: Gauge::default(),
            containers: Family::default(),
            processes: Family::default(),
            oom_kills: Family::default(),
            memory_usage: Family::default(),
            memory_limit: Family::default(),
            cpu_seconds: Family::default(),
        }
    }

    /// Counts an answered call and its latency.
    pub fn observe_call(&self, method: &'static str, code: Option<ErrorCode>, took: Duration) {
        let code = code.map_or("ok", ErrorCode::as_str);
        self.rpc_calls
            .get_or_create(&CallLabels { method, code })
            .inc();
        self.rpc_seconds
            .get_or_create(&MethodLabel { method })
            .observe(took.as_secs_f64());
    }

    /// Records how long an exec took to start its process.
    pub fn observe_exec(&self, took: Duration) {
        self.exec_seconds.observe(took.as_secs_f64());
    }

    /// Replaces the figures read at export time with these.
    pub fn set_figures(
        &self,
        actors: &[ActorFigures],
        connections: u64,
        containers: &[ContainerFigures],
    ) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.actor_restarts.clear();
        self.actor_mailbox.clear();
        for a in actors {
            let label = ActorLabel {
                actor: a.name.clone(),
            };
            self.actor_restarts.get_or_create(&label).inc_by(a.restarts);
            self.actor_mailbox
                .get_or_create(&label)
                .set(gauge(a.mailbox));
        }
        self.connections.set(gauge(connections));
        self.containers.clear();
        for state in CONTAINER_STATES {
            let count = containers.iter().filter(|c| c.state == state).count();
            self.containers
                .get_or_create(&StateLabel {
                    state: state.to_owned(),
                })
                .set(gauge(count as u64));
        }
        // A deleted container's series end with it.
        self.processes.clear();
        self.oom_kills.clear();
        self.memory_usage.clear();
        self.memory_limit.clear();
        self.cpu_seconds.clear();
        for c in containers {
            let label = ContainerLabel {
                container: c.id.clone(),
            };
            self.processes
                .get_or_create(&label)
                .set(gauge(c.cgroup.processes));
            self.oom_kills
                .get_or_create(&label)
                .inc_by(c.cgroup.oom_kills);
            self.memory_usage
                .get_or_create(&label)
                .set(gauge(c.cgroup.memory_usage));
            if let Some(limit) = c.cgroup.memory_limit {
                self.memory_limit.get_or_create(&label).set(gauge(limit));
            }
            self.cpu_seconds
                .get_or_create(&label)
                .inc_by(c.cgroup.cpu_usage_ns as f64 / 1e9);
        }
    }

    /// The registered families with their help and labels.
    pub fn descriptors() -> Vec<MetricDescriptor> {
        DESCRIPTORS
            .iter()
            .map(|(name, kind, help, labels)| {
                let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
                labels.insert(0, "sandbox".to_owned());
                MetricDescriptor {
                    name: (*name).to_owned(),
                    kind: *kind,
                    help: (*help).to_owned(),
                    labels,
                }
            })
            .collect()
    }

    /// OpenMetrics text of the families whose name `keep` accepts.
    pub fn encode(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut registry = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("sandbox"),
                std::borrow::Cow::Owned(self.sandbox.clone()),
            )]
            .into_iter(),
        );
        for (name, _, help, _) in DESCRIPTORS {
            if !keep(name) {
                continue;
            }
            // The registry appends `_total` to counters itself.
            let base = name.to_string();
            match *name {
                "sandvisor_rpc_requests" => registry.register(base, *help, self.rpc_calls.clone()),
                "sandvisor_rpc_duration_seconds" => {
                    registry.register(base, *help, self.rpc_seconds.clone())
                }
                "sandvisor_exec_duration_seconds" => {
                    registry.register(base, *help, self.exec_seconds.clone())
                }
                "sandvisor_actor_restarts" => {
                    registry.register(base, *help, self.actor_restarts.clone())
                }
                "sandvisor_actor_mailbox_depth" => {
                    registry.register(base, *help, self.actor_mailbox.clone())
                }
                "sandvisor_connections" => registry.register(base, *help, self.connections.clone()),
                "sandvisor_containers" => registry.register(base, *help, self.containers.clone()),
                "sandvisor_container_processes" => {
                    registry.register(base, *help, self.processes.clone())
                }
                "sandvisor_container_oom_kills" => {
                    registry.register(base, *help, self.oom_kills.clone())
                }
                "sandvisor_container_memory_usage_bytes" => {
                    registry.register(base, *help, self.memory_usage.clone())
                }
                "sandvisor_container_memory_limit_bytes" => {
                    registry.register(base, *help, self.memory_limit.clone())
                }
                "sandvisor_container_cpu_seconds" => {
                    registry.register(base, *help, self.cpu_seconds.clone())
                }
                _ => {}
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(n, k)| (n.to_owned(), k.to_owned()))
            .collect()
    }

    /// Instruments with a sample in every family (an empty family is not
    /// exported).
    fn busy() -> SandboxMetrics {
        let metrics = SandboxMetrics::new("sb");
        metrics.observe_call("debug.Ping", None, Duration::from_micros(150));
        metrics.observe_exec(Duration::from_millis(3));
        let container = ContainerFigures {
            id: "c1".into(),
            state: "running",
            cgroup: Brief {
                memory_limit: Some(1 << 20),
                ..Brief::default()
            },
        };
        let actor = ActorFigures {
            name: "Debug".into(),
            restarts: 0,
            mailbox: 0,
        };
        metrics.set_figures(&[actor], 1, &[container]);
        metrics
    }

    #[test]
    fn the_table_names_every_family_exported_with_its_type() {
        let metrics = busy();
        let exported = families(&metrics.encode(|_| true));
        let table: Vec<(String, String)> = SandboxMetrics::descriptors()
            .into_iter()
            .map(|d| (d.name, d.kind.as_str().to_owned()))
            .collect();
        assert_eq!(exported, table);
    }

    #[test]
    fn calls_and_figures_are_exported_with_the_sandbox_label() {
        let metrics = SandboxMetrics::new("sb");
        metrics.observe_call("debug.Ping", None, Duration::from_micros(150));
        metrics.observe_call("debug.Ping", None, Duration::from_micros(150));
        metrics.observe_call(
            "containerManager.Wait",
            Some(ErrorCode::NotFound),
            Duration::from_millis(1),
        );
        let container = ContainerFigures {
            id: "c1".into(),
            state: "running",
            cgroup: Brief {
                processes: 3,
                memory_usage: 4096,
                memory_limit: None,
                cpu_usage_ns: 1_500_000_000,
                oom_kills: 2,
            },
        };
        let actors = [ActorFigures {
            name: "Debug".into(),
            restarts: 1,
            mailbox: 0,
        }];
        metrics.set_figures(&actors, 1, std::slice::from_ref(&container));
        // A second export replaces, not adds.
        metrics.set_figures(&actors, 1, std::slice::from_ref(&container));
        let text = metrics.encode(|_| true);
        for line in [
            "sandvisor_rpc_requests_total{sandbox=\"sb\",method=\"debug.Ping\",code=\"ok\"} 2",
            "sandvisor_rpc_requests_total{sandbox=\"sb\",method=\"containerManager.Wait\",code=\"not_found\"} 1",
            "sandvisor_rpc_duration_seconds_count{sandbox=\"sb\",method=\"debug.Ping\"} 2",
            "sandvisor_actor_restarts_total{sandbox=\"sb\",actor=\"Debug\"} 1",
            "sandvisor_containers{sandbox=\"sb\",state=\"running\"} 1",
            "sandvisor_containers{sandbox=\"sb\",state=\"paused\"} 0",
            "sandvisor_container_processes{sandbox=\"sb\",container=\"c1\"} 3",
            "sandvisor_container_oom_kills_total{sandbox=\"sb\",container=\"c1\"} 2",
            "sandvisor_container_cpu_seconds_total{sandbox=\"sb\",container=\"c1\"} 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("sandvisor_container_memory_limit_bytes{"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        // A container gone is gone from the export.
        metrics.set_figures(&actors, 0, &[]);
        assert!(!metrics.encode(|_| true).contains("container=\"c1\""));
    }

    #[test]
    fn only_the_families_kept_are_encoded() {
        let metrics = busy();
        let text = metrics.encode(|name| name.starts_with("sandvisor_actor_"));
        assert_eq!(
            families(&text),
            vec![
                ("sandvisor_actor_restarts".into(), "counter".into()),
                ("sandvisor_actor_mailbox_depth".into(), "gauge".into())
            ]
        );
    }
}
