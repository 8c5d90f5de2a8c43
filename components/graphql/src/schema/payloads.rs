//! Mutation inputs and payloads.

use async_graphql::{InputObject, MaybeUndefined, SimpleObject, ID};

use crate::schema::errors::{StoryNotFoundError, TagError, TagNotFoundError, UpdateTagError};
use crate::schema::story::{Story, StoryEdge, Tag};

#[derive(InputObject, Debug)]
pub struct CreateStoryInput {
    pub url: String,
    pub title: String,
    pub description: Option<String>,
    pub tag_ids: Option<Vec<ID>>,
}

/// A field left out is unchanged; `description: null` clears the description.
#[derive(InputObject, Debug)]
pub struct UpdateStoryInput {
    pub id: ID,
    pub title: Option<String>,
    pub description: MaybeUndefined<String>,
    pub tag_ids: Option<Vec<ID>>,
}

#[derive(InputObject, Debug)]
pub struct DeleteStoryInput {
    pub id: ID,
}

#[derive(InputObject, Debug)]
pub struct CreateTagInput {
    pub name: String,
    pub color: String,
}

/// A field left out (or null) is unchanged.
#[derive(InputObject, Debug)]
pub struct UpdateTagInput {
    pub id: ID,
    pub name: Option<String>,
    pub color: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteTagInput {
    pub id: ID,
}

#[derive(SimpleObject, Debug, Default)]
pub struct CreateStoryPayload {
    pub story: Option<Story>,
    pub story_edge: Option<StoryEdge>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct UpdateStoryPayload {
    pub story: Option<Story>,
    pub error: Option<StoryNotFoundError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct DeleteStoryPayload {
    pub deleted_story_id: Option<ID>,
    pub success: bool,
    pub error: Option<StoryNotFoundError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct CreateTagPayload {
    pub tag: Option<Tag>,
    pub error: Option<TagError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct UpdateTagPayload {
    pub tag: Option<Tag>,
    pub error: Option<UpdateTagError>,
}

#[derive(SimpleObject, Debug, Default)]
pub struct DeleteTagPayload {
    pub deleted_tag_id: Option<ID>,
    pub success: bool,
    pub error: Option<TagNotFoundError>,
}
