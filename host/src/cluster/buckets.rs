//! Opening the cluster's KV buckets and object stores, creating them when missing.

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv, object_store};

/// Open a KV bucket, creating it when missing. The bucket's stream is made here, as the
/// client would make it, because the client's own create first reads the account's info in
/// a form that nats-server 2.9 does not give.
pub async fn open_bucket(js: &jetstream::Context, config: kv::Config, replicas: usize) -> Result<kv::Store> {
    let name = config.bucket.clone();
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: config.history.max(1),
        max_age: config.max_age,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow!("creating the {name} bucket: {e}"))?;
    js.get_key_value(&name).await.map_err(|e| anyhow!("opening the {name} bucket: {e}"))
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
