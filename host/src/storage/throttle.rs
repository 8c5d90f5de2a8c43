//! Failed sign-ins, counted per e-mail address from one client address and per client
//! address: after a few failures in a row, further attempts are refused for a while, longer
//! each time, without even hashing the password. A success clears that e-mail's count. An
//! e-mail's count is kept per client address, so a stranger's guesses cannot lock its owner
//! out; each address's own count still pauses it whatever e-mails it tries.
//!
//! Sign-ups, counted per client address ([`SignUpThrottle`]): free accounts multiply every
//! per-user limit, so one address may create only so many.

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
    Email(String, Option<IpAddr>),
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
    let mut keys = vec![Key::Email(email.trim().to_lowercase(), client)];
    keys.extend(client.map(Key::Client));
    keys
}

impl Key {
    fn free_failures(&self) -> u32 {
        match self {
            Key::Email(..) => FREE_FAILURES_PER_EMAIL,
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

    /// A successful sign-in: the e-mail's count from that client starts again (the client's
    /// own stays).
    pub fn succeeded(&self, email: &str, client: Option<IpAddr>) {
        self.failures.lock().remove(&Key::Email(email.trim().to_lowercase(), client));
    }
}

/// How many sign-ups one client address may make: `count` at once, then again as the
/// `period` passes (`--max-signups-per-address`, e.g. `20/1h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignUpRate {
    pub count: u32,
    pub period_ms: u64,
}

impl Default for SignUpRate {
    fn default() -> Self {
        Self { count: 20, period_ms: 3_600_000 }
    }
}

/// Sign-ups per client address, as a leaky bucket (GCRA): each sign-up moves the address's
/// "next free" time on by `period / count`; a sign-up is refused while that time is more than
/// `period - period / count` ahead.
pub struct SignUpThrottle {
    rate: SignUpRate,
    next_free_ms: Mutex<BoundedMap<IpAddr, u64>>,
}

impl SignUpThrottle {
    pub fn new(rate: SignUpRate) -> Self {
        Self { rate: SignUpRate { count: rate.count.max(1), ..rate }, next_free_ms: Mutex::new(BoundedMap::new(TRACKED)) }
    }

    /// Count a sign-up from `client`, or `Err(seconds to wait)`.
    pub fn take(&self, client: IpAddr, now_ms: u64) -> Result<(), u64> {
        let interval = (self.rate.period_ms / u64::from(self.rate.count)).max(1);
        let burst = self.rate.period_ms.saturating_sub(interval);
        let mut next_free = self.next_free_ms.lock();
        let at = next_free.get(&client).copied().unwrap_or(0).max(now_ms);
        if at - now_ms > burst {
            return Err((at - now_ms - burst).div_ceil(1000));
        }
        next_free.insert(client, at + interval);
        Ok(())
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
        assert_eq!(throttle.check("a@x", client, 0), Err(1));
        assert_eq!(throttle.check("other@x", client, 500), Ok(()), "the client has more failures free");
        for i in 0..(FREE_FAILURES_PER_CLIENT - FREE_FAILURES_PER_EMAIL) {
            throttle.failed(&format!("n{i}@x"), client, 500);
        }
        assert_eq!(throttle.check("other@x", client, 500), Err(1), "then the client is paused, whatever the e-mail");
        assert_eq!(throttle.check("other@x", None, 1_000), Ok(()));
        let second: Option<IpAddr> = Some("127.0.0.10".parse().unwrap());
        for _ in 0..=FREE_FAILURES_PER_EMAIL {
            throttle.failed("z@x", second, 0);
        }
        throttle.failed("z@x", second, 1_000);
        assert_eq!(throttle.check("z@x", second, 1_000), Err(2), "the pause doubles");
        throttle.succeeded("z@x", second);
        assert_eq!(throttle.check("z@x", second, 1_000), Ok(()));
        assert_eq!(throttle.check("b@x", client, 1_000 + FORGET_AFTER_MS + 1), Ok(()));
    }

    #[test]
    fn a_strangers_failures_do_not_lock_the_owner_out() {
        let throttle = SignInThrottle::default();
        let (stranger, owner): (Option<IpAddr>, Option<IpAddr>) = (Some("203.0.113.5".parse().unwrap()), Some("198.51.100.8".parse().unwrap()));
        for _ in 0..=FREE_FAILURES_PER_EMAIL {
            throttle.failed("victim@x", stranger, 0);
        }
        assert_eq!(throttle.check("victim@x", stranger, 0), Err(1), "the stranger is paused for that e-mail");
        assert_eq!(throttle.check("victim@x", owner, 0), Ok(()), "the owner, from elsewhere, is not");
    }

    #[test]
    fn sign_ups_per_address_come_in_a_burst_then_at_the_rate() {
        let throttle = SignUpThrottle::new(SignUpRate { count: 3, period_ms: 3_000 });
        let (a, b): (IpAddr, IpAddr) = ("203.0.113.5".parse().unwrap(), "198.51.100.8".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(throttle.take(a, 10_000), Ok(()));
        }
        assert_eq!(throttle.take(a, 10_000), Err(1), "the fourth waits for a second");
        assert_eq!(throttle.take(b, 10_000), Ok(()), "another address has its own");
        assert_eq!(throttle.take(a, 10_999), Err(1));
        assert_eq!(throttle.take(a, 11_000), Ok(()), "one more each period / count");
        assert_eq!(throttle.take(a, 11_000), Err(1));
        assert_eq!(throttle.take(a, 20_000), Ok(()), "a quiet address has its burst again");
        assert_eq!(throttle.take(a, 20_000), Ok(()));
    }
}
