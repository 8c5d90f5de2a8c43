//! Process-wide SQLite settings, made once at start before any database is opened: the
//! memory each connection sets up, and how durable a commit is (`--durability`).
//!
//! The host keeps one connection per live or recently evicted actor, so what SQLite sets up
//! per connection is paid per user. By default each connection gets a lookaside allocator
//! (about 120 KiB, every slot touched at open) and each page cache 20 pages allocated in
//! bulk at its first read (about 86 KiB): for a small, mostly idle library that is most of
//! a live user's memory. Both are turned off; pages are allocated as they are used.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::ffi;

/// Apply the settings. Call once, at start, before any connection is opened and while the
/// process has one thread.
pub fn configure() {
    // SAFETY: sqlite3_config may only run before SQLite is initialized (no connection opened
    // yet) and with no other thread using SQLite: both hold at start. A failure (SQLITE_MISUSE
    // if SQLite was initialized already) leaves the defaults in place, which is harmless.
    unsafe {
        let lookaside = ffi::sqlite3_config(ffi::SQLITE_CONFIG_LOOKASIDE, 0 as c_int, 0 as c_int);
        let page_cache =
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_PAGECACHE, std::ptr::null_mut::<std::ffi::c_void>(), 0 as c_int, 0 as c_int);
        if lookaside != ffi::SQLITE_OK || page_cache != ffi::SQLITE_OK {
            tracing::warn!(lookaside, page_cache, "SQLite kept its default per-connection memory settings");
        }
    }
}

/// What an acknowledged commit survives. Every database (accounts and every actor's) uses
/// write-ahead logging; this is its `synchronous` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// The log is synced to disk at each commit (`synchronous = FULL`): an acknowledged
    /// mutation survives a crash of the process, of the OS and a power loss.
    Full,
    /// The log is synced only at checkpoints (`synchronous = NORMAL`): an acknowledged
    /// mutation survives a crash of the process (kill -9); an OS crash or a power loss may
    /// lose the last commits before a checkpoint, never the database's consistency.
    Normal,
}

static FULL: AtomicBool = AtomicBool::new(false);

/// Set how durable commits are, for every database opened from now on. Call at start.
pub fn set_durability(durability: Durability) {
    FULL.store(durability == Durability::Full, Ordering::Relaxed);
}

/// The `PRAGMA synchronous` statement for the configured durability.
pub fn synchronous_pragma() -> &'static str {
    if FULL.load(Ordering::Relaxed) {
        "PRAGMA synchronous = FULL;"
    } else {
        "PRAGMA synchronous = NORMAL;"
    }
}
