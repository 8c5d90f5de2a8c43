//! The stateless graphql component, served by a small set of long-lived instances that
//! belong to no user.
//!
//! The graphql world imports no storage of its own: what it reaches (`library`, `accounts`)
//! the host scopes to the user of each call (`CallContext`), so one instance can serve
//! every user in turn, and a user coming alive costs no instance and no schema build.
//! Each instance runs one call at a time; the pool grows on demand up to
//! `--graphql-instances`, keeps [`MIN_READY`] started (schemas built) and drops the others
//! after `--idle-timeout` without a call.
//!
//! Fairness: calls wait in one FIFO queue for an instance, and one user holds at most
//! [`PER_USER`] instances at once (callers without a user, together, at most half of
//! them), so a user flooding requests that wait on their own library actor cannot starve
//! the others. Clients' HTTP requests together hold at most all but [`EVENT_RESERVE`]
//! instances: however many accounts keep slow requests running, event delivery (a
//! user-channel resolving its subscribers' selections) and socket operations always find an
//! instance.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::bindings::host_api::graphql::EventFor;
use super::call::{CallContext, CallError, Request, Response};
use super::components::Version;
use super::instance::Instance;
use super::trusted_documents::TrustedDocuments;
use super::key::{ActorKey, ComponentKind, Principal};
use super::state::CallState;
use super::Runtime;

/// Started instances kept ready even when idle (one per core on the target machine).
pub const MIN_READY: usize = 2;

/// Instances one user may hold at once.
pub const PER_USER: usize = 4;

/// Instances clients' HTTP requests never take (kept for event delivery and sockets), when
/// the pool has more than this many.
pub const EVENT_RESERVE: usize = 2;

/// The principal pooled instances run as; the user of each call is in its context.
const POOLED: Principal = Principal::Anonymous(u8::MAX);


/// Who a call is for, for the per-caller share.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Caller {
    User(Arc<str>),
    Anonymous,
}

impl Caller {
    fn of(context: &CallContext) -> Self {
        match &context.user {
            Some(user) => Caller::User(user.id.clone()),
            None => Caller::Anonymous,
        }
    }
}

struct Ready {
    instance: Instance,
    since: Instant,
}

/// Who may take an instance, in what order (no instances here: the places). A call takes
/// first its caller's share, then (a client's HTTP request) one of the places clients may
/// hold, then an instance's place, so a caller waiting for its own share holds nothing others
/// need, and clients together never hold the last [`EVENT_RESERVE`] places.
struct Places {
    /// One permit per instance that may exist (busy or ready).
    slots: Arc<Semaphore>,
    /// One permit per instance clients' HTTP requests may hold together.
    client_slots: Arc<Semaphore>,
    /// Each caller's share of the slots, while it has calls waiting or running.
    shares: Mutex<HashMap<Caller, Arc<Semaphore>>>,
    max: usize,
}

/// The places one call holds, given back when dropped.
struct Entered<'a> {
    places: &'a Places,
    caller: Caller,
    share: Arc<Semaphore>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    _client_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    share_permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        drop(self.share_permit.take());
        self.places.release_share(&self.caller, &self.share);
    }
}

impl Places {
    fn new(max: usize) -> Self {
        let for_clients = if max > EVENT_RESERVE { max - EVENT_RESERVE } else { max };
        Self { slots: Arc::new(Semaphore::new(max)), client_slots: Arc::new(Semaphore::new(for_clients)), shares: Mutex::default(), max }
    }

    /// Wait for the places a call of `caller` needs (`client`: an HTTP request).
    async fn enter(&self, caller: Caller, client: bool) -> Result<Entered<'_>, CallError> {
        let share = self.share(&caller);
        let share_permit = share.clone().acquire_owned().await.map_err(|_| CallError::ShuttingDown)?;
        let client_slot = match client {
            true => Some(self.client_slots.clone().acquire_owned().await.map_err(|_| CallError::ShuttingDown)?),
            false => None,
        };
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| CallError::ShuttingDown)?;
        Ok(Entered { places: self, caller, share, _slot: slot, _client_slot: client_slot, share_permit: Some(share_permit) })
    }

    /// The semaphore that bounds `caller`'s share of the instances.
    fn share(&self, caller: &Caller) -> Arc<Semaphore> {
        let limit = match caller {
            Caller::User(_) => PER_USER.min(self.max),
            Caller::Anonymous => (self.max / 2).max(1),
        };
        self.shares.lock().entry(caller.clone()).or_insert_with(|| Arc::new(Semaphore::new(limit))).clone()
    }

    /// Forget a caller's share once nobody holds or waits for it.
    fn release_share(&self, caller: &Caller, share: &Arc<Semaphore>) {
        let mut shares = self.shares.lock();
        // Two references: the map's and `share`; anyone else waiting holds a third.
        if Arc::strong_count(share) == 2 {
            shares.remove(caller);
        }
    }
}

pub struct GraphqlPool {
    /// Started instances with no call, most recently used last.
    ready: Mutex<Vec<Ready>>,
    places: Places,
    /// Clients' calls running or waiting, per caller (see [`GraphqlPool::call_for_client`]).
    in_flight: Mutex<HashMap<Caller, usize>>,
    /// Calls one user may have in flight from clients (`--max-requests-in-flight`); callers
    /// without a user, together, four times as many.
    max_in_flight: usize,
    max: usize,
}

/// One client call counted in `in_flight` until it ends (even if its client went away).
struct InFlight {
    runtime: Arc<Runtime>,
    caller: Caller,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self.runtime.graphql.in_flight.lock();
        if let Some(calls) = in_flight.get_mut(&self.caller) {
            *calls -= 1;
            if *calls == 0 {
                in_flight.remove(&self.caller);
            }
        }
    }
}

impl GraphqlPool {
    pub fn new(max: usize, max_in_flight: usize) -> Self {
        let (max, max_in_flight) = (max.max(1), max_in_flight.max(1));
        Self { ready: Mutex::default(), places: Places::new(max), in_flight: Mutex::default(), max_in_flight, max }
    }

    /// Run `request` for the caller in `context` on a pooled instance. The call runs in a
    /// task of its own, so a caller that goes away (an HTTP client that disconnects) does
    /// not cut a call, and the instance, in half.
    pub async fn call(runtime: &Arc<Runtime>, request: Request, context: CallContext) -> Result<Response, CallError> {
        Self::spawn_run(runtime, request, context, None).await
    }

    /// Run the call in a task of its own; `counted` (a client's call) is released when it ends.
    async fn spawn_run(runtime: &Arc<Runtime>, request: Request, context: CallContext, counted: Option<InFlight>) -> Result<Response, CallError> {
        let request = match trusted(&runtime.settings.trusted_documents, request) {
            Ok(request) => request,
            Err(refused) => return Ok(refused),
        };
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let client = counted.is_some();
            let _counted = counted;
            runtime.graphql.run(&runtime, request, context, client).await
        })
        .await
        .unwrap_or(Err(CallError::ShuttingDown))
    }

    /// [`GraphqlPool::call`] for a client's request: refused with [`CallError::Busy`] when
    /// its caller already has `--max-requests-in-flight` calls running or waiting, so one client
    /// cannot grow the queue everyone waits in.
    pub async fn call_for_client(runtime: &Arc<Runtime>, request: Request, context: CallContext) -> Result<Response, CallError> {
        let caller = Caller::of(&context);
        let limit = match caller {
            Caller::User(_) => runtime.graphql.max_in_flight,
            Caller::Anonymous => runtime.graphql.max_in_flight * 4,
        };
        {
            let mut in_flight = runtime.graphql.in_flight.lock();
            let calls = in_flight.entry(caller.clone()).or_default();
            if *calls >= limit {
                return Err(CallError::Busy);
            }
            *calls += 1;
        }
        let counted = InFlight { runtime: runtime.clone(), caller };
        Self::spawn_run(runtime, request, context, Some(counted)).await
    }

    /// Run the call on an instance, once it has its places (see [`Places`]).
    async fn run(&self, runtime: &Arc<Runtime>, request: Request, context: CallContext, client: bool) -> Result<Response, CallError> {
        let _entered = self.places.enter(Caller::of(&context), client).await?;
        self.call_on_instance(runtime, request, context).await
    }

    async fn call_on_instance(&self, runtime: &Arc<Runtime>, request: Request, context: CallContext) -> Result<Response, CallError> {
        let version = runtime.components.current(ComponentKind::Graphql).ok_or(CallError::NotLoaded("graphql"))?;
        let mut instance = match self.take(runtime, &version) {
            Some(instance) => instance,
            None => start(runtime, version).await?,
        };
        let export = request.export_name();
        let metrics = runtime.metrics.component(ComponentKind::Graphql);
        let result = call_once(&mut instance, request, context).await;
        metrics.calls.fetch_add(1, Relaxed);
        match result {
            Ok(response) => {
                self.ready.lock().push(Ready { instance, since: Instant::now() });
                Ok(response)
            }
            Err(trap) => {
                let message = super::actor::trap_message(&trap);
                tracing::warn!(export, "graphql call failed, instance dropped: {message}");
                metrics.traps.fetch_add(1, Relaxed);
                dropped(runtime);
                Err(CallError::Trap { component: "graphql", export, message })
            }
        }
    }

    /// A ready instance of `version`; ready instances of older versions are dropped, and
    /// the pool is warmed up again for the new one.
    fn take(&self, runtime: &Arc<Runtime>, version: &Arc<Version>) -> Option<Instance> {
        let mut ready = self.ready.lock();
        let before = ready.len();
        ready.retain(|r| Arc::ptr_eq(&r.instance.version, version));
        let stale = before - ready.len();
        let instance = ready.pop().map(|r| r.instance);
        drop(ready);
        if stale > 0 {
            (0..stale).for_each(|_| dropped(runtime));
            self.warm_up(runtime);
        }
        instance
    }

    /// Start instances (with their schemas built) until [`MIN_READY`] are ready, in the
    /// background.
    pub fn warm_up(&self, runtime: &Arc<Runtime>) {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let pool = &runtime.graphql;
            while pool.ready.lock().len() < MIN_READY.min(pool.max) && !runtime.is_stopping() {
                let Ok(slot) = pool.places.slots.clone().try_acquire_owned() else { break };
                let Some(version) = runtime.components.current(ComponentKind::Graphql) else { break };
                let Some(instance) = warmed(&runtime, version).await else { break };
                pool.ready.lock().push(Ready { instance, since: Instant::now() });
                drop(slot);
            }
        });
    }

    /// Drop ready instances beyond [`MIN_READY`] that have had no call for `idle`.
    pub fn evict_idle(&self, runtime: &Arc<Runtime>, idle: Duration) {
        let mut ready = self.ready.lock();
        let keep_at_least = MIN_READY.min(ready.len());
        let mut removed = 0;
        // Oldest first: `ready` is in order of return.
        while ready.len() > keep_at_least && ready.first().is_some_and(|r| r.since.elapsed() >= idle) {
            ready.remove(0);
            removed += 1;
        }
        drop(ready);
        (0..removed).for_each(|_| dropped(runtime));
    }

    /// Every `idle` / 2, drop what has been idle for `idle`; ends with the server.
    pub fn spawn_evictor(runtime: &Arc<Runtime>) {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let idle = runtime.settings.idle_timeout;
            let mut ticker = tokio::time::interval((idle / 2).max(Duration::from_millis(100)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !runtime.is_stopping() {
                ticker.tick().await;
                runtime.graphql.evict_idle(&runtime, idle);
            }
        });
    }
}

/// A new instance of `version`.
async fn start(runtime: &Arc<Runtime>, version: Arc<Version>) -> Result<Instance, CallError> {
    let started = Instant::now();
    let instance = Instance::new(ActorKey::new(ComponentKind::Graphql, POOLED), runtime.clone(), version).await.map_err(|e| {
        tracing::error!("graphql instantiation failed: {e:#}");
        CallError::Refused(format!("could not start the graphql component: {e}"))
    })?;
    let metrics = runtime.metrics.component(ComponentKind::Graphql);
    metrics.live_instances.fetch_add(1, Relaxed);
    metrics.instantiations.fetch_add(1, Relaxed);
    tracing::debug!(micros = started.elapsed().as_micros() as u64, "graphql instance started");
    Ok(instance)
}

/// A new instance that has built both of its schemas (by resolving one synthetic event
/// and preparing one query, with no user).
async fn warmed(runtime: &Arc<Runtime>, version: Arc<Version>) -> Option<Instance> {
    let mut instance = start(runtime, version).await.ok()?;
    let calls = [
        Request::ResolveEvents(vec![EventFor {
            event: r#"{"type":"library:change","totalStories":0,"totalTags":0}"#.into(),
            requests: vec![r#"{"query":"subscription { channel(name: \"library\") { __typename } }"}"#.into()],
        }]),
        Request::Prepare(r#"{"query":"{ me { id } }"}"#.into()),
    ];
    for request in calls {
        if call_once(&mut instance, request, CallContext::default()).await.is_err() {
            dropped(runtime);
            return None;
        }
    }
    Some(instance)
}

/// One call on a pooled instance, for the caller in `context`; nothing of it stays in the
/// instance's store afterwards.
/// A call may hold a pooled instance, its waits for the library included, for this many times
/// `--max-call-time`: past it the call starts no more library calls (each is refused with an
/// error), so a few slow requests cannot keep the instances from everyone. A library call
/// already made is never cut short: it may have written, and its answer must reach the client.
pub const MAX_HOLD_CALLS: u32 = 5;

async fn call_once(instance: &mut Instance, request: Request, context: CallContext) -> wasmtime::Result<Response> {
    let hold = instance.store.data().runtime.settings.max_call_time * MAX_HOLD_CALLS;
    let mut call = CallState::new(context);
    call.hold_until = Some(Instant::now() + hold);
    instance.store.data_mut().call = call;
    let result = instance.call(request).await;
    instance.store.data_mut().call = CallState::default();
    result
}

/// The request with the text of the trusted document it names (see [`TrustedDocuments`]), or
/// the answer that refuses it: every request, from HTTP or a socket, passes here.
fn trusted(documents: &TrustedDocuments, request: Request) -> Result<Request, Response> {
    let resolve = |text: String| match documents.resolve(&text) {
        Ok(Cow::Borrowed(_)) => Ok(text),
        Ok(Cow::Owned(resolved)) => Ok(resolved),
        Err(refusal) => Err(refusal),
    };
    match request {
        Request::Prepare(text) => resolve(text).map(Request::Prepare).map_err(|r| Response::Prepared(Err(r.errors().to_string()))),
        Request::Execute(text) => {
            resolve(text).map(Request::Execute).map_err(|r| Response::Json(serde_json::json!({ "errors": r.errors() }).to_string()))
        }
        // Accepted when subscribed: only ids are replaced (one no longer known is left for
        // the component to answer with an error).
        Request::ResolveEvents(mut events) => {
            for event in &mut events {
                for request in &mut event.requests {
                    if let Some(resolved) = documents.substitute(request) {
                        *request = resolved;
                    }
                }
            }
            Ok(Request::ResolveEvents(events))
        }
        other => Ok(other),
    }
}

/// Count an instance that left the pool.
fn dropped(runtime: &Runtime) {
    let metrics = runtime.metrics.component(ComponentKind::Graphql);
    metrics.live_instances.fetch_sub(1, Relaxed);
    metrics.evictions.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `entering` gets its places within a short while.
    async fn enters<F: std::future::Future>(entering: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(50), entering).await.ok()
    }

    #[tokio::test]
    async fn clients_never_hold_the_places_kept_for_event_delivery() {
        let places = Places::new(4);
        let user = |name: &str| Caller::User(Arc::from(name));
        // Two accounts' HTTP requests take the two places clients may hold.
        let a = enters(places.enter(user("a"), true)).await.expect("a client").unwrap();
        let b = enters(places.enter(user("b"), true)).await.expect("another client").unwrap();
        assert!(enters(places.enter(user("c"), true)).await.is_none(), "a third client request waits");
        // Event delivery (and sockets) still find an instance, twice.
        let events = enters(places.enter(user("c"), false)).await.expect("event delivery is not held up").unwrap();
        let more = enters(places.enter(user("d"), false)).await.expect("nor is a second").unwrap();
        drop((a, b, events, more));
        assert!(places.shares.lock().is_empty(), "shares are forgotten when nobody holds them");
    }

    #[tokio::test]
    async fn one_user_holds_at_most_its_share() {
        let places = Places::new(16);
        let ada = Caller::User(Arc::from("ada"));
        let mut held = Vec::new();
        for _ in 0..PER_USER {
            held.push(enters(places.enter(ada.clone(), false)).await.expect("within the share").unwrap());
        }
        assert!(enters(places.enter(ada.clone(), false)).await.is_none(), "past the share it waits");
        assert!(enters(places.enter(Caller::User(Arc::from("bob")), false)).await.is_some(), "another user does not");
    }
}
