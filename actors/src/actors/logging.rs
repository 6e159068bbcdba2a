//! Logging: changes the supervisor's log level and format at run time.

use std::sync::Arc;

use actix::Context;
use slog::{info, Logger};

use crate::api::logging::{Change, LoggingState};
use crate::logging::LogControl;
use crate::supervision::{handles, supervised_actor, ActorStatus, Subsystem};
use crate::wire::RpcError;

/// Serves `Logging.Change`.
pub struct Logging {
    status: Arc<ActorStatus>,
    logger: Logger,
    control: LogControl,
}

impl Logging {
    /// The actor, changing the logger behind `control`.
    pub fn new(status: Arc<ActorStatus>, logger: Logger, control: LogControl) -> Self {
        Logging {
            status,
            logger,
            control,
        }
    }

    fn change(&mut self, change: Change, _: &mut Context<Self>) -> Result<LoggingState, RpcError> {
        if let Some(level) = change.level {
            self.control.set_level(level);
        }
        if let Some(format) = change.format {
            self.control.set_format(format);
        }
        let state = self.control.state();
        if change.level.is_some() || change.format.is_some() {
            info!(self.logger, "logging changed";
                "level" => state.level.as_str(), "format" => state.format.as_str());
        }
        Ok(state)
    }
}

impl Subsystem for Logging {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }
}

supervised_actor!(Logging);
handles!(Logging { Change => change });
