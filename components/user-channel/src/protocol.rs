//! The graphql-ws wire format (subprotocol `graphql-transport-ws`).
//!
//! Parses and validates client frames the way graphql-ws's `validateMessage` does, and
//! builds the server frames. Everything here is pure (no host imports) and unit-tested.

use serde_json::{Map, Value};

/// Close codes of the protocol, with the reasons the reference server uses.
pub mod close {
    /// Malformed frame (bad JSON, bad shape, unknown type, binary frame).
    pub const BAD_REQUEST: u16 = 4400;
    /// `subscribe` before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// `connection_init` refused (bad or missing token).
    pub const FORBIDDEN: u16 = 4403;
    /// No `connection_init` within the init timeout.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// `subscribe` with an id that is already active on the socket.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The socket's stored state could not be read or written.
    pub const INTERNAL_ERROR: u16 = 4500;

    pub const INVALID_MESSAGE: &str = "Invalid message received";
    pub const BINARY: &str = "Binary messages are not supported";
    pub const UNAUTHORIZED_REASON: &str = "Unauthorized";
    pub const FORBIDDEN_REASON: &str = "Forbidden";
    pub const INIT_TIMEOUT_REASON: &str = "Connection initialisation timeout";
    pub const TOO_MANY_INITS_REASON: &str = "Too many initialisation requests";
    pub const SUBSCRIBER_EXISTS_FALLBACK: &str = "Subscriber already exists";
    pub const INTERNAL_ERROR_REASON: &str = "Internal server error";

    /// A WebSocket close reason may hold at most 123 bytes.
    pub const MAX_REASON_BYTES: usize = 123;

    /// `reason` when it fits in a close frame, else `fallback` (as graphql-ws's `limitCloseReason`).
    pub fn limit_reason<'a>(reason: &'a str, fallback: &'a str) -> &'a str {
        if reason.len() <= MAX_REASON_BYTES {
            reason
        } else {
            fallback
        }
    }

    /// The 4409 reason for `id`.
    pub fn subscriber_exists(id: &str) -> String {
        let reason = format!("Subscriber for {id} already exists");
        if reason.len() <= MAX_REASON_BYTES {
            reason
        } else {
            SUBSCRIBER_EXISTS_FALLBACK.to_owned()
        }
    }
}

/// A valid client frame.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    /// `connection_init`; `token` is `payload.token` when it is a string.
    ConnectionInit { token: Option<String> },
    /// `ping`; `payload` is kept (to echo it) when it is a non-null object.
    Ping { payload: Option<Map<String, Value>> },
    /// `pong`: ignored.
    Pong,
    /// `subscribe`; `request` is the GraphQL-over-HTTP request JSON built from the payload.
    Subscribe { id: String, request: String },
    /// `complete`.
    Complete { id: String },
}

/// Parse and validate one text frame. `Err` holds the reason of the 4400 close.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, String> {
    let invalid = || close::INVALID_MESSAGE.to_owned();
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return Err(invalid());
    };
    let kind = match message.remove("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind,
        _ => return Err(invalid()),
    };
    match kind.as_str() {
        "connection_init" | "ping" | "pong" => {
            let payload = optional_object(message.remove("payload")).map_err(|got| {
                format!(
                    "\"{kind}\" message expects the 'payload' property to be an object or nullish or missing, but got {got}"
                )
            })?;
            Ok(match kind.as_str() {
                "connection_init" => ClientMessage::ConnectionInit {
                    token: payload.and_then(|mut p| match p.remove("token") {
                        Some(Value::String(token)) => Some(token),
                        _ => None,
                    }),
                },
                "ping" => ClientMessage::Ping { payload },
                _ => ClientMessage::Pong,
            })
        }
        "subscribe" => {
            let id = required_id(&kind, message.remove("id"))?;
            let payload = match message.remove("payload") {
                Some(Value::Object(payload)) => payload,
                other => {
                    return Err(format!(
                        "\"subscribe\" message expects the 'payload' property to be an object, but got {}",
                        type_name(other.as_ref())
                    ))
                }
            };
            let request = build_request(payload)?;
            Ok(ClientMessage::Subscribe { id, request })
        }
        "complete" => Ok(ClientMessage::Complete { id: required_id(&kind, message.remove("id"))? }),
        "connection_ack" | "next" | "error" => {
            Err(format!("Unexpected message of type {kind} received"))
        }
        _ => Err(format!("Invalid message 'type' property \"{kind}\"")),
    }
}

/// JavaScript-style type name of a JSON value, as graphql-ws's `extendedTypeof`.
fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// Absent or null → `None`, an object → `Some`, anything else → `Err(type name)`.
fn optional_object(value: Option<Value>) -> Result<Option<Map<String, Value>>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(type_name(Some(&other))),
    }
}

fn required_id(kind: &str, value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        Some(Value::String(_)) => Err(format!("\"{kind}\" message requires a non-empty 'id' property")),
        other => Err(format!(
            "\"{kind}\" message expects the 'id' property to be a string, but got {}",
            type_name(other.as_ref())
        )),
    }
}

/// Validate a `subscribe` payload and build the request JSON handed to `graphql.prepare`:
/// `{"query" | "documentId", "variables"?, "operationName"?, "extensions"?}` (null or absent
/// members left out). A trusted document's id (`documentId`, or
/// `extensions.persistedQuery.sha256Hash`) may stand for `query`: the host puts its text in
/// before the graphql component sees the request, and refuses an id it does not know.
/// Equal payloads give byte-equal requests, which is what fan-out deduplicates on.
pub fn build_request(mut payload: Map<String, Value>) -> Result<String, String> {
    let document_id = match payload.remove("documentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(other) => {
            return Err(format!(
                "\"subscribe\" message payload expects the 'documentId' property to be a string or nullish or missing, but got {}",
                type_name(Some(&other))
            ))
        }
    };
    let persisted = payload.get("extensions").and_then(|e| e.get("persistedQuery")).is_some();
    let query = match payload.remove("query") {
        Some(Value::String(query)) => Some(query),
        None | Some(Value::Null) if document_id.is_some() || persisted => None,
        other => {
            return Err(format!(
                "\"subscribe\" message payload expects the 'query' property to be a string, but got {}",
                type_name(other.as_ref())
            ))
        }
    };
    let object_member = |payload: &mut Map<String, Value>, name: &str| {
        optional_object(payload.remove(name)).map_err(|got| {
            format!(
                "\"subscribe\" message payload expects the '{name}' property to be an object or nullish or missing, but got {got}"
            )
        })
    };
    let variables = object_member(&mut payload, "variables")?;
    let operation_name = match payload.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => {
            return Err(format!(
                "\"subscribe\" message payload expects the 'operationName' property to be a string or nullish or missing, but got {}",
                type_name(Some(&other))
            ))
        }
    };
    let extensions = object_member(&mut payload, "extensions")?;

    let mut request = String::with_capacity(query.as_ref().map_or(64, |q| q.len() + 32));
    request.push('{');
    if let Some(id) = &document_id {
        request.push_str("\"documentId\":");
        push_json_str(&mut request, id);
    }
    if let Some(query) = &query {
        if document_id.is_some() {
            request.push(',');
        }
        request.push_str("\"query\":");
        push_json_str(&mut request, query);
    }
    let member = |request: &mut String, name: &str| {
        if request.len() > 1 {
            request.push(',');
        }
        request.push('"');
        request.push_str(name);
        request.push_str("\":");
    };
    if let Some(variables) = variables {
        member(&mut request, "variables");
        push_json_value(&mut request, &Value::Object(variables))?;
    }
    if let Some(name) = operation_name {
        member(&mut request, "operationName");
        push_json_str(&mut request, &name);
    }
    if let Some(extensions) = extensions {
        member(&mut request, "extensions");
        push_json_value(&mut request, &Value::Object(extensions))?;
    }
    request.push('}');
    Ok(request)
}

fn push_json_value(out: &mut String, value: &Value) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|_| close::INVALID_MESSAGE.to_owned())?;
    out.push_str(&text);
    Ok(())
}

/// Append `s` as a JSON string literal (same escaping as serde_json).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `start..i` always lies on char boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

// ---- server messages ----

pub const CONNECTION_ACK: &str = r#"{"type":"connection_ack"}"#;

/// `pong`, echoing the ping's payload when it had one.
pub fn pong(payload: Option<&Map<String, Value>>) -> String {
    match payload.and_then(|p| serde_json::to_string(p).ok()) {
        Some(payload) => format!(r#"{{"type":"pong","payload":{payload}}}"#),
        None => r#"{"type":"pong"}"#.to_owned(),
    }
}

/// Write `{"id":<id>,"type":"next","payload":<payload>}` into `out` (cleared first).
/// `payload` must be a JSON object (see [`checked_response`]).
pub fn write_next(out: &mut String, id: &str, payload: &str) {
    write_next_at(out, id, payload, None);
}

/// [`write_next`], with the event's log position added to the payload as
/// `extensions.position` when there is one.
pub fn write_next_at(out: &mut String, id: &str, payload: &str, position: Option<&str>) {
    out.clear();
    out.reserve(id.len() + payload.len() + 36 + position.map_or(0, |p| p.len() + 32));
    out.push_str("{\"id\":");
    push_json_str(out, id);
    out.push_str(",\"type\":\"next\",\"payload\":");
    match position {
        // `payload` is an object: `{...}` becomes `{...,"extensions":{"position":"..."}}`.
        Some(position) => {
            let body = &payload[..payload.len() - 1];
            out.push_str(body);
            if body.trim_end() != "{" {
                out.push(',');
            }
            out.push_str("\"extensions\":{\"position\":");
            push_json_str(out, position);
            out.push_str("}}");
        }
        None => out.push_str(payload),
    }
    out.push('}');
}

/// The error code of a `next` that replaces a response too large to send.
pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";

/// [`write_next_at`], unless the message would be longer than `max` bytes: then a `next`
/// whose payload is one GraphQL error ([`RESPONSE_TOO_LARGE`]) with the event's position, so
/// the subscriber learns what it missed (and can refetch) and its subscription goes on.
pub fn write_next_within(out: &mut String, id: &str, payload: &str, position: Option<&str>, max: usize) {
    write_next_at(out, id, payload, position);
    if out.len() > max {
        let size = out.len();
        let errors = graphql_errors(
            &format!("The response is too large to send: {size} bytes, more than the server's limit of {max} bytes. Select fewer fields."),
            Some(RESPONSE_TOO_LARGE),
        );
        let mut replaced = String::with_capacity(errors.len() + 12);
        replaced.push_str("{\"errors\":");
        replaced.push_str(&errors);
        replaced.push('}');
        write_next_at(out, id, &replaced, position);
    }
}

/// The log position an event carries (`{"position":"<epoch>:<seq>",...`, the library's
/// envelope), with its sequence number.
pub fn event_position(event: &str) -> Option<(&str, u64)> {
    let rest = event.strip_prefix("{\"position\":\"")?;
    let position = &rest[..rest.find('"')?];
    Some((position, position_seq(position)?))
}

/// The sequence number in a log position (`<epoch>:<seq>`).
pub fn position_seq(position: &str) -> Option<u64> {
    position.rsplit_once(':')?.1.parse().ok()
}

pub fn complete(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 32);
    out.push_str("{\"id\":");
    push_json_str(&mut out, id);
    out.push_str(",\"type\":\"complete\"}");
    out
}

/// `{"id":<id>,"type":"error","payload":<errors>}`; `errors` must come from [`checked_errors`].
pub fn error(id: &str, errors: &str) -> String {
    let mut out = String::with_capacity(id.len() + errors.len() + 40);
    out.push_str("{\"id\":");
    push_json_str(&mut out, id);
    out.push_str(",\"type\":\"error\",\"payload\":");
    out.push_str(errors);
    out.push('}');
    out
}

/// One GraphQL error, as a JSON array, with an optional `extensions.code`.
pub fn graphql_errors(message: &str, code: Option<&str>) -> String {
    let mut out = String::from("[{\"message\":");
    push_json_str(&mut out, message);
    if let Some(code) = code {
        out.push_str(",\"extensions\":{\"code\":");
        push_json_str(&mut out, code);
        out.push('}');
    }
    out.push_str("}]");
    out
}

/// `raw` when it is what an `error` message needs (a non-empty JSON array of objects
/// with a string `message`; the graphql-ws client closes 4400 on anything else), else
/// a single error carrying `raw` as its message.
pub fn checked_errors(raw: &str) -> String {
    let valid = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(errors)) => {
            !errors.is_empty()
                && errors.iter().all(|e| matches!(e.get("message"), Some(Value::String(_))))
        }
        _ => false,
    };
    if valid {
        raw.trim().to_owned()
    } else {
        let message = if raw.trim().is_empty() { "Invalid GraphQL request" } else { raw };
        graphql_errors(message, None)
    }
}

/// The payload used when the GraphQL engine answered something that is not a JSON object.
pub const BROKEN_RESPONSE: &str =
    r#"{"errors":[{"message":"Internal server error: the GraphQL engine returned an invalid response"}]}"#;

/// Whether `raw` is a JSON object, i.e. usable as a `next` payload.
pub fn is_json_object(raw: &str) -> bool {
    raw.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok()
}

/// `raw` if it can be a `next` payload, else [`BROKEN_RESPONSE`].
pub fn checked_response(raw: &str) -> &str {
    if is_json_object(raw) {
        raw
    } else {
        BROKEN_RESPONSE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ClientMessage, String> {
        parse_client_message(&v.to_string())
    }

    #[test]
    fn a_response_over_the_frame_limit_becomes_an_error_with_its_position() {
        let mut out = String::new();
        let payload = format!(r#"{{"data":{{"title":"{}"}}}}"#, "x".repeat(500));
        write_next_within(&mut out, "7", &payload, Some("e:3"), 10_000);
        assert!(out.contains(&"x".repeat(500)), "under the limit: the response itself");
        write_next_within(&mut out, "7", &payload, Some("e:3"), 300);
        let next: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(next["id"], json!("7"));
        assert_eq!(next["type"], json!("next"));
        assert_eq!(next["payload"]["extensions"], json!({"position": "e:3"}));
        assert_eq!(next["payload"]["errors"][0]["extensions"]["code"], json!(RESPONSE_TOO_LARGE));
        assert!(next["payload"].get("data").is_none());
        assert!(out.len() <= 300, "{} bytes", out.len());
        let message = next["payload"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("more than the server's limit of 300 bytes"), "{message}");
    }

    #[test]
    fn rejects_non_objects_and_bad_types() {
        for text in ["", "nope", "[]", "1", "null", "\"x\"", "{}", r#"{"type":""}"#, r#"{"type":1}"#, "{\"type\":\"ping\""] {
            assert_eq!(parse_client_message(text), Err(close::INVALID_MESSAGE.to_owned()), "{text}");
        }
        assert_eq!(parse(json!({"type": "nuxt"})), Err("Invalid message 'type' property \"nuxt\"".into()));
        assert_eq!(
            parse(json!({"type": "next", "id": "1", "payload": {}})),
            Err("Unexpected message of type next received".into())
        );
    }

    #[test]
    fn init_ping_pong_payloads() {
        assert_eq!(parse(json!({"type": "connection_init"})), Ok(ClientMessage::ConnectionInit { token: None }));
        assert_eq!(
            parse(json!({"type": "connection_init", "payload": null})),
            Ok(ClientMessage::ConnectionInit { token: None })
        );
        assert_eq!(
            parse(json!({"type": "connection_init", "payload": {"token": "abc"}})),
            Ok(ClientMessage::ConnectionInit { token: Some("abc".into()) })
        );
        assert_eq!(
            parse(json!({"type": "connection_init", "payload": {"token": 5}})),
            Ok(ClientMessage::ConnectionInit { token: None })
        );
        assert_eq!(
            parse(json!({"type": "connection_init", "payload": "x"})),
            Err("\"connection_init\" message expects the 'payload' property to be an object or nullish or missing, but got string".into())
        );
        assert!(parse(json!({"type": "ping", "payload": 0})).is_err());
        assert!(parse(json!({"type": "pong", "payload": []})).is_err());
        assert_eq!(parse(json!({"type": "pong", "payload": {"a": 1}})), Ok(ClientMessage::Pong));
        let Ok(ClientMessage::Ping { payload }) = parse(json!({"type": "ping", "payload": {"a": [1]}})) else {
            panic!()
        };
        assert_eq!(pong(payload.as_ref()), r#"{"type":"pong","payload":{"a":[1]}}"#);
        assert_eq!(pong(None), r#"{"type":"pong"}"#);
    }

    #[test]
    fn subscribe_validation() {
        let err = |v: Value| parse(v).unwrap_err();
        assert_eq!(
            err(json!({"type": "subscribe", "payload": {"query": "{a}"}})),
            "\"subscribe\" message expects the 'id' property to be a string, but got undefined"
        );
        assert_eq!(
            err(json!({"type": "subscribe", "id": 1, "payload": {"query": "{a}"}})),
            "\"subscribe\" message expects the 'id' property to be a string, but got number"
        );
        assert_eq!(
            err(json!({"type": "subscribe", "id": "", "payload": {"query": "{a}"}})),
            "\"subscribe\" message requires a non-empty 'id' property"
        );
        assert_eq!(
            err(json!({"type": "subscribe", "id": "1", "payload": null})),
            "\"subscribe\" message expects the 'payload' property to be an object, but got null"
        );
        assert_eq!(
            err(json!({"type": "subscribe", "id": "1", "payload": {}})),
            "\"subscribe\" message payload expects the 'query' property to be a string, but got undefined"
        );
        assert!(err(json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "variables": []}}))
            .contains("'variables'"));
        assert!(err(json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "operationName": 3}}))
            .contains("'operationName'"));
        assert!(err(json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "extensions": "x"}}))
            .contains("'extensions'"));
        for reason in [
            err(json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "operationName": true}})),
            err(json!({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "extensions": true}})),
        ] {
            assert!(reason.len() <= close::MAX_REASON_BYTES, "{reason}");
        }
    }

    #[test]
    fn subscribe_builds_canonical_request() {
        let msg = parse(json!({"type": "subscribe", "id": "7", "payload": {
            "operationName": null, "query": "subscription S($n: String!) { channel(name: $n) { __typename } }",
            "variables": {"n": "library", "a": 1}, "extensions": null
        }}))
        .unwrap();
        let ClientMessage::Subscribe { id, request } = msg else { panic!() };
        assert_eq!(id, "7");
        assert_eq!(
            request,
            r#"{"query":"subscription S($n: String!) { channel(name: $n) { __typename } }","variables":{"a":1,"n":"library"}}"#
        );
        let parsed: Value = serde_json::from_str(&request).unwrap();
        assert_eq!(parsed["variables"]["n"], "library");

        let ClientMessage::Subscribe { request, .. } = parse(json!({"type": "subscribe", "id": "8", "payload": {
            "query": "q\n\"x\"", "operationName": "Op", "extensions": {"e": true}
        }}))
        .unwrap() else { panic!() };
        assert_eq!(request, r#"{"query":"q\n\"x\"","operationName":"Op","extensions":{"e":true}}"#);
    }

    #[test]
    fn subscribe_may_name_a_trusted_document_instead_of_a_query() {
        let ClientMessage::Subscribe { request, .. } =
            parse(json!({"type": "subscribe", "id": "1", "payload": {"documentId": "abc", "variables": {"a": 1}}})).unwrap()
        else {
            panic!()
        };
        assert_eq!(request, r#"{"documentId":"abc","variables":{"a":1}}"#);
        let apq = json!({"type": "subscribe", "id": "1", "payload": {"extensions": {"persistedQuery": {"sha256Hash": "h"}}}});
        let ClientMessage::Subscribe { request, .. } = parse(apq).unwrap() else { panic!() };
        assert_eq!(request, r#"{"extensions":{"persistedQuery":{"sha256Hash":"h"}}}"#);
        assert!(parse(json!({"type": "subscribe", "id": "1", "payload": {"documentId": 3}})).is_err());
        assert!(parse(json!({"type": "subscribe", "id": "1", "payload": {"variables": {}}})).is_err());
    }

    #[test]
    fn complete_validation() {
        assert_eq!(parse(json!({"type": "complete", "id": "x"})), Ok(ClientMessage::Complete { id: "x".into() }));
        assert!(parse(json!({"type": "complete"})).is_err());
        assert!(parse(json!({"type": "complete", "id": ""})).is_err());
    }

    #[test]
    fn json_string_escaping_matches_serde() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\ncr\rtab\t", "\u{0}\u{1f}\u{8}\u{c}", "ünï€😀", "a\u{2028}b", "/"] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn positions_go_into_extensions() {
        let mut out = String::new();
        write_next_at(&mut out, "1", r#"{"data":{"x":1}}"#, Some("e:5"));
        assert_eq!(out, r#"{"id":"1","type":"next","payload":{"data":{"x":1},"extensions":{"position":"e:5"}}}"#);
        write_next_at(&mut out, "1", "{}", Some("e:5"));
        assert_eq!(out, r#"{"id":"1","type":"next","payload":{"extensions":{"position":"e:5"}}}"#);
        assert_eq!(event_position(r#"{"position":"0a:12","type":"x"}"#), Some(("0a:12", 12)));
        assert_eq!(event_position(r#"{"type":"x","position":"0a:12"}"#), None);
        assert_eq!(event_position(r#"{"position":"nope","type":"x"}"#), None);
    }

    #[test]
    fn server_messages() {
        let mut buf = String::from("junk");
        write_next(&mut buf, "a\"b", r#"{"data":{"x":1}}"#);
        assert_eq!(buf, r#"{"id":"a\"b","type":"next","payload":{"data":{"x":1}}}"#);
        assert_eq!(complete("1"), r#"{"id":"1","type":"complete"}"#);
        assert_eq!(error("1", "[{\"message\":\"m\"}]"), r#"{"id":"1","type":"error","payload":[{"message":"m"}]}"#);
        for msg in [buf, complete("z"), error("1", &checked_errors("[]")), pong(None)] {
            serde_json::from_str::<Value>(&msg).unwrap();
        }
    }

    #[test]
    fn error_payloads_are_graphql_errors() {
        assert_eq!(checked_errors(r#" [{"message":"bad"}] "#), r#"[{"message":"bad"}]"#);
        assert_eq!(checked_errors("[]"), r#"[{"message":"[]"}]"#);
        assert_eq!(checked_errors("boom"), r#"[{"message":"boom"}]"#);
        assert_eq!(checked_errors(""), r#"[{"message":"Invalid GraphQL request"}]"#);
        assert_eq!(checked_errors(r#"[{"msg":1}]"#), r#"[{"message":"[{\"msg\":1}]"}]"#);
        assert_eq!(
            graphql_errors("m", Some("C")),
            r#"[{"message":"m","extensions":{"code":"C"}}]"#
        );
    }

    #[test]
    fn responses_must_be_objects() {
        assert_eq!(checked_response(r#"{"data":null}"#), r#"{"data":null}"#);
        assert_eq!(checked_response("[1]"), BROKEN_RESPONSE);
        assert_eq!(checked_response("{"), BROKEN_RESPONSE);
        assert_eq!(checked_response(""), BROKEN_RESPONSE);
        assert!(is_json_object(BROKEN_RESPONSE));
    }

    #[test]
    fn close_reasons_fit() {
        assert_eq!(close::subscriber_exists("abc"), "Subscriber for abc already exists");
        assert_eq!(close::subscriber_exists(&"x".repeat(200)), close::SUBSCRIBER_EXISTS_FALLBACK);
        assert_eq!(close::limit_reason(&"y".repeat(124), close::INVALID_MESSAGE), close::INVALID_MESSAGE);
        assert_eq!(close::limit_reason("short", close::INVALID_MESSAGE), "short");
    }
}
