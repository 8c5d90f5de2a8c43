//! Bringing a user's local database up to a sequence of its log (a take-over), and the
//! snapshots that bound that replay.
//!
//! The local file records the log entry it holds (`_rt_log_position`, written in the same
//! transaction as the entry's writes). A catch-up replays the entries after it; a node
//! with no file (a new node, or its data dir lost) first restores the user's newest
//! snapshot from the `rt_snapshots` object store. The owner stores a snapshot after every
//! `--snapshot-every` entries: a consistent copy of its file (`VACUUM INTO` on a second
//! connection, which reads the last commit), named `<user>`, its position inside it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use async_nats::jetstream::{self, object_store};
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::mpsc;

use super::log::Entry;
use super::Cluster;
use crate::runtime::key::{ActorKey, ComponentKind, Principal, UserId};
use crate::storage::actor_db::{self, apply_entries, compare_log_identity, read_log_identity, read_position, write_log_identity, LogIdentity, Write};

const SNAPSHOTS: &str = "rt_snapshots";

pub struct Snapshots {
    store: object_store::ObjectStore,
    /// Per user owned here: entries committed since its last snapshot (as far as this node
    /// knows), and whether one is being stored now.
    since: Mutex<std::collections::HashMap<UserId, SinceSnapshot>>,
}

impl Snapshots {
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self> {
        let store = super::buckets::open_object_store(js, SNAPSHOTS, replicas).await?;
        Ok(Self { store, since: Mutex::default() })
    }
}

#[derive(Default)]
struct SinceSnapshot {
    entries: u64,
    storing: bool,
}

fn library_path(cluster: &Cluster, user: &UserId) -> Result<PathBuf> {
    let runtime = cluster.runtime().ok_or_else(|| anyhow!("the node is shutting down"))?;
    runtime
        .actor_db_path(&ActorKey::new(ComponentKind::Library, Principal::User(user.clone())))
        .ok_or_else(|| anyhow!("a user's library has a database"))
}

/// Entries read from the log ahead of the replay (the channel between them is bounded).
const READ_AHEAD: usize = 256;
/// Entries applied in one transaction at most.
const BATCH: usize = 256;

/// Bring the user's local database to log entry `through`; how many entries it applied.
///
/// The SQLite work (opening, restoring, replaying) runs on blocking threads, never on the
/// runtime's workers: a failover is many users caught up at once, on a node that keeps
/// serving its sockets. The replay applies what the log has delivered so far in one
/// transaction (at most [`BATCH`] entries), so it keeps up with the reading.
pub async fn run(cluster: &Arc<Cluster>, user: &UserId, through: u64) -> Result<u64> {
    let runtime = cluster.runtime().ok_or_else(|| anyhow!("the node is shutting down"))?;
    let path = library_path(cluster, user)?;
    let cached = runtime.connections.take(&path);
    let (conn, local) = blocking({
        let (path, user, log) = (path.clone(), user.clone(), cluster.log.identity().to_string());
        move || open_at_most(cached, &path, &user, through, &log)
    })
    .await?;
    let (conn, local) = match local == 0 && through > 0 {
        true => match restore_snapshot(cluster, user, &path, through, conn).await? {
            Restored::Snapshot(conn, seq) => (conn, seq),
            Restored::Nothing(conn) => (conn, 0),
        },
        false => (conn, local),
    };
    let (entries, received) = mpsc::channel::<(u64, Entry)>(READ_AHEAD);
    // Started now (not when awaited): it drains the channel the reading fills.
    let replay = tokio::task::spawn_blocking({
        let user = user.clone();
        move || replay(conn, received, &user)
    });
    let read = cluster.log.read(user, local, through, &entries).await;
    drop(entries);
    // The replay's error, when it failed, is why the reading stopped.
    let (conn, applied) = replay.await.map_err(|e| anyhow!("the replay of {user}'s log stopped: {e}"))??;
    read?;
    runtime.connections.give_back(path, conn);
    // The entries replayed are the ones no snapshot holds yet.
    cluster.snapshots.since.lock().insert(user.clone(), SinceSnapshot { entries: applied, storing: false });
    Ok(applied)
}

/// Apply the entries `received` to `conn` as they come, in transactions of what has arrived
/// (at most [`BATCH`] entries); the connection and how many entries it applied.
fn replay(conn: Connection, mut received: mpsc::Receiver<(u64, Entry)>, user: &UserId) -> Result<(Connection, u64)> {
    let mut applied = 0;
    let mut batch: Vec<(u64, Vec<Write>)> = Vec::with_capacity(BATCH);
    while let Some(first) = received.blocking_recv() {
        batch.push(writes_of(first));
        while batch.len() < BATCH {
            let Ok(next) = received.try_recv() else { break };
            batch.push(writes_of(next));
        }
        let (from, to) = (batch[0].0, batch[batch.len() - 1].0);
        apply_entries(&conn, &batch).map_err(|e| anyhow!("replaying entries {from}..={to} of {user}'s log: {e}"))?;
        applied += batch.len() as u64;
        batch.clear();
    }
    Ok((conn, applied))
}

/// An entry's writes (an owner marker has none; it only moves the position).
fn writes_of((seq, entry): (u64, Entry)) -> (u64, Vec<Write>) {
    match entry {
        Entry::Owner(_) => (seq, Vec::new()),
        Entry::Writes(writes) => (seq, writes),
    }
}

/// Run SQLite and file work on a blocking thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| anyhow!("a catch-up's blocking task failed: {e}"))?
}

/// The user's database (the cached connection, or the file opened) and the entry it holds.
/// A file of another log (the cluster's log was lost and made again) is an error the operator
/// resolves (README, "A cluster"): it is never merged into the new log's history. A file of
/// this log that is ahead of `through` is started again (the log is the truth).
fn open_at_most(cached: Option<Connection>, path: &Path, user: &UserId, through: u64, log: &str) -> Result<(Connection, u64)> {
    let conn = match cached {
        Some(conn) => conn,
        None => open(path)?,
    };
    let local = read_position(&conn);
    match compare_log_identity(read_log_identity(&conn), local, log) {
        LogIdentity::Same | LogIdentity::Unrecorded => write_log_identity(&conn, log).map_err(|e| anyhow!("{}: {e}", path.display()))?,
        LogIdentity::Other { found } => anyhow::bail!(
            "the local copy of {user} ({}) was made from another cluster log ({found}; the cluster's is {log}): \
             not merged. Move the file away to rebuild it from the cluster's log (README, \"A cluster\")",
            path.display()
        ),
    }
    if local <= through {
        return Ok((conn, local));
    }
    tracing::warn!(%user, local, through, "the local database is ahead of the log; starting it again");
    drop(conn);
    remove_database(path);
    let conn = open(path)?;
    write_log_identity(&conn, log).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((conn, 0))
}

fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    actor_db::open(path, true).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// What [`restore_snapshot`] left in place.
enum Restored {
    /// The snapshot, holding the entry numbered.
    Snapshot(Connection, u64),
    /// No snapshot to restore: the database as it was.
    Nothing(Connection),
}

/// Put the user's newest snapshot (if any, and not past `through`) in place of its file.
async fn restore_snapshot(cluster: &Cluster, user: &UserId, path: &Path, through: u64, conn: Connection) -> Result<Restored> {
    let snapshots = &cluster.snapshots;
    let Ok(info) = snapshots.store.info(&**user).await else { return Ok(Restored::Nothing(conn)) };
    let seq: u64 = info.metadata.get("seq").and_then(|s| s.parse().ok()).unwrap_or(0);
    if seq == 0 || seq > through {
        return Ok(Restored::Nothing(conn));
    }
    let mut object = snapshots.store.get(&**user).await.map_err(|e| anyhow!("reading the snapshot of {user}: {e}"))?;
    let mut bytes = Vec::with_capacity(info.size);
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.context("reading a snapshot")?;
    let size = bytes.len();
    let (conn, used) = blocking({
        let (path, user, log) = (path.to_path_buf(), user.clone(), cluster.log.identity().to_string());
        move || {
            drop(conn);
            remove_database(&path);
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            let conn = open(&path)?;
            anyhow::ensure!(read_position(&conn) == seq, "the snapshot of {user} does not hold the entry it is named for");
            if let LogIdentity::Other { found } = compare_log_identity(read_log_identity(&conn), seq, &log) {
                // A snapshot of a log that is gone: the replay starts from the log's first entry.
                tracing::warn!(%user, found, "a snapshot of another cluster log: not used");
                drop(conn);
                remove_database(&path);
                let conn = open(&path)?;
                write_log_identity(&conn, &log).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                return Ok((conn, false));
            }
            Ok((conn, true))
        }
    })
    .await?;
    if !used {
        return Ok(Restored::Nothing(conn));
    }
    cluster.metrics.snapshots_restored.fetch_add(1, Relaxed);
    tracing::info!(%user, seq, bytes = size, "restored a snapshot");
    Ok(Restored::Snapshot(conn, seq))
}

/// This node gave `user` up: nothing more to count toward its snapshots here.
pub fn forget(cluster: &Cluster, user: &UserId) {
    cluster.snapshots.since.lock().remove(user);
}

/// After the owner committed an entry of `user`'s log: store a snapshot once
/// `--snapshot-every` of the user's entries went by since the last one (in the background;
/// one at a time per user).
pub fn after_commit(cluster: &Arc<Cluster>, user: &UserId) {
    let every = cluster.settings.snapshot_every;
    if every == 0 {
        return;
    }
    {
        let mut since = cluster.snapshots.since.lock();
        let state = since.entry(user.clone()).or_default();
        state.entries += 1;
        if state.entries < every || state.storing {
            return;
        }
        state.storing = true;
    }
    let (cluster, user) = (cluster.clone(), user.clone());
    tokio::spawn(async move {
        let stored = store_snapshot(&cluster, &user).await;
        if let Err(e) = &stored {
            tracing::warn!(%user, "could not store a snapshot: {e:#}");
        }
        let mut since = cluster.snapshots.since.lock();
        let state = since.entry(user).or_default();
        state.storing = false;
        if stored.is_ok() {
            state.entries = 0;
        }
    });
}

async fn store_snapshot(cluster: &Cluster, user: &UserId) -> Result<u64> {
    let path = library_path(cluster, user)?;
    let copy = path.with_extension("snapshot");
    let (source, target) = (path.clone(), copy.clone());
    let seq = tokio::task::spawn_blocking(move || -> Result<u64> {
        let _ = std::fs::remove_file(&target);
        let conn = Connection::open_with_flags(&source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
        Ok(read_position(&Connection::open_with_flags(&target, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?))
    })
    .await??;
    let mut file = tokio::fs::File::open(&copy).await?;
    let mut meta = object_store::ObjectMetadata::from(&**user);
    meta.metadata.insert("seq".into(), seq.to_string());
    cluster.snapshots.store.put(meta, &mut file).await.map_err(|e| anyhow!("storing the snapshot of {user}: {e}"))?;
    let _ = tokio::fs::remove_file(&copy).await;
    cluster.metrics.snapshots_stored.fetch_add(1, Relaxed);
    tracing::debug!(%user, seq, "stored a snapshot");
    Ok(seq)
}
