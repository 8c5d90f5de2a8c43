//! A `user-channel-component` for fault tests: a text frame containing `trap` panics, and so
//! does a `publish` whose events contain `trap` (one whose events contain `slow` is busy for
//! 300 ms); `connection_init` is acknowledged
//! (header-authenticated sockets only); nothing else.

wit_bindgen::generate!({ path: "../../wit", world: "user-channel-component" });

use exports::realtime::host::user_channel_actor::{ChannelEvent, Guest};
use realtime::host::sockets;

struct Faulty;

impl Guest for Faulty {
    fn on_open(_socket: u64) {}

    fn on_message(socket: u64, text: String, _binary: bool) {
        if text.contains("trap") {
            panic!("asked to trap");
        }
        if text.contains("connection_init") {
            match sockets::authenticate(socket, None) {
                Ok(()) => sockets::send(socket, r#"{"type":"connection_ack"}"#),
                Err(_) => sockets::close(socket, 4403, "Forbidden"),
            }
        }
    }

    fn on_close(_socket: u64, _code: u16) {}
    fn on_alarm() {}
    fn publish(events: Vec<ChannelEvent>) {
        if events.iter().any(|e| e.event.contains("trap")) {
            panic!("asked to trap in publish");
        }
        if events.iter().any(|e| e.event.contains("slow")) {
            // Busy for about 300 ms (under the CPU limit): a user-channel that falls behind.
            let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
            while std::time::Instant::now() < until {
                std::hint::black_box(());
            }
        }
    }

    fn connection_count() -> u32 {
        sockets::list().len() as u32
    }

    fn subscriber_count(_channel: String) -> u32 {
        0
    }
}

export!(Faulty);
