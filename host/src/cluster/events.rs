//! Events across nodes. What a user's library publishes (after its commit) goes to
//! `rt.ev.<user>` on core NATS, in commit order (one publisher task per node), and every
//! node hands a user's events to its own channel actor for that user when it holds sockets
//! of theirs: the owner from its own commits, the others from NATS.
//!
//! Both go through one delivery task per node, which remembers per user the position of the
//! last event it delivered. Core NATS may drop messages (a slow consumer) and an owner may die
//! between its commit and its publish, so an event further on than the next one means a gap,
//! filled by asking the owner's library for what follows (`eventsAfter`) before delivering
//! on; and a new owner, once it took a user over, asks every node (an empty batch) to check
//! for events it missed the same way. Events already delivered are not delivered again.

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

/// What the delivery task takes, in order.
enum Delivery {
    /// A batch of a user's events (from this node's commit, or from NATS).
    Events(UserId, Vec<ChannelEvent>),
    /// Look for events of this user that were missed (the user changed owner).
    Check(UserId),
}

/// This node's way in and out for events.
pub struct Events {
    outgoing: mpsc::UnboundedSender<(String, Bytes)>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    /// Taken by [`serve`], which runs the delivery task.
    delivery_task: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
}

fn subject(user: &str) -> String {
    format!("rt.ev.{user}")
}

impl Events {
    /// Start the publisher task.
    pub fn start(client: async_nats::Client) -> Self {
        let (outgoing, mut to_publish) = mpsc::unbounded_channel::<(String, Bytes)>();
        tokio::spawn(async move {
            while let Some((subject, payload)) = to_publish.recv().await {
                if let Err(e) = client.publish(subject, payload).await {
                    tracing::warn!("could not publish events to the cluster: {e}");
                }
            }
        });
        let (deliveries, receiver) = mpsc::unbounded_channel();
        Self { outgoing, deliveries, delivery_task: parking_lot::Mutex::new(Some(receiver)) }
    }

    /// What one or more committed calls of `user`'s library published: to every node.
    pub fn publish(&self, user: &UserId, events: Vec<ChannelEvent>) {
        let batch: Vec<Json> = events.iter().map(|e| json!([e.channel, e.event])).collect();
        let _ = self.outgoing.send((subject(user), Bytes::from(Json::Array(batch).to_string())));
        let _ = self.deliveries.send(Delivery::Events(user.clone(), events));
    }

    /// This node took `user` over: every node checks for events it missed.
    pub fn took_over(&self, user: &UserId) {
        let _ = self.outgoing.send((subject(user), Bytes::from_static(b"[]")));
        let _ = self.deliveries.send(Delivery::Check(user.clone()));
    }
}

/// `<epoch>:<seq>` of an event that leads with its position (`{"position":"<epoch>:<seq>",…`,
/// as the library writes it), read without parsing the event.
fn position(event: &str) -> Option<(String, u64)> {
    let rest = event.strip_prefix(r#"{"position":""#)?;
    let (epoch, seq) = rest[..rest.find('"')?].split_once(':')?;
    Some((epoch.to_string(), seq.parse().ok()?))
}

/// Listen for other nodes' events, and run the delivery task.
pub async fn serve(cluster: Arc<Cluster>) -> Result<()> {
    let mut messages = cluster.client.subscribe("rt.ev.*").await.map_err(|e| anyhow!("subscribing to events: {e}"))?;
    let deliveries = cluster.events.deliveries.clone();
    let listener = cluster.clone();
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let Some(user) = message.subject.strip_prefix("rt.ev.") else { continue };
            let Ok(batch) = serde_json::from_slice::<Vec<(String, String)>>(&message.payload) else { continue };
            listener.metrics.events_received.fetch_add(1, Relaxed);
            let user: UserId = user.into();
            let delivery = if batch.is_empty() {
                Delivery::Check(user)
            } else {
                Delivery::Events(user, batch.into_iter().map(|(channel, event)| ChannelEvent { channel, event }).collect())
            };
            let _ = deliveries.send(delivery);
        }
    });
    let receiver = cluster.events.delivery_task.lock().take().ok_or_else(|| anyhow!("the delivery task runs already"))?;
    tokio::spawn(deliver_in_order(cluster, receiver));
    Ok(())
}

async fn deliver_in_order(cluster: Arc<Cluster>, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
    // Per user with sockets here: the position of the last event delivered.
    let mut delivered: HashMap<UserId, (String, u64)> = HashMap::new();
    while let Some(delivery) = deliveries.recv().await {
        let Some(runtime) = cluster.runtime() else { return };
        let (user, events) = match delivery {
            Delivery::Events(user, events) => (user, Some(events)),
            Delivery::Check(user) => (user, None),
        };
        let principal = Principal::User(user.clone());
        if runtime.sockets.list(&principal).is_empty() {
            delivered.remove(&user);
            continue;
        }
        let last = delivered.get(&user).cloned();
        let first = events.as_ref().and_then(|events| events.first()).and_then(|e| position(&e.event));
        let gap = match (&last, &first, &events) {
            (Some(_), _, None) => true,
            (Some((last_epoch, last)), Some((epoch, seq)), Some(_)) => epoch == last_epoch && *seq > last + 1,
            _ => false,
        };
        let mut events = events.unwrap_or_default();
        if gap {
            let (epoch, seq) = last.clone().expect("a gap follows a delivered event");
            if let Some(missed) = fetch_after(&runtime, &user, &format!("{epoch}:{seq}")).await {
                if !events.is_empty() || !missed.is_empty() {
                    cluster.metrics.event_gaps.fetch_add(u64::from(!missed.is_empty()), Relaxed);
                }
                // The answer holds the batch's own events too (they committed before it was sent).
                let newest_fetched = missed.iter().rev().find_map(|e| position(&e.event)).map(|(_, seq)| seq).unwrap_or(seq);
                events.retain(|e| position(&e.event).is_none_or(|(_, s)| s > newest_fetched));
                events.splice(0..0, missed);
            }
        }
        if let Some((epoch, already)) = &last {
            events.retain(|e| position(&e.event).is_none_or(|(event_epoch, seq)| event_epoch != *epoch || seq > *already));
        }
        if let Some(newest) = events.iter().rev().find_map(|e| position(&e.event)) {
            delivered.insert(user.clone(), newest);
        }
        if events.is_empty() {
            continue;
        }
        let channel_actor = ActorKey::new(ComponentKind::UserChannel, principal);
        runtime.send(channel_actor, Envelope { request: Request::Publish(events), context: CallContext::default(), reply: None });
    }
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

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn positions_are_read_from_the_front_of_an_event() {
        assert_eq!(position(r#"{"position":"0123456789abcdef:42","type":"story:create"}"#), Some(("0123456789abcdef".into(), 42)));
        assert_eq!(position(r#"{"type":"story:create","position":"0123456789abcdef:42"}"#), None);
        assert_eq!(position(r#"{"position":"nope"}"#), None);
    }
}
