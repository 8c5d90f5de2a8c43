//! One actor's task: takes its mailbox one envelope at a time (the input gate),
//! keeps its live instance between calls, moves to a new component version between
//! calls, runs each call as one transaction and releases its effects only after
//! the commit (the output gate), and evicts the instance when idle.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::call::{CallError, Envelope, Request, Response};
use super::effects;
use super::instance::Instance;
use super::key::{ActorKey, ComponentKind};
use super::replication::{AppendError, Settled};
use super::state::CallState;
use super::Runtime;
use crate::sockets::Outbound;

/// graphql-ws has no code of its own for a server fault; 4500 is the one graphql-ws uses
/// for internal errors.
pub const CLOSE_INTERNAL_ERROR: u16 = 4500;

/// The most events one `publish` call carries when publishes pile up in a mailbox.
const MAX_PUBLISH_BATCH: usize = 256;

/// A live actor with no call for this long (and less than `--idle-timeout`) is quiet: its
/// database connection sheds its page cache; the instance stays.
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// An actor's end of its mailbox, and the count of envelopes waiting in it (see
/// `ActorRegistry::send`).
pub struct Inbox {
    pub receiver: UnboundedReceiver<Envelope>,
    pub pending: Arc<AtomicUsize>,
}

impl Inbox {
    async fn recv(&mut self) -> Option<Envelope> {
        let envelope = self.receiver.recv().await;
        if envelope.is_some() {
            self.pending.fetch_sub(1, Relaxed);
        }
        envelope
    }

    fn try_recv(&mut self) -> Option<Envelope> {
        let envelope = self.receiver.try_recv().ok();
        if envelope.is_some() {
            self.pending.fetch_sub(1, Relaxed);
        }
        envelope
    }
}

pub async fn run(key: ActorKey, runtime: Arc<Runtime>, mut mailbox: Inbox) {
    let mut actor = Actor { key, runtime, live: None };
    // An envelope taken from the mailbox while gathering publishes, handled next.
    let mut held: Option<Envelope> = None;
    let idle_timeout = actor.runtime.settings.idle_timeout;
    let quiet_after = QUIET_AFTER.min(idle_timeout);
    loop {
        let next = match held.take() {
            Some(envelope) => Ok(Some(envelope)),
            None => match tokio::time::timeout(quiet_after, mailbox.recv()).await {
                Err(_quiet) => {
                    actor.quiet();
                    tokio::time::timeout(idle_timeout - quiet_after, mailbox.recv()).await
                }
                received => received,
            },
        };
        match next {
            Ok(Some(envelope)) => {
                let envelope = gather_publishes(envelope, &mut mailbox, &mut held);
                actor.handle(envelope).await
            }
            Ok(None) => break,
            Err(_idle) => {
                actor.evict();
                if actor.runtime.actors.retire(&actor.key, &mailbox) {
                    return;
                }
            }
        }
    }
    actor.evict();
}

/// Under load, publishes queue up behind a running call: hand every publish already
/// waiting (in order, up to [`MAX_PUBLISH_BATCH`] events) to one `publish` call, so the
/// events of a burst are resolved together and each socket's frames leave together. The
/// first other envelope found is kept in `held` for the next turn.
fn gather_publishes(mut envelope: Envelope, mailbox: &mut Inbox, held: &mut Option<Envelope>) -> Envelope {
    let Request::Publish(events) = &mut envelope.request else { return envelope };
    while events.len() < MAX_PUBLISH_BATCH {
        match mailbox.try_recv() {
            Some(Envelope { request: Request::Publish(more), reply: None, .. }) => events.extend(more),
            Some(other) => {
                *held = Some(other);
                break;
            }
            None => break,
        }
    }
    envelope
}

struct Actor {
    key: ActorKey,
    runtime: Arc<Runtime>,
    live: Option<Instance>,
}

impl Actor {
    fn metrics(&self) -> &crate::metrics::PerComponent {
        self.runtime.metrics.component(self.key.component)
    }

    /// Drop the live instance, if any. Sockets, attachments and alarms are the host's
    /// and stay.
    fn evict(&mut self) {
        if self.live.take().is_some() {
            self.runtime.actors.forget(&self.key);
            self.metrics().live_instances.fetch_sub(1, Relaxed);
            self.metrics().evictions.fetch_add(1, Relaxed);
            tracing::debug!(actor = %self.key, "evicted");
        }
    }

    /// No call for a while: give back what the next call can cheaply rebuild.
    fn quiet(&mut self) {
        if let Some(live) = &mut self.live {
            live.store.data_mut().db.shrink();
        }
    }

    /// The instance to call: the live one if it runs the current version, else a new one.
    async fn instance(&mut self) -> Result<&mut Instance, CallError> {
        let current = self.runtime.components.current(self.key.component).ok_or(CallError::NotLoaded(self.key.component.name()))?;
        if self.live.as_ref().is_some_and(|live| !Arc::ptr_eq(&live.version, &current)) {
            self.evict();
        }
        if self.live.is_none() {
            self.runtime.actors.make_room(&self.runtime, &self.key);
            let started = std::time::Instant::now();
            let instance = Instance::new(self.key.clone(), self.runtime.clone(), current).await.map_err(|e| {
                self.runtime.actors.forget(&self.key);
                tracing::error!(actor = %self.key, "instantiation failed: {e:#}");
                CallError::Refused(format!("could not start the {} component: {}", self.key.component, trap_message(&e)))
            })?;
            tracing::debug!(actor = %self.key, micros = started.elapsed().as_micros() as u64, "instantiated");
            self.metrics().live_instances.fetch_add(1, Relaxed);
            self.metrics().instantiations.fetch_add(1, Relaxed);
            self.live = Some(instance);
        }
        Ok(self.live.as_mut().expect("set above"))
    }

    async fn handle(&mut self, envelope: Envelope) {
        let Envelope { request, context, reply } = envelope;
        let outcome = if matches!(request, Request::Evict) {
            self.evict();
            Ok(Response::Unit)
        } else {
            self.call(request, context).await
        };
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }

    async fn call(&mut self, request: Request, context: super::call::CallContext) -> Result<Response, CallError> {
        let export = request.export_name();
        let is_publish = matches!(request, Request::Publish(_));
        let socket = match &request {
            Request::SocketOpen(socket) | Request::SocketMessage { socket, .. } => Some(*socket),
            _ => None,
        };
        let component = self.key.component.name();
        let is_library = self.key.component == ComponentKind::Library;
        let runtime = self.runtime.clone();
        let user = self.key.principal.user().cloned();
        let metrics = runtime.metrics.component(self.key.component);
        runtime.actors.touch(&self.key);
        let instance = self.instance().await?;
        instance.store.data_mut().call = CallState::new(context);
        let started = std::time::Instant::now();
        let result = instance.call(request).await;
        tracing::trace!(component, export, micros = started.elapsed().as_micros() as u64, "called");
        let state = instance.store.data_mut();
        let call = std::mem::take(&mut state.call);
        metrics.calls.fetch_add(1, Relaxed);
        match result {
            Ok(_) if state.db.poisoned().is_some() => {
                // A statement failed after changing the database: nothing of the call may
                // commit (or reach the user log), whatever the component answered.
                let why = state.db.poisoned().unwrap_or_default().to_string();
                let _ = state.db.finish(false);
                self.evict();
                Err(CallError::Refused(why))
            }
            Ok(response) if !response.is_error() => {
                // In a cluster, the writes go to the user log first: only what the log took
                // commits here (and so is answered and published).
                let writes = state.db.take_writes();
                let mut logged = None;
                if let (Some(replication), Some(user), false) = (runtime.replication.get(), &user, writes.is_empty()) {
                    // Every way out but success rolls the call back and drops the instance (it
                    // may hold state of the call that never committed). What it does to the
                    // user's ownership is the cluster's commit protocol's: told of the append's
                    // outcome, and of how the call ended once the log took its entry.
                    let failed = match replication.clone().append(user, &writes).await {
                        Ok(appended) => match state.db.record_position(appended.seq) {
                            Ok(()) => {
                                logged = Some(appended);
                                None
                            }
                            Err(e) => Some((CallError::Commit(e), Some(appended))),
                        },
                        Err(AppendError::Fenced) => Some((CallError::Moved, None)),
                        Err(e @ AppendError::NotApplied(_)) => Some((CallError::Refused(e.to_string()), None)),
                        // Maybe in the log: the next owner replays whatever it holds.
                        Err(AppendError::Unknown(e)) => Some((CallError::OutcomeUnknown(e), None)),
                    };
                    if let Some((error, appended)) = failed {
                        let _ = state.db.finish(false);
                        if let Some(appended) = appended {
                            appended.settle(Settled::PositionNotWritten);
                        }
                        self.evict();
                        return Err(error);
                    }
                } else if let (Some(replication), Some(user)) = (runtime.replication.get(), &user) {
                    // A read is answered only while this node's lease stands by its own clock:
                    // paused past its lease, another node may own the user and have acknowledged
                    // writes this copy lacks. The caller routes the call again.
                    // (Its refresh, or the heartbeat's, settles whether the lease was lost.)
                    if is_library && !replication.serves(user) {
                        let _ = state.db.finish(false);
                        return Err(CallError::Moved);
                    }
                }
                match state.db.finish(true) {
                    Ok(()) => {
                        effects::apply(&self.runtime, &self.key, call, is_publish);
                        if let Some(appended) = logged {
                            appended.settle(Settled::Committed);
                        }
                        Ok(response)
                    }
                    Err(e) => {
                        if let Some(appended) = logged {
                            // The log holds an entry this file does not: the next owner replays it.
                            appended.settle(Settled::CommitFailed);
                        }
                        self.evict();
                        Err(CallError::Commit(e))
                    }
                }
            }
            Ok(response) => {
                // The component answered an error: its call rolls back, and its instance,
                // which may hold state of that call, goes with it.
                let _ = state.db.finish(false);
                self.evict();
                Ok(response)
            }
            Err(trap) => {
                let _ = state.db.finish(false);
                let message = trap_message(&trap);
                tracing::warn!(actor = %self.key, export, "call failed, instance replaced: {message}");
                metrics.traps.fetch_add(1, Relaxed);
                self.evict();
                // The sockets that lost something learn it: the one whose frame trapped, or, when
                // a batch of events could not be delivered, every socket of this user (their
                // clients resubscribe and refetch).
                let lost = match socket {
                    Some(socket) => vec![socket],
                    None if is_publish => self.runtime.sockets.list(&self.key.principal),
                    None => Vec::new(),
                };
                for socket in lost {
                    self.runtime.sockets.send(socket, Outbound::Close(CLOSE_INTERNAL_ERROR, "Internal server error".into()));
                }
                Err(CallError::Trap { component, export, message })
            }
        }
    }
}

/// What went wrong, without the wasm backtrace: the trap code (e.g. "wasm `unreachable`
/// instruction executed", what a panic or an allocation failure becomes) or the root cause
/// (e.g. the CPU time limit).
pub(crate) fn trap_message(error: &wasmtime::Error) -> String {
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    message.lines().next().unwrap_or("trap").chars().take(300).collect()
}
