//! Running OCI hooks: the hook gets the container's state as JSON on its
//! stdin, its own argv and environment, and is killed after its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sys::plan::HookPlan;

/// Why a hook failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HookError {
    /// It could not be started.
    #[error("run hook {path}: {reason}")]
    Spawn {
        /// The hook.
        path: String,
        /// What failed.
        reason: String,
        /// The errno.
        errno: i32,
    },
    /// It exited unsuccessfully.
    #[error("hook {path} failed: {status}")]
    Failed {
        /// The hook.
        path: String,
        /// How it ended.
        status: String,
    },
    /// It ran past its timeout and was killed.
    #[error("hook {path} timed out after {secs} s")]
    TimedOut {
        /// The hook.
        path: String,
        /// The timeout.
        secs: u64,
    },
}

/// Runs `hook` with `state` on its stdin and waits for it.
pub fn run_hook(hook: &HookPlan, state: &[u8]) -> Result<(), HookError> {
    let spawn_error = |e: std::io::Error| HookError::Spawn {
        path: hook.path.clone(),
        reason: e.to_string().to_lowercase(),
        errno: e.raw_os_error().unwrap_or(0),
    };
    let mut child = Command::new(&hook.path)
        .arg0(hook.args.first().map_or(hook.path.as_str(), String::as_str))
        .args(hook.args.iter().skip(1))
        .env_clear()
        .envs(hook.env.iter().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        match child.try_wait().map_err(spawn_error)? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                return Err(HookError::Failed {
                    path: hook.path.clone(),
                    status: status.to_string(),
                })
            }
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::TimedOut {
                path: hook.path.clone(),
                secs: hook.timeout_secs.unwrap_or(0),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_hooks(hooks: &[HookPlan], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run_hook(h, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<u64>) -> HookPlan {
        HookPlan {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hello".into()],
            timeout_secs: timeout,
        }
    }

    #[test]
    fn hooks_get_the_state_on_stdin_and_their_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > {0}; echo \" $GREETING\" >> {0}", out.display());
        run_hook(&hook(&script, None), b"{\"id\":\"c1\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "{\"id\":\"c1\"} hello\n"
        );
    }

    #[test]
    fn failures_and_timeouts_name_the_hook() {
        assert_eq!(
            run_hook(&hook("exit 3", None), b"")
                .unwrap_err()
                .to_string(),
            "hook /bin/sh failed: exit status: 3"
        );
        // Killed at its timeout, not waited for: gone when run_hook returns
        // (a bound on the time taken would race a loaded machine).
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 1000", pid_file.display());
        assert_eq!(
            run_hook(&hook(&script, Some(1)), b"").unwrap_err(),
            HookError::TimedOut {
                path: "/bin/sh".into(),
                secs: 1
            }
        );
        // Empty if the shell was killed before it wrote it.
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
        assert!(
            pid.trim().is_empty()
                || !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the hook still runs"
        );
        let missing = HookPlan {
            path: "/nonexistent/hook".into(),
            args: vec![],
            env: vec![],
            timeout_secs: None,
        };
        assert!(matches!(
            run_hook(&missing, b""),
            Err(HookError::Spawn { errno: 2, .. })
        ));
    }
}
