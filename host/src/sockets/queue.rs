//! One socket's outgoing frames: bounded in frames and in bytes, per socket and over the
//! whole process, and allocation-free while empty; and the socket's kill switch.
//!
//! A socket spends most of its life idle, so its queue holds no buffer then: the deque
//! allocates on the first frame and is released once drained. The rules:
//! - a frame that would take a socket that is already behind (frames waiting) over its own
//!   budget is refused and the socket killed (1008): a client that does not read cannot make
//!   the server hold unbounded memory, and only that client loses its socket;
//! - a socket that keeps up (nothing waiting) gets its next frame whatever its own budget
//!   (one message is bounded by `--max-outgoing-frame-bytes` before it gets here);
//! - no frame takes the process over its total, whichever socket it is for: the budget is
//!   what the process may hold, not a hint. When a socket that keeps up meets a full budget,
//!   the sockets furthest behind are dropped to make room (see `SocketHub::make_room`): the
//!   clients that do not read pay for the budget, not the ones that do;
//! - one call holds at most half the process's total, so another user's delivery always
//!   finds room once the queues of those who do not read are shed;
//! - frames a call sends are held by its output gate until it commits ([`HeldFrames`]): they
//!   count against the same budgets from the moment they are sent, so a call that fans one
//!   event out to many sockets cannot hold more than the process may queue (a socket whose
//!   frame would not be admitted is killed at once, and the frame is not held);
//! - the first kill wins; the same switch ends a socket for other reasons (its session signed
//!   out: 4403).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Policy violation: the client does not read what it asked for.
pub const CLOSE_NOT_READING: u16 = 1008;
const NOT_READING: &str = "Send queue full: the client is not reading";

/// A frame for a socket's writer. A text frame is a shared buffer: the same bytes sent to
/// several sockets are held once (see the `sockets.send` import).
#[derive(Debug)]
pub enum Outbound {
    Text(Utf8Bytes),
    Close(u16, String),
}

impl Outbound {
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            Outbound::Close(_, reason) => reason.len(),
        }
    }
}

/// How much one socket may have queued, and the process's running total.
#[derive(Debug)]
pub struct QueueLimits {
    pub frames: usize,
    pub bytes: usize,
    /// Bytes queued over every socket at most.
    pub process_bytes: usize,
    /// Bytes queued over every socket now.
    pub queued: AtomicUsize,
    /// Bytes of frames calls have sent and still hold (see [`HeldFrames`]).
    pub held: AtomicUsize,
}

impl QueueLimits {
    pub fn new(frames: usize, bytes: usize, process_bytes: usize) -> Arc<Self> {
        Arc::new(Self { frames: frames.max(1), bytes, process_bytes, queued: AtomicUsize::new(0), held: AtomicUsize::new(0) })
    }
}

/// What [`SendQueue::admits`] says of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the socket's own budget (or the socket ended): refuse it, drop the socket.
    Refused,
    /// The socket keeps up but the process's total is full: shed the sockets furthest behind.
    NeedsRoom,
}

/// The frames one call has sent and holds until its output gate opens: counted per socket and
/// in the process's `held` total, given back when dropped (after they were queued, or with a
/// call that rolled back).
#[derive(Default)]
pub struct HeldFrames {
    limits: Option<Arc<QueueLimits>>,
    bytes: usize,
    per_socket: std::collections::HashMap<u64, usize>,
}

impl HeldFrames {
    /// Bytes this call holds for `socket`.
    pub fn for_socket(&self, socket: u64) -> usize {
        self.per_socket.get(&socket).copied().unwrap_or(0)
    }

    /// Bytes this call holds over every socket.
    pub fn total(&self) -> usize {
        self.bytes
    }

    /// Count `size` more bytes held for `socket`.
    pub fn hold(&mut self, limits: &Arc<QueueLimits>, socket: u64, size: usize) {
        limits.held.fetch_add(size, Ordering::Relaxed);
        self.limits.get_or_insert_with(|| limits.clone());
        self.bytes += size;
        *self.per_socket.entry(socket).or_insert(0) += size;
    }
}

impl Drop for HeldFrames {
    fn drop(&mut self) {
        if let Some(limits) = &self.limits {
            limits.held.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Frames {
    frames: VecDeque<Outbound>,
    bytes: usize,
    /// Set once: the close the socket's task sends; nothing is queued after it.
    ended: Option<(u16, String)>,
}

pub struct SendQueue {
    state: Mutex<Frames>,
    limits: Arc<QueueLimits>,
    /// Told when a frame arrives.
    ready: Notify,
    ended: AtomicBool,
    /// Told when the socket is killed.
    kill: Notify,
}

impl SendQueue {
    pub fn new(limits: Arc<QueueLimits>) -> Self {
        Self { state: Mutex::default(), limits, ready: Notify::new(), ended: AtomicBool::new(false), kill: Notify::new() }
    }

    /// Queue a frame; false when it was refused (the socket is ending, or this frame
    /// overflowed it and it is now killed with 1008).
    pub fn push(&self, frame: Outbound) -> bool {
        let size = frame.bytes();
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return false;
        }
        let behind = !state.frames.is_empty();
        let over = state.frames.len() >= self.limits.frames
            || (behind && state.bytes + size > self.limits.bytes)
            || self.limits.queued.load(Ordering::Relaxed) + size > self.limits.process_bytes;
        if over {
            self.end(&mut state, CLOSE_NOT_READING, NOT_READING.into());
            return false;
        }
        state.frames.push_back(frame);
        state.bytes += size;
        self.limits.queued.fetch_add(size, Ordering::Relaxed);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Whether a frame of `size` bytes, with `held` bytes already held for this socket by the
    /// calling call (`call_held` over all its sockets), would be admitted by
    /// [`SendQueue::push`]'s rules, counting what every call holds as queued.
    pub fn admits(&self, held: usize, call_held: usize, size: usize) -> Admission {
        let state = self.state.lock();
        if state.ended.is_some() {
            return Admission::Refused;
        }
        let behind = !state.frames.is_empty() || held > 0;
        if state.frames.len() >= self.limits.frames
            || (behind && state.bytes + held + size > self.limits.bytes)
            || call_held + size > self.limits.process_bytes / 2
        {
            return Admission::Refused;
        }
        let process = self.limits.queued.load(Ordering::Relaxed) + self.limits.held.load(Ordering::Relaxed);
        match (process + size <= self.limits.process_bytes, behind) {
            (true, _) => Admission::Admitted,
            (false, true) => Admission::Refused,
            (false, false) => Admission::NeedsRoom,
        }
    }

    /// Bytes queued for this socket now.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// End the socket: drop what is queued and have its task close it with `code`. The first
    /// kill wins; later ones change nothing.
    pub fn kill(&self, code: u16, reason: &str) {
        let mut state = self.state.lock();
        if state.ended.is_none() {
            self.end(&mut state, code, reason.into());
        }
    }

    fn end(&self, state: &mut Frames, code: u16, reason: String) {
        self.limits.queued.fetch_sub(state.bytes, Ordering::Relaxed);
        *state = Frames { ended: Some((code, reason)), ..Frames::default() };
        self.ended.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    /// The next frame, if one is waiting. The buffer is released when this empties it.
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut state = self.state.lock();
        let frame = state.frames.pop_front()?;
        let size = frame.bytes();
        state.bytes -= size;
        self.limits.queued.fetch_sub(size, Ordering::Relaxed);
        if state.frames.is_empty() && state.frames.capacity() > 0 {
            state.frames = VecDeque::new();
        }
        Some(frame)
    }

    /// Wait for the next frame.
    pub async fn pop(&self) -> Outbound {
        loop {
            if let Some(frame) = self.try_pop() {
                return frame;
            }
            // A push between the check above and this wait leaves a permit: no frame is missed.
            self.ready.notified().await;
        }
    }

    /// Whether the socket has been killed.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Resolves once the socket is killed, with the close to send.
    pub async fn killed(&self) -> (u16, String) {
        loop {
            if let Some(close) = self.state.lock().ended.clone() {
                return close;
            }
            self.kill.notified().await;
        }
    }
}

impl Drop for SendQueue {
    fn drop(&mut self) {
        self.limits.queued.fetch_sub(self.state.get_mut().bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(s: &str) -> Outbound {
        Outbound::Text(s.into())
    }

    #[tokio::test]
    async fn bounded_in_frames_ordered_and_empty_when_drained() {
        let queue = SendQueue::new(QueueLimits::new(2, 1 << 20, 1 << 30));
        assert!(queue.push(text("a")));
        assert!(queue.push(text("b")));
        assert!(matches!(queue.pop().await, Outbound::Text(t) if t == "a"));
        assert!(matches!(queue.try_pop(), Some(Outbound::Text(t)) if t == "b"));
        assert_eq!(queue.state.lock().frames.capacity(), 0, "a drained queue holds no buffer");
        assert!(queue.try_pop().is_none());
        assert!(queue.push(text("c")) && queue.push(text("d")));
        assert!(!queue.push(text("e")), "the third frame overflows");
        let close = tokio::time::timeout(Duration::from_secs(1), queue.killed()).await.expect("killed");
        assert_eq!(close.0, CLOSE_NOT_READING);
        assert!(queue.try_pop().is_none(), "a killed queue drops what it held");
        assert!(!queue.push(text("f")), "and takes nothing more");
    }

    #[tokio::test]
    async fn bounded_in_bytes_yet_a_large_frame_reaches_a_socket_that_keeps_up() {
        let limits = QueueLimits::new(100, 10, 1 << 30);
        let queue = SendQueue::new(limits.clone());
        assert!(queue.push(text(&"x".repeat(50))), "the only frame may exceed the budget");
        assert_eq!(limits.queued.load(Ordering::Relaxed), 50);
        queue.try_pop();
        assert_eq!(limits.queued.load(Ordering::Relaxed), 0);
        assert!(queue.push(text("12345")) && queue.push(text("67890")));
        assert!(!queue.push(text("1")), "a socket behind by its whole budget takes no more");
        assert_eq!(queue.killed().await.0, CLOSE_NOT_READING);
        assert_eq!(limits.queued.load(Ordering::Relaxed), 0, "the process total is given back");
    }

    #[tokio::test]
    async fn no_frame_takes_the_process_over_its_total() {
        let limits = QueueLimits::new(100, 1 << 20, 10);
        let slow = SendQueue::new(limits.clone());
        let keeping_up = SendQueue::new(limits.clone());
        assert!(slow.push(text("123456")));
        assert!(keeping_up.push(text("abcd")), "within the total, an empty queue takes its frame");
        assert!(!slow.push(text("1")), "a frame past the total is refused, and its socket dropped");
        assert_eq!(limits.queued.load(Ordering::Relaxed), 4, "what the dropped socket held is given back");
        keeping_up.try_pop();
        let fresh = SendQueue::new(limits.clone());
        assert!(!fresh.push(text(&"x".repeat(11))), "even an empty queue: the total is what the process may hold");
        assert!(!keeping_up.is_ended());
        drop(keeping_up);
        assert_eq!(limits.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn frames_a_call_holds_count_against_the_budgets_until_dropped() {
        let limits = QueueLimits::new(100, 10, 25);
        let queue = SendQueue::new(limits.clone());
        let other = SendQueue::new(limits.clone());
        let mut held = HeldFrames::default();
        assert_eq!(queue.admits(held.for_socket(1), held.total(), 8), Admission::Admitted, "the first frame of an idle socket");
        held.hold(&limits, 1, 8);
        assert_eq!(queue.admits(held.for_socket(1), held.total(), 8), Admission::Refused, "a second frame takes the socket over its budget");
        assert_eq!(other.admits(0, held.total(), 6), Admission::Refused, "one call holds at most half the process's total");
        let mut another_call = HeldFrames::default();
        assert_eq!(other.admits(0, 0, 10), Admission::Admitted, "another socket has its own budget");
        another_call.hold(&limits, 2, 10);
        let third = SendQueue::new(limits.clone());
        assert_eq!(third.admits(0, 0, 8), Admission::NeedsRoom, "8 + 10 held and 8 more pass the process's 25: a socket that keeps up asks for room");
        assert_eq!(limits.held.load(Ordering::Relaxed), 18);
        drop(held);
        drop(another_call);
        assert_eq!(limits.held.load(Ordering::Relaxed), 0, "given back when the calls end");
        assert_eq!(third.admits(0, 0, 8), Admission::Admitted);
    }

    #[tokio::test]
    async fn the_first_kill_wins() {
        let queue = SendQueue::new(QueueLimits::new(4, 1 << 20, 1 << 30));
        queue.kill(4403, "Forbidden");
        queue.kill(1008, "later");
        assert_eq!(queue.killed().await, (4403, "Forbidden".to_string()));
        assert!(queue.is_ended());
    }
}
