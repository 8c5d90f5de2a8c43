//! Watches `--components-dir`: a changed `<component>.wasm` is compiled, checked and
//! installed like `PUT /admin/components/<name>`; a refused one is logged and the serving
//! version stays. Polls file metadata once a second (no platform file-event API needed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::runtime::components;
use crate::runtime::key::ComponentKind;
use crate::server::Host;

const POLL: Duration = Duration::from_secs(1);

pub fn spawn(host: Arc<Host>) {
    tokio::spawn(async move {
        let mut seen: HashMap<ComponentKind, (SystemTime, u64)> = HashMap::new();
        for kind in ComponentKind::ALL {
            if let Some(stamp) = stamp(&host, kind) {
                seen.insert(kind, stamp);
            }
        }
        let mut stopping = host.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => return,
            }
            for kind in ComponentKind::ALL {
                let Some(now) = stamp(&host, kind) else { continue };
                if seen.get(&kind) == Some(&now) {
                    continue;
                }
                // Wait for the writer to finish: the file must stay the same for one more poll.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stamp(&host, kind) != Some(now) {
                    continue;
                }
                seen.insert(kind, now);
                let Some(path) = components::find_in_dir(&host.settings.components_dir, kind) else { continue };
                let Ok(wasm) = tokio::fs::read(&path).await else { continue };
                if host.components.current(kind).is_some_and(|v| v.digest == components::digest(&wasm)) {
                    continue;
                }
                match install(&host, kind, wasm).await {
                    Ok(number) => tracing::info!(component = %kind, version = number, "installed {} from the components dir", path.display()),
                    Err(e) => tracing::warn!(component = %kind, "refused {}: {e:#}; the serving version stays", path.display()),
                }
            }
        }
    });
}

/// Compile, check and install `wasm` as the new version of `kind`; the number of the new version.
pub async fn install(host: &Arc<Host>, kind: ComponentKind, wasm: Vec<u8>) -> anyhow::Result<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let compile_host = host.clone();
    let prepared = tokio::task::spawn_blocking(move || compile_host.components.prepare(kind, &wasm)).await?;
    match prepared {
        Ok((prepared, digest)) => {
            let version = host.components.install(kind, prepared, digest);
            let metrics = host.metrics.component(kind);
            metrics.swaps.fetch_add(1, Relaxed);
            metrics.version.store(version.number, Relaxed);
            Ok(version.number)
        }
        Err(e) => {
            host.metrics.swaps_refused.fetch_add(1, Relaxed);
            Err(e)
        }
    }
}

fn stamp(host: &Host, kind: ComponentKind) -> Option<(SystemTime, u64)> {
    let path = components::find_in_dir(&host.settings.components_dir, kind)?;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
