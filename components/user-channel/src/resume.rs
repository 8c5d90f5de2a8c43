//! Resuming a subscription (`channel(name, after)`): the events of the user's log after the
//! client's position, read from the library (`eventsAfter`), each resolved with the
//! subscriber's own selection and sent in order before any live event; or, when the log no
//! longer holds them, one `channel:reset` event. Returns the sequence number the replay
//! reached: live events up to it are not sent again (see `Sub::skip_through`).
//!
//! A replay is bounded in bytes ([`REPLAY_BUDGET_BYTES`]): one whose messages would pass it
//! is not sent, and one `channel:reset` (at the head) goes out instead, so the client
//! refetches once and carries on live from the head; it never gets a socket-killing burst,
//! and never the same too-large replay again.

use serde::Deserialize;

use crate::protocol::{self, write_next_within};
use crate::realtime::host::graphql;
use crate::realtime::host::library;
use crate::realtime::host::log::{self, Level};
use crate::realtime::host::sockets::{self, SocketId};

/// The library's answer to `eventsAfter`.
#[derive(Deserialize)]
struct EventsAfter {
    #[serde(default)]
    events: Vec<String>,
    reset: Option<String>,
    head: Option<String>,
}

/// The most bytes of messages one replay sends; past it the subscriber gets a reset instead.
/// Well under a socket's queue budget (`--socket-queue-bytes`, 4 MiB by default), so the
/// replay and the live events behind it fit.
pub const REPLAY_BUDGET_BYTES: usize = 1 << 20;

/// Replay what subscription `id` on `socket` (request `request`) missed after `after`.
pub fn replay(socket: SocketId, id: &str, request: &str, after: &str) -> u64 {
    let args = serde_json::json!({ "after": after }).to_string();
    let answer = library::call("eventsAfter", &args)
        .and_then(|text| serde_json::from_str::<EventsAfter>(&text).map_err(|e| format!("unreadable answer: {e}")));
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            log::log(Level::Warn, &format!("socket {socket}: the event log could not be read: {e}"));
            EventsAfter { events: Vec::new(), reset: Some("the event log could not be read".into()), head: None }
        }
    };
    let head_seq = answer.head.as_deref().and_then(protocol::position_seq).unwrap_or(0);
    let events = match &answer.reset {
        Some(reason) => vec![reset_event(answer.head.as_deref(), reason)],
        None => answer.events,
    };
    let frames = resolved_frames(id, request, &events);
    let frames = if frames.iter().map(String::len).sum::<usize>() > REPLAY_BUDGET_BYTES {
        let reason = format!("more missed events than one replay sends ({} bytes at most): refetch", REPLAY_BUDGET_BYTES);
        resolved_frames(id, request, &[reset_event(answer.head.as_deref(), &reason)])
    } else {
        frames
    };
    for frame in &frames {
        sockets::send(socket, frame);
    }
    head_seq
}

/// `channel:reset`, at the log's head when it has one (so a client that stores it resumes
/// from there next time).
fn reset_event(head: Option<&str>, reason: &str) -> String {
    let mut out = String::from("{");
    if let Some(head) = head {
        out.push_str("\"position\":");
        protocol::push_json_str(&mut out, head);
        out.push(',');
    }
    out.push_str("\"type\":\"channel:reset\",\"reason\":");
    protocol::push_json_str(&mut out, reason);
    out.push('}');
    out
}

/// Resolve `events` with `request` in one `resolve-events` call: their messages, in order.
fn resolved_frames(id: &str, request: &str, events: &[String]) -> Vec<String> {
    if events.is_empty() {
        return Vec::new();
    }
    let jobs: Vec<graphql::EventFor> =
        events.iter().map(|event| graphql::EventFor { event: event.clone(), requests: vec![request.to_owned()] }).collect();
    let responses = graphql::resolve_events(&jobs);
    let mut frames = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let mut frame = String::new();
        let payload = responses
            .get(i)
            .and_then(|r| r.first())
            .map_or(protocol::BROKEN_RESPONSE, |r| protocol::checked_response(r));
        let position = protocol::event_position(event).map(|(position, _)| position);
        write_next_within(&mut frame, id, payload, position, crate::fanout::max_frame_bytes());
        frames.push(frame);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_events_carry_the_head() {
        assert_eq!(
            reset_event(Some("e:9"), "too old"),
            r#"{"position":"e:9","type":"channel:reset","reason":"too old"}"#
        );
        assert_eq!(reset_event(None, "x"), r#"{"type":"channel:reset","reason":"x"}"#);
        assert_eq!(protocol::position_seq("0123:42"), Some(42));
    }
}
