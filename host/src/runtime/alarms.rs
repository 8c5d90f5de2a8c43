//! Actor alarms: one timer per actor, kept by the host so an evicted actor is woken
//! by its alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::AbortHandle;

use super::call::{CallContext, Envelope, Request};
use super::key::ActorKey;
use super::Runtime;
use crate::storage::accounts::now_ms;

#[derive(Default)]
pub struct Alarms {
    timers: Mutex<HashMap<ActorKey, (u64, AbortHandle)>>,
}

impl Alarms {
    /// Fire `key`'s `on-alarm` at `at_ms` (unix ms), replacing its earlier alarm.
    pub fn set(&self, runtime: &Arc<Runtime>, key: ActorKey, at_ms: u64) {
        let delay = Duration::from_millis(at_ms.saturating_sub(now_ms()));
        let (task_runtime, task_key) = (runtime.clone(), key.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            task_runtime.alarms.fired(&task_key, at_ms);
            let envelope = Envelope { request: Request::Alarm, context: CallContext::default(), reply: None };
            task_runtime.send(task_key, envelope);
        });
        if let Some((_, earlier)) = self.timers.lock().insert(key, (at_ms, task.abort_handle())) {
            earlier.abort();
        }
    }

    pub fn clear(&self, key: &ActorKey) {
        if let Some((_, timer)) = self.timers.lock().remove(key) {
            timer.abort();
        }
    }

    fn fired(&self, key: &ActorKey, at_ms: u64) {
        let mut timers = self.timers.lock();
        if timers.get(key).is_some_and(|(at, _)| *at == at_ms) {
            timers.remove(key);
        }
    }
}
