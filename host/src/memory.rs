//! Memory the host no longer uses goes back to the OS.
//!
//! An evicted instance frees its host-side state (store, tables, buffers) to the C
//! allocator, which keeps those pages in its per-thread arenas: after a wave of evictions a
//! hibernating server would still hold the memory of every instance it ever ran. A
//! background task notices evictions and asks glibc to release free pages (`malloc_trim`),
//! at most once per [`TRIM_EVERY`], on a blocking thread.
//!
//! Very large blocks (argon2's 19 MiB per password hash) are given their own mappings and
//! unmapped when freed ([`configure_allocator`]): by default glibc raises its mapping
//! threshold after the first such block is freed and serves the next ones from its arenas,
//! where a burst of sign-ups would leave hundreds of megabytes behind. The threshold stays
//! well above what the rest of the server allocates (compiling a component makes many
//! blocks of a few MiB): mapping and unmapping those takes the process's memory-map lock,
//! which stalls every thread that faults a page meanwhile.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Runtime;

/// How often the trimmer looks at the eviction counter.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Start the trimmer; it ends with the server.
pub fn spawn_trimmer(runtime: Arc<Runtime>) {
    tokio::spawn(async move {
        let mut seen = runtime.metrics.evictions();
        let mut ticker = tokio::time::interval(TRIM_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if runtime.is_stopping() {
                return;
            }
            let evictions = runtime.metrics.evictions();
            if evictions != seen {
                seen = evictions;
                let _ = tokio::task::spawn_blocking(release_free_pages).await;
            }
        }
    });
}

/// Fix glibc's mapping threshold (which also turns off its dynamic raising); call once at start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure_allocator() {
    /// Blocks at least this large get a mapping of their own, returned to the OS when freed.
    const OWN_MAPPING_BYTES: libc::c_int = 16 << 20;
    /// Free memory at the top of the heap is given back only past this (the trimmer
    /// releases the rest after evictions); fixing the mapping threshold would otherwise
    /// leave it at 128 KiB, and the heap would shrink and grow with every burst.
    const TRIM_ABOVE_BYTES: libc::c_int = 64 << 20;
    // SAFETY: mallopt only changes allocator tuning parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_ABOVE_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure_allocator() {}

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

/// The C heap now: bytes in allocated blocks, and bytes free inside the allocator's arenas
/// (held from the OS but unused: what fragmentation keeps). For `/metrics`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_bytes() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd, info.fordblks)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_bytes() -> (usize, usize) {
    (0, 0)
}
