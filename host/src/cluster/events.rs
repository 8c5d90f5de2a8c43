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
//!
//! Core NATS drops what a node was not connected for, and what it could not take in time (a
//! slow consumer), and then no later event may come to show the gap (a user's last change).
//! The NATS client tells of both ([`MissedNotice`]): every user this node delivers to is then
//! checked the same way, once per notice however many come together.
//!
//! A gap fill is a call to another node, which may wait for a dead owner's lease to lapse; it
//! runs beside the delivery task, which holds back only that user's later batches until the
//! fill is in (a failover sends a crowd of checks at once: none waits for another user's).

use std::collections::{HashMap, VecDeque};
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

/// What a live subscription gets when this node may have missed events it cannot name.
const MISSED_RESET: &str = r#"{"type":"channel:reset","reason":"events may have been missed while this server was cut off from the cluster"}"#;

/// What the delivery task takes, in order.
enum Delivery {
    /// A batch of a user's events (from this node's commit, or from NATS).
    Events(UserId, Vec<ChannelEvent>),
    /// Look for events of this user that were missed (the user changed owner).
    Check(UserId),
    /// A gap fill ended: the user's events after the last one delivered, as its library has
    /// them (`None`: it could not be asked).
    Filled(UserId, Option<Vec<ChannelEvent>>),
    /// This node may have missed events of any user (see [`MissedNotice`]).
    MayHaveMissed,
}

/// Turns what the NATS client reports into a check of every user this node delivers to: a
/// (re)connection (what was sent while away is gone) or a slow consumer (messages dropped).
/// Made before the connection, whose event callback it is; notices that come while one is
/// still waiting for the delivery task count as that one.
#[derive(Clone, Default)]
pub struct MissedNotice(Arc<MissedNoticeState>);

#[derive(Default)]
struct MissedNoticeState {
    deliveries: std::sync::OnceLock<mpsc::UnboundedSender<Delivery>>,
    waiting: std::sync::atomic::AtomicBool,
}

impl MissedNotice {
    /// What the NATS client reported.
    pub fn notice(&self, event: &async_nats::Event) {
        if !matches!(event, async_nats::Event::Connected | async_nats::Event::SlowConsumer(_)) {
            return;
        }
        tracing::debug!("events may have been missed: {event}");
        if let Some(deliveries) = self.0.deliveries.get() {
            if !self.0.waiting.swap(true, Relaxed) {
                let _ = deliveries.send(Delivery::MayHaveMissed);
            }
        }
    }

    /// The delivery task takes the notice: later ones are new.
    fn taken(&self) {
        self.0.waiting.store(false, Relaxed);
    }
}

/// This node's way in and out for events.
pub struct Events {
    outgoing: mpsc::UnboundedSender<(String, Bytes)>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    /// Taken by [`serve`], which runs the delivery task.
    delivery_task: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
    missed: MissedNotice,
}

fn subject(user: &str) -> String {
    format!("rt.ev.{user}")
}

impl Events {
    /// Start the publisher task; `missed` (the connection's event callback) reaches the
    /// delivery task from now on.
    pub fn start(client: async_nats::Client, missed: MissedNotice) -> Self {
        let (outgoing, mut to_publish) = mpsc::unbounded_channel::<(String, Bytes)>();
        tokio::spawn(async move {
            while let Some((subject, payload)) = to_publish.recv().await {
                if let Err(e) = client.publish(subject, payload).await {
                    tracing::warn!("could not publish events to the cluster: {e}");
                }
            }
        });
        let (deliveries, receiver) = mpsc::unbounded_channel();
        let _ = missed.0.deliveries.set(deliveries.clone());
        Self { outgoing, deliveries, delivery_task: parking_lot::Mutex::new(Some(receiver)), missed }
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
fn position(event: &str) -> Option<Position> {
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

/// `<epoch>:<seq>` of an event's position.
type Position = (String, u64);

/// What the delivery task does for a user, as [`UserDelivery`] decides.
enum Action {
    /// Hand these events to the user's channel actor on this node.
    Deliver(Vec<ChannelEvent>),
    /// Ask the user's library for its events after this position, and hand the answer to
    /// [`UserDelivery::filled`].
    Fill(String),
}

/// The order of one user's events on this node: which to deliver, which were delivered
/// already, and when a gap must be filled first (no I/O here: it says what to do).
#[derive(Default)]
struct UserDelivery {
    /// The position of the last event delivered.
    last: Option<Position>,
    /// A gap fill is under way: what arrives meanwhile waits in `held`, in order (a batch,
    /// or `None` for a check).
    filling: bool,
    held: VecDeque<Option<Vec<ChannelEvent>>>,
}

impl UserDelivery {
    /// A batch of events (`Some`) or a check for missed ones (`None`) arrived.
    fn arrive(&mut self, batch: Option<Vec<ChannelEvent>>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.filling {
            self.held.push_back(batch);
        } else {
            self.take(batch, true, &mut actions);
        }
        actions
    }

    /// The fill ended with the library's events after the last one delivered (`None`: it
    /// could not be asked; what was held then goes through as the owner sent it, rather than
    /// asking again and again).
    fn filled(&mut self, fetched: Option<Vec<ChannelEvent>>) -> Vec<Action> {
        let mut actions = Vec::new();
        self.filling = false;
        let answered = fetched.is_some();
        if let Some(missed) = fetched {
            self.deliver(missed, &mut actions);
        }
        let mut may_fill = answered;
        while !self.filling {
            let Some(next) = self.held.pop_front() else { break };
            if answered && next.is_none() {
                continue; // a check: the fill just looked
            }
            self.take(next, may_fill, &mut actions);
            may_fill = true;
        }
        actions
    }

    /// Deliver a batch, or start a fill before it when it is further on than the next event
    /// (or is a check) and `may_fill`.
    fn take(&mut self, batch: Option<Vec<ChannelEvent>>, may_fill: bool, actions: &mut Vec<Action>) {
        let first = batch.as_ref().and_then(|events| events.first()).and_then(|e| position(&e.event));
        let gap = match (&self.last, &first, &batch) {
            (Some(_), _, None) => true,
            (Some((last_epoch, last)), Some((epoch, seq)), Some(_)) => epoch == last_epoch && *seq > last + 1,
            _ => false,
        };
        match (gap && may_fill, &self.last) {
            (true, Some((epoch, seq))) => {
                actions.push(Action::Fill(format!("{epoch}:{seq}")));
                self.filling = true;
                if batch.is_some() {
                    // After the fill (whose answer holds these too when they committed before it).
                    self.held.push_front(batch);
                }
            }
            _ => self.deliver(batch.unwrap_or_default(), actions),
        }
    }

    /// Deliver the events not delivered yet.
    fn deliver(&mut self, mut events: Vec<ChannelEvent>, actions: &mut Vec<Action>) {
        if let Some((epoch, already)) = &self.last {
            events.retain(|e| position(&e.event).is_none_or(|(event_epoch, seq)| event_epoch != *epoch || seq > *already));
        }
        if let Some(newest) = events.iter().rev().find_map(|e| position(&e.event)) {
            self.last = Some(newest);
        }
        if !events.is_empty() {
            actions.push(Action::Deliver(events));
        }
    }
}

async fn deliver_in_order(cluster: Arc<Cluster>, mut deliveries: mpsc::UnboundedReceiver<Delivery>) {
    let mut users: HashMap<UserId, UserDelivery> = HashMap::new();
    while let Some(delivery) = deliveries.recv().await {
        let Some(runtime) = cluster.runtime() else { return };
        let user = match &delivery {
            Delivery::Events(user, _) | Delivery::Check(user) | Delivery::Filled(user, _) => user.clone(),
            Delivery::MayHaveMissed => {
                // Every user delivered to here is checked, in the order of this queue.
                cluster.events.missed.taken();
                for user in users.keys() {
                    let _ = cluster.events.deliveries.send(Delivery::Check(user.clone()));
                }
                // A user with sockets here but nothing delivered yet has no position to look
                // from: their live subscriptions get one `channel:reset` (refetch), the way a
                // resume too far back does, rather than a silent gap.
                for principal in runtime.sockets.owners() {
                    let Principal::User(user) = &principal else { continue };
                    if !users.contains_key(user) {
                        let channel_actor = ActorKey::new(ComponentKind::UserChannel, principal.clone());
                        let reset = ChannelEvent { channel: LIBRARY_CHANNEL.into(), event: MISSED_RESET.into() };
                        runtime.send(channel_actor, Envelope { request: Request::Publish(vec![reset]), context: CallContext::default(), reply: None });
                    }
                }
                continue;
            }
        };
        let principal = Principal::User(user.clone());
        if !runtime.sockets.holds(&principal) {
            // No socket of this user here (every node hears every user's events); a fill's
            // answer finds nothing to deliver to.
            users.remove(&user);
            continue;
        }
        let state = users.entry(user.clone()).or_default();
        let actions = match delivery {
            Delivery::Events(_, events) => state.arrive(Some(events)),
            Delivery::Check(_) => state.arrive(None),
            Delivery::Filled(_, fetched) if state.filling => {
                if fetched.as_ref().is_some_and(|missed| !missed.is_empty()) {
                    cluster.metrics.event_gaps.fetch_add(1, Relaxed);
                }
                state.filled(fetched)
            }
            // The answer of a fill started before the user's sockets here all closed (a
            // notice is handled above).
            Delivery::Filled(..) | Delivery::MayHaveMissed => Vec::new(),
        };
        for action in actions {
            match action {
                Action::Deliver(events) => {
                    let channel_actor = ActorKey::new(ComponentKind::UserChannel, principal.clone());
                    runtime.send(channel_actor, Envelope { request: Request::Publish(events), context: CallContext::default(), reply: None });
                }
                Action::Fill(after) => {
                    let (runtime, user, to_delivery) = (runtime.clone(), user.clone(), cluster.events.deliveries.clone());
                    tokio::spawn(async move {
                        let fetched = fetch_after(&runtime, &user, &after).await;
                        let _ = to_delivery.send(Delivery::Filled(user, fetched));
                    });
                }
            }
        }
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
    use super::{position, Action, ChannelEvent, Delivery, MissedNotice, UserDelivery};

    const EPOCH: &str = "0123456789abcdef";

    /// Events at these seqs, as a library writes them.
    fn batch(seqs: &[u64]) -> Vec<ChannelEvent> {
        seqs.iter().map(|seq| ChannelEvent { channel: "library".into(), event: format!(r#"{{"position":"{EPOCH}:{seq}","type":"story:create"}}"#) }).collect()
    }

    /// What the actions say, short: `deliver 1,2` or `fill after 3`.
    fn said(actions: Vec<Action>) -> Vec<String> {
        actions
            .into_iter()
            .map(|action| match action {
                Action::Deliver(events) => {
                    let seqs: Vec<String> = events.iter().map(|e| position(&e.event).unwrap().1.to_string()).collect();
                    format!("deliver {}", seqs.join(","))
                }
                Action::Fill(after) => format!("fill after {}", after.rsplit(':').next().unwrap()),
            })
            .collect()
    }

    #[test]
    fn in_order_batches_are_delivered_and_repeats_dropped() {
        let mut user = UserDelivery::default();
        assert_eq!(said(user.arrive(Some(batch(&[4, 5])))), ["deliver 4,5"], "the first batch sets where this node starts");
        assert_eq!(said(user.arrive(Some(batch(&[6])))), ["deliver 6"]);
        assert_eq!(said(user.arrive(Some(batch(&[5, 6, 7])))), ["deliver 7"]);
        assert_eq!(said(user.arrive(None)), ["fill after 7"], "a check asks the library");
    }

    #[test]
    fn a_gap_is_filled_before_what_follows_and_nothing_twice() {
        let mut user = UserDelivery::default();
        user.arrive(Some(batch(&[1])));
        assert_eq!(said(user.arrive(Some(batch(&[4])))), ["fill after 1"]);
        // Arriving while the fill is out: held, in order.
        assert!(said(user.arrive(Some(batch(&[5])))).is_empty());
        assert!(said(user.arrive(None)).is_empty());
        // The library had 2..4 (4 committed before the fill asked): 4 is not delivered twice,
        // the held check is answered by the fill itself.
        assert_eq!(said(user.filled(Some(batch(&[2, 3, 4])))), ["deliver 2,3,4", "deliver 5"]);
        assert!(!user.filling);
        assert_eq!(said(user.arrive(Some(batch(&[6])))), ["deliver 6"]);
    }

    #[test]
    fn a_check_after_a_take_over_asks_for_what_was_missed() {
        let mut user = UserDelivery::default();
        assert!(said(user.arrive(None)).is_empty(), "nothing delivered yet: nothing to look for");
        user.arrive(Some(batch(&[1, 2])));
        assert_eq!(said(user.arrive(None)), ["fill after 2"]);
        assert_eq!(said(user.filled(Some(batch(&[3])))), ["deliver 3"]);
        assert_eq!(said(user.arrive(None)), ["fill after 3"]);
        assert!(said(user.filled(Some(Vec::new()))).is_empty(), "nothing was missed");
    }

    #[test]
    fn a_failed_fill_lets_the_held_batch_through_once() {
        let mut user = UserDelivery::default();
        user.arrive(Some(batch(&[1])));
        assert_eq!(said(user.arrive(Some(batch(&[3])))), ["fill after 1"]);
        user.arrive(Some(batch(&[5])));
        // The library could not be asked: 3 goes through as sent; 5 is a gap again, asked for.
        assert_eq!(said(user.filled(None)), ["deliver 3", "fill after 3"]);
        assert_eq!(said(user.filled(Some(batch(&[4, 5])))), ["deliver 4,5"]);
    }

    #[test]
    fn a_reconnection_or_a_slow_consumer_is_one_check_until_the_delivery_task_takes_it() {
        let notice = MissedNotice::default();
        let (deliveries, mut received) = tokio::sync::mpsc::unbounded_channel();
        notice.0.deliveries.set(deliveries).unwrap();
        notice.notice(&async_nats::Event::Disconnected);
        assert!(received.try_recv().is_err(), "a disconnection alone loses nothing yet");
        notice.notice(&async_nats::Event::Connected);
        notice.notice(&async_nats::Event::SlowConsumer(7));
        assert!(matches!(received.try_recv(), Ok(Delivery::MayHaveMissed)));
        assert!(received.try_recv().is_err(), "the second notice counts as the waiting one");
        notice.taken();
        notice.notice(&async_nats::Event::SlowConsumer(7));
        assert!(matches!(received.try_recv(), Ok(Delivery::MayHaveMissed)));
    }

    #[test]
    fn positions_are_read_from_the_front_of_an_event() {
        assert_eq!(position(r#"{"position":"0123456789abcdef:42","type":"story:create"}"#), Some(("0123456789abcdef".into(), 42)));
        assert_eq!(position(r#"{"type":"story:create","position":"0123456789abcdef:42"}"#), None);
        assert_eq!(position(r#"{"position":"nope"}"#), None);
    }
}
