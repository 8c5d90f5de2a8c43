//! One socket's outgoing frames: bounded, and allocation-free while empty.
//!
//! A socket spends most of its life idle, so its queue holds no buffer then: the deque
//! allocates on the first frame and is released once drained. When a frame would exceed
//! the bound, the queue is marked killed instead: a client that does not read cannot make
//! the server hold unbounded memory, and its task closes the socket at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A frame for a socket's writer.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Close(u16, String),
}

pub struct SendQueue {
    frames: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    /// Told when a frame arrives.
    ready: Notify,
    killed: AtomicBool,
    /// Told when the queue overflows.
    kill: Notify,
}

impl SendQueue {
    pub fn new(capacity: usize) -> Self {
        Self { frames: Mutex::new(VecDeque::new()), capacity: capacity.max(1), ready: Notify::new(), killed: AtomicBool::new(false), kill: Notify::new() }
    }

    /// Queue a frame; false (and the socket is killed) when the queue is full.
    pub fn push(&self, frame: Outbound) -> bool {
        let mut frames = self.frames.lock();
        if frames.len() >= self.capacity {
            drop(frames);
            self.killed.store(true, Ordering::Release);
            self.kill.notify_one();
            return false;
        }
        frames.push_back(frame);
        drop(frames);
        self.ready.notify_one();
        true
    }

    /// The next frame, if one is waiting. The buffer is released when this empties it.
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut frames = self.frames.lock();
        let frame = frames.pop_front();
        if frames.is_empty() && frames.capacity() > 0 {
            *frames = VecDeque::new();
        }
        frame
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

    /// Resolves once the queue has overflowed.
    pub async fn killed(&self) {
        while !self.killed.load(Ordering::Acquire) {
            self.kill.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_ordered_and_empty_when_drained() {
        let queue = SendQueue::new(2);
        assert!(queue.push(Outbound::Text("a".into())));
        assert!(queue.push(Outbound::Text("b".into())));
        assert!(matches!(queue.pop().await, Outbound::Text(t) if t == "a"));
        assert!(matches!(queue.try_pop(), Some(Outbound::Text(t)) if t == "b"));
        assert_eq!(queue.frames.lock().capacity(), 0, "a drained queue holds no buffer");
        assert!(queue.try_pop().is_none());
        assert!(queue.push(Outbound::Text("c".into())) && queue.push(Outbound::Text("d".into())));
        assert!(!queue.push(Outbound::Text("e".into())), "the third frame overflows");
        tokio::time::timeout(std::time::Duration::from_secs(1), queue.killed()).await.expect("killed");
    }
}
