//! The JSON shapes of the RPC: `Tag`, `StoryPayload` (a story without tags),
//! `Story`, and the typed errors (`__typename`, `code`, `message`, offending value).
//! Row ids are kept as numbers and serialized as global ids.

use crate::ids::{self, Kind};
use serde::{Serialize, Serializer};

/// A tag; also the events' `TagPayload`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    #[serde(serialize_with = "tag_id")]
    pub id: i64,
    pub name: String,
    pub color: String,
    pub created_at: String,
}

/// A story without its tags: the events' `StoryPayload`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoryPayload {
    #[serde(serialize_with = "story_id")]
    pub id: i64,
    pub url: String,
    pub title: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// A story with its tags, ordered by name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Story {
    #[serde(flatten)]
    pub payload: StoryPayload,
    pub tags: Vec<Tag>,
}

/// A typed, user-facing error of a mutation (a member of the schema's error unions).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "__typename", rename_all_fields = "camelCase")]
pub enum Failure {
    #[serde(rename = "InvalidTagNameError")]
    InvalidTagName { code: &'static str, message: String, tag_name: String },
    #[serde(rename = "TagNameExistsError")]
    TagNameExists { code: &'static str, message: String, tag_name: String },
    #[serde(rename = "TagNotFoundError")]
    TagNotFound { code: &'static str, message: String, tag_id: String },
    #[serde(rename = "StoryNotFoundError")]
    StoryNotFound { code: &'static str, message: String, story_id: String },
}

impl Failure {
    pub fn invalid_tag_name(tag_name: &str) -> Self {
        Failure::InvalidTagName {
            code: "INVALID_TAG_NAME",
            message: format!(
                "Tag name must be between 1 and {} characters",
                crate::validate::MAX_TAG_NAME_CHARS
            ),
            tag_name: tag_name.to_owned(),
        }
    }

    pub fn tag_name_exists(tag_name: &str) -> Self {
        Failure::TagNameExists {
            code: "TAG_NAME_EXISTS",
            message: format!("A tag named \"{}\" already exists", tag_name.trim()),
            tag_name: tag_name.to_owned(),
        }
    }

    pub fn tag_not_found(tag_id: &str) -> Self {
        Failure::TagNotFound {
            code: "TAG_NOT_FOUND",
            message: "Tag not found".to_owned(),
            tag_id: tag_id.to_owned(),
        }
    }

    pub fn story_not_found(story_id: &str) -> Self {
        Failure::StoryNotFound {
            code: "STORY_NOT_FOUND",
            message: "Story not found".to_owned(),
            story_id: story_id.to_owned(),
        }
    }
}

/// A shape as a JSON value.
pub fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| format!("serialization: {e}"))
}

/// The `{"error": ...}` result of a mutation that failed in a user-facing way.
pub fn error(failure: Failure) -> Result<serde_json::Value, String> {
    Ok(serde_json::json!({ "error": to_json(&failure)? }))
}

fn story_id<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ids::encode(Kind::Story, *id))
}

fn tag_id<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ids::encode(Kind::Tag, *id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tag() -> Tag {
        Tag { id: 2, name: "rust".into(), color: "#f00".into(), created_at: "t".into() }
    }

    #[test]
    fn story_json_shape() {
        ids::set_namespace("0123456789abcdef".into());
        let story = Story {
            payload: StoryPayload {
                id: 1,
                url: "https://a.example".into(),
                title: "A".into(),
                description: None,
                created_at: "t".into(),
            },
            tags: vec![tag()],
        };
        assert_eq!(
            serde_json::to_value(&story).expect("serializes"),
            json!({
                "id": ids::encode(Kind::Story, 1), "url": "https://a.example", "title": "A",
                "description": null, "createdAt": "t",
                "tags": [{"id": ids::encode(Kind::Tag, 2), "name": "rust", "color": "#f00", "createdAt": "t"}]
            })
        );
    }

    #[test]
    fn failure_json_shape() {
        assert_eq!(
            serde_json::to_value(Failure::tag_name_exists(" Rust ")).expect("serializes"),
            json!({
                "__typename": "TagNameExistsError", "code": "TAG_NAME_EXISTS",
                "message": "A tag named \"Rust\" already exists", "tagName": " Rust "
            })
        );
        assert_eq!(
            serde_json::to_value(Failure::story_not_found("x")).expect("serializes"),
            json!({
                "__typename": "StoryNotFoundError", "code": "STORY_NOT_FOUND",
                "message": "Story not found", "storyId": "x"
            })
        );
    }
}
