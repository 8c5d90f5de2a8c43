//! Typed wrapper over the library actor's JSON RPC (`library.call(method, args)`).
//!
//! Methods and shapes are documented in `components/library/README.md`. An `Err(message)`
//! from the library becomes a GraphQL error with that message; a result that does not match
//! the documented shape becomes a GraphQL error too (and a warning in the host log).

use async_graphql::{Context, Error, ErrorExtensions, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::host::HostRef;
use crate::schema::errors::{StoryNotFoundError, TagError, TagNotFoundError, UpdateTagError};
use crate::schema::story::{Story, Tag};

/// The most items one page may hold (the library clamps too).
pub const MAX_FIRST: i32 = 100;

/// The host of the request being resolved.
pub fn host<'a>(ctx: &Context<'a>) -> Result<&'a HostRef> {
    ctx.data::<HostRef>()
}

/// Call `method` with `args` and decode its JSON result as `T`.
pub fn call<T: DeserializeOwned>(ctx: &Context<'_>, method: &str, args: Value) -> Result<T> {
    let host = host(ctx)?;
    let text = host
        .0
        .library_call(method, &args.to_string())
        .map_err(library_error)?;
    serde_json::from_str(&text).map_err(|err| {
        let message = format!("library method {method} returned an unexpected result: {err}");
        host.0.warn(&message);
        Error::new(message)
    })
}

/// The library's error as a GraphQL error. Two carry an extensions code, known by how the
/// host's message starts: a write past the user's storage quota (`QUOTA_EXCEEDED`), and a
/// change that may or may not have been saved (`OUTCOME_UNKNOWN`: a client retries it only
/// with a way to tell).
fn library_error(message: String) -> Error {
    let code = if message.starts_with("Storage quota exceeded") {
        Some("QUOTA_EXCEEDED")
    } else if message.starts_with("Outcome unknown") {
        Some("OUTCOME_UNKNOWN")
    } else {
        None
    };
    let error = Error::new(message);
    match code {
        Some(code) => error.extend_with(|_, extensions| extensions.set("code", code)),
        None => error,
    }
}

/// `{"first"?, "after"?}` with `first` clamped to `0..=MAX_FIRST`, plus `extra` keys.
pub fn page_args(first: Option<i32>, after: Option<String>, extra: Map<String, Value>) -> Value {
    let mut args = extra;
    if let Some(first) = first {
        args.insert("first".into(), json!(first.clamp(0, MAX_FIRST)));
    }
    if let Some(after) = after {
        args.insert("after".into(), json!(after));
    }
    Value::Object(args)
}

/// `createStory` result.
#[derive(Deserialize)]
pub struct CreateStoryResult {
    pub story: Story,
    pub cursor: String,
}

/// `updateStory` result.
#[derive(Deserialize)]
pub struct UpdateStoryResult {
    #[serde(default)]
    pub story: Option<Story>,
    #[serde(default)]
    pub error: Option<StoryNotFoundError>,
}

/// `deleteStory` result.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteStoryResult {
    #[serde(default)]
    pub deleted_story_id: Option<String>,
    #[serde(default)]
    pub error: Option<StoryNotFoundError>,
}

/// `createTag` result.
#[derive(Deserialize)]
pub struct CreateTagResult {
    #[serde(default)]
    pub tag: Option<Tag>,
    #[serde(default)]
    pub error: Option<TagError>,
}

/// `updateTag` result.
#[derive(Deserialize)]
pub struct UpdateTagResult {
    #[serde(default)]
    pub tag: Option<Tag>,
    #[serde(default)]
    pub error: Option<UpdateTagError>,
}

/// `deleteTag` result.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTagResult {
    #[serde(default)]
    pub deleted_tag_id: Option<String>,
    #[serde(default)]
    pub error: Option<TagNotFoundError>,
}

/// `node` result (when not `null`).
#[derive(Deserialize)]
#[serde(tag = "type")]
pub enum NodeResult {
    Story { story: Story },
    Tag { tag: Tag },
}
