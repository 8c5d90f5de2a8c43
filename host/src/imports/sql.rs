//! `sql`: statements on the calling actor's own database, inside the call's transaction.

use crate::runtime::bindings::host_api::sql::{ExecResult, Host, Rows, Value};
use crate::runtime::state::ActorState;

impl Host for ActorState {
    async fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<ExecResult, String> {
        self.db.execute(&statement, params)
    }

    async fn query(&mut self, statement: String, params: Vec<Value>) -> Result<Rows, String> {
        self.db.query(&statement, params)
    }
}
