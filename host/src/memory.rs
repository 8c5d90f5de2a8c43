//! Memory the host no longer uses goes back to the OS.
//!
//! An evicted instance frees its host-side state (store, tables, buffers) to the C
//! allocator, which keeps those pages in its per-thread arenas: after a wave of evictions a
//! hibernating server would still hold the memory of every instance it ever ran. A
//! background task notices evictions and asks glibc to release free pages (`malloc_trim`),
//! at most once per [`TRIM_EVERY`], on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use crate::server::Host;

/// How often the trimmer looks at the eviction counter.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Start the trimmer; it ends with the server.
pub fn spawn_trimmer(host: Arc<Host>) {
    tokio::spawn(async move {
        let mut seen = host.metrics.evictions();
        let mut ticker = tokio::time::interval(TRIM_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if host.is_shutting_down() {
                return;
            }
            let evictions = host.metrics.evictions();
            if evictions != seen {
                seen = evictions;
                let _ = tokio::task::spawn_blocking(release_free_pages).await;
            }
        }
    });
}

/// Return the allocator's free pages to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_pages() {
    let started = std::time::Instant::now();
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory.
    unsafe { libc::malloc_trim(0) };
    tracing::debug!(micros = started.elapsed().as_micros() as u64, "released free heap pages");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_pages() {}
