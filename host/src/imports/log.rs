//! `log`: component log lines into the host's tracing output, tagged with the actor.

use crate::runtime::bindings::host_api::log::{Host, Level};
use crate::runtime::state::ActorState;

impl Host for ActorState {
    async fn log(&mut self, level: Level, message: String) {
        let actor = &self.key;
        match level {
            Level::Trace => tracing::trace!(%actor, "{message}"),
            Level::Debug => tracing::debug!(%actor, "{message}"),
            Level::Info => tracing::info!(%actor, "{message}"),
            Level::Warn => tracing::warn!(%actor, "{message}"),
            Level::Error => tracing::error!(%actor, "{message}"),
        }
    }
}
