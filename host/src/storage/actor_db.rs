//! One actor's own SQLite database, opened on first use, and the transaction that
//! wraps each call: begun at the call's first statement, committed when the call
//! returns, rolled back when it traps or fails. A component's statements pass SQLite's
//! authorizer, which refuses what would break those rules (see [`component_may`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::connections::ConnectionCache;

use std::cell::Cell;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
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
            host_statement(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
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
            let _ = host_statement(conn, "PRAGMA shrink_memory");
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
            if let Err(e) = host_statement(conn, "COMMIT") {
                let _ = host_statement(conn, "ROLLBACK");
                return Err(e.to_string());
            }
            Ok(())
        } else {
            host_statement(conn, "ROLLBACK").map_err(|e| e.to_string())
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
/// keep a connection small and say how durable a commit is). The write-ahead log is checkpointed every 256 pages and cut
/// back to 1 MiB after a checkpoint (SQLite's defaults are 1,000 pages, and a log that stays
/// at its largest): a start after a crash replays each open log in full, so a restart that
/// wakes a thousand users reads a thousand logs. The log and its index files are kept when
/// the database closes, emptied (persistent WAL): creating two files per wake made file
/// creation the largest single cost of a restart under load.
/// Prepared statements kept per actor database.
const STATEMENT_CACHE: usize = 48;

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
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 256; PRAGMA journal_size_limit = 1048576;",
    )
    .and_then(|()| conn.execute_batch(super::sqlite::synchronous_pragma()))
    .map_err(|e| e.to_string())?;
    let mut conn = conn;
    conn.authorizer(Some(authorize)).map_err(|e| e.to_string())?;
    // A component's working set of statements (the library's busiest calls use about 20),
    // kept prepared: past rusqlite's default of 16 each call re-prepared some of them, and
    // every prepare also runs the authorizer.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

thread_local! {
    /// Set while the host runs a statement of its own on this thread (the call's
    /// transaction, shrinking the cache): the authorizer lets those through.
    static HOST_STATEMENT: Cell<bool> = const { Cell::new(false) };
}

/// Run one of the host's own statements, which the authorizer would refuse a component.
fn host_statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    HOST_STATEMENT.set(true);
    let result = conn.execute_batch(sql);
    HOST_STATEMENT.set(false);
    result
}

/// SQLite's authorizer, consulted as each statement is prepared (and prepared again).
fn authorize(context: AuthContext<'_>) -> Authorization {
    if HOST_STATEMENT.get() || component_may(&context.action) {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

/// What a component's statement may do: read and write its own tables, and create, alter and
/// drop them. Refused, with SQLite's "not authorized": attaching or detaching a database
/// (another user's file), transaction and savepoint control (a `COMMIT` or `ROLLBACK` in the
/// middle of a call would break the one-transaction rule and the output gate), pragmas
/// (journal mode, `writable_schema`, ...), and virtual tables. `VACUUM` (and `VACUUM INTO`)
/// cannot run inside the call's transaction in any case.
fn component_may(action: &AuthAction<'_>) -> bool {
    !matches!(
        action,
        AuthAction::Attach { .. }
            | AuthAction::Detach { .. }
            | AuthAction::Transaction { .. }
            | AuthAction::Savepoint { .. }
            | AuthAction::Pragma { .. }
            | AuthAction::CreateVtable { .. }
            | AuthAction::DropVtable { .. }
            | AuthAction::Unknown { .. }
    )
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

    #[test]
    fn a_component_cannot_leave_its_database_or_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.sqlite");
        let mut db = ActorDb::new(Some(dir.path().join("mine.sqlite")), None);
        db.execute("CREATE TABLE t (x INTEGER)", vec![]).unwrap();
        db.finish(true).unwrap();
        db.execute("INSERT INTO t VALUES (1)", vec![]).unwrap();
        for statement in [
            format!("ATTACH DATABASE '{}' AS other", other.display()),
            "DETACH DATABASE main".to_string(),
            "COMMIT".into(),
            "ROLLBACK".into(),
            "BEGIN".into(),
            "SAVEPOINT s".into(),
            "RELEASE s".into(),
            format!("VACUUM INTO '{}'", other.display()),
            "VACUUM".into(),
            "PRAGMA journal_mode = DELETE".into(),
            "PRAGMA writable_schema = ON".into(),
            "CREATE VIRTUAL TABLE v USING fts5(x)".into(),
        ] {
            let refused = db.execute(&statement, vec![]).expect_err(&statement);
            assert!(refused.contains("not authorized") || refused.contains("within a transaction"), "{statement}: {refused}");
        }
        assert!(!other.exists(), "no other file was created");
        // The call's transaction is still the one open: rolling it back undoes the insert.
        db.finish(false).unwrap();
        let rows = db.query("SELECT count(*) FROM t", vec![]).unwrap();
        assert!(matches!(rows.rows[0][0], Value::Integer(0)));
        db.finish(true).unwrap();
    }
}
