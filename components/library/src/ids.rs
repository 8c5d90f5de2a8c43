//! Opaque identifiers: global ids (`base64("Story:<library>:<n>")`,
//! `base64("Tag:<library>:<n>")`, standard alphabet, padded) and connection cursors
//! (`base64("cursor:<n>")`).
//!
//! `<library>` is this library's namespace: 16 hex digits drawn at random when the library
//! first needs one and kept in its `kv` (see [`ensure_namespace`]), so two users' stories
//! never share an id, while the component still never learns whose library it is. Ids made
//! before namespaces (`base64("Story:<n>")`) still resolve, to this library's row `n`; an
//! id of another library's namespace resolves to nothing.
//!
//! Decoding is strict (canonical base64, canonical positive decimal), so every
//! object has exactly one id string and every position exactly one cursor.

use std::cell::RefCell;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::host::kv;

const NAMESPACE_KEY: &str = "library/id-namespace";

thread_local! {
    /// This instance's library namespace, once read or made.
    static NAMESPACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Read this library's namespace, or make and store one (in the call's transaction, so a
/// call that fails leaves none behind, and made no id with it either).
pub fn ensure_namespace() -> Result<(), String> {
    if NAMESPACE.with(|ns| ns.borrow().is_some()) {
        return Ok(());
    }
    let stored = kv::get(NAMESPACE_KEY).and_then(|bytes| String::from_utf8(bytes).ok()).filter(|ns| is_namespace(ns));
    let namespace = match stored {
        Some(namespace) => namespace,
        None => {
            let namespace = random_hex16("the library's id namespace")?;
            kv::put(NAMESPACE_KEY, namespace.as_bytes());
            namespace
        }
    };
    set_namespace(namespace);
    Ok(())
}

/// 16 random lowercase hex digits (64 bits): an id namespace or a log epoch.
pub fn random_hex16(what: &str) -> Result<String, String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for {what}: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Forget the cached namespace: the call that drew it rolled back, and so did its `kv` write.
pub fn forget_namespace() {
    NAMESPACE.with(|ns| *ns.borrow_mut() = None);
}

/// Use `namespace` for this instance's ids (tests set their own).
pub fn set_namespace(namespace: String) {
    NAMESPACE.with(|ns| *ns.borrow_mut() = Some(namespace));
}

fn namespace() -> String {
    NAMESPACE.with(|ns| ns.borrow().clone()).expect("ensure_namespace runs before any id is made")
}

fn is_namespace(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The kinds of node this component owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Story,
    Tag,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Story => "Story",
            Kind::Tag => "Tag",
        }
    }
}

const CURSOR_PREFIX: &str = "cursor";

/// The global id of row `n` of `kind`.
pub fn encode(kind: Kind, n: i64) -> String {
    STANDARD.encode(format!("{}:{}:{n}", kind.prefix(), namespace()))
}

/// The row number behind `id` if it is a well-formed global id of `kind`.
pub fn decode(kind: Kind, id: &str) -> Option<i64> {
    match decode_any(id)? {
        (k, n) if k == kind => Some(n),
        _ => None,
    }
}

/// The kind and row number behind any well-formed global id of this library.
pub fn decode_any(id: &str) -> Option<(Kind, i64)> {
    let (prefix, rest) = decode_text(id)?;
    let kind = [Kind::Story, Kind::Tag]
        .into_iter()
        .find(|k| k.prefix() == prefix)?;
    let digits = match rest.split_once(':') {
        Some((namespace, digits)) if namespace == self::namespace() => digits,
        Some(_) => return None,
        // An id made before namespaces: this library's row.
        None => rest.as_str(),
    };
    Some((kind, parse_row_number(digits)?))
}

/// The cursor of the edge of story row `n`.
pub fn encode_cursor(n: i64) -> String {
    encode_pair(CURSOR_PREFIX, n)
}

/// The story row a cursor points after; `Err` for anything not made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<i64, String> {
    match decode_pair(cursor) {
        Some((prefix, n)) if prefix == CURSOR_PREFIX => Ok(n),
        _ => Err(format!("Invalid cursor: {cursor:?}")),
    }
}

fn encode_pair(prefix: &str, n: i64) -> String {
    STANDARD.encode(format!("{prefix}:{n}"))
}

fn decode_pair(text: &str) -> Option<(String, i64)> {
    let (prefix, digits) = decode_text(text)?;
    Some((prefix, parse_row_number(&digits)?))
}

/// `base64("<prefix>:<rest>")` → `(prefix, rest)`.
fn decode_text(text: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(text).ok()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (prefix, rest) = plain.split_once(':')?;
    Some((prefix.to_owned(), rest.to_owned()))
}

/// A positive decimal without sign or leading zeros that fits in an i64.
fn parse_row_number(digits: &str) -> Option<i64> {
    let canonical = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if canonical {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "00112233445566ff";

    #[test]
    fn global_ids_round_trip() {
        set_namespace(OURS.into());
        assert_eq!(encode(Kind::Story, 1), STANDARD.encode("Story:00112233445566ff:1"));
        assert_eq!(decode(Kind::Story, &encode(Kind::Story, 1)), Some(1));
        assert_eq!(decode_any(&encode(Kind::Tag, i64::MAX)), Some((Kind::Tag, i64::MAX)));
    }

    #[test]
    fn ids_made_before_namespaces_still_resolve() {
        set_namespace(OURS.into());
        assert_eq!(decode(Kind::Story, "U3Rvcnk6MQ=="), Some(1));
        assert_eq!(decode(Kind::Tag, "VGFnOjQy"), Some(42));
    }

    #[test]
    fn another_librarys_ids_resolve_to_nothing() {
        set_namespace(OURS.into());
        let theirs = STANDARD.encode("Story:ffeeddccbbaa9988:1");
        assert_eq!(decode_any(&theirs), None);
        set_namespace("ffeeddccbbaa9988".into());
        assert_eq!(decode_any(&theirs), Some((Kind::Story, 1)));
    }

    #[test]
    fn wrong_kind_is_not_found() {
        set_namespace(OURS.into());
        assert_eq!(decode(Kind::Tag, &encode(Kind::Story, 7)), None);
        assert_eq!(decode(Kind::Story, &STANDARD.encode("Library:1")), None);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        set_namespace(OURS.into());
        for bad in ["", "!!!", "U3Rvcnk6MQ", "Story:1"] {
            assert_eq!(decode_any(bad), None, "{bad}");
        }
        for plain in ["Story:", "Story:0", "Story:01", "Story:-1", "Story:+1", "Story:1 ", "Story:99999999999999999999",
            "Story:00112233445566ff:", "Story:00112233445566ff:0", "Story::1", "Story:00112233445566ff:1:2"] {
            assert_eq!(decode_any(&STANDARD.encode(plain)), None, "{plain}");
        }
    }

    #[test]
    fn cursors_round_trip_and_are_distinct_from_ids() {
        set_namespace(OURS.into());
        let c = encode_cursor(12);
        assert_eq!(decode_cursor(&c), Ok(12));
        assert!(decode_cursor(&encode(Kind::Story, 12)).is_err());
        assert!(decode_cursor("nope").is_err());
        assert_eq!(decode_any(&c), None);
    }
}
