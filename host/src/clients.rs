//! Client addresses: who a connection is, and how much of the server one address may hold.
//!
//! - **The address**: the TCP peer, unless the peer is a trusted proxy (`--trusted-proxy`),
//!   in which case it is the rightmost `X-Forwarded-For` entry that is not itself a trusted
//!   proxy (entries further left are whatever the client wrote, so they are never believed).
//! - **Connections per address**: HTTP connections and the WebSockets upgraded from them,
//!   counted per peer address (`--max-connections-per-address`); a connection over the cap is
//!   refused (503) before anything is read. Trusted proxies are not capped: they carry many
//!   clients.
//! - **Anonymous sockets per address**: sockets that have not authenticated yet, per client
//!   address (`--max-anonymous-sockets-per-address`), so one address cannot hold every slot
//!   before `connection_init` (the process-wide `--max-anonymous-sockets`).
//!
//! Each counted thing is held by a [`Slot`]: its count goes down when the last handle to the
//! slot is dropped, so no path can leak a count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::HeaderMap;
use parking_lot::Mutex;

/// `X-Forwarded-For`.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request (a request extension, set for every request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpAddr>);

impl TrustedProxies {
    pub fn new(addresses: Vec<IpAddr>) -> Self {
        Self(addresses)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address)
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy, else the
    /// rightmost forwarded address that is not a trusted proxy (or `peer` when there is none).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let forwarded = headers.get_all(FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<IpAddr> = forwarded.flat_map(|v| v.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
        hops.into_iter().rev().find(|hop| !self.contains(*hop)).unwrap_or(peer)
    }
}

/// One HTTP connection counted toward `--max-connections`, given back once: when the
/// connection ends, or as soon as it becomes a WebSocket (which the socket table counts from
/// then on: counting it twice while the upgrade finishes refused clients under the cap).
pub struct CountedConnection {
    open: Arc<std::sync::atomic::AtomicU64>,
    released: std::sync::atomic::AtomicBool,
}

impl CountedConnection {
    /// Count one more connection in `open`.
    pub fn new(open: &Arc<std::sync::atomic::AtomicU64>) -> Arc<Self> {
        open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Arc::new(Self { open: open.clone(), released: std::sync::atomic::AtomicBool::new(false) })
    }

    /// Stop counting it (the first call only).
    pub fn release(&self) {
        if !self.released.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        self.release();
    }
}

/// A count per address, capped.
pub struct PerAddress {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted use of an address; the count goes down when the last clone is dropped.
pub struct Slot {
    owner: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap: cap.max(1), counts: Mutex::default() })
    }

    /// Count one more use of `address`, or `None` when it already holds the cap.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Option<Arc<Slot>> {
        let mut counts = self.counts.lock();
        let count = counts.entry(address).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Arc::new(Slot { owner: self.clone(), address }))
    }

    /// The uses `address` holds now.
    pub fn count(&self, address: IpAddr) -> usize {
        self.counts.lock().get(&address).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock();
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::new(vec![ip("127.0.0.1")]);
        assert_eq!(proxies.client(ip("203.0.113.9"), &forwarded(&["198.51.100.1"])), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &forwarded(&["198.51.100.1"])), ip("127.0.0.1"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::new(vec![ip("127.0.0.1"), ip("10.0.0.2")]);
        // The client wrote the first entry itself: it is not believed.
        let headers = forwarded(&["6.6.6.6, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("198.51.100.7"));
        assert_eq!(proxies.client(ip("127.0.0.1"), &forwarded(&["::1"])), ip("::1"));
        assert_eq!(proxies.client(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"), "no header: the proxy itself");
        assert_eq!(proxies.client(ip("127.0.0.1"), &forwarded(&["junk"])), ip("127.0.0.1"));
    }

    #[test]
    fn a_connection_is_counted_once_until_released_or_dropped() {
        let open = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let upgraded = CountedConnection::new(&open);
        let plain = CountedConnection::new(&open);
        assert_eq!(open.load(std::sync::atomic::Ordering::SeqCst), 2);
        upgraded.release();
        upgraded.release();
        assert_eq!(open.load(std::sync::atomic::Ordering::SeqCst), 1, "released once, however often asked");
        drop(upgraded);
        drop(plain);
        assert_eq!(open.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_dropping_gives_it_back() {
        let per = PerAddress::new(2);
        let (a, b) = (ip("198.51.100.1"), ip("198.51.100.2"));
        let one = per.take(a).expect("first");
        let two = per.take(a).expect("second");
        assert!(per.take(a).is_none(), "the third is over the cap");
        assert!(per.take(b).is_some(), "another address has its own count");
        let clone = one.clone();
        drop(one);
        assert_eq!(per.count(a), 2, "a clone still holds the slot");
        drop(clone);
        assert_eq!(per.count(a), 1);
        assert!(per.take(a).is_some());
        drop(two);
        assert!(per.counts.lock().get(&b).is_none(), "an address with no use is forgotten");
    }
}
