//! The `connection_init` timeout, driven by the actor's single host alarm.
//!
//! Invariant (once the cache is complete): the alarm is set to the earliest
//! `opened_at + init timeout` among sockets awaiting init, or cleared when there is none.
//! The host keeps the alarm across evictions; a fresh instance does not know what it is
//! set to, so its first re-arm always sets or clears it. An alarm that fires with nothing
//! due (e.g. the socket was acknowledged meanwhile) just re-arms.

use crate::protocol::close;
use crate::realtime::host::{alarm, settings, sockets};
use crate::state::{self, Cache};

/// What this instance knows about the host alarm.
#[derive(Default)]
pub struct Timer {
    /// `Some(armed)` once this instance set or cleared the alarm; `armed` is its time.
    known: Option<Option<u64>>,
    timeout_ms: Option<u64>,
}

/// What to do with the host alarm.
#[derive(Debug, PartialEq)]
pub enum AlarmAction {
    Keep,
    Set(u64),
    Clear,
}

/// Compare the alarm as known (`None` = unknown) with the one wanted.
pub fn plan(known: Option<Option<u64>>, wanted: Option<u64>) -> AlarmAction {
    match (known, wanted) {
        (Some(armed), wanted) if armed == wanted => AlarmAction::Keep,
        (_, Some(at)) => AlarmAction::Set(at),
        (_, None) => AlarmAction::Clear,
    }
}

/// The deadline of a socket opened at `opened_at`.
pub fn deadline(opened_at: u64, timeout_ms: u64) -> u64 {
    opened_at.saturating_add(timeout_ms)
}

/// The sockets (from `(opened_at, socket)`, earliest first) whose deadline is at or before `now`.
pub fn due<'a>(
    pending: impl Iterator<Item = &'a (u64, sockets::SocketId)>,
    timeout_ms: u64,
    now: u64,
) -> Vec<sockets::SocketId> {
    pending
        .take_while(|(opened_at, _)| deadline(*opened_at, timeout_ms) <= now)
        .map(|(_, socket)| *socket)
        .collect()
}

impl Timer {
    /// `settings.init-timeout-ms`, asked once per instance.
    pub fn timeout_ms(&mut self) -> u64 {
        *self.timeout_ms.get_or_insert_with(settings::init_timeout_ms)
    }

    /// Whether a socket opened at `opened_at` is past its deadline.
    pub fn expired(&mut self, opened_at: u64) -> bool {
        let timeout = self.timeout_ms();
        alarm::now_ms() >= deadline(opened_at, timeout)
    }

    /// Set or clear the host alarm for the earliest socket awaiting init.
    pub fn rearm(&mut self, cache: &mut Cache) {
        state::ensure_complete(cache);
        let timeout = self.timeout_ms();
        let wanted = cache.first_pending().map(|(opened_at, _)| deadline(opened_at, timeout));
        match plan(self.known, wanted) {
            AlarmAction::Keep => {}
            AlarmAction::Set(at) => alarm::set(at),
            AlarmAction::Clear => alarm::clear(),
        }
        self.known = Some(wanted);
    }

    /// The alarm fired: close every socket past its deadline with 4408, then re-arm.
    pub fn on_alarm(&mut self, cache: &mut Cache) {
        state::sync_with_list(cache);
        let timeout = self.timeout_ms();
        let now = alarm::now_ms();
        for socket in due(cache.pending(), timeout, now) {
            sockets::close(socket, close::INIT_TIMEOUT, close::INIT_TIMEOUT_REASON);
            cache.insert(socket, state::Conn::Closed);
        }
        // A fired alarm is spent.
        self.known = Some(None);
        self.rearm(cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(None, None), AlarmAction::Clear);
        assert_eq!(plan(None, Some(5)), AlarmAction::Set(5));
        assert_eq!(plan(Some(None), None), AlarmAction::Keep);
        assert_eq!(plan(Some(Some(5)), Some(5)), AlarmAction::Keep);
        assert_eq!(plan(Some(Some(5)), Some(9)), AlarmAction::Set(9));
        assert_eq!(plan(Some(Some(5)), None), AlarmAction::Clear);
    }

    #[test]
    fn due_sockets() {
        let pending = [(100, 1), (150, 2), (300, 3)];
        assert!(due(pending.iter(), 50, 149).is_empty());
        assert_eq!(due(pending.iter(), 50, 150), vec![1]);
        assert_eq!(due(pending.iter(), 50, 200), vec![1, 2]);
        assert_eq!(due(pending.iter(), 50, 10_000), vec![1, 2, 3]);
        assert_eq!(deadline(u64::MAX, 5), u64::MAX);
    }
}
