//! Tags: reading them, and the `tag`, `tags`, `createTag`, `updateTag` and
//! `deleteTag` methods with their events.

use crate::args::{self, Args};
use crate::db::{self, Row};
use crate::events::{self, Event};
use crate::ids::{self, Kind};
use crate::model::{error, to_json, Failure, Tag};
use crate::{taggings, time, validate};
use serde_json::{json, Value as Json};

/// Tag columns as read by [`from_row`], on a table aliased `t`.
pub const COLUMNS_T: &str = "t.id, t.name, t.color, t.created_at";
/// Tag order: by name ignoring case, then exact name, then age.
pub const ORDER_T: &str = "t.name_key, t.name, t.id";

/// The tag in `row` starting at column `at` (columns as [`COLUMNS_T`]).
pub fn from_row(row: &Row, at: usize) -> Result<Tag, String> {
    Ok(Tag {
        id: row.int(at)?,
        name: row.text(at + 1)?,
        color: row.text(at + 2)?,
        created_at: row.text(at + 3)?,
    })
}

pub fn get(id: i64) -> Result<Option<Tag>, String> {
    let statement = format!("SELECT {COLUMNS_T} FROM tag t WHERE t.id = ?");
    db::query_row(&statement, &[db::int(id)])?.map(|row| from_row(&row, 0)).transpose()
}

/// How many tags there are.
pub fn count() -> Result<i64, String> {
    crate::schema::total("tag")
}

/// The tag whose name equals `name` ignoring case (and surrounding whitespace).
pub fn id_by_name(name: &str) -> Result<Option<i64>, String> {
    let row = db::query_row("SELECT id FROM tag WHERE name_key = ?", &[db::text(&validate::tag_name_key(name))])?;
    row.map(|r| r.int(0)).transpose()
}

/// The tag named by global id `id`, if it decodes and exists.
fn find(id: &str) -> Result<Option<Tag>, String> {
    ids::decode(Kind::Tag, id).map_or(Ok(None), get)
}

/// `tag {id}` → `Tag | null`.
pub fn tag(args: &Args) -> Result<Json, String> {
    to_json(&find(args::string(args, "id")?)?)
}

/// `tags {}` → `[Tag]` ordered by name.
pub fn tags(_args: &Args) -> Result<Json, String> {
    let statement = format!("SELECT {COLUMNS_T} FROM tag t ORDER BY {ORDER_T}");
    let all = db::query(&statement, &[])?
        .iter()
        .map(|row| from_row(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    to_json(&all)
}

/// `createTag {name, color}` → `{tag}` | `{error}`.
pub fn create(args: &Args) -> Result<Json, String> {
    let input_name = args::string(args, "name")?;
    let color = args::string(args, "color")?;
    validate::tag_color(color)?;
    let name = match checked_name(input_name, None)? {
        Ok(name) => name,
        Err(failure) => return error(failure),
    };
    let created_at = time::now_rfc3339();
    let id = db::insert(
        "INSERT INTO tag (name, name_key, color, created_at) VALUES (?, ?, ?, ?)",
        &[db::text(&name), db::text(&validate::tag_name_key(&name)), db::text(color), db::text(&created_at)],
    )?;
    let tag = Tag { id, name, color: color.to_owned(), created_at };
    events::publish(Event::TagCreate { tag: tag.clone() })?;
    events::publish_library_change()?;
    Ok(json!({ "tag": to_json(&tag)? }))
}

/// `updateTag {id, name?, color?}` → `{tag}` | `{error}`.
pub fn update(args: &Args) -> Result<Json, String> {
    let id = args::string(args, "id")?;
    let input_name = args::opt_string(args, "name")?;
    let color = args::opt_string(args, "color")?;
    color.map(validate::tag_color).transpose()?;
    let Some(old) = find(id)? else {
        return error(Failure::tag_not_found(id));
    };
    let name = match input_name.map(|n| checked_name(n, Some(old.id))).transpose()? {
        None => old.name.clone(),
        Some(Ok(name)) => name,
        Some(Err(failure)) => return error(failure),
    };
    let tag = Tag { name, color: color.map_or_else(|| old.color.clone(), str::to_owned), ..old.clone() };
    if tag != old {
        db::execute(
            "UPDATE tag SET name = ?, name_key = ?, color = ? WHERE id = ?",
            &[db::text(&tag.name), db::text(&validate::tag_name_key(&tag.name)), db::text(&tag.color), db::int(tag.id)],
        )?;
        events::publish(Event::TagUpdate { tag: tag.clone() })?;
    }
    Ok(json!({ "tag": to_json(&tag)? }))
}

/// `deleteTag {id}` → `{deletedTagId}` | `{error}`; removes the tag's taggings.
pub fn delete(args: &Args) -> Result<Json, String> {
    let id = args::string(args, "id")?;
    let Some(tag) = find(id)? else {
        return error(Failure::tag_not_found(id));
    };
    taggings::delete_for_tag(tag.id)?;
    db::execute("DELETE FROM tag WHERE id = ?", &[db::int(tag.id)])?;
    let deleted_tag_id = ids::encode(Kind::Tag, tag.id);
    events::publish(Event::TagDelete { deleted_tag_id: deleted_tag_id.clone() })?;
    events::publish_library_change()?;
    Ok(json!({ "deletedTagId": deleted_tag_id }))
}

/// The trimmed name to store, or the user-facing failure: invalid length, or
/// taken (ignoring case) by a tag other than `renaming`.
fn checked_name(input: &str, renaming: Option<i64>) -> Result<Result<String, Failure>, String> {
    let Some(name) = validate::tag_name(input) else {
        return Ok(Err(Failure::invalid_tag_name(input)));
    };
    match id_by_name(&name)? {
        Some(owner) if Some(owner) != renaming => Ok(Err(Failure::tag_name_exists(input))),
        _ => Ok(Ok(name)),
    }
}
