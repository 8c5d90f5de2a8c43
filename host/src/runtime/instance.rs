//! A live instance of one actor: its store and typed exports, and how each
//! `Request` maps onto an export call.

use std::sync::Arc;

use wasmtime::Result;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::{graphql::GraphqlComponent, library::LibraryComponent, user_channel::UserChannelComponent};
use super::bindings::graphql::exports::realtime::host::graphql::{EventFor as ExportedEventFor, Operation as ExportedOperation};
use super::bindings::host_api::graphql::{Operation, SubscriptionTarget};
use super::call::{CallContext, Request, Response};
use super::components::{Prepared, Version};
use super::key::ActorKey;
use super::state::{ActorState, CallState};
use super::Runtime;

enum Exports {
    Library(LibraryComponent),
    UserChannel(UserChannelComponent),
    Graphql(GraphqlComponent),
}

pub struct Instance {
    pub store: Store<ActorState>,
    exports: Exports,
    pub version: Arc<Version>,
}

/// A call yields to the executor at each epoch tick once it has run this long, so one long
/// call cannot hold a worker thread while others wait.
const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

impl Instance {
    pub async fn new(key: ActorKey, runtime: Arc<Runtime>, version: Arc<Version>) -> Result<Self> {
        let max_call_time = runtime.settings.max_call_time;
        let engine = runtime.engine.clone();
        let mut store = Store::new(&engine, ActorState::new(key, runtime));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(move |ctx| {
            let busy = ctx.data().call.busy();
            if busy > max_call_time {
                Err(wasmtime::format_err!("the call ran longer than its CPU time limit of {max_call_time:?}"))

            } else if busy < YIELD_AFTER {
                // A short call that merely crossed an epoch tick runs on: yielding it would
                // send it to the back of the run queue for nothing.
                Ok(UpdateDeadline::Continue(1))
            } else {
                // Yield to the executor, and do not charge the time spent queued to the call.
                let yielded = ctx.data().call.yielded.clone();
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(async move {
                        let started = std::time::Instant::now();
                        tokio::task::yield_now().await;
                        yielded.fetch_add(started.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
                    }),
                ))
            }
        });
        store.set_epoch_deadline(1);
        // A component's start (its `_initialize`, static constructors) runs under the same CPU
        // time limit as a call: one that never returns fails the instantiation, not a thread.
        store.data_mut().call = CallState::new(CallContext::default());
        let exports = match &version.prepared {
            Prepared::Library(pre) => Exports::Library(pre.instantiate_async(&mut store).await?),
            Prepared::UserChannel(pre) => Exports::UserChannel(pre.instantiate_async(&mut store).await?),
            Prepared::Graphql(pre) => Exports::Graphql(pre.instantiate_async(&mut store).await?),
        };
        store.data_mut().call = CallState::default();
        Ok(Self { store, exports, version })
    }

    /// Call the export `request` names. `Err` is a trap (or a request this world has no export for).
    pub async fn call(&mut self, request: Request) -> Result<Response> {
        self.store.set_epoch_deadline(1);
        let store = &mut self.store;
        match (&self.exports, request) {
            (Exports::Library(lib), Request::Library { method, args }) => {
                Ok(Response::Library(lib.realtime_host_library().call_call(store, &method, &args).await?))
            }
            (Exports::Graphql(g), Request::Prepare(req)) => {
                let prepared = g.realtime_host_graphql().call_prepare(store, &req).await?;
                Ok(Response::Prepared(prepared.map(operation_from_export)))
            }
            (Exports::Graphql(g), Request::Execute(req)) => {
                Ok(Response::Json(g.realtime_host_graphql().call_execute(store, &req).await?))
            }
            (Exports::Graphql(g), Request::ResolveEvents(events)) => {
                let events: Vec<ExportedEventFor> =
                    events.into_iter().map(|e| ExportedEventFor { event: e.event, requests: e.requests }).collect();
                Ok(Response::JsonLists(g.realtime_host_graphql().call_resolve_events(store, &events).await?))
            }
            (Exports::Graphql(g), Request::SchemaSdl) => {
                Ok(Response::Json(g.realtime_host_graphql().call_schema_sdl(store).await?))
            }
            (Exports::UserChannel(uc), request) => {
                let actor = uc.realtime_host_user_channel_actor();
                match request {
                    Request::SocketOpen(socket) => actor.call_on_open(store, socket).await?,
                    Request::SocketMessage { socket, text, binary } => {
                        actor.call_on_message(store, socket, &text, binary).await?
                    }
                    Request::SocketClose { socket, code } => actor.call_on_close(store, socket, code).await?,
                    Request::Alarm => actor.call_on_alarm(store).await?,
                    Request::Publish(events) => actor.call_publish(store, &events).await?,
                    Request::ConnectionCount => return Ok(Response::Count(actor.call_connection_count(store).await?)),
                    Request::SubscriberCount(channel) => {
                        return Ok(Response::Count(actor.call_subscriber_count(store, &channel).await?))
                    }
                    other => wasmtime::bail!("user-channel has no export for {}", other.export_name()),
                }
                Ok(Response::Unit)
            }
            (_, other) => wasmtime::bail!("{} has no export for {}", self.version.kind, other.export_name()),
        }
    }
}

/// The graphql world's exported `operation` as the import-side type the host passes on.
fn operation_from_export(operation: ExportedOperation) -> Operation {
    match operation {
        ExportedOperation::Query => Operation::Query,
        ExportedOperation::Mutation => Operation::Mutation,
        ExportedOperation::Subscription(target) => {
            Operation::Subscription(SubscriptionTarget { channel: target.channel, after: target.after })
        }
    }
}
