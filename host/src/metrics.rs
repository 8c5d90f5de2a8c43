//! Counters and gauges, rendered as Prometheus text for `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::runtime::key::ComponentKind;

#[derive(Default)]
pub struct PerComponent {
    pub live_instances: AtomicI64,
    pub instantiations: AtomicU64,
    pub evictions: AtomicU64,
    pub calls: AtomicU64,
    pub traps: AtomicU64,
    pub swaps: AtomicU64,
    pub version: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    components: [PerComponent; 3],
    pub open_sockets: AtomicI64,
    pub sockets_opened: AtomicU64,
    /// Sockets closed because their client stopped reading (1008).
    pub sockets_dropped_not_reading: AtomicU64,
    /// Sockets closed because their session signed out (4403).
    pub sockets_signed_out: AtomicU64,
    /// Publishes shed because their user-channel's mailbox was over `--max-mailbox` (1013).
    pub publishes_shed: AtomicU64,
    pub events_published: AtomicU64,
    pub events_delivered: AtomicU64,
    pub http_requests: AtomicU64,
    pub swaps_refused: AtomicU64,
}

impl Metrics {
    pub fn component(&self, kind: ComponentKind) -> &PerComponent {
        &self.components[kind as usize]
    }

    /// Instances evicted so far, all components together.
    pub fn evictions(&self) -> u64 {
        self.components.iter().map(|c| c.evictions.load(Relaxed)).sum()
    }

    /// The Prometheus text; `queued_bytes` is what the sockets' outgoing queues hold now.
    pub fn render(&self, queued_bytes: usize) -> String {
        let mut out = String::new();
        let per_component: [(&str, &str, &str, fn(&PerComponent) -> i64); 7] = [
            ("realtime_live_instances", "gauge", "Live component instances.", |c| c.live_instances.load(Relaxed)),
            ("realtime_instantiations_total", "counter", "Instances created.", |c| c.instantiations.load(Relaxed) as i64),
            ("realtime_evictions_total", "counter", "Instances evicted (idle or replaced).", |c| c.evictions.load(Relaxed) as i64),
            ("realtime_calls_total", "counter", "Calls into component exports.", |c| c.calls.load(Relaxed) as i64),
            ("realtime_traps_total", "counter", "Calls that trapped (including deadline and memory limit).", |c| c.traps.load(Relaxed) as i64),
            ("realtime_swaps_total", "counter", "Component versions installed while serving.", |c| c.swaps.load(Relaxed) as i64),
            ("realtime_component_version", "gauge", "The version of each component now serving (1 = loaded at start).", |c| c.version.load(Relaxed) as i64),
        ];
        for (name, kind, help, read) in per_component {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for component in ComponentKind::ALL {
                let _ = writeln!(out, "{name}{{component=\"{component}\"}} {}", read(self.component(component)));
            }
        }
        // SAFETY: sqlite3_memory_used only reads SQLite's own counter.
        let sqlite_bytes = unsafe { rusqlite::ffi::sqlite3_memory_used() };
        let (heap_in_use, heap_free) = crate::memory::heap_bytes();
        let totals: [(&str, &str, &str, i64); 13] = [
            ("realtime_open_sockets", "gauge", "Open WebSockets.", self.open_sockets.load(Relaxed)),
            ("realtime_sockets_opened_total", "counter", "WebSockets accepted.", self.sockets_opened.load(Relaxed) as i64),
            ("realtime_events_published_total", "counter", "Events published by actors (after commit).", self.events_published.load(Relaxed) as i64),
            ("realtime_events_delivered_total", "counter", "Subscription messages sent to sockets for published events.", self.events_delivered.load(Relaxed) as i64),
            ("realtime_http_requests_total", "counter", "HTTP requests served.", self.http_requests.load(Relaxed) as i64),
            ("realtime_sockets_dropped_not_reading_total", "counter", "Sockets closed (1008) because their client fell too far behind.", self.sockets_dropped_not_reading.load(Relaxed) as i64),
            ("realtime_sockets_signed_out_total", "counter", "Sockets closed (4403) because their session signed out.", self.sockets_signed_out.load(Relaxed) as i64),
            ("realtime_publishes_shed_total", "counter", "Publishes shed because a user-channel's mailbox was over --max-mailbox (its sockets closed with 1013).", self.publishes_shed.load(Relaxed) as i64),
            ("realtime_heap_in_use_bytes", "gauge", "C heap in allocated blocks (glibc mallinfo2: uordblks + hblkhd).", heap_in_use as i64),
            ("realtime_heap_free_bytes", "gauge", "C heap held from the OS but free inside the allocator's arenas (fordblks): what fragmentation keeps.", heap_free as i64),
            ("realtime_queued_bytes", "gauge", "Bytes waiting in the sockets' outgoing queues.", queued_bytes as i64),
            ("realtime_sqlite_memory_bytes", "gauge", "Heap memory SQLite holds, over every open database connection.", sqlite_bytes),
            ("realtime_swaps_refused_total", "counter", "Component versions refused (did not compile or match their world).", self.swaps_refused.load(Relaxed) as i64),
        ];
        for (name, kind, help, value) in totals {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}
