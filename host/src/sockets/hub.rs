//! The table of open sockets: owner, attachment, session and outgoing queue of each.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::queue::{Admission, Outbound, QueueLimits, SendQueue};
use super::SocketId;
use crate::clients::Slot;
use crate::runtime::key::{Principal, UserId};

struct Entry {
    owner: Principal,
    /// The user the upgrade's `Authorization` header named, if it did.
    header_user: Option<UserId>,
    attachment: Option<Arc<str>>,
    opened_at_ms: u64,
    /// The sessions the socket was authenticated with (its upgrade's `Authorization` header
    /// and its `connection_init` token), as [`SessionTag`]s; 0 for none.
    sessions: [SessionTag; 2],
    out: Arc<SendQueue>,
    /// While the socket is anonymous: its share of its address's anonymous sockets.
    anonymous_slot: Option<Arc<Slot>>,
}

/// A short, fixed-size name for a session (see `storage::accounts::session_tag`): what a
/// socket keeps to be found when that session signs out. 0 names no session.
pub type SessionTag = u64;

/// graphql-ws's "Forbidden": the socket's session was signed out.
pub const CLOSE_SIGNED_OUT: u16 = 4403;

#[derive(Default)]
struct Table {
    entries: HashMap<SocketId, Entry>,
    by_owner: HashMap<Principal, BTreeSet<SocketId>>,
    /// Sockets owned by an anonymous principal (not yet past `connection_init`).
    anonymous: usize,
}

impl Table {
    fn unlink(&mut self, id: SocketId, owner: &Principal) {
        if let Some(set) = self.by_owner.get_mut(owner) {
            set.remove(&id);
            if set.is_empty() {
                self.by_owner.remove(owner);
            }
        }
        if owner.user().is_none() {
            self.anonymous -= 1;
        }
    }

    fn link(&mut self, id: SocketId, owner: Principal) {
        if owner.user().is_none() {
            self.anonymous += 1;
        }
        self.by_owner.entry(owner).or_default().insert(id);
    }
}

/// Who opens a socket: its first owner (a user, when the upgrade's `Authorization` header
/// named one, else an anonymous principal), that header's user and session, and when.
pub struct Opener {
    pub owner: Principal,
    pub header_user: Option<UserId>,
    pub session: SessionTag,
    pub opened_at_ms: u64,
    /// For a socket that has not authenticated: its address's anonymous slot, given back when
    /// it authenticates or closes.
    pub anonymous_slot: Option<Arc<Slot>>,
}

/// A socket was not registered: its owner holds as many as it may.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused;

pub struct SocketHub {
    table: Mutex<Table>,
    next_id: AtomicU64,
    limits: Arc<QueueLimits>,
}

impl SocketHub {
    pub fn new(limits: Arc<QueueLimits>) -> Self {
        Self { table: Mutex::default(), next_id: AtomicU64::new(0), limits }
    }

    /// The budget every socket's queue draws from.
    pub fn queue_limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// The same, as a handle to keep.
    pub fn queue_limits_arc(&self) -> &Arc<QueueLimits> {
        &self.limits
    }

    /// A new socket's outgoing queue.
    pub fn new_queue(&self) -> Arc<SendQueue> {
        Arc::new(SendQueue::new(self.limits.clone()))
    }

    /// Register a new socket owned by `owner`, authenticated by its upgrade's header with
    /// `session` (0 for none), unless that would take its owner over `cap`: a user's sockets
    /// for a user, all anonymous sockets together for an anonymous owner. Checked and
    /// registered under one lock, so concurrent upgrades cannot pass the cap together.
    pub fn open(&self, opener: Opener, cap: usize, out: Arc<SendQueue>) -> Result<SocketId, Refused> {
        let Opener { owner, header_user, session, opened_at_ms, anonymous_slot } = opener;
        let mut table = self.table.lock();
        let held = match &owner {
            Principal::User(_) => table.by_owner.get(&owner).map_or(0, BTreeSet::len),
            Principal::Anonymous(_) => table.anonymous,
        };
        if held >= cap {
            return Err(Refused);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if owner.user().is_none() {
            table.anonymous += 1;
        }
        table.by_owner.entry(owner.clone()).or_default().insert(id);
        table.entries.insert(id, Entry { owner, header_user, attachment: None, opened_at_ms, sessions: [session, 0], out, anonymous_slot });
        Ok(id)
    }

    /// Record the session a socket's `connection_init` token names. Call it before checking
    /// the token: a sign-out that runs after the check then finds the socket.
    pub fn set_init_session(&self, id: SocketId, session: SessionTag) {
        if let Some(entry) = self.table.lock().entries.get_mut(&id) {
            entry.sessions[1] = session;
        }
    }

    /// A session was signed out: close every socket it authenticated (4403); their queued
    /// frames are dropped and nothing more is read from them. Returns how many.
    pub fn revoke_session(&self, session: SessionTag) -> usize {
        if session == 0 {
            return 0;
        }
        let table = self.table.lock();
        let mut closed = 0;
        for entry in table.entries.values().filter(|e| e.sessions.contains(&session)) {
            entry.out.kill(CLOSE_SIGNED_OUT, "Forbidden");
            closed += 1;
        }
        closed
    }

    /// Forget a socket; returns its owner at that moment.
    pub fn remove(&self, id: SocketId) -> Option<Principal> {
        let mut table = self.table.lock();
        let entry = table.entries.remove(&id)?;
        table.unlink(id, &entry.owner);
        Some(entry.owner)
    }

    pub fn owner(&self, id: SocketId) -> Option<Principal> {
        self.table.lock().entries.get(&id).map(|e| e.owner.clone())
    }

    pub fn header_user(&self, id: SocketId) -> Option<UserId> {
        self.table.lock().entries.get(&id).and_then(|e| e.header_user.clone())
    }

    /// The sockets `owner` holds, in the order they were opened.
    pub fn list(&self, owner: &Principal) -> Vec<SocketId> {
        self.table.lock().by_owner.get(owner).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Every principal with a socket open here.
    pub fn owners(&self) -> Vec<Principal> {
        self.table.lock().by_owner.keys().cloned().collect()
    }

    /// Whether `owner` has a socket open here.
    pub fn holds(&self, owner: &Principal) -> bool {
        self.table.lock().by_owner.contains_key(owner)
    }

    pub fn count(&self) -> usize {
        self.table.lock().entries.len()
    }

    /// Whether `owner` owns socket `id` (the isolation check every socket import makes).
    pub fn is_owned_by(&self, id: SocketId, owner: &Principal) -> bool {
        self.table.lock().entries.get(&id).is_some_and(|e| &e.owner == owner)
    }

    pub fn opened_at_ms(&self, id: SocketId) -> Option<u64> {
        self.table.lock().entries.get(&id).map(|e| e.opened_at_ms)
    }

    pub fn attachment(&self, id: SocketId) -> Option<Arc<str>> {
        self.table.lock().entries.get(&id).and_then(|e| e.attachment.clone())
    }

    pub fn set_attachment(&self, id: SocketId, value: Arc<str>) {
        if let Some(entry) = self.table.lock().entries.get_mut(&id) {
            entry.attachment = Some(value);
        }
    }

    /// Move a socket to user `to` (after `authenticate`), unless that user already holds `cap`
    /// sockets; checked and moved under one lock.
    pub fn transfer(&self, id: SocketId, to: Principal, cap: usize) -> Result<(), Refused> {
        let mut table = self.table.lock();
        if table.by_owner.get(&to).map_or(0, BTreeSet::len) >= cap {
            return Err(Refused);
        }
        let Some(entry) = table.entries.get_mut(&id) else { return Ok(()) };
        let from = std::mem::replace(&mut entry.owner, to.clone());
        entry.anonymous_slot = None;
        table.unlink(id, &from);
        table.link(id, to);
        Ok(())
    }

    /// Queue a frame. A socket whose queue is full is told to close: a client that does
    /// not read cannot make the server hold unbounded memory. Returns whether it was queued.
    pub fn send(&self, id: SocketId, frame: Outbound) -> bool {
        let table = self.table.lock();
        let Some(entry) = table.entries.get(&id) else { return false };
        // A socket that keeps up gets room in a full budget (held frames are on their way into
        // queues, this one among them: only what is queued counts here).
        let size = frame.bytes();
        if entry.out.queued_bytes() == 0 && self.limits.queued.load(Ordering::Relaxed) + size > self.limits.process_bytes {
            Self::make_room(&table, id, || self.limits.queued.load(Ordering::Relaxed) + size <= self.limits.process_bytes);
        }
        entry.out.push(frame)
    }

    /// Whether socket `id` takes a frame of `size` bytes on top of `held` bytes the calling
    /// call holds for it (`call_held` in all; see [`SendQueue::admits`]). A socket that keeps
    /// up and meets a full process budget gets room: the sockets furthest behind are dropped.
    /// False for a socket that is gone or over its own budget.
    pub fn admits(&self, id: SocketId, held: usize, call_held: usize, size: usize) -> bool {
        let table = self.table.lock();
        let Some(entry) = table.entries.get(&id) else { return false };
        match entry.out.admits(held, call_held, size) {
            Admission::Admitted => true,
            Admission::Refused => false,
            Admission::NeedsRoom => {
                let limits = &self.limits;
                let fits = || limits.queued.load(Ordering::Relaxed) + limits.held.load(Ordering::Relaxed) + size <= limits.process_bytes;
                Self::make_room(&table, id, fits);
                entry.out.admits(held, call_held, size) == Admission::Admitted
            }
        }
    }

    /// Drop the sockets with the most queued (1008), largest first, until `fits`; never `keep`.
    /// Runs only when the process's budget is full, so walking every socket is rare.
    fn make_room(table: &Table, keep: SocketId, fits: impl Fn() -> bool) {
        let mut behind: Vec<(usize, &Entry)> =
            table.entries.iter().filter(|(id, _)| **id != keep).map(|(_, e)| (e.out.queued_bytes(), e)).filter(|(bytes, _)| *bytes > 0).collect();
        behind.sort_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        for (_, entry) in behind {
            if fits() {
                break;
            }
            entry.out.kill(super::CLOSE_NOT_READING, "Send budget full: the client is not reading");
        }
    }

    /// End a socket now with `code`: what is queued for it is dropped (see `SendQueue::kill`).
    pub fn kill(&self, id: SocketId, code: u16, reason: &str) {
        if let Some(entry) = self.table.lock().entries.get(&id) {
            entry.out.kill(code, reason);
        }
    }

    /// Every socket's kill switch, for shutdown.
    pub fn all_ids(&self) -> Vec<SocketId> {
        self.table.lock().entries.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opener(owner: Principal) -> Opener {
        Opener { owner, header_user: None, session: 0, opened_at_ms: 0, anonymous_slot: None }
    }

    #[test]
    fn caps_hold_for_users_and_for_anonymous_sockets_together() {
        let hub = SocketHub::new(QueueLimits::new(8, 1 << 20, 1 << 30));
        let ada = Principal::User("ada".into());
        let a = hub.open(opener(ada.clone()), 2, hub.new_queue()).unwrap();
        hub.open(opener(ada.clone()), 2, hub.new_queue()).unwrap();
        assert_eq!(hub.open(opener(ada.clone()), 2, hub.new_queue()), Err(Refused));
        hub.remove(a);
        hub.open(opener(ada.clone()), 2, hub.new_queue()).unwrap();

        let x = hub.open(opener(Principal::Anonymous(0)), 2, hub.new_queue()).unwrap();
        hub.open(opener(Principal::Anonymous(1)), 2, hub.new_queue()).unwrap();
        assert_eq!(hub.open(opener(Principal::Anonymous(2)), 2, hub.new_queue()), Err(Refused), "the cap counts every anonymous principal");
        assert_eq!(hub.transfer(x, ada.clone(), 2), Err(Refused), "ada holds her two already");
        let bob = Principal::User("bob".into());
        hub.transfer(x, bob.clone(), 2).unwrap();
        assert_eq!(hub.list(&bob), vec![x]);
        hub.open(opener(Principal::Anonymous(3)), 2, hub.new_queue()).unwrap();
    }

    #[test]
    fn signing_out_kills_only_that_sessions_sockets() {
        let hub = SocketHub::new(QueueLimits::new(8, 1 << 20, 1 << 30));
        let ada = Principal::User("ada".into());
        let (q1, q2, q3) = (hub.new_queue(), hub.new_queue(), hub.new_queue());
        hub.open(Opener { session: 7, ..opener(ada.clone()) }, 9, q1.clone()).unwrap();
        let by_init = hub.open(opener(ada.clone()), 9, q2.clone()).unwrap();
        hub.set_init_session(by_init, 7);
        hub.open(Opener { session: 8, ..opener(ada.clone()) }, 9, q3.clone()).unwrap();
        assert_eq!(hub.revoke_session(7), 2);
        assert!(q1.is_ended() && q2.is_ended() && !q3.is_ended());
        assert_eq!(hub.revoke_session(0), 0, "0 names no session");
    }
}
