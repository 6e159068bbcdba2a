//! The hooks the runtime runs while the child waits with its namespaces
//! made: the spec's `prestart` ones, then its `createRuntime` ones, a
//! failure named by the point its hook was given for.

use actix::{fut, ActorFutureExt, ResponseActFuture};

use super::ContainerManager;
use crate::container::spec::RuntimeHooks;
use crate::sys::hooks::HookError;
use crate::sys::plan::HookPlan;

/// A point of the spec's lifecycle whose hooks the runtime runs before the
/// container's process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuntimePoint {
    /// `hooks.prestart` (deprecated by the spec, still sent by clients).
    Prestart,
    /// `hooks.createRuntime`.
    CreateRuntime,
}

impl RuntimePoint {
    /// Its name in the spec.
    pub(super) fn name(self) -> &'static str {
        match self {
            RuntimePoint::Prestart => "prestart",
            RuntimePoint::CreateRuntime => "createRuntime",
        }
    }
}

/// The runtime's hooks of `hooks`, point by point in the order they run.
pub(super) fn runtime_stages(hooks: &RuntimeHooks) -> Vec<(RuntimePoint, Vec<HookPlan>)> {
    [
        (RuntimePoint::Prestart, &hooks.prestart),
        (RuntimePoint::CreateRuntime, &hooks.create_runtime),
    ]
    .into_iter()
    .filter(|(_, list)| !list.is_empty())
    .map(|(point, list)| (point, list.clone()))
    .collect()
}

impl ContainerManager {
    /// Runs each stage's hooks in turn, stopping at the first failure,
    /// which names its point.
    pub(super) fn run_runtime_stages(
        &mut self,
        mut stages: Vec<(RuntimePoint, Vec<HookPlan>)>,
        state: Vec<u8>,
    ) -> ResponseActFuture<Self, Result<(), (RuntimePoint, HookError)>> {
        if stages.is_empty() {
            return Box::pin(fut::ready(Ok(())));
        }
        let (point, hooks) = stages.remove(0);
        Box::pin(
            self.run_hooks(hooks, state.clone())
                .then(move |ran, act, _| match ran {
                    Ok(()) => act.run_runtime_stages(stages, state),
                    Err(e) => Box::pin(fut::ready(Err((point, e)))),
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str) -> HookPlan {
        HookPlan {
            path: path.into(),
            args: vec![],
            env: vec![],
            timeout_secs: None,
        }
    }

    #[test]
    fn prestart_hooks_run_first_and_empty_points_are_left_out() {
        let hooks = RuntimeHooks {
            prestart: vec![hook("/p0"), hook("/p1")],
            create_runtime: vec![hook("/c0")],
            ..RuntimeHooks::default()
        };
        let stages = runtime_stages(&hooks);
        let names: Vec<(&str, usize)> = stages.iter().map(|(p, l)| (p.name(), l.len())).collect();
        assert_eq!(names, [("prestart", 2), ("createRuntime", 1)]);
        let only_create = RuntimeHooks {
            create_runtime: vec![hook("/c0")],
            ..RuntimeHooks::default()
        };
        assert_eq!(
            runtime_stages(&only_create)[0].0,
            RuntimePoint::CreateRuntime
        );
        assert!(runtime_stages(&RuntimeHooks::default()).is_empty());
    }
}
