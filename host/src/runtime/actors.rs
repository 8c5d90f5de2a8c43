//! The actor directory: one mailbox per live actor, created on first use. Sending to
//! an actor that has no task starts one (wake); an idle task retires only when its
//! mailbox is empty, under the directory's lock, so no message is lost to a race.
//! It also keeps the cap on live instances: when an actor needs a new instance and the
//! cap is reached, the least recently used live actor is told to evict between calls.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::actor;
use super::call::{CallContext, CallError, Envelope, Request, Response};
use super::key::ActorKey;
use super::Runtime;

pub struct ActorRegistry {
    mailboxes: Mutex<HashMap<ActorKey, UnboundedSender<Envelope>>>,
    /// Live instances and when each was last called (a logical clock).
    live: Mutex<LiveSet>,
    max_instances: usize,
}

#[derive(Default)]
struct LiveSet {
    last_used: HashMap<ActorKey, u64>,
    clock: u64,
}

impl ActorRegistry {
    pub fn new(max_instances: usize) -> Self {
        Self { mailboxes: Mutex::default(), live: Mutex::default(), max_instances: max_instances.max(1) }
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

    /// Put `envelope` in `key`'s mailbox, starting the actor if it has no task.
    pub fn send(&self, runtime: &Arc<Runtime>, key: ActorKey, envelope: Envelope) {
        let mut mailboxes = self.mailboxes.lock();
        let envelope = match mailboxes.get(&key) {
            Some(mailbox) => match mailbox.send(envelope) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => envelope,
        };
        let (mailbox, inbox) = unbounded_channel();
        let _ = mailbox.send(envelope);
        mailboxes.insert(key.clone(), mailbox);
        drop(mailboxes);
        tokio::spawn(actor::run(key, runtime.clone(), inbox));
    }

    /// Call `key` and wait for the answer.
    pub async fn call(&self, runtime: &Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
        let (reply, answer) = oneshot::channel();
        self.send(runtime, key, Envelope { request, context, reply: Some(reply) });
        answer.await.unwrap_or(Err(CallError::ShuttingDown))
    }

    /// Remove an idle actor's mailbox if nothing is waiting in it; true when removed.
    pub fn retire(&self, key: &ActorKey, inbox: &UnboundedReceiver<Envelope>) -> bool {
        let mut mailboxes = self.mailboxes.lock();
        if inbox.is_empty() {
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
