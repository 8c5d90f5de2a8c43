//! Hot swap across nodes: a version installed by `PUT /admin/components/<name>` on any node
//! is stored in the `rt_components` object store (named after the component, its digest in
//! the metadata) and announced on `rt.deploy`; every node fetches it and installs it as if
//! it had been PUT there. A node that starts (or joins later) installs the stored versions
//! that differ from the ones it loaded from its components dir.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, object_store};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value as Json};

use super::Cluster;
use crate::runtime::components::digest;
use crate::runtime::key::ComponentKind;
use crate::runtime::watcher;

const COMPONENTS: &str = "rt_components";
const DEPLOYS: &str = "rt.deploy";

pub struct SharedComponents {
    store: object_store::ObjectStore,
}

impl SharedComponents {
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self> {
        let store = super::buckets::open_object_store(js, COMPONENTS, replicas).await?;
        Ok(Self { store })
    }
}

/// Store a version this node installed and tell every node to install it.
pub async fn share(cluster: &Cluster, kind: ComponentKind, wasm: &[u8]) -> Result<()> {
    let digest = digest(wasm);
    let mut meta = object_store::ObjectMetadata::from(kind.name());
    meta.metadata.insert("digest".into(), digest.clone());
    cluster.components.store.put(meta, &mut std::io::Cursor::new(wasm.to_vec())).await.map_err(|e| anyhow!("storing the {kind} component: {e}"))?;
    let notice = json!({ "component": kind.name(), "digest": digest });
    cluster.client.publish(DEPLOYS, Bytes::from(notice.to_string())).await.map_err(|e| anyhow!("announcing the {kind} component: {e}"))?;
    cluster.client.flush().await.map_err(|e| anyhow!("announcing the {kind} component: {e}"))?;
    Ok(())
}

/// Install the stored version of `kind`: when announced (a PUT on some node, which installs
/// even the same bytes again as a new version), or at start unless this node runs it already.
async fn follow(cluster: &Cluster, kind: ComponentKind, announced: bool) -> Result<()> {
    let Some(runtime) = cluster.runtime() else { return Ok(()) };
    let Ok(info) = cluster.components.store.info(kind.name()).await else { return Ok(()) };
    let current = runtime.components.current(kind).map(|v| v.digest.clone());
    if !announced && info.metadata.get("digest").is_some_and(|d| Some(d) == current.as_ref()) {
        return Ok(());
    }
    let mut object = cluster.components.store.get(kind.name()).await.map_err(|e| anyhow!("reading the {kind} component: {e}"))?;
    let mut wasm = Vec::with_capacity(info.size);
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut wasm).await?;
    let number = watcher::install(&runtime, kind, wasm).await?;
    tracing::info!(component = %kind, version = number, "installed the cluster's version");
    Ok(())
}

/// Install the cluster's versions now, and each one announced later.
pub async fn serve(cluster: Arc<Cluster>) -> Result<()> {
    let mut notices = cluster.client.subscribe(DEPLOYS).await.map_err(|e| anyhow!("subscribing to deploys: {e}"))?;
    for kind in ComponentKind::ALL {
        if let Err(e) = follow(&cluster, kind, false).await {
            tracing::warn!(component = %kind, "could not install the cluster's version: {e:#}");
        }
    }
    tokio::spawn(async move {
        while let Some(notice) = notices.next().await {
            let Ok(notice) = serde_json::from_slice::<Json>(&notice.payload) else { continue };
            let Some(kind) = notice.get("component").and_then(Json::as_str).and_then(ComponentKind::from_name) else { continue };
            if let Err(e) = follow(&cluster, kind, true).await {
                tracing::warn!(component = %kind, "could not install the cluster's version: {e:#}");
            }
        }
    });
    Ok(())
}
