//! The actor directory: one mailbox per live actor, created on first use. Sending to
//! an actor that has no task starts one (wake); an idle task retires only when its
//! mailbox is empty, under the directory's lock, so no message is lost to a race.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::actor;
use super::call::{CallContext, CallError, Envelope, Request, Response};
use super::key::ActorKey;
use crate::server::Host;

#[derive(Default)]
pub struct ActorRegistry {
    mailboxes: Mutex<HashMap<ActorKey, UnboundedSender<Envelope>>>,
}

impl ActorRegistry {
    /// Put `envelope` in `key`'s mailbox, starting the actor if it has no task.
    pub fn send(&self, host: &Arc<Host>, key: ActorKey, envelope: Envelope) {
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
        tokio::spawn(actor::run(key, host.clone(), inbox));
    }

    /// Call `key` and wait for the answer.
    pub async fn call(&self, host: &Arc<Host>, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
        let (reply, answer) = oneshot::channel();
        self.send(host, key, Envelope { request, context, reply: Some(reply) });
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

    /// Actors with a task now.
    pub fn active(&self) -> usize {
        self.mailboxes.lock().len()
    }
}
