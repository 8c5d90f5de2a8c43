//! `channel`: publish an event to this user's user-channel actor, after commit.

use crate::runtime::bindings::host_api::channel::Host;
use crate::runtime::state::{ActorState, Effect};

impl Host for ActorState {
    async fn publish(&mut self, channel: String, event: String) {
        self.call.effects.push(Effect::Publish { channel, event });
    }
}
