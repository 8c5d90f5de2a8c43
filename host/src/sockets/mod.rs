//! The WebSockets the host owns: which actor owns each one, its attachment, and its
//! bounded outgoing queue. Sockets outlive the actor instances that serve them.

pub mod connection;
mod hub;
mod queue;

pub use hub::{Opener, Refused, SessionTag, SocketHub, CLOSE_SIGNED_OUT};
pub use queue::{Admission, HeldFrames, Outbound, QueueLimits, SendQueue, Utf8Bytes, CLOSE_NOT_READING};

/// A socket's id, unique for the life of the process.
pub type SocketId = u64;

/// The most bytes one socket's attachment may hold.
pub const MAX_ATTACHMENT_BYTES: u32 = 16 * 1024;
