//! Typed errors of the payloads, decoded from the library's `{"__typename", ...}` objects.

use async_graphql::{SimpleObject, Union};
use serde::Deserialize;

/// A tag name that is empty or longer than 50 characters (`INVALID_TAG_NAME`).
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct InvalidTagNameError {
    pub code: String,
    pub message: String,
    pub tag_name: String,
}

/// Another tag has that name, ignoring case (`TAG_NAME_EXISTS`).
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TagNameExistsError {
    pub code: String,
    pub message: String,
    pub tag_name: String,
}

/// No tag has that id (`TAG_NOT_FOUND`).
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TagNotFoundError {
    pub code: String,
    pub message: String,
    pub tag_id: String,
}

/// No story has that id (`STORY_NOT_FOUND`).
#[derive(SimpleObject, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StoryNotFoundError {
    pub code: String,
    pub message: String,
    pub story_id: String,
}

/// Why `createTag` refused.
#[derive(Union, Deserialize, Clone, Debug)]
#[serde(tag = "__typename")]
pub enum TagError {
    InvalidTagNameError(InvalidTagNameError),
    TagNameExistsError(TagNameExistsError),
}

/// Why `updateTag` refused.
#[derive(Union, Deserialize, Clone, Debug)]
#[serde(tag = "__typename")]
pub enum UpdateTagError {
    InvalidTagNameError(InvalidTagNameError),
    TagNameExistsError(TagNameExistsError),
    TagNotFoundError(TagNotFoundError),
}
