//! Programs run from a test with a deadline: the sandvisor binary (`run_cli`,
//! `spawn_run`) or any other (`run_program`), their output collected, and
//! what outlives its deadline killed with its descendants (`kill_tree`).

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::bundle::Bundle;
use super::host::children;
use super::SANDVISOR;

/// SIGKILLs a child and its descendants (a `sandvisor run`'s supervisor
/// would otherwise outlive it, holding its output pipes), and reaps it.
pub fn kill_tree(child: &mut std::process::Child) {
    let mut tree = vec![child.id() as i32];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i] as u32;
        tree.extend(children(parent));
        i += 1;
    }
    // Parents first: none of them can fork again afterwards. Every pid is
    // a live (unreaped) descendant, so none has been reused.
    for pid in tree {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
}

/// Starts `sandvisor --root ROOT run --id ID --bundle B` in the background,
/// stdout as given, stderr piped.
pub fn spawn_run(root: &str, id: &str, bundle: &Bundle, stdout: Stdio) -> std::process::Child {
    Command::new(SANDVISOR)
        .args(["--root", root, "run", "--id", id, "--bundle"])
        .arg(bundle.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandvisor run")
}

/// Runs the sandvisor binary; returns its status, stdout and stderr.
pub fn run_cli(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    run_program(SANDVISOR, args, timeout)
}

pub fn run_program(
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandvisor");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            kill_tree(&mut child);
            panic!("{program} {args:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        status,
        out_thread.join().expect("stdout thread"),
        err_thread.join().expect("stderr thread"),
    )
}
