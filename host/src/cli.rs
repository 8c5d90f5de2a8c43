//! The command line: `realtime-host serve` and its flags, each also read from
//! `REALTIME_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Where `cargo build` of this checkout puts the components.
/// The Library web app as `web/` builds it (`npm run build` there; `scripts/serve.sh` does it).
pub const DEFAULT_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist");

pub const DEFAULT_COMPONENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm32-wasip2/release");

#[derive(Parser, Debug)]
#[command(
    name = "realtime-host",
    version,
    about = "Library Realtime: a bookmark library whose every change reaches every open tab over GraphQL subscriptions",
    long_about = "Library Realtime serves a GraphQL API (HTTP and graphql-ws WebSockets) from WebAssembly \
components run by a wasmtime host: one actor per (component, user), each with its own SQLite database. \
Components can be swapped while the server runs.\n\nEvery flag can also be set through an environment \
variable REALTIME_<FLAG> (for example REALTIME_LISTEN). Logs go to stderr; set RUST_LOG to filter them."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the server.
    Serve(ServeArgs),
    /// Hot-swap a component on a running server (PUT /admin/components/<name>).
    Deploy(DeployArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DeployArgs {
    /// The component to replace: library, user-channel or graphql.
    pub name: String,
    /// The new `.wasm` component.
    pub file: PathBuf,
    /// The server's base URL.
    #[arg(long, env = "REALTIME_URL", default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// The server's admin token.
    #[arg(long, env = "REALTIME_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to serve HTTP and WebSocket on.
    #[arg(long, env = "REALTIME_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// Directory for accounts, sessions and every actor's SQLite file.
    #[arg(long, env = "REALTIME_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where compiled components are cached (default: `<data-dir>/compiled`).
    #[arg(long, env = "REALTIME_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Where the `*.wasm` components (library, user-channel, graphql) are loaded from
    /// and watched. Defaults to the built components of this checkout.
    #[arg(long, env = "REALTIME_COMPONENTS_DIR", default_value = DEFAULT_COMPONENTS_DIR)]
    pub components_dir: PathBuf,

    /// The built web app served at `/` (its files are read once, at start). Defaults to
    /// `web/dist` of this checkout; without it `/` answers 404 and the API works as ever.
    #[arg(long, env = "REALTIME_WEB_DIR", default_value = DEFAULT_WEB_DIR)]
    pub web_dir: PathBuf,

    /// An actor with no call in flight for this long is evicted; its sockets stay open.
    #[arg(long, env = "REALTIME_IDLE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// graphql-ws: a socket that sends no `connection_init` in this time is closed with 4408.
    #[arg(long, env = "REALTIME_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub init_timeout: Duration,

    /// Bearer token for `/admin/*`; without one `/admin/*` answers 404.
    #[arg(long, env = "REALTIME_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Live component instances at most, over all components and users.
    #[arg(long, env = "REALTIME_MAX_INSTANCES", default_value_t = 4000)]
    pub max_instances: u32,

    /// Instances of the stateless graphql component, shared by all users (each runs one
    /// request at a time; one user holds at most 4 at once).
    #[arg(long, env = "REALTIME_GRAPHQL_INSTANCES", default_value_t = 16)]
    pub graphql_instances: usize,

    /// Linear memory one instance may use (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, env = "REALTIME_MAX_INSTANCE_MEMORY", default_value = "64MiB", value_parser = parse_size)]
    pub max_instance_memory: usize,

    /// CPU time one call into a component may take before it is stopped.
    #[arg(long, env = "REALTIME_MAX_CALL_TIME", default_value = "2s", value_parser = humantime::parse_duration)]
    pub max_call_time: Duration,

    /// Largest WebSocket message accepted; a larger one closes the socket with 1009.
    #[arg(long, env = "REALTIME_MAX_FRAME_BYTES", default_value = "256KiB", value_parser = parse_size)]
    pub max_frame_bytes: usize,

    /// Largest HTTP request body accepted (413 above it).
    #[arg(long, env = "REALTIME_MAX_BODY_BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_body_bytes: usize,

    /// A request's body must arrive within this time of its headers (else 408 and the
    /// connection closes): a client that sends a few bytes at a time cannot hold a connection.
    #[arg(long, env = "REALTIME_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// Largest WebSocket message the server sends. A subscription event or an operation's
    /// answer whose message would be larger is replaced by a GraphQL error (extensions code
    /// `RESPONSE_TOO_LARGE`), with the event's position, so the subscription goes on.
    #[arg(long, env = "REALTIME_MAX_OUTGOING_FRAME_BYTES", default_value = "1MiB", value_parser = parse_size)]
    pub max_outgoing_frame_bytes: usize,

    /// Open WebSockets one user may hold; more are refused (HTTP 429 at upgrade, or close
    /// 1008 after `connection_init` for sockets that authenticate there).
    #[arg(long, env = "REALTIME_MAX_SOCKETS_PER_USER", default_value_t = 100)]
    pub max_sockets_per_user: usize,

    /// A WebSocket silent for this long is pinged; if it stays silent as long again its peer
    /// is taken for gone and the socket closed (1001). `0s` turns this off.
    #[arg(long, env = "REALTIME_SOCKET_PING_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub socket_ping_interval: Duration,

    /// Open connections at most, HTTP and WebSocket together; more are answered 503 (with
    /// Retry-After) and closed.
    #[arg(long, env = "REALTIME_MAX_CONNECTIONS", default_value_t = 16384)]
    pub max_connections: usize,

    /// Open connections (HTTP and WebSocket together) one client address may hold; more are
    /// answered 503 and closed. A `--trusted-proxy` is not counted.
    #[arg(long, env = "REALTIME_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1024)]
    pub max_connections_per_address: usize,

    /// Addresses of reverse proxies (comma-separated IPs, e.g. 127.0.0.1 for nginx on the same
    /// machine) whose `X-Forwarded-For` names the client: the rightmost entry that is not a
    /// trusted proxy is the address throttles and per-address limits count. Without it the
    /// TCP peer is the client and `X-Forwarded-For` is ignored.
    #[arg(long, env = "REALTIME_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Trusted documents: a manifest (JSON object id -> document, as relay-compiler's
    /// `persistConfig.file` writes it) whose documents requests may name by `documentId` (or
    /// `extensions.persistedQuery.sha256Hash`). Repeat the flag (or separate files with commas
    /// in the variable) for several. `persisted-documents.json` of `--web-dir`, when there is
    /// one, is always trusted. A document that does not validate stops the start.
    #[arg(long, env = "REALTIME_TRUSTED_DOCUMENTS", action = clap::ArgAction::Append, value_delimiter = ',')]
    pub trusted_documents: Vec<PathBuf>,

    /// Run only trusted documents: a request naming an unknown id is refused with
    /// `PERSISTED_QUERY_NOT_FOUND`, a document text that is not in a manifest with
    /// `ARBITRARY_DOCUMENT_NOT_ALLOWED`.
    #[arg(long, env = "REALTIME_TRUSTED_DOCUMENTS_ONLY")]
    pub trusted_documents_only: bool,

    /// Bearer token `GET /metrics` requires. Without one, /metrics is served only to
    /// loopback clients (127.0.0.0/8, ::1) and answers 404 to others.
    #[arg(long, env = "REALTIME_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// An HTTP connection must send a request's headers within this time of opening or of
    /// its previous response, else it is closed: the header timeout and the keep-alive idle
    /// timeout in one.
    #[arg(long, env = "REALTIME_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Sockets that have not authenticated yet (no `Authorization` header at the upgrade and
    /// no `connection_init` so far), over all clients; more get HTTP 503 with Retry-After.
    #[arg(long, env = "REALTIME_MAX_ANONYMOUS_SOCKETS", default_value_t = 4096)]
    pub max_anonymous_sockets: usize,

    /// Sockets one client address may hold before they authenticate; more get HTTP 503 with
    /// Retry-After, so one address cannot take every anonymous slot.
    #[arg(long, env = "REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS", default_value_t = 64)]
    pub max_anonymous_sockets_per_address: usize,

    /// GraphQL: the deepest nesting of fields a document may have.
    #[arg(long, env = "REALTIME_GRAPHQL_MAX_DEPTH", default_value_t = 16)]
    pub graphql_max_depth: u32,

    /// GraphQL: the highest complexity a document may have (each field counts 1, with its
    /// children; fragments expanded).
    #[arg(long, env = "REALTIME_GRAPHQL_MAX_COMPLEXITY", default_value_t = 2000)]
    pub graphql_max_complexity: u32,

    /// GraphQL: the most aliased fields a document may have, as written.
    #[arg(long, env = "REALTIME_GRAPHQL_MAX_ALIASES", default_value_t = 64)]
    pub graphql_max_aliases: u32,

    /// GraphQL: the most fields a document's response may hold, counted with every fragment
    /// spread and inline fragment expanded where it is used (so aliases of a large field
    /// multiply through fragments and count as what they cost to send).
    #[arg(long, env = "REALTIME_GRAPHQL_MAX_RESPONSE_FIELDS", default_value_t = 500)]
    pub graphql_max_response_fields: u32,

    /// How much of each user's event log is kept for resuming subscriptions: `<events>,<age>`,
    /// the newest events up to that count, none older than that age (the newest one is always
    /// kept, as the log's head). A client resuming from further back gets `channel:reset`.
    #[arg(long, env = "REALTIME_EVENT_RETENTION", default_value = "1000,24h", value_parser = parse_retention)]
    pub event_retention: Retention,

    /// Library calls one GraphQL request may make (each field that reads or writes the
    /// library is one); past it the request fails with a GraphQL error.
    #[arg(long, env = "REALTIME_MAX_LIBRARY_CALLS", default_value_t = 1000)]
    pub max_library_calls: u32,

    /// HTTP requests one user may have running or waiting for a graphql instance (callers
    /// without a user: four times as many, together); more get 429 with Retry-After.
    #[arg(long, env = "REALTIME_MAX_REQUESTS_IN_FLIGHT", default_value_t = 64)]
    pub max_requests_in_flight: usize,

    /// Envelopes waiting in one actor's mailbox past which a user's events are shed: every
    /// socket of that user is closed with 1013 (try again later), and its clients reconnect
    /// and refetch, instead of the backlog growing without end.
    #[arg(long, env = "REALTIME_MAX_MAILBOX", default_value_t = 4096)]
    pub max_mailbox: usize,

    /// On SIGTERM: how long to let requests finish, close sockets, hand a cluster node's users
    /// over and close the databases; the process exits at this deadline whatever is left
    /// (a cluster node's users then move when its lease lapses, as after a crash).
    #[arg(long, env = "REALTIME_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Sign-ups one client address may make: `<count>/<period>`, that many at once and as many
    /// more over each period (free accounts multiply every per-user limit). More are refused
    /// with a GraphQL error saying when to try again.
    #[arg(long, env = "REALTIME_MAX_SIGNUPS_PER_ADDRESS", default_value = "20/1h", value_parser = parse_sign_up_rate)]
    pub max_signups_per_address: crate::storage::throttle::SignUpRate,

    /// The most one user's library may hold on disk (its SQLite file: stories, tags, the event
    /// log). Past it, writes fail with a GraphQL error starting "Storage quota exceeded"
    /// (extensions code `QUOTA_EXCEEDED`); reads and deletes still work.
    #[arg(long, env = "REALTIME_MAX_USER_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub max_user_bytes: usize,

    /// A session unused for this long expires (each use moves the expiry forward).
    #[arg(long, env = "REALTIME_SESSION_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// What an acknowledged mutation survives: `full` syncs every commit to disk (a crash of
    /// the process, of the OS, or a power loss); `normal` syncs at checkpoints only (a crash
    /// of the process; an OS crash or power loss may lose the last commits).
    #[arg(long, env = "REALTIME_DURABILITY", value_enum, default_value = "normal")]
    pub durability: crate::storage::sqlite::Durability,

    /// Frames queued for one socket at most; a client that stops reading is closed with 1008.
    #[arg(long, env = "REALTIME_SOCKET_QUEUE", default_value_t = 1024)]
    pub socket_queue: usize,

    /// Bytes queued for one socket at most; a client that falls this far behind is closed
    /// with 1008. A client that keeps up gets any one message, however large.
    #[arg(long, env = "REALTIME_SOCKET_QUEUE_BYTES", default_value = "4MiB", value_parser = parse_size)]
    pub socket_queue_bytes: usize,

    /// A write to a WebSocket (one batch of queued messages) must be taken by the peer within
    /// this time, else the socket is dropped (1008): a peer that stops reading holds nothing
    /// for long, whether or not more messages come for it.
    #[arg(long, env = "REALTIME_SOCKET_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub socket_write_timeout: Duration,

    /// Bytes queued over all sockets at most, counting frames a call has sent and holds until
    /// it commits; a frame that would pass it is refused and its socket closed (1008).
    #[arg(long, env = "REALTIME_MAX_QUEUED_BYTES", default_value = "128MiB", value_parser = parse_size)]
    pub max_queued_bytes: usize,

    /// Join a cluster of nodes on NATS JetStream at this URL (e.g. nats://127.0.0.1:4222, or
    /// several separated by commas, the servers of a NATS cluster): accounts, each user's data
    /// and component versions live in JetStream, and each user's library runs on one node at a
    /// time. Without it the node stands alone and needs no NATS.
    #[arg(long, env = "REALTIME_CLUSTER")]
    pub cluster: Option<String>,

    /// This node's name in the cluster (letters, digits, '-' and '_'); needed with --cluster.
    #[arg(long, env = "REALTIME_NODE_ID")]
    pub node_id: Option<String>,

    /// In a cluster: a node that has not refreshed its lease for this long loses its users to
    /// the other nodes (the failover time after a crash).
    #[arg(long, env = "REALTIME_LEASE_TTL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,

    /// In a cluster: store a snapshot of a user's database after this many entries of its log,
    /// so a new owner replays at most that many (0: never).
    #[arg(long, env = "REALTIME_SNAPSHOT_EVERY", default_value_t = 1000)]
    pub snapshot_every: u64,

    /// In a cluster: copies of each stream and bucket it creates, on as many NATS servers of a
    /// NATS cluster (3 survives the loss of any one of three); 1 for a single NATS server.
    #[arg(long, env = "REALTIME_CLUSTER_REPLICAS", default_value_t = 1)]
    pub cluster_replicas: usize,
}

/// `--event-retention`: how many events, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_events: u32,
    pub max_age: Duration,
}

/// `1000,24h`: a count of events (at least 1) and a duration (humantime: `90s`, `24h`, `7days`).
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    let (count, age) = text.split_once(',').ok_or_else(|| format!("`{text}` is not `<events>,<age>` (e.g. `1000,24h`)"))?;
    let max_events: u32 = count.trim().parse().map_err(|_| format!("`{count}` is not a count of events"))?;
    if max_events == 0 {
        return Err("the log must keep at least 1 event".into());
    }
    let max_age = humantime::parse_duration(age.trim()).map_err(|e| format!("`{age}`: {e}"))?;
    Ok(Retention { max_events, max_age })
}

/// `20/1h`: sign-ups one client address may make at once, and the time in which as many
/// more become available.
pub fn parse_sign_up_rate(text: &str) -> Result<crate::storage::throttle::SignUpRate, String> {
    let (count, period) = text.split_once('/').ok_or_else(|| format!("`{text}` is not `<count>/<period>` (e.g. `20/1h`)"))?;
    let count: u32 = count.trim().parse().map_err(|_| format!("`{count}` is not a count"))?;
    let period = humantime::parse_duration(period.trim()).map_err(|e| format!("`{period}`: {e}"))?;
    if count == 0 || period.is_zero() {
        return Err("the count and the period must be above zero".into());
    }
    Ok(crate::storage::throttle::SignUpRate { count, period_ms: period.as_millis().try_into().unwrap_or(u64::MAX) })
}

/// `65536`, `64KiB`, `64MiB`, `1GiB` (also KB/MB/GB, taken as powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| format!("`{text}` is not a size"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("256 KiB"), Ok(256 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn retentions() {
        assert_eq!(parse_retention("1000,24h"), Ok(Retention { max_events: 1000, max_age: Duration::from_secs(86_400) }));
        assert_eq!(parse_retention("5, 90s"), Ok(Retention { max_events: 5, max_age: Duration::from_secs(90) }));
        assert!(parse_retention("1000").is_err());
        assert!(parse_retention("0,1h").is_err());
        assert!(parse_retention("many,1h").is_err());
    }
}
