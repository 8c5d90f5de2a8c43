//! The table of open sockets: owner, attachment, session and outgoing queue of each.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::queue::{Outbound, QueueLimits, SendQueue};
use super::SocketId;
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
}

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

    /// A new socket's outgoing queue.
    pub fn new_queue(&self) -> Arc<SendQueue> {
        Arc::new(SendQueue::new(self.limits.clone()))
    }

    /// Register a new socket owned by `owner`, authenticated by its upgrade's header with
    /// `session` (0 for none).
    pub fn open(
        &self,
        owner: Principal,
        header_user: Option<UserId>,
        session: SessionTag,
        opened_at_ms: u64,
        out: Arc<SendQueue>,
    ) -> SocketId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut table = self.table.lock();
        table.by_owner.entry(owner.clone()).or_default().insert(id);
        table.entries.insert(id, Entry { owner, header_user, attachment: None, opened_at_ms, sessions: [session, 0], out });
        id
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
        if let Some(set) = table.by_owner.get_mut(&entry.owner) {
            set.remove(&id);
            if set.is_empty() {
                table.by_owner.remove(&entry.owner);
            }
        }
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

    /// Move a socket to another owner (after `authenticate`).
    pub fn transfer(&self, id: SocketId, to: Principal) {
        let mut table = self.table.lock();
        let Some(entry) = table.entries.get_mut(&id) else { return };
        let from = std::mem::replace(&mut entry.owner, to.clone());
        if let Some(set) = table.by_owner.get_mut(&from) {
            set.remove(&id);
            if set.is_empty() {
                table.by_owner.remove(&from);
            }
        }
        table.by_owner.entry(to).or_default().insert(id);
    }

    /// Queue a frame. A socket whose queue is full is told to close: a client that does
    /// not read cannot make the server hold unbounded memory. Returns whether it was queued.
    pub fn send(&self, id: SocketId, frame: Outbound) -> bool {
        let table = self.table.lock();
        let Some(entry) = table.entries.get(&id) else { return false };
        entry.out.push(frame)
    }

    /// Every socket's kill switch, for shutdown.
    pub fn all_ids(&self) -> Vec<SocketId> {
        self.table.lock().entries.keys().copied().collect()
    }
}
