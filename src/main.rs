//! The `sandvisor` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    sandvisor::cli::main()
}
