//! The `story_tag` relation: which tags a story has, adding and removing
//! taggings (reporting exactly which changed), and loading tags for many stories.

use crate::db::{self, Value};
use crate::ids::{self, Kind};
use crate::model::Tag;
use std::collections::BTreeMap;

/// The existing tags among global ids `tag_ids`, in first-mention order without
/// duplicates; ids that do not decode or name no tag are ignored.
pub fn existing_tags(tag_ids: &[&str]) -> Result<Vec<i64>, String> {
    let mut wanted: Vec<i64> = Vec::new();
    for n in tag_ids.iter().filter_map(|id| ids::decode(Kind::Tag, id)) {
        if !wanted.contains(&n) {
            wanted.push(n);
        }
    }
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let params: Vec<Value> = wanted.iter().map(|&n| db::int(n)).collect();
    let statement = format!("SELECT id FROM tag WHERE id IN ({})", db::placeholders(params.len()));
    let found = db::query(&statement, &params)?
        .iter()
        .map(|row| row.int(0))
        .collect::<Result<Vec<_>, _>>()?;
    wanted.retain(|n| found.contains(n));
    Ok(wanted)
}

/// The tag ids of a story, ascending.
pub fn of_story(story_id: i64) -> Result<Vec<i64>, String> {
    db::query("SELECT tag_id FROM story_tag WHERE story_id = ? ORDER BY tag_id", &[db::int(story_id)])?
        .iter()
        .map(|row| row.int(0))
        .collect()
}

/// Tag the story with `tag_ids` (existing tags); the ones it did not have yet, in order.
pub fn add(story_id: i64, tag_ids: &[i64]) -> Result<Vec<i64>, String> {
    let mut added = Vec::new();
    for &tag_id in tag_ids {
        let changes = db::execute(
            "INSERT OR IGNORE INTO story_tag (story_id, tag_id) VALUES (?, ?)",
            &[db::int(story_id), db::int(tag_id)],
        )?;
        if changes > 0 {
            added.push(tag_id);
        }
    }
    Ok(added)
}

/// Untag the story from `tag_ids`; the ones it actually had, in order.
pub fn remove(story_id: i64, tag_ids: &[i64]) -> Result<Vec<i64>, String> {
    let mut removed = Vec::new();
    for &tag_id in tag_ids {
        let changes = db::execute(
            "DELETE FROM story_tag WHERE story_id = ? AND tag_id = ?",
            &[db::int(story_id), db::int(tag_id)],
        )?;
        if changes > 0 {
            removed.push(tag_id);
        }
    }
    Ok(removed)
}

/// Make the story's tags exactly `tag_ids`; (added, removed).
pub fn replace(story_id: i64, tag_ids: &[i64]) -> Result<(Vec<i64>, Vec<i64>), String> {
    let current = of_story(story_id)?;
    let to_remove: Vec<i64> = current.into_iter().filter(|t| !tag_ids.contains(t)).collect();
    let added = add(story_id, tag_ids)?;
    let removed = remove(story_id, &to_remove)?;
    Ok((added, removed))
}

pub fn delete_for_story(story_id: i64) -> Result<u64, String> {
    db::execute("DELETE FROM story_tag WHERE story_id = ?", &[db::int(story_id)])
}

pub fn delete_for_tag(tag_id: i64) -> Result<u64, String> {
    db::execute("DELETE FROM story_tag WHERE tag_id = ?", &[db::int(tag_id)])
}

/// The tags of each of `story_ids`, each list ordered by name.
pub fn tags_of_stories(story_ids: &[i64]) -> Result<BTreeMap<i64, Vec<Tag>>, String> {
    let mut by_story: BTreeMap<i64, Vec<Tag>> = BTreeMap::new();
    if story_ids.is_empty() {
        return Ok(by_story);
    }
    let params: Vec<Value> = story_ids.iter().map(|&n| db::int(n)).collect();
    let statement = format!(
        "SELECT st.story_id, {} FROM story_tag st JOIN tag t ON t.id = st.tag_id
         WHERE st.story_id IN ({}) ORDER BY {}",
        crate::tags::COLUMNS_T,
        db::placeholders(params.len()),
        crate::tags::ORDER_T,
    );
    for row in db::query(&statement, &params)? {
        let tag = crate::tags::from_row(&row, 1)?;
        by_story.entry(row.int(0)?).or_default().push(tag);
    }
    Ok(by_story)
}
