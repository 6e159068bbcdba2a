//! OOM kills: noticing them, and telling which exit they caused.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slog::debug;

use super::{ContainerManager, OomNotified};
use crate::sys::cgroup;
use crate::sys::oom_watch::OomWatch;
use crate::sys::process::WaitStatus;

/// How long after it is counted an OOM kill may be claimed by a SIGKILLed
/// child's exit: the victim dies as soon as it runs, and the Reaper tells
/// the manager at once, so this is a bound under heavy load, not a wait.
const OOM_CLAIM_WINDOW: Duration = Duration::from_secs(2);

/// When to look again at the kill count after a v1 notification.
pub(super) const OOM_RECHECKS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_millis(500),
];

impl ContainerManager {
    /// Whether a process of `cid` that died by SIGKILL was the OOM
    /// killer's: its memory cgroup counted a kill within the last
    /// [`OOM_CLAIM_WINDOW`] that no other exit has claimed. (The kernel
    /// counts the kill before it sends the signal; the kill of a process
    /// the supervisor does not reap expires unclaimed.)
    pub(super) fn oom_killed(&mut self, cid: &str, status: WaitStatus) -> bool {
        if status.signal() != Some(libc::SIGKILL) {
            return false;
        }
        self.note_oom_kills(cid);
        let Some(c) = self.containers.get_mut(cid) else {
            return false;
        };
        c.unclaimed_oom_kills.pop_back().is_some()
    }

    /// Reads `cid`'s OOM kill count; each kill new since the last reading
    /// is noted as just happened. Returns whether there was one.
    pub(super) fn note_oom_kills(&mut self, cid: &str) -> bool {
        let Some(c) = self.containers.get_mut(cid) else {
            return false;
        };
        let dirs = c.cgroup.as_ref().map_or(&[][..], |g| g.dirs.as_slice());
        let kills = c.cgroup_files.oom_kills(&self.hierarchies, dirs);
        let now = Instant::now();
        while c
            .unclaimed_oom_kills
            .front()
            .is_some_and(|at| now.duration_since(*at) > OOM_CLAIM_WINDOW)
        {
            c.unclaimed_oom_kills.pop_front();
        }
        let new = kills.saturating_sub(c.oom_kills_seen);
        for _ in 0..new.min(64) {
            c.unclaimed_oom_kills.push_back(now);
        }
        c.oom_kills_seen = kills;
        if new > 0 {
            // When the claim window opens (tests wait for it).
            debug!(self.logger, "oom kills noted"; "cid" => cid, "new" => new);
        }
        new > 0
    }

    /// Starts waiting for the kernel's OOM notifications of `cid`'s memory
    /// cgroup, so that each kill is noted when it happens. Without one (no
    /// memory controller, or the watch cannot be made) kills are noted at
    /// exits only.
    pub(super) fn watch_oom(&mut self, cid: &str, dirs: &[PathBuf]) {
        let Some(myself) = self.myself.clone() else {
            return;
        };
        let Some((dir, v2)) = cgroup::controller_dir(&self.hierarchies, dirs, "memory") else {
            return;
        };
        let watch = match OomWatch::new(dir, v2).and_then(crate::sys::socket::register_async) {
            Ok(watch) => watch,
            Err(e) => {
                debug!(self.logger, "cannot watch for OOM kills"; "cid" => cid, "error" => %e);
                return;
            }
        };
        let (cid, status) = (cid.to_owned(), self.status.clone());
        actix_rt::spawn(async move {
            loop {
                let Ok(mut ready) = watch.readable().await else {
                    return;
                };
                watch.get_ref().drain();
                ready.clear_ready();
                let notified = OomNotified {
                    cid: cid.clone(),
                    lags: watch.get_ref().notifies_before_the_kill(),
                    ticket: status.ticket(),
                };
                // The container gone (its cgroup's removal wakes the
                // watch too), or the manager: the watch ends.
                if !matches!(myself.send(notified).await, Ok(true)) {
                    return;
                }
            }
        });
    }
}
