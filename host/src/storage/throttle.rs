//! Failed sign-ins, counted per e-mail address and per client address: after a few
//! failures in a row, further attempts are refused for a while, longer each time, without
//! even hashing the password. A success clears the e-mail's count.

use std::net::IpAddr;

use parking_lot::Mutex;

use super::bounded::BoundedMap;

/// Failures allowed before the first pause: for one e-mail, and (higher, since many people
/// can share an address behind a NAT) for one client address.
const FREE_FAILURES_PER_EMAIL: u32 = 5;
const FREE_FAILURES_PER_CLIENT: u32 = 20;
/// The first pause; each further failure doubles it, up to [`MAX_PAUSE_MS`].
const FIRST_PAUSE_MS: u64 = 1_000;
const MAX_PAUSE_MS: u64 = 15 * 60 * 1_000;
/// A count older than this (no failure since) starts again from zero.
const FORGET_AFTER_MS: u64 = 15 * 60 * 1_000;
/// Addresses and e-mails tracked at most.
const TRACKED: usize = 100_000;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
    paused_until_ms: u64,
}

/// What a sign-in attempt is counted under.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Client(IpAddr),
}

pub struct SignInThrottle {
    failures: Mutex<BoundedMap<Key, Failures>>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self { failures: Mutex::new(BoundedMap::new(TRACKED)) }
    }
}

fn keys(email: &str, client: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![Key::Email(email.trim().to_lowercase())];
    keys.extend(client.map(Key::Client));
    keys
}

impl Key {
    fn free_failures(&self) -> u32 {
        match self {
            Key::Email(_) => FREE_FAILURES_PER_EMAIL,
            Key::Client(_) => FREE_FAILURES_PER_CLIENT,
        }
    }
}

impl SignInThrottle {
    /// `Err(seconds to wait)` while this e-mail or this client is paused.
    pub fn check(&self, email: &str, client: Option<IpAddr>, now_ms: u64) -> Result<(), u64> {
        let failures = self.failures.lock();
        let wait_ms = keys(email, client)
            .iter()
            .filter_map(|key| failures.get(key))
            .map(|f| f.paused_until_ms.saturating_sub(now_ms))
            .max()
            .unwrap_or(0);
        if wait_ms > 0 {
            Err(wait_ms.div_ceil(1000))
        } else {
            Ok(())
        }
    }

    /// Count a failure against the e-mail and the client.
    pub fn failed(&self, email: &str, client: Option<IpAddr>, now_ms: u64) {
        let mut failures = self.failures.lock();
        for key in keys(email, client) {
            let mut entry = failures.get(&key).copied().unwrap_or(Failures { count: 0, last_ms: now_ms, paused_until_ms: 0 });
            if now_ms.saturating_sub(entry.last_ms) > FORGET_AFTER_MS {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last_ms = now_ms;
            let free = key.free_failures();
            if entry.count > free {
                let doublings = (entry.count - free - 1).min(20);
                entry.paused_until_ms = now_ms + (FIRST_PAUSE_MS << doublings).min(MAX_PAUSE_MS);
            }
            failures.insert(key, entry);
        }
    }

    /// A successful sign-in: the e-mail's count starts again (the client's stays).
    pub fn succeeded(&self, email: &str) {
        self.failures.lock().remove(&Key::Email(email.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_after_the_free_failures_and_a_success_clears_the_email() {
        let throttle = SignInThrottle::default();
        let client: Option<IpAddr> = Some("127.0.0.9".parse().unwrap());
        for _ in 0..FREE_FAILURES_PER_EMAIL {
            assert_eq!(throttle.check("a@x", client, 0), Ok(()));
            throttle.failed("a@x", client, 0);
        }
        assert_eq!(throttle.check("A@x ", None, 0), Ok(()), "five failures are free");
        throttle.failed("a@x", client, 0);
        assert_eq!(throttle.check("a@x", None, 0), Err(1));
        assert_eq!(throttle.check("other@x", client, 500), Ok(()), "the client has more failures free");
        for i in 0..(FREE_FAILURES_PER_CLIENT - FREE_FAILURES_PER_EMAIL) {
            throttle.failed(&format!("n{i}@x"), client, 500);
        }
        assert_eq!(throttle.check("other@x", client, 500), Err(1), "then the client is paused, whatever the e-mail");
        assert_eq!(throttle.check("other@x", None, 1_000), Ok(()));
        throttle.failed("a@x", None, 1_000);
        assert_eq!(throttle.check("a@x", None, 1_000), Err(2), "the pause doubles");
        throttle.succeeded("a@x");
        assert_eq!(throttle.check("a@x", None, 1_000), Ok(()));
        assert_eq!(throttle.check("b@x", client, 1_000 + FORGET_AFTER_MS + 1), Ok(()));
    }
}
