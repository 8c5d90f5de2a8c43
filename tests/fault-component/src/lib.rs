//! A `library-component` for fault tests: `createStory` with the title `trap` panics, `loop`
//! spins forever, `bomb` allocates without end, `slow` is busy for 200 ms and then goes on,
//! `sql:<statement>` runs that statement after inserting the story (and fails the call with
//! its error); any other title creates a story (in a
//! table of its own) and publishes `story:create` and `library:change` like the real one.

wit_bindgen::generate!({ path: "../../wit", world: "library-component" });

use exports::realtime::host::library::Guest;
use realtime::host::{channel, sql};
use serde_json::{json, Value};

struct Faulty;

fn run(statement: &str, params: Vec<sql::Value>) -> Result<sql::ExecResult, String> {
    sql::execute(statement, &params)
}

fn count() -> Result<i64, String> {
    let rows = sql::query("SELECT count(*) FROM story", &[])?;
    match rows.rows.first().and_then(|r| r.first()) {
        Some(sql::Value::Integer(n)) => Ok(*n),
        _ => Err("no count".into()),
    }
}

fn create_story(args: &Value) -> Result<String, String> {
    let title = args["title"].as_str().ok_or("title is required")?.to_string();
    let url = args["url"].as_str().ok_or("url is required")?.to_string();
    match title.as_str() {
        "trap" => panic!("asked to trap"),
        "loop" => loop {
            std::hint::black_box(());
        },
        "slow" => {
            // Busy for about 200 ms (under the fault tests' CPU limit), then carry on.
            let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
            while std::time::Instant::now() < until {
                std::hint::black_box(());
            }
        }
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
            }
        }
        _ => {}
    }
    run("CREATE TABLE IF NOT EXISTS story (id INTEGER PRIMARY KEY, url TEXT, title TEXT)", vec![])?;
    let id = run("INSERT INTO story (url, title) VALUES (?1, ?2)", vec![sql::Value::Text(url.clone()), sql::Value::Text(title.clone())])?.last_insert_rowid;
    if let Some(statement) = title.strip_prefix("sql:") {
        run(statement, vec![])?;
    }
    let story = json!({
        "id": format!("faulty-{id}"), "url": url, "title": title, "description": null,
        "createdAt": "2026-01-01T00:00:00.000Z",
    });
    channel::publish("library", &json!({"type": "story:create", "story": story}).to_string());
    channel::publish("library", &json!({"type": "library:change", "totalStories": count()?, "totalTags": 0}).to_string());
    let mut with_tags = story;
    with_tags["tags"] = json!([]);
    Ok(json!({"story": with_tags, "cursor": format!("c{id}")}).to_string())
}

impl Guest for Faulty {
    fn call(method: String, args: String) -> Result<String, String> {
        let args: Value = serde_json::from_str(&args).map_err(|e| e.to_string())?;
        match method.as_str() {
            "createStory" => create_story(&args),
            other => Err(format!("the faulty library has no method {other}")),
        }
    }
}

export!(Faulty);
