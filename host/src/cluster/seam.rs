//! The runtime's replication seam ([`Replication`]), implemented by this node's [`Cluster`]:
//! the runtime defines what it needs, the cluster provides it; each operation forwards to the
//! part of the cluster that does it (routing, the log, ownership, snapshots, events).

use std::sync::Arc;

use super::{catch_up, routing, Cluster};
use crate::runtime::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use crate::runtime::call::{CallContext, CallError, Request, Response};
use crate::runtime::key::{ActorKey, UserId};
use crate::runtime::replication::{AppendError, Pending, Replication};
use crate::runtime::Runtime;
use crate::storage::actor_db::Write;

impl Replication for Cluster {
    fn route<'a>(self: Arc<Self>, runtime: &'a Arc<Runtime>, key: ActorKey, request: Request, context: CallContext) -> Pending<'a, Result<Response, CallError>> {
        Box::pin(async move { routing::call(&self, runtime, key, request, context).await })
    }

    fn append<'a>(&'a self, user: &'a UserId, writes: &'a [Write]) -> Pending<'a, Result<u64, AppendError>> {
        Box::pin(Cluster::append(self, user, writes))
    }

    fn release(&self, user: &UserId) {
        self.ownership.release(self, user);
    }

    fn serves(&self, user: &UserId) -> bool {
        self.ownership.serves(user)
    }

    fn after_commit(self: Arc<Self>, user: &UserId) {
        catch_up::after_commit(&self, user);
    }

    fn publish(&self, user: &UserId, events: Vec<ChannelEvent>) {
        self.events.publish(user, events);
    }
}
