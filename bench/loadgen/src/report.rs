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

/// The fan-out scenarios run with other arguments than `fanout`'s: (scenario, heading).
const FANOUT_VARIANTS: [(&str, &str); 3] = [
    ("fanout-all", "Fan-out: every user mutating"),
    ("fanout-3tabs", "Fan-out: few users mutating, 3 tabs each"),
    ("fanout-all-3tabs", "Fan-out: every user mutating, 3 tabs each"),
];

/// The scenarios in which our server must lose no event (swap has its own bar).
const LOSSLESS: [&str; 6] = ["fanout", "fanout-all", "fanout-3tabs", "fanout-all-3tabs", "latency", "restart"];

struct Results(Vec<Value>);

impl Results {
    fn get(&self, scenario: &str, system: &str) -> Option<&Value> {
        self.0.iter().rev().find(|v| v["scenario"] == scenario && v["system"] == system && v.get("failed").is_none())
    }

    fn num(&self, scenario: &str, system: &str, pointer: &str) -> Option<f64> {
        self.get(scenario, system)?.pointer(pointer)?.as_f64()
    }

    /// The first system's result of `scenario`, for the figures every system ran with.
    fn any(&self, scenario: &str) -> Option<&Value> {
        SYSTEMS.iter().find_map(|(s, _)| self.get(scenario, s))
    }

    /// Whether the run tried `scenario` at all (a failure leaves a `"failed": true` line).
    fn ran(&self, scenario: &str) -> bool {
        self.0.iter().any(|v| v["scenario"] == scenario)
    }
}

/// "## heading", then true; or "Not run." too when the run did not try `scenario`, then false.
fn heading(w: &mut String, r: &Results, scenario: &str, heading: &str) -> Result<bool> {
    writeln!(w, "## {heading}\n")?;
    if !r.ran(scenario) {
        writeln!(w, "Not run.\n")?;
    }
    Ok(r.ran(scenario))
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
    let lost: f64 = LOSSLESS.iter().filter_map(|s| r.num(s, "ours", "/events_lost")).sum();
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
    writeln!(w, "| events lost by our server in the fan-out, latency and restart scenarios | 0 | {} | {} |", int(Some(lost)), verdict(Some(lost == 0.0)))?;
    let swap = r.get("swap", "ours");
    let swap_failed = r.num("swap", "ours", "/mutations_failed");
    let swap_lost = r.num("swap", "ours", "/events_lost");
    let swap_dropped = r.num("swap", "ours", "/sockets_dropped");
    let swaps_ok = swap.and_then(|v| v["swaps"].as_array()).map(|a| (a.iter().filter(|s| s["status"] == 200).count(), a.len()));
    writeln!(
        w,
        "| hot swap under the latency load: sockets dropped / events lost / requests failed | 0 / 0 / 0 | {} / {} / {} ({} of {} swaps installed) | {} |",
        int(swap_dropped),
        int(swap_lost),
        int(swap_failed),
        swaps_ok.map_or("?".into(), |(ok, _)| ok.to_string()),
        swaps_ok.map_or("?".into(), |(_, n)| n.to_string()),
        verdict(swap.map(|_| {
            [swap_dropped, swap_lost, swap_failed].iter().all(|v| *v == Some(0.0)) && swaps_ok.is_some_and(|(ok, n)| ok == n && n > 0)
        }))
    )?;

    life_bars(w, r)?;
    writeln!(w)?;

    fanout_section(w, r, "fanout", "Fan-out")?;
    for (scenario, heading) in FANOUT_VARIANTS {
        fanout_section(w, r, scenario, heading)?;
    }

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

    restart_section(w, r)?;

    idle_section(w, r, "idle-memory", "Memory per idle subscribed socket")?;
    idle_section(w, r, "idle-memory-3tabs", "Memory per idle subscribed socket, 3 tabs per user")?;
    live_section(w, r)?;
    burst_section(w, r)?;

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

/// One row per system: `row(system)` for those with a result, else "failed" and `columns`
/// empty cells after it.
fn system_rows(w: &mut String, r: &Results, scenario: &str, columns: usize, row: impl Fn(&str) -> String) -> Result<()> {
    for (s, name) in SYSTEMS {
        match r.get(scenario, s) {
            Some(_) => writeln!(w, "| {name} | {} |", row(s))?,
            None => writeln!(w, "| {name} | failed |{}", " |".repeat(columns - 1))?,
        }
    }
    Ok(())
}

/// Ours / Node and ours / native of one figure, as a closing line: "... **2.00x**{what}.
/// ... **0.50x**{what}{note}."
fn ratios_line(w: &mut String, r: &Results, scenario: &str, pointer: &str, what: &str, note: &str) -> Result<()> {
    let of = |s| r.num(scenario, s, pointer);
    writeln!(w, "\nOurs / Node: **{}**{what}. Ours / native: **{}**{what}{note}.\n", x(ratio(of("ours"), of("node"))), x(ratio(of("ours"), of("native"))))?;
    Ok(())
}

/// A fan-out scenario (the `fanout` command, run under `scenario`'s name).
fn fanout_section(w: &mut String, r: &Results, scenario: &str, title: &str) -> Result<()> {
    // The first table of the report shows its rows even when not run, as it always has.
    if !heading(w, r, scenario, title)? && scenario != "fanout" {
        return Ok(());
    }
    if let Some(v) = r.any(scenario) {
        let senders = match v["senders"].as_u64() {
            Some(n) => format!(
                "{n} loops sending `createStory` flat out (one HTTP/1.1 keep-alive connection each, each loop taking \
                 the {} mutating users in turn)",
                v["mutating_users"]
            ),
            None => format!(
                "{} of them sending `createStory` flat out ({} loops each, one HTTP/1.1 keep-alive connection per loop)",
                v["mutating_users"], v["loops_per_user"]
            ),
        };
        writeln!(
            w,
            "{} users × {} tabs ({} sockets), {senders} for {} s. Events/s counts story events received by all tabs during the \
             window (each mutation also produces a `library:change` event, delivered too, counted as \"other\"). \
             Lost = acknowledged mutations × that user's tabs − story events received after a drain.\n",
            v["users"], v["tabs_per_user"], v["sockets"], v["duration_s"]
        )?;
    }
    writeln!(w, "| system | sockets | mutations/s | **events/s** | other events | lost | server CPU µs/event | mutation HTTP p50 / p99 ms |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|")?;
    let n = |s: &str, p: &str| r.num(scenario, s, p);
    system_rows(w, r, scenario, 7, |s| {
        format!(
            "{} | {} | **{}** | {} | {} | {} | {} / {}",
            int(n(s, "/sockets")),
            int(n(s, "/mutations_per_s")),
            int(n(s, "/events_per_s")),
            int(n(s, "/other_events")),
            int(n(s, "/events_lost")),
            fmt(n(s, "/server_cpu_us_per_event"), 1),
            fmt(n(s, "/mutation_http/p50_ms"), 2),
            fmt(n(s, "/mutation_http/p99_ms"), 2),
        )
    })?;
    ratios_line(w, r, scenario, "/events_per_s", " events/s", "")
}

/// An idle-memory scenario (the `idle-memory` command, run under `scenario`'s name).
fn idle_section(w: &mut String, r: &Results, scenario: &str, title: &str) -> Result<()> {
    if !heading(w, r, scenario, title)? && scenario != "idle-memory" {
        return Ok(());
    }
    if let Some(v) = r.any(scenario) {
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
    let n = |s: &str, p: &str| r.num(scenario, s, p);
    system_rows(w, r, scenario, 6, |s| {
        format!(
            "{} | {} | {} | {} | {} | **{}**",
            int(n(s, "/sockets")),
            mib(n(s, "/rss_before")),
            mib(n(s, "/rss_open")),
            mib(n(s, "/rss_settled")),
            int(n(s, "/bytes_per_socket_open")),
            int(n(s, "/bytes_per_socket")),
        )
    })?;
    ratios_line(w, r, scenario, "/bytes_per_socket", "", " (lower is better)")
}

fn mib(v: Option<f64>) -> String {
    fmt(v.map(|b| b / 1048576.0), 1)
}

/// The bars of a server as it lives (issue 9): restart, live users, idle sockets at 3 and at
/// 15 tabs per user, a sign-up burst, and fan-out in every shape.
fn life_bars(w: &mut String, r: &Results) -> Result<()> {
    let p99 = r.num("restart", "ours", "/event_latency/p99_ms");
    let run = r.get("restart", "ours").map(|v| format!(" (this run: {} /s over {} × {})", v["target_rate"], v["users"], v["tabs_per_user"])).unwrap_or_default();
    writeln!(
        w,
        "| restart: the latency load at once on a restarted server (every actor cold, every tab reconnecting), p99 from the first second{run} | < 100 ms | {} ms | {} |",
        fmt(p99, 2),
        verdict(p99.map(|v| v < 100.0))
    )?;
    let live = r.num("live-memory", "ours", "/bytes_per_live_user");
    writeln!(w, "| memory of one live user (one query: its actors instantiated) | ≤ 64 KiB | {} KiB | {} |", kib(live), verdict(live.map(|v| v <= 64.0 * 1024.0)))?;
    let open = |s| r.num("live-memory", s, "/bytes_per_socket_open");
    let open_vs_node = ratio(open("ours"), open("node"));
    writeln!(w, "| memory per socket at open (tabs subscribed, before the idle timeout) vs Node | ≤ 1x | {} | {} |", x(open_vs_node), verdict(open_vs_node.map(|v| v <= 1.0)))?;
    let idle3 = |s| r.num("idle-memory-3tabs", s, "/bytes_per_socket");
    let idle3_vs_node = ratio(idle3("ours"), idle3("node"));
    writeln!(
        w,
        "| memory per idle subscribed socket vs Node, at 3 tabs per user{} | ≤ 0.25x | {} | {} |",
        this_run_tabs(r, "idle-memory-3tabs"),
        x(idle3_vs_node),
        verdict(idle3_vs_node.map(|v| v <= 0.25))
    )?;
    let idle15 = r.num("idle-memory", "ours", "/bytes_per_socket");
    writeln!(
        w,
        "| memory per idle subscribed socket at 15 tabs per user{} | ≤ 3 KiB | {} KiB | {} |",
        this_run_tabs(r, "idle-memory"),
        kib(idle15),
        verdict(idle15.map(|v| v <= 3.0 * 1024.0))
    )?;
    burst_bar(w, r)?;
    for scenario in ["fanout-all", "fanout-3tabs", "fanout-all-3tabs"] {
        let of = |s| r.num(scenario, s, "/events_per_s");
        let vs_node = ratio(of("ours"), of("node"));
        let shape = r.any(scenario).map(fanout_shape).unwrap_or_else(|| format!("`{scenario}`"));
        writeln!(w, "| fan-out, {shape}: events delivered/s vs the Node reference | ≥ 5x | {} | {} |", x(vs_node), verdict(vs_node.map(|v| v >= 5.0)))?;
    }
    Ok(())
}

/// " (this run: U users × T tabs)" for an idle-memory scenario of ours.
fn this_run_tabs(r: &Results, scenario: &str) -> String {
    r.get(scenario, "ours").map(|v| format!(" (this run: {} users × {} tabs)", v["users"], v["tabs_per_user"])).unwrap_or_default()
}

/// "10 of 100 users mutating (4 loops each), 10 tabs each": the shape of a fan-out run.
fn fanout_shape(v: &Value) -> String {
    let senders = match v["senders"].as_u64() {
        Some(n) => format!("{n} senders over them"),
        None => format!("{} loops each", v["loops_per_user"]),
    };
    format!("{} of {} users mutating ({senders}), {} tabs each", v["mutating_users"], v["users"], v["tabs_per_user"])
}

fn burst_bar(w: &mut String, r: &Results) -> Result<()> {
    let Some(v) = r.get("signup-burst", "ours") else {
        return Ok(writeln!(w, "| memory after a burst of 2,000 sign-ups: back within 50 MiB of the baseline | ≤ 10 s | n/a | not measured |")?);
    };
    let back = v["back_within_s"].as_f64();
    let measured = match back {
        Some(s) => format!("{s:.1} s"),
        None => format!("not back in {} s", v["observe_s"]),
    };
    writeln!(
        w,
        "| memory after a burst of 2,000 sign-ups (this run: {}, {} at once): back within {} MiB of the baseline | ≤ 10 s | {measured} (peak {} MiB) | {} |",
        v["users"],
        v["concurrency"],
        fmt(v["within_mib"].as_f64(), 0),
        mib(v["rss_peak"].as_f64()),
        verdict(Some(back.is_some_and(|s| s <= 10.0)))
    )?;
    Ok(())
}

fn kib(v: Option<f64>) -> String {
    fmt(v.map(|b| b / 1024.0), 1)
}

/// The latency load at once on a restarted server: every tab reconnecting, every actor cold.
fn restart_section(w: &mut String, r: &Results) -> Result<()> {
    if !heading(w, r, "restart", "Restart under load")? {
        return Ok(());
    }
    if let Some(v) = r.any("restart") {
        writeln!(
            w,
            "Each server is stopped (SIGTERM) and started again; ours on the same data dir, with its {} users signed up \
             earlier and nothing open. At once {} tabs per user connect (64 handshakes in flight at most) and subscribe, \
             then {} `createStory`/s run round-robin over the users for {} s, with no priming and no warm-up: every \
             second is recorded. A mutation is not sent when {} are already queued or in flight (\"not sent\"). \
             \"Restart → subscribed\" runs from the start of the new process to the last tab's subscription confirmed. \
             The peers keep everything in memory, so their sessions die with the process: for them a restart is a fresh \
             process over which the users sign up again (a map insert each, no password hashing), and that sign-up time \
             is left out of \"restart → subscribed\".\n",
            v["users"], v["tabs_per_user"], v["target_rate"], v["duration_s"], v["max_in_flight"]
        )?;
    }
    writeln!(w, "| system | restart → subscribed s | achieved mutations/s | not sent | samples | p50 ms | p90 ms | **p99 ms** | max ms | lost | mutation HTTP p50 / p99 ms |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    let n = |s: &str, p: &str| r.num("restart", s, p);
    system_rows(w, r, "restart", 10, |s| {
        format!(
            "{} | {} | {} | {} | {} | {} | **{}** | {} | {} | {} / {}",
            fmt(n(s, "/restart_to_subscribed_s"), 2),
            int(n(s, "/achieved_rate")),
            int(n(s, "/mutations_not_sent_in_flight")),
            int(n(s, "/event_latency/count")),
            fmt(n(s, "/event_latency/p50_ms"), 2),
            fmt(n(s, "/event_latency/p90_ms"), 2),
            fmt(n(s, "/event_latency/p99_ms"), 2),
            fmt(n(s, "/event_latency/max_ms"), 2),
            int(n(s, "/events_lost")),
            fmt(n(s, "/mutation_http/p50_ms"), 2),
            fmt(n(s, "/mutation_http/p99_ms"), 2),
        )
    })?;
    by_second_table(w, r)?;
    ratios_line(w, r, "restart", "/event_latency/p99_ms", " p99", " (lower is better)")
}

/// Event p99 by the second its mutation was sent in: how quickly a restart settles.
fn by_second_table(w: &mut String, r: &Results) -> Result<()> {
    let series = |s: &str| r.get("restart", s).and_then(|v| v["event_p99_ms_by_second"].as_array().cloned()).unwrap_or_default();
    let seconds = SYSTEMS.iter().map(|(s, _)| series(s).len()).max().unwrap_or(0);
    if seconds == 0 {
        return Ok(());
    }
    writeln!(w, "\nEvent p99 (ms) by the second its mutation was sent in:\n")?;
    writeln!(w, "| system |{}", (1..=seconds).map(|i| format!(" {i} |")).collect::<String>())?;
    writeln!(w, "|---|{}", "---|".repeat(seconds))?;
    system_rows(w, r, "restart", seconds, |s| series(s).iter().map(|p| fmt(p.as_f64(), 1)).collect::<Vec<_>>().join(" | "))
}

/// Memory of live users (one query each) and of sockets at open.
fn live_section(w: &mut String, r: &Results) -> Result<()> {
    if !heading(w, r, "live-memory", "Memory of a live user")? {
        return Ok(());
    }
    if let Some(v) = r.any("live-memory") {
        writeln!(
            w,
            "On a freshly started server (ours over users signed up earlier, with `--idle-timeout 120s` so nothing is \
             evicted meanwhile): RSS before; {} users each send `{}` once over HTTP (16 at a time); RSS {} s later. Then \
             {} other users open {} tabs each, subscribed to the library channel; RSS {} s later. Bytes per live user = \
             (RSS after the queries − RSS before) / users; bytes per socket at open = (RSS with the tabs open − RSS \
             after the queries) / sockets. The peers keep no per-user state beyond their maps of sessions and stories. \
             PSS per live user is the same difference in Pss (/proc/PID/smaps_rollup), which counts a page shared by \
             several mappings once: our server maps each component's copy-on-write memory image into every instance, \
             and VmRSS counts those clean, shared pages once per instance.\n",
            v["users"],
            v["query"].as_str().unwrap_or(""),
            v["settle_s"],
            v["socket_users"],
            v["tabs_per_user"],
            v["settle_s"]
        )?;
    }
    writeln!(w, "| system | live users | RSS before MiB | RSS live MiB | **bytes/live user** | PSS bytes/live user | sockets | RSS all open MiB | **bytes/socket at open** |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    let n = |s: &str, p: &str| r.num("live-memory", s, p);
    system_rows(w, r, "live-memory", 8, |s| {
        format!(
            "{} | {} | {} | **{}** | {} | {} | {} | **{}**",
            int(n(s, "/users")),
            mib(n(s, "/rss_before")),
            mib(n(s, "/rss_live")),
            int(n(s, "/bytes_per_live_user")),
            int(n(s, "/pss_bytes_per_live_user")),
            int(n(s, "/sockets")),
            mib(n(s, "/rss_open")),
            int(n(s, "/bytes_per_socket_open")),
        )
    })?;
    ratios_line(w, r, "live-memory", "/bytes_per_socket_open", " per socket at open", " (lower is better)")
}

/// RSS through a burst of sign-ups and after it.
fn burst_section(w: &mut String, r: &Results) -> Result<()> {
    if !heading(w, r, "signup-burst", "Memory after a burst of sign-ups")? {
        return Ok(());
    }
    if let Some(v) = r.any("signup-burst") {
        writeln!(
            w,
            "On a freshly started server: the baseline RSS one second after start; then {} sign-ups with new e-mails, {} \
             in flight at once; then RSS sampled every {} s for {} s. Peak is the kernel's VmHWM (the highest RSS since \
             the process started). \"Back\" is the first sample, counted from the last sign-up's answer, at most {} MiB \
             above the baseline. Our server hashes each password with argon2 (19 MiB of working memory each); the peers \
             keep the password as it came, so their figures are only the cost of the requests and the new accounts.\n",
            v["users"], v["concurrency"], v["interval_s"], v["observe_s"], fmt(v["within_mib"].as_f64(), 0)
        )?;
    }
    writeln!(w, "| system | burst s | sign-ups/s | RSS baseline MiB | **peak MiB** | at end MiB | **back after s** |")?;
    writeln!(w, "|---|---|---|---|---|---|---|")?;
    let n = |s: &str, p: &str| r.num("signup-burst", s, p);
    system_rows(w, r, "signup-burst", 6, |s| {
        format!(
            "{} | {} | {} | **{}** | {} | **{}**",
            fmt(n(s, "/burst_s"), 1),
            int(n(s, "/signups_per_s")),
            mib(n(s, "/rss_baseline")),
            mib(n(s, "/rss_peak")),
            mib(n(s, "/rss_end")),
            n(s, "/back_within_s").map_or_else(|| "not back".into(), |b| format!("{b:.1}")),
        )
    })?;
    writeln!(w)?;
    Ok(())
}
