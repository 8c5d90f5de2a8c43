//! Channel fan-out: `publish(events)`.
//!
//! One pass over the cached sockets collects every subscription to the channel, with its
//! request deduplicated by pointer (requests are interned, so equal selections share one
//! string); the GraphQL engine resolves the event once per distinct request in a single
//! `resolve-events` call for the whole batch of events; then every subscriber gets its
//! `next`, built in one reused buffer, with the event's log position as
//! `extensions.position`.

use std::collections::HashMap;
use std::rc::Rc;

use crate::exports::realtime::host::user_channel_actor::ChannelEvent;
use crate::protocol::{self, write_next_within};
use crate::realtime::host::graphql;
use crate::realtime::host::log::{self, Level};
use crate::realtime::host::sockets::{self, SocketId};
use crate::state::{self, BuildIdHasher, Cache, Conn};

/// One `next` to send: subscription `id` on `socket` gets the response to request `request`.
#[derive(Debug, PartialEq)]
pub struct Target<'a> {
    pub socket: SocketId,
    pub id: &'a str,
    pub request: usize,
}

/// Every subscription to `channel` among `conns` (acknowledged sockets only), and the
/// distinct requests they need, each once, in first-seen order. A resumed subscription that
/// already got the event at `seq` from its replay is left out.
pub fn collect<'a>(
    conns: impl Iterator<Item = (&'a SocketId, &'a Conn)>,
    channel: &str,
    seq: Option<u64>,
) -> (Vec<Target<'a>>, Vec<&'a str>) {
    let mut targets = Vec::new();
    let mut requests: Vec<&'a str> = Vec::new();
    let mut seen: HashMap<usize, usize, BuildIdHasher> = HashMap::default();
    for (&socket, conn) in conns {
        let Conn::Ready { subs } = conn else { continue };
        for sub in subs {
            if &*sub.channel != channel || seq.is_some_and(|seq| sub.skip_through >= seq) {
                continue;
            }
            let key = Rc::as_ptr(&sub.request) as *const u8 as usize;
            let request = *seen.entry(key).or_insert_with(|| {
                requests.push(&sub.request);
                requests.len() - 1
            });
            targets.push(Target { socket, id: &sub.id, request });
        }
    }
    (targets, requests)
}

/// Deliver each event (JSON) to every subscriber of its channel, in order: all the
/// events' selections are resolved in one `resolve-events` call.
pub fn publish(cache: &mut Cache, events: &[ChannelEvent]) {
    state::ensure_complete(cache);
    // `batch[i]` are the subscribers of the event in `jobs[i]`.
    let mut batch: Vec<Vec<Target<'_>>> = Vec::new();
    let mut jobs: Vec<graphql::EventFor> = Vec::new();
    for event in events {
        let seq = protocol::event_position(&event.event).map(|(_, seq)| seq);
        let (targets, requests) = collect(cache.iter(), &event.channel, seq);
        if targets.is_empty() {
            continue;
        }
        batch.push(targets);
        jobs.push(graphql::EventFor {
            event: event.event.clone(),
            requests: requests.iter().map(|r| (*r).to_owned()).collect(),
        });
    }
    if jobs.is_empty() {
        return;
    }
    let responses = graphql::resolve_events(&jobs);
    let mut frame = String::new();
    for (i, (targets, job)) in batch.iter().zip(&jobs).enumerate() {
        let wanted = job.requests.len();
        let resolved = responses.get(i).map_or(&[][..], Vec::as_slice);
        if resolved.len() != wanted {
            log::log(
                Level::Warn,
                &format!("resolve-events returned {} responses for {wanted} requests", resolved.len()),
            );
        }
        let position = protocol::event_position(&job.event).map(|(position, _)| position);
        for target in targets {
            let payload = resolved.get(target.request).map_or(protocol::BROKEN_RESPONSE, |r| protocol::checked_response(r));
            write_next_within(&mut frame, target.id, payload, position, max_frame_bytes());
            sockets::send(target.socket, &frame);
        }
    }
}

/// The largest message the host sends (`--max-outgoing-frame-bytes`), asked once per instance.
pub fn max_frame_bytes() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| sockets::max_frame_bytes() as usize)
}

/// Sockets with at least one subscription to `channel`.
pub fn subscriber_count(cache: &mut Cache, channel: &str) -> u32 {
    state::sync_with_list(cache);
    let count = cache
        .iter()
        .filter(|(_, conn)| matches!(conn, Conn::Ready { subs } if subs.iter().any(|s| &*s.channel == channel)))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Sub;

    #[test]
    fn collects_and_dedupes() {
        let mut c = Cache::default();
        let sub = |c: &mut Cache, id: &str, channel: &str, request: &str| Sub {
            id: id.into(),
            channel: c.intern(channel),
            request: c.intern(request),
            skip_through: 0,
        };
        let subs1 = vec![sub(&mut c, "a", "library", "R1"), sub(&mut c, "b", "library", "R2"), sub(&mut c, "c", "other", "R1")];
        let subs2 = vec![sub(&mut c, "x", "library", "R1")];
        let subs3 = vec![sub(&mut c, "y", "library", "R3")];
        c.insert(1, Conn::Ready { subs: subs1 });
        c.insert(2, Conn::Ready { subs: subs2 });
        c.insert(3, Conn::AwaitingInit { opened_at: 0 });
        c.insert(4, Conn::Closed);
        c.insert(5, Conn::Ready { subs: vec![] });

        // Ordered iteration to make the assertion deterministic.
        let mut conns: Vec<(&SocketId, &Conn)> = c.iter().collect();
        conns.sort_by_key(|(s, _)| **s);
        let (targets, requests) = collect(conns.into_iter(), "library", None);
        assert_eq!(requests, vec!["R1", "R2"]);
        assert_eq!(
            targets,
            vec![
                Target { socket: 1, id: "a", request: 0 },
                Target { socket: 1, id: "b", request: 1 },
                Target { socket: 2, id: "x", request: 0 },
            ]
        );

        c.insert(6, Conn::Ready { subs: subs3 });
        let (targets, requests) = collect(c.iter(), "library", Some(1));
        assert_eq!(targets.len(), 4);
        assert_eq!(requests.len(), 3);
        let (targets, requests) = collect(c.iter(), "nobody", None);
        assert!(targets.is_empty() && requests.is_empty());
    }
}
