//! What a node reports of its part in the cluster, for `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A count and a sum of durations (Prometheus summary without quantiles).
#[derive(Default)]
pub struct Timing {
    count: AtomicU64,
    micros: AtomicU64,
}

impl Timing {
    pub fn record(&self, took: Duration) {
        self.count.fetch_add(1, Relaxed);
        self.micros.fetch_add(took.as_micros() as u64, Relaxed);
    }
}

#[derive(Default)]
pub struct ClusterMetrics {
    /// Library calls sent to the owner on another node, and how long they took.
    pub routed_calls: Timing,
    /// Routed calls this node answered as the owner.
    pub served_calls: AtomicU64,
    /// Appends to the user log, and how long the stream took to acknowledge them.
    pub log_appends: Timing,
    /// Appends refused because another node took the user over (fenced).
    pub appends_fenced: AtomicU64,
    pub leases_taken: AtomicU64,
    pub leases_renewed: AtomicU64,
    pub leases_lost: AtomicU64,
    /// Catch-ups of a user's database from the log (taking a user over), and their time.
    pub catch_ups: Timing,
    /// Log entries applied by catch-ups.
    pub entries_replayed: AtomicU64,
    /// Snapshots stored and restored.
    pub snapshots_stored: AtomicU64,
    pub snapshots_restored: AtomicU64,
    /// Event batches received from other nodes, and gaps filled from the owner.
    pub events_received: AtomicU64,
    pub event_gaps: AtomicU64,
}

impl ClusterMetrics {
    /// The Prometheus text; `owned` is how many users this node owns now.
    pub fn render(&self, node: &str, owned: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP realtime_cluster_node This node's id.\n# TYPE realtime_cluster_node gauge\nrealtime_cluster_node{{node=\"{node}\"}} 1");
        let counters: [(&str, &str, &str, u64); 11] = [
            ("realtime_cluster_owned_users", "gauge", "Users this node owns now.", owned as u64),
            ("realtime_cluster_served_calls_total", "counter", "Routed library calls this node answered as the owner.", self.served_calls.load(Relaxed)),
            ("realtime_cluster_appends_fenced_total", "counter", "Log appends refused because another node took the user over.", self.appends_fenced.load(Relaxed)),
            ("realtime_cluster_leases_taken_total", "counter", "Users this node took ownership of.", self.leases_taken.load(Relaxed)),
            ("realtime_cluster_leases_renewed_total", "counter", "Refreshes of this node's liveness key (its leases).", self.leases_renewed.load(Relaxed)),
            ("realtime_cluster_leases_lost_total", "counter", "Users this node lost (its lease lapsed or another node fenced it).", self.leases_lost.load(Relaxed)),
            ("realtime_cluster_entries_replayed_total", "counter", "Log entries applied while catching up.", self.entries_replayed.load(Relaxed)),
            ("realtime_cluster_snapshots_stored_total", "counter", "Snapshots of user databases stored.", self.snapshots_stored.load(Relaxed)),
            ("realtime_cluster_snapshots_restored_total", "counter", "Snapshots of user databases restored by a catch-up.", self.snapshots_restored.load(Relaxed)),
            ("realtime_cluster_events_received_total", "counter", "Event batches received from other nodes.", self.events_received.load(Relaxed)),
            ("realtime_cluster_event_gaps_total", "counter", "Gaps in a user's events filled from the owner.", self.event_gaps.load(Relaxed)),
        ];
        for (name, kind, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let timings: [(&str, &str, &Timing); 3] = [
            ("realtime_cluster_routed_call_seconds", "Library calls sent to the owner on another node.", &self.routed_calls),
            ("realtime_cluster_log_append_seconds", "Appends to the user log, until the stream acknowledged them.", &self.log_appends),
            ("realtime_cluster_catch_up_seconds", "Catch-ups of a user's database from the log.", &self.catch_ups),
        ];
        for (name, help, timing) in timings {
            let count = timing.count.load(Relaxed);
            let seconds = timing.micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary\n{name}_count {count}\n{name}_sum {seconds}");
        }
        out
    }
}
