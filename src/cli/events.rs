//! `sandvisor events`: a container's resource use as runc's event JSON
//! lines: once with `--stats`, else every `--interval` until it stops, with
//! an `oom` event for each kill of the OOM killer in it, as it happens.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use sandvisor_actors::api::container::{Event, EventReply};
use sandvisor_actors::sys::cgroup;
use sandvisor_actors::sys::oom_watch::OomWatch;
use sandvisor_actors::wire::ErrorCode;

use super::error::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, Status};

/// How often a watch between stats checks that the container still runs.
const STOP_CHECK: Duration = Duration::from_secs(1);

/// After a v1 OOM notification, how long to wait between looks at the
/// kill counter, and how many looks: the kill is counted a little after
/// the notification, and an OOM may also end with no kill.
const OOM_SETTLE_STEP: Duration = Duration::from_millis(10);
const OOM_SETTLE_TRIES: u32 = 50;

/// Arguments of `sandvisor events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print the stats once and exit.
    #[arg(long)]
    stats: bool,
    /// Time between stats (Go's duration syntax: 100ms, 5s, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// The container id.
    id: String,
}

/// Prints the container's stats events.
pub fn events(global: &GlobalOptions, args: EventsArgs) -> Result<ExitCode, RunError> {
    let entry = StateDir::open(&global.root)?.load(&args.id)?;
    if entry.status().0 == Status::Stopped {
        return Err(RunError::Refused(format!(
            "container {:?} is not running",
            args.id
        )));
    }
    let client = Client::connect(&entry.socket)?;
    let mut watcher = Watcher {
        client,
        id: args.id.clone(),
        oom_kills: None,
    };
    let Some(event) = watcher.look(args.stats)? else {
        return Ok(ExitCode::SUCCESS);
    };
    watcher.print(&event, true)?;
    if args.stats {
        return Ok(ExitCode::SUCCESS);
    }
    // An OOM kill is reported when it happens, as runc's events does, not
    // at the next interval: the kernel wakes this watch at each OOM event.
    // Without one (no memory controller), only the interval.
    let oom = entry
        .init
        .and_then(|init| cgroup::hierarchies().ok().map(|h| (init, h)))
        .and_then(|(init, h)| {
            cgroup::controller_dir_of(&h, init.pid, "memory")
                .ok()
                .flatten()
        })
        .and_then(|(dir, v2)| OomWatch::new(&dir, v2).ok());
    let mut next_stats = Instant::now() + args.interval;
    loop {
        // At least once a second, so that a container that stops between
        // long intervals ends the stream soon after.
        let left = next_stats
            .saturating_duration_since(Instant::now())
            .min(STOP_CHECK);
        let woken = match &oom {
            Some(watch) => watch.wait(left).unwrap_or(false),
            None => {
                std::thread::sleep(left);
                false
            }
        };
        if entry.status().0 == Status::Stopped {
            return Ok(ExitCode::SUCCESS);
        }
        // A wait that ended early with nothing to say goes on waiting.
        let early = Instant::now() < next_stats;
        if early && !woken {
            continue;
        }
        let Some(mut event) = watcher.look(false)? else {
            return Ok(ExitCode::SUCCESS);
        };
        if early {
            // v1 notifies when the OOM starts, before the kill is counted:
            // the counter is looked at again until it moves (briefly).
            let lags = oom.as_ref().is_some_and(OomWatch::notifies_before_the_kill);
            let mut tries = 0;
            while lags && !watcher.has_new_kills(&event) && tries < OOM_SETTLE_TRIES {
                std::thread::sleep(OOM_SETTLE_STEP);
                tries += 1;
                match watcher.look(false)? {
                    Some(later) => event = later,
                    None => return Ok(ExitCode::SUCCESS),
                }
            }
            watcher.print(&event, false)?;
            continue;
        }
        watcher.print(&event, true)?;
        next_stats += args.interval;
    }
}

/// A container being watched, and how many OOM kills it has shown.
struct Watcher {
    client: Client,
    id: String,
    /// The kills counted at the last look; new ones are printed once each.
    oom_kills: Option<u64>,
}

impl Watcher {
    /// The container's stats now; `None` once it has stopped (unless
    /// `must`, when that is an error).
    fn look(&mut self, must: bool) -> Result<Option<EventReply>, RunError> {
        match self.client.invoke(Event {
            cid: self.id.clone(),
        }) {
            Ok(event) => Ok(Some(event)),
            // It stopped while being watched: the stream ends there.
            Err(e) if !must && e.code() == Some(ErrorCode::FailedPrecondition) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `event` shows kills not printed yet.
    fn has_new_kills(&self, event: &EventReply) -> bool {
        self.oom_kills
            .is_some_and(|before| event.data.memory.oom_kills > before)
    }

    /// Prints an `oom` event for each kill `event` shows since the last
    /// one printed (as runc, one per kill), then the stats themselves if
    /// `with_stats`.
    fn print(&mut self, event: &EventReply, with_stats: bool) -> Result<(), RunError> {
        let mut line = Vec::new();
        let kills = event.data.memory.oom_kills;
        let new_kills = self
            .oom_kills
            .map_or(0, |before| kills.saturating_sub(before));
        for _ in 0..new_kills {
            let oom = serde_json::json!({"type": "oom", "id": self.id});
            line.extend_from_slice(oom.to_string().as_bytes());
            line.push(b'\n');
        }
        self.oom_kills = Some(kills);
        if with_stats {
            serde_json::to_writer(&mut line, event)
                .map_err(|e| io("encode the event")(e.into()))?;
            line.push(b'\n');
        }
        let mut stdout = std::io::stdout();
        stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .map_err(io("write standard output"))
    }
}

/// A duration as Go's time.ParseDuration reads it (a sequence of numbers
/// with units ns, us, ms, s, m, h); it must be positive.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: use e.g. 100ms, 5s or 1m30s");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| bad())?;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_s() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "5", "s", "0s", "-1s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
