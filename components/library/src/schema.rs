//! The database schema and its migrations. The applied version lives in the
//! `kv` import under [`VERSION_KEY`]; [`ensure`] runs at the start of every call
//! and is a no-op once this instance has seen a call commit with the schema current.

use crate::db;
use crate::host::{kv, log};
use std::cell::Cell;

const VERSION_KEY: &str = "library/schema-version";

/// Migration `i` brings the schema from version `i` to `i + 1`; append only.
/// AUTOINCREMENT keeps ids (and so global ids and cursors) from ever being reused.
pub(crate) const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS story (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        url TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT,
        created_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS tag (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        color TEXT NOT NULL,
        created_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS story_tag (
        story_id INTEGER NOT NULL REFERENCES story(id) ON DELETE CASCADE,
        tag_id INTEGER NOT NULL REFERENCES tag(id) ON DELETE CASCADE,
        PRIMARY KEY (story_id, tag_id)
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS story_tag_by_tag ON story_tag (tag_id, story_id)",
], &[
    // Row counts kept by triggers, so `library:change` and `totalCount` do not scan the
    // whole table on every mutation (COUNT(*) is linear in the library's size).
    "CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR REPLACE INTO totals (name, n) VALUES
        ('story', (SELECT COUNT(*) FROM story)), ('tag', (SELECT COUNT(*) FROM tag))",
    "CREATE TRIGGER IF NOT EXISTS story_added AFTER INSERT ON story
        BEGIN UPDATE totals SET n = n + 1 WHERE name = 'story'; END",
    "CREATE TRIGGER IF NOT EXISTS story_removed AFTER DELETE ON story
        BEGIN UPDATE totals SET n = n - 1 WHERE name = 'story'; END",
    "CREATE TRIGGER IF NOT EXISTS tag_added AFTER INSERT ON tag
        BEGIN UPDATE totals SET n = n + 1 WHERE name = 'tag'; END",
    "CREATE TRIGGER IF NOT EXISTS tag_removed AFTER DELETE ON tag
        BEGIN UPDATE totals SET n = n - 1 WHERE name = 'tag'; END",
], crate::event_log::MIGRATION, crate::event_log::RING_MIGRATION, crate::idempotency::MIGRATION];

thread_local! {
    /// Set once a call that found the schema current has committed (see [`mark_committed`]):
    /// a migration run by a call that then fails is rolled back with it.
    static CURRENT: Cell<bool> = const { Cell::new(false) };
}

/// Bring the schema up to date, unless this instance already knows it is.
pub fn ensure() -> Result<(), String> {
    if CURRENT.get() {
        return Ok(());
    }
    let from = stored_version()?;
    let target = MIGRATIONS.len();
    if from > target {
        return Err(format!("library schema version {from} is newer than this component ({target})"));
    }
    for (version, statements) in MIGRATIONS.iter().enumerate().skip(from) {
        for statement in *statements {
            db::execute(statement, &[])?;
        }
        if version + 1 == 4 {
            crate::event_log::forget_epoch();
        }
        log::log(log::Level::Info, &format!("library schema migrated to version {}", version + 1));
    }
    if from < target {
        kv::put(VERSION_KEY, target.to_string().as_bytes());
    }
    Ok(())
}

/// The row count of `table` (`story` or `tag`), kept by the triggers of migration 2.
pub fn total(table: &str) -> Result<i64, String> {
    db::query_int("SELECT n FROM totals WHERE name = ?", &[db::text(table)])
}

/// The call succeeded, so its migrations (if any) commit: skip the check from now on.
pub fn mark_committed() {
    CURRENT.set(true);
}

fn stored_version() -> Result<usize, String> {
    let Some(bytes) = kv::get(VERSION_KEY) else {
        return Ok(0);
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unreadable library schema version {bytes:?}"))
}
