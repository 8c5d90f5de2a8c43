//! Relay-style connections over stories, newest first: page arguments
//! (`first` default 20, clamped to 0..=100; opaque `after` cursor) and the
//! `Connection` JSON built from one over-fetched page.

use crate::args::{self, Args};
use crate::ids;
use crate::model::Story;
use serde::Serialize;

pub const DEFAULT_FIRST: i64 = 20;
pub const MAX_FIRST: i64 = 100;

/// Which page to read: at most `first` stories with ids below `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub first: usize,
    /// The story id the `after` cursor points at, if any.
    pub after: Option<i64>,
}

impl Page {
    /// `first` / `after` from RPC args; a cursor not made by this component is `Err`.
    pub fn from_args(args: &Args) -> Result<Page, String> {
        let first = args::opt_int(args, "first")?.unwrap_or(DEFAULT_FIRST).clamp(0, MAX_FIRST);
        let after = args::opt_string(args, "after")?.map(ids::decode_cursor).transpose()?;
        Ok(Page { first: usize::try_from(first).unwrap_or(0), after })
    }

    /// How many rows to fetch: one more than the page, to learn `hasNextPage`.
    pub fn fetch_limit(&self) -> i64 {
        i64::try_from(self.first).unwrap_or(MAX_FIRST) + 1
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub edges: Vec<Edge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
pub struct Edge {
    pub cursor: String,
    pub node: Story,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// The connection for `fetched` (up to `page.first + 1` stories, newest first).
pub fn build(mut fetched: Vec<Story>, page: &Page, has_previous_page: bool, total_count: i64) -> Connection {
    let has_next_page = fetched.len() > page.first;
    fetched.truncate(page.first);
    let edges: Vec<Edge> = fetched
        .into_iter()
        .map(|node| Edge { cursor: ids::encode_cursor(node.payload.id), node })
        .collect();
    let page_info = PageInfo {
        has_next_page,
        has_previous_page,
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Connection { edges, page_info, total_count }
}

/// The connection of an empty set.
pub fn empty() -> Connection {
    Connection { edges: Vec::new(), page_info: PageInfo::default(), total_count: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StoryPayload;

    fn page(text: &str) -> Result<Page, String> {
        Page::from_args(&args::parse(text)?)
    }

    fn story(id: i64) -> Story {
        let payload = StoryPayload {
            id,
            url: "https://a.example".into(),
            title: format!("s{id}"),
            description: None,
            created_at: "t".into(),
        };
        Story { payload, tags: Vec::new() }
    }

    #[test]
    fn first_defaults_and_clamps() {
        assert_eq!(page("{}"), Ok(Page { first: 20, after: None }));
        assert_eq!(page(r#"{"first":null}"#).map(|p| p.first), Ok(20));
        assert_eq!(page(r#"{"first":-5}"#).map(|p| p.first), Ok(0));
        assert_eq!(page(r#"{"first":1000}"#).map(|p| p.first), Ok(100));
        assert_eq!(page(r#"{"first":1000}"#).map(|p| p.fetch_limit()), Ok(101));
    }

    #[test]
    fn after_must_be_our_cursor() {
        let c = ids::encode_cursor(9);
        assert_eq!(page(&format!(r#"{{"after":"{c}"}}"#)).map(|p| p.after), Ok(Some(9)));
        assert_eq!(page(r#"{"after":null}"#).map(|p| p.after), Ok(None));
        assert!(page(r#"{"after":"garbage"}"#).is_err());
        assert!(page(r#"{"after":""}"#).is_err());
    }

    #[test]
    fn build_detects_next_page_and_cursors() {
        let p = Page { first: 2, after: None };
        let c = build(vec![story(5), story(4), story(3)], &p, false, 9);
        assert_eq!(c.edges.len(), 2);
        assert!(c.page_info.has_next_page);
        assert_eq!(c.page_info.start_cursor, Some(ids::encode_cursor(5)));
        assert_eq!(c.page_info.end_cursor, Some(ids::encode_cursor(4)));
        assert_eq!(c.total_count, 9);

        let last = build(vec![story(3)], &p, true, 9);
        assert!(!last.page_info.has_next_page);
        assert!(last.page_info.has_previous_page);
    }

    #[test]
    fn empty_page_has_no_cursors() {
        let c = build(vec![story(1)], &Page { first: 0, after: None }, false, 1);
        assert!(c.edges.is_empty());
        assert!(c.page_info.has_next_page);
        assert_eq!(c.page_info.start_cursor, None);
        let json = serde_json::to_value(empty()).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"edges": [], "pageInfo": {"hasNextPage": false,
                "hasPreviousPage": false, "startCursor": null, "endCursor": null}, "totalCount": 0})
        );
    }
}
