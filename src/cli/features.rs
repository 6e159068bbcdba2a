//! `sandvisor features`: what this runtime supports, as the OCI runtime
//! features document (`runc features`' format), built from the same tables
//! and checks that apply a spec.

use std::io::Write;
use std::process::ExitCode;

use oci_spec::runtime::Features;
use sandvisor_actors::container::seccomp;
use sandvisor_actors::container::spec::{known_capabilities, KNOWN_MOUNT_OPTIONS, NEW_NAMESPACES};
use serde::Serialize;
use serde_json::{json, Value};

/// The hooks the runtime runs, in the order the runtime spec lists them.
const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The features document.
pub fn document() -> Value {
    let support = seccomp::support();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": HOOKS,
        "mountOptions": KNOWN_MOUNT_OPTIONS,
        "linux": {
            "namespaces": NEW_NAMESPACES,
            "capabilities": known_capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": support.actions,
                "operators": support.operators,
                "archs": support.archs,
                "knownFlags": seccomp::FLAG_NAMES,
                "supportedFlags": support.flags,
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
        },
        "annotations": {"sandvisor.version": env!("CARGO_PKG_VERSION")},
    })
}

/// Prints the document as runc does: JSON indented by four spaces, its
/// fields in the order of the specification's (oci-spec's `Features`,
/// which also checks every name in it).
pub fn run() -> Result<ExitCode, std::io::Error> {
    let features: Features = serde_json::from_value(document()).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    features
        .serialize(&mut serializer)
        .map_err(std::io::Error::other)?;
    out.push(b'\n');
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}
