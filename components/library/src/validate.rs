//! Input rules: a story url is an absolute http(s) URL; a tag name is 1 to 50
//! characters after trimming, unique per library ignoring case (via [`tag_name_key`]).
//! Every stored text has a longest length, in characters (Unicode scalar values) as stored:
//! the url and a tag name after trimming, a title, a description and a tag color as given.
//! Over it a call fails (`Err("<Field> is too long: <n> characters (at most <max>)")`)
//! before it writes anything; a tag name keeps its typed error instead.

/// Longest tag name, in characters (Unicode scalar values), after trimming.
pub const MAX_TAG_NAME_CHARS: usize = 50;
/// Longest story url, in characters, after trimming.
pub const MAX_URL_CHARS: usize = 2_048;
/// Longest story title, in characters, as given.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest story description, in characters, as given.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest tag color, in characters, as given.
pub const MAX_TAG_COLOR_CHARS: usize = 32;

/// The url to store (surrounding whitespace trimmed), or `Err("Invalid URL: ...")`, or
/// `Err("URL is too long: ...")`.
pub fn story_url(input: &str) -> Result<String, String> {
    let url = input.trim();
    at_most("URL", url, MAX_URL_CHARS)?;
    check_http_url(url).map_err(|why| format!("Invalid URL: {input:?} {why}"))?;
    Ok(url.to_owned())
}

/// `Ok` when a story title is short enough to store.
pub fn story_title(title: &str) -> Result<(), String> {
    at_most("Title", title, MAX_TITLE_CHARS)
}

/// `Ok` when a story description is short enough to store.
pub fn story_description(description: &str) -> Result<(), String> {
    at_most("Description", description, MAX_DESCRIPTION_CHARS)
}

/// `Ok` when a tag color is short enough to store.
pub fn tag_color(color: &str) -> Result<(), String> {
    at_most("Color", color, MAX_TAG_COLOR_CHARS)
}

fn at_most(field: &str, text: &str, max: usize) -> Result<(), String> {
    // A text of at most `max` bytes has at most `max` characters: no count needed.
    if text.len() <= max {
        return Ok(());
    }
    match text.chars().count() {
        chars if chars <= max => Ok(()),
        chars => Err(format!("{field} is too long: {chars} characters (at most {max})")),
    }
}

/// The tag name to store (trimmed), or `None` when it breaks the length rule.
pub fn tag_name(input: &str) -> Option<String> {
    let name = input.trim();
    let chars = name.chars().count();
    (1..=MAX_TAG_NAME_CHARS).contains(&chars).then(|| name.to_owned())
}

/// The key two tag names share exactly when they are equal ignoring case.
pub fn tag_name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn check_http_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    let (scheme, rest) = url.split_once(':').ok_or("is not an absolute URL")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("must use the http or https scheme");
    }
    let after_slashes = rest.strip_prefix("//").ok_or("is not an absolute URL")?;
    let authority_end = after_slashes.find(['/', '?', '#']).unwrap_or(after_slashes.len());
    check_authority(&after_slashes[..authority_end])
}

/// `[userinfo@]host[:port]`.
fn check_authority(authority: &str) -> Result<(), &'static str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port)?;
    check_port(port)?;
    if let Some(ip6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ok = !ip6.is_empty() && ip6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        return if ok { Ok(()) } else { Err("has an invalid IPv6 host") };
    }
    let ok = !host.is_empty()
        && host.chars().any(char::is_alphanumeric)
        && host.chars().all(|c| c.is_alphanumeric() || "-._~%!$&'()*+,;=".contains(c));
    if ok {
        Ok(())
    } else {
        Err("has no valid host")
    }
}

fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), &'static str> {
    if host_port.starts_with('[') {
        let close = host_port.find(']').ok_or("has an invalid IPv6 host")?;
        let (host, rest) = host_port.split_at(close + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => rest.strip_prefix(':').map(|p| (host, Some(p))).ok_or("has an invalid port"),
        };
    }
    Ok(match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    })
}

fn check_port(port: Option<&str>) -> Result<(), &'static str> {
    match port {
        None | Some("") => Ok(()),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok() => Ok(()),
        Some(_) => Err("has an invalid port"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_absolute_http_urls() {
        for ok in [
            "http://example.com",
            "https://example.com/a/b?c=d#e",
            "HTTPS://Example.COM:8443/",
            "http://user:pw@host.example:80/x",
            "http://[::1]:8080/",
            "http://127.0.0.1",
            "https://bücher.example/straße",
            "http://localhost?q",
        ] {
            assert!(story_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(story_url("  https://a.example/ ").as_deref(), Ok("https://a.example/"));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "example.com",
            "/relative/path",
            "ftp://example.com",
            "javascript:alert(1)",
            "mailto:a@b.c",
            "http:/example.com",
            "http://",
            "http:///path",
            "http://exa mple.com",
            "http://host:99999/",
            "http://host:8o/",
            "http://[::1/",
            "http://[]/",
            "http://.../",
        ] {
            let err = story_url(bad).expect_err(bad);
            assert!(err.starts_with("Invalid URL: "), "{err}");
        }
    }

    #[test]
    fn tag_name_length_is_counted_after_trimming() {
        assert_eq!(tag_name("  rust  ").as_deref(), Some("rust"));
        assert_eq!(tag_name("   "), None);
        assert_eq!(tag_name(""), None);
        assert!(tag_name(&"é".repeat(50)).is_some());
        assert!(tag_name(&"é".repeat(51)).is_none());
        assert!(tag_name(&format!(" {} ", "a".repeat(50))).is_some());
    }

    /// `ok` is accepted and `over` (one character more) refused with `message`.
    fn limit_is(check: impl Fn(&str) -> Result<(), String>, ok: &str, over: &str, message: &str) {
        assert_eq!(check(ok), Ok(()), "at the limit");
        assert_eq!(check(over), Err(message.to_owned()), "one over");
    }

    #[test]
    fn url_length_is_counted_in_chars_after_trimming() {
        let url = |path_chars: usize| format!("https://example.com/{}", "é".repeat(path_chars));
        let at_limit = url(MAX_URL_CHARS - "https://example.com/".len());
        assert_eq!(at_limit.chars().count(), 2_048);
        assert_eq!(story_url(&format!("  {at_limit}\n")).as_deref(), Ok(at_limit.as_str()));
        let over = url(MAX_URL_CHARS + 1 - "https://example.com/".len());
        assert_eq!(story_url(&over), Err("URL is too long: 2049 characters (at most 2048)".to_owned()));
    }

    #[test]
    fn title_description_and_color_lengths_are_counted_in_chars() {
        limit_is(story_title, &"é".repeat(500), &"é".repeat(501), "Title is too long: 501 characters (at most 500)");
        limit_is(
            story_description,
            &"é".repeat(10_000),
            &"é".repeat(10_001),
            "Description is too long: 10001 characters (at most 10000)",
        );
        limit_is(tag_color, &"é".repeat(32), &"é".repeat(33), "Color is too long: 33 characters (at most 32)");
        // Stored as given: surrounding whitespace counts.
        assert!(story_title(&format!(" {} ", "a".repeat(499))).is_err());
        assert_eq!(story_title(""), Ok(()));
    }

    #[test]
    fn tag_name_key_ignores_case() {
        assert_eq!(tag_name_key(" Rust "), tag_name_key("rUST"));
        assert_eq!(tag_name_key("ÄRGER"), tag_name_key("ärger"));
        assert_ne!(tag_name_key("a"), tag_name_key("b"));
    }
}
