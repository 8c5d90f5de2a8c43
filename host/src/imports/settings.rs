//! `settings`: host settings a component must honour.

use crate::runtime::bindings::host_api::settings::{Host, QueryLimits, Retention};
use crate::runtime::state::ActorState;

impl Host for ActorState {
    async fn init_timeout_ms(&mut self) -> u64 {
        self.runtime.settings.init_timeout.as_millis() as u64
    }

    async fn graphql_limits(&mut self) -> QueryLimits {
        self.runtime.settings.graphql_limits
    }

    async fn graphql_max_response_fields(&mut self) -> u32 {
        self.runtime.settings.graphql_max_response_fields
    }

    async fn event_retention(&mut self) -> Retention {
        self.runtime.settings.event_retention
    }
}
