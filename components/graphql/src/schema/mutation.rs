//! `Mutation`: accounts (host `accounts` import) and library changes (library RPC).

use async_graphql::{Context, Error, MaybeUndefined, Object, Result, ID};
use serde_json::{json, Map, Value};

use crate::rpc::{
    self, CreateStoryResult, CreateTagResult, DeleteStoryResult, DeleteTagResult,
    UpdateStoryResult, UpdateTagResult,
};
use crate::schema::payloads::*;
use crate::schema::require_user;
use crate::schema::story::{Story, StoryEdge};
use crate::schema::user::SignInResponse;

/// The mutation root.
pub struct Mutation;

fn ids_json(ids: &[ID]) -> Value {
    Value::Array(ids.iter().map(|id| json!(id.as_str())).collect())
}

#[Object]
impl Mutation {
    /// Create an account and sign in.
    // A refusal is a GraphQL error carrying the host's message.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        name: Option<String>,
    ) -> Result<SignInResponse> {
        let session = rpc::host(ctx)?
            .0
            .sign_up(&email, &password, name.as_deref())
            .map_err(Error::new)?;
        Ok(session.into())
    }

    /// Sign in; null with the error "Invalid credentials" on failure (whether the e-mail or
    /// the password was wrong), or "Too many failed sign-ins; try again in N s" while this
    /// e-mail or this client is paused after repeated failures.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<Option<SignInResponse>> {
        match rpc::host(ctx)?.0.sign_in(&email, &password) {
            Ok(session) => Ok(Some(session.into())),
            // The host's messages are written for the client and say no more than these two.
            Err(message) => Err(Error::new(message)),
        }
    }

    /// End the session this request presented; false when there was none.
    async fn sign_out(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(rpc::host(ctx)?.0.sign_out())
    }

    async fn create_story(
        &self,
        ctx: &Context<'_>,
        input: CreateStoryInput,
    ) -> Result<CreateStoryPayload> {
        require_user(ctx)?;
        let mut args = Map::new();
        args.insert("url".into(), json!(input.url));
        args.insert("title".into(), json!(input.title));
        if let Some(description) = input.description {
            args.insert("description".into(), json!(description));
        }
        if let Some(tag_ids) = &input.tag_ids {
            args.insert("tagIds".into(), ids_json(tag_ids));
        }
        let res: CreateStoryResult = rpc::call(ctx, "createStory", Value::Object(args))?;
        Ok(CreateStoryPayload {
            story: Some(res.story.clone()),
            story_edge: Some(StoryEdge {
                cursor: res.cursor,
                node: res.story,
            }),
        })
    }

    async fn update_story(
        &self,
        ctx: &Context<'_>,
        input: UpdateStoryInput,
    ) -> Result<UpdateStoryPayload> {
        require_user(ctx)?;
        let mut args = Map::new();
        args.insert("id".into(), json!(input.id.as_str()));
        if let Some(title) = input.title {
            args.insert("title".into(), json!(title));
        }
        match input.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                args.insert("description".into(), Value::Null);
            }
            MaybeUndefined::Value(description) => {
                args.insert("description".into(), json!(description));
            }
        }
        if let Some(tag_ids) = &input.tag_ids {
            args.insert("tagIds".into(), ids_json(tag_ids));
        }
        let res: UpdateStoryResult = rpc::call(ctx, "updateStory", Value::Object(args))?;
        Ok(UpdateStoryPayload {
            story: res.story,
            error: res.error,
        })
    }

    async fn delete_story(
        &self,
        ctx: &Context<'_>,
        input: DeleteStoryInput,
    ) -> Result<DeleteStoryPayload> {
        require_user(ctx)?;
        let res: DeleteStoryResult =
            rpc::call(ctx, "deleteStory", json!({ "id": input.id.as_str() }))?;
        Ok(DeleteStoryPayload {
            success: res.deleted_story_id.is_some() && res.error.is_none(),
            deleted_story_id: res.deleted_story_id.map(ID),
            error: res.error,
        })
    }

    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        input: CreateTagInput,
    ) -> Result<CreateTagPayload> {
        require_user(ctx)?;
        let res: CreateTagResult = rpc::call(
            ctx,
            "createTag",
            json!({ "name": input.name, "color": input.color }),
        )?;
        Ok(CreateTagPayload {
            tag: res.tag,
            error: res.error,
        })
    }

    async fn update_tag(
        &self,
        ctx: &Context<'_>,
        input: UpdateTagInput,
    ) -> Result<UpdateTagPayload> {
        require_user(ctx)?;
        let mut args = Map::new();
        args.insert("id".into(), json!(input.id.as_str()));
        if let Some(name) = input.name {
            args.insert("name".into(), json!(name));
        }
        if let Some(color) = input.color {
            args.insert("color".into(), json!(color));
        }
        let res: UpdateTagResult = rpc::call(ctx, "updateTag", Value::Object(args))?;
        Ok(UpdateTagPayload {
            tag: res.tag,
            error: res.error,
        })
    }

    async fn delete_tag(
        &self,
        ctx: &Context<'_>,
        input: DeleteTagInput,
    ) -> Result<DeleteTagPayload> {
        require_user(ctx)?;
        let res: DeleteTagResult = rpc::call(ctx, "deleteTag", json!({ "id": input.id.as_str() }))?;
        Ok(DeleteTagPayload {
            success: res.deleted_tag_id.is_some() && res.error.is_none(),
            deleted_tag_id: res.deleted_tag_id.map(ID),
            error: res.error,
        })
    }

    /// Add tags to a story; null when the story does not exist.
    async fn tag_story(
        &self,
        ctx: &Context<'_>,
        story_id: ID,
        tag_ids: Vec<ID>,
    ) -> Result<Option<Story>> {
        require_user(ctx)?;
        rpc::call(
            ctx,
            "tagStory",
            json!({ "storyId": story_id.as_str(), "tagIds": ids_json(&tag_ids) }),
        )
    }

    /// Remove tags from a story; null when the story does not exist.
    async fn untag_story(
        &self,
        ctx: &Context<'_>,
        story_id: ID,
        tag_ids: Vec<ID>,
    ) -> Result<Option<Story>> {
        require_user(ctx)?;
        rpc::call(
            ctx,
            "untagStory",
            json!({ "storyId": story_id.as_str(), "tagIds": ids_json(&tag_ids) }),
        )
    }
}
