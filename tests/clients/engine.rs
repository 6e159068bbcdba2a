//! What the scenario needs of a client (docker or podman), so that the
//! steps both clients share are written once.

use std::path::Path;
use std::process::Command;

use super::host::{run_command, wait_until, Outcome, Runtime};
use super::pty::run_on_pty;

pub trait Engine {
    /// The client's name, for messages.
    const CLIENT: &'static str;
    /// Whether `--tmpfs` copies the image's directory into the tmpfs
    /// (podman asks for `tmpcopyup`; docker does not).
    const TMPFS_COPIES_UP: bool;
    /// Whether `--read-only` still gives a writable /tmp (podman's
    /// `read_only_tmpfs`; docker gives none).
    const READ_ONLY_KEEPS_TMP: bool;
    /// /proc/1/comm under `--init`.
    const INIT_COMM: &'static str;

    /// The runtime under test.
    fn runtime(&self) -> Runtime;
    /// The client's command with its private-state options, before ARGS.
    fn command(&self) -> Command;
    /// Options every `run` gets, given the test's own.
    fn run_options(&self, options: &[&str]) -> Vec<String>;
    /// The test's private directory.
    fn dir(&self) -> &Path;
    /// The local image.
    fn image(&self) -> &str;
    /// The daemon's log or the runtime's, for a failure's message.
    fn diagnostics(&self) -> String;
    /// Checks that nothing of the test's containers is left.
    fn assert_nothing_left(&self);

    /// Runs the client with ARGS.
    fn cli(&self, args: &[&str]) -> Outcome {
        let mut command = self.command();
        command.args(args);
        run_command(command, self.dir())
    }

    /// Runs a client command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let outcome = self.cli(args);
        assert_eq!(
            outcome.code(),
            Some(0),
            "{} {args:?} with {:?} failed:\nstdout: {}\nstderr: {}\n{}",
            Self::CLIENT,
            self.runtime(),
            outcome.stdout,
            outcome.stderr,
            self.diagnostics()
        );
        outcome.stdout
    }

    /// The arguments of `run OPTIONS IMAGE COMMAND`.
    fn run_args(&self, options: &[&str], command: &[&str]) -> Vec<String> {
        let mut args = vec!["run".to_owned()];
        args.extend(self.run_options(options));
        args.extend(options.iter().map(|s| s.to_string()));
        args.push(self.image().to_owned());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    /// `run OPTIONS IMAGE COMMAND`.
    fn run(&self, options: &[&str], command: &[&str]) -> Outcome {
        let args = self.run_args(options, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli(&args)
    }

    /// `run --rm OPTIONS IMAGE COMMAND`, which must exit 0; its stdout.
    fn run_ok(&self, options: &[&str], command: &[&str]) -> String {
        let mut all = vec!["--rm"];
        all.extend_from_slice(options);
        let args = self.run_args(&all, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args)
    }

    /// The client with ARGS on a pty of its own: types `input` once the
    /// terminal shows `marker`.
    fn on_pty(&self, args: &[String], marker: &str, input: &str) -> Outcome {
        let mut command = self.command();
        command.args(args);
        run_on_pty(command, marker, input)
    }

    /// `inspect -f FORMAT NAME`, trimmed.
    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_owned()
    }

    /// Starts a detached container NAME whose program prints `ready`, then
    /// becomes a lone `sleep` that ignores SIGTERM; waits for `ready` in
    /// its logs. Returns the id `run -d` printed.
    fn start_sleeper(&self, name: &str, options: &[&str]) -> String {
        let mut all = vec!["-d", "--name", name];
        all.extend_from_slice(options);
        let args = self.run_args(
            &all,
            &["sh", "-c", "trap '' TERM; echo ready; exec sleep 100000"],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = self.ok(&args).trim().to_owned();
        assert_eq!(id.len(), 64, "run -d printed {id:?}");
        wait_until(
            &format!("`ready` in the logs of {name}"),
            || self.cli(&["logs", name]).stdout == "ready\n",
            || {
                let logs = self.cli(&["logs", name]);
                format!(
                    "logs: {:?} {:?}; status: {}",
                    logs.stdout,
                    logs.stderr,
                    self.cli(&["inspect", "-f", "{{.State.Status}}", name])
                        .stdout
                )
            },
        );
        id
    }

    /// `exec NAME sh -c SCRIPT`, which must succeed; its stdout.
    fn exec_ok(&self, name: &str, script: &str) -> String {
        self.ok(&["exec", name, "sh", "-c", script])
    }
}

/// The script that prints a container's net, ipc and uts namespaces and
/// its host name, one a line.
pub const NAMESPACES_SCRIPT: &str =
    "for ns in net ipc uts; do readlink /proc/self/ns/$ns; done; hostname";
