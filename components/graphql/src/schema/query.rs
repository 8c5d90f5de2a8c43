//! `Query`: `me` and `node(id)`.

use async_graphql::{Context, Object, Result};

use crate::rpc;
use crate::schema::node::{self, Node};
use crate::schema::user::User;

/// The query root.
pub struct Query;

#[Object]
impl Query {
    /// The signed-in user; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(rpc::host(ctx)?.0.current_user().map(User::from))
    }

    /// The object with this global id, or null.
    async fn node(&self, ctx: &Context<'_>, id: String) -> Result<Option<Node>> {
        node::resolve(ctx, &id)
    }
}
