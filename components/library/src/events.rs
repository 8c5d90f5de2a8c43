//! Library events (the seed's `LibraryEvent`) and publishing them on the
//! `library` channel, each logged first (see [`crate::event_log`]). The host delivers them
//! only after the call commits.

use crate::ids::{self, Kind};
use crate::model::{StoryPayload, Tag};
use crate::event_log;
use crate::host::channel;
use serde::Serialize;

pub const CHANNEL: &str = "library";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Event {
    #[serde(rename = "story:create")]
    StoryCreate { story: StoryPayload },
    #[serde(rename = "story:update")]
    StoryUpdate { story: StoryPayload },
    #[serde(rename = "story:delete")]
    StoryDelete { deleted_story_id: String },
    #[serde(rename = "tag:create")]
    TagCreate { tag: Tag },
    #[serde(rename = "tag:update")]
    TagUpdate { tag: Tag },
    #[serde(rename = "tag:delete")]
    TagDelete { deleted_tag_id: String },
    #[serde(rename = "story:tag")]
    StoryTag { story_id: String, tag_ids: Vec<String> },
    #[serde(rename = "story:untag")]
    StoryUntag { story_id: String, tag_ids: Vec<String> },
    #[serde(rename = "library:change")]
    LibraryChange { total_stories: i64, total_tags: i64 },
}

impl Event {
    /// `story:tag` for the given tag rows, or nothing when none were added.
    pub fn story_tag(story_id: i64, tag_ids: &[i64]) -> Option<Event> {
        let (story_id, tag_ids) = tagging_ids(story_id, tag_ids)?;
        Some(Event::StoryTag { story_id, tag_ids })
    }

    /// `story:untag` for the given tag rows, or nothing when none were removed.
    pub fn story_untag(story_id: i64, tag_ids: &[i64]) -> Option<Event> {
        let (story_id, tag_ids) = tagging_ids(story_id, tag_ids)?;
        Some(Event::StoryUntag { story_id, tag_ids })
    }

    pub fn json(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| format!("event serialization: {e}"))
    }
}

fn tagging_ids(story_id: i64, tag_ids: &[i64]) -> Option<(String, Vec<String>)> {
    if tag_ids.is_empty() {
        return None;
    }
    let tags = tag_ids.iter().map(|&t| ids::encode(Kind::Tag, t)).collect();
    Some((ids::encode(Kind::Story, story_id), tags))
}

/// Log `event` and publish it, with its position, on the `library` channel.
pub fn publish(event: Event) -> Result<(), String> {
    channel::publish(CHANNEL, &event_log::append(&event.json()?)?);
    Ok(())
}

/// Publish each event that is present, in order.
pub fn publish_all(events: impl IntoIterator<Item = Option<Event>>) -> Result<(), String> {
    events.into_iter().flatten().try_for_each(publish)
}

/// Publish `library:change` with the current totals.
pub fn publish_library_change() -> Result<(), String> {
    publish(Event::LibraryChange {
        total_stories: crate::stories::count()?,
        total_tags: crate::tags::count()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_value(e: &Event) -> serde_json::Value {
        serde_json::from_str(&e.json().expect("serializes")).expect("json")
    }

    #[test]
    fn event_shapes() {
        ids::set_namespace("0123456789abcdef".into());
        let tag = Tag { id: 1, name: "n".into(), color: "c".into(), created_at: "t".into() };
        assert_eq!(
            to_value(&Event::TagCreate { tag }),
            json!({"type": "tag:create", "tag": {"id": ids::encode(Kind::Tag, 1), "name": "n", "color": "c", "createdAt": "t"}})
        );
        assert_eq!(
            to_value(&Event::StoryDelete { deleted_story_id: "x".into() }),
            json!({"type": "story:delete", "deletedStoryId": "x"})
        );
        assert_eq!(
            to_value(&Event::LibraryChange { total_stories: 2, total_tags: 3 }),
            json!({"type": "library:change", "totalStories": 2, "totalTags": 3})
        );
    }

    #[test]
    fn tagging_events_only_when_something_changed() {
        ids::set_namespace("0123456789abcdef".into());
        assert_eq!(Event::story_tag(1, &[]), None);
        let e = Event::story_untag(1, &[2, 3]).expect("event");
        assert_eq!(
            to_value(&e),
            json!({"type": "story:untag", "storyId": ids::encode(Kind::Story, 1), "tagIds": [ids::encode(Kind::Tag, 2), ids::encode(Kind::Tag, 3)]})
        );
    }
}
