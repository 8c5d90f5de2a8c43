//! The output gate: what a committed call did, released to the world in order.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use super::call::{CallContext, Envelope, Request};
use super::key::{ActorKey, ComponentKind, Principal};
use super::state::{CallState, Effect};
use super::Runtime;
use crate::sockets::Outbound;

/// WebSocket "policy violation": the per-user socket cap.
const CLOSE_POLICY: u16 = 1008;

pub fn apply(runtime: &Arc<Runtime>, key: &ActorKey, call: CallState, is_publish: bool) {
    for (socket, value) in call.attachments {
        if runtime.sockets.is_owned_by(socket, &key.principal) {
            runtime.sockets.set_attachment(socket, value);
        }
    }
    // Everything the call published goes to the user's channel actor in one message.
    let mut published = Vec::new();
    for effect in call.effects {
        match effect {
            Effect::Publish { channel, event } => published.push(ChannelEvent { channel, event }),
            Effect::Send { socket, text } => {
                if runtime.sockets.send(socket, Outbound::Text(text)) && is_publish {
                    runtime.metrics.events_delivered.fetch_add(1, Relaxed);
                }
            }
            Effect::Close { socket, code, reason } => {
                runtime.sockets.send(socket, Outbound::Close(code, reason));
            }
            Effect::Transfer { socket, user } => {
                let owner = Principal::User(user);
                if runtime.sockets.transfer(socket, owner, runtime.settings.max_sockets_per_user).is_err() {
                    runtime.sockets.send(socket, Outbound::Close(CLOSE_POLICY, "Too many sockets for this user".into()));
                }
            }
            Effect::SetAlarm(at_ms) => runtime.alarms.set(runtime, key.clone(), at_ms),
            Effect::ClearAlarm => runtime.alarms.clear(key),
        }
    }
    // Anonymous actors have no user channel: what they publish goes nowhere.
    if let (Some(user), false) = (key.principal.user(), published.is_empty()) {
        runtime.metrics.events_published.fetch_add(published.len() as u64, Relaxed);
        if let Some(replication) = runtime.replication.get() {
            // In a cluster, to every node holding the user's sockets, this one included.
            replication.publish(user, published);
            return;
        }
        let channel_actor = ActorKey::new(ComponentKind::UserChannel, Principal::User(user.clone()));
        runtime.send(channel_actor, Envelope {
            request: Request::Publish(published),
            context: CallContext::default(),
            reply: None,
        });
    }
}
