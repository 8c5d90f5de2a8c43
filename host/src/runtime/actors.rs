//! The actor directory: one mailbox per live actor, created on first use. Sending to
//! an actor that has no task starts one (wake); an idle task retires only when its
//! mailbox is empty, under the directory's lock, so no message is lost to a race.
//! It also keeps the cap on live instances: when an actor needs a new instance and the
//! cap is reached, the least recently used live actor is told to evict between calls.
//!
//! A mailbox takes every call (their inflow is bounded elsewhere: one frame in flight per
//! socket, one request per connection, a few graphql calls at once), but not every publish: a
//! user-channel actor that falls `--max-mailbox` envelopes behind its library's events sheds
//! the next ones and closes every socket of its user with 1013 (try again later), so its
//! clients reconnect and refetch instead of the backlog growing without end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;

use super::actor;
use super::call::{CallContext, CallError, Envelope, Request, Response};
use super::key::ActorKey;
use super::Runtime;

/// graphql-ws clients reconnect after this close (RFC 6455 "Try Again Later").
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// One actor's mailbox: where to send, and how many envelopes wait in it.
struct Mailbox {
    sender: UnboundedSender<Envelope>,
    pending: Arc<AtomicUsize>,
}

pub struct ActorRegistry {
    mailboxes: Mutex<HashMap<ActorKey, Mailbox>>,
    /// Live instances and when each was last called (a logical clock).
    live: Mutex<LiveSet>,
    max_instances: usize,
    /// Envelopes waiting in one mailbox past which publishes are shed (`--max-mailbox`).
    max_pending: usize,
}

#[derive(Default)]
struct LiveSet {
    last_used: HashMap<ActorKey, u64>,
    clock: u64,
}

impl ActorRegistry {
    pub fn new(max_instances: usize, max_pending: usize) -> Self {
        Self { mailboxes: Mutex::default(), live: Mutex::default(), max_instances: max_instances.max(1), max_pending: max_pending.max(1) }
    }

    /// `key` is about to create an instance: if the cap is reached, ask the least
    /// recently used other actor to evict.
    pub fn make_room(&self, runtime: &Arc<Runtime>, key: &ActorKey) {
        let victim = {
            let live = self.live.lock();
            if live.last_used.len() < self.max_instances {
                return;
            }
            live.last_used.iter().filter(|(k, _)| *k != key).min_by_key(|(_, used)| **used).map(|(k, _)| k.clone())
        };
        if let Some(victim) = victim {
            self.live.lock().last_used.remove(&victim);
            self.send(runtime, victim, Envelope { request: Request::Evict, context: CallContext::default(), reply: None });
        }
    }

    /// `key` has a live instance and is being called now.
    pub fn touch(&self, key: &ActorKey) {
        let mut live = self.live.lock();
        live.clock += 1;
        let now = live.clock;
        live.last_used.insert(key.clone(), now);
    }

    /// `key`'s instance is gone.
    pub fn forget(&self, key: &ActorKey) {
        self.live.lock().last_used.remove(key);
    }

    /// Put `envelope` in `key`'s mailbox, starting the actor if it has no task. A publish to a
    /// mailbox `--max-mailbox` envelopes behind is shed, and its user's sockets closed (1013).
    pub fn send(&self, runtime: &Arc<Runtime>, key: ActorKey, envelope: Envelope) {
        let mut mailboxes = self.mailboxes.lock();
        let envelope = match mailboxes.get(&key) {
            Some(mailbox) if mailbox.pending.load(Ordering::Relaxed) >= self.max_pending && matches!(envelope.request, Request::Publish(_)) => {
                drop(mailboxes);
                shed(runtime, &key);
                return;
            }
            Some(mailbox) => {
                mailbox.pending.fetch_add(1, Ordering::Relaxed);
                match mailbox.sender.send(envelope) {
                    Ok(()) => return,
                    Err(returned) => {
                        mailbox.pending.fetch_sub(1, Ordering::Relaxed);
                        returned.0
                    }
                }
            }
            None => envelope,
        };
        let (sender, inbox) = unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(1));
        let _ = sender.send(envelope);
        mailboxes.insert(key.clone(), Mailbox { sender, pending: pending.clone() });
        drop(mailboxes);
        tokio::spawn(actor::run(key, runtime.clone(), actor::Inbox { receiver: inbox, pending }));
    }

    /// Call `key` and wait for the answer.
    pub async fn call(&self, runtime: &Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
        let (reply, answer) = oneshot::channel();
        self.send(runtime, key, Envelope { request, context, reply: Some(reply) });
        answer.await.unwrap_or(Err(CallError::ShuttingDown))
    }

    /// Remove an idle actor's mailbox if nothing is waiting in it; true when removed.
    pub fn retire(&self, key: &ActorKey, inbox: &actor::Inbox) -> bool {
        let mut mailboxes = self.mailboxes.lock();
        if inbox.receiver.is_empty() {
            mailboxes.remove(key);
            true
        } else {
            false
        }
    }

    /// Every actor with a task now.
    pub fn keys(&self) -> Vec<ActorKey> {
        self.mailboxes.lock().keys().cloned().collect()
    }

    /// Actors with a task now.
    pub fn active(&self) -> usize {
        self.mailboxes.lock().len()
    }
}

/// A user-channel actor too far behind its events: what it would have delivered is lost, so
/// every socket of its user is told to reconnect (and its client to refetch).
fn shed(runtime: &Arc<Runtime>, key: &ActorKey) {
    let sockets = runtime.sockets.list(&key.principal);
    // Counted rather than logged each time: a backlog sheds every publish until it drains.
    runtime.metrics.publishes_shed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(actor = %key, sockets = sockets.len(), "too many events queued: shed a publish, closing the user's sockets (1013)");
    for socket in sockets {
        runtime.sockets.kill(socket, CLOSE_TRY_AGAIN_LATER, "Too many events queued: reconnect");
    }
}
