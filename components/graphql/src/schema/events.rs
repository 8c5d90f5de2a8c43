//! The `ChannelEvent` union: one object type per library event, chosen by the event's `type`.

use async_graphql::{SimpleObject, Union, ID};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// A story as events carry it (a `Story` without tags).
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryPayload {
    pub id: ID,
    pub url: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: String,
}

/// A tag as events carry it.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TagPayload {
    pub id: ID,
    pub name: String,
    pub color: String,
    pub created_at: String,
}

/// `story:create`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
pub struct StoryCreateEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub story: StoryPayload,
}

/// `story:update`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
pub struct StoryUpdateEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub story: StoryPayload,
}

/// `story:delete`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryDeleteEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub deleted_story_id: ID,
}

/// `tag:create`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
pub struct TagCreateEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub tag: TagPayload,
}

/// `tag:update`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
pub struct TagUpdateEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub tag: TagPayload,
}

/// `tag:delete`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TagDeleteEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub deleted_tag_id: ID,
}

/// `story:tag`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryTagEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub story_id: ID,
    pub tag_ids: Vec<ID>,
}

/// `story:untag`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryUntagEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub story_id: ID,
    pub tag_ids: Vec<ID>,
}

/// `library:change`
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct LibraryChangeEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub total_stories: i32,
    pub total_tags: i32,
}

/// `channel:reset`: a resuming subscription could not be given what it missed (`reason`
/// says why); it continues live from here. Refetch what the page shows.
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ChannelResetEvent {
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
}

/// Any event of the `library` channel.
#[derive(Union, Clone, Debug)]
pub enum ChannelEvent {
    StoryCreate(StoryCreateEvent),
    StoryUpdate(StoryUpdateEvent),
    StoryDelete(StoryDeleteEvent),
    TagCreate(TagCreateEvent),
    TagUpdate(TagUpdateEvent),
    TagDelete(TagDeleteEvent),
    StoryTag(StoryTagEvent),
    StoryUntag(StoryUntagEvent),
    LibraryChange(LibraryChangeEvent),
    Reset(ChannelResetEvent),
}

impl ChannelEvent {
    /// The GraphQL object type this event resolves to.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::StoryCreate(_) => "StoryCreateEvent",
            Self::StoryUpdate(_) => "StoryUpdateEvent",
            Self::StoryDelete(_) => "StoryDeleteEvent",
            Self::TagCreate(_) => "TagCreateEvent",
            Self::TagUpdate(_) => "TagUpdateEvent",
            Self::TagDelete(_) => "TagDeleteEvent",
            Self::StoryTag(_) => "StoryTagEvent",
            Self::StoryUntag(_) => "StoryUntagEvent",
            Self::LibraryChange(_) => "LibraryChangeEvent",
            Self::Reset(_) => "ChannelResetEvent",
        }
    }
}

fn decode<T: DeserializeOwned>(kind: &str, value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|err| format!("Malformed \"{kind}\" event: {err}"))
}

/// Decode an event's JSON into the union member its `type` names.
pub fn parse_event(json: &str) -> Result<ChannelEvent, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|err| format!("Malformed event JSON: {err}"))?;
    let kind = match value.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err("Event has no \"type\"".to_owned()),
    };
    Ok(match kind.as_str() {
        "story:create" => ChannelEvent::StoryCreate(decode(&kind, value)?),
        "story:update" => ChannelEvent::StoryUpdate(decode(&kind, value)?),
        "story:delete" => ChannelEvent::StoryDelete(decode(&kind, value)?),
        "tag:create" => ChannelEvent::TagCreate(decode(&kind, value)?),
        "tag:update" => ChannelEvent::TagUpdate(decode(&kind, value)?),
        "tag:delete" => ChannelEvent::TagDelete(decode(&kind, value)?),
        "story:tag" => ChannelEvent::StoryTag(decode(&kind, value)?),
        "story:untag" => ChannelEvent::StoryUntag(decode(&kind, value)?),
        "library:change" => ChannelEvent::LibraryChange(decode(&kind, value)?),
        "channel:reset" => ChannelEvent::Reset(decode(&kind, value)?),
        other => return Err(format!("Unknown event type \"{other}\"")),
    })
}
