//! The bundle's spec, and what a container's state entry keeps of it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use sandvisor_actors::container::spec::{default_spec, hide_host_dir};

use super::error::RunError;
use super::GlobalOptions;
use crate::state::{Entry, ProcessIdentity};

/// Reads `BUNDLE/config.json`.
pub(super) fn read_bundle_spec(bundle: &std::path::Path) -> Result<Spec, RunError> {
    let path = bundle.join("config.json");
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::BadConfig {
        path: shown.clone(),
        detail: e.to_string().to_lowercase(),
    })?;
    serde_json::from_str(&text).map_err(|e| RunError::BadConfig {
        path: shown,
        detail: e.to_string(),
    })
}

/// The spec of `run`: the bundle's config.json with the command line's
/// command and terminal, or without a bundle, the default spec.
pub(super) fn load_spec(
    global: &GlobalOptions,
    bundle: Option<&Path>,
    command: &[String],
    tty: bool,
    id: &str,
) -> Result<Spec, RunError> {
    let Some(bundle) = bundle else {
        let command = if command.is_empty() {
            vec!["/bin/sh".to_owned()]
        } else {
            command.to_vec()
        };
        let mut spec = default_spec(id, command, tty);
        // The host's root is shown: the state root, wherever it is, must not
        // be (its sockets drive supervisors).
        let state_root = std::path::absolute(&global.root).unwrap_or_else(|_| global.root.clone());
        hide_host_dir(&mut spec, &state_root);
        return Ok(spec);
    };
    let mut spec = read_bundle_spec(bundle)?;
    if let Some(process) = spec.process_mut() {
        if !command.is_empty() {
            process.set_args(Some(command.to_vec()));
        }
        if tty {
            process.set_terminal(Some(true));
        }
    }
    Ok(spec)
}

/// What the state entry keeps of the spec, taken before the spec goes to
/// the supervisor.
pub(super) struct EntryMeta {
    oci_version: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    annotations: std::collections::BTreeMap<String, String>,
}

impl EntryMeta {
    pub(super) fn of(spec: &Spec, bundle: Option<&str>) -> EntryMeta {
        // Without a bundle, as runc does, the bundle is the current directory.
        let bundle = bundle
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| PathBuf::from("/"));
        EntryMeta {
            oci_version: spec.version().clone(),
            rootfs: bundle.join(root),
            bundle,
            annotations: spec
                .annotations()
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl EntryMeta {
    /// The state entry of container `id` of `sandbox`, whose supervisor
    /// (`supervisor`, serving `socket`) started its init `init`.
    pub(super) fn entry(
        self,
        id: &str,
        sandbox: &str,
        socket: PathBuf,
        supervisor: ProcessIdentity,
        init: i32,
    ) -> Entry {
        Entry {
            id: id.to_owned(),
            oci_version: self.oci_version,
            bundle: self.bundle,
            rootfs: self.rootfs,
            annotations: self.annotations,
            created: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            sandbox: sandbox.to_owned(),
            socket,
            supervisor,
            init: ProcessIdentity::of(init),
        }
    }
}
