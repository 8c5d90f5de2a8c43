//! `kv`: key-value pairs in a table of the actor's own database (same transaction as `sql`).

use crate::runtime::bindings::host_api::kv::Host;
use crate::runtime::bindings::host_api::sql::Value;
use crate::runtime::state::ActorState;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)";

impl ActorState {
    fn kv_table(&mut self) -> Result<(), String> {
        self.db.execute(CREATE, Vec::new()).map(|_| ())
    }
}

impl Host for ActorState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv_table().ok()?;
        let rows = self.db.query("SELECT value FROM _kv WHERE key = ?1", vec![Value::Text(key)]).ok()?;
        match rows.rows.into_iter().next()?.into_iter().next()? {
            Value::Blob(bytes) => Some(bytes),
            Value::Text(text) => Some(text.into_bytes()),
            _ => None,
        }
    }

    async fn put(&mut self, key: String, value: Vec<u8>) {
        if self.kv_table().is_ok() {
            let _ = self.db.execute(
                "INSERT INTO _kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                vec![Value::Text(key), Value::Blob(value)],
            );
        }
    }

    async fn delete(&mut self, key: String) -> bool {
        self.kv_table().is_ok()
            && self
                .db
                .execute("DELETE FROM _kv WHERE key = ?1", vec![Value::Text(key)])
                .is_ok_and(|r| r.changes > 0)
    }
}
