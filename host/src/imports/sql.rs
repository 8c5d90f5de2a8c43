//! `sql`: statements on the calling actor's own database, inside the call's transaction.
//! A statement runs on the call's CPU budget (`--max-call-time`): what the call has left when
//! it starts, after which SQLite stops it (see `actor_db::with_deadline`).

use std::time::Instant;

use crate::runtime::bindings::host_api::sql::{ExecResult, Host, Rows, Value};
use crate::runtime::state::ActorState;
use crate::storage::actor_db::with_deadline;

impl ActorState {
    /// When a statement starting now must end: the call's budget less what it has used.
    fn statement_deadline(&self) -> Instant {
        Instant::now() + self.runtime.settings.max_call_time.saturating_sub(self.call.busy())
    }
}

impl Host for ActorState {
    async fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<ExecResult, String> {
        let deadline = self.statement_deadline();
        with_deadline(deadline, || self.db.execute(&statement, params))
    }

    async fn query(&mut self, statement: String, params: Vec<Value>) -> Result<Rows, String> {
        let deadline = self.statement_deadline();
        with_deadline(deadline, || self.db.query(&statement, params))
    }
}
