//! Opening the cluster's KV buckets and object stores, creating them when missing.

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv, object_store};

/// How a bucket's keys are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// By any replica (direct gets): fast, and a lagging replica may answer with an older value.
    AnyReplica,
    /// By the stream's leader only: what ownership and liveness need (a lagging replica could
    /// show a live node's lease as lapsed, and its user taken while it still answers reads).
    Leader,
}

/// Open a KV bucket, creating it when missing, with its reads as `reads` says (an existing
/// bucket is changed to that). The bucket's stream is made here, as the client would make it.
pub async fn open_bucket(js: &jetstream::Context, config: kv::Config, replicas: usize, reads: Reads) -> Result<kv::Store> {
    let name = config.bucket.clone();
    let allow_direct = reads == Reads::AnyReplica;
    if let Ok(mut stream) = js.get_stream(format!("KV_{name}")).await {
        let info = stream.info().await.map_err(|e| anyhow!("reading the {name} bucket: {e}"))?;
        if info.config.allow_direct != allow_direct {
            let mut changed = info.config.clone();
            changed.allow_direct = allow_direct;
            js.update_stream(changed).await.map_err(|e| anyhow!("changing how the {name} bucket is read: {e}"))?;
        }
        return js.get_key_value(&name).await.map_err(|e| anyhow!("opening the {name} bucket: {e}"));
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: config.history.max(1),
        max_age: config.max_age,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow!("creating the {name} bucket: {e}"))?;
    js.get_key_value(&name).await.map_err(|e| anyhow!("opening the {name} bucket: {e}"))
}

/// How long a key of bucket `name` lives after its last write (`None`: forever).
pub async fn max_age(js: &jetstream::Context, name: &str) -> Result<Option<std::time::Duration>> {
    let mut stream = js.get_stream(format!("KV_{name}")).await.map_err(|e| anyhow!("reading the {name} bucket: {e}"))?;
    let age = stream.info().await.map_err(|e| anyhow!("reading the {name} bucket: {e}"))?.config.max_age;
    Ok((!age.is_zero()).then_some(age))
}

/// Open an object store, creating it when missing.
pub async fn open_object_store(js: &jetstream::Context, name: &str, replicas: usize) -> Result<object_store::ObjectStore> {
    match js.get_object_store(name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(object_store::Config { bucket: name.into(), num_replicas: replicas.max(1), ..Default::default() })
            .await
            .map_err(|e| anyhow!("creating the {name} object store: {e}")),
    }
}
