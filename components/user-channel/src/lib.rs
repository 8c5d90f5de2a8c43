//! The per-user graphql-ws actor of Library Realtime (world `user-channel-component`).
//!
//! Speaks the `graphql-transport-ws` subprotocol on the user's WebSockets (owned by the
//! host, reached through the `sockets` import) and fans channel events out to their
//! subscriptions. The same component also runs as the host's "gatekeeper" for sockets
//! whose user is only known from the `connection_init` token.
//!
//! Modules: [`protocol`] (frames), [`state`] (per-socket state, attachments, cache),
//! [`session`] (on-open / on-message / on-close), [`timeout`] (init timeout alarm),
//! [`fanout`] (publish), [`resume`] (replay for `channel(after:)`). This file holds the bindings and the export glue.

wit_bindgen::generate!({
    path: "../../wit",
    world: "user-channel-component",
});

mod fanout;
mod protocol;
mod resume;
mod session;
mod state;
mod timeout;

use std::cell::RefCell;

use exports::realtime::host::user_channel_actor::{ChannelEvent, Guest};
use realtime::host::sockets::{self, SocketId};

/// Everything the instance keeps between calls. All of it can be rebuilt from the host
/// (socket list and attachments), so eviction loses nothing.
#[derive(Default)]
pub(crate) struct Actor {
    pub cache: state::Cache,
    pub timer: timeout::Timer,
}

thread_local! {
    static ACTOR: RefCell<Actor> = RefCell::new(Actor::default());
}

/// Run `f` on the instance state. Export calls are never re-entrant (the host runs one
/// call at a time per actor), so the borrow cannot conflict.
fn with_actor<R>(f: impl FnOnce(&mut Actor) -> R) -> R {
    ACTOR.with(|actor| f(&mut actor.borrow_mut()))
}

struct Component;

impl Guest for Component {
    fn on_open(socket: SocketId) {
        with_actor(|a| session::on_open(a, socket));
    }

    fn on_message(socket: SocketId, text: String, binary: bool) {
        with_actor(|a| session::on_message(a, socket, &text, binary));
    }

    fn on_close(socket: SocketId, _code: u16) {
        with_actor(|a| session::on_close(a, socket));
    }

    fn on_alarm() {
        with_actor(|a| a.timer.on_alarm(&mut a.cache));
    }

    fn publish(events: Vec<ChannelEvent>) {
        with_actor(|a| fanout::publish(&mut a.cache, &events));
    }

    fn connection_count() -> u32 {
        u32::try_from(sockets::list().len()).unwrap_or(u32::MAX)
    }

    fn subscriber_count(channel: String) -> u32 {
        with_actor(|a| fanout::subscriber_count(&mut a.cache, &channel))
    }
}

export!(Component);
