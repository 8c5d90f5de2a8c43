//! The commit protocol, per user, on one node: taking a user over, appending a call's writes to
//! the user's log, committing them here, giving the user up. A state machine without I/O: its
//! methods take what happened ([`Event`]) and say what the caller must do ([`Action`]);
//! `ownership` (the take-over and the lease), `seam` (the append and its receipt) and the
//! runtime's actor (through that receipt) do it. Nothing else changes a user's state.
//!
//! ```text
//!   NotOwned ──take_over──► TakingOver{term} ──MarkerAppended──► CatchingUp{term, marker}
//!      ▲                        │ TakeOverFailed                   │ CaughtUp
//!      │                        ▼                                  ▼
//!      ├────────────────── NotOwned                         Owned{term, last} ◄──────┐
//!      │                                                     │ Append                │
//!      │ Fenced, NotApplied, Unknown                         ▼                       │ Committed
//!      ├──────────────────────────────────────────── Appending{term, expected}      │
//!      │                                                     │ Appended(Taken(seq))  │
//!      │ NotCommitted (position write, commit)               ▼                       │
//!      └──────────────────────────────────────────── Committing{term, seq} ──────────┘
//!   (and from every state: LeaseLapsed, Leave ──► NotOwned)
//! ```
//!
//! Giving a user up is going back to `NotOwned` with [`Action::Release`]; the node keeps no
//! other trace of it. Each take-over has a term of its own (a number this node never uses
//! twice); every event after the first names the term it belongs to.
//!
//! Invariants (each has a test named after it):
//! 1. An append is sent only from `Owned`, one at a time per user, with the expected sequence
//!    equal to the last one the log took in this term (the owner marker, then each entry
//!    acknowledged): so the log refuses it if anything else came in between.
//! 2. Only an entry the log took is committed here ([`Action::Commit`] follows only
//!    [`Outcome::Taken`]); every other outcome rolls the call back and drops its instance.
//! 3. After any failure whose outcome is not a plain refusal (fenced, not applied, unknown, the
//!    position write or the commit failing after the log took the entry, the call dropped
//!    half-way) the user is given up: the log may hold what this file lacks, or another node
//!    owns the user. A plain refusal (nothing was sent) changes nothing.
//! 4. A given-up user is never appended for, nor served, without a new take-over, and the only
//!    way from `NotOwned` to `Owned` is a take-over that appended its marker and caught the
//!    local file up from the log through the entry before it.
//! 5. Reads are served only in `Owned`, and only while the lease holds by this node's own clock
//!    (three quarters of its time to live since the refresh that confirmed it was sent).
//! 6. An event of one term never changes a later term's state: the late answer of an append
//!    sent before a lapse neither moves nor gives up the take-over that followed. Such an
//!    answer still settles its call: an entry the log took commits (it is in the log at the
//!    sequence expected, so in order), any other outcome rolls back.
//! 7. A lease lapse or a leave gives every user up and overtakes the take-overs under way:
//!    they end without owning the user. Once the node left, no take-over starts.
//! 8. A refresh that failed without the liveness key having changed (NATS unreachable, a
//!    stream electing its leader) keeps the users until the time to live since the last
//!    confirmed refresh has passed; a changed key, or that time passed, is a lapse.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::runtime::key::UserId;

/// One take-over of one user on this node.
pub type Term = u64;

/// Where one user stands on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserState {
    /// Not this node's (never was, or given up). Calls go to the owner, or take the user over.
    NotOwned,
    /// Naming this node in `rt_owners`, reading the log's last entry, appending an owner
    /// marker after it.
    TakingOver { term: Term },
    /// The marker is at `marker`; the local file is being brought up to the entry before it.
    CatchingUp { term: Term, marker: u64 },
    /// This node owns the user; the log's last entry is `last`, and the local file holds it.
    Owned { term: Term, last: u64 },
    /// A call's writes are on their way to the log, expected after `expected`.
    Appending { term: Term, expected: u64 },
    /// The log took a call's writes at `seq`; the call is writing its position and committing.
    Committing { term: Term, seq: u64 },
}

/// What an append came to (the log's answer, settled: see `log::UserLog::settle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// In the log at this sequence.
    Taken(u64),
    /// Refused: something came after the sequence expected (another node took the user over).
    Fenced,
    /// Not in the log, and never will be (the log was read, or a marker shut it out).
    NotApplied,
    /// It may or may not be in the log.
    Unknown,
}

/// Why a call whose entry the log took did not commit here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCommitted {
    /// Recording the entry's sequence in the call's transaction failed.
    PositionWrite,
    /// The commit itself failed.
    Commit,
    /// The call was dropped before it said (a panic, a shutdown).
    Dropped,
}

/// What happened to one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start a take-over under a new term ([`CommitProtocol::take_over`] draws it).
    TakeOver { term: Term },
    /// The owner marker went into the log at `marker`, right after entry `last`.
    MarkerAppended { term: Term, last: u64, marker: u64 },
    /// The local file holds the log through the entry before the marker.
    CaughtUp { term: Term },
    /// The take-over stopped (another live node owns the user, an error, or it was dropped).
    TakeOverFailed { term: Term },
    /// A call returned with writes to append.
    Append,
    /// The append sent under `term` came to `outcome`.
    Appended { term: Term, outcome: Outcome },
    /// The call whose entry the log took committed here.
    Committed { term: Term },
    /// The call whose entry the log took did not commit here.
    NotCommitted { term: Term, why: NotCommitted },
    /// This node's lease lapsed (see invariant 8).
    LeaseLapsed,
    /// This node leaves the cluster (a clean shutdown).
    Leave,
}

/// Why an event was refused, with nothing sent and nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This node does not hold the user (the caller routes the call again).
    NotHeld,
    /// Another take-over, or another append, of this user is under way here.
    Busy,
    /// This node left the cluster.
    Left,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NotHeld => "this node does not hold the user",
            Refusal::Busy => "another take-over or append of this user is under way on this node",
            Refusal::Left => "this node has left the cluster",
        })
    }
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Name this node in `rt_owners` (at the revision read), read the log's last entry, append
    /// an owner marker right after it; then [`Event::MarkerAppended`] or
    /// [`Event::TakeOverFailed`].
    TakeLease { term: Term },
    /// Bring the local file up to log entry `through`; then [`Event::CaughtUp`] or
    /// [`Event::TakeOverFailed`].
    CatchUp { term: Term, through: u64 },
    /// The take-over is done: forget where the owner was seen, have every node check for
    /// events it missed.
    Announce,
    /// The user is held here already; its log ends at `last`.
    AlreadyHeld { last: u64 },
    /// The take-over was overtaken (a lapse, a leave): it fails, and owns nothing.
    Abandon,
    /// Send the call's writes to the log, expected after `expected`; then [`Event::Appended`].
    Send { term: Term, expected: u64 },
    /// Nothing was sent, nothing changed.
    Refuse(Refusal),
    /// Record `seq` as the file's position in the call's transaction and commit it; then
    /// [`Event::Committed`] or [`Event::NotCommitted`].
    Commit { seq: u64 },
    /// Roll the call back and drop its instance (it may hold state of the call).
    RollBack,
    /// The user is given up: forget it (where its owner is, its snapshot count).
    Release,
    /// Drop the user's library instance.
    DropInstance,
    /// Count the commit toward the user's next snapshot.
    CountSnapshot,
}

impl UserState {
    /// The transition for `event`: the next state, and what the caller must do.
    pub fn on(self, event: Event) -> (UserState, Vec<Action>) {
        use Action::*;
        use UserState::*;
        match (self, event) {
            // Taking a user over.
            (NotOwned, Event::TakeOver { term }) => (TakingOver { term }, vec![TakeLease { term }]),
            (TakingOver { .. } | CatchingUp { .. }, Event::TakeOver { .. }) => (self, vec![Refuse(Refusal::Busy)]),
            (Owned { last, .. } | Appending { expected: last, .. } | Committing { seq: last, .. }, Event::TakeOver { .. }) => {
                (self, vec![AlreadyHeld { last }])
            }
            (TakingOver { term }, Event::MarkerAppended { term: of, last, marker }) if of == term => {
                debug_assert!(marker > last, "a marker comes after the entry it was appended at");
                (CatchingUp { term, marker }, vec![CatchUp { term, through: last }])
            }
            (CatchingUp { term, marker }, Event::CaughtUp { term: of }) if of == term => (Owned { term, last: marker }, vec![Announce]),
            (TakingOver { term } | CatchingUp { term, .. }, Event::TakeOverFailed { term: of }) if of == term => (NotOwned, vec![]),
            // A take-over that a lapse or a leave overtook (its state is gone) owns nothing.
            (_, Event::MarkerAppended { .. } | Event::CaughtUp { .. }) => (self, vec![Abandon]),
            (_, Event::TakeOverFailed { .. }) => (self, vec![]),

            // A call's writes: to the log first, then committed here.
            (Owned { term, last }, Event::Append) => (Appending { term, expected: last }, vec![Send { term, expected: last }]),
            (Appending { .. } | Committing { .. }, Event::Append) => (self, vec![Refuse(Refusal::Busy)]),
            (NotOwned | TakingOver { .. } | CatchingUp { .. }, Event::Append) => (self, vec![Refuse(Refusal::NotHeld)]),
            (Appending { term, expected }, Event::Appended { term: of, outcome }) if of == term => match outcome {
                Outcome::Taken(seq) => {
                    debug_assert!(seq > expected, "the log takes an entry after the one expected");
                    (Committing { term, seq }, vec![Commit { seq }])
                }
                Outcome::Fenced | Outcome::NotApplied | Outcome::Unknown => (NotOwned, vec![RollBack, Release]),
            },
            // The answer of an append sent before the user was given up: the log took it at the
            // sequence expected (in order), so it commits, but it owns nothing; any other
            // outcome rolls back, and the user, given up already, is left as it is.
            (_, Event::Appended { outcome: Outcome::Taken(seq), .. }) => (self, vec![Commit { seq }]),
            (_, Event::Appended { .. }) => (self, vec![RollBack]),
            (Committing { term, seq }, Event::Committed { term: of }) if of == term => (Owned { term, last: seq }, vec![CountSnapshot]),
            (Committing { term, .. }, Event::NotCommitted { term: of, .. }) if of == term => (NotOwned, vec![Release]),
            (_, Event::Committed { .. } | Event::NotCommitted { .. }) => (self, vec![]),

            // The node's lease lapsed, or the node leaves: every user goes.
            (Owned { .. } | Appending { .. } | Committing { .. }, Event::LeaseLapsed) => (NotOwned, vec![Release, DropInstance]),
            (Owned { .. } | Appending { .. } | Committing { .. }, Event::Leave) => (NotOwned, vec![Release]),
            (NotOwned | TakingOver { .. } | CatchingUp { .. }, Event::LeaseLapsed | Event::Leave) => (NotOwned, vec![]),
        }
    }

    /// The sequence the user's log ends at, as far as this node knows, if it holds the user
    /// (its calls run here).
    pub fn held(self) -> Option<u64> {
        match self {
            UserState::Owned { last, .. } | UserState::Appending { expected: last, .. } | UserState::Committing { seq: last, .. } => Some(last),
            UserState::NotOwned | UserState::TakingOver { .. } | UserState::CatchingUp { .. } => None,
        }
    }
}

/// This node's side of the protocol: every user's state, the lease, and whether it left.
pub struct CommitProtocol {
    /// Users not in here are `NotOwned`.
    users: HashMap<UserId, UserState>,
    /// The last term drawn.
    term: Term,
    left: bool,
    /// The lease's time to live.
    ttl: Duration,
    /// When the refresh (or registration) that last confirmed the lease was sent.
    confirmed: Option<Instant>,
}

impl CommitProtocol {
    pub fn new(ttl: Duration) -> Self {
        Self { users: HashMap::new(), term: 0, left: false, ttl, confirmed: None }
    }

    /// Where `user` stands.
    pub fn state(&self, user: &str) -> UserState {
        self.users.get(user).copied().unwrap_or(UserState::NotOwned)
    }

    /// Apply `event` to `user`: what the caller must do.
    pub fn on(&mut self, user: &UserId, event: Event) -> Vec<Action> {
        let (next, actions) = self.state(user).on(event);
        match next {
            UserState::NotOwned => self.users.remove(user),
            next => self.users.insert(user.clone(), next),
        };
        actions
    }

    /// Start taking `user` over under a new term (refused once the node left).
    pub fn take_over(&mut self, user: &UserId) -> Vec<Action> {
        if self.left {
            return vec![Action::Refuse(Refusal::Left)];
        }
        self.term += 1;
        let term = self.term;
        self.on(user, Event::TakeOver { term })
    }

    /// Start appending a call's writes for `user`.
    pub fn append(&mut self, user: &UserId) -> Vec<Action> {
        self.on(user, Event::Append)
    }

    /// A refresh (or a registration) sent at `sent` was taken: the lease stands from then.
    pub fn lease_renewed(&mut self, sent: Instant) {
        self.confirmed = Some(sent);
    }

    /// A refresh failed (`key_changed`: the liveness key was not at the revision this node
    /// wrote). `None`: the users stay (invariant 8); else the lease lapsed, and every user's
    /// actions.
    pub fn lease_refresh_failed(&mut self, key_changed: bool, now: Instant) -> Option<Vec<(UserId, Vec<Action>)>> {
        let within_ttl = self.confirmed.is_some_and(|at| now.saturating_duration_since(at) < self.ttl);
        if !key_changed && within_ttl {
            return None;
        }
        Some(self.every_user(Event::LeaseLapsed))
    }

    /// The node leaves: every user's actions; no take-over starts from now on.
    pub fn leave(&mut self) -> Vec<(UserId, Vec<Action>)> {
        self.left = true;
        self.every_user(Event::Leave)
    }

    fn every_user(&mut self, event: Event) -> Vec<(UserId, Vec<Action>)> {
        let users: Vec<UserId> = self.users.keys().cloned().collect();
        users.into_iter().map(|user| (user.clone(), self.on(&user, event))).collect()
    }

    pub fn has_left(&self) -> bool {
        self.left
    }

    /// When the lease was last confirmed (see the field).
    pub fn lease_confirmed(&self) -> Option<Instant> {
        self.confirmed
    }

    /// Whether the lease should be confirmed again before serving: its last refresh is half
    /// its time to live old (or there was none).
    pub fn lease_due(&self, now: Instant) -> bool {
        self.confirmed.is_none_or(|at| now.saturating_duration_since(at) >= self.ttl / 2)
    }

    /// Whether a read of `user` may be answered now (invariant 5).
    pub fn serves(&self, user: &str, now: Instant) -> bool {
        matches!(self.state(user), UserState::Owned { .. }) && self.confirmed.is_some_and(|at| lease_holds(at, self.ttl, now))
    }

    /// See [`UserState::held`].
    pub fn held(&self, user: &str) -> Option<u64> {
        self.state(user).held()
    }

    /// How many users this node holds.
    pub fn held_count(&self) -> usize {
        self.users.values().filter(|state| state.held().is_some()).count()
    }
}

/// Whether a lease confirmed at `confirmed` (when its refresh was sent) still stands at `now`
/// with a quarter of its time to live to spare: the margin covers the refresh's own trip and
/// the clocks of two machines running at slightly different rates.
pub fn lease_holds(confirmed: Instant, ttl: Duration, now: Instant) -> bool {
    now.saturating_duration_since(confirmed) < ttl - ttl / 4
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::UserState::*;
    use super::*;

    const TTL: Duration = Duration::from_secs(2);

    fn user() -> UserId {
        "u1".into()
    }

    /// A node whose lease was confirmed at `at`.
    fn node(at: Instant) -> CommitProtocol {
        let mut node = CommitProtocol::new(TTL);
        node.lease_renewed(at);
        node
    }

    /// Take `user()` over on `node`: the log's last entry was `last`, the marker lands right
    /// after it. The term.
    fn taken(node: &mut CommitProtocol, last: u64) -> Term {
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!("a take-over starts with the lease") };
        assert_eq!(node.on(&user(), Event::MarkerAppended { term, last, marker: last + 1 }), [CatchUp { term, through: last }]);
        assert_eq!(node.on(&user(), Event::CaughtUp { term }), [Announce]);
        term
    }

    /// Append and commit one call whose entry the log takes at `seq`.
    fn commit(node: &mut CommitProtocol, term: Term, seq: u64) {
        assert!(matches!(node.append(&user())[..], [Send { term: t, .. }] if t == term));
        assert_eq!(node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(seq) }), [Commit { seq }]);
        assert_eq!(node.on(&user(), Event::Committed { term }), [CountSnapshot]);
    }

    /// Every state (of term 1) and every event (of terms 1 and 2).
    fn states() -> Vec<UserState> {
        vec![NotOwned, TakingOver { term: 1 }, CatchingUp { term: 1, marker: 5 }, Owned { term: 1, last: 5 }, Appending { term: 1, expected: 5 }, Committing { term: 1, seq: 6 }]
    }

    fn events() -> Vec<Event> {
        let mut events = vec![Event::Append, Event::LeaseLapsed, Event::Leave];
        for term in [1, 2] {
            events.extend([
                Event::TakeOver { term },
                Event::MarkerAppended { term, last: 5, marker: 6 },
                Event::CaughtUp { term },
                Event::TakeOverFailed { term },
                Event::Committed { term },
            ]);
            for outcome in [Outcome::Taken(6), Outcome::Fenced, Outcome::NotApplied, Outcome::Unknown] {
                events.push(Event::Appended { term, outcome });
            }
            for why in [NotCommitted::PositionWrite, NotCommitted::Commit, NotCommitted::Dropped] {
                events.push(Event::NotCommitted { term, why });
            }
        }
        events
    }

    fn term_of(state: UserState) -> Option<Term> {
        match state {
            NotOwned => None,
            TakingOver { term } | CatchingUp { term, .. } | Owned { term, .. } | Appending { term, .. } | Committing { term, .. } => Some(term),
        }
    }

    #[test]
    fn a_take_over_names_this_node_appends_its_marker_and_catches_up_before_it_owns_the_user() {
        let mut node = node(Instant::now());
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!() };
        assert_eq!(node.state(&user()), TakingOver { term });
        assert_eq!(node.held(&user()), None, "calls do not run here during a take-over");
        assert_eq!(node.on(&user(), Event::MarkerAppended { term, last: 41, marker: 42 }), [CatchUp { term, through: 41 }]);
        assert_eq!(node.state(&user()), CatchingUp { term, marker: 42 });
        assert!(!node.serves(&user(), Instant::now()), "not before the file is caught up");
        assert_eq!(node.on(&user(), Event::CaughtUp { term }), [Announce]);
        assert_eq!(node.state(&user()), Owned { term, last: 42 });
        assert_eq!(node.held(&user()), Some(42));
        assert_eq!(node.held_count(), 1);
    }

    #[test]
    fn a_take_over_of_a_held_user_says_where_its_log_ends_and_a_second_one_waits() {
        let mut node = node(Instant::now());
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!() };
        assert_eq!(node.take_over(&user()), [Refuse(Refusal::Busy)], "one take-over at a time");
        node.on(&user(), Event::MarkerAppended { term, last: 3, marker: 4 });
        assert_eq!(node.take_over(&user()), [Refuse(Refusal::Busy)]);
        node.on(&user(), Event::CaughtUp { term });
        assert_eq!(node.take_over(&user()), [AlreadyHeld { last: 4 }]);
        assert_eq!(node.state(&user()), Owned { term, last: 4 }, "unchanged");
    }

    #[test]
    fn a_take_over_that_fails_leaves_the_user_not_owned() {
        let mut node = node(Instant::now());
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!() };
        assert!(node.on(&user(), Event::TakeOverFailed { term }).is_empty());
        assert_eq!(node.state(&user()), NotOwned);
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!() };
        node.on(&user(), Event::MarkerAppended { term, last: 0, marker: 1 });
        assert!(node.on(&user(), Event::TakeOverFailed { term }).is_empty(), "a catch-up that fails");
        assert_eq!(node.state(&user()), NotOwned);
        assert_eq!(node.on(&user(), Event::CaughtUp { term }), [Abandon], "a failed take-over cannot finish");
        // Once it is done, a failure reported late (a guard dropped after the end) changes nothing.
        let term = taken(&mut node, 1);
        assert!(node.on(&user(), Event::TakeOverFailed { term }).is_empty());
        assert_eq!(node.state(&user()), Owned { term, last: 2 });
    }

    #[test]
    fn each_take_over_has_a_term_of_its_own() {
        let mut node = node(Instant::now());
        let first = taken(&mut node, 0);
        node.on(&user(), Event::LeaseLapsed);
        let second = taken(&mut node, 5);
        assert!(second > first);
    }

    #[test]
    fn invariant_1_an_append_expects_the_last_sequence_the_log_took_in_this_term() {
        let mut node = node(Instant::now());
        let term = taken(&mut node, 9);
        assert_eq!(node.append(&user()), [Send { term, expected: 10 }], "first after the marker");
        assert_eq!(node.state(&user()), Appending { term, expected: 10 });
        node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(12) });
        node.on(&user(), Event::Committed { term });
        assert_eq!(node.append(&user()), [Send { term, expected: 12 }], "then after the entry it took (other users' entries come in between)");
        node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(13) });
        node.on(&user(), Event::Committed { term });
        commit(&mut node, term, 20);
        assert_eq!(node.append(&user()), [Send { term, expected: 20 }]);
    }

    #[test]
    fn invariant_1_one_append_at_a_time() {
        let mut node = node(Instant::now());
        let term = taken(&mut node, 0);
        node.append(&user());
        assert_eq!(node.append(&user()), [Refuse(Refusal::Busy)]);
        assert_eq!(node.state(&user()), Appending { term, expected: 1 }, "a refusal changes nothing");
        node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(2) });
        assert_eq!(node.append(&user()), [Refuse(Refusal::Busy)], "not before the last one committed");
        node.on(&user(), Event::Committed { term });
        assert_eq!(node.append(&user()), [Send { term, expected: 2 }]);
    }

    #[test]
    fn invariant_1_and_4_no_append_for_a_user_not_owned() {
        let mut node = node(Instant::now());
        assert_eq!(node.append(&user()), [Refuse(Refusal::NotHeld)]);
        assert_eq!(node.state(&user()), NotOwned);
        let [TakeLease { term }] = node.take_over(&user())[..] else { panic!() };
        assert_eq!(node.append(&user()), [Refuse(Refusal::NotHeld)], "not during a take-over");
        node.on(&user(), Event::MarkerAppended { term, last: 0, marker: 1 });
        assert_eq!(node.append(&user()), [Refuse(Refusal::NotHeld)], "not before the file is caught up");
    }

    #[test]
    fn invariant_2_only_an_entry_the_log_took_commits() {
        for outcome in [Outcome::Taken(8), Outcome::Fenced, Outcome::NotApplied, Outcome::Unknown] {
            let (_, actions) = Appending { term: 1, expected: 7 }.on(Event::Appended { term: 1, outcome });
            assert_eq!(actions.contains(&Commit { seq: 8 }), outcome == Outcome::Taken(8), "{outcome:?}");
            assert_eq!(actions.contains(&RollBack), outcome != Outcome::Taken(8), "{outcome:?}");
        }
        // In every state, of this term or another: a commit follows only a taken entry.
        for state in states() {
            for event in events() {
                let (_, actions) = state.on(event);
                if actions.iter().any(|a| matches!(a, Commit { .. })) {
                    assert!(matches!(event, Event::Appended { outcome: Outcome::Taken(_), .. }), "{state:?} on {event:?}");
                }
            }
        }
    }

    /// A user owned (its marker at 1) whose append came to `outcome`: what the caller must do,
    /// and where the user stands.
    fn after_append(outcome: Outcome) -> (Vec<Action>, UserState) {
        let mut node = node(Instant::now());
        let term = taken(&mut node, 0);
        assert_eq!(node.append(&user()), [Send { term, expected: 1 }]);
        (node.on(&user(), Event::Appended { term, outcome }), node.state(&user()))
    }

    /// A user owned whose append the log took at 2, and whose call then did not commit (`why`).
    fn after_not_committed(why: NotCommitted) -> (Vec<Action>, UserState) {
        let mut node = node(Instant::now());
        let term = taken(&mut node, 0);
        node.append(&user());
        assert_eq!(node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(2) }), [Commit { seq: 2 }]);
        (node.on(&user(), Event::NotCommitted { term, why }), node.state(&user()))
    }

    #[test]
    fn invariant_3_a_fenced_append_gives_the_user_up() {
        assert_eq!(after_append(Outcome::Fenced), (vec![RollBack, Release], NotOwned));
    }

    #[test]
    fn invariant_3_an_append_not_applied_gives_the_user_up() {
        // Settled as not applied: the log moved on (another entry, or this node's marker).
        assert_eq!(after_append(Outcome::NotApplied), (vec![RollBack, Release], NotOwned));
    }

    #[test]
    fn invariant_3_an_append_of_unknown_outcome_gives_the_user_up() {
        assert_eq!(after_append(Outcome::Unknown), (vec![RollBack, Release], NotOwned));
    }

    #[test]
    fn invariant_3_a_commit_that_fails_after_the_log_took_the_entry_gives_the_user_up() {
        // The log holds entry 2, the file does not: the next owner replays it.
        assert_eq!(after_not_committed(NotCommitted::Commit), (vec![Release], NotOwned));
    }

    #[test]
    fn invariant_3_a_position_write_that_fails_after_the_log_took_the_entry_gives_the_user_up() {
        assert_eq!(after_not_committed(NotCommitted::PositionWrite), (vec![Release], NotOwned));
    }

    #[test]
    fn invariant_3_a_call_dropped_after_the_log_took_its_entry_gives_the_user_up() {
        assert_eq!(after_not_committed(NotCommitted::Dropped), (vec![Release], NotOwned));
    }

    #[test]
    fn invariant_2_a_taken_append_commits_and_owns_the_entry_once_committed() {
        assert_eq!(after_append(Outcome::Taken(2)).1, Committing { term: 1, seq: 2 });
    }

    #[test]
    fn invariant_3_every_failure_that_is_not_a_plain_refusal_gives_the_user_up() {
        for (state, event) in [
            (Appending { term: 1, expected: 5 }, Event::Appended { term: 1, outcome: Outcome::Fenced }),
            (Appending { term: 1, expected: 5 }, Event::Appended { term: 1, outcome: Outcome::NotApplied }),
            (Appending { term: 1, expected: 5 }, Event::Appended { term: 1, outcome: Outcome::Unknown }),
            (Committing { term: 1, seq: 6 }, Event::NotCommitted { term: 1, why: NotCommitted::PositionWrite }),
            (Committing { term: 1, seq: 6 }, Event::NotCommitted { term: 1, why: NotCommitted::Commit }),
            (Committing { term: 1, seq: 6 }, Event::NotCommitted { term: 1, why: NotCommitted::Dropped }),
        ] {
            let (next, actions) = state.on(event);
            assert_eq!(next, NotOwned, "{state:?} on {event:?}");
            assert!(actions.contains(&Release), "{state:?} on {event:?}");
        }
        // A plain refusal: nothing sent, nothing changed.
        for state in states() {
            for event in events() {
                let (next, actions) = state.on(event);
                if actions.iter().any(|a| matches!(a, Refuse(_))) {
                    assert_eq!((next, actions.len()), (state, 1), "{state:?} on {event:?}");
                }
            }
        }
    }

    #[test]
    fn invariant_4_a_given_up_user_is_neither_appended_for_nor_served_until_a_new_take_over_caught_it_up() {
        let now = Instant::now();
        let mut node = node(now);
        let term = taken(&mut node, 0);
        node.append(&user());
        node.on(&user(), Event::Appended { term, outcome: Outcome::Unknown });
        assert_eq!(node.append(&user()), [Refuse(Refusal::NotHeld)]);
        assert!(!node.serves(&user(), now));
        // Late events of the old term do not bring it back.
        for event in [Event::Committed { term }, Event::CaughtUp { term }, Event::Appended { term, outcome: Outcome::Taken(9) }] {
            node.on(&user(), event);
            assert_eq!(node.state(&user()), NotOwned, "{event:?}");
        }
        let term = taken(&mut node, 3);
        assert_eq!(node.append(&user()), [Send { term, expected: 4 }]);
        // No transition enters `Owned` but a catch-up of the same term, or a commit of its own.
        for state in states() {
            for event in events() {
                let (next, _) = state.on(event);
                if matches!(next, Owned { .. }) && next != state {
                    assert!(
                        matches!((state, event), (CatchingUp { term, .. }, Event::CaughtUp { term: of }) | (Committing { term, .. }, Event::Committed { term: of }) if of == term),
                        "{state:?} on {event:?} -> {next:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn invariant_5_reads_are_served_only_while_owned_and_the_lease_holds() {
        let confirmed = Instant::now();
        let mut node = node(confirmed);
        assert!(!node.serves(&user(), confirmed), "not owned");
        let term = taken(&mut node, 0);
        assert!(node.serves(&user(), confirmed));
        assert!(node.serves(&user(), confirmed + Duration::from_millis(1_499)));
        assert!(!node.serves(&user(), confirmed + Duration::from_millis(1_500)), "three quarters of the time to live at most");
        node.lease_renewed(confirmed + Duration::from_millis(1_400));
        assert!(node.serves(&user(), confirmed + Duration::from_millis(1_500)), "a refresh extends it");
        node.append(&user());
        assert!(!node.serves(&user(), confirmed), "not while an append is out");
        node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(2) });
        assert!(!node.serves(&user(), confirmed), "not while the file lacks an entry the log took");
        node.on(&user(), Event::Committed { term });
        assert!(node.serves(&user(), confirmed + Duration::from_millis(1_500)));
        assert!(!CommitProtocol::new(TTL).serves(&user(), confirmed), "a lease never confirmed holds nothing");
    }

    #[test]
    fn a_lease_holds_until_three_quarters_of_its_time_to_live() {
        let confirmed = Instant::now();
        let ttl = Duration::from_secs(2);
        assert!(lease_holds(confirmed, ttl, confirmed));
        assert!(lease_holds(confirmed, ttl, confirmed + Duration::from_millis(1_499)));
        assert!(!lease_holds(confirmed, ttl, confirmed + Duration::from_millis(1_500)), "a margin before the bucket lets it lapse");
        assert!(!lease_holds(confirmed, ttl, confirmed + ttl * 3));
    }

    #[test]
    fn the_lease_is_confirmed_again_before_serving_once_half_its_time_to_live_passed() {
        let confirmed = Instant::now();
        assert!(CommitProtocol::new(TTL).lease_due(confirmed), "never confirmed");
        let node = node(confirmed);
        assert!(!node.lease_due(confirmed + Duration::from_millis(999)));
        assert!(node.lease_due(confirmed + Duration::from_millis(1_000)));
    }

    #[test]
    fn invariant_6_a_lease_lapse_during_an_append_gives_the_user_up_and_the_late_answer_commits_but_owns_nothing() {
        let now = Instant::now();
        let mut node = node(now);
        let term = taken(&mut node, 0);
        node.append(&user());
        let lost = node.lease_refresh_failed(true, now).expect("a lapse");
        assert_eq!(lost, [(user(), vec![Release, DropInstance])]);
        // The log took it at the sequence expected: in order, so the call commits and is answered.
        assert_eq!(node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(2) }), [Commit { seq: 2 }]);
        assert_eq!(node.state(&user()), NotOwned, "but the user stays given up");
        assert!(node.on(&user(), Event::Committed { term }).is_empty(), "no snapshot is counted for a user not owned");
        assert_eq!(node.state(&user()), NotOwned);
        // The same lapse with an answer that is not a take: rolled back, nothing more to give up.
        let term = taken(&mut node, 2);
        node.append(&user());
        node.lease_refresh_failed(true, now);
        assert_eq!(node.on(&user(), Event::Appended { term, outcome: Outcome::Unknown }), [RollBack]);
        // And a lapse while the call commits.
        let term = taken(&mut node, 4);
        node.append(&user());
        node.on(&user(), Event::Appended { term, outcome: Outcome::Taken(6) });
        assert_eq!(node.lease_refresh_failed(true, now).unwrap(), [(user(), vec![Release, DropInstance])]);
        assert!(node.on(&user(), Event::NotCommitted { term, why: NotCommitted::Commit }).is_empty());
    }

    #[test]
    fn invariant_6_a_late_answer_of_an_earlier_term_changes_nothing_of_a_later_one() {
        let now = Instant::now();
        for outcome in [Outcome::Taken(2), Outcome::Fenced, Outcome::NotApplied, Outcome::Unknown] {
            let mut node = node(now);
            let old = taken(&mut node, 0);
            node.append(&user());
            node.lease_refresh_failed(true, now);
            node.lease_renewed(now);
            // Taken over again by this node (its marker at 3) before the old answer came.
            let new = taken(&mut node, 2);
            let actions = node.on(&user(), Event::Appended { term: old, outcome });
            assert!(!actions.contains(&Release), "{outcome:?} does not give the new term up");
            assert_eq!(node.state(&user()), Owned { term: new, last: 3 }, "{outcome:?} leaves the new term where it was");
            node.on(&user(), Event::NotCommitted { term: old, why: NotCommitted::Commit });
            node.on(&user(), Event::Committed { term: old });
            assert_eq!(node.append(&user()), [Send { term: new, expected: 3 }], "{outcome:?}");
        }
        // In every state, an event of another term changes nothing (the lapse and the leave,
        // node-wide, and a new take-over, which draws its term, are not of one).
        for state in states() {
            for event in events() {
                let of = match event {
                    Event::MarkerAppended { term, .. } | Event::CaughtUp { term } | Event::TakeOverFailed { term } | Event::Appended { term, .. } | Event::Committed { term } | Event::NotCommitted { term, .. } => term,
                    Event::TakeOver { .. } | Event::Append | Event::LeaseLapsed | Event::Leave => continue,
                };
                if term_of(state) != Some(of) {
                    assert_eq!(state.on(event).0, state, "{state:?} on {event:?}");
                }
            }
        }
    }

    #[test]
    fn invariant_7_a_lease_lapse_gives_every_user_up_and_overtakes_the_take_overs_under_way() {
        let now = Instant::now();
        let mut node = node(now);
        let owned: UserId = "owned".into();
        let [TakeLease { term }] = node.take_over(&owned)[..] else { panic!() };
        node.on(&owned, Event::MarkerAppended { term, last: 0, marker: 1 });
        node.on(&owned, Event::CaughtUp { term });
        let [TakeLease { term: leasing }] = node.take_over(&"leasing".into())[..] else { panic!() };
        let [TakeLease { term: catching }] = node.take_over(&"catching".into())[..] else { panic!() };
        node.on(&"catching".into(), Event::MarkerAppended { term: catching, last: 0, marker: 1 });
        let mut lost = node.lease_refresh_failed(true, now).unwrap();
        lost.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(lost, [("catching".into(), vec![]), ("leasing".into(), vec![]), (owned.clone(), vec![Release, DropInstance])]);
        assert_eq!(node.held_count(), 0);
        // The take-overs under way find they were overtaken: nothing is owned.
        assert_eq!(node.on(&"leasing".into(), Event::MarkerAppended { term: leasing, last: 0, marker: 1 }), [Abandon]);
        assert_eq!(node.on(&"catching".into(), Event::CaughtUp { term: catching }), [Abandon]);
        assert_eq!(node.state("leasing"), NotOwned);
        assert_eq!(node.state("catching"), NotOwned);
        // The node registers again, and may take users over again.
        node.lease_renewed(now);
        assert!(matches!(node.take_over(&owned)[..], [TakeLease { .. }]));
    }

    #[test]
    fn invariant_7_leaving_gives_every_user_up_and_takes_none_again() {
        let mut node = node(Instant::now());
        taken(&mut node, 0);
        let [TakeLease { term: other }] = node.take_over(&"other".into())[..] else { panic!() };
        let mut left = node.leave();
        left.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(left, [("other".into(), vec![]), (user(), vec![Release])]);
        assert!(node.has_left());
        assert_eq!(node.on(&"other".into(), Event::MarkerAppended { term: other, last: 0, marker: 1 }), [Abandon]);
        assert_eq!(node.take_over(&user()), [Refuse(Refusal::Left)]);
        assert_eq!(node.append(&user()), [Refuse(Refusal::NotHeld)], "an append after leaving is refused before it is sent");
        assert_eq!(node.state(&user()), NotOwned);
    }

    #[test]
    fn invariant_8_a_refresh_that_failed_without_the_key_changing_keeps_the_users_until_the_time_to_live() {
        let confirmed = Instant::now();
        let mut node = node(confirmed);
        taken(&mut node, 0);
        assert_eq!(node.lease_refresh_failed(false, confirmed + Duration::from_millis(1_999)), None);
        assert!(node.held(&user()).is_some());
        assert!(node.lease_refresh_failed(true, confirmed + Duration::from_millis(500)).is_some(), "a changed key lapsed, whatever the clock");
        let mut node = self::node(confirmed);
        taken(&mut node, 0);
        assert_eq!(node.lease_refresh_failed(false, confirmed + TTL).unwrap(), [(user(), vec![Release, DropInstance])]);
        assert_eq!(node.held(&user()), None);
        assert!(CommitProtocol::new(TTL).lease_refresh_failed(false, confirmed).is_some(), "a lease never confirmed does not stand");
    }
}
