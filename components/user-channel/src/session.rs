//! One socket's graphql-ws session: what `on-open`, `on-message` and `on-close` do.
//!
//! Every state change is written to the socket's attachment in the same call (the
//! instance may be evicted right after it returns), and mirrored in the cache.

use crate::protocol::{self, close, ClientMessage};
use crate::realtime::host::graphql::{self, Operation};
use crate::realtime::host::log::{self, Level};
use crate::realtime::host::sockets::{self, SocketId};
use crate::resume;
use crate::state::{self, Conn, StoreError, Sub};
use crate::Actor;

/// A socket was opened: it awaits `connection_init` until its deadline.
pub fn on_open(actor: &mut Actor, socket: SocketId) {
    let Actor { cache, timer } = actor;
    // Start from what the host holds for this socket: normally nothing (a new socket is
    // awaiting init since `opened-at`); a socket that already has state keeps it.
    cache.remove(socket);
    state::load(cache, socket);
    if let Some(Conn::AwaitingInit { opened_at }) = cache.get(socket) {
        let conn = Conn::AwaitingInit { opened_at: *opened_at };
        if let Err(e) = state::store(cache, socket, &conn) {
            log::log(Level::Warn, &format!("socket {socket}: cannot store its state: {e:?}"));
        }
    }
    if cache.wants_prune() {
        state::sync_with_list(cache);
    }
    timer.rearm(cache);
}

/// The socket is gone.
pub fn on_close(actor: &mut Actor, socket: SocketId) {
    if actor.cache.remove(socket) {
        actor.timer.rearm(&mut actor.cache);
    }
}

/// Close `socket` (sent after the call returns) and ignore whatever it sends meanwhile.
fn close_socket(actor: &mut Actor, socket: SocketId, code: u16, reason: &str) {
    sockets::close(socket, code, close::limit_reason(reason, close::INVALID_MESSAGE));
    if actor.cache.insert(socket, Conn::Closed) {
        actor.timer.rearm(&mut actor.cache);
    }
}

/// A frame arrived.
pub fn on_message(actor: &mut Actor, socket: SocketId, text: &str, binary: bool) {
    state::load(&mut actor.cache, socket);
    // `Some(opened_at)` while awaiting init, `None` once acknowledged.
    let awaiting = match actor.cache.get(socket) {
        None | Some(Conn::Closed) => return,
        Some(Conn::AwaitingInit { opened_at }) => Some(*opened_at),
        Some(Conn::Ready { .. }) => None,
    };
    if binary {
        return close_socket(actor, socket, close::BAD_REQUEST, close::BINARY);
    }
    let message = match protocol::parse_client_message(text) {
        Ok(message) => message,
        Err(reason) => return close_socket(actor, socket, close::BAD_REQUEST, &reason),
    };
    match message {
        ClientMessage::ConnectionInit { token } => match awaiting {
            None => close_socket(actor, socket, close::TOO_MANY_INITS, close::TOO_MANY_INITS_REASON),
            Some(opened_at) => connection_init(actor, socket, opened_at, token.as_deref()),
        },
        ClientMessage::Ping { payload } => sockets::send(socket, &protocol::pong(payload.as_ref())),
        ClientMessage::Pong => {}
        ClientMessage::Subscribe { id, request } => match awaiting {
            Some(_) => close_socket(actor, socket, close::UNAUTHORIZED, close::UNAUTHORIZED_REASON),
            None => subscribe(actor, socket, &id, request),
        },
        ClientMessage::Complete { id } => {
            if actor.cache.remove_sub(socket, &id) {
                if let Err(e) = state::store_cached(&mut actor.cache, socket) {
                    log::log(Level::Warn, &format!("socket {socket}: cannot store its state: {e:?}"));
                }
            }
        }
    }
}

fn connection_init(actor: &mut Actor, socket: SocketId, opened_at: u64, token: Option<&str>) {
    if actor.timer.expired(opened_at) {
        return close_socket(actor, socket, close::INIT_TIMEOUT, close::INIT_TIMEOUT_REASON);
    }
    if sockets::authenticate(socket, token).is_err() {
        return close_socket(actor, socket, close::FORBIDDEN, close::FORBIDDEN_REASON);
    }
    // Acknowledged: written before the ack, and it travels with the socket when the host
    // moves it from the gatekeeper to the user's own actor.
    let ready = Conn::Ready { subs: Vec::new() };
    if let Err(e) = state::store(&mut actor.cache, socket, &ready) {
        log::log(Level::Error, &format!("socket {socket}: cannot store its state: {e:?}"));
        return close_socket(actor, socket, close::INTERNAL_ERROR, close::INTERNAL_ERROR_REASON);
    }
    actor.cache.insert(socket, ready);
    sockets::send(socket, protocol::CONNECTION_ACK);
    actor.timer.rearm(&mut actor.cache);
}

fn subscribe(actor: &mut Actor, socket: SocketId, id: &str, request: String) {
    let cache = &mut actor.cache;
    let exists = match cache.subs_mut(socket) {
        Some(subs) => subs.iter().any(|s| &*s.id == id),
        None => return,
    };
    if exists {
        return close_socket(actor, socket, close::SUBSCRIBER_EXISTS, &close::subscriber_exists(id));
    }
    match graphql::prepare(&request) {
        Err(errors) => sockets::send(socket, &protocol::error(id, &protocol::checked_errors(&errors))),
        Ok(Operation::Query | Operation::Mutation) => {
            let response = graphql::execute(&request);
            let mut frame = String::new();
            protocol::write_next_within(&mut frame, id, protocol::checked_response(&response), None, crate::fanout::max_frame_bytes());
            sockets::send(socket, &frame);
            sockets::send(socket, &protocol::complete(id));
        }
        Ok(Operation::Subscription(target)) => {
            // The subscription is stored before anything is replayed, so one that cannot be
            // kept costs no replay. It is stored with the widest `skip_through`, so storing
            // the replay's real one afterwards cannot make the state larger.
            let cache = &mut actor.cache;
            let stored_first = if target.after.is_some() { u64::MAX } else { 0 };
            let sub = Sub { id: id.into(), channel: cache.intern(&target.channel), request: cache.intern(&request), skip_through: stored_first };
            if let Some(subs) = cache.subs_mut(socket) {
                subs.push(sub);
            }
            let stored = state::store_cached(cache, socket);
            if let (Ok(()), Some(after)) = (&stored, &target.after) {
                let skip_through = resume::replay(socket, id, &request, after);
                if let Some(sub) = cache.subs_mut(socket).and_then(|subs| subs.last_mut()) {
                    sub.skip_through = skip_through;
                }
                if let Err(e) = state::store_cached(cache, socket) {
                    log::log(Level::Error, &format!("socket {socket}: cannot store its state after a replay: {e:?}"));
                }
            }
            if let Err(e) = stored {
                cache.pop_sub(socket);
                let errors = match e {
                    StoreError::TooLarge { limit } => protocol::graphql_errors(
                        &format!(
                            "Too many subscriptions on this socket: their state would exceed {limit} bytes. \
                             Complete some subscriptions or open another connection."
                        ),
                        Some("SUBSCRIPTION_LIMIT_EXCEEDED"),
                    ),
                    StoreError::Host(e) => {
                        log::log(Level::Error, &format!("socket {socket}: cannot store its state: {e}"));
                        protocol::graphql_errors("Internal server error: the subscription could not be stored", Some("INTERNAL_SERVER_ERROR"))
                    }
                };
                sockets::send(socket, &protocol::error(id, &errors));
            }
        }
    }
}
