//! `sandvisor spec`: writes a starting `config.json`, as `runc spec` does.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use oci_spec::runtime::Spec;
use thiserror::Error;

/// Arguments of `sandvisor spec`.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json (default: the current directory).
    #[arg(short, long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// A spec for a rootless container (refused: not supported).
    #[arg(long)]
    rootless: bool,
}

/// Why `spec` failed.
#[derive(Debug, Error)]
pub enum SpecCommandError {
    /// The file is there already.
    #[error("File {0} exists. Remove it first")]
    Exists(String),
    /// Rootless containers need new user namespaces.
    #[error("unsupported: --rootless: rootless containers need new user namespaces, which are not supported yet")]
    Rootless,
    /// Writing failed.
    #[error("write {path}: {}", .source.to_string().to_lowercase())]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// runc's default spec: `sh` with a terminal on a read-only `rootfs`,
/// runc's mounts, capabilities (none inheritable), masked and read-only
/// paths, every device denied; oci-spec's default with those changes, which
/// also adds a cgroup namespace (as runc 1.2 does).
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some("sandvisor".into()));
    spec.set_annotations(None);
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        let capabilities = process.capabilities().clone().map(|mut caps| {
            caps.set_inheritable(None);
            caps
        });
        process.set_capabilities(capabilities);
    }
    if let Some(linux) = spec.linux_mut() {
        let deny_all = oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .ok();
        let mut resources = linux.resources().clone().unwrap_or_default();
        resources.set_devices(deny_all.map(|rule| vec![rule]));
        linux.set_resources(Some(resources));
    }
    spec
}

/// Writes the spec; refuses to replace an existing `config.json`.
pub fn run(args: SpecArgs) -> Result<ExitCode, SpecCommandError> {
    if args.rootless {
        return Err(SpecCommandError::Rootless);
    }
    let dir = args.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    let shown = if dir == std::path::Path::new(".") {
        "config.json".to_owned()
    } else {
        path.display().to_string()
    };
    let write = |source| SpecCommandError::Write {
        path: shown.clone(),
        source,
    };
    let mut value = serde_json::to_value(default_spec()).map_err(|e| write(e.into()))?;
    // oci-spec keeps capability sets in hash sets: print them sorted, so
    // that the file is the same every time.
    if let Some(sets) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in sets.values_mut() {
            if let Some(names) = set.as_array_mut() {
                names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let mut text = serde_json::to_vec_pretty(&value).map_err(|e| write(e.into()))?;
    text.push(b'\n');
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(SpecCommandError::Exists(shown))
        }
        Err(e) => return Err(write(e)),
    };
    file.write_all(&text).map_err(write)?;
    Ok(ExitCode::SUCCESS)
}
