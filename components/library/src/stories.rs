//! Stories: reading them (one, or a connection filtered by tag), and the
//! story methods with their events.

use crate::args::{self, Args, Field};
use crate::db::{self, Row, Value};
use crate::events::{self, Event};
use crate::ids::{self, Kind};
use crate::model::{error, to_json, Failure, Story, StoryPayload};
use crate::pagination::{self, Connection, Page};
use crate::{taggings, tags, time, validate};
use serde_json::{json, Value as Json};

const COLUMNS_S: &str = "s.id, s.url, s.title, s.description, s.created_at";

/// Which stories a connection ranges over.
#[derive(Clone, Copy, Debug)]
pub enum Filter {
    All,
    Tagged(i64),
}

fn payload_from_row(row: &Row) -> Result<StoryPayload, String> {
    Ok(StoryPayload {
        id: row.int(0)?,
        url: row.text(1)?,
        title: row.text(2)?,
        description: row.opt_text(3)?,
        created_at: row.text(4)?,
    })
}

/// How many stories there are.
pub fn count() -> Result<i64, String> {
    crate::schema::total("story")
}

fn get_payload(id: i64) -> Result<Option<StoryPayload>, String> {
    let statement = format!("SELECT {COLUMNS_S} FROM story s WHERE s.id = ?");
    db::query_row(&statement, &[db::int(id)])?.map(|row| payload_from_row(&row)).transpose()
}

/// The story named by global id `id`, if it decodes and exists (without tags).
fn find(id: &str) -> Result<Option<StoryPayload>, String> {
    ids::decode(Kind::Story, id).map_or(Ok(None), get_payload)
}

/// Attach each story's tags (one query for all of them).
fn with_tags(payloads: Vec<StoryPayload>) -> Result<Vec<Story>, String> {
    let story_ids: Vec<i64> = payloads.iter().map(|p| p.id).collect();
    let mut tags = taggings::tags_of_stories(&story_ids)?;
    Ok(payloads
        .into_iter()
        .map(|payload| Story { tags: tags.remove(&payload.id).unwrap_or_default(), payload })
        .collect())
}

/// The story row `id` with its tags.
pub fn load(id: i64) -> Result<Option<Story>, String> {
    let payload = get_payload(id)?;
    Ok(with_tags(payload.into_iter().collect())?.pop())
}

/// One page of the stories in `filter`, newest first.
pub fn connection(filter: Filter, page: &Page) -> Result<Connection, String> {
    let (from, base): (&str, Vec<Value>) = match filter {
        Filter::All => ("story s", Vec::new()),
        Filter::Tagged(tag_id) => (
            "story s JOIN story_tag st ON st.story_id = s.id AND st.tag_id = ?",
            vec![db::int(tag_id)],
        ),
    };
    let total = match filter {
        Filter::All => count()?,
        Filter::Tagged(_) => db::query_int(&format!("SELECT COUNT(*) FROM {from}"), &base)?,
    };
    let with = |extra: &[Value]| [base.as_slice(), extra].concat();
    let (has_previous, rows) = match page.after {
        Some(after) => (
            db::query_int(&format!("SELECT EXISTS (SELECT 1 FROM {from} WHERE s.id >= ?)"), &with(&[db::int(after)]))? != 0,
            db::query(
                &format!("SELECT {COLUMNS_S} FROM {from} WHERE s.id < ? ORDER BY s.id DESC LIMIT ?"),
                &with(&[db::int(after), db::int(page.fetch_limit())]),
            )?,
        ),
        None => (
            false,
            db::query(
                &format!("SELECT {COLUMNS_S} FROM {from} ORDER BY s.id DESC LIMIT ?"),
                &with(&[db::int(page.fetch_limit())]),
            )?,
        ),
    };
    let payloads = rows.iter().map(payload_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(pagination::build(with_tags(payloads)?, page, has_previous, total))
}

/// `stories {first?, after?}` → `Connection`.
pub fn stories(args: &Args) -> Result<Json, String> {
    to_json(&connection(Filter::All, &Page::from_args(args)?)?)
}

/// `storiesByTag {tagName, first?, after?}` → `Connection` (empty for an unknown name).
pub fn stories_by_tag(args: &Args) -> Result<Json, String> {
    let name = args::string(args, "tagName")?;
    let page = Page::from_args(args)?;
    match tags::id_by_name(name)? {
        Some(tag_id) => to_json(&connection(Filter::Tagged(tag_id), &page)?),
        None => to_json(&pagination::empty()),
    }
}

/// `tagStories {tagId, first?, after?}` → `Connection` (empty for an unknown tag).
pub fn tag_stories(args: &Args) -> Result<Json, String> {
    let tag_id = args::string(args, "tagId")?;
    let page = Page::from_args(args)?;
    match ids::decode(Kind::Tag, tag_id) {
        Some(tag_id) => to_json(&connection(Filter::Tagged(tag_id), &page)?),
        None => to_json(&pagination::empty()),
    }
}

/// `story {id}` → `Story | null`.
pub fn story(args: &Args) -> Result<Json, String> {
    let story = ids::decode(Kind::Story, args::string(args, "id")?).map_or(Ok(None), load)?;
    to_json(&story)
}

/// `createStory {url, title, description?, tagIds?}` → `{story, cursor}`.
pub fn create(args: &Args) -> Result<Json, String> {
    let url = validate::story_url(args::string(args, "url")?)?;
    let title = args::string(args, "title")?;
    let description = args::opt_string(args, "description")?;
    validate::story_title(title)?;
    description.map(validate::story_description).transpose()?;
    let tag_ids = taggings::existing_tags(&args::opt_string_list(args, "tagIds")?.unwrap_or_default())?;
    let created_at = time::now_rfc3339();
    let id = db::insert(
        "INSERT INTO story (url, title, description, created_at) VALUES (?, ?, ?, ?)",
        &[db::text(&url), db::text(title), db::opt_text(description), db::text(&created_at)],
    )?;
    let added = taggings::add(id, &tag_ids)?;
    let story = load(id)?.ok_or("created story vanished")?;
    events::publish_all([
        Some(Event::StoryCreate { story: story.payload.clone() }),
        Event::story_tag(id, &added),
    ])?;
    events::publish_library_change()?;
    Ok(json!({ "story": to_json(&story)?, "cursor": ids::encode_cursor(id) }))
}

/// `updateStory {id, title?, description?, tagIds?}` → `{story}` | `{error}`.
/// An absent key leaves that field alone; `description: null` clears it;
/// `tagIds` replaces the story's tags.
pub fn update(args: &Args) -> Result<Json, String> {
    let id = args::string(args, "id")?;
    let title = args::opt_string(args, "title")?;
    let description = args::field_string(args, "description")?;
    let tag_ids = args::opt_string_list(args, "tagIds")?;
    title.map(validate::story_title).transpose()?;
    if let Field::Set(description) = description {
        validate::story_description(description)?;
    }
    let Some(old) = find(id)? else {
        return error(Failure::story_not_found(id));
    };
    let new = StoryPayload {
        title: title.map_or_else(|| old.title.clone(), str::to_owned),
        description: match description {
            Field::Absent => old.description.clone(),
            Field::Null => None,
            Field::Set(d) => Some(d.to_owned()),
        },
        ..old.clone()
    };
    if new != old {
        db::execute(
            "UPDATE story SET title = ?, description = ? WHERE id = ?",
            &[db::text(&new.title), db::opt_text(new.description.as_deref()), db::int(new.id)],
        )?;
    }
    let (added, removed) = match tag_ids {
        Some(tag_ids) => taggings::replace(new.id, &taggings::existing_tags(&tag_ids)?)?,
        None => (Vec::new(), Vec::new()),
    };
    events::publish_all([
        (new != old).then(|| Event::StoryUpdate { story: new.clone() }),
        Event::story_tag(new.id, &added),
        Event::story_untag(new.id, &removed),
    ])?;
    let story = load(new.id)?.ok_or("updated story vanished")?;
    Ok(json!({ "story": to_json(&story)? }))
}

/// `deleteStory {id}` → `{deletedStoryId}` | `{error}`; removes the story's taggings.
pub fn delete(args: &Args) -> Result<Json, String> {
    let id = args::string(args, "id")?;
    let Some(story) = find(id)? else {
        return error(Failure::story_not_found(id));
    };
    taggings::delete_for_story(story.id)?;
    db::execute("DELETE FROM story WHERE id = ?", &[db::int(story.id)])?;
    let deleted_story_id = ids::encode(Kind::Story, story.id);
    events::publish(Event::StoryDelete { deleted_story_id: deleted_story_id.clone() })?;
    events::publish_library_change()?;
    Ok(json!({ "deletedStoryId": deleted_story_id }))
}

/// `tagStory {storyId, tagIds}` → `Story | null`; publishes `story:tag` for the tags added.
pub fn tag(args: &Args) -> Result<Json, String> {
    change_tags(args, |story_id, tag_ids| {
        let added = taggings::add(story_id, tag_ids)?;
        Ok(Event::story_tag(story_id, &added))
    })
}

/// `untagStory {storyId, tagIds}` → `Story | null`; publishes `story:untag` for the tags removed.
pub fn untag(args: &Args) -> Result<Json, String> {
    change_tags(args, |story_id, tag_ids| {
        let removed = taggings::remove(story_id, tag_ids)?;
        Ok(Event::story_untag(story_id, &removed))
    })
}

fn change_tags(
    args: &Args,
    apply: impl FnOnce(i64, &[i64]) -> Result<Option<Event>, String>,
) -> Result<Json, String> {
    let story_id = args::string(args, "storyId")?;
    let tag_ids = args::string_list(args, "tagIds")?;
    let Some(story) = find(story_id)? else {
        return Ok(Json::Null);
    };
    let event = apply(story.id, &taggings::existing_tags(&tag_ids)?)?;
    events::publish_all([event])?;
    to_json(&load(story.id)?)
}
