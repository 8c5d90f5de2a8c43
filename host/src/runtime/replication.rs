//! The seam between the runtime and a cluster of nodes (`--cluster`): everything the runtime
//! asks of the other nodes, defined here and implemented by `cluster::Cluster`, so the
//! runtime imports nothing of the cluster (nor of NATS). It owns the operations (route a
//! library call, append a call's writes and hear whether the log took them, say whether the
//! call then committed, check the lease before a read, publish events) and the append's typed
//! outcome. What a failure does to the user's ownership is the cluster's to decide (its commit
//! protocol): the runtime rolls back and drops the instance on every failure, and reports.
//! Without `--cluster` a runtime has no replication: none of this runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use super::call::{CallContext, CallError, Request, Response};
use super::key::{ActorKey, UserId};
use super::Runtime;
use crate::storage::actor_db::Write;

/// A future the seam hands back (boxed, so the trait stays object-safe).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an append did not happen, or may not have.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Something was appended after the sequence this node expected: another node owns the
    /// user. Not applied.
    #[error("another node took this user over")]
    Fenced,
    /// Not applied, and it never will be (the log was read, or the entry shut out).
    #[error("the cluster log did not take the change: {0}")]
    NotApplied(String),
    /// It may or may not be in the log: neither the answer nor the log could be had.
    #[error("the cluster log could not say whether it took the change: {0}")]
    Unknown(String),
}

/// An entry the log took for a call, not committed here yet: the call records `seq` as its
/// position in its transaction and commits, then says how that went ([`Appended::settle`]).
/// Dropped unsettled (a panic), it is [`Settled::Dropped`]: the cluster hears of it either way.
#[must_use = "say whether the call committed: the cluster gives the user up otherwise"]
pub struct Appended {
    /// The entry's sequence in the user's log.
    pub seq: u64,
    settle: Option<Box<dyn FnOnce(Settled) + Send>>,
}

/// How a call whose entry the log took ended here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Committed,
    /// Recording the entry's sequence failed (the call rolled back).
    PositionNotWritten,
    /// The commit failed.
    CommitFailed,
    /// Neither was said.
    Dropped,
}

impl Appended {
    /// `settle` hears how the call ended, once.
    pub fn new(seq: u64, settle: impl FnOnce(Settled) + Send + 'static) -> Self {
        Self { seq, settle: Some(Box::new(settle)) }
    }

    pub fn settle(mut self, how: Settled) {
        if let Some(settle) = self.settle.take() {
            settle(how);
        }
    }
}

impl Drop for Appended {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(Settled::Dropped);
        }
    }
}

/// What the runtime needs from the cluster this node belongs to.
pub trait Replication: Send + Sync {
    /// Call the library of `key`'s user wherever its owner is: here if this node owns the
    /// user, on the owner otherwise, or here after taking the user over.
    fn route<'a>(self: Arc<Self>, runtime: &'a Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Pending<'a, Result<Response, CallError>>;

    /// Append a call's writes for `user`, whom this node owns, before the call commits: the
    /// entry, to commit and settle. `Fenced` when this node does not own the user (another
    /// node took it over, or it was given up). On any error the call rolls back and its
    /// instance goes; the cluster has given the user up already when it must.
    fn append<'a>(self: Arc<Self>, user: &'a UserId, writes: &'a [Write]) -> Pending<'a, Result<Appended, AppendError>>;

    /// Whether this node may answer for `user` now, by its own clock (a read answered after
    /// its lease lapsed could miss writes a new owner acknowledged).
    fn serves(&self, user: &UserId) -> bool;

    /// What committed calls of `user`'s library published: to every node holding the user's
    /// sockets, this one included.
    fn publish(&self, user: &UserId, events: Vec<ChannelEvent>);
}
