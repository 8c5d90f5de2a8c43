//! What one document may ask for, and the cheap guards run before and after parsing.
//!
//! The parser recurses once per nesting level of `{`, `[` and `(`; a hostile document nested
//! thousands deep would overflow the guest stack, which is a trap that fails the whole call.
//! This lexical scan (aware of strings, block strings and comments) refuses such documents
//! with an ordinary GraphQL error first. Once parsed, a document with too many aliases is
//! refused ([`check_aliases`]); depth and complexity are enforced by the schema
//! ([`QueryLimits`], set by the host's `settings.graphql-limits`).

use std::sync::OnceLock;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The host's limits on a document (`--graphql-max-depth`, `--graphql-max-complexity`,
/// `--graphql-max-aliases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
}

impl Default for QueryLimits {
    /// The host's defaults: what the native tests run with.
    fn default() -> Self {
        Self { max_depth: 16, max_complexity: 2000, max_aliases: 64 }
    }
}

static CONFIGURED: OnceLock<QueryLimits> = OnceLock::new();

/// Set this instance's limits, once (later calls change nothing); `read` runs only the first
/// time.
pub fn configure(read: impl FnOnce() -> QueryLimits) {
    CONFIGURED.get_or_init(read);
}

/// This instance's limits (the defaults until configured).
pub fn current() -> QueryLimits {
    CONFIGURED.get().copied().unwrap_or_default()
}

/// `Err(message)` when the document has more aliased fields than `max` (counted as
/// written: operations and fragments once each; fragments spread many times are bounded by
/// the complexity limit).
pub fn check_aliases(document: &ExecutableDocument, max: usize) -> Result<(), String> {
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => usize::from(field.node.alias.is_some()) + count(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => count(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document.operations.iter().map(|(_, op)| count(&op.node.selection_set.node)).sum();
    let fragments: usize = document.fragments.values().map(|f| count(&f.node.selection_set.node)).sum();
    let aliases = operations + fragments;
    if aliases > max {
        return Err(format!("Query has too many aliases ({aliases}; at most {max})."));
    }
    Ok(())
}

/// The deepest nesting of brackets a document may have.
pub const MAX_NESTING: usize = 64;

/// The largest document, in bytes.
pub const MAX_QUERY_BYTES: usize = 256 * 1024;

/// `Err(message)` when `query` is too large or nested too deep to parse safely.
pub fn check_document(query: &str) -> Result<(), String> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "Query is too large ({} bytes; at most {MAX_QUERY_BYTES}).",
            query.len()
        ));
    }
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                loop {
                    if i >= bytes.len() {
                        return Ok(()); // unterminated: the parser reports it
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 2;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                loop {
                    if i >= bytes.len() {
                        return Ok(());
                    }
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        b'\n' | b'\r' => break, // unterminated string: the parser reports it
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "Query is nested too deeply (more than {MAX_NESTING} levels)."
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}
