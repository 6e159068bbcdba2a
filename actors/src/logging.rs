//! Logging: slog, with a level filter that can be changed at run time in
//! front of slog-async (so filtered records cost no channel send), and a
//! text or JSON formatter behind it that can be switched at run time.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use slog::{o, Drain, FnValue, Level, Logger, OwnedKVList, PushFnValue, Record};
use thiserror::Error;

use crate::api::logging::{LogFormat, LogLevel, LoggingState};

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The initial level.
    pub level: LogLevel,
    /// The initial format.
    pub format: LogFormat,
    /// A file to append to; stderr when `None`.
    pub path: Option<PathBuf>,
}

/// Why logging could not be set up.
#[derive(Debug, Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("open log file {path:?}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Changes the level and format of a running logger.
#[derive(Debug, Clone)]
pub struct LogControl {
    level: Arc<AtomicU8>,
    format: Arc<AtomicU8>,
}

impl LogControl {
    /// The settings in force.
    pub fn state(&self) -> LoggingState {
        LoggingState {
            level: level_from_u8(self.level.load(Ordering::Relaxed)),
            format: format_from_u8(self.format.load(Ordering::Relaxed)),
        }
    }

    /// Sets the level; records logged after this returns obey it.
    pub fn set_level(&self, level: LogLevel) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    /// Sets the format; lines written after this returns use it. Lines still
    /// queued to the writer thread are written in the new format too.
    pub fn set_format(&self, format: LogFormat) {
        self.format.store(format as u8, Ordering::Relaxed);
    }
}

fn level_from_u8(v: u8) -> LogLevel {
    LogLevel::ALL
        .into_iter()
        .find(|l| *l as u8 == v)
        .unwrap_or(LogLevel::Info)
}

fn format_from_u8(v: u8) -> LogFormat {
    if v == LogFormat::Json as u8 {
        LogFormat::Json
    } else {
        LogFormat::Text
    }
}

fn slog_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Trace => Level::Trace,
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warning => Level::Warning,
        LogLevel::Error => Level::Error,
        LogLevel::Critical => Level::Critical,
    }
}

/// Passes records at or above the current level.
struct RuntimeLevelFilter<D> {
    inner: D,
    level: Arc<AtomicU8>,
}

impl<D: Drain> Drain for RuntimeLevelFilter<D> {
    type Ok = Option<D::Ok>;
    type Err = D::Err;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<Self::Ok, Self::Err> {
        if self.is_enabled(record.level()) {
            self.inner.log(record, values).map(Some)
        } else {
            Ok(None)
        }
    }

    fn is_enabled(&self, level: Level) -> bool {
        let threshold = slog_level(level_from_u8(self.level.load(Ordering::Relaxed)));
        level.is_at_least(threshold)
    }
}

type Sink = BufWriter<Box<dyn Write + Send>>;

/// Formats each record as text or JSON, whichever is current.
struct FormatSwitch {
    format: Arc<AtomicU8>,
    text: slog_term::FullFormat<slog_term::PlainDecorator<Sink>>,
    json: slog_json::Json<Sink>,
}

impl Drain for FormatSwitch {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        // A log line that cannot be written (stderr closed, disk full) must
        // not take the supervisor down.
        if format_from_u8(self.format.load(Ordering::Relaxed)) == LogFormat::Json {
            let _ = self.json.log(record, values);
        } else {
            let _ = self.text.log(record, values);
        }
        Ok(())
    }
}

fn open_sink(path: Option<&Path>) -> Result<(Sink, Sink), LogError> {
    let open = |p: &Path| -> io::Result<(Box<dyn Write + Send>, Box<dyn Write + Send>)> {
        let file = OpenOptions::new().create(true).append(true).open(p)?;
        let second = file.try_clone()?;
        Ok((Box::new(file), Box::new(second)))
    };
    let (a, b): (Box<dyn Write + Send>, Box<dyn Write + Send>) = match path {
        Some(p) => open(p).map_err(|source| LogError::Open {
            path: p.to_owned(),
            source,
        })?,
        None => (Box::new(io::stderr()), Box::new(io::stderr())),
    };
    Ok((BufWriter::new(a), BufWriter::new(b)))
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Keeps the writer thread alive; dropping it flushes queued lines.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

/// Builds the root logger.
pub fn init(config: &LogConfig) -> Result<(Logger, LogControl, LogGuard), LogError> {
    let (text_sink, json_sink) = open_sink(config.path.as_deref())?;
    let control = LogControl {
        level: Arc::new(AtomicU8::new(config.level as u8)),
        format: Arc::new(AtomicU8::new(config.format as u8)),
    };
    let text = slog_term::FullFormat::new(slog_term::PlainDecorator::new(text_sink)).build();
    let json = slog_json::Json::new(json_sink)
        .set_flush(true)
        .add_key_value(o!(
            "time" => FnValue(|_: &Record<'_>| rfc3339_now()),
            "level" => FnValue(|r: &Record<'_>| r.level().as_str().to_lowercase()),
            "msg" => PushFnValue(|r: &Record<'_>, ser| ser.emit(r.msg())),
        ))
        .build();
    let switch = FormatSwitch {
        format: control.format.clone(),
        text,
        json,
    };
    let (async_drain, guard) = slog_async::Async::new(switch)
        .chan_size(4096)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .thread_name("sandvisor-log".into())
        .build_with_guard();
    let filtered = RuntimeLevelFilter {
        inner: async_drain,
        level: control.level.clone(),
    };
    let logger = Logger::root(filtered.ignore_res(), o!());
    Ok((logger, control, LogGuard(guard)))
}

/// A logger that drops everything, for tests.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::{debug, info};

    #[test]
    fn level_and_format_change_at_run_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let config = LogConfig {
            level: LogLevel::Info,
            format: LogFormat::Text,
            path: Some(path.clone()),
        };
        let (logger, control, guard) = init(&config).unwrap();
        debug!(logger, "hidden");
        info!(logger, "shown as text"; "k" => 1);
        control.set_level(LogLevel::Debug);
        debug!(logger, "now visible");
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("shown as text"), "{text}");
        assert!(text.contains("now visible"), "{text}");
        assert_eq!(
            control.state(),
            LoggingState {
                level: LogLevel::Debug,
                format: LogFormat::Text
            }
        );
    }

    #[test]
    fn json_lines_carry_time_level_and_msg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let config = LogConfig {
            level: LogLevel::Trace,
            format: LogFormat::Json,
            path: Some(path.clone()),
        };
        let (logger, _control, guard) = init(&config).unwrap();
        slog::trace!(logger, "deep"; "id" => 7);
        drop(guard);
        let line = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(value["level"], "trace");
        assert_eq!(value["msg"], "deep");
        assert_eq!(value["id"], 7);
        assert!(value["time"].as_str().unwrap().ends_with('Z'));
    }
}
