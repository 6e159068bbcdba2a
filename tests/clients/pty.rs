//! A terminal for `-it`: the client runs on the slave side of a pty, as
//! its controlling terminal, and the test reads and types on the master.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::host::{Outcome, COMMAND_DEADLINE};

/// Runs `command` on a new pty; once its output shows `marker`, types
/// `input`; returns its status and everything it wrote to the terminal.
pub fn run_on_pty(mut command: Command, marker: &str, input: &str) -> Outcome {
    let winsize = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&winsize), None).expect("openpty");
    set_cloexec(&pty.master);
    let slave = pty.slave;
    command
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave.try_clone().expect("dup")));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let described = format!("{command:?}");
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {described}: {e}"));
    drop(slave);
    let mut master = File::from(pty.master);
    let mut output = Vec::new();
    let mut typed = false;
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let status = loop {
        if readable(&master, 50) {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(n) if n > 0 => output.extend_from_slice(&buf[..n]),
                // EIO: no process holds the slave any more.
                _ => {}
            }
        }
        if !typed && String::from_utf8_lossy(&output).contains(marker) {
            master.write_all(input.as_bytes()).expect("type on the pty");
            typed = true;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            // What it wrote before it exited is in the pty's buffer.
            while readable(&master, 0) {
                let mut buf = [0u8; 4096];
                match master.read(&mut buf) {
                    Ok(n) if n > 0 => output.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{described} did not exit within {COMMAND_DEADLINE:?} on its pty (typed: {typed}); \
                 it wrote:\n{}",
                String::from_utf8_lossy(&output)
            );
        }
    };
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&output).replace("\r\n", "\n"),
        stderr: String::new(),
    }
}

fn set_cloexec(fd: &OwnedFd) {
    // SAFETY: fcntl(2) on a descriptor we own.
    let done = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    assert_eq!(done, 0, "FD_CLOEXEC on the pty master");
}

fn readable(file: &File, timeout_ms: i32) -> bool {
    let mut fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll(2) on one valid pollfd.
    let n = unsafe { libc::poll(&mut fd, 1, timeout_ms) };
    if n > 0 && fd.revents & libc::POLLIN == 0 {
        // Hung up (no slave left) while the client is still exiting:
        // poll would return at once, so pace the caller's loop.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    n > 0 && fd.revents & libc::POLLIN != 0
}
