//! Cluster mode (`--cluster nats://…`): several realtime-host nodes share users through NATS
//! JetStream. Without `--cluster` none of this runs and no NATS is needed.
//!
//! - [`ownership`]: one owner per user. A user's library (the only actor with a database)
//!   runs on exactly one node at a time: the owner named in the `rt_owners` bucket, whose
//!   liveness key in `rt_nodes` lapses when it stops refreshing it.
//! - [`log`]: each committed library call's writes, appended to the user's subject of the
//!   `RT_LOG` stream before the call commits locally (and so before its response and events
//!   leave), at the sequence the owner expects: the fencing. A node's SQLite file is a cache
//!   of that log at a known sequence; a new owner catches up from it.
//! - [`commit_protocol`]: the one owner of each user's state on this node (taking over, owned,
//!   appending, committing, given up), a state machine without I/O whose invariants are
//!   written there; `ownership`, `seam` and the runtime's actor do what it says.
//! - [`routing`]: library calls for a user owned elsewhere go to the owner (NATS
//!   request/reply); stateless work (graphql, sockets) runs where the request landed.
//! - [`events`]: what a library publishes reaches every node holding that user's sockets, in
//!   order, with gaps (core NATS may drop) filled from the owner.
//! - [`accounts`]: users and sessions in the `rt_accounts` bucket, and sign-outs broadcast.
//! - [`swaps`]: component versions in the `rt_components` object store, installed everywhere.
//! - [`patience`]: waiting out the errors JetStream gives while it starts or elects a leader.
//! - `seam`: [`Cluster`] implements the runtime's `Replication` seam, the only way the runtime
//!   reaches the cluster (the runtime imports nothing from here).

pub mod accounts;
pub mod buckets;
pub mod catch_up;
pub mod commit_protocol;
pub mod events;
pub mod log;
pub mod metrics;
pub mod ownership;
pub mod patience;
pub mod routing;
mod seam;
pub mod swaps;
pub mod server_version;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream;

use crate::runtime::Runtime;
use metrics::ClusterMetrics;

/// What `--cluster`, `--node-id` and `--lease-ttl` say.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub url: String,
    pub node_id: String,
    /// A node that has not refreshed its liveness key for this long has lost its users.
    pub lease_ttl: Duration,
    /// A snapshot of a user's database is stored after this many log entries (0: never).
    pub snapshot_every: u64,
    /// Copies of each stream and bucket the cluster creates (NATS servers that must fail
    /// before anything acknowledged is lost; at most the NATS cluster's size).
    pub replicas: usize,
}

/// This node's membership: the NATS connection, the buckets and streams, and what it owns.
pub struct Cluster {
    pub node: Arc<str>,
    pub settings: ClusterSettings,
    pub(crate) client: async_nats::Client,
    pub(crate) log: log::UserLog,
    pub(crate) ownership: ownership::Ownership,
    pub(crate) accounts: accounts::SharedAccounts,
    pub(crate) components: swaps::SharedComponents,
    pub(crate) snapshots: catch_up::Snapshots,
    /// What this node's libraries publish, on its way to the other nodes.
    pub(crate) events: events::Events,
    pub metrics: ClusterMetrics,
    runtime: OnceLock<Weak<Runtime>>,
    /// Calls other nodes routed here that are running now (a stopping node leaves once they
    /// are answered).
    pub(crate) serving_routed: std::sync::atomic::AtomicUsize,
}

/// The NATS servers of `--cluster`: one URL, or several separated by commas (the client
/// reconnects to another when one fails).
pub fn servers(urls: &str) -> Result<Vec<async_nats::ServerAddr>> {
    urls.split(',').map(|url| url.trim().parse().with_context(|| format!("--cluster: `{url}` is not a NATS URL"))).collect()
}

/// Whether `node` is a valid node id (it is part of NATS subjects and KV keys).
pub fn valid_node_id(node: &str) -> bool {
    !node.is_empty() && node.len() <= 64 && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// How long a node that joins waits for the cluster's streams and buckets.
const JOIN_PATIENCE: Duration = Duration::from_secs(60);

/// The streams, buckets and object stores, created when missing (each open is idempotent).
async fn open_storage(
    js: &jetstream::Context,
    settings: &ClusterSettings,
) -> Result<(log::UserLog, ownership::Ownership, accounts::SharedAccounts, swaps::SharedComponents, catch_up::Snapshots)> {
    let replicas = settings.replicas;
    Ok((
        log::UserLog::open(js, replicas).await?,
        ownership::Ownership::open(js, settings).await?,
        accounts::SharedAccounts::open(js, replicas).await?,
        swaps::SharedComponents::open(js, replicas).await?,
        catch_up::Snapshots::open(js, replicas).await?,
    ))
}

impl Cluster {
    /// Connect to NATS and make sure the streams and buckets exist.
    pub async fn join(settings: ClusterSettings) -> Result<Arc<Self>> {
        anyhow::ensure!(valid_node_id(&settings.node_id), "--node-id must be 1 to 64 letters, digits, '-' or '_'");
        let missed = events::MissedNotice::default();
        let notices = missed.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("realtime-host {}", settings.node_id))
            .event_callback(move |event| {
                notices.notice(&event);
                async {}
            })
            .no_echo()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers(&settings.url)?)
            .await
            .with_context(|| format!("connecting to the cluster at {}", settings.url))?;
        server_version::check(&client.server_info().version).map_err(anyhow::Error::msg)?;
        let js = jetstream::new(client.clone());
        let (log, ownership, accounts, components, snapshots) =
            patience::again_while_failing(JOIN_PATIENCE, "opening the cluster's streams", || open_storage(&js, &settings), |_| false).await?;
        let events = events::Events::start(client.clone(), missed);
        tracing::info!(node = %settings.node_id, url = %settings.url, "joined the cluster");
        Ok(Arc::new(Self {
            node: settings.node_id.as_str().into(),
            settings,
            client,
            log,
            ownership,
            accounts,
            components,
            snapshots,
            events,
            metrics: ClusterMetrics::default(),
            runtime: OnceLock::new(),
            serving_routed: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// Serve `runtime` as this node: take part in liveness, answer routed calls, deliver
    /// other nodes' events to local sockets, follow sign-outs and component versions.
    pub async fn start(self: &Arc<Self>, runtime: &Arc<Runtime>) -> Result<()> {
        let _ = self.runtime.set(Arc::downgrade(runtime));
        runtime.accounts.set_directory(Arc::new(accounts::Directory::new(&self.accounts, self.client.clone())));
        self.ownership.register(self).await?;
        ownership::spawn_heartbeat(self.clone())?;
        routing::serve(self.clone()).await?;
        events::serve(self.clone()).await?;
        accounts::serve(self.clone()).await?;
        swaps::serve(self.clone()).await?;
        Ok(())
    }

    /// The runtime this node serves (gone once it shut down).
    pub(crate) fn runtime(&self) -> Option<Arc<Runtime>> {
        self.runtime.get()?.upgrade()
    }

    /// Leave: once the calls other nodes routed here are answered (no new one starts while
    /// the node stops), give up liveness at once, so other nodes take this node's users
    /// without waiting for the lease to lapse. The caller bounds the wait.
    pub async fn leave(&self) {
        while self.serving_routed.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.ownership.leave(self).await;
        let _ = self.client.flush().await;
    }
}
