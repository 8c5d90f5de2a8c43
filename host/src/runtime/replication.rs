//! The seam between the runtime and a cluster of nodes (`--cluster`): everything the runtime
//! asks of the other nodes, defined here and implemented by `cluster::Cluster`, so the
//! runtime imports nothing of the cluster (nor of NATS). It owns the operations (route a
//! library call, append a call's writes and hear whether the log took them, give a user up,
//! check the lease before a read, count a commit toward snapshots, publish events) and the
//! append's typed outcome. Without `--cluster` a runtime has no replication: none of this runs.

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

/// What the runtime needs from the cluster this node belongs to.
pub trait Replication: Send + Sync {
    /// Call the library of `key`'s user wherever its owner is: here if this node owns the
    /// user, on the owner otherwise, or here after taking the user over.
    fn route<'a>(self: Arc<Self>, runtime: &'a Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Pending<'a, Result<Response, CallError>>;

    /// Append a call's writes for `user`, whom this node owns, before the call commits: the
    /// entry's sequence. `Fenced` when another node took the user over.
    fn append<'a>(&'a self, user: &'a UserId, writes: &'a [Write]) -> Pending<'a, Result<u64, AppendError>>;

    /// This node no longer owns `user`: forget it (its library instance must go too; the
    /// caller sees to that).
    fn release(&self, user: &UserId);

    /// Whether this node may answer for `user` now, by its own clock (a read answered after
    /// its lease lapsed could miss writes a new owner acknowledged).
    fn serves(&self, user: &UserId) -> bool;

    /// The owner committed an entry of `user`'s log (snapshots are counted by it).
    fn after_commit(self: Arc<Self>, user: &UserId);

    /// What committed calls of `user`'s library published: to every node holding the user's
    /// sockets, this one included.
    fn publish(&self, user: &UserId, events: Vec<ChannelEvent>);
}
