//! Opaque identifiers: global ids (`base64("Story:<n>")`, `base64("Tag:<n>")`,
//! standard alphabet, padded) and connection cursors (`base64("cursor:<n>")`).
//!
//! Decoding is strict (canonical base64, canonical positive decimal), so every
//! object has exactly one id string and every position exactly one cursor.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

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
    encode_pair(kind.prefix(), n)
}

/// The row number behind `id` if it is a well-formed global id of `kind`.
pub fn decode(kind: Kind, id: &str) -> Option<i64> {
    match decode_any(id)? {
        (k, n) if k == kind => Some(n),
        _ => None,
    }
}

/// The kind and row number behind any well-formed global id.
pub fn decode_any(id: &str) -> Option<(Kind, i64)> {
    let (prefix, n) = decode_pair(id)?;
    let kind = [Kind::Story, Kind::Tag]
        .into_iter()
        .find(|k| k.prefix() == prefix)?;
    Some((kind, n))
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
    let bytes = STANDARD.decode(text).ok()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (prefix, digits) = plain.split_once(':')?;
    Some((prefix.to_owned(), parse_row_number(digits)?))
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

    #[test]
    fn global_ids_round_trip() {
        assert_eq!(encode(Kind::Story, 1), "U3Rvcnk6MQ==");
        assert_eq!(encode(Kind::Tag, 42), "VGFnOjQy");
        assert_eq!(decode(Kind::Story, "U3Rvcnk6MQ=="), Some(1));
        assert_eq!(decode_any(&encode(Kind::Tag, i64::MAX)), Some((Kind::Tag, i64::MAX)));
    }

    #[test]
    fn wrong_kind_is_not_found() {
        assert_eq!(decode(Kind::Tag, &encode(Kind::Story, 7)), None);
        assert_eq!(decode(Kind::Story, &STANDARD.encode("Library:1")), None);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "!!!", "U3Rvcnk6MQ", "Story:1"] {
            assert_eq!(decode_any(bad), None, "{bad}");
        }
        for plain in ["Story:", "Story:0", "Story:01", "Story:-1", "Story:+1", "Story:1 ", "Story:99999999999999999999"] {
            assert_eq!(decode_any(&STANDARD.encode(plain)), None, "{plain}");
        }
    }

    #[test]
    fn cursors_round_trip_and_are_distinct_from_ids() {
        let c = encode_cursor(12);
        assert_eq!(decode_cursor(&c), Ok(12));
        assert!(decode_cursor(&encode(Kind::Story, 12)).is_err());
        assert!(decode_cursor("nope").is_err());
        assert_eq!(decode_any(&c), None);
    }
}
