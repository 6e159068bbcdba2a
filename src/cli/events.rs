//! `sandvisor events`: a container's resource use as runc's event JSON
//! lines: once with `--stats`, else every `--interval` until it stops, with
//! an `oom` event whenever the OOM killer has killed in it since the last.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use sandvisor_actors::api::container::Event;
use sandvisor_actors::wire::ErrorCode;

use super::run::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::{StateDir, Status};

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
    let mut stdout = std::io::stdout();
    let mut oom_kills = None;
    loop {
        let event = match client.invoke(Event {
            cid: args.id.clone(),
        }) {
            Ok(event) => event,
            // It stopped while being watched: the stream ends there.
            Err(e) if !args.stats && e.code() == Some(ErrorCode::FailedPrecondition) => {
                return Ok(ExitCode::SUCCESS)
            }
            Err(e) => return Err(e.into()),
        };
        let mut line = Vec::new();
        // Each OOM kill since the last look is an event of its own, as
        // runc's.
        let kills = event.data.memory.oom_kills;
        let new_kills = oom_kills.map_or(0, |before| kills.saturating_sub(before));
        for _ in 0..new_kills {
            let oom = serde_json::json!({"type": "oom", "id": args.id});
            line.extend_from_slice(oom.to_string().as_bytes());
            line.push(b'\n');
        }
        oom_kills = Some(kills);
        serde_json::to_writer(&mut line, &event).map_err(|e| io("encode the event")(e.into()))?;
        line.push(b'\n');
        stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .map_err(io("write standard output"))?;
        if args.stats {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(args.interval);
        if entry.status().0 == Status::Stopped {
            return Ok(ExitCode::SUCCESS);
        }
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
