//! The actor runtime: wasmtime engine, component versions, actors and their mailboxes,
//! instances, the per-call transaction and output gate, alarms, and the shared graphql
//! instances. It knows nothing of HTTP: the listener (`server`, `http`) and each socket's
//! task reach it through a [`Runtime`] handle, and reach an actor only through
//! [`Runtime::send`] and [`Runtime::call`]. In a cluster the runtime reaches the other nodes
//! only through [`replication::Replication`], a seam it defines and `cluster` implements: the
//! runtime imports nothing of the cluster.

pub mod actor;
pub mod actors;
pub mod alarms;
pub mod bindings;
/// What one GraphQL document may ask for (`settings.graphql-limits`).
pub use bindings::host_api::settings::{QueryLimits, Retention as EventRetention};
pub mod call;
pub mod components;
pub mod effects;
pub mod engine;
pub mod graphql_pool;
pub mod instance;
pub mod key;
pub mod replication;
pub mod state;
pub mod trusted_documents;
pub mod watcher;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::sockets::{QueueLimits, SocketHub};
use crate::storage::accounts::Accounts;
use crate::storage::connections::ConnectionCache;
use actors::ActorRegistry;
use alarms::Alarms;
use call::{CallContext, CallError, Envelope, Request, Response};
use components::ComponentStore;
use graphql_pool::GraphqlPool;
use key::{ActorKey, ComponentKind};
use replication::Replication;

/// How long a shutdown waits for busy actors to evict.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the runtime is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Every actor's SQLite file lives under `<data_dir>/actors`.
    pub data_dir: PathBuf,
    /// Watched for new component versions.
    pub components_dir: PathBuf,
    pub idle_timeout: Duration,
    /// graphql-ws: how long a socket may wait for `connection_init` (read by user-channel).
    pub init_timeout: Duration,
    pub max_instance_memory: usize,
    pub max_call_time: Duration,
    /// Largest WebSocket message a socket accepts.
    pub max_frame_bytes: usize,
    /// Largest WebSocket message the server sends (the user-channel replaces a larger one by
    /// a GraphQL error; the host drops a socket sent one anyway).
    pub max_outgoing_frame_bytes: usize,
    /// A write of queued messages the peer has not taken in this time drops the socket.
    pub socket_write_timeout: Duration,
    /// The most bytes one actor's database may hold (`--max-user-bytes`).
    pub max_user_bytes: u64,
    /// Frames queued per socket at most.
    pub socket_queue: usize,
    /// Bytes queued per socket at most (a socket that keeps up still gets any one frame).
    pub socket_queue_bytes: usize,
    /// Bytes queued over every socket at most.
    pub max_queued_bytes: usize,
    pub max_sockets_per_user: usize,
    /// Sockets that have not yet authenticated (no header, no `connection_init` yet), at most.
    pub max_anonymous_sockets: usize,
    /// A socket silent this long is pinged, and closed if it stays silent as long again;
    /// `None`: never.
    pub socket_ping_interval: Option<Duration>,
    /// What one GraphQL document may ask for (read by the graphql component).
    pub graphql_limits: QueryLimits,
    /// The most fields a document's response may hold, fragments expanded.
    pub graphql_max_response_fields: u32,
    /// How much of each user's event log the library keeps (`--event-retention`).
    pub event_retention: EventRetention,
    /// Library calls one request (one call into a graphql instance) may make.
    pub max_library_calls: u32,
    /// Envelopes waiting in one actor's mailbox past which publishes are shed.
    pub max_mailbox: usize,
    /// A user's client requests running or waiting for a graphql instance, at most.
    pub max_requests_in_flight: usize,
    /// The documents requests may name by id (`--trusted-documents`, the web app's manifest).
    pub trusted_documents: Arc<trusted_documents::TrustedDocuments>,
}

/// The runtime's parts, and what it is given from outside: the sockets its actors own
/// (host state that outlives instances) and the accounts their imports reach.
pub struct Runtime {
    pub settings: Settings,
    pub engine: wasmtime::Engine,
    pub components: ComponentStore,
    pub actors: ActorRegistry,
    pub alarms: Alarms,
    /// The instances that serve the stateless graphql component to every user.
    pub graphql: GraphqlPool,
    /// SQLite connections of evicted actors, kept for their wake.
    pub connections: Arc<ConnectionCache>,
    pub sockets: SocketHub,
    pub accounts: Arc<Accounts>,
    pub metrics: Metrics,
    /// In cluster mode (`--cluster`): the cluster, through the runtime's seam; library calls
    /// route through it.
    pub replication: OnceLock<Arc<dyn Replication>>,
    /// Flips to true when the runtime begins to stop.
    stopping: watch::Sender<bool>,
}

/// The parts a [`Runtime`] is built from.
pub struct Parts {
    pub settings: Settings,
    pub engine: wasmtime::Engine,
    pub components: ComponentStore,
    pub accounts: Arc<Accounts>,
    pub max_instances: usize,
    pub graphql_instances: usize,
}

impl Runtime {
    pub fn new(parts: Parts) -> Arc<Self> {
        let Parts { settings, engine, components, accounts, max_instances, graphql_instances } = parts;
        let actors = ActorRegistry::new(max_instances, settings.max_mailbox);
        let graphql = GraphqlPool::new(graphql_instances, settings.max_requests_in_flight);
        let sockets = SocketHub::new(QueueLimits::new(settings.socket_queue, settings.socket_queue_bytes, settings.max_queued_bytes));
        Arc::new(Self {
            settings,
            engine,
            components,
            actors,
            alarms: Alarms::default(),
            graphql,
            connections: Arc::default(),
            sockets,
            accounts,
            metrics: Metrics::default(),
            replication: OnceLock::new(),
            stopping: watch::channel(false).0,
        })
    }

    /// Start the runtime's background work: the components-dir watcher, the memory trimmer,
    /// and the shared graphql instances.
    pub fn start(self: &Arc<Self>) {
        watcher::spawn(self.clone());
        crate::memory::spawn_trimmer(self.clone());
        self.graphql.warm_up(self);
        GraphqlPool::spawn_evictor(self);
    }

    /// Put `envelope` in actor `key`'s mailbox (waking the actor if it has no task).
    pub fn send(self: &Arc<Self>, key: ActorKey, envelope: Envelope) {
        self.actors.send(self, key, envelope)
    }

    /// Call actor `key` and wait for the answer. In a cluster, a user's library is called
    /// on the node that owns the user.
    pub async fn call(self: &Arc<Self>, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
        if let (ComponentKind::Library, Some(replication)) = (key.component, self.replication.get()) {
            return replication.clone().route(self, key, request, context).await;
        }
        self.actors.call(self, key, request, context).await
    }

    /// The SQLite file of an actor; anonymous actors have none.
    pub fn actor_db_path(&self, key: &ActorKey) -> Option<PathBuf> {
        let user = key.principal.user()?;
        Some(self.settings.data_dir.join("actors").join(key.component.name()).join(format!("{user}.sqlite")))
    }

    /// Close every actor's database cleanly (the last step of a shutdown): live actors drop
    /// their instances between calls, then every kept connection is closed. Closing
    /// checkpoints each database and removes its write-ahead log, so the next start opens
    /// each file without replaying a log.
    pub async fn close_databases(self: &Arc<Self>) {
        let evictions = self.actors.keys().into_iter().map(|key| self.call(key, Request::Evict, CallContext::default()));
        // An actor in the middle of a call evicts after it; a call is bounded by its CPU
        // budget, but not its waits, so the shutdown does not wait forever.
        if tokio::time::timeout(CLOSE_WAIT, futures::future::join_all(evictions)).await.is_err() {
            tracing::warn!("some actors were still busy after {CLOSE_WAIT:?}; their databases close at exit");
        }
        let connections = self.connections.clone();
        let _ = tokio::task::spawn_blocking(move || connections.close_all()).await;
    }

    /// Begin to stop: background tasks end, sockets close with 1001.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// A receiver that sees the stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}
