//! `loadgen`: drives Library Realtime and its peers through the same public contract and
//! prints one JSON line per scenario on stdout. Every loop is bounded in count and time
//! and the whole run is bounded by `--max-seconds`; it talks to one loopback address.

mod client;
mod memory;
mod procfs;
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use client::{Http, LatencySink, TabStats};

#[derive(Parser)]
#[command(name = "loadgen", about = "Benchmark load generator for Library Realtime and its peers (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// U users x T tabs; a few users mutate flat out for D seconds; events delivered per second.
    Fanout(FanoutArgs),
    /// A fixed mutation rate spread over users x tabs; mutation sent -> event received, per tab.
    Latency(LatencyArgs),
    /// The latency load while components are replaced through the admin API (our server).
    Swap(SwapArgs),
    /// N subscribed idle sockets; server RSS before and after, bytes per socket.
    IdleMemory(IdleArgs),
    /// HTTP query latency right after a previous one (warm) vs after the server's idle timeout (cold).
    Wake(WakeArgs),
    /// Server RSS per live user (one query each) and per socket at open (tabs subscribed).
    LiveMemory(memory::LiveArgs),
    /// Server RSS through a burst of sign-ups and after it: peak, end, when it came back.
    SignupBurst(memory::BurstArgs),
    /// Sign up users into --tokens-file (to be reused by later scenarios) and exit.
    Signup(SignupArgs),
    /// Write BENCHMARKS.md from the JSON lines of a run.
    Report(report::ReportArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// The server, on loopback: 127.0.0.1:<port>.
    #[arg(long)]
    addr: SocketAddr,
    /// Label of the system under test (ours, node, native).
    #[arg(long)]
    system: String,
    /// The server's process id, for RSS and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Reuse the tokens in this file (one per line) and append new sign-ups to it.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Sign-ups in flight at once (our server hashes passwords with argon2).
    #[arg(long, default_value_t = 4)]
    signup_concurrency: usize,
    /// WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// The scenario is abandoned (exit 2) after this long, whatever happens.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// The scenario's name in the result line (default: the command's), for a variant of a
    /// command run with other arguments (`idle-memory --label idle-memory-3tabs`).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Args, Clone)]
struct SignupArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1000)]
    users: usize,
}

#[derive(Args, Clone)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 100)]
    users: usize,
    #[arg(long, default_value_t = 10)]
    tabs: usize,
    /// How many of the users send mutations.
    #[arg(long, default_value_t = 10)]
    mutators: usize,
    /// Mutation loops per mutating user, each on its own HTTP connection.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Instead of `--concurrency` loops pinned to each mutating user: this many loops in all,
    /// each on its own HTTP connection, taking the mutating users in turn (round-robin).
    #[arg(long)]
    senders: Option<usize>,
    /// Seconds of mutations.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

#[derive(Args, Clone)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 3)]
    tabs: usize,
    /// Mutations per second, round-robin over the users.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of mutations (including the warm-up).
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds at the start whose events are not recorded.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Skip the priming query per user and the pause after it: mutations start as soon as
    /// every tab is subscribed (with `--warmup 0`: the restart scenario, every actor cold).
    #[arg(long)]
    no_prime: bool,
    /// Mutations queued or in flight at most; one more is not sent, and counted as such.
    /// Without it a mutation is only not sent when its user already has 64 queued.
    #[arg(long)]
    max_in_flight: Option<u64>,
    /// Unix time in ms at which run.sh (re)started the server: the result then has the
    /// seconds from it to every tab subscribed (not counting sign-ups done by this process).
    #[arg(long)]
    restarted_at_ms: Option<u64>,
    /// Send the mutations (and the priming queries) to this address instead of `--addr`, where
    /// the tabs are: another node of a cluster, so every event crosses nodes.
    #[arg(long)]
    mutate_addr: Option<SocketAddr>,
    /// Once every tab is subscribed (and primed), say `ready` and wait for this file to exist
    /// before mutating: load generators in several processes start their loads together.
    #[arg(long)]
    start_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct SwapArgs {
    #[command(flatten)]
    load: LatencyArgs,
    /// `<name>=<file.wasm>`: PUT the file to `/admin/components/<name>` during the load
    /// (repeatable; the swaps are spread evenly over the recorded window).
    #[arg(long = "component", required = true)]
    components: Vec<String>,
    /// The server's `--admin-token`.
    #[arg(long)]
    admin_token: String,
}

/// Components to install while the latency load runs.
struct SwapPlan {
    admin_token: String,
    components: Vec<(String, Vec<u8>)>,
}

impl SwapArgs {
    fn plan(&self) -> Result<SwapPlan> {
        let components = self
            .components
            .iter()
            .map(|spec| {
                let (name, file) = spec.split_once('=').with_context(|| format!("--component {spec}: expected <name>=<file>"))?;
                let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
                Ok((name.to_owned(), bytes))
            })
            .collect::<Result<_>>()?;
        Ok(SwapPlan { admin_token: self.admin_token.clone(), components })
    }
}

/// PUT each planned component at evenly spaced moments of the recorded window, from `started`.
fn spawn_swaps(addr: SocketAddr, plan: SwapPlan, started: Instant, args: &LatencyArgs) -> JoinHandle<Vec<Value>> {
    let window = (args.duration - args.warmup).max(0.0);
    let (warmup, count) = (args.warmup, plan.components.len());
    tokio::spawn(async move {
        let mut done = Vec::new();
        for (i, (name, wasm)) in plan.components.into_iter().enumerate() {
            let at = Duration::from_secs_f64(warmup + window * (i + 1) as f64 / (count + 1) as f64);
            tokio::time::sleep_until((started + at).into()).await;
            let sent = Instant::now();
            let outcome = client::put_component(addr, &plan.admin_token, &name, wasm).await;
            let ms = (sent.elapsed().as_secs_f64() * 1e5).round() / 100.0;
            let (status, body) = outcome.unwrap_or_else(|e| (0, format!("{e:#}")));
            log(format!("swapped {name} at {:.1}s: HTTP {status} in {ms} ms", at.as_secs_f64()));
            done.push(json!({ "component": name, "at_s": at.as_secs_f64(), "status": status, "ms": ms, "body": body }));
        }
        done
    })
}

#[derive(Args, Clone)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 15)]
    tabs: usize,
    /// Seconds to wait with every socket open before the final RSS reading
    /// (longer than the server's idle timeout, so idle actors are evicted).
    #[arg(long, default_value_t = 15.0)]
    settle: f64,
}

#[derive(Args, Clone)]
struct WakeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 100)]
    users: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Seconds to wait before each cold round: longer than the server's --idle-timeout.
    #[arg(long, default_value_t = 2.5)]
    idle_wait: f64,
    #[arg(long, default_value = TOUCH_QUERY)]
    query: String,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::sync::LazyLock::force(&START);
    if let Command::Report(args) = &cli.command {
        return report::write(args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let (max, future): (u64, std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value>>>>) = match cli.command {
            Command::Fanout(a) => (a.common.max_seconds, Box::pin(fanout(a))),
            Command::Latency(a) => (a.common.max_seconds, Box::pin(latency(a, None))),
            Command::Swap(a) => {
                let plan = a.plan()?;
                (a.load.common.max_seconds, Box::pin(latency(a.load, Some(plan))))
            }
            Command::IdleMemory(a) => (a.common.max_seconds, Box::pin(idle_memory(a))),
            Command::Wake(a) => (a.common.max_seconds, Box::pin(wake(a))),
            Command::LiveMemory(a) => (a.common.max_seconds, Box::pin(memory::live_memory(a))),
            Command::SignupBurst(a) => (a.common.max_seconds, Box::pin(memory::signup_burst(a))),
            Command::Signup(a) => (a.common.max_seconds, Box::pin(signup(a))),
            Command::Report(_) => unreachable!(),
        };
        match tokio::time::timeout(Duration::from_secs(max), future).await {
            Ok(result) => result,
            Err(_) => bail!("scenario did not finish within --max-seconds {max}"),
        }
    });
    match result {
        Ok(value) => {
            println!("{value}");
            // Do not wait for sockets still closing: the result is out.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::exit(2)
        }
    }
}

fn log(message: impl AsRef<str>) {
    eprintln!("[loadgen {:>8.3}s] {}", START.elapsed().as_secs_f64(), message.as_ref());
}

static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Tokens for `n` users: from `--tokens-file` when it has them, else signed up (and appended).
async fn tokens(common: &Common, n: usize) -> Result<Vec<String>> {
    let mut tokens: Vec<String> = match &common.tokens_file {
        Some(path) if path.exists() => {
            std::fs::read_to_string(path)?.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
        }
        _ => Vec::new(),
    };
    if tokens.len() >= n {
        tokens.truncate(n);
        return Ok(tokens);
    }
    let missing = n - tokens.len();
    let fresh = sign_up_many(common.addr, missing, common.signup_concurrency).await?;
    if let Some(path) = &common.tokens_file {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        for token in &fresh {
            writeln!(file, "{token}")?;
        }
    }
    tokens.extend(fresh);
    Ok(tokens)
}

/// Sign up `count` new users (unique e-mails), `concurrency` at a time; their tokens.
async fn sign_up_many(addr: SocketAddr, count: usize, concurrency: usize) -> Result<Vec<String>> {
    let started = Instant::now();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut http = Http::new(addr);
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Relaxed) as usize;
                if i >= count {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let email = format!("bench-{stamp}-{i}@example.com");
                let token = client::sign_up(&mut http, &email).await.with_context(|| format!("signUp {email}"))?;
                mine.push(token);
            }
        }));
    }
    let mut fresh = Vec::new();
    for worker in workers {
        fresh.extend(worker.await??);
    }
    log(format!("signed up {count} users in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(fresh)
}

/// The query that touches each user's GraphQL and library actors (our server) without
/// publishing anything: used to prime actors and by the wake scenario.
const TOUCH_QUERY: &str = "{ me { id library { stories(first: 1) { totalCount } } } }";

/// One query per user, 16 at a time, so every actor a scenario uses is live before it is
/// measured (the cold start of many actors at once is the wake scenario's subject).
/// Returns the seconds it took.
async fn prime(addr: SocketAddr, tokens: &[String]) -> Result<f64> {
    let seconds = query_each(addr, tokens, TOUCH_QUERY).await.context("priming query")?;
    log(format!("primed {} users in {seconds:.1}s", tokens.len()));
    Ok(seconds)
}

/// `query` once as each user, 16 at a time; the seconds it took.
async fn query_each(addr: SocketAddr, tokens: &[String], query: &'static str) -> Result<f64> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(tokens.to_vec());
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (next, tokens) = (next.clone(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut http = Http::new(addr);
            loop {
                let i = next.fetch_add(1, Relaxed) as usize;
                let Some(token) = tokens.get(i) else { return Ok::<_, anyhow::Error>(()) };
                http.graphql(Some(token), query, json!({})).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

struct Tabs {
    stats: Arc<TabStats>,
    stop: watch::Sender<bool>,
    /// (user index, task returning that tab's story-event count)
    handles: Vec<(usize, JoinHandle<u64>)>,
    failed: usize,
}

/// Open `tabs` tabs for each token, at most `connect_concurrency` handshakes at once.
async fn open_tabs(common: &Common, tokens: &[String], tabs: usize, clock: Instant, latency: Option<Arc<LatencySink>>) -> Result<Tabs> {
    let started = Instant::now();
    let stats = Arc::new(TabStats::default());
    let (stop, stop_rx) = watch::channel(false);
    let semaphore = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let mut opening = futures::stream::FuturesUnordered::new();
    for tab in 0..tabs {
        for (user, token) in tokens.iter().enumerate() {
            let (token, semaphore, addr) = (token.clone(), semaphore.clone(), common.addr);
            let _ = tab;
            opening.push(async move {
                let _permit = semaphore.acquire_owned().await;
                (user, client::open_tab(addr, &token).await)
            });
        }
    }
    let mut handles = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    while let Some((user, result)) = opening.next().await {
        match result {
            Ok(ws) => {
                let task = client::run_tab(ws, stats.clone(), clock, latency.clone(), stop_rx.clone());
                handles.push((user, tokio::spawn(task)));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    log(format!(
        "opened {} tabs ({} failed{}) in {:.1}s",
        handles.len(),
        failed,
        first_error.map(|e| format!(", first: {e}")).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    ));
    if handles.is_empty() {
        bail!("no tab could be opened");
    }
    Ok(Tabs { stats, stop, handles, failed })
}

impl Tabs {
    /// Stop every tab; per-user lists of story-event counts.
    async fn close(self) -> HashMap<usize, Vec<u64>> {
        let _ = self.stop.send(true);
        let mut counts: HashMap<usize, Vec<u64>> = HashMap::new();
        for (user, handle) in self.handles {
            let count = tokio::time::timeout(Duration::from_secs(5), handle).await.ok().and_then(|r| r.ok()).unwrap_or(0);
            counts.entry(user).or_default().push(count);
        }
        counts
    }
}

/// Wait until `target` story events arrived, or no new one came for `quiet`, or `limit` passed.
async fn drain(stats: &TabStats, target: u64, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    let mut last = stats.story_events.load(Relaxed);
    let mut last_change = Instant::now();
    while started.elapsed() < limit {
        let now = stats.story_events.load(Relaxed);
        if now >= target {
            return;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= quiet {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Events expected (sum over tabs of the user's acknowledged mutations) and lost.
fn expected_and_lost(counts: &HashMap<usize, Vec<u64>>, acked: &[AtomicU64]) -> (u64, u64) {
    let (mut expected, mut lost) = (0u64, 0u64);
    for (user, tabs) in counts {
        let acked = acked[*user].load(Relaxed);
        for received in tabs {
            expected += acked;
            lost += acked.saturating_sub(*received);
        }
    }
    (expected, lost)
}

fn quantiles_ms(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
    })
}

/// Send mutation `n` (its title carries the send time on `clock`); record its HTTP latency
/// (when sent at or after `record_from_us` on `clock`) and count it as acknowledged, or count
/// the failure (logging the first). True when acked.
#[allow(clippy::too_many_arguments)]
async fn send_numbered(
    http: &mut Http,
    token: &str,
    n: u64,
    clock: Instant,
    record_from_us: u64,
    acked: &AtomicU64,
    failures: &AtomicU64,
    latency: &mut Histogram<u64>,
) -> bool {
    let sent = Instant::now();
    let sent_us = clock.elapsed().as_micros() as u64;
    match client::create_story(http, token, n, sent_us).await {
        Ok(()) => {
            acked.fetch_add(1, Relaxed);
            if sent_us >= record_from_us {
                let _ = latency.record(sent.elapsed().as_micros() as u64);
            }
            true
        }
        Err(e) => {
            if failures.fetch_add(1, Relaxed) == 0 {
                log(format!("first mutation failure: {e:#}"));
            }
            false
        }
    }
}

fn histogram() -> Histogram<u64> {
    client::latency_histogram()
}

fn base(common: &Common, scenario: &str) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("scenario".into(), json!(common.label.as_deref().unwrap_or(scenario)));
    map.insert("system".into(), json!(common.system));
    map
}

async fn signup(args: SignupArgs) -> Result<Value> {
    let started = Instant::now();
    let tokens = tokens(&args.common, args.users).await?;
    let mut out = base(&args.common, "signup");
    out.insert("users".into(), json!(tokens.len()));
    out.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
    Ok(Value::Object(out))
}

async fn fanout(args: FanoutArgs) -> Result<Value> {
    let common = &args.common;
    let mutators = args.mutators.min(args.users).max(1);
    let tokens = tokens(common, args.users).await?;
    let clock = Instant::now();
    let tabs = open_tabs(common, &tokens, args.tabs, clock, None).await?;
    let sockets = tabs.handles.len();
    let primed_s = prime(common.addr, &tokens).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..args.users).map(|_| AtomicU64::new(0)).collect());
    let failures = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let duration = Duration::from_secs_f64(args.duration);
    let cpu_before = procfs::cpu_seconds(common.server_pid);
    let events_before = tabs.stats.story_events.load(Relaxed);
    let started = Instant::now();
    let deadline = started + duration;
    let mut loops = Vec::new();
    let shared_tokens = Arc::new(tokens.clone());
    for pinned in sender_plan(&args, mutators) {
        let (tokens, acked, failures, seq, addr) = (shared_tokens.clone(), acked.clone(), failures.clone(), seq.clone(), common.addr);
        loops.push(tokio::spawn(async move {
            let mut http = Http::new(addr);
            let mut latency = histogram();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Relaxed);
                let user = pinned.unwrap_or((n % mutators as u64) as usize);
                if !send_numbered(&mut http, &tokens[user], n, clock, 0, &acked[user], &failures, &mut latency).await {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            latency
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    let window_events = tabs.stats.story_events.load(Relaxed) - events_before;
    let cpu_window = procfs::cpu_seconds(common.server_pid).zip(cpu_before).map(|(a, b)| a - b);
    let mut http_latency = histogram();
    for l in loops {
        if let Ok(Ok(h)) = tokio::time::timeout(Duration::from_secs(30), l).await {
            http_latency.add(h)?;
        }
    }
    let acked_total: u64 = acked.iter().map(|a| a.load(Relaxed)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let target: u64 = acked.iter().take(mutators).map(|a| a.load(Relaxed)).sum::<u64>() * args.tabs as u64;
    drain(&tabs.stats, target, Duration::from_secs(3), Duration::from_secs(30)).await;
    let stats = tabs.stats.clone();
    let failed_tabs = tabs.failed;
    let counts = tabs.close().await;
    let (expected, lost) = expected_and_lost(&counts, &acked);
    let received = stats.story_events.load(Relaxed);
    let mut out = base(common, "fanout");
    let secs = duration.as_secs_f64();
    out.extend([
        ("users".into(), json!(args.users)),
        ("tabs_per_user".into(), json!(args.tabs)),
        ("sockets".into(), json!(sockets)),
        ("sockets_failed".into(), json!(failed_tabs)),
        ("mutating_users".into(), json!(mutators)),
        ("prime_s".into(), json!(primed_s)),
        ("loops_per_user".into(), json!(args.senders.map_or(Some(args.concurrency), |_| None))),
        ("senders".into(), json!(args.senders)),
        ("duration_s".into(), json!(secs)),
        ("mutations_ok".into(), json!(acked_total)),
        ("mutations_failed".into(), json!(failures.load(Relaxed))),
        ("mutations_per_s".into(), json!((acked_total as f64 / elapsed).round())),
        ("events_in_window".into(), json!(window_events)),
        ("events_per_s".into(), json!((window_events as f64 / secs).round())),
        ("events_received".into(), json!(received)),
        ("events_expected".into(), json!(expected)),
        ("events_lost".into(), json!(lost)),
        ("other_events".into(), json!(stats.other_events.load(Relaxed))),
        ("event_errors".into(), json!(stats.errors.load(Relaxed))),
        ("sockets_dropped".into(), json!(stats.dropped.load(Relaxed))),
        ("server_cpu_s".into(), json!(cpu_window)),
        (
            "server_cpu_us_per_event".into(),
            json!(cpu_window.filter(|_| window_events > 0).map(|c| (c * 1e6 / window_events as f64 * 100.0).round() / 100.0)),
        ),
        ("mutation_http".into(), quantiles_ms(&http_latency)),
    ]);
    Ok(Value::Object(out))
}

/// The user each fan-out loop sends as: `--concurrency` loops pinned to each mutating user, or
/// with `--senders`, that many loops that take the mutating users in turn (`None`).
fn sender_plan(args: &FanoutArgs, mutators: usize) -> Vec<Option<usize>> {
    match args.senders {
        Some(n) => vec![None; n.max(1)],
        None => (0..mutators).flat_map(|user| std::iter::repeat_n(Some(user), args.concurrency.max(1))).collect(),
    }
}

/// The latency scenario; with a swap plan, the swap scenario (the same load, components
/// replaced during the recorded window).
async fn latency(args: LatencyArgs, swaps: Option<SwapPlan>) -> Result<Value> {
    let common = &args.common;
    let signing_up = Instant::now();
    let tokens = tokens(common, args.users).await?;
    let signup_s = signing_up.elapsed().as_secs_f64();
    let mutate_addr = args.mutate_addr.unwrap_or(common.addr);
    let rss_before_tabs = common.server_pid.and_then(|pid| procfs::rss_bytes(pid).ok());
    let clock = Instant::now();
    // Warm-up counts from when mutations start; the threshold is set once that is known.
    let sink = Arc::new(LatencySink::new(u64::MAX));
    let tabs = open_tabs(common, &tokens, args.tabs, clock, Some(sink.clone())).await?;
    let connect_s = clock.elapsed().as_secs_f64();
    let rss_subscribed = common.server_pid.and_then(|pid| procfs::rss_bytes(pid).ok());
    // Sign-ups made here (the in-memory peers') are not part of coming back from a restart.
    let restart_to_subscribed_s = args.restarted_at_ms.map(|at| seconds_since_unix_ms(at) - signup_s);
    let sockets = tabs.handles.len();
    let primed_s = match args.no_prime {
        true => None,
        false => {
            let seconds = prime(mutate_addr, &tokens).await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            Some(seconds)
        }
    };

    if let Some(start) = &args.start_file {
        log("ready".to_string());
        while !start.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let started = Instant::now();
    let record_from_us = (started - clock + Duration::from_secs_f64(args.warmup)).as_micros() as u64;
    sink.record_from_us.store(record_from_us, Relaxed);
    let swapping = swaps.map(|plan| spawn_swaps(common.addr, plan, started, &args));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..args.users).map(|_| AtomicU64::new(0)).collect());
    let failures = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let (senders, workers) = spawn_mutation_workers(mutate_addr, &tokens, clock, record_from_us, &acked, &failures, &in_flight);
    let cpu_before = procfs::cpu_seconds(common.server_pid);
    let paced = pace(&args, started, &senders, &in_flight).await;
    let send_elapsed = started.elapsed().as_secs_f64();
    drop(senders);
    let mut http_latency = histogram();
    for w in workers {
        if let Ok(Ok(h)) = tokio::time::timeout(Duration::from_secs(30), w).await {
            http_latency.add(h)?;
        }
    }
    let cpu = procfs::cpu_seconds(common.server_pid).zip(cpu_before).map(|(a, b)| a - b);
    let acked_total: u64 = acked.iter().map(|a| a.load(Relaxed)).sum();
    drain(&tabs.stats, acked_total * args.tabs as u64, Duration::from_secs(3), Duration::from_secs(30)).await;
    let stats = tabs.stats.clone();
    let failed_tabs = tabs.failed;
    let counts = tabs.close().await;
    let (expected, lost) = expected_and_lost(&counts, &acked);
    let h = sink.histogram.lock().unwrap().clone();
    let by_second = p99_by_second(&sink, args.duration);
    let swaps_done = match swapping {
        Some(handle) => Some(handle.await.unwrap_or_default()),
        None => None,
    };
    let mut out = base(common, if swaps_done.is_some() { "swap" } else { "latency" });
    if let Some(done) = swaps_done {
        out.insert("swaps".into(), json!(done));
    }
    out.extend([
        ("users".into(), json!(args.users)),
        ("tabs_per_user".into(), json!(args.tabs)),
        ("sockets".into(), json!(sockets)),
        ("sockets_failed".into(), json!(failed_tabs)),
        ("target_rate".into(), json!(args.rate)),
        ("signup_s".into(), json!(signup_s)),
        ("connect_s".into(), json!(connect_s)),
        ("restart_to_subscribed_s".into(), json!(restart_to_subscribed_s)),
        ("prime_s".into(), json!(primed_s)),
        ("duration_s".into(), json!(args.duration)),
        ("warmup_s".into(), json!(args.warmup)),
        ("max_in_flight".into(), json!(args.max_in_flight)),
        ("mutations_sent".into(), json!(paced.sent)),
        ("mutations_ok".into(), json!(acked_total)),
        ("mutations_failed".into(), json!(failures.load(Relaxed))),
        ("mutations_dropped_backlog".into(), json!(paced.backlog)),
        ("mutations_not_sent_in_flight".into(), json!(paced.over_in_flight)),
        ("achieved_rate".into(), json!((acked_total as f64 / send_elapsed).round())),
        ("events_received".into(), json!(stats.story_events.load(Relaxed))),
        ("events_expected".into(), json!(expected)),
        ("events_lost".into(), json!(lost)),
        ("other_events".into(), json!(stats.other_events.load(Relaxed))),
        ("sockets_dropped".into(), json!(stats.dropped.load(Relaxed))),
        ("server_cpu_s".into(), json!(cpu)),
        ("server_rss_before_tabs".into(), json!(rss_before_tabs)),
        ("server_rss_subscribed".into(), json!(rss_subscribed)),
        ("event_latency".into(), quantiles_ms(&h)),
        ("event_p99_ms_by_second".into(), json!(by_second)),
        ("mutation_http".into(), quantiles_ms(&http_latency)),
    ]);
    Ok(Value::Object(out))
}

/// Event p99 in ms for each second of a load of `duration` seconds, by the second the mutation
/// was written in. The last mutation is due at the very end, and one written late may come
/// after it: both count in the last second.
fn p99_by_second(sink: &LatencySink, duration: f64) -> Vec<Value> {
    let mut seconds = sink.by_second.lock().unwrap().clone();
    let last = (duration.ceil() as usize).max(1);
    if seconds.len() > last {
        for late in seconds.split_off(last) {
            let _ = seconds[last - 1].add(late);
        }
    }
    seconds.iter().map(|h| json!(h.value_at_quantile(0.99) as f64 / 1000.0)).collect()
}

/// Seconds from a Unix time in ms to now.
fn seconds_since_unix_ms(at_ms: u64) -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_secs_f64() - at_ms as f64 / 1000.0
}

/// One task per user that sends the numbers it is given as that user's mutations, one at a
/// time on its own HTTP connection, and takes each off `in_flight` once answered. Returns the
/// senders (one per user, 64 queued at most) and the tasks (their mutation HTTP latencies).
#[allow(clippy::type_complexity)]
fn spawn_mutation_workers(
    addr: SocketAddr,
    tokens: &[String],
    clock: Instant,
    record_from_us: u64,
    acked: &Arc<Vec<AtomicU64>>,
    failures: &Arc<AtomicU64>,
    in_flight: &Arc<AtomicU64>,
) -> (Vec<mpsc::Sender<u64>>, Vec<JoinHandle<Histogram<u64>>>) {
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for (user, token) in tokens.iter().enumerate() {
        let (tx, mut rx) = mpsc::channel::<u64>(64);
        senders.push(tx);
        let (token, acked, failures, in_flight) = (token.clone(), acked.clone(), failures.clone(), in_flight.clone());
        workers.push(tokio::spawn(async move {
            let mut http = Http::new(addr);
            let _ = http.ready().await;
            let mut latency = histogram();
            while let Some(n) = rx.recv().await {
                send_numbered(&mut http, &token, n, clock, record_from_us, &acked[user], &failures, &mut latency).await;
                in_flight.fetch_sub(1, Relaxed);
            }
            latency
        }));
    }
    (senders, workers)
}

/// What the open loop did with the mutations it was due to send.
struct Paced {
    /// Numbered, whether sent or not.
    sent: u64,
    /// Not sent: the user already had 64 queued.
    backlog: u64,
    /// Not sent: `--max-in-flight` were queued or in flight.
    over_in_flight: u64,
}

/// The open loop: `--rate` mutations a second, round-robin over the users, for `--duration`.
async fn pace(args: &LatencyArgs, started: Instant, senders: &[mpsc::Sender<u64>], in_flight: &AtomicU64) -> Paced {
    let mut paced = Paced { sent: 0, backlog: 0, over_in_flight: 0 };
    let duration = Duration::from_secs_f64(args.duration);
    let total = (args.rate * args.duration).round() as u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while paced.sent < total && started.elapsed() < duration + Duration::from_secs(1) {
        ticker.tick().await;
        let target = ((started.elapsed().as_secs_f64() * args.rate) as u64).min(total);
        while paced.sent < target {
            let user = (paced.sent % args.users as u64) as usize;
            if args.max_in_flight.is_some_and(|max| in_flight.load(Relaxed) >= max) {
                paced.over_in_flight += 1;
            } else {
                // Counted before the worker can take it off.
                in_flight.fetch_add(1, Relaxed);
                if senders[user].try_send(paced.sent).is_err() {
                    in_flight.fetch_sub(1, Relaxed);
                    paced.backlog += 1;
                }
            }
            paced.sent += 1;
        }
    }
    paced
}

async fn idle_memory(args: IdleArgs) -> Result<Value> {
    let common = &args.common;
    let Some(pid) = common.server_pid else { bail!("idle-memory needs --server-pid") };
    let tokens = tokens(common, args.users).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = procfs::rss_bytes(pid)?;
    let clock = Instant::now();
    let tabs = open_tabs(common, &tokens, args.tabs, clock, None).await?;
    let sockets = tabs.handles.len();
    let rss_open = procfs::rss_bytes(pid)?;
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let rss_settled = procfs::rss_bytes(pid)?;
    let dropped = tabs.stats.dropped.load(Relaxed);
    let failed = tabs.failed;
    tabs.close().await;
    let per = |after: u64| ((after as f64 - rss_before as f64) / sockets as f64).round();
    let mut out = base(common, "idle-memory");
    out.extend([
        ("users".into(), json!(args.users)),
        ("tabs_per_user".into(), json!(args.tabs)),
        ("sockets".into(), json!(sockets)),
        ("sockets_failed".into(), json!(failed)),
        ("sockets_dropped".into(), json!(dropped)),
        ("settle_s".into(), json!(args.settle)),
        ("rss_before".into(), json!(rss_before)),
        ("rss_open".into(), json!(rss_open)),
        ("rss_settled".into(), json!(rss_settled)),
        ("bytes_per_socket_open".into(), json!(per(rss_open))),
        ("bytes_per_socket".into(), json!(per(rss_settled))),
    ]);
    Ok(Value::Object(out))
}

async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text)).await.ok()?.ok()?;
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().last()).and_then(|v| v.parse().ok())
}

async fn wake(args: WakeArgs) -> Result<Value> {
    let common = &args.common;
    let tokens = tokens(common, args.users).await?;
    let mut clients: Vec<Http> = tokens.iter().map(|_| Http::new(common.addr)).collect();
    let (mut cold, mut warm) = (histogram(), histogram());
    // Round 0 creates every actor for the first time; it is not recorded.
    for (http, token) in clients.iter_mut().zip(&tokens) {
        http.graphql(Some(token), &args.query, json!({})).await.context("wake query")?;
    }
    let evictions_before = metric(common.addr, "realtime_evictions_total").await;
    for _ in 0..args.rounds {
        tokio::time::sleep(Duration::from_secs_f64(args.idle_wait)).await;
        for (http, token) in clients.iter_mut().zip(&tokens) {
            http.ready().await?;
            let t = Instant::now();
            http.graphql(Some(token), &args.query, json!({})).await?;
            cold.record(t.elapsed().as_micros() as u64)?;
            http.ready().await?;
            let t = Instant::now();
            http.graphql(Some(token), &args.query, json!({})).await?;
            warm.record(t.elapsed().as_micros() as u64)?;
        }
    }
    let evictions_after = metric(common.addr, "realtime_evictions_total").await;
    let ms = |v: u64| v as f64 / 1000.0;
    let mut out = base(common, "wake");
    out.extend([
        ("users".into(), json!(args.users)),
        ("rounds".into(), json!(args.rounds)),
        ("idle_wait_s".into(), json!(args.idle_wait)),
        ("query".into(), json!(args.query)),
        ("evictions".into(), json!(evictions_before.zip(evictions_after).map(|(a, b)| b - a))),
        ("cold".into(), quantiles_ms(&cold)),
        ("warm".into(), quantiles_ms(&warm)),
        ("delta_p50_ms".into(), json!(ms(cold.value_at_quantile(0.5)) - ms(warm.value_at_quantile(0.5)))),
        ("delta_p99_ms".into(), json!(ms(cold.value_at_quantile(0.99)) - ms(warm.value_at_quantile(0.99)))),
    ]);
    Ok(Value::Object(out))
}
