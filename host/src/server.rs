//! The process: start-up (data dir, accounts, engine, components, the runtime), the
//! listener's shared `Host` (the runtime, the HTTP settings and the web app), the accept loop, and
//! graceful shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::clients::{ClientAddr, CountedConnection, PerAddress, Slot, TrustedProxies};
use crate::cluster::{Cluster, ClusterSettings};
use crate::http::web::WebApp;
use crate::storage;
use crate::runtime::components::{self, ComponentStore};
use crate::runtime::engine::{self, EngineLimits};
use crate::runtime::key::{ComponentKind, Principal};
use crate::runtime::graphql_pool::GraphqlPool;
use crate::runtime::trusted_documents::TrustedDocuments;
use crate::runtime::{self, Runtime};
use crate::storage::accounts::Accounts;

/// What the HTTP side reads; the runtime has its own [`runtime::Settings`].
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub admin_token: Option<String>,
    pub max_body_bytes: usize,
    /// A request's body must arrive within this time.
    pub body_timeout: Duration,
    /// `/metrics` wants this bearer token; without one it is served to loopback clients only.
    pub metrics_token: Option<String>,
    pub trusted_proxies: TrustedProxies,
}

/// Anonymous user-channel actors (sockets before `connection_init`).
const ANONYMOUS_ACTORS: u64 = 4;

/// What the listener and its routes share: the runtime, the HTTP settings and the web app.
pub struct Host {
    pub runtime: Arc<Runtime>,
    pub http: HttpSettings,
    pub web: WebApp,
    anonymous_turn: AtomicU64,
    /// Connections per client address (`--max-connections-per-address`).
    pub connections_per_address: Arc<PerAddress>,
    /// Unauthenticated sockets per client address (`--max-anonymous-sockets-per-address`).
    pub anonymous_per_address: Arc<PerAddress>,
    /// With `--cluster`: this node's membership, for what only the cluster serves (its part of
    /// `/metrics`, sharing a component a PUT installed). Set before the listener starts.
    pub cluster: OnceLock<Arc<Cluster>>,
}

impl Host {
    /// One of the anonymous principals, in turn.
    pub fn anonymous(&self) -> Principal {
        Principal::Anonymous((self.anonymous_turn.fetch_add(1, Ordering::Relaxed) % ANONYMOUS_ACTORS) as u8)
    }
}

/// Build the host: open the data dir and accounts, build the engine, load every component.
pub fn start(args: &ServeArgs) -> Result<Arc<Host>> {
    storage::sqlite::set_durability(args.durability);
    let settings = runtime::Settings {
        data_dir: args.data_dir.clone(),
        components_dir: args.components_dir.clone(),
        idle_timeout: args.idle_timeout,
        init_timeout: args.init_timeout,
        max_instance_memory: args.max_instance_memory,
        max_call_time: args.max_call_time,
        max_frame_bytes: args.max_frame_bytes,
        max_outgoing_frame_bytes: args.max_outgoing_frame_bytes.max(1024),
        socket_write_timeout: args.socket_write_timeout.max(Duration::from_millis(100)),
        max_user_bytes: args.max_user_bytes.max(64 * 1024) as u64,
        socket_queue: args.socket_queue.max(1),
        socket_queue_bytes: args.socket_queue_bytes,
        max_queued_bytes: args.max_queued_bytes,
        max_sockets_per_user: args.max_sockets_per_user.max(1),
        max_anonymous_sockets: args.max_anonymous_sockets.max(1),
        socket_ping_interval: Some(args.socket_ping_interval).filter(|d| !d.is_zero()),
        graphql_max_response_fields: args.graphql_max_response_fields.max(1),
        graphql_limits: runtime::QueryLimits {
            max_depth: args.graphql_max_depth,
            max_complexity: args.graphql_max_complexity,
            max_aliases: args.graphql_max_aliases,
        },
        event_retention: runtime::EventRetention {
            max_events: args.event_retention.max_events,
            max_age_ms: u64::try_from(args.event_retention.max_age.as_millis()).unwrap_or(u64::MAX),
        },
        max_library_calls: args.max_library_calls,
        max_mailbox: args.max_mailbox,
        max_requests_in_flight: args.max_requests_in_flight,
        trusted_documents: Arc::new(load_trusted_documents(args)?),
    };
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let accounts = Accounts::open(&settings.data_dir, args.session_ttl)?;
    accounts.limit_sign_ups(args.max_signups_per_address);
    let engine = engine::build_engine(&EngineLimits {
        max_instances: args.max_instances.saturating_add(args.graphql_instances as u32),
        max_instance_memory: args.max_instance_memory,
    })?;
    engine::start_epoch_ticker(engine.clone());
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| settings.data_dir.join("compiled"));
    let components = ComponentStore::new(engine.clone(), cache_dir)?;
    for kind in ComponentKind::ALL {
        let Some(path) = components::find_in_dir(&settings.components_dir, kind) else {
            bail!(
                "no {kind}.wasm in {} (build the components with `scripts/build-components.sh`, or set --components-dir)",
                settings.components_dir.display()
            );
        };
        let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let version = components.load(kind, &wasm).with_context(|| format!("{} {}", path.display(), "was refused"))?;
        tracing::info!(component = %kind, version = version.number, digest = %&version.digest[..12], "loaded {}", path.display());
    }
    let runtime = Runtime::new(runtime::Parts {
        settings,
        engine,
        components,
        accounts,
        max_instances: args.max_instances as usize,
        graphql_instances: args.graphql_instances,
    });
    for kind in ComponentKind::ALL {
        runtime.metrics.component(kind).version.store(1, Ordering::Relaxed);
    }
    let http = HttpSettings {
        admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
        max_body_bytes: args.max_body_bytes,
        body_timeout: args.body_timeout,
        metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        trusted_proxies: TrustedProxies::new(args.trusted_proxy.clone()),
    };
    let web = WebApp::load(&args.web_dir).with_context(|| format!("reading the web app in {}", args.web_dir.display()))?;
    Ok(Arc::new(Host {
        runtime,
        http,
        web,
        anonymous_turn: AtomicU64::new(0),
        connections_per_address: PerAddress::new(args.max_connections_per_address),
        anonymous_per_address: PerAddress::new(args.max_anonymous_sockets_per_address),
        cluster: OnceLock::new(),
    }))
}

/// The manifests of `--trusted-documents`, and the web app's own when `--web-dir` has one.
fn load_trusted_documents(args: &ServeArgs) -> Result<TrustedDocuments> {
    let mut documents = TrustedDocuments::new(args.trusted_documents_only);
    let web_manifest = args.web_dir.join(WEB_MANIFEST);
    if web_manifest.is_file() {
        documents.load(&web_manifest, false)?;
    }
    for path in &args.trusted_documents {
        documents.load(path, true)?;
    }
    if !documents.is_empty() || args.trusted_documents_only {
        tracing::info!(documents = documents.len(), only = args.trusted_documents_only, "trusted documents loaded");
    }
    Ok(documents)
}

/// Where `scripts/build-web.sh` puts relay-compiler's manifest of the web app's documents.
pub const WEB_MANIFEST: &str = "persisted-documents.json";

/// Validate every trusted document against the schema of the graphql component now loaded
/// (its `prepare`: parsed, validated, within the GraphQL limits); the first of a manifest given
/// by `--trusted-documents` that fails stops the start, named with its errors (one only in the
/// web app's manifest is logged: see `TrustedDocuments::is_given`). A manifest holds no
/// variables, so `prepare`'s errors for required variables not provided are not the document's.
pub async fn validate_trusted_documents(runtime: &Arc<Runtime>) -> Result<()> {
    let not_provided = |e: &serde_json::Value| {
        let message = e["message"].as_str().unwrap_or("");
        message.starts_with("Variable \"$") && message.ends_with("was not provided.")
    };
    for (id, text) in runtime.settings.trusted_documents.documents() {
        let request = serde_json::json!({ "query": text }).to_string();
        match GraphqlPool::call(runtime, runtime::call::Request::Prepare(request), Default::default()).await {
            Ok(runtime::call::Response::Prepared(Ok(_))) => {}
            Ok(runtime::call::Response::Prepared(Err(errors))) => {
                let list: Vec<serde_json::Value> = serde_json::from_str(&errors).unwrap_or_default();
                if list.is_empty() || !list.iter().all(not_provided) {
                    if runtime.settings.trusted_documents.is_given(id) {
                        bail!("trusted document {id} does not validate: {errors}");
                    }
                    tracing::warn!("the web app's document {id} does not validate; its requests will fail: {errors}");
                }
            }
            Ok(_) => bail!("trusted document {id}: unexpected answer from the GraphQL component"),
            Err(e) => bail!("trusted document {id} could not be validated: {e}"),
        }
    }
    Ok(())
}

/// Serve until SIGINT or SIGTERM, then shut down gracefully: stop accepting, finish
/// requests in flight, close every socket with 1001.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let host = start(&args)?;
    validate_trusted_documents(&host.runtime).await?;
    let cluster = join_cluster(&args, &host).await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!("serving on http://{}", listener.local_addr()?);
    host.runtime.start();
    spawn_session_purge(&host);
    let connections = Arc::new(AtomicU64::new(0));
    let mut stop = Box::pin(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // WebSockets leave the HTTP count once upgraded, so both are counted.
                let open = connections.load(Ordering::SeqCst) as usize + host.runtime.sockets.count();
                if open >= args.max_connections {
                    refuse_connection(&stream);
                    continue;
                }
                // One address holds at most its share (a trusted proxy carries many clients).
                let peer = stream.peer_addr().ok().map(|addr| addr.ip());
                let slot = match peer.filter(|peer| !host.http.trusted_proxies.contains(*peer)) {
                    Some(peer) => match host.connections_per_address.take(peer) {
                        Some(slot) => Some(slot),
                        None => {
                            refuse_connection(&stream);
                            continue;
                        }
                    },
                    None => None,
                };
                let _ = stream.set_nodelay(true);
                let counted = CountedConnection::new(&connections);
                tokio::spawn(serve_connection(host.clone(), stream, slot, counted, args.header_timeout));
            }
            _ = &mut stop => break,
        }
    }
    tracing::info!("shutting down: finishing requests, closing sockets with 1001");
    host.runtime.stop();
    let deadline = tokio::time::Instant::now() + args.shutdown_timeout;
    // While the requests in flight finish, the listener stays open and every new request is
    // answered 503 "shutting down" (a definite "not done": a client or load balancer sends it
    // elsewhere). Closing it at once would reset the connections waiting in its backlog, and
    // a reset request cannot tell the client whether it ran.
    let refusing = Arc::new(AtomicU64::new(0));
    while (connections.load(Ordering::SeqCst) > 0 || host.runtime.sockets.count() > 0) && tokio::time::Instant::now() < deadline {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(refuse_while_stopping(host.clone(), stream, CountedConnection::new(&refusing), args.header_timeout));
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    // The backlog's last connections are answered too, then the listener closes (a connection
    // can still race its close, by microseconds rather than by the whole drain).
    while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::from_millis(1), listener.accept()).await {
        tokio::spawn(refuse_while_stopping(host.clone(), stream, CountedConnection::new(&refusing), args.header_timeout));
    }
    drop(listener);
    // The connections answered 503 above finish before the process goes (it would cut them).
    let answering = tokio::time::Instant::now() + Duration::from_secs(1);
    while refusing.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < answering {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A cluster node hands its users over first: calls other nodes route here from now on are
    // answered `moved` and made on the user's next owner.
    // Each step is bounded: a node cut off from NATS still exits (what it could not hand over
    // goes to other nodes when its lease lapses, as after a crash).
    let remaining = || deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_secs(1));
    if let Some(cluster) = &cluster {
        if tokio::time::timeout(remaining(), cluster.leave()).await.is_err() {
            tracing::warn!("could not leave the cluster in time; other nodes take its users when its lease lapses");
        }
    }
    if tokio::time::timeout(remaining(), host.runtime.close_databases()).await.is_err() {
        tracing::warn!("databases still closing at the shutdown deadline; exiting (each file's log is replayed at the next start)");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Delete expired sessions once a minute (a session is otherwise deleted only when it is next
/// presented, and most expired ones never are).
fn spawn_session_purge(host: &Arc<Host>) {
    let accounts = host.runtime.accounts.clone();
    let mut stopping = host.runtime.stopping();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
            let accounts = accounts.clone();
            if let Ok(purged) = tokio::task::spawn_blocking(move || accounts.purge_expired_sessions()).await {
                if purged > 0 {
                    tracing::debug!(purged, "deleted expired sessions");
                }
            }
        }
    });
}

/// With `--cluster`: join the cluster before serving (the runtime must know it before its
/// first actor starts).
async fn join_cluster(args: &ServeArgs, host: &Host) -> Result<Option<Arc<Cluster>>> {
    let Some(url) = args.cluster.clone().filter(|url| !url.is_empty()) else { return Ok(None) };
    let node_id = args.node_id.clone().context("--cluster needs --node-id (or REALTIME_NODE_ID)")?;
    let settings = ClusterSettings { url, node_id, lease_ttl: args.lease_ttl.max(Duration::from_millis(400)), snapshot_every: args.snapshot_every, replicas: args.cluster_replicas };
    let cluster = Cluster::join(settings).await?;
    let _ = host.runtime.replication.set(cluster.clone());
    let _ = host.cluster.set(cluster.clone());
    cluster.start(&host.runtime).await?;
    Ok(Some(cluster))
}

/// Over `--max-connections`: answer 503 (Retry-After: 1) and close, without reading.
fn refuse_connection(stream: &tokio::net::TcpStream) {
    const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\n\
        connection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n";
    // A fresh socket's send buffer always has room for this; if not, the close says enough.
    let _ = stream.try_write(REFUSAL);
}

/// Serve one HTTP connection (counted by the caller; uncounted when it ends or becomes a
/// WebSocket); at shutdown, finish the request in flight and close it. A
/// client must send a request's headers within `header_timeout` of the connection's start or
/// of the previous response (hyper's header read timeout, which so also closes idle
/// keep-alive connections).
async fn serve_connection(
    host: Arc<Host>,
    stream: tokio::net::TcpStream,
    slot: Option<Arc<Slot>>,
    counted: Arc<CountedConnection>,
    header_timeout: Duration,
) {
    let mut shutdown = host.runtime.stopping();
    let service_host = host.clone();
    let counted_for_requests = counted.clone();
    let peer = stream.peer_addr().ok().map(|addr| addr.ip());
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        if let Some(peer) = peer {
            let client = service_host.http.trusted_proxies.client(peer, request.headers());
            request.extensions_mut().insert(ClientAddr(client));
        }
        // A WebSocket upgraded from this connection keeps the address's count, and ends the
        // connection's own.
        if let Some(slot) = &slot {
            request.extensions_mut().insert(slot.clone());
        }
        request.extensions_mut().insert(counted_for_requests.clone());
        crate::http::route(service_host.clone(), request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        _ = stopping => {
            // A request on its way (a fresh connection's first) still gets its answer (a 503
            // once the server stops, see `http::route`) before the idle connection closes:
            // closing at once would drop it unanswered, and the client could not tell
            // whether it ran.
            let grace = tokio::time::sleep(STOP_GRACE);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                    return;
                }
                _ = grace => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    drop(counted);
}

/// How long an open connection may still bring a request once the server stops.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// A connection accepted while the server stops: each request on it is answered 503
/// "shutting down" (`http::route`), and the connection closes after it.
async fn refuse_while_stopping(host: Arc<Host>, stream: tokio::net::TcpStream, counted: Arc<CountedConnection>, header_timeout: Duration) {
    let peer = stream.peer_addr().ok().map(|addr| ClientAddr(addr.ip()));
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(peer);
        }
        crate::http::route(host.clone(), request)
    });
    let connection = http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(header_timeout).serve_connection(TokioIo::new(stream), service);
    let _ = connection.await;
    drop(counted);
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
