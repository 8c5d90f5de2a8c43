//! Idempotency keys: a mutation sent again with the same `clientMutationId` is answered from
//! the first one's result instead of running again, so a client may retry a mutation whose
//! outcome it does not know (a lost answer, `OUTCOME_UNKNOWN`) without applying it twice.
//!
//! This module owns the `mutation_key` table (migration 5) and the rules:
//! - Only the mutations in [`KEYED_METHODS`] take a key; a key is a string of 1 to
//!   [`MAX_KEY_CHARS`] characters (anything else fails the call).
//! - A key is remembered in the call's transaction, with the method and the result text, so
//!   it is stored if and only if the mutation committed (a call that fails remembers nothing).
//!   In a cluster the row is written with the call's log entry, so the node that takes the
//!   user over answers a retry from it.
//! - A key used within [`KEEP_MS`] for the same method answers with the stored result: nothing
//!   is written and no event published. For another method it fails the call. An older key
//!   counts as unused: the mutation runs again.
//! - Each remembered key first prunes the table: keys older than [`KEEP_MS`], and the oldest
//!   past the newest [`MAX_KEYS`] of the library, so the table stays bounded however fast a
//!   client sends keys.
//!
//! [`decide`] is the rule, without I/O; [`before`] and [`remember`] read and write the table.

use crate::args::{self, Args};
use crate::db;

/// How long a key is kept: a retry within a day of the first attempt is answered from it.
pub const KEEP_MS: i64 = 24 * 60 * 60 * 1000;
/// The most keys one library keeps (the newest; a few more when several share a millisecond).
pub const MAX_KEYS: i64 = 1000;
/// The longest key, in characters (a UUID is 36).
pub const MAX_KEY_CHARS: usize = 128;
/// The methods that take a key: the ones that change the library.
pub const KEYED_METHODS: &[&str] =
    &["createStory", "updateStory", "deleteStory", "createTag", "updateTag", "deleteTag", "tagStory", "untagStory"];

/// Migration 5: the keys, each with the method that used it, its result and when (Unix ms).
pub const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS mutation_key (
        key TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        result TEXT NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS mutation_key_by_age ON mutation_key (at)",
];

/// A call's idempotency key and the method it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<'a> {
    pub key: &'a str,
    pub method: &'a str,
}

/// What is stored under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    pub method: String,
    pub result: String,
    pub at: i64,
}

/// What a keyed call does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run the mutation, then [`remember`] its result.
    Run,
    /// Answer with this result (the first attempt's) and run nothing.
    Answer(String),
}

/// The key `args` carry for `method`, if it takes one and they do.
pub fn key_of<'a>(method: &'a str, args: &'a Args) -> Result<Option<Key<'a>>, String> {
    if !KEYED_METHODS.contains(&method) {
        return Ok(None);
    }
    let Some(key) = args::opt_string(args, "clientMutationId")? else {
        return Ok(None);
    };
    let chars = key.chars().count();
    if !(1..=MAX_KEY_CHARS).contains(&chars) {
        return Err(format!("clientMutationId must be 1 to {MAX_KEY_CHARS} characters (got {chars})"));
    }
    Ok(Some(Key { key, method }))
}

/// Whether a key used at `at` is past its window at `now_ms`.
fn expired(at: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(at) >= KEEP_MS
}

/// The rule: what a call with `key` does, given what is stored under it.
pub fn decide(key: Key<'_>, used: Option<Used>, now_ms: i64) -> Result<Step, String> {
    match used {
        Some(used) if !expired(used.at, now_ms) => {
            if used.method == key.method {
                Ok(Step::Answer(used.result))
            } else {
                Err(format!(
                    "clientMutationId {:?} was used by {} in the last 24 hours; {} needs a key of its own",
                    key.key, used.method, key.method
                ))
            }
        }
        _ => Ok(Step::Run),
    }
}

/// Look `key` up and decide.
pub fn before(key: Key<'_>, now_ms: i64) -> Result<Step, String> {
    let row = db::query_row("SELECT method, result, at FROM mutation_key WHERE key = ?", &[db::text(key.key)])?;
    let used = row.map(|row| Ok::<_, String>(Used { method: row.text(0)?, result: row.text(1)?, at: row.int(2)? })).transpose()?;
    decide(key, used, now_ms)
}

/// Remember `result` under `key` (after pruning the table, so a full one makes room first).
pub fn remember(key: Key<'_>, result: &str, now_ms: i64) -> Result<(), String> {
    // Older than the window, or older than the newest MAX_KEYS - 1 (this key makes MAX_KEYS).
    db::execute(
        "DELETE FROM mutation_key WHERE at < max(?1,
            coalesce((SELECT at FROM mutation_key ORDER BY at DESC LIMIT 1 OFFSET ?2), ?1))",
        &[db::int(now_ms.saturating_sub(KEEP_MS).saturating_add(1)), db::int(MAX_KEYS - 2)],
    )?;
    db::execute(
        "INSERT OR REPLACE INTO mutation_key (key, method, result, at) VALUES (?, ?, ?, ?)",
        &[db::text(key.key), db::text(key.method), db::text(result), db::int(now_ms)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_700_476_123;

    fn key(method: &str) -> Key<'_> {
        Key { key: "k-1", method }
    }

    fn used(method: &str, at: i64) -> Option<Used> {
        Some(Used { method: method.to_owned(), result: r#"{"story":1}"#.to_owned(), at })
    }

    #[test]
    fn an_unused_key_runs() {
        assert_eq!(decide(key("createStory"), None, NOW), Ok(Step::Run));
    }

    #[test]
    fn a_key_within_the_window_answers_with_its_result() {
        let answer = Ok(Step::Answer(r#"{"story":1}"#.to_owned()));
        assert_eq!(decide(key("createStory"), used("createStory", NOW), NOW), answer);
        assert_eq!(decide(key("createStory"), used("createStory", NOW - KEEP_MS + 1), NOW), answer);
        // A clock that went back does not expire a key.
        assert_eq!(decide(key("createStory"), used("createStory", NOW + 60_000), NOW), answer);
    }

    #[test]
    fn a_key_past_the_window_runs_again() {
        assert_eq!(decide(key("createStory"), used("createStory", NOW - KEEP_MS), NOW), Ok(Step::Run));
        assert_eq!(decide(key("createStory"), used("deleteTag", NOW - KEEP_MS), NOW), Ok(Step::Run));
    }

    #[test]
    fn a_key_of_another_method_is_an_error() {
        let err = decide(key("createTag"), used("createStory", NOW), NOW).expect_err("another method");
        assert_eq!(err, r#"clientMutationId "k-1" was used by createStory in the last 24 hours; createTag needs a key of its own"#);
    }

    #[test]
    fn keys_are_read_from_mutations_only_and_checked() {
        let args = args::parse(r#"{"clientMutationId":"abc"}"#).unwrap();
        assert_eq!(key_of("createStory", &args), Ok(Some(Key { key: "abc", method: "createStory" })));
        assert_eq!(key_of("stories", &args), Ok(None), "reads take no key");
        assert_eq!(key_of("createStory", &args::parse(r#"{"clientMutationId":null}"#).unwrap()), Ok(None));
        assert_eq!(key_of("createStory", &Args::new()), Ok(None));
        let longest = format!(r#"{{"clientMutationId":"{}"}}"#, "é".repeat(MAX_KEY_CHARS));
        assert!(key_of("deleteTag", &args::parse(&longest).unwrap()).expect("128 characters").is_some());
        for (bad, message) in [
            (r#"{"clientMutationId":""}"#.to_owned(), "clientMutationId must be 1 to 128 characters (got 0)"),
            (format!(r#"{{"clientMutationId":"{}"}}"#, "x".repeat(129)), "clientMutationId must be 1 to 128 characters (got 129)"),
            (r#"{"clientMutationId":7}"#.to_owned(), "field `clientMutationId` must be a string"),
        ] {
            assert_eq!(key_of("createTag", &args::parse(&bad).unwrap()), Err(message.to_owned()));
        }
    }
}
