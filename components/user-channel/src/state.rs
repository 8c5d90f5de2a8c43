//! Per-socket state, its attachment encoding, and the in-instance cache of it.
//!
//! The host keeps each socket's attachment (JSON text) across evictions; it is the only
//! durable copy of the socket's state. The instance caches the decoded state of the
//! sockets it has seen (write-through: every change is stored in the attachment within
//! the same call) so that hot paths never re-parse attachments.
//!
//! Attachment format (version 1), see also the README:
//! ```json
//! {"v":1,"state":"awaiting_init","openedAt":1700000000000}
//! {"v":1,"state":"ready","subscriptions":[
//!   {"id":"1","channel":"library","request":{"query":"subscription { ... }","variables":{}}}]}
//! ```
//! `request` is the request JSON given to `graphql.prepare`, embedded byte for byte; a
//! resumed subscription also has `"skipThrough":<seq>` (see [`Sub::skip_through`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::{close, push_json_str};
use crate::realtime::host::log::{self, Level};
use crate::realtime::host::sockets::{self, SocketId};

/// The state of one socket.
#[derive(Debug, PartialEq)]
pub enum Conn {
    /// Opened; no `connection_init` yet. Closed 4408 at `opened_at + init timeout`.
    AwaitingInit { opened_at: u64 },
    /// Acknowledged, with its active subscriptions in the order they were made.
    Ready { subs: Vec<Sub> },
    /// Closed by this actor; kept until `on-close` so late frames are ignored. Never stored.
    Closed,
}

/// One active subscription. `channel` and `request` are interned: equal strings share one
/// allocation, so fan-out deduplicates requests by pointer.
#[derive(Debug, PartialEq)]
pub struct Sub {
    pub id: Box<str>,
    pub channel: Rc<str>,
    pub request: Rc<str>,
    /// A resumed subscription got the events of the log up to this sequence number from the
    /// replay: the same events arriving live after it are not sent again (0: none).
    pub skip_through: u64,
}

pub const FORMAT_VERSION: u32 = 1;

/// Encode `conn` as its attachment.
pub fn encode(conn: &Conn) -> String {
    match conn {
        Conn::AwaitingInit { opened_at } => {
            format!(r#"{{"v":{FORMAT_VERSION},"state":"awaiting_init","openedAt":{opened_at}}}"#)
        }
        Conn::Ready { subs } => {
            let size: usize = subs.iter().map(|s| s.id.len() + s.channel.len() + s.request.len() + 40).sum();
            let mut out = String::with_capacity(size + 48);
            out.push_str(r#"{"v":1,"state":"ready","subscriptions":["#);
            for (i, sub) in subs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"id\":");
                push_json_str(&mut out, &sub.id);
                out.push_str(",\"channel\":");
                push_json_str(&mut out, &sub.channel);
                out.push_str(",\"request\":");
                out.push_str(&sub.request);
                if sub.skip_through > 0 {
                    out.push_str(",\"skipThrough\":");
                    out.push_str(&sub.skip_through.to_string());
                }
                out.push('}');
            }
            out.push_str("]}");
            out
        }
        Conn::Closed => format!(r#"{{"v":{FORMAT_VERSION},"state":"closed"}}"#),
    }
}

#[derive(Deserialize)]
struct RawAttachment<'a> {
    v: u32,
    state: String,
    #[serde(rename = "openedAt")]
    opened_at: Option<u64>,
    #[serde(default, borrow)]
    subscriptions: Vec<RawSub<'a>>,
}

#[derive(Deserialize)]
struct RawSub<'a> {
    id: String,
    channel: String,
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(default, rename = "skipThrough")]
    skip_through: u64,
}

/// Decode an attachment written by [`encode`].
pub fn decode(text: &str, interner: &mut Interner) -> Result<Conn, String> {
    let raw: RawAttachment = serde_json::from_str(text).map_err(|e| format!("unreadable attachment: {e}"))?;
    if raw.v != FORMAT_VERSION {
        return Err(format!("unknown attachment version {}", raw.v));
    }
    match raw.state.as_str() {
        "awaiting_init" => match raw.opened_at {
            Some(opened_at) => Ok(Conn::AwaitingInit { opened_at }),
            None => Err("awaiting_init attachment without openedAt".into()),
        },
        "ready" => Ok(Conn::Ready {
            subs: raw
                .subscriptions
                .into_iter()
                .map(|s| Sub {
                    id: s.id.into_boxed_str(),
                    channel: interner.intern(&s.channel),
                    request: interner.intern(s.request.get()),
                    skip_through: s.skip_through,
                })
                .collect(),
        }),
        "closed" => Ok(Conn::Closed),
        other => Err(format!("unknown attachment state {other:?}")),
    }
}

/// Shares equal strings (channels, requests) between subscriptions.
#[derive(Default, Debug)]
pub struct Interner {
    strings: HashSet<Rc<str>, BuildIdHasher>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Rc<str> {
        if let Some(existing) = self.strings.get(s) {
            return existing.clone();
        }
        let rc: Rc<str> = Rc::from(s);
        self.strings.insert(rc.clone());
        rc
    }

    /// Drop `s`; forget the string when nothing else uses it.
    pub fn release(&mut self, s: Rc<str>) {
        if Rc::strong_count(&s) == 2 {
            self.strings.remove(&*s);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.strings.len()
    }
}

/// A fast hasher for socket ids, pointers and short strings (FxHash-like). The keys are
/// host-assigned ids or strings bounded by the attachment limit of one user's sockets.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// The decoded state of the sockets this instance has seen.
#[derive(Default)]
pub struct Cache {
    conns: HashMap<SocketId, Conn, BuildIdHasher>,
    /// `(opened_at, socket)` of every cached socket awaiting `connection_init`, earliest first.
    pending: BTreeSet<(u64, SocketId)>,
    interner: Interner,
    /// Every socket in `sockets.list` is cached (set by [`sync_with_list`]).
    complete: bool,
    /// How many sockets `sockets.list` returned last time.
    listed: usize,
    max_attachment: Option<usize>,
}

impl Cache {
    pub fn get(&self, socket: SocketId) -> Option<&Conn> {
        self.conns.get(&socket)
    }

    pub fn contains(&self, socket: SocketId) -> bool {
        self.conns.contains_key(&socket)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SocketId, &Conn)> {
        self.conns.iter()
    }

    /// The earliest `(opened_at, socket)` awaiting init.
    pub fn first_pending(&self) -> Option<(u64, SocketId)> {
        self.pending.first().copied()
    }

    pub fn pending(&self) -> impl Iterator<Item = &(u64, SocketId)> {
        self.pending.iter()
    }

    pub fn intern(&mut self, s: &str) -> Rc<str> {
        self.interner.intern(s)
    }

    #[cfg(test)]
    pub fn interned(&self) -> usize {
        self.interner.len()
    }

    /// Set the state of `socket`. Returns whether the set of sockets awaiting init changed.
    pub fn insert(&mut self, socket: SocketId, conn: Conn) -> bool {
        let mut changed = false;
        if let Conn::AwaitingInit { opened_at } = conn {
            changed |= self.pending.insert((opened_at, socket));
        }
        if let Some(old) = self.conns.insert(socket, conn) {
            changed |= self.forget(socket, old);
        }
        changed
    }

    /// Forget `socket`. Returns whether it was awaiting init.
    pub fn remove(&mut self, socket: SocketId) -> bool {
        match self.conns.remove(&socket) {
            Some(old) => self.forget(socket, old),
            None => false,
        }
    }

    /// Release what a replaced or removed state held; true when it left `pending`.
    fn forget(&mut self, socket: SocketId, old: Conn) -> bool {
        match old {
            Conn::AwaitingInit { opened_at } => {
                // Re-inserting the same state keeps it pending.
                let still = matches!(self.conns.get(&socket), Some(Conn::AwaitingInit { opened_at: o }) if *o == opened_at);
                !still && self.pending.remove(&(opened_at, socket))
            }
            Conn::Ready { subs } => {
                for sub in subs {
                    self.release(sub);
                }
                false
            }
            Conn::Closed => false,
        }
    }

    fn release(&mut self, sub: Sub) {
        self.interner.release(sub.channel);
        self.interner.release(sub.request);
    }

    /// The subscriptions of a ready socket.
    pub fn subs_mut(&mut self, socket: SocketId) -> Option<&mut Vec<Sub>> {
        match self.conns.get_mut(&socket) {
            Some(Conn::Ready { subs }) => Some(subs),
            _ => None,
        }
    }

    /// Remove subscription `id` of `socket` (releasing its strings); true if it existed.
    pub fn remove_sub(&mut self, socket: SocketId, id: &str) -> bool {
        let Some(subs) = self.subs_mut(socket) else { return false };
        let Some(index) = subs.iter().position(|s| &*s.id == id) else { return false };
        let sub = subs.remove(index);
        self.release(sub);
        true
    }

    /// Remove the last subscription of `socket` (undo of a push).
    pub fn pop_sub(&mut self, socket: SocketId) {
        if let Some(sub) = self.subs_mut(socket).and_then(|subs| subs.pop()) {
            self.release(sub);
        }
    }

    /// Keep only the sockets in `live`.
    pub fn retain(&mut self, live: &HashSet<SocketId, BuildIdHasher>) {
        let gone: Vec<SocketId> = self.conns.keys().filter(|s| !live.contains(s)).copied().collect();
        for socket in gone {
            self.remove(socket);
        }
    }

    /// Whether it is time to drop sockets that left without an `on-close` here (a
    /// gatekeeper's sockets move to their user's actor once authenticated).
    pub fn wants_prune(&self) -> bool {
        self.conns.len() > 2 * self.listed + 64
    }
}

// ---- host-backed operations ----

/// Why an attachment could not be stored.
#[derive(Debug)]
pub enum StoreError {
    TooLarge { limit: usize },
    Host(String),
}

/// `sockets.max-attachment-bytes`, asked once per instance.
pub fn max_attachment(cache: &mut Cache) -> usize {
    *cache.max_attachment.get_or_insert_with(|| sockets::max_attachment_bytes() as usize)
}

/// Store `conn` as the attachment of `socket`.
pub fn store(cache: &mut Cache, socket: SocketId, conn: &Conn) -> Result<(), StoreError> {
    let limit = max_attachment(cache);
    put(limit, socket, &encode(conn))
}

/// Store the cached state of `socket` as its attachment (nothing to do when uncached).
pub fn store_cached(cache: &mut Cache, socket: SocketId) -> Result<(), StoreError> {
    let limit = max_attachment(cache);
    match cache.get(socket) {
        Some(conn) => put(limit, socket, &encode(conn)),
        None => Ok(()),
    }
}

fn put(limit: usize, socket: SocketId, text: &str) -> Result<(), StoreError> {
    if text.len() > limit {
        return Err(StoreError::TooLarge { limit });
    }
    sockets::set_attachment(socket, text).map_err(StoreError::Host)
}

/// Make sure `socket` is cached, reading its attachment if needed.
/// A socket without attachment is awaiting init since it opened; an unreadable
/// attachment closes the socket 4500.
pub fn load(cache: &mut Cache, socket: SocketId) {
    if cache.contains(socket) {
        return;
    }
    let conn = match sockets::get_attachment(socket) {
        None => Conn::AwaitingInit { opened_at: sockets::opened_at_ms(socket) },
        Some(text) => match decode(&text, &mut cache.interner) {
            Ok(conn) => conn,
            Err(e) => {
                log::log(Level::Warn, &format!("socket {socket}: {e}; closing it"));
                sockets::close(socket, close::INTERNAL_ERROR, close::INTERNAL_ERROR_REASON);
                Conn::Closed
            }
        },
    };
    cache.insert(socket, conn);
}

/// Cache every socket in `sockets.list` and forget the ones no longer there.
pub fn sync_with_list(cache: &mut Cache) {
    let live: HashSet<SocketId, BuildIdHasher> = sockets::list().into_iter().collect();
    cache.retain(&live);
    for &socket in &live {
        load(cache, socket);
    }
    cache.listed = live.len();
    cache.complete = true;
}

/// [`sync_with_list`] unless every socket is already cached (the first call after a wake).
pub fn ensure_complete(cache: &mut Cache) {
    if !cache.complete {
        sync_with_list(cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(interner: &mut Interner, id: &str, channel: &str, request: &str) -> Sub {
        Sub { id: id.into(), channel: interner.intern(channel), request: interner.intern(request), skip_through: 0 }
    }

    #[test]
    fn attachment_round_trip() {
        let mut i = Interner::default();
        let awaiting = Conn::AwaitingInit { opened_at: 1_700_000_000_123 };
        assert_eq!(encode(&awaiting), r#"{"v":1,"state":"awaiting_init","openedAt":1700000000123}"#);
        assert_eq!(decode(&encode(&awaiting), &mut i), Ok(awaiting));

        let empty = Conn::Ready { subs: vec![] };
        assert_eq!(encode(&empty), r#"{"v":1,"state":"ready","subscriptions":[]}"#);
        assert_eq!(decode(&encode(&empty), &mut i), Ok(empty));

        let req = r#"{"query":"subscription { channel(name: \"library\") { __typename } }","variables":{"a":"\u00e9"}}"#;
        let ready = Conn::Ready {
            subs: vec![sub(&mut i, "1", "library", req), sub(&mut i, "a\"b", "library", r#"{"query":"x"}"#)],
        };
        let text = encode(&ready);
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        let back = decode(&text, &mut i).unwrap();
        assert_eq!(back, ready);
        // The request is kept byte for byte, and interned with the original.
        let Conn::Ready { subs } = &back else { panic!() };
        assert_eq!(&*subs[0].request, req);
        let Conn::Ready { subs: orig } = &ready else { panic!() };
        assert!(Rc::ptr_eq(&subs[0].request, &orig[0].request));
    }

    #[test]
    fn decode_rejects_garbage() {
        let mut i = Interner::default();
        for text in ["", "{}", "[]", r#"{"v":2,"state":"ready"}"#, r#"{"v":1,"state":"awaiting_init"}"#, r#"{"v":1,"state":"weird"}"#] {
            assert!(decode(text, &mut i).is_err(), "{text}");
        }
        assert_eq!(decode(r#"{"v":1,"state":"ready"}"#, &mut i), Ok(Conn::Ready { subs: vec![] }));
    }

    #[test]
    fn cache_tracks_pending_and_interning() {
        let mut c = Cache::default();
        assert!(c.insert(1, Conn::AwaitingInit { opened_at: 50 }));
        assert!(c.insert(2, Conn::AwaitingInit { opened_at: 10 }));
        assert_eq!(c.first_pending(), Some((10, 2)));
        // Same state again: no change.
        assert!(!c.insert(2, Conn::AwaitingInit { opened_at: 10 }));
        assert_eq!(c.first_pending(), Some((10, 2)));
        // Acknowledged: leaves pending.
        assert!(c.insert(2, Conn::Ready { subs: vec![] }));
        assert_eq!(c.first_pending(), Some((50, 1)));
        assert!(c.remove(1));
        assert_eq!(c.first_pending(), None);

        let a = c.intern("req");
        let s1 = Sub { id: "1".into(), channel: c.intern("ch"), request: a.clone(), skip_through: 0 };
        let s2 = Sub { id: "2".into(), channel: c.intern("ch"), request: a, skip_through: 0 };
        c.subs_mut(2).unwrap().push(s1);
        c.subs_mut(2).unwrap().push(s2);
        assert_eq!(c.interned(), 2);
        assert!(c.remove_sub(2, "1"));
        assert!(!c.remove_sub(2, "1"));
        assert_eq!(c.interned(), 2);
        c.pop_sub(2);
        assert_eq!(c.interned(), 0);

        let s3 = Sub { id: "3".into(), channel: c.intern("ch"), request: c.intern("r"), skip_through: 0 };
        c.subs_mut(2).unwrap().push(s3);
        assert!(!c.insert(2, Conn::Closed));
        assert_eq!(c.interned(), 0);

        let live: HashSet<SocketId, BuildIdHasher> = [7].into_iter().collect();
        c.insert(7, Conn::Ready { subs: vec![] });
        c.retain(&live);
        assert_eq!(c.len(), 1);
        assert!(c.get(7).is_some());
    }
}
