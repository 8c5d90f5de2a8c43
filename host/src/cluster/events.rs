//! Events across nodes. What a user's library publishes (after its commit) goes to that
//! user's channel actor on the owner, as on one node, and to `rt.ev.<user>` on core NATS,
//! in commit order (one publisher task per node). Every node listens on `rt.ev.*` and hands
//! a user's events to its own channel actor for that user when it holds sockets of theirs.
//!
//! Core NATS may drop messages (a slow consumer), so each node remembers the position of
//! the last event it delivered per user; an event further on than the next one means a
//! gap, filled by asking the owner's library for what follows (`eventsAfter`) before
//! delivering on.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::Cluster;
use crate::runtime::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use crate::runtime::call::{CallContext, Envelope, Request, Response};
use crate::runtime::key::{ActorKey, ComponentKind, Principal, UserId};
use crate::runtime::Runtime;

/// The channel every library event is published on.
const LIBRARY_CHANNEL: &str = "library";

/// The node's outgoing events, in commit order.
pub struct EventSender(mpsc::UnboundedSender<(String, Bytes)>);

impl EventSender {
    /// Start the publisher task.
    pub fn start(client: async_nats::Client) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<(String, Bytes)>();
        tokio::spawn(async move {
            while let Some((subject, payload)) = receiver.recv().await {
                if let Err(e) = client.publish(subject, payload).await {
                    tracing::warn!("could not publish events to the cluster: {e}");
                }
            }
        });
        Self(sender)
    }

    /// Send what one or more committed calls of `user`'s library published.
    pub fn send(&self, user: &str, events: &[ChannelEvent]) {
        let batch: Vec<Json> = events.iter().map(|e| json!([e.channel, e.event])).collect();
        let _ = self.0.send((format!("rt.ev.{user}"), Bytes::from(Json::Array(batch).to_string())));
    }
}

/// `<epoch>:<seq>` of an event that leads with its position.
fn position(event: &str) -> Option<(String, u64)> {
    let value: Json = serde_json::from_str(event).ok()?;
    let (epoch, seq) = value.get("position")?.as_str()?.split_once(':')?;
    Some((epoch.to_string(), seq.parse().ok()?))
}

/// Deliver other nodes' events to this node's sockets.
pub async fn serve(cluster: Arc<Cluster>) -> Result<()> {
    let mut messages = cluster.client.subscribe("rt.ev.*").await.map_err(|e| anyhow!("subscribing to events: {e}"))?;
    tokio::spawn(async move {
        // Per user with sockets here: the position of the last event delivered.
        let mut delivered: HashMap<UserId, (String, u64)> = HashMap::new();
        while let Some(message) = messages.next().await {
            let Some(runtime) = cluster.runtime() else { return };
            let Some(user) = message.subject.strip_prefix("rt.ev.") else { continue };
            let user: UserId = user.into();
            let principal = Principal::User(user.clone());
            if runtime.sockets.list(&principal).is_empty() {
                delivered.remove(&user);
                continue;
            }
            let Ok(batch) = serde_json::from_slice::<Vec<(String, String)>>(&message.payload) else { continue };
            cluster.metrics.events_received.fetch_add(1, Relaxed);
            let mut events: Vec<ChannelEvent> = batch.into_iter().map(|(channel, event)| ChannelEvent { channel, event }).collect();
            let first = events.first().and_then(|e| position(&e.event));
            if let (Some((epoch, seq)), Some((last_epoch, last))) = (&first, delivered.get(&user)) {
                if epoch == last_epoch && *seq > last + 1 {
                    cluster.metrics.event_gaps.fetch_add(1, Relaxed);
                    if let Some(missed) = fetch_after(&runtime, &user, &format!("{last_epoch}:{last}")).await {
                        events = missed;
                    }
                }
            }
            if let Some(last) = events.iter().rev().find_map(|e| position(&e.event)) {
                let already = delivered.get(&user).filter(|(epoch, _)| *epoch == last.0).map(|(_, seq)| *seq);
                // Drop what was delivered already (a gap fill can overlap what follows it).
                if let Some(already) = already {
                    events.retain(|e| position(&e.event).is_none_or(|(_, seq)| seq > already));
                }
                delivered.insert(user.clone(), last);
            }
            if events.is_empty() {
                continue;
            }
            let channel_actor = ActorKey::new(ComponentKind::UserChannel, principal);
            runtime.send(channel_actor, Envelope { request: Request::Publish(events), context: CallContext::default(), reply: None });
        }
    });
    Ok(())
}

/// The user's events after `after`, from its library (wherever it is owned).
async fn fetch_after(runtime: &Arc<Runtime>, user: &UserId, after: &str) -> Option<Vec<ChannelEvent>> {
    let key = ActorKey::new(ComponentKind::Library, Principal::User(user.clone()));
    let request = Request::Library { method: "eventsAfter".into(), args: json!({ "after": after }).to_string() };
    let Ok(Response::Library(Ok(answer))) = runtime.call(key, request, CallContext::default()).await else { return None };
    let answer: Json = serde_json::from_str(&answer).ok()?;
    let events = answer.get("events")?.as_array()?;
    Some(
        events
            .iter()
            .filter_map(Json::as_str)
            .map(|event| ChannelEvent { channel: LIBRARY_CHANNEL.into(), event: event.to_string() })
            .collect(),
    )
}
