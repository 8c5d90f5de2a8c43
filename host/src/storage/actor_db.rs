//! One actor's own SQLite database, opened on first use, and the transaction that
//! wraps each call: begun at the call's first statement, committed when the call
//! returns, rolled back when it traps or fails. A component's statements pass SQLite's
//! authorizer, which refuses what would break those rules (see [`component_may`]).
//!
//! Bounds: a database may grow to its quota (`--max-user-bytes`, SQLite's `max_page_count`):
//! past it a write fails with [`QUOTA_EXCEEDED`] while reads and deletes still work; and
//! one query's rows may take at most [`MAX_RESULT_BYTES`] of host memory, counted as they
//! are read (a larger result fails the statement, before the component's own memory cap
//! would have to catch it).

use std::path::PathBuf;
use std::sync::Arc;

use super::connections::ConnectionCache;

use std::cell::Cell;
use std::time::Instant;

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
    /// In a cluster: the writes of the call in progress, for the user log (`None`: not kept).
    writes: Option<Vec<Write>>,
    /// The most bytes the database may hold (`None`: no quota).
    quota_bytes: Option<u64>,
    /// Set when a statement failed after changing the database: the rest of the call fails,
    /// and it cannot commit.
    poisoned: Option<String>,
}

/// Why a component's statement failed.
enum StatementError {
    Sqlite(rusqlite::Error),
    /// Its rows passed [`MAX_RESULT_BYTES`].
    TooLarge,
}

impl From<rusqlite::Error> for StatementError {
    fn from(e: rusqlite::Error) -> Self {
        StatementError::Sqlite(e)
    }
}

/// How a write past the quota fails (the library's error then starts with it).
pub const QUOTA_EXCEEDED: &str = "Storage quota exceeded";

/// How a write fails when the server's disk (not the user's quota) is full.
pub const DISK_FULL: &str = "The server's storage is full: the change was not saved; try again later";

/// The most bytes of rows one query may read into host memory.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// One statement that may have changed the database, as the user log keeps it.
#[derive(Clone, Debug)]
pub struct Write {
    pub sql: String,
    pub params: Vec<Value>,
}

/// The host's table (in a cluster) saying which entry of the user log the file holds.
const POSITION_TABLE: &str = "CREATE TABLE IF NOT EXISTS _rt_log_position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)";

impl ActorDb {
    /// A database at `path`; `None` for actors that may not have one (anonymous ones).
    pub fn new(path: Option<PathBuf>, cache: Option<Arc<ConnectionCache>>) -> Self {
        Self { path, conn: None, in_transaction: false, cache, writes: None, quota_bytes: None, poisoned: None }
    }

    /// Let the database grow to `bytes` at most.
    pub fn with_quota(mut self, bytes: u64) -> Self {
        self.quota_bytes = Some(bytes);
        self
    }

    /// An error of a component's statement, in words: a full database is the quota when the
    /// file is at its page limit, else the server's disk.
    fn statement_error(&self, error: rusqlite::Error) -> String {
        let full = matches!(&error, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull);
        match (full, self.quota_bytes, &self.conn) {
            (true, Some(quota), Some(conn)) if at_page_limit(conn) => {
                format!("{QUOTA_EXCEEDED}: this library may hold at most {} MiB; delete something to make room", quota >> 20)
            }
            (true, _, _) => DISK_FULL.to_string(),
            _ => error.to_string(),
        }
    }

    /// Keep each call's writes for the user log (cluster mode); non-deterministic SQL
    /// functions are refused, so that replaying the writes gives the same database.
    pub fn replicated(mut self) -> Self {
        self.writes = Some(Vec::new());
        self
    }

    /// The writes of the call in progress (taken before it commits).
    pub fn take_writes(&mut self) -> Vec<Write> {
        self.writes.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Record, in the call's transaction, that the database now holds user-log entry `seq`.
    pub fn record_position(&mut self, seq: u64) -> Result<(), String> {
        let conn = self.connection()?;
        write_position(conn, seq).map_err(|e| e.to_string())
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
            let conn = open(path, self.writes.is_some())?;
            if let Some(quota) = self.quota_bytes {
                set_quota(&conn, quota).map_err(|e| e.to_string())?;
            }
            self.conn = Some(conn);
        }
        let conn = self.conn.as_ref().expect("opened above");
        if !self.in_transaction {
            host_statement(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
            self.in_transaction = true;
        } else if conn.is_autocommit() {
            // SQLite rolled the transaction back itself (it does on a full database, I/O
            // errors, out of memory): the call's earlier writes are gone, and a statement
            // now would run outside any transaction. The call cannot go on.
            return Err("The call's transaction was rolled back after an error; nothing it wrote was kept".into());
        }
        Ok(conn)
    }

    pub fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<ExecResult, String> {
        self.run(statement, params, |conn, stmt, params| {
            // Stepped by hand: a statement that returns rows (`INSERT ... RETURNING`) has
            // written by its first step, so "it returned rows" is no error here.
            let mut rows = stmt.query(params)?;
            while rows.next()?.is_some() {}
            drop(rows);
            Ok(ExecResult { changes: conn.changes(), last_insert_rowid: conn.last_insert_rowid() })
        })
    }

    pub fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<Rows, String> {
        self.run(statement, params, |_, stmt, params| {
            let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let width = columns.len();
            let mut rows = stmt.query(params)?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(width);
                for i in 0..width {
                    let value = row.get_ref(i)?;
                    bytes += value_bytes(&value);
                    values.push(from_sql(value));
                }
                if bytes > MAX_RESULT_BYTES {
                    return Err(StatementError::TooLarge);
                }
                out.push(values);
            }
            Ok(Rows { columns, rows: out })
        })
    }

    /// Run a component's statement (through either import) in the call's transaction. What it
    /// changes is kept for the user log (cluster mode) by one rule, whatever the import and
    /// whatever the statement returns: a statement that is not read-only and succeeded is
    /// kept (one that changed nothing replays as a no-op; a `CREATE ... IF NOT EXISTS` that
    /// found its table is left out); one that failed after changing the database (`INSERT OR
    /// FAIL` part-way, a result cut off at its byte budget) fails the whole call, so nothing
    /// the log lacks can commit.
    fn run<T>(
        &mut self,
        statement: &str,
        params: Vec<Value>,
        step: impl FnOnce(&Connection, &mut rusqlite::CachedStatement<'_>, rusqlite::ParamsFromIter<Vec<SqlValue>>) -> Result<T, StatementError>,
    ) -> Result<T, String> {
        if let Some(why) = &self.poisoned {
            return Err(why.clone());
        }
        let keep = self.writes.is_some().then(|| params.clone());
        let conn = self.connection()?;
        let mut stmt = prepare_component(conn, statement).map_err(|e| e.to_string())?;
        let readonly = stmt.readonly();
        let schema_before = (!readonly && keep.is_some()).then(|| schema_version(conn));
        let changes_before = conn.total_changes();
        let params = rusqlite::params_from_iter(params.into_iter().map(to_sql).collect::<Vec<_>>());
        let outcome = step(conn, &mut stmt, params);
        drop(stmt);
        let changed = conn.total_changes() != changes_before || schema_before.is_some_and(|before| before != schema_version(conn));
        match outcome {
            Ok(value) => {
                if let (Some(params), false) = (keep, readonly) {
                    let unchanged_schema = is_schema_statement(statement) && !changed;
                    if !unchanged_schema {
                        self.writes.as_mut().expect("kept").push(Write { sql: statement.to_string(), params });
                    }
                }
                Ok(value)
            }
            Err(e) => {
                let message = match e {
                    StatementError::Sqlite(e) => self.statement_error(e),
                    StatementError::TooLarge => format!("The query's result is too large: more than {} MiB of rows; read it in pages", MAX_RESULT_BYTES >> 20),
                };
                if changed && !readonly {
                    self.poisoned = Some(format!("{message} (after it had changed the database: the call cannot commit)"));
                }
                Err(message)
            }
        }
    }

    /// Free the connection's page cache (between calls; the OS still caches the file).
    pub fn shrink(&mut self) {
        if let (Some(conn), false) = (&self.conn, self.in_transaction) {
            let _ = host_statement(conn, "PRAGMA shrink_memory");
        }
    }

    /// End the call's transaction: commit when `commit`, else roll back.
    pub fn finish(&mut self, commit: bool) -> Result<(), String> {
        if let Some(writes) = &mut self.writes {
            writes.clear();
        }
        let wanted_commit = commit;
        let poisoned = self.poisoned.take();
        let commit = commit && poisoned.is_none();
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        let conn = self.conn.as_ref().expect("a transaction implies a connection");
        if conn.is_autocommit() {
            // Already rolled back by SQLite after an error (see `connection`).
            return if commit { Err("the call's transaction was rolled back after an error".into()) } else { Ok(()) };
        }
        if commit {
            if let Err(e) = host_statement(conn, "COMMIT") {
                let _ = host_statement(conn, "ROLLBACK");
                let full = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
                return Err(if full { DISK_FULL.to_string() } else { e.to_string() });
            }
            Ok(())
        } else {
            host_statement(conn, "ROLLBACK").map_err(|e| e.to_string())?;
            match (wanted_commit, poisoned) {
                (true, Some(why)) => Err(why),
                _ => Ok(()),
            }
        }
    }

    /// Why the call in progress cannot commit, if a statement failed after changing the
    /// database (see [`ActorDb::run`]).
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }
}

/// Prepare a component's statement. The statement cache holds only statements the
/// authorizer passed as a component's (the host's own statements are never cached: a
/// component that sent the same text would otherwise get a statement authorized for the host).
fn prepare_component<'c>(conn: &'c Connection, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    conn.prepare_cached(sql)
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

pub(crate) fn open(path: &std::path::Path, replicated: bool) -> Result<Connection, String> {
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
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;
         PRAGMA wal_autocheckpoint = 256; PRAGMA journal_size_limit = 1048576;",
    )
    .and_then(|()| conn.execute_batch(super::sqlite::synchronous_pragma()))
    .map_err(|e| e.to_string())?;
    let mut conn = conn;
    if replicated {
        conn.authorizer(Some(authorize_replicated)).map_err(|e| e.to_string())?;
    } else {
        conn.authorizer(Some(authorize)).map_err(|e| e.to_string())?;
    }
    // A component's working set of statements (the library's busiest calls use about 20),
    // kept prepared: past rusqlite's default of 16 each call re-prepared some of them, and
    // every prepare also runs the authorizer.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.progress_handler(STEPS_PER_CHECK, Some(past_deadline)).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Cap the database at `bytes` (rounded down to whole pages). A database already larger keeps
/// its size: it cannot grow, and deletes make room.
fn set_quota(conn: &Connection, bytes: u64) -> rusqlite::Result<()> {
    HOST_STATEMENT.set(true);
    let result = conn.query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0)).and_then(|page| {
        let pages = (bytes / page.max(512) as u64).max(1);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
    });
    HOST_STATEMENT.set(false);
    result
}

/// Whether the database holds as many pages as its quota lets it (a few pages short count:
/// one statement may need several).
fn at_page_limit(conn: &Connection) -> bool {
    HOST_STATEMENT.set(true);
    let pages = |pragma: &str| conn.query_row(pragma, [], |row| row.get::<_, i64>(0)).unwrap_or(0);
    let (count, max) = (pages("PRAGMA page_count"), pages("PRAGMA max_page_count"));
    HOST_STATEMENT.set(false);
    count + 16 >= max
}

/// What a value costs in host memory, near enough.
fn value_bytes(value: &ValueRef<'_>) -> usize {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => 24 + bytes.len(),
        _ => 24,
    }
}

/// Statements that change the schema (whose `IF NOT EXISTS` form may change nothing).
fn is_schema_statement(sql: &str) -> bool {
    let first = sql.trim_start().split(|c: char| c.is_whitespace()).next().unwrap_or("");
    ["CREATE", "DROP", "ALTER"].iter().any(|word| first.eq_ignore_ascii_case(word))
}

fn schema_version(conn: &Connection) -> i64 {
    HOST_STATEMENT.set(true);
    let version = conn.query_row("PRAGMA schema_version", [], |row| row.get(0)).unwrap_or(-1);
    HOST_STATEMENT.set(false);
    version
}

fn write_position(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    HOST_STATEMENT.set(true);
    let result = write_position_inner(conn, seq);
    HOST_STATEMENT.set(false);
    result
}

/// The log a cluster's file is a copy of (see [`LogIdentity`]): `None` for a file that never
/// recorded one (a new file, or one from before identities were kept).
pub fn read_log_identity(conn: &Connection) -> Option<String> {
    HOST_STATEMENT.set(true);
    let id = conn.query_row("SELECT log FROM _rt_log_identity WHERE id = 1", [], |row| row.get::<_, String>(0)).ok();
    HOST_STATEMENT.set(false);
    id
}

/// Record that the file is a copy of the log `log`.
pub fn write_log_identity(conn: &Connection, log: &str) -> Result<(), String> {
    HOST_STATEMENT.set(true);
    let result = conn
        .execute_batch("CREATE TABLE IF NOT EXISTS _rt_log_identity (id INTEGER PRIMARY KEY CHECK (id = 1), log TEXT NOT NULL)")
        .and_then(|()| conn.execute("INSERT OR REPLACE INTO _rt_log_identity (id, log) VALUES (1, ?1)", [log]).map(|_| ()));
    HOST_STATEMENT.set(false);
    result.map_err(|e| e.to_string())
}

/// Whether a file (or snapshot) holding `position` entries of the log `found` may be taken as
/// a prefix of the log `current`.
#[derive(Debug, PartialEq, Eq)]
pub enum LogIdentity {
    /// The same log, or a file with nothing of any log yet: go on (recording `current`).
    Same,
    /// A file from before identities were kept: taken as this log's (as it always was).
    Unrecorded,
    /// Another log's history (the log was lost and made again): never merged.
    Other { found: String },
}

/// Compare a file's recorded log with the cluster's.
pub fn compare_log_identity(found: Option<String>, position: u64, current: &str) -> LogIdentity {
    match found {
        Some(found) if found == current => LogIdentity::Same,
        Some(found) => LogIdentity::Other { found },
        None if position == 0 => LogIdentity::Same,
        None => LogIdentity::Unrecorded,
    }
}

/// Which user-log entry a database file holds (0: none, or not a cluster's file).
pub fn read_position(conn: &Connection) -> u64 {
    HOST_STATEMENT.set(true);
    let seq = conn.query_row("SELECT seq FROM _rt_log_position WHERE id = 1", [], |row| row.get::<_, i64>(0)).unwrap_or(0);
    HOST_STATEMENT.set(false);
    seq.max(0) as u64
}

/// Apply consecutive user-log entries' writes (a catch-up), in order, with the position of
/// the last, in one transaction: the file holds all of them or none. The file's position is
/// read inside that transaction and entries it already holds are skipped: a call whose
/// append was taken and whose commit is still under way holds the write lock until it
/// commits, so its entry is never applied twice.
pub fn apply_entries(conn: &Connection, entries: &[(u64, Vec<Write>)]) -> Result<(), String> {
    let Some(&(last, _)) = entries.last() else { return Ok(()) };
    let result = (|| -> rusqlite::Result<()> {
        host_statement(conn, "BEGIN IMMEDIATE")?;
        let held = read_position(conn);
        if held >= last {
            return host_statement(conn, "COMMIT");
        }
        for write in entries.iter().filter(|(seq, _)| *seq > held).flat_map(|(_, writes)| writes) {
            // The component's own statements, authorized as the component's (as when it ran
            // them), so the statement cache stays the component's.
            let mut stmt = prepare_component(conn, &write.sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(write.params.iter().cloned().map(to_sql)))?;
            while rows.next()?.is_some() {}
        }
        write_position(conn, last)?;
        host_statement(conn, "COMMIT")
    })();
    if result.is_err() {
        let _ = host_statement(conn, "ROLLBACK");
    }
    result.map_err(|e| e.to_string())
}

fn write_position_inner(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.execute_batch(POSITION_TABLE)?;
    // Not cached (see `prepare_component`).
    conn.execute_batch(&format!("INSERT OR REPLACE INTO _rt_log_position (id, seq) VALUES (1, {})", seq as i64))
}

thread_local! {
    /// Set while the host runs a statement of its own on this thread (the call's
    /// transaction, shrinking the cache): the authorizer lets those through.
    static HOST_STATEMENT: Cell<bool> = const { Cell::new(false) };
    /// While a component's statement runs on this thread: when SQLite must stop it.
    static STATEMENT_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite virtual-machine steps between two looks at the deadline (a look is a clock read).
const STEPS_PER_CHECK: std::ffi::c_int = 10_000;

/// How a statement stopped at its deadline fails.
pub const STATEMENT_TIMED_OUT: &str = "The statement ran past the call's CPU time limit and was stopped";

/// Run `statement` (a component's SQL) with SQLite stopping it at `deadline`: the time a call
/// spends in SQL counts against its CPU budget like the time it spends in wasm, and a long
/// statement (a large unpaginated read, a replay) cannot hold a worker thread past it.
pub fn with_deadline<T>(deadline: Instant, statement: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    STATEMENT_DEADLINE.set(Some(deadline));
    let result = statement();
    STATEMENT_DEADLINE.set(None);
    result.map_err(|e| if e.contains("interrupted") { STATEMENT_TIMED_OUT.to_string() } else { e })
}

/// SQLite's progress handler: true (stop) once the running statement is past its deadline.
fn past_deadline() -> bool {
    STATEMENT_DEADLINE.get().is_some_and(|deadline| Instant::now() >= deadline)
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

/// The authorizer of a database whose writes are replayed from the user log (cluster mode):
/// as [`authorize`], and a component may not do what a replay could not reproduce: SQL
/// functions whose result is not given by the database and the parameters (the clock,
/// randomness, and the connection's own state: `last_insert_rowid()`, `changes()`, ...),
/// temporary objects (not in the file, not in the log, yet a later write may read them),
/// `ANALYZE` (statistics tables written outside the log's statements), and triggers on the
/// host's `_rt_` tables.
fn authorize_replicated(context: AuthContext<'_>) -> Authorization {
    if HOST_STATEMENT.get() || (component_may(&context.action) && replayable(&context.action)) {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

/// Whether a replay of `action` on another copy of the database does the same (see
/// [`authorize_replicated`]).
fn replayable(action: &AuthAction<'_>) -> bool {
    match action {
        AuthAction::Function { function_name } => !NONDETERMINISTIC_FUNCTIONS.iter().any(|f| function_name.eq_ignore_ascii_case(f)),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::Analyze { .. } => false,
        AuthAction::CreateTrigger { table_name, .. } => !table_name.starts_with("_rt_"),
        _ => true,
    }
}

/// SQL functions that may answer differently on a replay: the clock (`date('now')` and its
/// kin: the date and time functions are refused whole, the arguments are not visible here),
/// randomness, and the connection's state (which a replay's connection does not share).
const NONDETERMINISTIC_FUNCTIONS: &[&str] = &[
    "random", "randomblob", "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff", "current_date",
    "current_time", "current_timestamp", "last_insert_rowid", "changes", "total_changes", "sqlite_version", "sqlite_source_id",
    "sqlite_compileoption_used", "sqlite_compileoption_get", "sqlite_offset",
];

/// What a component's statement may do: read and write its own tables, and create, alter and
/// drop them. Refused, with SQLite's "not authorized": attaching or detaching a database
/// (another user's file), transaction and savepoint control (a `COMMIT` or `ROLLBACK` in the
/// middle of a call would break the one-transaction rule and the output gate), pragmas
/// (journal mode, `writable_schema`, ...), and virtual tables. `VACUUM` (and `VACUUM INTO`)
/// cannot run inside the call's transaction in any case.
fn component_may(action: &AuthAction<'_>) -> bool {
    let host_table = |table: &str| table.starts_with("_rt_");
    let writes_host_table = match action {
        AuthAction::Insert { table_name } | AuthAction::Delete { table_name } | AuthAction::DropTable { table_name } => host_table(table_name),
        AuthAction::Update { table_name, .. } | AuthAction::AlterTable { table_name, .. } => host_table(table_name),
        _ => false,
    };
    !writes_host_table && !matches!(
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
    fn past_the_quota_writes_fail_with_a_clear_error_and_reads_and_deletes_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ActorDb::new(Some(dir.path().join("q.sqlite")), None).with_quota(256 * 1024);
        db.execute("CREATE TABLE t (x TEXT)", vec![]).unwrap();
        db.finish(true).unwrap();
        let big = || vec![Value::Text("x".repeat(20_000))];
        let mut stored = 0;
        let refused = loop {
            match db.execute("INSERT INTO t VALUES (?1)", big()) {
                Ok(_) => {
                    db.finish(true).unwrap();
                    stored += 1;
                    assert!(stored < 100, "the quota never stopped a write");
                }
                Err(e) => break e,
            }
        };
        let after = db.execute("INSERT INTO t VALUES ('small')", vec![]).unwrap_err();
        assert!(after.contains("rolled back"), "SQLite rolled the call back: nothing more runs outside it ({after})");
        db.finish(false).unwrap();
        assert!(refused.starts_with(QUOTA_EXCEEDED), "{refused}");
        assert!(stored >= 5, "{stored} rows fit in 256 KiB");
        let rows = db.query("SELECT count(*) FROM t", vec![]).unwrap();
        assert!(matches!(rows.rows[0][0], Value::Integer(n) if n == stored));
        db.execute("DELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT 3)", vec![]).unwrap();
        db.finish(true).unwrap();
        db.execute("INSERT INTO t VALUES (?1)", big()).expect("a delete made room");
        db.finish(true).unwrap();
    }

    #[test]
    fn a_query_reads_at_most_its_byte_budget_of_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ActorDb::new(Some(dir.path().join("r.sqlite")), None);
        db.execute("CREATE TABLE t (x TEXT)", vec![]).unwrap();
        for _ in 0..20 {
            db.execute("INSERT INTO t VALUES (?1)", vec![Value::Text("y".repeat(1 << 20))]).unwrap();
        }
        db.finish(true).unwrap();
        let refused = db.query("SELECT x FROM t", vec![]).map(|_| ()).unwrap_err();
        assert!(refused.starts_with("The query's result is too large"), "{refused}");
        db.finish(true).unwrap();
        assert!(db.query("SELECT x FROM t LIMIT 8", vec![]).is_ok());
        db.finish(true).unwrap();
    }

    #[test]
    fn a_statement_past_its_deadline_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ActorDb::new(Some(dir.path().join("slow.sqlite")), None);
        let endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";
        let started = Instant::now();
        let stopped = with_deadline(Instant::now() + std::time::Duration::from_millis(200), || db.query(endless, vec![]).map(|_| ()));
        assert_eq!(stopped.unwrap_err(), STATEMENT_TIMED_OUT);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "stopped after {:?}", started.elapsed());
        db.finish(false).unwrap();
        let quick = with_deadline(Instant::now() + std::time::Duration::from_secs(5), || db.query("SELECT 1", vec![]));
        assert!(quick.is_ok(), "a statement within its time runs");
        db.finish(true).unwrap();
    }

    /// Every table of `conn` but the host's, each as its rows in rowid order, in words.
    fn contents(conn: &Connection) -> Vec<(String, Vec<String>)> {
        HOST_STATEMENT.set(true);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_rt_%' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let out = tables
            .into_iter()
            .map(|table| {
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid")).unwrap();
                let width = stmt.column_count();
                let rows = stmt
                    .query_map([], |row| Ok((0..width).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                (table, rows)
            })
            .collect();
        HOST_STATEMENT.set(false);
        out
    }

    /// A small deterministic generator (xorshift), so a failing run can be replayed by its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn real(&mut self) -> f64 {
            match self.below(6) {
                0 => f64::from_bits(self.next()),
                1 => 0.1 + 0.2 * self.below(100) as f64,
                2 => f64::INFINITY,
                3 => -0.0,
                4 => 1.0 / (1 + self.below(1000)) as f64,
                _ => (self.next() as f64) / 3.0,
            }
        }
    }

    /// Random statements through both imports (`execute` and `query`), with `RETURNING`, `INSERT
    /// OR FAIL` part-way, refused functions and temporary tables among them, one call at a
    /// time; each committed call's kept writes are replayed on a second copy, which must then
    /// hold the same tables, row for row, after every call.
    #[test]
    fn a_replay_of_the_kept_writes_gives_the_same_database_after_every_call() {
        for seed in [1u64, 7, 42, 1234, 99_991] {
            let dir = tempfile::tempdir().unwrap();
            let mut owner = ActorDb::new(Some(dir.path().join("owner.sqlite")), None).replicated();
            let replica = open(&dir.path().join("replica.sqlite"), true).unwrap();
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut seq = 0;
            owner.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a, b REAL, c TEXT UNIQUE)", vec![]).unwrap();
            seq += 1;
            apply_entries(&replica, &[(seq, owner.take_writes())]).unwrap();
            owner.finish(true).unwrap();
            for call in 0..150 {
                for _ in 0..=rng.below(4) {
                    let text = |rng: &mut Rng| Value::Text(format!("c{}", rng.below(40)));
                    let (statement, params, through_query): (&str, Vec<Value>, bool) = match rng.below(12) {
                        0 => ("INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)", vec![Value::Integer(rng.below(9) as i64), Value::Real(rng.real()), text(&mut rng)], false),
                        1 => ("INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3) RETURNING id", vec![Value::Integer(rng.below(9) as i64), Value::Real(rng.real()), text(&mut rng)], false),
                        2 => ("INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3) RETURNING id, b", vec![Value::Integer(1), Value::Real(rng.real()), text(&mut rng)], true),
                        3 => ("UPDATE t SET a = a + 1 WHERE id % 3 = ?1 RETURNING a", vec![Value::Integer(rng.below(3) as i64)], true),
                        4 => ("UPDATE t SET b = ?1 WHERE id = ?2", vec![Value::Real(rng.real()), Value::Integer(rng.below(30) as i64)], false),
                        5 => ("DELETE FROM t WHERE id = ?1", vec![Value::Integer(rng.below(30) as i64)], true),
                        6 => ("INSERT OR FAIL INTO t (c) VALUES (?1), (?2)", vec![text(&mut rng), text(&mut rng)], rng.below(2) == 0),
                        7 => ("INSERT INTO t (a) VALUES (last_insert_rowid())", vec![], false),
                        8 => ("CREATE TEMP TABLE scratch (x)", vec![], false),
                        9 => ("SELECT count(*), total(b) FROM t", vec![], true),
                        10 => ("CREATE TRIGGER IF NOT EXISTS sneak AFTER INSERT ON _rt_log_position BEGIN DELETE FROM t; END", vec![], false),
                        _ => ("INSERT OR REPLACE INTO t (id, a, c) VALUES (?1, ?2, ?3)", vec![Value::Integer(rng.below(30) as i64), Value::Blob(vec![rng.below(256) as u8]), text(&mut rng)], false),
                    };
                    let _ = if through_query { owner.query(statement, params).map(|_| ()) } else { owner.execute(statement, params).map(|_| ()) };
                }
                let rolled_back = owner.poisoned().is_some() || rng.below(5) == 0;
                if rolled_back {
                    owner.take_writes();
                    owner.finish(false).unwrap();
                } else {
                    let writes = owner.take_writes();
                    owner.finish(true).unwrap();
                    if !writes.is_empty() {
                        seq += 1;
                        apply_entries(&replica, &[(seq, writes)]).unwrap_or_else(|e| panic!("seed {seed}, call {call}: the replay failed: {e}"));
                    }
                }
                let owner_conn = owner.conn.as_ref().unwrap();
                assert_eq!(contents(owner_conn), contents(&replica), "seed {seed}, after call {call}");
            }
            assert!(contents(&replica)[0].1.len() > 3, "seed {seed}: the run wrote something");
        }
    }

    #[test]
    fn a_catch_up_skips_what_the_file_holds_even_when_the_commit_lands_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.sqlite");
        let mut owner = ActorDb::new(Some(path.clone()), None).replicated();
        owner.execute("CREATE TABLE t (x)", vec![]).unwrap();
        let create = owner.take_writes();
        owner.record_position(1).unwrap();
        owner.finish(true).unwrap();
        // The owner's call: appended as entry 2, its commit still under way (write lock held).
        owner.execute("INSERT INTO t VALUES (1)", vec![]).unwrap();
        let insert = owner.take_writes();
        owner.record_position(2).unwrap();
        let catch_up = open(&path, true).unwrap();
        let entries = vec![(1, create), (2, insert)];
        std::thread::scope(|scope| {
            let replay = scope.spawn(move || apply_entries(&catch_up, &entries));
            std::thread::sleep(std::time::Duration::from_millis(100));
            owner.finish(true).unwrap();
            replay.join().unwrap().expect("the replay waits for the lock, then skips both");
        });
        let rows = owner.query("SELECT count(*) FROM t", vec![]).unwrap();
        assert!(matches!(rows.rows[0][0], Value::Integer(1)), "the row once, not twice: {:?}", rows.rows);
        owner.finish(true).unwrap();
    }

    #[test]
    fn a_file_of_another_log_is_never_taken_as_a_prefix() {
        assert_eq!(compare_log_identity(Some("log-1".into()), 40, "log-1"), LogIdentity::Same);
        assert_eq!(compare_log_identity(None, 0, "log-1"), LogIdentity::Same, "a new file");
        assert_eq!(compare_log_identity(None, 40, "log-1"), LogIdentity::Unrecorded, "a file from before identities");
        assert_eq!(compare_log_identity(Some("log-0".into()), 40, "log-1"), LogIdentity::Other { found: "log-0".into() });
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("id.sqlite"), true).unwrap();
        assert_eq!(read_log_identity(&conn), None);
        write_log_identity(&conn, "log-1").unwrap();
        write_log_identity(&conn, "log-1").unwrap();
        assert_eq!(read_log_identity(&conn).as_deref(), Some("log-1"));
        let mut db = ActorDb::new(Some(dir.path().join("id.sqlite")), None);
        assert!(db.execute("DELETE FROM _rt_log_identity", vec![]).is_err(), "a component cannot touch it");
        db.finish(false).unwrap();
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
