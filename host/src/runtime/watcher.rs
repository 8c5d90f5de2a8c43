//! Watches `--components-dir`: a changed `<component>.wasm` is compiled, checked and
//! installed like `PUT /admin/components/<name>`; a refused one is logged and the serving
//! version stays. Polls file metadata once a second (no platform file-event API needed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::runtime::components;
use crate::runtime::key::ComponentKind;
use super::Runtime;

const POLL: Duration = Duration::from_secs(1);

pub fn spawn(runtime: Arc<Runtime>) {
    tokio::spawn(async move {
        let mut seen: HashMap<ComponentKind, (SystemTime, u64)> = HashMap::new();
        for kind in ComponentKind::ALL {
            if let Some(stamp) = stamp(&runtime, kind) {
                seen.insert(kind, stamp);
            }
        }
        let mut stopping = runtime.stopping();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => return,
            }
            for kind in ComponentKind::ALL {
                let Some(now) = stamp(&runtime, kind) else { continue };
                if seen.get(&kind) == Some(&now) {
                    continue;
                }
                // Wait for the writer to finish: the file must stay the same for one more poll.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stamp(&runtime, kind) != Some(now) {
                    continue;
                }
                seen.insert(kind, now);
                let Some(path) = components::find_in_dir(&runtime.settings.components_dir, kind) else { continue };
                let Ok(wasm) = tokio::fs::read(&path).await else { continue };
                if runtime.components.current(kind).is_some_and(|v| v.digest == components::digest(&wasm)) {
                    continue;
                }
                match install(&runtime, kind, wasm).await {
                    Ok(number) => tracing::info!(component = %kind, version = number, "installed {} from the components dir", path.display()),
                    Err(e) => tracing::warn!(component = %kind, "refused {}: {e:#}; the serving version stays", path.display()),
                }
            }
        }
    });
}

/// Compile, check and install `wasm` as the new version of `kind`; the number of the new version.
pub async fn install(runtime: &Arc<Runtime>, kind: ComponentKind, wasm: Vec<u8>) -> anyhow::Result<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let compile_runtime = runtime.clone();
    let prepared = in_the_background(move || compile_runtime.components.prepare(kind, &wasm)).await?;
    match prepared {
        Ok((prepared, digest)) => {
            let version = runtime.components.install(kind, prepared, digest);
            let metrics = runtime.metrics.component(kind);
            metrics.swaps.fetch_add(1, Relaxed);
            metrics.version.store(version.number, Relaxed);
            Ok(version.number)
        }
        Err(e) => {
            runtime.metrics.swaps_refused.fetch_add(1, Relaxed);
            Err(e)
        }
    }
}

fn stamp(runtime: &Runtime, kind: ComponentKind) -> Option<(SystemTime, u64)> {
    let path = components::find_in_dir(&runtime.settings.components_dir, kind)?;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Run `work` on a thread of its own at the lowest scheduling priority: compiling a new
/// version takes a core for seconds (cranelift, one thread: see `engine.rs`), and the
/// threads serving sockets and requests must keep theirs meanwhile.
async fn in_the_background<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("compile".into()).spawn(move || {
        lower_this_threads_priority();
        let _ = done.send(work());
    })?;
    Ok(result.await?)
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: setpriority on this thread's own id (Linux nice values are per thread).
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 19);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}
