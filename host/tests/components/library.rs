//! The built `library.wasm` under wasmtime: CRUD, rules and the exact events of each mutation.

use realtime_host::runtime::bindings::library::LibraryComponent;
use serde_json::{json, Value};
use wasmtime::Store;

use crate::fake::{self, Fake};

struct Library {
    store: Store<Fake>,
    component: LibraryComponent,
}

impl Library {
    async fn new() -> Self {
        let engine = fake::engine();
        let component = fake::component(&engine, "library");
        let mut store = fake::store(&engine, Fake::default());
        let component = LibraryComponent::instantiate_async(&mut store, &component, &fake::linker(&engine)).await.unwrap();
        Self { store, component }
    }

    async fn call(&mut self, method: &str, args: Value) -> Result<Value, String> {
        self.store.data_mut().published.clear();
        let answer = self.component.realtime_host_library().call_call(&mut self.store, method, &args.to_string()).await.unwrap();
        answer.map(|text| serde_json::from_str(&text).unwrap())
    }

    /// The events of the last call, without their log positions.
    fn events(&self) -> Vec<Value> {
        self.positioned().into_iter().map(|(_, event)| event).collect()
    }

    /// The events of the last call and their positions in the log.
    fn positioned(&self) -> Vec<(String, Value)> {
        self.store.data().published.iter().map(|(channel, event)| {
            assert_eq!(channel, "library");
            let mut event = event.clone();
            let position = event.as_object_mut().unwrap().remove("position").expect("every event has its position");
            (position.as_str().unwrap().to_owned(), event)
        }).collect()
    }

    fn event_types(&self) -> Vec<String> {
        self.events().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
    }
}

#[tokio::test]
async fn create_update_delete_publish_exact_events() {
    let mut lib = Library::new().await;
    let tag = lib.call("createTag", json!({"name": "rust", "color": "#f00"})).await.unwrap()["tag"].clone();
    assert_eq!(tag["name"], "rust");
    assert_eq!(lib.events(), vec![
        json!({"type": "tag:create", "tag": tag.clone()}),
        json!({"type": "library:change", "totalStories": 0, "totalTags": 1}),
    ]);

    let created = lib.call("createStory", json!({"url": "https://example.com", "title": "T", "tagIds": [tag["id"]]})).await.unwrap();
    let story = created["story"].clone();
    assert!(created["cursor"].is_string());
    assert_eq!(story["tags"], json!([tag.clone()]));
    assert_eq!(story["description"], Value::Null);
    assert_eq!(lib.event_types(), ["story:create", "story:tag", "library:change"]);
    assert_eq!(lib.events()[0]["story"], json!({
        "id": story["id"], "url": "https://example.com", "title": "T", "description": null, "createdAt": story["createdAt"],
    }));
    assert_eq!(lib.events()[1], json!({"type": "story:tag", "storyId": story["id"], "tagIds": [tag["id"]]}));
    assert_eq!(lib.events()[2], json!({"type": "library:change", "totalStories": 1, "totalTags": 1}));

    // Nothing changes: nothing published.
    lib.call("updateStory", json!({"id": story["id"], "title": "T"})).await.unwrap();
    assert!(lib.events().is_empty());
    lib.call("tagStory", json!({"storyId": story["id"], "tagIds": [tag["id"]]})).await.unwrap();
    assert!(lib.events().is_empty());

    let other = lib.call("createTag", json!({"name": "web", "color": "#00f"})).await.unwrap()["tag"].clone();
    let updated = lib.call("updateStory", json!({"id": story["id"], "description": "d", "tagIds": [other["id"]]})).await.unwrap();
    assert_eq!(updated["story"]["description"], "d");
    assert_eq!(lib.events(), vec![
        json!({"type": "story:update", "story": {"id": story["id"], "url": "https://example.com", "title": "T", "description": "d", "createdAt": story["createdAt"]}}),
        json!({"type": "story:tag", "storyId": story["id"], "tagIds": [other["id"]]}),
        json!({"type": "story:untag", "storyId": story["id"], "tagIds": [tag["id"]]}),
    ]);

    let deleted = lib.call("deleteTag", json!({"id": other["id"]})).await.unwrap();
    assert_eq!(deleted, json!({"deletedTagId": other["id"]}));
    assert_eq!(lib.event_types(), ["tag:delete", "library:change"]);
    let story_now = lib.call("story", json!({"id": story["id"]})).await.unwrap();
    assert_eq!(story_now["tags"], json!([]), "deleting a tag removes its taggings");

    lib.call("deleteStory", json!({"id": story["id"]})).await.unwrap();
    assert_eq!(lib.events(), vec![
        json!({"type": "story:delete", "deletedStoryId": story["id"]}),
        json!({"type": "library:change", "totalStories": 0, "totalTags": 1}),
    ]);
    assert_eq!(lib.call("counts", json!({})).await.unwrap(), json!({"totalStories": 0, "totalTags": 1}));
}

#[tokio::test]
async fn rules_and_typed_errors() {
    let mut lib = Library::new().await;
    lib.call("createTag", json!({"name": "Rust", "color": "#f00"})).await.unwrap();
    let exists = lib.call("createTag", json!({"name": "rUST", "color": "#0f0"})).await.unwrap();
    assert_eq!(exists["error"]["__typename"], "TagNameExistsError");
    assert_eq!(exists["error"]["code"], "TAG_NAME_EXISTS");
    assert_eq!(exists["error"]["tagName"], "rUST");
    assert!(lib.events().is_empty());
    let invalid = lib.call("createTag", json!({"name": "x".repeat(51), "color": "#000"})).await.unwrap();
    assert_eq!(invalid["error"]["code"], "INVALID_TAG_NAME");
    let empty = lib.call("createTag", json!({"name": "", "color": "#000"})).await.unwrap();
    assert_eq!(empty["error"]["__typename"], "InvalidTagNameError");
    let not_found = lib.call("updateTag", json!({"id": "bm9wZQ==", "name": "x"})).await.unwrap();
    assert_eq!(not_found["error"]["__typename"], "TagNotFoundError");
    assert_eq!(not_found["error"]["tagId"], "bm9wZQ==");
    let missing_story = lib.call("deleteStory", json!({"id": "nope"})).await.unwrap();
    assert_eq!(missing_story["error"]["code"], "STORY_NOT_FOUND");
    assert!(lib.call("createStory", json!({"url": "not a url", "title": "x"})).await.unwrap_err().contains("URL"));
    assert!(lib.call("createStory", json!({"url": "ftp://example.com", "title": "x"})).await.is_err());
    assert!(lib.call("noSuchMethod", json!({})).await.is_err());
    assert!(lib.events().is_empty());
}

#[tokio::test]
async fn connections_page_newest_first_and_cap_first() {
    let mut lib = Library::new().await;
    let tag = lib.call("createTag", json!({"name": "t", "color": "#000"})).await.unwrap()["tag"].clone();
    for i in 0..105 {
        let tags = if i % 2 == 0 { json!([tag["id"]]) } else { json!([]) };
        lib.call("createStory", json!({"url": format!("https://example.com/{i}"), "title": format!("s{i}"), "tagIds": tags})).await.unwrap();
    }
    let page = lib.call("stories", json!({"first": 1000})).await.unwrap();
    assert_eq!(page["edges"].as_array().unwrap().len(), 100, "first is capped at 100");
    assert_eq!(page["totalCount"], 105);
    assert_eq!(page["edges"][0]["node"]["title"], "s104");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = lib.call("stories", json!({"first": 10, "after": page["pageInfo"]["endCursor"]})).await.unwrap();
    let titles: Vec<_> = next["edges"].as_array().unwrap().iter().map(|e| e["node"]["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, ["s4", "s3", "s2", "s1", "s0"]);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let by_tag = lib.call("storiesByTag", json!({"tagName": "T", "first": 2})).await.unwrap();
    assert_eq!(by_tag["totalCount"], 53);
    assert_eq!(by_tag["edges"][0]["node"]["title"], "s104");
    let tag_stories = lib.call("tagStories", json!({"tagId": tag["id"], "first": 1})).await.unwrap();
    assert_eq!(tag_stories["totalCount"], 53);
    let node = lib.call("node", json!({"id": tag["id"]})).await.unwrap();
    assert_eq!(node["type"], "Tag");
}

// The event log, under wasmtime: ordered positions, replay, retention, epoch.

fn seq(position: &str) -> u64 {
    position.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test]
async fn the_event_log_replays_in_order_and_keeps_what_retention_allows() {
    let mut lib = Library::new().await;
    let mut all = Vec::new();
    for i in 0..4 {
        lib.call("createTag", json!({"name": format!("t{i}"), "color": "red"})).await.unwrap();
        all.extend(lib.positioned());
    }
    let seqs: Vec<u64> = all.iter().map(|(p, _)| seq(p)).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>(), "one sequence, no gap");
    let epoch = all[0].0.split_once(':').unwrap().0.to_owned();
    assert!(all.iter().all(|(p, _)| p.starts_with(&epoch)), "one epoch");

    // After position 5: events 6, 7, 8, each as it was published.
    let expected: Vec<Value> = lib.store.data().published.iter().map(|(_, e)| e.clone()).collect();
    let replay = lib.call("eventsAfter", json!({"after": all[4].0})).await.unwrap();
    let replayed: Vec<Value> = replay["events"].as_array().unwrap().iter().map(|e| serde_json::from_str(e.as_str().unwrap()).unwrap()).collect();
    assert_eq!(replayed.len(), 3);
    assert_eq!(replayed[1..], expected[..], "the last call's events, byte for byte");
    assert_eq!(replay["head"], json!(all[7].0));

    // Retention: the newest 3 only; the log's head stays.
    lib.store.data_mut().retention = (3, 86_400_000);
    lib.call("createTag", json!({"name": "t4", "color": "red"})).await.unwrap();
    let reset = lib.call("eventsAfter", json!({"after": all[4].0})).await.unwrap();
    assert_eq!(reset["reset"], "that position is older than the events kept for resuming");
    assert_eq!(reset["head"], json!(format!("{epoch}:10")));
    let kept = lib.call("eventsAfter", json!({"after": format!("{epoch}:7")})).await.unwrap();
    assert_eq!(kept["events"].as_array().unwrap().len(), 3);

    // Another epoch, or no position at all: reset.
    let other = lib.call("eventsAfter", json!({"after": format!("{}:1", "f".repeat(16))})).await.unwrap();
    assert_eq!(other["reset"], "the event log was reset since that position");
    let junk = lib.call("eventsAfter", json!({"after": "x"})).await.unwrap();
    assert_eq!(junk["reset"], "not a position of this channel");
}
