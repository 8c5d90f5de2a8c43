//! `Story`, `Tag` and the story connection types, decoded straight from the library's JSON.

use async_graphql::{ComplexObject, Context, Result, SimpleObject, ID};
use serde::Deserialize;
use serde_json::{json, Map};

use crate::rpc;

/// A saved link. Its tags are ordered by name.
// The tags come embedded in the library's Story JSON.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Story {
    pub id: ID,
    pub url: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A tag of the user's library.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[graphql(complex)]
pub struct Tag {
    pub id: ID,
    pub name: String,
    pub color: String,
}

#[ComplexObject]
impl Tag {
    /// The stories with this tag, newest first.
    async fn stories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<StoryConnection> {
        let mut extra = Map::new();
        extra.insert("tagId".into(), json!(self.id.as_str()));
        rpc::call(ctx, "tagStories", rpc::page_args(first, after, extra))
    }
}

/// A page of stories.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryConnection {
    pub edges: Vec<StoryEdge>,
    pub page_info: PageInfo,
    pub total_count: i32,
}

/// One story of a page and its cursor.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
pub struct StoryEdge {
    pub cursor: String,
    pub node: Story,
}

/// Relay page information.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    #[serde(default)]
    pub start_cursor: Option<String>,
    #[serde(default)]
    pub end_cursor: Option<String>,
}
