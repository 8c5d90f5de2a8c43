//! Cheap guards run before the GraphQL parser sees a document.
//!
//! The parser recurses once per nesting level of `{`, `[` and `(`; a hostile document nested
//! thousands deep would overflow the guest stack, which is a trap that fails the whole call.
//! This lexical scan (aware of strings, block strings and comments) refuses such documents
//! with an ordinary GraphQL error first.

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
