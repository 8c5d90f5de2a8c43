//! The runtime's replication seam ([`Replication`]), implemented by this node's [`Cluster`]:
//! the runtime defines what it needs, the cluster provides it; each operation forwards to the
//! part of the cluster that does it (routing, the log, ownership, snapshots, events). A call's
//! append and commit go through the commit protocol (`commit_protocol`): it says whether and
//! at which sequence to append, and what each outcome does to the user.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::commit_protocol::{Action, Event, NotCommitted, Outcome, Refusal, Term};
use super::{catch_up, log, routing, Cluster};
use crate::runtime::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use crate::runtime::call::{CallContext, CallError, Request, Response};
use crate::runtime::key::{ActorKey, UserId};
use crate::runtime::replication::{AppendError, Appended, Pending, Replication, Settled};
use crate::runtime::Runtime;
use crate::storage::actor_db::Write;

impl Replication for Cluster {
    fn route<'a>(self: Arc<Self>, runtime: &'a Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Pending<'a, Result<Response, CallError>> {
        Box::pin(async move { routing::call(&self, runtime, key, request, context).await })
    }

    fn append<'a>(self: Arc<Self>, user: &'a UserId, writes: &'a [Write]) -> Pending<'a, Result<Appended, AppendError>> {
        Box::pin(append(self, user, writes))
    }

    fn serves(&self, user: &UserId) -> bool {
        self.ownership.serves(user)
    }

    fn publish(&self, user: &UserId, events: Vec<ChannelEvent>) {
        self.events.publish(user, events);
    }
}

/// Append a call's writes for `user`, as the commit protocol says: only while this node owns
/// the user, one at a time, after the last entry the log took for it here.
async fn append(cluster: Arc<Cluster>, user: &UserId, writes: &[Write]) -> Result<Appended, AppendError> {
    let send = cluster.ownership.on(&cluster, user, Event::Append);
    let (term, expected) = match send[..] {
        [Action::Send { term, expected }] => (term, expected),
        // Nothing sent, nothing changed: another node owns the user (or none does).
        [Action::Refuse(Refusal::NotHeld | Refusal::Left)] => return Err(AppendError::Fenced),
        [Action::Refuse(why @ Refusal::Busy)] => return Err(AppendError::NotApplied(why.to_string())),
        _ => unreachable!("an append starts with {send:?}"),
    };
    let unanswered = Unanswered { cluster: &cluster, user, term, armed: true };
    let started = std::time::Instant::now();
    let appended = cluster.log.append(user, expected, log::encode_writes(writes), &cluster.node).await;
    let outcome = match &appended {
        Ok(seq) => {
            cluster.metrics.log_appends.record(started.elapsed());
            Outcome::Taken(*seq)
        }
        Err(AppendError::Fenced) => {
            cluster.metrics.appends_fenced.fetch_add(1, Relaxed);
            Outcome::Fenced
        }
        Err(AppendError::NotApplied(_)) => Outcome::NotApplied,
        Err(AppendError::Unknown(_)) => Outcome::Unknown,
    };
    unanswered.disarm();
    // A failure gives the user up here when the protocol says so; the call rolls back either
    // way. Only an entry the log took commits.
    let then = cluster.ownership.on(&cluster, user, Event::Appended { term, outcome });
    debug_assert_eq!(then.contains(&Action::Commit { seq: *appended.as_ref().unwrap_or(&0) }), appended.is_ok(), "{then:?}");
    let seq = appended?;
    Ok(receipt(cluster.clone(), user.clone(), term, seq))
}

/// The receipt of an entry the log took: how its call ends goes to the protocol.
fn receipt(cluster: Arc<Cluster>, user: UserId, term: Term, seq: u64) -> Appended {
    Appended::new(seq, move |settled| {
        let event = match settled {
            Settled::Committed => Event::Committed { term },
            Settled::PositionNotWritten => Event::NotCommitted { term, why: NotCommitted::PositionWrite },
            Settled::CommitFailed => Event::NotCommitted { term, why: NotCommitted::Commit },
            Settled::Dropped => Event::NotCommitted { term, why: NotCommitted::Dropped },
        };
        if cluster.ownership.on(&cluster, &user, event).contains(&Action::CountSnapshot) {
            catch_up::after_commit(&cluster, &user);
        }
    })
}

/// An append sent and not answered: dropped so (a shutdown), its outcome is unknown.
struct Unanswered<'a> {
    cluster: &'a Cluster,
    user: &'a UserId,
    term: Term,
    armed: bool,
}

impl Unanswered<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cluster.ownership.on(self.cluster, self.user, Event::Appended { term: self.term, outcome: Outcome::Unknown });
        }
    }
}
