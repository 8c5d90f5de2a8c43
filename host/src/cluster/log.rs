//! The user log: the `RT_LOG` stream, one subject per user (`rt.log.<user>`), holding every
//! committed library call's writes in commit order, and the markers that fence a node out.
//!
//! An entry is appended with `Nats-Expected-Last-Subject-Sequence` set to the sequence its
//! node last saw for that user, so the stream accepts it only if nothing was appended since:
//! a node that lost the user (paused, partitioned, its lease lapsed) cannot append, because
//! the new owner's first act is to append an `owner` marker. An entry is either
//! `{"owner": "<node>"}` or `{"writes": [[<sql>, [<param>, ...]], ...]}`, each param `null`,
//! `{"i": n}`, `{"r": x}`, `{"t": "..."}` or `{"b": "<base64>"}`.

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use crate::runtime::bindings::host_api::sql::Value;
use crate::storage::actor_db::Write;

pub const STREAM: &str = "RT_LOG";

/// One entry of a user's log.
#[derive(Debug)]
pub enum Entry {
    /// `node` took the user over from here on.
    Owner(String),
    /// One committed call's writes, in the order they ran.
    Writes(Vec<Write>),
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Something was appended after the sequence this node expected: another node owns the user.
    #[error("another node took this user over")]
    Fenced,
    #[error("the cluster log is unavailable: {0}")]
    Unavailable(String),
}

pub struct UserLog {
    js: jetstream::Context,
    stream: stream::Stream,
}

pub fn subject(user: &str) -> String {
    format!("rt.log.{user}")
}

impl UserLog {
    /// The stream, created when missing with `replicas` copies (on as many NATS servers).
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                description: Some("Library Realtime: each user's committed writes, in order".into()),
                subjects: vec!["rt.log.>".into()],
                storage: stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("creating the {STREAM} stream: {e}"))?;
        Ok(Self { js: js.clone(), stream })
    }

    /// The stream sequence of the user's last entry (0: none yet).
    pub async fn last(&self, user: &str) -> Result<u64> {
        match self.stream.get_last_raw_message_by_subject(&subject(user)).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(anyhow!("reading the log of {user}: {e}")),
        }
    }

    /// Append `entry` to the user's log if its last entry is still `expected`; the new
    /// entry's sequence.
    pub async fn append(&self, user: &str, expected: u64, entry: Bytes) -> Result<u64, AppendError> {
        let publish = jetstream::message::PublishMessage::build().payload(entry).expected_last_subject_sequence(expected);
        let ack = self.js.send_publish(subject(user), publish).await.map_err(|e| AppendError::Unavailable(e.to_string()))?;
        match ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(AppendError::Fenced),
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }

    /// The user's entries after sequence `after`, through `through`, sent in order to
    /// `entries` (a bounded channel: reading waits for its consumer). Stops early, without an
    /// error, when the consumer is gone (it failed and says why).
    pub async fn read(&self, user: &str, after: u64, through: u64, entries: &mpsc::Sender<(u64, Entry)>) -> Result<()> {
        if after >= through {
            return Ok(());
        }
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject(user),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("reading the log of {user}: {e}"))?;
        let mut messages = consumer.messages().await.map_err(|e| anyhow!("reading the log of {user}: {e}"))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow!("reading the log of {user}: {e}"))?;
            let sequence = message.info().map_err(|e| anyhow!("a log entry without its sequence: {e}"))?.stream_sequence;
            if sequence > through {
                break;
            }
            if entries.send((sequence, decode(&message.payload)?)).await.is_err() {
                break;
            }
            if sequence == through {
                break;
            }
        }
        Ok(())
    }
}

pub fn encode_owner(node: &str) -> Bytes {
    Bytes::from(json!({ "owner": node }).to_string())
}

pub fn encode_writes(writes: &[Write]) -> Bytes {
    let writes: Vec<Json> = writes.iter().map(|w| json!([w.sql, w.params.iter().map(param_json).collect::<Vec<_>>()])).collect();
    Bytes::from(json!({ "writes": writes }).to_string())
}

pub fn decode(bytes: &[u8]) -> Result<Entry> {
    let entry: Json = serde_json::from_slice(bytes)?;
    if let Some(node) = entry.get("owner").and_then(Json::as_str) {
        return Ok(Entry::Owner(node.to_string()));
    }
    let writes = entry.get("writes").and_then(Json::as_array).ok_or_else(|| anyhow!("a log entry of no known kind"))?;
    writes
        .iter()
        .map(|write| {
            let sql = write.get(0).and_then(Json::as_str).ok_or_else(|| anyhow!("a write without its statement"))?;
            let params = write.get(1).and_then(Json::as_array).ok_or_else(|| anyhow!("a write without its parameters"))?;
            Ok(Write { sql: sql.to_string(), params: params.iter().map(param_value).collect::<Result<_>>()? })
        })
        .collect::<Result<Vec<_>>>()
        .map(Entry::Writes)
}

fn param_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => json!({ "i": i }),
        // Bit for bit (a decimal round trip can move a double by one ULP, and NaN and the
        // infinities are no JSON numbers at all).
        Value::Real(r) => json!({ "f64": r.to_bits() }),
        Value::Text(t) => json!({ "t": t }),
        Value::Blob(b) => json!({ "b": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

fn param_value(json: &Json) -> Result<Value> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let bad = || anyhow!("a parameter of no known kind: {json}");
    let (kind, inner) = json.as_object().and_then(|o| o.iter().next()).ok_or_else(bad)?;
    Ok(match kind.as_str() {
        "i" => Value::Integer(inner.as_i64().ok_or_else(bad)?),
        "f64" => Value::Real(f64::from_bits(inner.as_u64().ok_or_else(bad)?)),
        // Entries written before the bit-exact form.
        "r" => Value::Real(inner.as_f64().ok_or_else(bad)?),
        "t" => Value::Text(inner.as_str().ok_or_else(bad)?.to_string()),
        "b" => Value::Blob(base64::engine::general_purpose::STANDARD.decode(inner.as_str().ok_or_else(bad)?)?),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let writes = vec![
            Write { sql: "CREATE TABLE t (a, b)".into(), params: vec![] },
            Write {
                sql: "INSERT INTO t VALUES (?1, ?2), (?3, ?4), (?5, ?6)".into(),
                params: vec![Value::Integer(i64::MIN), Value::Real(1.5), Value::Text("é\"".into()), Value::Blob(vec![0, 255]), Value::Null, Value::Integer(7)],
            },
        ];
        let Entry::Writes(back) = decode(&encode_writes(&writes)).unwrap() else { panic!("writes") };
        assert_eq!(format!("{back:?}"), format!("{writes:?}"));
        assert!(matches!(decode(&encode_owner("node-a")).unwrap(), Entry::Owner(n) if n == "node-a"));
        assert!(decode(b"{\"nope\":1}").is_err());
    }

    #[test]
    fn reals_round_trip_bit_for_bit_nan_and_infinities_too() {
        let reals = [0.1 + 0.2, 1e-308, 5e-324, -0.0, f64::MAX, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0f64.sqrt(), 1.0 / 3.0];
        let writes = vec![Write { sql: "INSERT INTO t VALUES (?1)".into(), params: reals.iter().map(|r| Value::Real(*r)).collect() }];
        let Entry::Writes(back) = decode(&encode_writes(&writes)).expect("an entry with NaN decodes") else { panic!("writes") };
        let bits: Vec<u64> = back[0].params.iter().map(|v| match v { Value::Real(r) => r.to_bits(), other => panic!("{other:?}") }).collect();
        assert_eq!(bits, reals.iter().map(|r| r.to_bits()).collect::<Vec<_>>());
        let old = br#"{"writes":[["INSERT INTO t VALUES (?1)",[{"r":1.5}]]]}"#;
        assert!(matches!(decode(old).unwrap(), Entry::Writes(w) if matches!(w[0].params[0], Value::Real(r) if r == 1.5)), "entries of the old form still decode");
    }
}
