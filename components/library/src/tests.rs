//! End-to-end tests of the RPC methods and their events, run natively against
//! the in-memory fakes of `host.rs` (each test thread has its own database).

use crate::exports::realtime::host::library::Guest;
use crate::host::fake::take_events;
use crate::Component;
use serde_json::{json, Value as Json};

fn call(method: &str, args: Json) -> Result<Json, String> {
    let text = Component::call(method.to_owned(), args.to_string())?;
    Ok(serde_json::from_str(&text).expect("result is JSON"))
}

fn ok(method: &str, args: Json) -> Json {
    call(method, args).unwrap_or_else(|e| panic!("{method} failed: {e}"))
}

/// The events published since the last look, as JSON, all on channel `library`, each
/// leading with its position in the log (checked consecutive, then taken off).
fn events() -> Vec<Json> {
    let published = published();
    let seqs: Vec<i64> = published.iter().map(|(position, _)| seq(position)).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "positions not consecutive: {seqs:?}");
    published.into_iter().map(|(_, event)| event).collect()
}

/// The events published since the last look: each one's position and the rest of it.
fn published() -> Vec<(String, Json)> {
    take_events()
        .into_iter()
        .map(|(channel, event)| {
            assert_eq!(channel, "library");
            assert!(event.starts_with(r#"{"position":""#), "{event}");
            let mut json: Json = serde_json::from_str(&event).expect("event is JSON");
            let position = json.as_object_mut().expect("object").remove("position").expect("position");
            (position.as_str().expect("string").to_owned(), json)
        })
        .collect()
}

fn seq(position: &str) -> i64 {
    position.rsplit_once(':').expect("epoch:seq").1.parse().expect("seq")
}

fn types(events: &[Json]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().expect("type")).collect()
}

fn tag(name: &str) -> String {
    let r = ok("createTag", json!({"name": name, "color": "#123456"}));
    r["tag"]["id"].as_str().expect("tag id").to_owned()
}

fn story(title: &str, tag_ids: &[&str]) -> String {
    let r = ok("createStory", json!({"url": "https://example.com/x", "title": title, "tagIds": tag_ids}));
    r["story"]["id"].as_str().expect("story id").to_owned()
}

fn tag_names(story: &Json) -> Vec<&str> {
    story["tags"].as_array().expect("tags").iter().map(|t| t["name"].as_str().expect("name")).collect()
}

#[test]
fn create_story_publishes_create_tag_and_change() {
    let (a, b) = (tag("b-tag"), tag("A-tag"));
    events();
    let r = ok(
        "createStory",
        json!({"url": "https://example.com", "title": "T", "description": "D", "tagIds": [a, b, a, "bogus"]}),
    );
    let s = &r["story"];
    assert_eq!(s["title"], "T");
    assert_eq!(s["description"], "D");
    assert_eq!(tag_names(s), ["A-tag", "b-tag"]);
    assert!(r["cursor"].is_string());
    let ev = events();
    assert_eq!(types(&ev), ["story:create", "story:tag", "library:change"]);
    assert_eq!(ev[0]["story"], json!({"id": s["id"], "url": "https://example.com", "title": "T",
        "description": "D", "createdAt": s["createdAt"]}));
    assert_eq!(ev[1]["tagIds"], json!([a, b]));
    assert_eq!(ev[2], json!({"type": "library:change", "totalStories": 1, "totalTags": 2}));
}

#[test]
fn create_story_without_tags_and_bad_url() {
    ok("createStory", json!({"url": "http://x.example", "title": "T"}));
    assert_eq!(types(&events()), ["story:create", "library:change"]);
    let err = call("createStory", json!({"url": "notaurl", "title": "T"})).expect_err("bad url");
    assert!(err.starts_with("Invalid URL: "), "{err}");
    assert!(call("createStory", json!({"title": "T"})).is_err());
}

#[test]
fn created_at_is_rfc3339_millis() {
    let r = ok("createStory", json!({"url": "http://x.example", "title": "T"}));
    let at = r["story"]["createdAt"].as_str().expect("createdAt");
    assert_eq!(at.len(), 24, "{at}");
    assert!(at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
}

#[test]
fn tag_name_rules() {
    tag("Rust");
    events();
    let dup = ok("createTag", json!({"name": "  rUST ", "color": "red"}));
    assert_eq!(dup["error"]["__typename"], "TagNameExistsError");
    assert_eq!(dup["error"]["code"], "TAG_NAME_EXISTS");
    assert_eq!(dup["error"]["tagName"], "  rUST ");
    let empty = ok("createTag", json!({"name": "   ", "color": "red"}));
    assert_eq!(empty["error"]["code"], "INVALID_TAG_NAME");
    let long = ok("createTag", json!({"name": "x".repeat(51), "color": "red"}));
    assert_eq!(long["error"]["__typename"], "InvalidTagNameError");
    assert!(events().is_empty());
    let trimmed = ok("createTag", json!({"name": "  go  ", "color": "red"}));
    assert_eq!(trimmed["tag"]["name"], "go");
    assert_eq!(types(&events()), ["tag:create", "library:change"]);
}

#[test]
fn update_tag_events_only_on_change() {
    let (rust, _go) = (tag("rust"), tag("go"));
    events();
    let same = ok("updateTag", json!({"id": rust, "name": "rust", "color": "#123456"}));
    assert_eq!(same["tag"]["name"], "rust");
    assert!(events().is_empty());
    let recased = ok("updateTag", json!({"id": rust, "name": "Rust"}));
    assert_eq!(recased["tag"]["name"], "Rust");
    let ev = events();
    assert_eq!(types(&ev), ["tag:update"]);
    assert_eq!(ev[0]["tag"]["name"], "Rust");
    let taken = ok("updateTag", json!({"id": rust, "name": "GO"}));
    assert_eq!(taken["error"]["__typename"], "TagNameExistsError");
    let missing = ok("updateTag", json!({"id": "nope", "name": "x"}));
    assert_eq!(missing["error"], json!({"__typename": "TagNotFoundError", "code": "TAG_NOT_FOUND",
        "message": "Tag not found", "tagId": "nope"}));
    assert!(events().is_empty());
}

#[test]
fn update_story_fields_and_tag_diff() {
    let (a, b, c) = (tag("a"), tag("b"), tag("c"));
    let s = story("T", &[&a, &b]);
    events();

    let same = ok("updateStory", json!({"id": s, "title": "T", "tagIds": [b, a]}));
    assert_eq!(tag_names(&same["story"]), ["a", "b"]);
    assert!(events().is_empty());

    let r = ok("updateStory", json!({"id": s, "description": "new", "tagIds": [c, b]}));
    assert_eq!(r["story"]["description"], "new");
    assert_eq!(r["story"]["title"], "T");
    assert_eq!(tag_names(&r["story"]), ["b", "c"]);
    let ev = events();
    assert_eq!(types(&ev), ["story:update", "story:tag", "story:untag"]);
    assert_eq!(ev[1]["tagIds"], json!([c]));
    assert_eq!(ev[2]["tagIds"], json!([a]));
    assert_eq!(ev[2]["storyId"], json!(s));

    let cleared = ok("updateStory", json!({"id": s, "description": null}));
    assert_eq!(cleared["story"]["description"], Json::Null);
    assert_eq!(tag_names(&cleared["story"]), ["b", "c"]);
    assert_eq!(types(&events()), ["story:update"]);

    let missing = ok("updateStory", json!({"id": a, "title": "x"}));
    assert_eq!(missing["error"]["__typename"], "StoryNotFoundError");
    assert_eq!(missing["error"]["storyId"], json!(a));
    assert!(events().is_empty());
}

/// An absolute url of exactly `chars` characters.
fn url_of(chars: usize) -> String {
    let base = "https://example.com/";
    format!("{base}{}", "u".repeat(chars - base.len()))
}

#[test]
fn story_field_lengths_are_limited() {
    let (title, description) = ("é".repeat(500), "é".repeat(10_000));
    let r = ok("createStory", json!({"url": url_of(2_048), "title": title, "description": description}));
    let s = r["story"]["id"].as_str().expect("story id").to_owned();
    assert_eq!(types(&events()), ["story:create", "library:change"]);
    for (args, message) in [
        (json!({"url": url_of(2_049), "title": "T"}), "URL is too long: 2049 characters (at most 2048)"),
        (json!({"url": url_of(30), "title": "é".repeat(501)}), "Title is too long: 501 characters (at most 500)"),
        (
            json!({"url": url_of(30), "title": "T", "description": "é".repeat(10_001)}),
            "Description is too long: 10001 characters (at most 10000)",
        ),
    ] {
        assert_eq!(call("createStory", args), Err(message.to_owned()));
    }
    for (args, message) in [
        (json!({"id": s, "title": "ü".repeat(501)}), "Title is too long: 501 characters (at most 500)"),
        (json!({"id": s, "description": "ü".repeat(10_001)}), "Description is too long: 10001 characters (at most 10000)"),
    ] {
        assert_eq!(call("updateStory", args), Err(message.to_owned()));
    }
    // Nothing written, nothing published.
    assert!(events().is_empty());
    assert_eq!(ok("counts", json!({}))["totalStories"], 1);
    assert_eq!(ok("story", json!({"id": s}))["title"], json!(title));
    let r = ok("updateStory", json!({"id": s, "title": "ü".repeat(500), "description": "ü".repeat(10_000)}));
    assert_eq!(r["story"]["title"], json!("ü".repeat(500)));
    assert_eq!(types(&events()), ["story:update"]);
}

#[test]
fn tag_color_length_is_limited() {
    let r = ok("createTag", json!({"name": "a", "color": "é".repeat(32)}));
    let a = r["tag"]["id"].as_str().expect("tag id").to_owned();
    assert_eq!(types(&events()), ["tag:create", "library:change"]);
    let too_long = "Color is too long: 33 characters (at most 32)".to_owned();
    assert_eq!(call("createTag", json!({"name": "b", "color": "é".repeat(33)})), Err(too_long.clone()));
    assert_eq!(call("updateTag", json!({"id": a, "color": "é".repeat(33)})), Err(too_long));
    assert!(events().is_empty());
    assert_eq!(ok("counts", json!({}))["totalTags"], 1);
    assert_eq!(ok("tag", json!({"id": a}))["color"], json!("é".repeat(32)));
    let r = ok("updateTag", json!({"id": a, "color": "ü".repeat(32)}));
    assert_eq!(r["tag"]["color"], json!("ü".repeat(32)));
    assert_eq!(types(&events()), ["tag:update"]);
}

#[test]
fn tag_and_untag_story_report_exact_changes() {
    let (a, b) = (tag("a"), tag("b"));
    let s = story("T", &[&a]);
    events();
    let r = ok("tagStory", json!({"storyId": s, "tagIds": [a, b]}));
    assert_eq!(tag_names(&r), ["a", "b"]);
    let ev = events();
    assert_eq!(types(&ev), ["story:tag"]);
    assert_eq!(ev[0]["tagIds"], json!([b]));
    ok("tagStory", json!({"storyId": s, "tagIds": [a, b]}));
    assert!(events().is_empty());
    let r = ok("untagStory", json!({"storyId": s, "tagIds": [b, "junk"]}));
    assert_eq!(tag_names(&r), ["a"]);
    assert_eq!(events()[0]["tagIds"], json!([b]));
    ok("untagStory", json!({"storyId": s, "tagIds": [b]}));
    assert!(events().is_empty());
    assert_eq!(ok("tagStory", json!({"storyId": a, "tagIds": [a]})), Json::Null);
    assert!(events().is_empty());
}

#[test]
fn deletes_remove_taggings_and_publish() {
    let (a, b) = (tag("a"), tag("b"));
    let (s1, s2) = (story("one", &[&a, &b]), story("two", &[&a]));
    events();
    let r = ok("deleteTag", json!({"id": a}));
    assert_eq!(r, json!({"deletedTagId": a}));
    assert_eq!(types(&events()), ["tag:delete", "library:change"]);
    assert_eq!(tag_names(&ok("story", json!({"id": s1}))), ["b"]);
    assert_eq!(ok("tagStories", json!({"tagId": a}))["totalCount"], 0);

    let r = ok("deleteStory", json!({"id": s2}));
    assert_eq!(r, json!({"deletedStoryId": s2}));
    let ev = events();
    assert_eq!(types(&ev), ["story:delete", "library:change"]);
    assert_eq!(ev[1], json!({"type": "library:change", "totalStories": 1, "totalTags": 1}));
    assert_eq!(ok("story", json!({"id": s2})), Json::Null);
    assert_eq!(ok("deleteStory", json!({"id": s2}))["error"]["code"], "STORY_NOT_FOUND");
    assert_eq!(ok("deleteTag", json!({"id": a}))["error"]["code"], "TAG_NOT_FOUND");
    assert!(events().is_empty());
    assert_eq!(ok("counts", json!({})), json!({"totalStories": 1, "totalTags": 1}));
}

#[test]
fn ids_are_never_reused() {
    let s1 = story("one", &[]);
    ok("deleteStory", json!({"id": s1}));
    assert_ne!(story("two", &[]), s1);
}

#[test]
fn stories_paginate_newest_first() {
    let ids: Vec<String> = (0..25).map(|i| story(&format!("s{i}"), &[])).collect();
    let first = ok("stories", json!({}));
    let edges = first["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 20);
    assert_eq!(edges[0]["node"]["id"], json!(ids[24]));
    assert_eq!(first["totalCount"], 25);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(first["pageInfo"]["endCursor"], edges[19]["cursor"]);

    let rest = ok("stories", json!({"first": 10, "after": first["pageInfo"]["endCursor"]}));
    let edges = rest["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 5);
    assert_eq!(edges[4]["node"]["id"], json!(ids[0]));
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["pageInfo"]["hasPreviousPage"], true);

    let none = ok("stories", json!({"first": 0}));
    assert_eq!(none["edges"], json!([]));
    assert_eq!(none["pageInfo"]["hasNextPage"], true);
    assert_eq!(none["pageInfo"]["startCursor"], Json::Null);
    assert!(call("stories", json!({"after": "bogus"})).is_err());
    assert_eq!(ok("stories", json!({"first": 500}))["edges"].as_array().map(Vec::len), Some(25));
}

#[test]
fn cursor_of_a_deleted_story_still_pages() {
    let ids: Vec<String> = (0..3).map(|i| story(&format!("s{i}"), &[])).collect();
    let page = ok("stories", json!({"first": 1}));
    ok("deleteStory", json!({"id": ids[2]}));
    let next = ok("stories", json!({"after": page["pageInfo"]["endCursor"]}));
    assert_eq!(next["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(next["pageInfo"]["hasPreviousPage"], false);
}

#[test]
fn stories_by_tag_ignores_case_and_unknown_names_are_empty() {
    let rust = tag("Rust");
    story("untagged", &[]);
    let tagged = story("tagged", &[&rust]);
    let r = ok("storiesByTag", json!({"tagName": "rUsT"}));
    assert_eq!(r["totalCount"], 1);
    assert_eq!(r["edges"][0]["node"]["id"], json!(tagged));
    assert_eq!(ok("tagStories", json!({"tagId": rust}))["totalCount"], 1);
    let none = ok("storiesByTag", json!({"tagName": "nope"}));
    assert_eq!(none["totalCount"], 0);
    assert_eq!(none["pageInfo"]["hasNextPage"], false);
}

#[test]
fn node_tag_and_tags() {
    let (z, a) = (tag("zed"), tag("Alpha"));
    let s = story("T", &[&z]);
    assert_eq!(ok("node", json!({"id": s}))["type"], "Story");
    assert_eq!(ok("node", json!({"id": z}))["tag"]["name"], "zed");
    assert_eq!(ok("node", json!({"id": "VXNlcjox"})), Json::Null);
    assert_eq!(ok("tag", json!({"id": a}))["name"], "Alpha");
    assert_eq!(ok("tag", json!({"id": s})), Json::Null);
    let names: Vec<Json> = ok("tags", json!({})).as_array().expect("tags").iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("Alpha"), json!("zed")]);
}

#[test]
fn bad_calls_are_errors() {
    assert!(call("nope", json!({})).is_err());
    assert!(call("story", json!({"id": 1})).is_err());
    assert!(call("tagStory", json!({"storyId": "x"})).is_err());
    assert!(Component::call("counts".into(), "[1]".into()).is_err());
    assert!(Component::call("counts".into(), String::new()).is_ok());
}

#[test]
fn totals_migration_counts_existing_rows() {
    use crate::host::{kv, sql};
    // A library written by the first schema version, before totals were kept.
    for statement in crate::schema::MIGRATIONS[0] {
        sql::execute(statement, &[]).unwrap();
    }
    for title in ["one", "two", "three"] {
        sql::execute(
            "INSERT INTO story (url, title, created_at) VALUES ('https://example.com', ?, '2026-01-01T00:00:00.000Z')",
            &[crate::db::text(title)],
        )
        .unwrap();
    }
    sql::execute("INSERT INTO tag (name, name_key, color, created_at) VALUES ('t', 't', '#000000', 'x')", &[]).unwrap();
    kv::put("library/schema-version", b"1");
    assert_eq!(ok("counts", json!({})), json!({"totalStories": 3, "totalTags": 1}));
    let s = story("four", &[]);
    assert_eq!(ok("counts", json!({})), json!({"totalStories": 4, "totalTags": 1}));
    ok("deleteStory", json!({"id": s}));
    assert_eq!(ok("stories", json!({"first": 1}))["totalCount"], 3);
}

// The event log.

/// `eventsAfter`: the events (without their positions) or the reset reason.
fn events_after(position: &str) -> Result<Vec<Json>, String> {
    let r = ok("eventsAfter", json!({ "after": position }));
    match r["reset"].as_str() {
        Some(reason) => Err(reason.to_owned()),
        None => Ok(r["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                let mut json: Json = serde_json::from_str(e.as_str().expect("event text")).expect("JSON");
                json.as_object_mut().expect("object").remove("position");
                json
            })
            .collect()),
    }
}

#[test]
fn the_log_replays_exactly_what_was_published_after_a_position() {
    tag("a");
    story("one", &[]);
    let first = published();
    let (p1, _) = &first[0];
    story("two", &[]);
    let later = published();
    // A call that fails publishes nothing and logs nothing.
    assert!(call("createStory", json!({"url": "nope", "title": "bad"})).is_err());
    assert!(published().is_empty());
    let mut expected: Vec<Json> = first[1..].iter().chain(&later).map(|(_, e)| e.clone()).collect();
    assert_eq!(events_after(p1).expect("replay"), expected);
    // From the head: nothing; from each position: the rest, in order.
    let (head, _) = later.last().expect("events");
    assert_eq!(events_after(head).expect("replay"), Vec::<Json>::new());
    expected.remove(0);
    assert_eq!(events_after(&first[1].0).expect("replay"), expected);
    assert_eq!(ok("eventsAfter", json!({ "after": p1 }))["head"], json!(head));
}

#[test]
fn the_log_keeps_the_newest_events_only() {
    crate::host::settings::set_event_retention(3, 86_400_000);
    for i in 0..3 {
        tag(&format!("t{i}"));
    }
    let positions: Vec<String> = published().into_iter().map(|(p, _)| p).collect();
    assert_eq!(positions.len(), 6, "tag:create and library:change each");
    // Kept: the last 3 (seq 4..=6). After seq 3: all of them; after seq 2: seq 3 is gone.
    assert_eq!(events_after(&positions[2]).expect("replay").len(), 3);
    assert_eq!(events_after(&positions[1]), Err("that position is older than the events kept for resuming".into()));
    crate::host::settings::set_event_retention(1000, 86_400_000);
}

#[test]
fn the_log_forgets_old_events_but_its_head() {
    crate::host::settings::set_event_retention(1000, 0);
    tag("a");
    tag("b");
    let positions: Vec<String> = published().into_iter().map(|(p, _)| p).collect();
    // Every event is past the age bound but the head, kept as the log's end.
    assert_eq!(events_after(&positions[0]), Err("that position is older than the events kept for resuming".into()));
    assert_eq!(events_after(&positions[1]), Err("that position is older than the events kept for resuming".into()));
    assert_eq!(events_after(&positions[2]).expect("just before the head").len(), 1);
    assert_eq!(events_after(&positions[3]).expect("at the head"), Vec::<Json>::new());
    crate::host::settings::set_event_retention(1000, 86_400_000);
}

/// A tag to log events with, and the log's epoch; the log's head is then 2.
fn tag_for_the_log() -> (String, String) {
    let id = tag("ring");
    let published = published();
    assert_eq!(published.iter().map(|(p, _)| seq(p)).collect::<Vec<_>>(), [1, 2]);
    let epoch = published[0].0.split_once(':').expect("epoch:seq").0.to_owned();
    (id, epoch)
}

/// Log one `tag:update` for each sequence number after `head` up to `to` (its color names it).
fn log_events(tag_id: &str, head: i64, to: i64) {
    for n in head + 1..=to {
        ok("updateTag", json!({"id": tag_id, "color": format!("#{n:06x}")}));
    }
    assert_eq!(published().last().map(|(p, _)| seq(p)), Some(to));
}

/// Resume from every position up to `head`: each gets exactly the events after it, in order,
/// up to the head, or a reset. Returns the oldest position that resumed. (The log is asked
/// directly, not through `call`: a sweep reads millions of events, and the text round trip
/// would triple its time.)
fn every_resume_is_gap_free_or_reset(epoch: &str, head: i64) -> i64 {
    let mut oldest = None;
    for after in 0..=head {
        let r = crate::event_log::events_after(&format!("{epoch}:{after}")).expect("eventsAfter");
        if r["reset"].is_string() {
            continue;
        }
        let seqs: Vec<i64> = r["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                let rest = e.as_str().and_then(|e| e.strip_prefix(r#"{"position":""#)).expect("positioned event");
                seq(rest.split_once('"').expect("position").0)
            })
            .collect();
        assert_eq!(seqs, (after + 1..=head).collect::<Vec<_>>(), "a resume from {after}");
        oldest.get_or_insert(after);
    }
    oldest.expect("the head itself resumes")
}

/// The issue's log: events 1..=1,500 written with `--event-retention` 1,000 (a day old at most).
fn a_log_of_1_500_events_in_1_000_slots() -> (String, String) {
    crate::host::settings::set_event_retention(1_000, 86_400_000);
    let (tag_id, epoch) = tag_for_the_log();
    log_events(&tag_id, 2, 1_500);
    (tag_id, epoch)
}

#[test]
fn raising_the_retention_keeps_every_resume_gap_free_or_reset() {
    let (tag_id, epoch) = a_log_of_1_500_events_in_1_000_slots();
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 1_500), 500);
    crate::host::settings::set_event_retention(2_000, 86_400_000);
    // Past 2,000 the new ring wraps: seq 2,000 lands where the old ring put 1,000.
    log_events(&tag_id, 1_500, 2_003);
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 2_003), 500, "the kept events stay resumable");
    log_events(&tag_id, 2_003, 2_600);
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 2_600), 600);
    crate::host::settings::set_event_retention(1000, 86_400_000);
}

#[test]
fn lowering_the_retention_keeps_every_resume_gap_free_or_reset() {
    let (tag_id, epoch) = a_log_of_1_500_events_in_1_000_slots();
    crate::host::settings::set_event_retention(700, 86_400_000);
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 1_500), 800, "the newest 700 are kept");
    // Seq 1,501 lands in slot 101 of the new ring, where the old one put 1,101.
    log_events(&tag_id, 1_500, 1_510);
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 1_510), 810);
    crate::host::settings::set_event_retention(1000, 86_400_000);
}

#[test]
fn the_age_bound_drops_a_prefix_of_the_log_even_when_the_clock_went_back() {
    let (tag_id, epoch) = tag_for_the_log();
    log_events(&tag_id, 2, 10);
    // Event 6 was written while the clock read far in the past: dropping it alone would leave
    // a gap between 5 and 7; everything up to it goes instead.
    crate::host::sql::execute("UPDATE event_ring SET at = 0 WHERE seq = 6", &[]).unwrap();
    assert_eq!(every_resume_is_gap_free_or_reset(&epoch, 10), 6);
}

#[test]
fn positions_of_another_epoch_or_none_at_all_reset() {
    tag("a");
    let (position, _) = published().remove(0);
    let (epoch, n) = position.split_once(':').expect("epoch:seq");
    let other_epoch = if epoch.starts_with('0') { epoch.replacen('0', "1", 1) } else { format!("0{}", &epoch[1..]) };
    assert_eq!(events_after(&format!("{other_epoch}:{n}")), Err("the event log was reset since that position".into()));
    assert_eq!(events_after("not a position"), Err("not a position of this channel".into()));
    assert_eq!(events_after(&format!("{epoch}:99")), Err("that position is ahead of the event log".into()));
    let r = ok("eventsAfter", json!({ "after": "nonsense" }));
    assert!(r["head"].as_str().expect("head").starts_with(epoch));
}

// Idempotency keys (`clientMutationId`).

/// How many keys the library holds.
fn keys_kept() -> i64 {
    crate::db::query_int("SELECT COUNT(*) FROM mutation_key", &[]).expect("count")
}

#[test]
fn a_mutation_sent_again_with_its_key_runs_once_and_answers_alike() {
    let input = json!({"url": "https://example.com/k", "title": "keyed", "clientMutationId": "key-1"});
    let first = ok("createStory", input.clone());
    assert_eq!(types(&events()), ["story:create", "library:change"]);
    assert_eq!(ok("createStory", input.clone()), first, "the retry gets the first answer");
    assert!(events().is_empty(), "the retry publishes nothing");
    assert_eq!(ok("counts", json!({}))["totalStories"], 1);

    let other = ok("createStory", json!({"url": "https://example.com/k", "title": "keyed", "clientMutationId": "key-2"}));
    assert_ne!(other["story"]["id"], first["story"]["id"], "another key is another story");
    assert_eq!(types(&events()), ["story:create", "library:change"]);
    assert_eq!(ok("counts", json!({}))["totalStories"], 2);
    assert_eq!(ok("createStory", input), first, "the first key still answers");
    assert!(events().is_empty());
}

#[test]
fn a_key_past_its_window_runs_again() {
    let input = json!({"name": "old", "color": "#000", "clientMutationId": "key-1"});
    let first = ok("createTag", input.clone());
    events();
    let day = crate::idempotency::KEEP_MS;
    crate::host::sql::execute("UPDATE mutation_key SET at = at - ?", &[crate::db::int(day)]).unwrap();
    let again = ok("createTag", input.clone());
    assert_eq!(again["error"]["code"], "TAG_NAME_EXISTS", "it ran: the name is taken by the first");
    assert!(events().is_empty());
    assert_eq!(keys_kept(), 1, "the expired key was replaced");
    assert_eq!(ok("createTag", input), again, "and the new result is kept");
    assert_ne!(again, first);
}

#[test]
fn a_key_used_by_another_mutation_fails_the_call() {
    let s = story("s", &[]);
    ok("deleteStory", json!({"id": s, "clientMutationId": "key-1"}));
    events();
    let err = call("createTag", json!({"name": "t", "color": "#000", "clientMutationId": "key-1"})).expect_err("reused");
    assert!(err.contains("was used by deleteStory") && err.contains("createTag needs a key of its own"), "{err}");
    assert!(events().is_empty());
    assert_eq!(ok("counts", json!({}))["totalTags"], 0);
    let bad = call("createTag", json!({"name": "t", "color": "#000", "clientMutationId": ""})).expect_err("empty");
    assert_eq!(bad, "clientMutationId must be 1 to 128 characters (got 0)");
    assert_eq!(ok("counts", json!({}))["totalTags"], 0);
}

#[test]
fn a_delete_retried_with_its_key_answers_as_the_first_time() {
    let s = story("s", &[]);
    events();
    let input = json!({"id": s, "clientMutationId": "delete-1"});
    assert_eq!(ok("deleteStory", input.clone()), json!({"deletedStoryId": s}));
    assert_eq!(types(&events()), ["story:delete", "library:change"]);
    assert_eq!(ok("deleteStory", input), json!({"deletedStoryId": s}), "not STORY_NOT_FOUND");
    assert!(events().is_empty());
    assert_eq!(ok("deleteStory", json!({"id": s}))["error"]["code"], "STORY_NOT_FOUND", "without the key it runs");
}

#[test]
fn a_call_that_fails_remembers_no_key() {
    let bad = json!({"url": "not a url", "title": "t", "clientMutationId": "key-1"});
    assert!(call("createStory", bad).is_err());
    assert_eq!(keys_kept(), 0);
    let fixed = ok("createStory", json!({"url": "https://example.com", "title": "t", "clientMutationId": "key-1"}));
    assert_eq!(fixed["story"]["title"], "t", "the retry with the key runs");
    assert_eq!(types(&events()), ["story:create", "library:change"]);
}

#[test]
fn reads_ignore_a_key() {
    ok("counts", json!({"clientMutationId": "read-1"}));
    ok("stories", json!({"clientMutationId": ""}));
    assert_eq!(keys_kept(), 0);
}

#[test]
fn the_newest_keys_are_kept_and_the_oldest_pruned() {
    use crate::idempotency::MAX_KEYS;
    let (sql, db) = (crate::host::sql::execute, crate::db::int);
    ok("counts", json!({}));
    let now = crate::time::now_ms();
    // MAX_KEYS + 10 keys, a millisecond apart, the newest a minute old.
    sql(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
         INSERT INTO mutation_key (key, method, result, at) SELECT 'old-' || i, 'createTag', '{}', ?2 + i FROM n",
        &[db(MAX_KEYS + 10), db(now - 60_000 - MAX_KEYS - 10)],
    )
    .unwrap();
    ok("createTag", json!({"name": "t", "color": "#000", "clientMutationId": "new"}));
    assert_eq!(keys_kept(), MAX_KEYS);
    let oldest = crate::db::query_row("SELECT key FROM mutation_key ORDER BY at LIMIT 1", &[]).unwrap().unwrap();
    assert_eq!(oldest.text(0).unwrap(), "old-11", "the newest MAX_KEYS - 1 old keys and the new one");
    // A day later every old key is past the window, and goes with the next key.
    sql("UPDATE mutation_key SET at = at - ?", &[db(crate::idempotency::KEEP_MS)]).unwrap();
    ok("createTag", json!({"name": "u", "color": "#000", "clientMutationId": "newer"}));
    assert_eq!(keys_kept(), 1);
}
