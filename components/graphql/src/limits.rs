//! What one document may ask for, and the cheap guards run before and after parsing.
//!
//! The parser recurses once per nesting level of `{`, `[` and `(`; a hostile document nested
//! thousands deep would overflow the guest stack, which is a trap that fails the whole call.
//! This lexical scan (aware of strings, block strings and comments) refuses such documents
//! with an ordinary GraphQL error first. Once parsed, a document with too many aliases
//! ([`check_aliases`]) or one whose response could hold too many fields
//! ([`check_response_fields`]) is refused; depth and complexity are enforced by the schema
//! ([`QueryLimits`], set by the host's `settings.graphql-limits`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The most fields one operation's response may hold (counted by [`check_response_fields`]),
/// the host's default (`--graphql-max-response-fields`). The web app's largest document
/// selects about 40; an event's frame under this limit holds at most 500 copies of a field
/// (the host's `--max-outgoing-frame-bytes` bounds the frame itself).
pub const DEFAULT_MAX_RESPONSE_FIELDS: usize = 500;

/// The host's limits on a document (`--graphql-max-depth`, `--graphql-max-complexity`,
/// `--graphql-max-aliases`, `--graphql-max-response-fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_response_fields: usize,
}

impl Default for QueryLimits {
    /// The host's defaults: what the native tests run with.
    fn default() -> Self {
        Self { max_depth: 16, max_complexity: 2000, max_aliases: 64, max_response_fields: DEFAULT_MAX_RESPONSE_FIELDS }
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
/// [`check_response_fields`]).
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

/// `Err(message)` when an operation of the document could answer with more than `max` fields:
/// its fields counted with every fragment spread and inline fragment expanded where it is
/// used, so aliases multiply through fragments (`a: story { ...F } b: story { ...F }` counts
/// `F`'s fields twice). Nothing is left out: fields under type conditions that cannot both
/// apply, and fields that would merge into one response key, each count, so the count bounds
/// the response from above. Every operation of the document is checked (one of them runs).
///
/// Runs before validation, so on a document that may spread fragments in a cycle, or double
/// its size with each of a chain of fragments: each fragment's count is worked out once (a
/// spread adds it; a spread back into a fragment still being counted adds nothing, and such
/// a document fails validation anyway), the sums saturate, and fragments are followed with a
/// stack of their own rather than by recursion, so a long chain cannot exhaust the guest's.
pub fn check_response_fields(document: &ExecutableDocument, max: usize) -> Result<(), String> {
    let per_fragment = fragment_field_counts(document);
    for (_, operation) in document.operations.iter() {
        let fields = field_count(&Written::of(&operation.node.selection_set.node), &per_fragment);
        if fields > max {
            return Err(format!(
                "Query has too many response fields ({} with fragments expanded; at most {max}).",
                if fields == usize::MAX { format!("more than {max}") } else { fields.to_string() }
            ));
        }
    }
    Ok(())
}

/// One selection set as written: its fields (at any depth, inline fragments included) and
/// the fragments it spreads (at any depth, once per spread).
#[derive(Default)]
struct Written<'a> {
    fields: usize,
    spreads: Vec<&'a str>,
}

impl<'a> Written<'a> {
    fn of(set: &'a SelectionSet) -> Self {
        let mut written = Written::default();
        written.add(set);
        written
    }

    /// Recursion as deep as the document's brackets ([`MAX_NESTING`] at most).
    fn add(&mut self, set: &'a SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    self.fields += 1;
                    self.add(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => self.add(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.spreads.push(spread.node.fragment_name.node.as_str()),
            }
        }
    }
}

/// `written`'s fields with the fragments it spreads expanded, given each fragment's count
/// (an unknown fragment adds nothing), saturating.
fn field_count(written: &Written, per_fragment: &HashMap<&str, usize>) -> usize {
    written.spreads.iter().fold(written.fields, |sum, name| sum.saturating_add(per_fragment.get(name).copied().unwrap_or(0)))
}

/// Each fragment's field count with its spreads expanded, fragments it depends on first (a
/// depth-first walk with an explicit stack).
fn fragment_field_counts(document: &ExecutableDocument) -> HashMap<&str, usize> {
    let written: HashMap<&str, Written> =
        document.fragments.iter().map(|(name, f)| (name.as_str(), Written::of(&f.node.selection_set.node))).collect();
    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(written.len());
    let mut on_stack: HashSet<&str> = HashSet::new();
    for &start in written.keys() {
        if counts.contains_key(start) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        on_stack.insert(start);
        while let Some((name, next)) = stack.last_mut() {
            let fragment = &written[*name];
            if let Some(&spread) = fragment.spreads.get(*next) {
                *next += 1;
                if written.contains_key(spread) && !counts.contains_key(spread) && on_stack.insert(spread) {
                    stack.push((spread, 0));
                }
            } else {
                counts.insert(*name, field_count(fragment, &counts));
                on_stack.remove(*name);
                stack.pop();
            }
        }
    }
    counts
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// [`check_response_fields`] on `query`.
    fn fields_within(query: &str, max: usize) -> Result<(), String> {
        check_response_fields(&parse_query(query).expect("parses"), max)
    }

    #[test]
    fn every_field_counts_with_fragments_expanded_where_spread() {
        // me, id, email, library, 2 x (tags + 3 in T), __typename: 13.
        let query = "{ me { id ... on User { email } library { a: tags { ...T } b: tags { ...T } } } __typename }
                     fragment T on Tag { id name color }";
        assert_eq!(fields_within(query, 13), Ok(()));
        assert_eq!(
            fields_within(query, 12),
            Err("Query has too many response fields (13 with fragments expanded; at most 12).".into())
        );
    }

    #[test]
    fn aliases_multiply_through_nested_fragments() {
        // 4 x (story + 4 x (4 x title)) with a fragment inside a fragment: 4 + 64.
        let four = |what: &str| (0..4).map(|i| format!("a{i}: {what}")).collect::<Vec<_>>().join(" ");
        let query = format!(
            "{{ {} }} fragment F on StoryPayload {{ {} }} fragment G on StoryPayload {{ {} }}",
            four("story { ...F }"),
            (0..4).map(|_| "...G").collect::<Vec<_>>().join(" "),
            four("title")
        );
        assert_eq!(fields_within(&query, 68), Ok(()));
        assert!(fields_within(&query, 67).unwrap_err().contains("(68 with"));
    }

    #[test]
    fn each_operation_is_counted_on_its_own() {
        let query = "query A { me { id email } } query B { me { id } } fragment Unused on User { id email name }";
        assert_eq!(fields_within(query, 3), Ok(()));
        assert!(fields_within(query, 2).is_err());
    }

    #[test]
    fn a_fragment_cycle_ends() {
        let query = "{ ...A } fragment A on Query { me { id } ...B } fragment B on Query { __typename ...A ...B }";
        assert_eq!(fields_within(query, 3), Ok(()));
        assert_eq!(fields_within("{ ...Missing }", 0), Ok(()));
    }

    #[test]
    fn a_chain_of_doubling_fragments_saturates_at_once() {
        // F0 spreads F1 twice, ..., F99 selects one field: 2^100 fields.
        let mut query = String::from("{ ...F0 }");
        for i in 0..100 {
            query.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        query.push_str(" fragment F100 on Query { __typename }");
        assert_eq!(
            fields_within(&query, 500),
            Err("Query has too many response fields (more than 500 with fragments expanded; at most 500).".into())
        );
    }

    #[test]
    fn a_long_chain_of_fragments_does_not_recurse() {
        // About as long as a document may be (`MAX_QUERY_BYTES`): 5,000 fragments deep.
        let mut query = String::from("{ ...F0 }");
        for i in 0..5_000 {
            query.push_str(&format!(" fragment F{i} on Query {{ __typename ...F{} }}", i + 1));
        }
        query.push_str(" fragment F5000 on Query { __typename }");
        assert!(query.len() <= MAX_QUERY_BYTES);
        assert_eq!(fields_within(&query, 5_001), Ok(()));
        assert!(fields_within(&query, 5_000).is_err());
    }
}
