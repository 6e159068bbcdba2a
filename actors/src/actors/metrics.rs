//! Metrics: `Metrics.GetRegisteredMetrics` and `Metrics.Export`. The
//! instruments (calls, latencies, exec times) are updated where the work
//! happens; at each export this actor reads the figures that are only
//! worth reading then: actors' restarts and mailboxes, connections, and
//! each container's status (from the ContainerManager) and cgroup figures
//! (read here, off the ContainerManager's thread).

use std::sync::Arc;

use actix::{ActorFutureExt, Addr, Context, WrapFuture};
use regex::Regex;
use slog::Logger;
use thiserror::Error;

use super::container_manager::ContainerCgroups;
use super::{ConnectionStats, ContainerManager};
use crate::api::metrics::{Export, Exported, GetRegisteredMetrics, RegisteredMetrics};
use crate::metrics::{ActorFigures, ContainerFigures, SandboxMetrics};
use crate::supervision::{
    handles, supervised_actor, ActorStatus, Registry, Reply, Subsystem, SupervisionError,
};
use crate::sys::cgroup::Hierarchy;
use crate::sys::cgroup_stats;
use crate::wire::RpcError;

/// Why an export was refused.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// The name filter is not a regular expression.
    #[error("invalid metric name regex {pattern:?}: {detail}")]
    BadRegex {
        /// The pattern given.
        pattern: String,
        /// What the parser said.
        detail: String,
    },
}

/// Exports the supervisor's metrics.
pub struct Metrics {
    status: Arc<ActorStatus>,
    logger: Logger,
    instruments: SandboxMetrics,
    actors: Arc<Registry>,
    connections: Arc<ConnectionStats>,
    containers: Addr<ContainerManager>,
    containers_status: Arc<ActorStatus>,
    hierarchies: Vec<Hierarchy>,
}

impl Metrics {
    /// The actor, exporting `instruments` and the figures of `actors`,
    /// `connections` and the containers of the ContainerManager at
    /// `containers` (whose cgroups are in `hierarchies`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        instruments: SandboxMetrics,
        actors: Arc<Registry>,
        connections: Arc<ConnectionStats>,
        containers: Addr<ContainerManager>,
        containers_status: Arc<ActorStatus>,
        hierarchies: Vec<Hierarchy>,
    ) -> Self {
        Metrics {
            status,
            logger,
            instruments,
            actors,
            connections,
            containers,
            containers_status,
            hierarchies,
        }
    }

    fn registered(
        &mut self,
        _: GetRegisteredMetrics,
        _: &mut Context<Self>,
    ) -> Result<RegisteredMetrics, RpcError> {
        Ok(RegisteredMetrics {
            metrics: SandboxMetrics::descriptors(),
        })
    }

    fn export(&mut self, req: Export, _: &mut Context<Self>) -> Reply<Self, Exported> {
        let filter = match req.name_regex.as_deref().map(anchored).transpose() {
            Ok(filter) => filter,
            Err(e) => return Reply::Now(Err(e.into())),
        };
        let actors: Vec<ActorFigures> = self
            .actors
            .report()
            .into_iter()
            .map(|a| ActorFigures {
                name: a.name,
                restarts: u64::from(a.restarts),
                mailbox: a.mailbox,
            })
            .collect();
        let connections = self.connections.open();
        let listing = self.containers.send(ContainerCgroups {
            ticket: self.containers_status.ticket(),
        });
        Reply::Later(Box::pin(listing.into_actor(self).map(
            move |listing, act, _| {
                let listing = listing.unwrap_or_else(|_| {
                    Err(RpcError::from(SupervisionError::Stopped {
                        actor: "ContainerManager",
                        message: "ContainerCgroups",
                    }))
                })?;
                let containers: Vec<ContainerFigures> = listing
                    .into_iter()
                    .map(|c| ContainerFigures {
                        cgroup: cgroup_stats::brief(&act.hierarchies, &c.dirs),
                        id: c.id,
                        state: c.state,
                    })
                    .collect();
                act.instruments
                    .set_figures(&actors, connections, &containers);
                let text = act
                    .instruments
                    .encode(|name| filter.as_ref().is_none_or(|re| re.is_match(name)));
                Ok(Exported { text })
            },
        )))
    }
}

/// `pattern` matched against whole names, as Prometheus matchers are.
fn anchored(pattern: &str) -> Result<Regex, MetricsError> {
    let refused = |e: regex::Error| MetricsError::BadRegex {
        pattern: pattern.to_owned(),
        detail: e.to_string(),
    };
    // Checked alone first, so that an error quotes what the caller wrote.
    Regex::new(pattern).map_err(refused)?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(refused)
}

impl Subsystem for Metrics {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }
}

supervised_actor!(Metrics);
handles!(Metrics {
    GetRegisteredMetrics => registered,
    Export => export,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filters_match_whole_names_and_bad_ones_are_refused() {
        let re = anchored("sandvisor_rpc_.*").expect("regex");
        assert!(re.is_match("sandvisor_rpc_requests"));
        assert!(!anchored("rpc")
            .expect("regex")
            .is_match("sandvisor_rpc_requests"));
        assert!(anchored("a|b").expect("regex").is_match("b"));
        let e = anchored("(").expect_err("refused");
        assert!(
            e.to_string()
                .starts_with("invalid metric name regex \"(\": "),
            "{e}"
        );
    }
}
