//! Process-wide SQLite settings, made once at start before any database is opened.
//!
//! The host keeps one connection per live or recently evicted actor, so what SQLite sets up
//! per connection is paid per user. By default each connection gets a lookaside allocator
//! (about 120 KiB, every slot touched at open) and each page cache 20 pages allocated in
//! bulk at its first read (about 86 KiB): for a small, mostly idle library that is most of
//! a live user's memory. Both are turned off; pages are allocated as they are used.

use std::ffi::c_int;

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
