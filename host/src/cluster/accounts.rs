//! Accounts and sessions across nodes: the `rt_accounts` KV bucket is the directory every
//! node's `Accounts` consults when its own database does not know an e-mail, a user or a
//! session (and writes through to on sign-up, sign-in, use and sign-out). An e-mail is
//! claimed with a create (`email.<sha256 of the lowercased e-mail>`), so two nodes cannot
//! sign up the same address. A session is created with a create and its use written with an
//! update at the revision read, so a node cannot bring back a session another node deleted. A
//! sign-out deletes the session and is stored as a notice in the `RT_SIGNOUTS` stream
//! (`rt.signout`, kept two hours), which every node follows with an ordered consumer: no node
//! misses one (a core NATS broadcast could be dropped, leaving a node to accept the token from
//! its cache), and each forgets the session and closes its sockets (4403). A sign-out whose
//! delete or notice could not be stored answers `false`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::Cluster;
use crate::storage::accounts::{AccountDirectory, DirectorySession, User};

const ACCOUNTS: &str = "rt_accounts";
const SIGN_OUTS: &str = "rt.signout";

pub use crate::storage::accounts::now_ms;

/// The stream of sign-out notices.
const SIGN_OUT_STREAM: &str = "RT_SIGNOUTS";

pub struct SharedAccounts {
    kv: kv::Store,
    sign_outs: jetstream::stream::Stream,
}

impl SharedAccounts {
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self> {
        let kv = super::buckets::open_bucket(js, kv::Config { bucket: ACCOUNTS.into(), history: 1, ..Default::default() }, replicas, super::buckets::Reads::AnyReplica).await?;
        let sign_outs = js
            .get_or_create_stream(jetstream::stream::Config {
                name: SIGN_OUT_STREAM.into(),
                subjects: vec![SIGN_OUTS.into()],
                max_age: Duration::from_secs(2 * 3600),
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("creating the {SIGN_OUT_STREAM} stream: {e}"))?;
        Ok(Self { kv, sign_outs })
    }
}

fn email_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!("email.{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn user_json(user: &User, password_hash: &str) -> Bytes {
    Bytes::from(json!({ "id": &*user.id, "email": user.email, "name": user.name, "hash": password_hash }).to_string())
}

fn user_from(bytes: &[u8]) -> Option<(User, String)> {
    let value: Json = serde_json::from_slice(bytes).ok()?;
    let user = User {
        id: value.get("id")?.as_str()?.into(),
        email: value.get("email")?.as_str()?.to_string(),
        name: value.get("name").and_then(Json::as_str).map(str::to_string),
    };
    Some((user, value.get("hash")?.as_str()?.to_string()))
}

/// How long a write to the bucket is tried again while JetStream cannot take it (a stream
/// electing its leader after a NATS server was lost answers errors for a few seconds).
const WRITE_PATIENCE: Duration = Duration::from_secs(10);

/// How long a read of the bucket is tried again while JetStream cannot answer it (the same
/// elections; a request waits that long rather than being told its session is unknown).
const READ_PATIENCE: Duration = Duration::from_secs(5);

/// Read `key`, trying again while JetStream cannot answer.
async fn read(kv: &kv::Store, key: &str) -> Result<Option<kv::Entry>, kv::EntryError> {
    super::patience::again_while_failing(READ_PATIENCE, "reading the accounts bucket", || kv.entry(key), |_| false).await
}

/// Try a write to the bucket again while JetStream cannot take it, unless `final_error`.
async fn patiently<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(attempt: impl FnMut() -> F, final_error: impl Fn(&E) -> bool) -> Result<T, E> {
    super::patience::again_while_failing(WRITE_PATIENCE, "writing to the accounts bucket", attempt, final_error).await
}

/// The directory as `Accounts` sees it: the bucket, and the stream sign-out notices are stored in.
pub struct Directory {
    kv: kv::Store,
    /// Where sign-out notices are stored.
    js: jetstream::Context,
}

impl Directory {
    pub fn new(accounts: &SharedAccounts, client: async_nats::Client) -> Self {
        Self { kv: accounts.kv.clone(), js: jetstream::new(client) }
    }
}

fn session_key(hash: &str) -> String {
    format!("session.{hash}")
}

fn session_json(session: &DirectorySession) -> Bytes {
    Bytes::from(json!({ "user": &*session.user_id, "last_used": session.last_used_ms }).to_string())
}

impl AccountDirectory for Directory {
    fn claim_email<'a>(&'a self, user: &'a User, password_hash: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            // The user record first, the e-mail's claim last: the claim is what makes the
            // account. A crash between the two leaves a record under a fresh random id that
            // no e-mail leads to (harmless), never a claimed e-mail without its user (which
            // would keep that e-mail from ever signing up again).
            let kv = &self.kv;
            let record = user_json(user, password_hash);
            let user_key = format!("user.{}", user.id);
            patiently(|| kv.put(&user_key, record.clone()), |_| false).await.map_err(|e| format!("Could not create the account: {e}"))?;
            let key = email_key(&user.email);
            let created = patiently(|| kv.create(&key, record.clone()), |e| e.kind() == kv::CreateErrorKind::AlreadyExists).await;
            match created {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    // Taken, unless by this very sign-up (a first try that was stored, its
                    // answer lost, then tried again).
                    let ours = kv.get(&key).await.ok().flatten().and_then(|b| user_from(&b)).is_some_and(|(u, _)| u.id == user.id);
                    if !ours {
                        let _ = kv.delete(&user_key).await;
                    }
                    Ok(ours)
                }
                Err(e) => Err(format!("Could not create the account: {e}")),
            }
        })
    }

    fn find_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Option<(User, String)>> {
        Box::pin(async move { user_from(&read(&self.kv, &email_key(email)).await.ok()?.filter(|e| e.operation == kv::Operation::Put)?.value) })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<(User, String)>> {
        Box::pin(async move { user_from(&read(&self.kv, &format!("user.{id}")).await.ok()?.filter(|e| e.operation == kv::Operation::Put)?.value) })
    }

    fn create_session<'a>(&'a self, hash: &'a str, session: DirectorySession) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // A put: the token is new (random), so no session of that name can exist.
            let (key, record) = (session_key(hash), session_json(&session));
            patiently(|| self.kv.put(&key, record.clone()), |_| false).await.map(|_| ()).map_err(|e| format!("Could not create the session: {e}"))
        })
    }

    fn session<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<DirectorySession>, String>> {
        Box::pin(async move {
            let entry = read(&self.kv, &session_key(hash)).await.map_err(|e| format!("reading a session: {e}"))?;
            let Some(entry) = entry.filter(|entry| entry.operation == kv::Operation::Put) else { return Ok(None) };
            let value: Json = serde_json::from_slice(&entry.value).map_err(|e| format!("a session that is not JSON: {e}"))?;
            let field = |name: &str| value.get(name).ok_or_else(|| format!("a session without `{name}`"));
            Ok(Some(DirectorySession {
                user_id: field("user")?.as_str().ok_or("a session's user is not a string")?.into(),
                last_used_ms: field("last_used")?.as_u64().ok_or("a session's last use is not a number")?,
                revision: entry.revision,
            }))
        })
    }

    fn touch_session<'a>(&'a self, hash: &'a str, read: &'a DirectorySession, last_used_ms: u64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let touched = DirectorySession { last_used_ms, ..read.clone() };
            if self.kv.update(session_key(hash), session_json(&touched), read.revision).await.is_ok() {
                return Ok(true);
            }
            // Changed since it was read: another node wrote its use (the session stands), or
            // it was signed out (deleted: it stays so). Or the bucket could not be reached.
            Ok(self.session(hash).await?.is_some())
        })
    }

    fn end_session<'a>(&'a self, hash: &'a str, tag: u64) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let key = session_key(hash);
            let deleted = match patiently(|| self.kv.delete(&key), |_| false).await {
                Ok(_) => true,
                Err(e) => {
                    // The notice still goes out (the nodes close the sockets and forget the
                    // session), but the sign-out is not whole: the client is told.
                    tracing::warn!("could not delete a signed-out session from the cluster: {e}");
                    false
                }
            };
            let notice = Bytes::from(json!({ "hash": hash, "tag": tag.to_string() }).to_string());
            let stored = patiently(
                || async { self.js.publish(SIGN_OUTS, notice.clone()).await?.await.map_err(|e| async_nats::Error::from(e)) },
                |_| false,
            )
            .await;
            if let Err(e) = &stored {
                tracing::warn!("could not store a sign-out notice: {e}");
            }
            deleted && stored.is_ok()
        })
    }
}

/// Follow every node's sign-outs from now on (an ordered consumer of `RT_SIGNOUTS`: none is
/// missed): forget the session, close its sockets here.
pub async fn serve(cluster: Arc<Cluster>) -> Result<()> {
    let consumer = cluster
        .accounts
        .sign_outs
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("following sign-outs: {e}"))?;
    let mut notices = consumer.messages().await.map_err(|e| anyhow!("following sign-outs: {e}"))?;
    tokio::spawn(async move {
        while let Some(notice) = notices.next().await {
            let Some(runtime) = cluster.runtime() else { return };
            let Ok(notice) = notice else { continue };
            let Ok(notice) = serde_json::from_slice::<Json>(&notice.payload) else { continue };
            let hash = notice.get("hash").and_then(Json::as_str).unwrap_or_default();
            let tag = notice.get("tag").and_then(Json::as_str).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
            runtime.accounts.forget_session(hash);
            let closed = runtime.sockets.revoke_session(tag);
            tracing::debug!(closed, "a session signed out on another node");
        }
    });
    Ok(())
}
