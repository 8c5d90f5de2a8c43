//! Mutation inputs and payloads. Every input takes an optional `clientMutationId`, an
//! idempotency key the library keeps for a day (components/library/src/idempotency.rs): the
//! same mutation sent again with it is answered from the first one, and is not applied again.
//! Every payload echoes it (Relay's convention).

use async_graphql::{InputObject, MaybeUndefined, SimpleObject, ID};

use crate::schema::errors::{StoryNotFoundError, TagError, TagNotFoundError, UpdateTagError};
use crate::schema::story::{Story, StoryEdge, Tag};

#[derive(InputObject, Debug)]
pub struct CreateStoryInput {
    pub url: String,
    pub title: String,
    pub description: Option<String>,
    pub tag_ids: Option<Vec<ID>>,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

/// A field left out is unchanged; `description: null` clears the description.
#[derive(InputObject, Debug)]
pub struct UpdateStoryInput {
    pub id: ID,
    pub title: Option<String>,
    pub description: MaybeUndefined<String>,
    pub tag_ids: Option<Vec<ID>>,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteStoryInput {
    pub id: ID,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct CreateTagInput {
    pub name: String,
    pub color: String,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

/// A field left out (or null) is unchanged.
#[derive(InputObject, Debug)]
pub struct UpdateTagInput {
    pub id: ID,
    pub name: Option<String>,
    pub color: Option<String>,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteTagInput {
    pub id: ID,
    /// An idempotency key: the mutation sent again with it is answered, not applied again.
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct CreateStoryPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub story: Option<Story>,
    pub story_edge: Option<StoryEdge>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct UpdateStoryPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub story: Option<Story>,
    pub error: Option<StoryNotFoundError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct DeleteStoryPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub deleted_story_id: Option<ID>,
    pub success: bool,
    pub error: Option<StoryNotFoundError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct CreateTagPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub tag: Option<Tag>,
    pub error: Option<TagError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct UpdateTagPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub tag: Option<Tag>,
    pub error: Option<UpdateTagError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct DeleteTagPayload {
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
    pub deleted_tag_id: Option<ID>,
    pub success: bool,
    pub error: Option<TagNotFoundError>,
}
