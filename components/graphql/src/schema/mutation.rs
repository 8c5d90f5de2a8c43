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

/// A mutation's library args, with the client's idempotency key when it sent one: the library
/// answers a key it has seen from that first call (components/library/src/idempotency.rs).
fn keyed(mut args: Map<String, Value>, client_mutation_id: &Option<String>) -> Value {
    if let Some(key) = client_mutation_id {
        args.insert("clientMutationId".into(), json!(key));
    }
    Value::Object(args)
}

/// `{"id": id}` as library args.
fn id_args(id: &ID) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("id".into(), json!(id.as_str()));
    args
}

/// `{"storyId", "tagIds"}` as library args.
fn tagging_args(story_id: &ID, tag_ids: &[ID]) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("storyId".into(), json!(story_id.as_str()));
    args.insert("tagIds".into(), ids_json(tag_ids));
    args
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
        let args = keyed(args, &input.client_mutation_id);
        let res: CreateStoryResult = rpc::call(ctx, "createStory", args)?;
        Ok(CreateStoryPayload {
            client_mutation_id: input.client_mutation_id,
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
        let mut args = id_args(&input.id);
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
        let args = keyed(args, &input.client_mutation_id);
        let res: UpdateStoryResult = rpc::call(ctx, "updateStory", args)?;
        Ok(UpdateStoryPayload {
            client_mutation_id: input.client_mutation_id,
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
        let args = keyed(id_args(&input.id), &input.client_mutation_id);
        let res: DeleteStoryResult = rpc::call(ctx, "deleteStory", args)?;
        Ok(DeleteStoryPayload {
            client_mutation_id: input.client_mutation_id,
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
        let mut args = Map::new();
        args.insert("name".into(), json!(input.name));
        args.insert("color".into(), json!(input.color));
        let args = keyed(args, &input.client_mutation_id);
        let res: CreateTagResult = rpc::call(ctx, "createTag", args)?;
        Ok(CreateTagPayload {
            client_mutation_id: input.client_mutation_id,
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
        let mut args = id_args(&input.id);
        if let Some(name) = input.name {
            args.insert("name".into(), json!(name));
        }
        if let Some(color) = input.color {
            args.insert("color".into(), json!(color));
        }
        let args = keyed(args, &input.client_mutation_id);
        let res: UpdateTagResult = rpc::call(ctx, "updateTag", args)?;
        Ok(UpdateTagPayload {
            client_mutation_id: input.client_mutation_id,
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
        let args = keyed(id_args(&input.id), &input.client_mutation_id);
        let res: DeleteTagResult = rpc::call(ctx, "deleteTag", args)?;
        Ok(DeleteTagPayload {
            client_mutation_id: input.client_mutation_id,
            success: res.deleted_tag_id.is_some() && res.error.is_none(),
            deleted_tag_id: res.deleted_tag_id.map(ID),
            error: res.error,
        })
    }

    /// Add tags to a story; null when the story does not exist. `clientMutationId` is an
    /// idempotency key, as in the inputs of the other mutations.
    async fn tag_story(
        &self,
        ctx: &Context<'_>,
        story_id: ID,
        tag_ids: Vec<ID>,
        client_mutation_id: Option<String>,
    ) -> Result<Option<Story>> {
        require_user(ctx)?;
        let args = keyed(tagging_args(&story_id, &tag_ids), &client_mutation_id);
        rpc::call(ctx, "tagStory", args)
    }

    /// Remove tags from a story; null when the story does not exist. `clientMutationId` is an
    /// idempotency key, as in the inputs of the other mutations.
    async fn untag_story(
        &self,
        ctx: &Context<'_>,
        story_id: ID,
        tag_ids: Vec<ID>,
        client_mutation_id: Option<String>,
    ) -> Result<Option<Story>> {
        require_user(ctx)?;
        let args = keyed(tagging_args(&story_id, &tag_ids), &client_mutation_id);
        rpc::call(ctx, "untagStory", args)
    }
}
