//! The profile compiler's tests: what a profile translates to or is
//! refused for, how rules and their conditions compile, and what an
//! installed filter does in a forked child.

use oci_spec::runtime::LinuxSeccomp;

use super::{compile, Compiled, ProfileError};
use crate::sys::seccomp::SeccompProgram;

// ---- compiling --------------------------------------------------------

mod rules;
mod translation;

// ---- installing, in forked children -----------------------------------

mod install;

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("profile parses")
}

fn compile_json(json: &str) -> Result<Compiled, ProfileError> {
    compile(&profile(json))
}

fn program(json: &str) -> SeccompProgram {
    let compiled = compile_json(json).expect("profile compiles");
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    compiled.program
}

fn unsupported(json: &str) -> (String, String) {
    match compile_json(json) {
        Err(ProfileError::Unsupported { field, value }) => (field, value),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn invalid(json: &str) -> (String, String) {
    match compile_json(json) {
        Err(ProfileError::Invalid { field, value, .. }) => (field, value),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
