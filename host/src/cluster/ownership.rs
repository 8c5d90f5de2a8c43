//! One owner per user: who runs a user's library, and taking a user over.
//!
//! - `rt_nodes` (a KV bucket whose entries lapse after `--lease-ttl`): each node's liveness
//!   key, refreshed every quarter of the TTL with an update at the revision it last wrote.
//!   A node whose refresh fails (paused or cut off until its key lapsed) has lost every
//!   user it held: it forgets them before serving anything more, and registers again.
//! - `rt_owners`: user → node. A node owns a user while it names the node and that node's
//!   liveness key stands; the lease is that pair.
//! - Taking a user over: set `rt_owners` at the revision read (create when absent), only if
//!   the named node is this one or no longer live; append an `owner` marker to the user's log
//!   at the last sequence read (so any append the old owner still tries is refused); bring the
//!   local database up to that sequence from the log (see `catch_up`).
//!
//! Which users this node holds, and in which state of the commit protocol (taking over,
//! owned, appending, committing), is `commit_protocol`'s: this module performs what it says
//! for the take-over and the lease, and tells it what came of that.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use parking_lot::Mutex;

use super::commit_protocol::{Action, CommitProtocol, Event, Term};
use super::{catch_up, log, Cluster, ClusterSettings};
use crate::runtime::call::{CallContext, Request};
use crate::runtime::key::{ActorKey, ComponentKind, Principal, UserId};
use crate::storage::bounded::BoundedMap;

const OWNERS: &str = "rt_owners";
const NODES: &str = "rt_nodes";
/// Other nodes' users remembered (where to route), at most.
const KNOWN_OWNERS: usize = 100_000;
/// Tries at a take-over racing with other nodes before giving up.
const TAKE_OVER_TRIES: usize = 8;

/// Why this node did not take a user.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error("owned by live node {0}")]
    OwnedBy(Arc<str>),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

pub struct Ownership {
    owners: kv::Store,
    nodes: kv::Store,
    ttl: Duration,
    /// Every user's state in the commit protocol, when the lease was last confirmed, and
    /// whether the node left: all that decides what this node may serve (`commit_protocol`).
    protocol: Mutex<CommitProtocol>,
    /// One take-over at a time per user on this node (the tasks that want one wait here; the
    /// protocol refuses a second one regardless).
    taking: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
    /// Where other nodes' users were last seen.
    known: Mutex<BoundedMap<UserId, Arc<str>>>,
    /// The revision of this node's liveness key last written.
    revision: Mutex<u64>,
    /// Other nodes last seen live, and when.
    live_seen: Mutex<HashMap<Arc<str>, Instant>>,
    /// One liveness refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// The node's own runtime (the heartbeat runs on a thread of its own).
    main: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl Ownership {
    pub async fn open(js: &jetstream::Context, settings: &ClusterSettings) -> Result<Self> {
        // Who owns a user, and whose lease stands, are read from the leader (see `Reads`).
        let leader = super::buckets::Reads::Leader;
        let owners = super::buckets::open_bucket(js, kv::Config { bucket: OWNERS.into(), history: 1, ..Default::default() }, settings.replicas, leader).await?;
        let nodes = super::buckets::open_bucket(js, kv::Config { bucket: NODES.into(), history: 1, max_age: settings.lease_ttl, ..Default::default() }, settings.replicas, leader).await?;
        // The lease's time to live is the bucket's (it is what lets a key lapse), whatever this
        // node's flag says: nodes started with other flags agree on it.
        let ttl = super::buckets::max_age(js, NODES).await?.filter(|ttl| !ttl.is_zero()).unwrap_or(settings.lease_ttl);
        if ttl != settings.lease_ttl {
            tracing::warn!(bucket = ?ttl, flag = ?settings.lease_ttl, "--lease-ttl differs from the cluster's; the cluster's applies");
        }
        Ok(Self {
            owners,
            nodes,
            ttl,
            protocol: Mutex::new(CommitProtocol::new(ttl)),
            taking: Mutex::default(),
            known: Mutex::new(BoundedMap::new(KNOWN_OWNERS)),
            revision: Mutex::new(0),
            live_seen: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
            main: std::sync::OnceLock::new(),
        })
    }

    /// The lease's time to live (the bucket's).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this node left the cluster (see [`Ownership::leave`]): it neither refreshes its
    /// lease nor takes a user again, so the users it held go to other nodes.
    pub fn has_left(&self) -> bool {
        self.protocol.lock().has_left()
    }

    /// Write this node's liveness key (at start, and after it lapsed).
    pub async fn register(&self, cluster: &Cluster) -> Result<()> {
        self.register_in(cluster, &self.nodes).await
    }

    async fn register_in(&self, cluster: &Cluster, nodes: &kv::Store) -> Result<()> {
        let started = Instant::now();
        let revision = nodes.put(&*cluster.node, Bytes::from(format!("{}", super::accounts::now_ms()))).await
            .map_err(|e| anyhow!("registering node {}: {e}", cluster.node))?;
        *self.revision.lock() = revision;
        self.protocol.lock().lease_renewed(started);
        Ok(())
    }

    /// Drop this node's liveness key (a clean shutdown).
    pub async fn leave(&self, cluster: &Cluster) {
        // From here no take-over starts (those under way own nothing), and an append of this
        // node is refused before it is sent (the call is not applied, and a routed caller makes
        // it on the next owner).
        let left = self.protocol.lock().leave();
        for (user, actions) in left {
            self.perform(cluster, &user, &actions);
        }
        let _ = self.nodes.purge(&*cluster.node).await;
    }

    /// Apply `event` to `user`'s state in the commit protocol, and give the user up here when
    /// it says so; what it asks beyond that is the caller's to do.
    pub fn on(&self, cluster: &Cluster, user: &UserId, event: Event) -> Vec<Action> {
        let actions = self.protocol.lock().on(user, event);
        self.perform(cluster, user, &actions);
        actions
    }

    /// The protocol's [`Action::Release`]: this node gave `user` up; forget it here (where its
    /// owner is, its snapshot count). Its library instance goes too, as the protocol says
    /// ([`Action::RollBack`], [`Action::DropInstance`]).
    fn perform(&self, cluster: &Cluster, user: &UserId, actions: &[Action]) {
        if actions.contains(&Action::Release) {
            cluster.metrics.leases_lost.fetch_add(1, Relaxed);
            tracing::debug!(%user, node = %cluster.node, "gave the user up");
            self.forget_owner(user);
            catch_up::forget(cluster, user);
        }
    }

    /// Refresh the liveness key (through `nodes`: the heartbeat's own connection, or the
    /// node's); if it had lapsed, forget every user first, register again, and drop the
    /// users' library instances.
    async fn refresh(&self, cluster: &Arc<Cluster>, nodes: &kv::Store) {
        let requested = Instant::now();
        if self.has_left() {
            return;
        }
        let _one = self.refreshing.lock().await;
        let confirmed = self.protocol.lock().lease_confirmed();
        if confirmed.is_some_and(|confirmed| confirmed >= requested) {
            return; // refreshed while this one waited for its turn
        }
        let started = Instant::now();
        let revision = *self.revision.lock();
        let value = Bytes::from(format!("{}", super::accounts::now_ms()));
        match nodes.update(&*cluster.node, value, revision).await {
            Ok(revision) => {
                *self.revision.lock() = revision;
                self.protocol.lock().lease_renewed(started);
                cluster.metrics.leases_renewed.fetch_add(1, Relaxed);
            }
            Err(e) => {
                let key_changed = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
                let lapse = self.protocol.lock().lease_refresh_failed(key_changed, Instant::now());
                // Not a lapse (yet): the key was not changed under us, the write did not happen
                // (NATS unreachable, a stream electing a leader). The lease stands until its TTL
                // since the last refresh; the next tick tries again.
                let Some(lost) = lapse else {
                    tracing::debug!(node = %cluster.node, "could not refresh the lease ({e}); trying again");
                    return;
                };
                tracing::warn!(node = %cluster.node, "this node's lease lapsed ({e}); giving up its users");
                let mut dropped = Vec::new();
                for (user, actions) in lost {
                    self.perform(cluster, &user, &actions);
                    if actions.contains(&Action::DropInstance) {
                        dropped.push(user);
                    }
                }
                if let Err(e) = self.register_in(cluster, nodes).await {
                    tracing::warn!("could not register again: {e:#}");
                }
                self.evict_libraries(cluster, dropped);
            }
        }
    }

    /// Drop the library instances of users this node gave up (on the node's own runtime).
    fn evict_libraries(&self, cluster: &Arc<Cluster>, users: Vec<UserId>) {
        let (Some(runtime), Some(main)) = (cluster.runtime(), self.main.get()) else { return };
        main.spawn(async move {
            for user in users {
                let key = ActorKey::new(ComponentKind::Library, Principal::User(user));
                let _ = runtime.actors.call(&runtime, key, Request::Evict, CallContext::default()).await;
            }
        });
    }

    /// Whether this node's lease is known to stand now; if not, refresh it first (a node
    /// that was paused finds out here, before it serves a user it may have lost).
    pub async fn confirm_live(&self, cluster: &Arc<Cluster>) {
        let due = self.protocol.lock().lease_due(Instant::now());
        if due {
            self.refresh(cluster, &self.nodes).await;
        }
    }

    /// The sequence of the user's last log entry, if this node holds the user (its calls run
    /// here).
    pub fn owned_at(&self, user: &str) -> Option<u64> {
        self.protocol.lock().held(user)
    }

    /// Whether this node may answer a read of `user` now, by its own monotonic clock: it owns
    /// the user, and its lease, last confirmed when a refresh was sent, has a margin left (a
    /// read answered after the lease lapsed could miss writes a new owner acknowledged).
    pub fn serves(&self, user: &str) -> bool {
        self.protocol.lock().serves(user, Instant::now())
    }

    pub fn owned_count(&self) -> usize {
        self.protocol.lock().held_count()
    }

    /// The node that owns `user`, as last seen or as `rt_owners` says (`None`: nobody yet).
    pub async fn owner_of(&self, user: &UserId) -> Result<Option<Arc<str>>> {
        if let Some(node) = self.known.lock().get(user) {
            return Ok(Some(node.clone()));
        }
        let entry = self.owners.entry(&**user).await.map_err(|e| anyhow!("reading the owner of {user}: {e}"))?;
        Ok(entry.filter(|e| e.operation == kv::Operation::Put).map(|e| Arc::from(String::from_utf8_lossy(&e.value).as_ref())))
    }

    pub fn remember_owner(&self, user: &UserId, node: Arc<str>) {
        self.known.lock().insert(user.clone(), node);
    }

    pub fn forget_owner(&self, user: &str) {
        self.known.lock().remove(user);
    }

    /// Whether `node`'s liveness key stood a moment ago (read again after a quarter of the
    /// lease's time to live).
    pub async fn is_live_recently(&self, node: &Arc<str>) -> Result<bool> {
        if self.live_seen.lock().get(node).is_some_and(|seen| seen.elapsed() < self.ttl / 4) {
            return Ok(true);
        }
        let live = self.is_live(node).await?;
        if live {
            self.live_seen.lock().insert(node.clone(), Instant::now());
        }
        Ok(live)
    }

    /// Whether `node`'s liveness key stands.
    pub async fn is_live(&self, node: &str) -> Result<bool> {
        let entry = self.nodes.entry(node).await.map_err(|e| anyhow!("reading the liveness of {node}: {e}"))?;
        Ok(entry.is_some_and(|e| e.operation == kv::Operation::Put))
    }

    /// Take `user` over (see the module's doc, and `commit_protocol` for its states); the
    /// sequence of its log's last entry.
    pub async fn take(&self, cluster: &Arc<Cluster>, user: &UserId) -> Result<u64, TakeError> {
        let turn = TakingTurn::new(&self.taking, user);
        let _one = turn.lock.lock().await;
        let start = self.protocol.lock().take_over(user);
        let term = match start[..] {
            [Action::TakeLease { term }] => term,
            [Action::AlreadyHeld { last }] => return Ok(last),
            [Action::Refuse(why)] => return Err(TakeError::Failed(anyhow!("{why}"))),
            _ => unreachable!("a take-over starts with {start:?}"),
        };
        // Every way out that does not finish it (an error, another live owner, the caller
        // gone) ends the take-over.
        let _ends = TakeOverEnds { protocol: &self.protocol, user, term };
        self.confirm_live(cluster).await;
        self.take_lease(cluster, user).await?;
        let started = Instant::now();
        let mut last = cluster.log.last(user).await?;
        let marker = loop {
            match cluster.log.append(user, last, log::encode_owner(&cluster.node), &cluster.node).await {
                Ok(marker) => break marker,
                Err(log::AppendError::Fenced) => last = cluster.log.last(user).await?,
                Err(e) => return Err(anyhow!(e).into()),
            }
        };
        let through = match self.on(cluster, user, Event::MarkerAppended { term, last, marker })[..] {
            [Action::CatchUp { through, .. }] => through,
            _ => return Err(overtaken(user)),
        };
        let replayed = catch_up::run(cluster, user, through).await?;
        cluster.metrics.catch_ups.record(started.elapsed());
        cluster.metrics.entries_replayed.fetch_add(replayed, Relaxed);
        if !matches!(self.on(cluster, user, Event::CaughtUp { term })[..], [Action::Announce]) {
            return Err(overtaken(user));
        }
        cluster.metrics.leases_taken.fetch_add(1, Relaxed);
        self.forget_owner(user);
        cluster.events.took_over(user);
        tracing::debug!(%user, node = %cluster.node, replayed, "took the user over");
        Ok(marker)
    }

    /// Name this node in `rt_owners` for `user`, if no other live node is named.
    async fn take_lease(&self, cluster: &Cluster, user: &UserId) -> Result<(), TakeError> {
        let me: &str = &cluster.node;
        for _ in 0..TAKE_OVER_TRIES {
            let entry = self.owners.entry(&**user).await.map_err(|e| anyhow!("reading the owner of {user}: {e}"))?;
            let written = match entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    let holder = String::from_utf8_lossy(&entry.value).to_string();
                    if holder != me && self.is_live(&holder).await? {
                        let holder: Arc<str> = holder.into();
                        self.remember_owner(user, holder.clone());
                        return Err(TakeError::OwnedBy(holder));
                    }
                    match self.owners.update(&**user, Bytes::from(me.to_string()), entry.revision).await {
                        Ok(_) => true,
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                        Err(e) => return Err(anyhow!("writing the owner of {user}: {e}").into()),
                    }
                }
                _ => match self.owners.create(&**user, Bytes::from(me.to_string())).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                    Err(e) => return Err(anyhow!("writing the owner of {user}: {e}").into()),
                },
            };
            if written {
                return Ok(());
            }
        }
        Err(anyhow!("could not take {user} over: other nodes kept changing its owner").into())
    }
}

fn overtaken(user: &UserId) -> TakeError {
    TakeError::Failed(anyhow!("the take-over of {user} was overtaken: this node's lease lapsed, or it left"))
}

/// A take-over under way: dropped before it finished, it failed (a finished one ignores that).
struct TakeOverEnds<'a> {
    protocol: &'a Mutex<CommitProtocol>,
    user: &'a UserId,
    term: Term,
}

impl Drop for TakeOverEnds<'_> {
    fn drop(&mut self) {
        // Never gives a user up (`TakeOverFailed` has no actions): nothing to perform.
        self.protocol.lock().on(self.user, Event::TakeOverFailed { term: self.term });
    }
}

/// A task's turn at taking a user over; the user's lock goes once no other task waits for it.
struct TakingTurn<'a> {
    taking: &'a Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
    user: &'a UserId,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> TakingTurn<'a> {
    fn new(taking: &'a Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>, user: &'a UserId) -> Self {
        let lock = taking.lock().entry(user.clone()).or_default().clone();
        Self { taking, user, lock }
    }
}

impl Drop for TakingTurn<'_> {
    fn drop(&mut self) {
        let mut taking = self.taking.lock();
        // Only the map and this turn hold it: no other task waits (they clone it under this lock).
        if Arc::strong_count(&self.lock) == 2 && taking.get(self.user).is_some_and(|lock| Arc::ptr_eq(lock, &self.lock)) {
            taking.remove(self.user);
        }
    }
}

/// Refresh this node's liveness every quarter of the lease's time to live, on a thread of
/// its own with a NATS connection of its own: a node busy with its sockets and calls (or
/// starved of CPU) must not lose its users for want of a turn on its own runtime.
pub fn spawn_heartbeat(cluster: Arc<Cluster>) -> Result<()> {
    let _ = cluster.ownership.main.set(tokio::runtime::Handle::current());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("cluster-lease".into()).spawn(move || {
        runtime.block_on(async move {
            let nodes = match lease_connection(&cluster).await {
                Ok(nodes) => nodes,
                Err(e) => {
                    tracing::error!("the lease's connection failed ({e:#}); refreshing through the node's own");
                    cluster.ownership.nodes.clone()
                }
            };
            let mut every = tokio::time::interval(cluster.ownership.ttl / 4);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // A node that is stopping keeps its lease until it has left (its calls in
                // flight finish under it; a lapse would make their callers give up on them).
                match cluster.runtime() {
                    Some(_) if !cluster.ownership.has_left() => cluster.ownership.refresh(&cluster, &nodes).await,
                    _ => return,
                }
            }
        })
    })?;
    Ok(())
}

async fn lease_connection(cluster: &Cluster) -> Result<kv::Store> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("realtime-host {} (lease)", cluster.node))
        .connect(super::servers(&cluster.settings.url)?)
        .await?;
    Ok(jetstream::new(client).get_key_value(NODES).await?)
}
