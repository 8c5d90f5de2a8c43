//! Library calls across nodes: a call for a user this node owns runs here; a user owned by
//! another live node is asked over NATS request/reply (`rt.call.<node>`); a user nobody
//! live owns is taken over. The owner answers `moved` for a user it no longer owns (the
//! caller looks again); a call no node received (no responders: the owner is gone) waits for
//! that node's lease to lapse, then the user is taken over and the call made here. A call
//! whose owner's lease lapses while it waits for the answer fails: it may have committed, and
//! making it again could apply it twice.
//!
//! Request: `{"user", "method", "args"}`. Answer: `{"ok": <json>}`, `{"err": <json>}` (the
//! library's own error), `{"moved": true}`, `{"unknown": <message>}` (it may or may not have
//! been applied) or `{"failed": <message>}` (it was not).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value as Json};

use super::ownership::TakeError;
use super::Cluster;
use crate::runtime::call::{CallContext, CallError, Request, Response};
use crate::runtime::key::{ActorKey, ComponentKind, Principal, UserId};
use crate::runtime::Runtime;

/// How long a routed call may take before the owner counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

const OWNER_LOST: &str = "the node that owns this user stopped during the call";

/// How long an owner whose lease lapsed (or that left) may still answer a call it was sent.
const ANSWER_AFTER_LAPSE: Duration = Duration::from_secs(1);

fn subject(node: &str) -> String {
    format!("rt.call.{node}")
}

/// Why a routed call did not get an answer from the owner.
enum Remote {
    /// The node does not own the user (any more).
    Moved,
    /// No node listens on the owner's subject: the call was not delivered.
    Unreachable,
}

/// Call the library of `key`'s user wherever its owner is.
pub async fn call(cluster: &Arc<Cluster>, runtime: &Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
    let Request::Library { method, args } = request else {
        return runtime.actors.call(runtime, key, request, context).await;
    };
    let user = key.principal.user().cloned().ok_or(CallError::Refused("an anonymous caller has no library".into()))?;
    // Long enough for a dead owner's lease to lapse, and a take-over to finish.
    let deadline = Instant::now() + cluster.ownership.ttl() * 2 + Duration::from_secs(5);
    // A node that is stopping still finishes the calls in flight (routing them, or running
    // them for users it holds) until it leaves the cluster.
    let mut unavailable = None;
    while Instant::now() < deadline {
        if cluster.ownership.has_left() {
            return Err(CallError::ShuttingDown);
        }
        cluster.ownership.confirm_live(cluster).await;
        if cluster.ownership.owned_at(&user).is_some() {
            let request = Request::Library { method: method.clone(), args: args.clone() };
            match runtime.actors.call(runtime, key.clone(), request, context.clone()).await {
                Err(CallError::Moved) => continue,
                answer => return answer,
            }
        }
        let owner = match cluster.ownership.owner_of(&user).await {
            Ok(owner) => owner,
            Err(e) => {
                pause_unavailable(e, &mut unavailable).await;
                continue;
            }
        };
        match owner {
            Some(node) if *node != *cluster.node => {
                let live = match cluster.ownership.is_live_recently(&node).await {
                    Ok(live) => live,
                    Err(e) => {
                        pause_unavailable(e, &mut unavailable).await;
                        continue;
                    }
                };
                if !live {
                    // Its lease lapsed: the owner is gone (or cut off); take the user.
                    cluster.ownership.forget_owner(&user);
                    take(cluster, &user).await?;
                    continue;
                }
                let started = Instant::now();
                match ask(cluster, &node, &user, &method, &args).await {
                    Ok(answer) => {
                        cluster.metrics.routed_calls.record(started.elapsed());
                        cluster.ownership.remember_owner(&user, node);
                        return answer;
                    }
                    Err(Remote::Moved) => {
                        // The named owner does not hold the user (restarting, or stopping
                        // until it leaves): look again shortly.
                        cluster.ownership.forget_owner(&user);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(Remote::Unreachable) => {
                        cluster.ownership.forget_owner(&user);
                        match cluster.ownership.is_live(&node).await {
                            Ok(true) => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                pause_unavailable(e, &mut unavailable).await;
                                continue;
                            }
                        }
                        take(cluster, &user).await?;
                    }
                }
            }
            _ => take(cluster, &user).await?,
        }
    }
    Err(CallError::Refused(match unavailable {
        Some(e) => format!("this user's library is unavailable: the cluster could not answer in time ({e})"),
        None => "this user's library is unavailable: no node could serve it in time".into(),
    }))
}

/// Take the user over; another live owner is not an error (the caller routes there).
async fn take(cluster: &Arc<Cluster>, user: &UserId) -> Result<(), CallError> {
    match cluster.ownership.take(cluster, user).await {
        Ok(_) => Ok(()),
        Err(TakeError::OwnedBy(_)) => Ok(()),
        Err(TakeError::Failed(e)) => {
            tracing::warn!(%user, "could not take the user over: {e:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
    }
}

/// JetStream could not answer (a stream electing its leader after a NATS server was lost):
/// wait a little and look again, until the call's deadline.
async fn pause_unavailable(e: anyhow::Error, last: &mut Option<String>) {
    tracing::debug!("the cluster could not answer ({e:#}); looking again");
    *last = Some(format!("{e:#}"));
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Send the call to `node`.
async fn ask(cluster: &Cluster, node: &str, user: &str, method: &str, args: &str) -> Result<Result<Response, CallError>, Remote> {
    let payload = Bytes::from(json!({ "user": user, "method": method, "args": args }).to_string());
    let request = async_nats::Request::new().payload(payload).timeout(Some(CALL_TIMEOUT));
    let asked = cluster.client.send_request(subject(node), request);
    tokio::pin!(asked);
    // The owner may die with the call in hand: its lease lapsing ends the wait. An owner that
    // left the cluster (a clean stop) still answers (`moved` for a call it did not start, the
    // answer of one it finished), so its answer is waited for a moment more; without one, the
    // call may or may not have committed, and it is not made again (OUTCOME_UNKNOWN).
    let lapsed = async {
        loop {
            tokio::time::sleep(cluster.ownership.ttl() / 4).await;
            if !cluster.ownership.is_live(node).await.unwrap_or(true) {
                return;
            }
        }
    };
    let reply = tokio::select! {
        reply = &mut asked => reply,
        () = lapsed => match tokio::time::timeout(ANSWER_AFTER_LAPSE, &mut asked).await {
            Ok(reply) => reply,
            Err(_) => return Ok(Err(CallError::OutcomeUnknown(OWNER_LOST.into()))),
        },
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) if e.kind() == RequestErrorKind::NoResponders => return Err(Remote::Unreachable),
        Err(e) if e.kind() == RequestErrorKind::TimedOut => return Ok(Err(CallError::OutcomeUnknown(OWNER_LOST.into()))),
        Err(e) => return Ok(Err(CallError::Refused(format!("the cluster is unavailable: {e}")))),
    };
    let answer: Json = serde_json::from_slice(&reply.payload).map_err(|_| Remote::Unreachable)?;
    if answer.get("moved").is_some() {
        return Err(Remote::Moved);
    }
    let text = |field: &str| answer.get(field).and_then(Json::as_str).map(str::to_string);
    Ok(if let Some(ok) = text("ok") {
        Ok(Response::Library(Ok(ok)))
    } else if let Some(err) = text("err") {
        Ok(Response::Library(Err(err)))
    } else if let Some(unknown) = text("unknown") {
        Err(CallError::OutcomeUnknown(unknown))
    } else {
        Err(CallError::Refused(text("failed").unwrap_or_else(|| "the owner's answer was not understood".into())))
    })
}

/// Answer the calls other nodes route to this one.
pub async fn serve(cluster: Arc<Cluster>) -> Result<()> {
    let mut requests = cluster.client.subscribe(subject(&cluster.node)).await.map_err(|e| anyhow!("subscribing to routed calls: {e}"))?;
    let mut stopping = cluster.runtime().map(|runtime| runtime.stopping());
    tokio::spawn(async move {
        loop {
            // Once the node stops, it stops listening (callers get "no responders" and wait for
            // it to leave, then take its users), and answers what it was sent already: a call
            // sent to a node that exits unanswered would have an unknown outcome.
            let stopped = stopping.as_ref().is_none_or(|stop| *stop.borrow());
            let message = match (&mut stopping, stopped) {
                (Some(stop), false) => {
                    let stop_seen = async move {
                        let _ = stop.wait_for(|stopping| *stopping).await;
                    };
                    tokio::select! {
                        message = requests.next() => message,
                        () = stop_seen => {
                            let _ = requests.drain().await;
                            continue;
                        }
                    }
                }
                _ => requests.next().await,
            };
            let Some(message) = message else { break };
            let Some(reply) = message.reply.clone() else { continue };
            let cluster = cluster.clone();
            cluster.serving_routed.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let answer = answer(&cluster, &message.payload).await;
                let _ = cluster.client.publish(reply, Bytes::from(answer.to_string())).await;
                cluster.serving_routed.fetch_sub(1, Relaxed);
            });
        }
    });
    Ok(())
}

async fn answer(cluster: &Arc<Cluster>, payload: &[u8]) -> Json {
    // A call this node will not run is answered `moved`: it was not run, so the caller may
    // make it elsewhere (a node that is stopping takes no user; its users go to others).
    let Some(runtime) = cluster.runtime() else { return json!({ "moved": true }) };
    if runtime.is_stopping() {
        // A node that is stopping starts no call for others (those under way finish before it
        // leaves): the caller looks again, and once this node has left, takes the user.
        return json!({ "moved": true });
    }
    let Ok(request) = serde_json::from_slice::<Json>(payload) else { return json!({ "failed": "a routed call that is not JSON" }) };
    let field = |name: &str| request.get(name).and_then(Json::as_str).unwrap_or_default().to_string();
    let user: UserId = field("user").into();
    cluster.ownership.confirm_live(cluster).await;
    if cluster.ownership.owned_at(&user).is_none() {
        // Named the owner but not holding the user (this node restarted): take it up again.
        cluster.ownership.forget_owner(&user);
        let named_here = matches!(cluster.ownership.owner_of(&user).await, Ok(Some(node)) if node == cluster.node);
        if !named_here || runtime.is_stopping() || cluster.ownership.take(cluster, &user).await.is_err() {
            return json!({ "moved": true });
        }
    }
    cluster.metrics.served_calls.fetch_add(1, Relaxed);
    let key = ActorKey::new(ComponentKind::Library, Principal::User(user));
    let request = Request::Library { method: field("method"), args: field("args") };
    match runtime.actors.call(&runtime, key, request, CallContext::default()).await {
        Ok(Response::Library(Ok(ok))) => json!({ "ok": ok }),
        Ok(Response::Library(Err(err))) => json!({ "err": err }),
        Ok(_) => json!({ "failed": "unexpected answer from the library" }),
        Err(CallError::Moved) => json!({ "moved": true }),
        Err(CallError::OutcomeUnknown(e)) => json!({ "unknown": e }),
        Err(e) => json!({ "failed": e.to_string() }),
    }
}
