//! The user log: the `RT_LOG` stream, one subject per user (`rt.log.<user>`), holding every
//! committed library call's writes in commit order, and the markers that fence a node out.
//!
//! An entry is appended with `Nats-Expected-Last-Subject-Sequence` set to the sequence its
//! node last saw for that user, so the stream accepts it only if nothing was appended since:
//! a node that lost the user (paused, partitioned, its lease lapsed) cannot append, because
//! the new owner's first act is to append an `owner` marker. An entry is either
//! `{"owner": "<node>"}` or `{"writes": [[<sql>, [<param>, ...]], ...]}`, each param `null`,
//! `{"i": n}`, `{"f64": <bits>}` (`{"r": x}` in entries of before), `{"t": "..."}` or
//! `{"b": "<base64>"}`.
//!
//! Each append carries a `Nats-Msg-Id` of its own, so a publish the client sends again (after
//! a reconnect) is dropped by the stream. An append whose answer is lost is settled before
//! anyone is told (see [`UserLog::settle`]): the log says whether it landed, and when nothing
//! landed after the expected sequence, a marker of this node at that sequence shuts it out for
//! good. Only when the log cannot be read either is the outcome unknown.

use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use crate::runtime::bindings::host_api::sql::Value;
/// Why an append did not happen, or may not have: the runtime's seam defines it, the log gives it.
pub use crate::runtime::replication::AppendError;
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

/// How long an append whose answer was lost is settled for before it is called unknown.
const SETTLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// What the log holds right after a sequence, on a user's subject.
enum After {
    Nothing,
    /// The first entry after it, with its `Nats-Msg-Id`.
    Entry { sequence: u64, id: Option<String> },
}

/// A fresh id for one append (the stream drops a second publish of the same id).
fn append_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct UserLog {
    js: jetstream::Context,
    stream: stream::Stream,
    /// Which `RT_LOG` this is: its creation time, in nanoseconds. A log lost and made again
    /// has another, so a node's file or a snapshot of the old one is never taken as a prefix
    /// of the new one.
    identity: String,
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
        let identity = format!("{STREAM}@{}", stream.cached_info().created.unix_timestamp_nanos());
        Ok(Self { js: js.clone(), stream, identity })
    }

    /// Which log this is (see the field).
    pub fn identity(&self) -> &str {
        &self.identity
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
    /// entry's sequence. `node` names this node, for the marker that settles a lost answer.
    pub async fn append(&self, user: &str, expected: u64, entry: Bytes, node: &str) -> Result<u64, AppendError> {
        let id = append_id();
        match self.publish(user, expected, entry, &id).await {
            Published::Taken(sequence) => Ok(sequence),
            Published::Fenced => Err(AppendError::Fenced),
            Published::Lost(why) => self.settle(user, expected, &id, node, why).await,
        }
    }

    async fn publish(&self, user: &str, expected: u64, entry: Bytes, id: &str) -> Published {
        let publish = jetstream::message::PublishMessage::build().payload(entry).expected_last_subject_sequence(expected).message_id(id);
        // A publish that could not be sent may still be, from the client's buffer after a
        // reconnect: its answer is as lost as one that timed out.
        let ack = match self.js.send_publish(subject(user), publish).await {
            Ok(ack) => ack.await,
            Err(e) => return Published::Lost(e.to_string()),
        };
        match ack {
            Ok(ack) => Published::Taken(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Published::Fenced,
            Err(e) => Published::Lost(e.to_string()),
        }
    }

    /// An append (id `id`, expected at `expected`) whose answer was lost: the log says whether
    /// it landed. The first entry after `expected` is it (applied) or another (it can never
    /// land: its expectation is gone); with nothing after `expected`, a marker of this node is
    /// appended there, so it never can, and the append did not happen. Tried again while
    /// JetStream cannot answer, for [`SETTLE_PATIENCE`]; then unknown.
    pub async fn settle(&self, user: &str, expected: u64, id: &str, node: &str, first_why: String) -> Result<u64, AppendError> {
        let started = std::time::Instant::now();
        let mut why = first_why;
        while started.elapsed() < SETTLE_PATIENCE {
            match self.first_after(user, expected).await {
                Ok(After::Entry { sequence, id: found }) if found.as_deref() == Some(id) => return Ok(sequence),
                Ok(After::Entry { .. }) => return Err(AppendError::NotApplied(format!("{why}; another entry came first"))),
                Ok(After::Nothing) => match self.publish(user, expected, encode_owner(node), &append_id()).await {
                    Published::Taken(_) => return Err(AppendError::NotApplied(format!("{why}; shut out by a marker"))),
                    Published::Fenced => continue, // something landed meanwhile: look again
                    Published::Lost(e) => why = e,
                },
                Err(e) => why = e.to_string(),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(AppendError::Unknown(why))
    }

    /// The user's first entry after sequence `after` (read from the stream's leader).
    async fn first_after(&self, user: &str, after: u64) -> Result<After> {
        let found = self.stream.raw_message_builder().sequence(after + 1).next_by_subject(subject(user)).send().await;
        match found {
            Ok(message) => Ok(After::Entry {
                sequence: message.sequence,
                id: message.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.to_string()),
            }),
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(After::Nothing),
            Err(e) => Err(anyhow!("reading the log of {user}: {e}")),
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

/// What one publish came to.
enum Published {
    Taken(u64),
    Fenced,
    /// No answer: it may or may not have landed.
    Lost(String),
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
