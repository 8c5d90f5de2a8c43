//! `alarm`: the actor's single alarm, set or cleared when the call commits.

use crate::runtime::bindings::host_api::alarm::Host;
use crate::runtime::state::{ActorState, Effect};
use crate::storage::accounts::now_ms;

impl Host for ActorState {
    async fn now_ms(&mut self) -> u64 {
        now_ms()
    }

    async fn set(&mut self, at_ms: u64) {
        self.call.effects.push(Effect::SetAlarm(at_ms));
    }

    async fn clear(&mut self) {
        self.call.effects.push(Effect::ClearAlarm);
    }
}
