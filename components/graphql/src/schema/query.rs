//! `Query`: `me` and `node(id)`.

use async_graphql::{Context, Object, Result};

use crate::rpc;
use crate::schema::node::{self, Node};
use crate::schema::user::User;

/// The query root.
#[derive(Default)]
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

/// The query root of the `schema-v2` test build (tests/graphql-v2): the contract's `Query`
/// plus `schemaVersion`, to prove that a schema change is a component swap. Its root type
/// is named `QueryV2` (async-graphql cannot merge into a type of the same name).
#[cfg(feature = "schema-v2")]
#[derive(async_graphql::MergedObject, Default)]
pub struct QueryV2(Query, SchemaProbe);

#[cfg(feature = "schema-v2")]
#[derive(Default)]
pub struct SchemaProbe;

#[cfg(feature = "schema-v2")]
#[Object]
impl SchemaProbe {
    /// Which schema build answers.
    async fn schema_version(&self) -> &'static str {
        "v2"
    }
}
