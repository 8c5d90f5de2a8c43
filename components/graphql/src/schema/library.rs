//! `Library`: the signed-in user's stories and tags, each field one library RPC.

use async_graphql::{Context, Object, Result, ID};
use serde_json::{json, Map};

use crate::ids;
use crate::rpc;
use crate::schema::story::{Story, StoryConnection, Tag};

/// The library of one user. Only ever built for the user the call acts for.
#[derive(Clone, Debug)]
pub struct Library {
    id: ID,
}

impl Library {
    /// The library of `user_id`.
    pub fn of_user(user_id: &str) -> Self {
        Library {
            id: ID(ids::library_id(user_id)),
        }
    }
}

#[Object]
impl Library {
    /// The library's global id.
    // `base64("Library:<userId>")`, see `ids`.
    pub async fn id(&self) -> &ID {
        &self.id
    }

    /// All stories, newest first.
    async fn stories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<StoryConnection> {
        rpc::call(ctx, "stories", rpc::page_args(first, after, Map::new()))
    }

    /// The stories with the tag of that name (ignoring case), newest first.
    async fn stories_by_tag(
        &self,
        ctx: &Context<'_>,
        tag_name: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<StoryConnection> {
        let mut extra = Map::new();
        extra.insert("tagName".into(), json!(tag_name));
        rpc::call(ctx, "storiesByTag", rpc::page_args(first, after, extra))
    }

    /// One story, or null when there is none with that id.
    async fn story(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Story>> {
        rpc::call(ctx, "story", json!({ "id": id.as_str() }))
    }

    /// All tags, ordered by name.
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        rpc::call(ctx, "tags", json!({}))
    }
}
