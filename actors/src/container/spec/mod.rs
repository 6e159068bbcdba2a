//! From an OCI runtime spec to a [`SpawnPlan`], as runc applies the spec.
//!
//! Pure policy: nothing here touches the host, so every rule is unit-tested
//! without root. Descriptors the plan needs are described as
//! [`FdSource`]s, in index order, for the caller to open. A field this
//! build does not support is refused with [`SpecError::Unsupported`] naming
//! it; nothing is ignored silently.

mod build;
mod defaults;
mod devices;
mod exec;
mod hooks;
mod namespaces;
mod process;
mod refusals;
mod rootfs;
mod subcontainer;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;

use thiserror::Error;

use super::plan::{HookPlan, NsKind, SpawnPlan};

pub use build::{build_container, ContainerContext};
pub use defaults::{default_spec, hide_host_dir, HIDDEN_RUNTIME_DIR};
pub use devices::{device_rules, runc_default_device_rules};
pub use exec::{build_exec, ExecContext};
pub use hooks::build_hook;
pub use namespaces::NEW_NAMESPACES;
pub use process::{capability_bit, known_capabilities};
pub use rootfs::KNOWN_MOUNT_OPTIONS;
pub use subcontainer::subcontainer_spec;

/// Why a spec cannot be run.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The spec is wrong.
    #[error("{field}: {detail}")]
    Invalid {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The spec asks for something this build does not do.
    #[error("{field}: {detail}")]
    Unsupported {
        /// The JSON path of the field.
        field: String,
        /// What is not supported.
        detail: String,
    },
}

fn invalid(field: impl Into<String>, detail: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        detail: detail.into(),
    }
}

fn unsupported(field: impl Into<String>, detail: impl Into<String>) -> SpecError {
    SpecError::Unsupported {
        field: field.into(),
        detail: detail.into(),
    }
}

/// A descriptor the plan needs, in the plan's index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdSource {
    /// The write end of the status pipe.
    StatusPipe,
    /// The read end of the start gate pipe.
    StartGate,
    /// The read end of the runtime hooks gate pipe.
    RuntimeHooksGate,
    /// The caller's stdin, stdout or stderr (0, 1, 2).
    Stdio(u8),
    /// The Nth descriptor the caller passes through after stdio.
    Preserved(u32),
    /// A terminal the caller gave.
    TerminalSlave,
    /// The child's end of the socket a new pty's master comes back on.
    ConsoleChannel,
    /// A namespace file to join.
    Namespace(NsKind, PathBuf),
    /// A cgroup's `cgroup.procs`, opened for writing.
    CgroupProcs(PathBuf),
    /// A cgroup v2 directory, opened for `CLONE_INTO_CGROUP`.
    CgroupDir(PathBuf),
    /// The read end of a pipe the runtime writes a hook's state into.
    HookStdin,
    /// The supervisor's own stderr (a hook's output goes to its log).
    SupervisorStderr,
}

/// What the caller must run in the runtime's namespace, around the spawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeHooks {
    /// `prestart`: after the namespaces exist, before `createRuntime`.
    pub prestart: Vec<HookPlan>,
    /// `createRuntime`: after the namespaces exist.
    pub create_runtime: Vec<HookPlan>,
    /// `poststart`: after the user process started.
    pub poststart: Vec<HookPlan>,
    /// `poststop`: after the container is deleted.
    pub poststop: Vec<HookPlan>,
}

/// A spawn plan and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    /// The plan.
    pub plan: SpawnPlan,
    /// Its descriptors, by index.
    pub fds: Vec<FdSource>,
    /// Hooks the runtime runs itself.
    pub hooks: RuntimeHooks,
    /// Whether the process has a terminal.
    pub terminal: bool,
    /// Things allowed but worth telling (unknown seccomp syscalls).
    pub warnings: Vec<String>,
}

/// Collects descriptors in index order.
#[derive(Default)]
struct FdTable(Vec<FdSource>);

impl FdTable {
    fn add(&mut self, source: FdSource) -> usize {
        self.0.push(source);
        self.0.len() - 1
    }
}
