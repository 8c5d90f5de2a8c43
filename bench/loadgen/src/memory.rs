//! The memory of a server as it lives, beyond idle sockets: users coming alive
//! (`live-memory`) and a crowd of new users signing up (`signup-burst`). RSS is the server's
//! VmRSS from /proc, read by this separate process.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::{base, open_tabs, procfs, query_each, sign_up_many, tokens, Common};

const MIB: f64 = 1024.0 * 1024.0;

/// The query that makes a user live: its graphql and library actors (our server) answer it.
const LIVE_QUERY: &str = "{ me { library { stories(first: 1) { totalCount } } } }";

#[derive(Args, Clone)]
pub struct LiveArgs {
    #[command(flatten)]
    pub common: Common,
    /// Users made live by one HTTP query each.
    #[arg(long, default_value_t = 300)]
    users: usize,
    /// Other users, whose tabs are then opened and subscribed (the per-socket figure at open).
    #[arg(long, default_value_t = 1000)]
    socket_users: usize,
    #[arg(long, default_value_t = 3)]
    tabs: usize,
    /// Seconds the server is left alone before each RSS reading.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
}

/// RSS before; one query per live user; RSS after (bytes per live user); then the other
/// users' tabs opened; RSS after (bytes per socket at open). The server's idle timeout must
/// be longer than all of it, so nothing is evicted on the way.
pub async fn live_memory(args: LiveArgs) -> Result<Value> {
    let common = &args.common;
    let Some(pid) = common.server_pid else { bail!("live-memory needs --server-pid") };
    if args.users == 0 || args.socket_users == 0 || args.tabs == 0 {
        bail!("live-memory needs --users, --socket-users and --tabs above 0");
    }
    let tokens = tokens(common, args.users + args.socket_users).await?;
    let (live, socket_users) = tokens.split_at(args.users);
    let settle = Duration::from_secs_f64(args.settle);
    tokio::time::sleep(settle).await;
    let (rss_before, pss_before) = (procfs::rss_bytes(pid)?, procfs::pss_bytes(pid)?);
    let query_s = query_each(common.addr, live, LIVE_QUERY).await.context("live-user query")?;
    tokio::time::sleep(settle).await;
    let (rss_live, pss_live) = (procfs::rss_bytes(pid)?, procfs::pss_bytes(pid)?);
    let tabs = open_tabs(common, socket_users, args.tabs, Instant::now(), None).await?;
    let sockets = tabs.handles.len();
    tokio::time::sleep(settle).await;
    let rss_open = procfs::rss_bytes(pid)?;
    let (dropped, failed) = (tabs.stats.dropped.load(Relaxed), tabs.failed);
    tabs.close().await;
    let per = |after: u64, before: u64, n: usize| ((after as f64 - before as f64) / n as f64).round();
    let mut out = base(common, "live-memory");
    out.extend([
        ("users".into(), json!(args.users)),
        ("query".into(), json!(LIVE_QUERY)),
        ("query_s".into(), json!(query_s)),
        ("settle_s".into(), json!(args.settle)),
        ("rss_before".into(), json!(rss_before)),
        ("rss_live".into(), json!(rss_live)),
        ("bytes_per_live_user".into(), json!(per(rss_live, rss_before, args.users))),
        ("pss_before".into(), json!(pss_before)),
        ("pss_live".into(), json!(pss_live)),
        ("pss_bytes_per_live_user".into(), json!(per(pss_live, pss_before, args.users))),
        ("socket_users".into(), json!(args.socket_users)),
        ("tabs_per_user".into(), json!(args.tabs)),
        ("sockets".into(), json!(sockets)),
        ("sockets_failed".into(), json!(failed)),
        ("sockets_dropped".into(), json!(dropped)),
        ("rss_open".into(), json!(rss_open)),
        ("bytes_per_socket_open".into(), json!(per(rss_open, rss_live, sockets))),
    ]);
    Ok(Value::Object(out))
}

#[derive(Args, Clone)]
pub struct BurstArgs {
    #[command(flatten)]
    pub common: Common,
    /// New users to sign up (not added to --tokens-file).
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Sign-ups in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to keep sampling RSS after the last sign-up was answered.
    #[arg(long, default_value_t = 10.0)]
    observe: f64,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 0.5)]
    interval: f64,
    /// RSS is "back" when at most this many MiB above the baseline.
    #[arg(long, default_value_t = 50.0)]
    within_mib: f64,
}

/// Baseline RSS; `--users` sign-ups, `--concurrency` at a time, RSS sampled all along; then
/// RSS sampled for `--observe` seconds: the peak, the end, and when it came back.
pub async fn signup_burst(args: BurstArgs) -> Result<Value> {
    let common = &args.common;
    let Some(pid) = common.server_pid else { bail!("signup-burst needs --server-pid") };
    let interval = Duration::from_secs_f64(args.interval);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = procfs::rss_bytes(pid)?;
    let started = Instant::now();
    let (burst_over, over) = oneshot::channel::<()>();
    let during = tokio::spawn(sample_rss(pid, started, interval, async move {
        let _ = over.await;
    }));
    let signed_up = sign_up_many(common.addr, args.users, args.concurrency).await;
    let burst_s = started.elapsed().as_secs_f64();
    let _ = burst_over.send(());
    let mut samples = during.await?;
    signed_up?;
    // Samples at 0, interval, ... observe seconds after the burst.
    let observe = Duration::from_secs_f64(args.observe + args.interval / 2.0);
    let after = sample_rss(pid, started, interval, tokio::time::sleep(observe)).await;
    let within = (args.within_mib * MIB) as u64;
    let back_after_s = after.iter().find(|(_, rss)| rss.saturating_sub(baseline) <= within).map(|(t, _)| t - burst_s);
    let rss_end = after.last().map(|(_, rss)| *rss);
    samples.extend(after);
    let mut out = base(common, "signup-burst");
    out.extend([
        ("users".into(), json!(args.users)),
        ("concurrency".into(), json!(args.concurrency)),
        ("burst_s".into(), json!(burst_s)),
        ("signups_per_s".into(), json!((args.users as f64 / burst_s).round())),
        ("interval_s".into(), json!(args.interval)),
        ("observe_s".into(), json!(args.observe)),
        ("within_mib".into(), json!(args.within_mib)),
        ("rss_baseline".into(), json!(baseline)),
        ("rss_peak".into(), json!(procfs::peak_rss_bytes(pid)?)),
        ("rss_peak_sampled".into(), json!(samples.iter().map(|(_, rss)| *rss).max())),
        ("rss_end".into(), json!(rss_end)),
        ("back_within_s".into(), json!(back_after_s)),
        ("rss_mib_by_time".into(), json!(samples.iter().map(|(t, rss)| [(t * 10.0).round() / 10.0, (*rss as f64 / MIB * 10.0).round() / 10.0]).collect::<Vec<_>>())),
    ]);
    Ok(Value::Object(out))
}

/// The server's RSS every `interval`, the first at once, until `stop` completes:
/// (seconds since `from`, bytes).
async fn sample_rss(pid: u32, from: Instant, interval: Duration, stop: impl Future<Output = ()>) -> Vec<(f64, u64)> {
    let mut ticker = tokio::time::interval(interval);
    let mut samples = Vec::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return samples,
            _ = ticker.tick() => {
                if let Ok(rss) = procfs::rss_bytes(pid) {
                    samples.push((from.elapsed().as_secs_f64(), rss));
                }
            }
        }
    }
}
