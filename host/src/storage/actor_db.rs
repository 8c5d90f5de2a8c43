//! One actor's own SQLite database, opened on first use, and the transaction that
//! wraps each call: begun at the call's first statement, committed when the call
//! returns, rolled back when it traps or fails.

use std::path::PathBuf;
use std::sync::Arc;

use super::connections::ConnectionCache;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;

use crate::runtime::bindings::host_api::sql::{ExecResult, Rows, Value};

pub struct ActorDb {
    path: Option<PathBuf>,
    conn: Option<Connection>,
    in_transaction: bool,
    /// Where the connection goes when the actor is evicted, and comes from when it wakes.
    cache: Option<Arc<ConnectionCache>>,
}

impl ActorDb {
    /// A database at `path`; `None` for actors that may not have one (anonymous ones).
    pub fn new(path: Option<PathBuf>, cache: Option<Arc<ConnectionCache>>) -> Self {
        Self { path, conn: None, in_transaction: false, cache }
    }

    fn connection(&mut self) -> Result<&Connection, String> {
        if self.conn.is_none() {
            let path = self.path.as_ref().ok_or("this actor has no database")?;
            self.conn = self.cache.as_ref().and_then(|cache| cache.take(path));
        }
        if let (None, Some(path)) = (&self.conn, &self.path) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            self.conn = Some(open(path)?);
        }
        let conn = self.conn.as_ref().expect("opened above");
        if !self.in_transaction {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
            self.in_transaction = true;
        }
        Ok(conn)
    }

    pub fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<ExecResult, String> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare_cached(statement).map_err(|e| e.to_string())?;
        let changes = stmt
            .execute(rusqlite::params_from_iter(params.into_iter().map(to_sql)))
            .map_err(|e| e.to_string())?;
        Ok(ExecResult { changes: changes as u64, last_insert_rowid: conn.last_insert_rowid() })
    }

    pub fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<Rows, String> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare_cached(statement).map_err(|e| e.to_string())?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let width = columns.len();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.into_iter().map(to_sql)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sql(row.get_ref(i).map_err(|e| e.to_string())?));
            }
            out.push(values);
        }
        Ok(Rows { columns, rows: out })
    }

    /// Free the connection's page cache (between calls; the OS still caches the file).
    pub fn shrink(&mut self) {
        if let (Some(conn), false) = (&self.conn, self.in_transaction) {
            let _ = conn.execute_batch("PRAGMA shrink_memory");
        }
    }

    /// End the call's transaction: commit when `commit`, else roll back.
    pub fn finish(&mut self, commit: bool) -> Result<(), String> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        let conn = self.conn.as_ref().expect("a transaction implies a connection");
        if commit {
            if let Err(e) = conn.execute_batch("COMMIT") {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.to_string());
            }
            Ok(())
        } else {
            conn.execute_batch("ROLLBACK").map_err(|e| e.to_string())
        }
    }
}

impl Drop for ActorDb {
    fn drop(&mut self) {
        let _ = self.finish(false);
        self.shrink();
        if let (Some(cache), Some(path), Some(conn)) = (&self.cache, self.path.take(), self.conn.take()) {
            cache.give_back(path, conn);
        }
    }
}

/// Open an actor's database (WAL; see `storage::sqlite` for the process-wide settings that
/// keep a connection small). The write-ahead log is checkpointed every 256 pages and cut
/// back to 1 MiB after a checkpoint (SQLite's defaults are 1,000 pages, and a log that stays
/// at its largest): a start after a crash replays each open log in full, so a restart that
/// wakes a thousand users reads a thousand logs. The log and its index files are kept when
/// the database closes, emptied (persistent WAL): creating two files per wake made file
/// creation the largest single cost of a restart under load.
fn open(path: &std::path::Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| format!("opening the database: {e}"))?;
    let mut persist: std::ffi::c_int = 1;
    // SAFETY: a valid handle, the main database's name as a C string, and an int for
    // SQLITE_FCNTL_PERSIST_WAL to read, all alive for the call.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut persist as *mut std::ffi::c_int).cast(),
        );
    }
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 256; PRAGMA journal_size_limit = 1048576;",
    )
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// A WIT `sql.value` as a rusqlite value.
pub fn to_sql(value: Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

/// A rusqlite value as a WIT `sql.value`.
pub fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_calls_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ActorDb::new(Some(dir.path().join("a/b.sqlite")), None);
        db.execute("CREATE TABLE t (x INTEGER)", vec![]).unwrap();
        db.finish(true).unwrap();
        db.execute("INSERT INTO t VALUES (?1)", vec![Value::Integer(1)]).unwrap();
        db.finish(false).unwrap();
        let inserted = db.execute("INSERT INTO t VALUES (?1)", vec![Value::Integer(2)]).unwrap();
        assert_eq!(inserted.changes, 1);
        db.finish(true).unwrap();
        let rows = db.query("SELECT x FROM t", vec![]).unwrap();
        db.finish(true).unwrap();
        assert_eq!(rows.columns, vec!["x".to_string()]);
        assert!(matches!(rows.rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(2)])));
        assert!(ActorDb::new(None, None).execute("SELECT 1", vec![]).is_err());
    }
}
