//! The GraphQL schema of the public contract (BRIEF section 2), built once per instance.

pub mod errors;
pub mod events;
pub mod library;
pub mod mutation;
pub mod node;
pub mod payloads;
pub mod query;
pub mod story;
pub mod subscription;
pub mod user;

use std::sync::OnceLock;

use async_graphql::{Context, Error, ErrorExtensions, Result, Schema, ValidationMode};

use crate::host::AccountUser;
use crate::nulls::ErrorNulls;
use crate::prepare::PrepareGate;
use crate::rpc;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

/// The query root: the contract's `Query` (a test build adds one field, see `QueryV2`).
#[cfg(not(feature = "schema-v2"))]
pub type QueryRoot = Query;
#[cfg(feature = "schema-v2")]
pub type QueryRoot = query::QueryV2;

/// The schema type.
pub type AppSchema = Schema<QueryRoot, Mutation, Subscription>;

/// Build a fresh schema with this instance's limits (see `limits::current`); the component
/// uses [`schema`].
pub fn build() -> AppSchema {
    let limits = crate::limits::current();
    Schema::build(QueryRoot::default(), Mutation, Subscription)
        .extension(ErrorNulls)
        .extension(PrepareGate)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

/// The schema of this instance, built on first use.
pub fn schema() -> &'static AppSchema {
    static SCHEMA: OnceLock<AppSchema> = OnceLock::new();
    SCHEMA.get_or_init(build)
}

/// The same schema as `resolve-events` runs it: no extensions (event fields cannot fail and
/// nothing is prepared there) and `Fast` validation, because `engine::resolve_event` only
/// hands it requests that already passed full validation in this instance. Per subscriber
/// and event this halves the engine's work.
pub fn build_for_events() -> AppSchema {
    Schema::build(QueryRoot::default(), Mutation, Subscription)
        .validation_mode(ValidationMode::Fast)
        .finish()
}

/// The event schema of this instance, built on the first `resolve-events`.
pub fn event_schema() -> &'static AppSchema {
    static SCHEMA: OnceLock<AppSchema> = OnceLock::new();
    SCHEMA.get_or_init(build_for_events)
}

/// The error for a library operation without a signed-in user.
pub fn not_signed_in() -> Error {
    Error::new("Not signed in").extend_with(|_, ext| ext.set("code", "UNAUTHENTICATED"))
}

/// The signed-in user, or the `Not signed in` error.
pub fn require_user(ctx: &Context<'_>) -> Result<AccountUser> {
    rpc::host(ctx)?.0.current_user().ok_or_else(not_signed_in)
}
