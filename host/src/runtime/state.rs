//! What a component instance's store holds: the actor's identity, its database,
//! WASI context, resource limits, and the per-call state (effects held back by the
//! output gate, staged attachments, time spent waiting on the host).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::call::CallContext;
use super::key::{ActorKey, UserId};
use super::Runtime;
use crate::sockets::SocketId;
use crate::storage::actor_db::ActorDb;

/// Something a call did that the world may only see once the call commits.
#[derive(Debug)]
pub enum Effect {
    Publish { channel: String, event: String },
    Send { socket: SocketId, text: crate::sockets::Utf8Bytes },
    Close { socket: SocketId, code: u16, reason: String },
    /// Hand a socket to the user-channel actor of this user (after `authenticate`).
    Transfer { socket: SocketId, user: UserId },
    SetAlarm(u64),
    ClearAlarm,
}

/// State that lives for one call.
#[derive(Default)]
pub struct CallState {
    pub context: CallContext,
    pub effects: Vec<Effect>,
    /// Attachments written by this call, applied at commit.
    pub attachments: HashMap<SocketId, Arc<str>>,
    started: Option<Instant>,
    waited: Duration,
    /// Nanoseconds the guest spent yielded to the executor (added by the yield future).
    pub yielded: Arc<AtomicU64>,
    /// Library calls this call has made (capped by `--max-library-calls`).
    pub library_calls: u32,
    /// The frames this call sent, counted against the sockets' budgets until it ends.
    pub held: crate::sockets::HeldFrames,
    /// The last frame this call sent: a frame with the same bytes shares its buffer.
    pub last_frame: Option<crate::sockets::Utf8Bytes>,
    /// For a call on a pooled graphql instance: after this it starts no more library calls
    /// (see `graphql_pool::MAX_HOLD_CALLS`).
    pub hold_until: Option<Instant>,
}

impl CallState {
    pub fn new(context: CallContext) -> Self {
        Self { context, started: Some(Instant::now()), ..Self::default() }
    }

    /// Time the guest itself has run in this call: wall time minus time spent waiting
    /// for other actors and time spent yielded to the executor (queued behind other tasks).
    pub fn busy(&self) -> Duration {
        let yielded = Duration::from_nanos(self.yielded.load(Ordering::Relaxed));
        self.started.map(|s| s.elapsed().saturating_sub(self.waited).saturating_sub(yielded)).unwrap_or_default()
    }

    /// Whether the call has held its instance past [`CallState::hold_until`].
    pub fn held_too_long(&self) -> bool {
        self.hold_until.is_some_and(|until| Instant::now() >= until)
    }

    /// Record time spent waiting on another actor (not charged to this call's deadline).
    pub fn add_wait(&mut self, waited: Duration) {
        self.waited += waited;
    }
}

pub struct ActorState {
    pub key: ActorKey,
    pub runtime: Arc<Runtime>,
    pub db: ActorDb,
    pub call: CallState,
    pub limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl ActorState {
    pub fn new(key: ActorKey, runtime: Arc<Runtime>) -> Self {
        let db = actor_db(&runtime, &key);
        let limits = StoreLimitsBuilder::new()
            .memory_size(runtime.settings.max_instance_memory)
            .instances(64)
            .tables(64)
            .memories(4)
            .build();
        let wasi = WasiCtx::builder().inherit_stderr().build();
        Self { key, runtime, db, call: CallState::default(), limits, wasi, table: ResourceTable::new() }
    }
}

impl ActorState {
    /// Await `work` (another actor, the graphql pool, password hashing): the time is not
    /// charged to this call's CPU budget.
    pub async fn waiting<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let result = work.await;
        self.call.add_wait(started.elapsed());
        result
    }
}

/// The database of actor `key`, reusing a kept connection when it wakes.
fn actor_db(runtime: &Runtime, key: &ActorKey) -> ActorDb {
    let db = ActorDb::new(runtime.actor_db_path(key), Some(runtime.connections.clone())).with_quota(runtime.settings.max_user_bytes);
    // In a cluster a library's writes go to the user log (the only actor with a database).
    if runtime.replication.get().is_some() && key.principal.user().is_some() {
        db.replicated()
    } else {
        db
    }
}

impl WasiView for ActorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
