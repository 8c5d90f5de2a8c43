//! The library component: one actor per user holding that user's stories, tags
//! and taggings in its own SQLite database, served as JSON RPC through
//! `library.call(method, args)` (see the crate README), publishing every change
//! on the `library` channel.
//!
//! This file owns the bindings, the export, and method dispatch (a mutation with a
//! `clientMutationId` goes through [`idempotency`] first).

mod args;
mod db;
mod event_log;
mod events;
mod host;
mod idempotency;
mod ids;
mod model;
mod pagination;
mod schema;
mod stories;
mod taggings;
mod tags;
#[cfg(test)]
mod tests;
mod time;
mod validate;

wit_bindgen::generate!({ path: "../../wit", world: "library-component" });

use crate::args::Args;
use crate::ids::Kind;
use crate::model::to_json;
use exports::realtime::host::library::Guest;
use serde_json::{json, Value as Json};

struct Component;

impl Guest for Component {
    fn call(method: String, args: String) -> Result<String, String> {
        let result = (|| {
            schema::ensure()?;
            ids::ensure_namespace()?;
            let args = args::parse(&args)?;
            let key = idempotency::key_of(&method, &args)?;
            let now = time::now_ms();
            if let Some(key) = key {
                if let idempotency::Step::Answer(result) = idempotency::before(key, now)? {
                    return Ok(result);
                }
            }
            let result = dispatch(&method, &args)?.to_string();
            if let Some(key) = key {
                idempotency::remember(key, &result, now)?;
            }
            event_log::flush()?;
            Ok(result)
        })();
        match result {
            Ok(result) => {
                schema::mark_committed();
                Ok(result)
            }
            Err(e) => {
                // The call rolls back: so do an id namespace or a log epoch it drew.
                ids::forget_namespace();
                event_log::forget_call();
                Err(e)
            }
        }
    }
}

export!(Component);

fn dispatch(method: &str, args: &Args) -> Result<Json, String> {
    match method {
        "counts" => counts(args),
        "node" => node(args),
        "stories" => stories::stories(args),
        "storiesByTag" => stories::stories_by_tag(args),
        "tagStories" => stories::tag_stories(args),
        "story" => stories::story(args),
        "createStory" => stories::create(args),
        "updateStory" => stories::update(args),
        "deleteStory" => stories::delete(args),
        "tagStory" => stories::tag(args),
        "untagStory" => stories::untag(args),
        "tag" => tags::tag(args),
        "tags" => tags::tags(args),
        "createTag" => tags::create(args),
        "updateTag" => tags::update(args),
        "deleteTag" => tags::delete(args),
        "eventsAfter" => event_log::events_after(args::string(args, "after")?),
        other => Err(format!("unknown library method `{other}`")),
    }
}

/// `counts {}` → `{totalStories, totalTags}`.
fn counts(_args: &Args) -> Result<Json, String> {
    Ok(json!({ "totalStories": stories::count()?, "totalTags": tags::count()? }))
}

/// `node {id}` → `{type: "Story", story}` | `{type: "Tag", tag}` | `null`.
fn node(args: &Args) -> Result<Json, String> {
    let id = args::string(args, "id")?;
    Ok(match ids::decode_any(id) {
        Some((Kind::Story, n)) => stories::load(n)?
            .map(|story| Ok::<_, String>(json!({ "type": "Story", "story": to_json(&story)? })))
            .transpose()?
            .unwrap_or(Json::Null),
        Some((Kind::Tag, n)) => tags::get(n)?
            .map(|tag| Ok::<_, String>(json!({ "type": "Tag", "tag": to_json(&tag)? })))
            .transpose()?
            .unwrap_or(Json::Null),
        None => Json::Null,
    })
}
