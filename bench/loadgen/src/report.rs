//! `loadgen report`: BENCHMARKS.md from the JSON lines of one run (all systems, all
//! scenarios), with each figure side by side and our ratio to each peer.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct ReportArgs {
    /// The run's results: one JSON object per line, as the scenarios print them.
    #[arg(long)]
    results: PathBuf,
    /// Where to write the Markdown.
    #[arg(long)]
    out: PathBuf,
    /// The command that produced the run, quoted in the report.
    #[arg(long)]
    command: String,
    /// The date of the run.
    #[arg(long)]
    date: String,
    /// `full` or `short` (a smoke run whose figures mean nothing).
    #[arg(long, default_value = "full")]
    mode: String,
    /// The git commit the run was built from.
    #[arg(long, default_value = "")]
    commit: String,
    /// Markdown appended after the tables (analysis, profiles).
    #[arg(long)]
    notes: Option<PathBuf>,
}

const SYSTEMS: [(&str, &str); 3] = [
    ("ours", "Library Realtime (wasmtime host)"),
    ("node", "Node.js graphql-ws reference"),
    ("native", "native Rust (async-graphql + axum)"),
];

struct Results(Vec<Value>);

impl Results {
    fn get(&self, scenario: &str, system: &str) -> Option<&Value> {
        self.0.iter().rev().find(|v| v["scenario"] == scenario && v["system"] == system && v.get("failed").is_none())
    }

    fn num(&self, scenario: &str, system: &str, pointer: &str) -> Option<f64> {
        self.get(scenario, system)?.pointer(pointer)?.as_f64()
    }
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "n/a".into(),
    }
}

fn int(v: Option<f64>) -> String {
    match v {
        Some(v) => {
            let digits = format!("{:.0}", v);
            let (sign, digits) = digits.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &digits));
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            format!("{sign}{out}")
        }
        None => "n/a".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// A ratio; small ones keep two significant digits (1/213 is 0.0047x, not 0.00x).
fn x(v: Option<f64>) -> String {
    match v {
        Some(v) if v != 0.0 && v.abs() < 0.1 => {
            let decimals = (1 - v.abs().log10().floor() as i32).max(2) as usize;
            format!("{v:.decimals$}x")
        }
        Some(v) => format!("{v:.2}x"),
        None => "n/a".into(),
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores (nproc), {cpu}, {mem} RAM, Linux {}", kernel.trim())
}

pub fn write(args: &ReportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.results).with_context(|| format!("read {}", args.results.display()))?;
    let results = Results(text.lines().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok()).filter(|v| v.is_object()).collect());
    let r = &results;
    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "# Benchmarks\n")?;
    writeln!(
        w,
        "Library Realtime (`realtime-host` with its WebAssembly components) side by side with the two servers a user \
         would pick instead, in the same run on the same machine, driven by the same load generator through the same \
         public contract (`bench/loadgen`): the graphql-ws reference server on Node.js (`bench/peers/node`: `graphql-ws` \
         + `ws` + `graphql`, in memory) and a native Rust server (`bench/peers/native`: async-graphql + axum, in memory). \
         Server and load generator share the machine's cores; ratios matter more than absolute figures.\n"
    )?;
    if args.mode == "short" {
        writeln!(w, "> **Short (smoke) run**: small counts, a few seconds each. It proves the harness works; its figures are not measurements.\n")?;
    }
    writeln!(w, "- **Date:** {}", args.date)?;
    writeln!(w, "- **Machine:** {}", machine())?;
    if !args.commit.is_empty() {
        writeln!(w, "- **Commit:** `{}`", args.commit)?;
    }
    writeln!(w, "- **Command:** `{}`", args.command)?;
    writeln!(w, "- **Raw results:** one JSON line per scenario and system in `{}`\n", args.results.display())?;

    // Bars.
    let fan = |s| r.num("fanout", s, "/events_per_s");
    let p99 = |s| r.num("latency", s, "/event_latency/p99_ms");
    let mem = |s| r.num("idle-memory", s, "/bytes_per_socket");
    let fan_vs_node = ratio(fan("ours"), fan("node"));
    let mem_vs_node = ratio(mem("ours"), mem("node"));
    let wake_delta = r.num("wake", "ours", "/delta_p99_ms");
    let evicted = r.num("wake", "ours", "/evictions").map(|e| e > 0.0);
    let sandbox_fan = ratio(fan("native"), fan("ours"));
    let sandbox_p99 = ratio(p99("ours"), p99("native"));
    let lost: f64 = ["fanout", "latency"].iter().filter_map(|s| r.num(s, "ours", "/events_lost")).sum();
    writeln!(w, "## The bars\n")?;
    writeln!(w, "| bar | target | measured | |")?;
    writeln!(w, "|---|---|---|---|")?;
    writeln!(w, "| fan-out: events delivered/s vs the Node reference | ≥ 5x | {} | {} |", x(fan_vs_node), verdict(fan_vs_node.map(|v| v >= 5.0)))?;
    let lat_run = r
        .get("latency", "ours")
        .map(|v| format!(" (this run: {} /s over {} × {})", v["target_rate"], v["users"], v["tabs_per_user"]))
        .unwrap_or_default();
    writeln!(
        w,
        "| mutation → event at every tab, p99, at 1,000 mutations/s over 1,000 users × 3 tabs{lat_run} | < 5 ms | {} ms | {} |",
        fmt(p99("ours"), 2),
        verdict(p99("ours").map(|v| v < 5.0))
    )?;
    let mem_run = r.get("idle-memory", "ours").map(|v| format!(" (this run: {} sockets)", v["sockets"])).unwrap_or_default();
    writeln!(
        w,
        "| memory per idle subscribed socket vs Node, at 15,000 sockets{mem_run} | ≤ 0.25x | {} | {} |",
        x(mem_vs_node),
        verdict(mem_vs_node.map(|v| v <= 0.25))
    )?;
    writeln!(
        w,
        "| wake: first call into an evicted actor, p99 over warm | < 1 ms | {} ms{} | {} |",
        fmt(wake_delta, 2),
        match evicted {
            Some(false) => " (no eviction seen)",
            _ => "",
        },
        verdict(if evicted == Some(false) { None } else { wake_delta.map(|v| v < 1.0) })
    )?;
    writeln!(
        w,
        "| sandbox cost vs native Rust: fan-out events/s (native/ours), latency p99 (ours/native) | ≤ 1.5x | {} / {} | {} |",
        x(sandbox_fan),
        x(sandbox_p99),
        verdict(sandbox_fan.zip(sandbox_p99).map(|(a, b)| a <= 1.5 && b <= 1.5))
    )?;
    writeln!(w, "| events lost by our server in fan-out + latency | 0 | {} | {} |", int(Some(lost)), verdict(Some(lost == 0.0)))?;
    let swap = r.get("swap", "ours");
    let swap_failed = r.num("swap", "ours", "/mutations_failed");
    let swap_lost = r.num("swap", "ours", "/events_lost");
    let swap_dropped = r.num("swap", "ours", "/sockets_dropped");
    let swaps_ok = swap.and_then(|v| v["swaps"].as_array()).map(|a| (a.iter().filter(|s| s["status"] == 200).count(), a.len()));
    writeln!(
        w,
        "| hot swap under the latency load: sockets dropped / events lost / requests failed | 0 / 0 / 0 | {} / {} / {} ({} of {} swaps installed) | {} |\n",
        int(swap_dropped),
        int(swap_lost),
        int(swap_failed),
        swaps_ok.map_or("?".into(), |(ok, _)| ok.to_string()),
        swaps_ok.map_or("?".into(), |(_, n)| n.to_string()),
        verdict(swap.map(|_| {
            [swap_dropped, swap_lost, swap_failed].iter().all(|v| *v == Some(0.0)) && swaps_ok.is_some_and(|(ok, n)| ok == n && n > 0)
        }))
    )?;

    // Fan-out.
    writeln!(w, "## Fan-out\n")?;
    if let Some(v) = SYSTEMS.iter().find_map(|(s, _)| r.get("fanout", s)) {
        writeln!(
            w,
            "{} users × {} tabs ({} sockets), {} of them sending `createStory` flat out ({} loops each, one HTTP/1.1 \
             keep-alive connection per loop) for {} s. Events/s counts story events received by all tabs during the \
             window (each mutation also produces a `library:change` event, delivered too, counted as \"other\"). \
             Lost = acknowledged mutations × that user's tabs − story events received after a drain.\n",
            v["users"], v["tabs_per_user"], v["sockets"], v["mutating_users"], v["loops_per_user"], v["duration_s"]
        )?;
    }
    writeln!(w, "| system | sockets | mutations/s | **events/s** | other events | lost | server CPU µs/event | mutation HTTP p50 / p99 ms |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|")?;
    for (s, name) in SYSTEMS {
        if r.get("fanout", s).is_none() {
            writeln!(w, "| {name} | failed | | | | | | |")?;
            continue;
        }
        writeln!(
            w,
            "| {name} | {} | {} | **{}** | {} | {} | {} | {} / {} |",
            int(r.num("fanout", s, "/sockets")),
            int(r.num("fanout", s, "/mutations_per_s")),
            int(fan(s)),
            int(r.num("fanout", s, "/other_events")),
            int(r.num("fanout", s, "/events_lost")),
            fmt(r.num("fanout", s, "/server_cpu_us_per_event"), 1),
            fmt(r.num("fanout", s, "/mutation_http/p50_ms"), 2),
            fmt(r.num("fanout", s, "/mutation_http/p99_ms"), 2),
        )?;
    }
    writeln!(w, "\nOurs / Node: **{}** events/s. Ours / native: **{}** events/s.\n", x(fan_vs_node), x(ratio(fan("ours"), fan("native"))))?;

    // Latency.
    writeln!(w, "## Latency\n")?;
    if let Some(v) = SYSTEMS.iter().find_map(|(s, _)| r.get("latency", s)) {
        writeln!(
            w,
            "{} mutations/s (open loop, round-robin) over {} users × {} tabs ({} sockets) for {} s, the first {} s not \
             recorded. Before it, every user's actors are primed with one query (16 at a time): this measures the steady \
             state; the cost of a cold actor is the wake scenario's. Latency is from just before the mutation's HTTP \
             request is written to the story event's arrival at each tab (the title carries the send time), so each \
             mutation gives one sample per tab. The mutation HTTP figures (request written to response read) skip \
             the same first seconds.\n",
            v["target_rate"], v["users"], v["tabs_per_user"], v["sockets"], v["duration_s"], v["warmup_s"]
        )?;
    }
    writeln!(w, "| system | achieved mutations/s | samples | p50 ms | p90 ms | **p99 ms** | max ms | lost | mutation HTTP p50 / p99 ms | server CPU s |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|")?;
    for (s, name) in SYSTEMS {
        if r.get("latency", s).is_none() {
            writeln!(w, "| {name} | failed | | | | | | | | |")?;
            continue;
        }
        writeln!(
            w,
            "| {name} | {} | {} | {} | {} | **{}** | {} | {} | {} / {} | {} |",
            int(r.num("latency", s, "/achieved_rate")),
            int(r.num("latency", s, "/event_latency/count")),
            fmt(r.num("latency", s, "/event_latency/p50_ms"), 2),
            fmt(r.num("latency", s, "/event_latency/p90_ms"), 2),
            fmt(p99(s), 2),
            fmt(r.num("latency", s, "/event_latency/max_ms"), 2),
            int(r.num("latency", s, "/events_lost")),
            fmt(r.num("latency", s, "/mutation_http/p50_ms"), 2),
            fmt(r.num("latency", s, "/mutation_http/p99_ms"), 2),
            fmt(r.num("latency", s, "/server_cpu_s"), 1),
        )?;
    }
    writeln!(w, "\nOurs / Node: **{}** p99. Ours / native: **{}** p99 (lower is better).\n", x(ratio(p99("ours"), p99("node"))), x(sandbox_p99))?;

    // Idle memory.
    writeln!(w, "## Memory per idle subscribed socket\n")?;
    if let Some(v) = SYSTEMS.iter().find_map(|(s, _)| r.get("idle-memory", s)) {
        writeln!(
            w,
            "{} users × {} tabs ({} sockets), each subscribed to the library channel, then left idle for {} s \
             (our server runs with its default `--idle-timeout` of 10 s, so in a full run its actors are evicted \
             by then: hibernation). Bytes per socket = (server VmRSS after \
             − VmRSS before the sockets opened) / sockets. The load generator is a separate process.\n",
            v["users"], v["tabs_per_user"], v["sockets"], v["settle_s"]
        )?;
    }
    writeln!(w, "| system | sockets | RSS before MiB | RSS all open MiB | RSS after idle MiB | bytes/socket at open | **bytes/socket idle** |")?;
    writeln!(w, "|---|---|---|---|---|---|---|")?;
    let mib = |v: Option<f64>| fmt(v.map(|b| b / 1048576.0), 1);
    for (s, name) in SYSTEMS {
        if r.get("idle-memory", s).is_none() {
            writeln!(w, "| {name} | failed | | | | | |")?;
            continue;
        }
        writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} | **{}** |",
            int(r.num("idle-memory", s, "/sockets")),
            mib(r.num("idle-memory", s, "/rss_before")),
            mib(r.num("idle-memory", s, "/rss_open")),
            mib(r.num("idle-memory", s, "/rss_settled")),
            int(r.num("idle-memory", s, "/bytes_per_socket_open")),
            int(mem(s)),
        )?;
    }
    writeln!(w, "\nOurs / Node: **{}**. Ours / native: **{}** (lower is better).\n", x(mem_vs_node), x(ratio(mem("ours"), mem("native"))))?;

    // Wake.
    writeln!(w, "## Wake\n")?;
    if let Some(v) = SYSTEMS.iter().find_map(|(s, _)| r.get("wake", s)) {
        writeln!(
            w,
            "{} users, {} rounds: wait {} s (our server runs with a shorter `--idle-timeout`, so every actor is evicted), \
             then per user one query (cold) and at once the same query again (warm), one request at a time: `{}`. \
             The peers have no eviction; their cold/warm split only shows the noise.\n",
            v["users"], v["rounds"], v["idle_wait_s"], v["query"].as_str().unwrap_or("")
        )?;
    }
    writeln!(w, "| system | evictions seen | warm p50 / p99 ms | cold p50 / p99 / max ms | **cold − warm p99 ms** |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    for (s, name) in SYSTEMS {
        if r.get("wake", s).is_none() {
            writeln!(w, "| {name} | failed | | | |")?;
            continue;
        }
        let ev = r.num("wake", s, "/evictions");
        writeln!(
            w,
            "| {name} | {} | {} / {} | {} / {} / {} | **{}** |",
            if s == "ours" { int(ev) } else { "n/a (no eviction)".into() },
            fmt(r.num("wake", s, "/warm/p50_ms"), 2),
            fmt(r.num("wake", s, "/warm/p99_ms"), 2),
            fmt(r.num("wake", s, "/cold/p50_ms"), 2),
            fmt(r.num("wake", s, "/cold/p99_ms"), 2),
            fmt(r.num("wake", s, "/cold/max_ms"), 2),
            if s == "ours" { fmt(r.num("wake", s, "/delta_p99_ms"), 2) } else { format!("n/a ({})", fmt(r.num("wake", s, "/delta_p99_ms"), 2)) },
        )?;
    }
    writeln!(w)?;

    // Swap.
    writeln!(w, "## Hot swap under load\n")?;
    if let Some(v) = swap {
        writeln!(
            w,
            "The latency load again ({} mutations/s over {} users × {} tabs, {} s), and during the recorded window each \
             component is replaced through `PUT /admin/components/<name>` at evenly spaced moments. Each file is the \
             same code with a custom section appended, so it is a new version with a new digest, compiled afresh as a real \
             deploy would be; every actor moves to it between two calls. Only our server can do this; the peers would \
             restart.\n",
            v["target_rate"], v["users"], v["tabs_per_user"], v["duration_s"]
        )?;
        writeln!(w, "| component | at s | HTTP status | PUT took ms |")?;
        writeln!(w, "|---|---|---|---|")?;
        for s in v["swaps"].as_array().into_iter().flatten() {
            writeln!(w, "| {} | {} | {} | {} |", s["component"].as_str().unwrap_or("?"), fmt(s["at_s"].as_f64(), 1), s["status"], fmt(s["ms"].as_f64(), 1))?;
        }
        writeln!(
            w,
            "\n| sockets | mutations ok | **failed** | events received / expected | **lost** | **sockets dropped** | event p50 / p99 / max ms |"
        )?;
        writeln!(w, "|---|---|---|---|---|---|---|")?;
        writeln!(
            w,
            "| {} | {} | **{}** | {} / {} | **{}** | **{}** | {} / {} / {} |\n",
            int(r.num("swap", "ours", "/sockets")),
            int(r.num("swap", "ours", "/mutations_ok")),
            int(swap_failed),
            int(r.num("swap", "ours", "/events_received")),
            int(r.num("swap", "ours", "/events_expected")),
            int(swap_lost),
            int(swap_dropped),
            fmt(r.num("swap", "ours", "/event_latency/p50_ms"), 2),
            fmt(r.num("swap", "ours", "/event_latency/p99_ms"), 2),
            fmt(r.num("swap", "ours", "/event_latency/max_ms"), 2),
        )?;
    } else {
        writeln!(w, "Not run.\n")?;
    }

    if let Some(notes) = &args.notes {
        if let Ok(text) = std::fs::read_to_string(notes) {
            writeln!(w, "{}", text.trim_end())?;
        }
    }
    std::fs::write(&args.out, md)?;
    Ok(())
}
