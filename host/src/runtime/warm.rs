//! A few started instances of the stateless graphql component, with both of its schemas
//! already built, so that waking a user's graphql actor skips instantiation and schema
//! construction (most of a wake's cost). A pooled instance has never served any user: it
//! only resolved one synthetic event as an anonymous caller. It is bound to its actor when
//! taken, and never returns to the pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::bindings::host_api::graphql::EventFor;
use super::call::{CallContext, Request};
use super::components::Version;
use super::instance::Instance;
use super::key::{ActorKey, ComponentKind, Principal};
use super::state::CallState;
use crate::server::Host;

/// Instances kept ready.
pub const WARM_INSTANCES: usize = 4;

/// The principal pooled instances are created as, before they are bound.
const UNBOUND: Principal = Principal::Anonymous(u8::MAX);

#[derive(Default)]
pub struct WarmPool {
    ready: Mutex<Vec<Instance>>,
    filling: AtomicBool,
}

impl WarmPool {
    /// A ready instance of `version`, if there is one.
    pub fn take(&self, version: &Arc<Version>) -> Option<Instance> {
        let mut ready = self.ready.lock();
        ready.retain(|instance| Arc::ptr_eq(&instance.version, version));
        ready.pop()
    }

    /// Top the pool up in the background, if it is short.
    pub fn refill(&self, host: &Arc<Host>) {
        if self.ready.lock().len() >= WARM_INSTANCES || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let host = host.clone();
        tokio::spawn(async move {
            while host.warm.ready.lock().len() < WARM_INSTANCES && !host.is_shutting_down() {
                let Some(version) = host.components.current(ComponentKind::Graphql) else { break };
                match warm_up(&host, version).await {
                    Some(instance) => host.warm.ready.lock().push(instance),
                    None => break,
                }
            }
            host.warm.filling.store(false, Ordering::Release);
        });
    }
}

/// Start an instance and make it build its schemas.
async fn warm_up(host: &Arc<Host>, version: Arc<Version>) -> Option<Instance> {
    let key = ActorKey::new(ComponentKind::Graphql, UNBOUND);
    let mut instance = Instance::new(key, host.clone(), version).await.ok()?;
    instance.store.data_mut().call = CallState::new(CallContext::default());
    let request = Request::ResolveEvents(vec![EventFor {
        event: r#"{"type":"library:change","totalStories":0,"totalTags":0}"#.into(),
        requests: vec![r#"{"query":"subscription { channel(name: \"library\") { __typename } }"}"#.into()],
    }]);
    instance.call(request).await.ok()?;
    instance.store.data_mut().call = CallState::default();
    Some(instance)
}
