//! Open SQLite connections of recently evicted actors, kept (up to a bound) so that waking
//! an actor does not reopen its file and re-prepare its statements.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::Connection;

/// Connections kept at most (each holds about three file descriptors with WAL).
pub const KEPT_CONNECTIONS: usize = 256;

#[derive(Default)]
pub struct ConnectionCache {
    kept: Mutex<VecDeque<(PathBuf, Connection)>>,
}

impl ConnectionCache {
    /// The kept connection to `path`, if any.
    pub fn take(&self, path: &Path) -> Option<Connection> {
        let mut kept = self.kept.lock();
        let index = kept.iter().position(|(p, _)| p == path)?;
        kept.remove(index).map(|(_, conn)| conn)
    }

    /// Close every kept connection.
    pub fn close_all(&self) {
        let kept = std::mem::take(&mut *self.kept.lock());
        drop(kept);
    }

    /// Keep a connection (with no transaction open, its page cache already shed by
    /// `ActorDb`); the oldest goes when full.
    pub fn give_back(&self, path: PathBuf, conn: Connection) {
        let mut kept = self.kept.lock();
        if kept.len() >= KEPT_CONNECTIONS {
            kept.pop_front();
        }
        kept.push_back((path, conn));
    }
}
