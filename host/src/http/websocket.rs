//! The WebSocket upgrade on `/graphql`: checks the handshake and the `Authorization`
//! header (401 before the upgrade when it names no session), negotiates the
//! `graphql-transport-ws` subprotocol, and hands the upgraded stream to a socket task.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{auth, retry_after, text, Body, ClientAddr};
use crate::clients::{CountedConnection, Slot};
use crate::runtime::key::Principal;
use crate::server::Host;
use crate::sockets::{connection, Opener, Refused};
use crate::storage::accounts::{now_ms, session_tag};

pub const SUBPROTOCOL: &str = "graphql-transport-ws";

pub fn is_upgrade(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn offers_subprotocol(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

pub async fn upgrade(host: Arc<Host>, mut request: Request<Incoming>) -> Response<Body> {
    if host.runtime.is_stopping() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let headers = request.headers();
    let connection_upgrade = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let version_13 = headers.get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes())) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    if request.method() != hyper::Method::GET || !connection_upgrade || !version_13 {
        return text(StatusCode::BAD_REQUEST, "not a WebSocket version 13 handshake\n");
    }
    let context = match auth::caller(&host.runtime.accounts, headers).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let session = context.session_token.as_deref().map(session_tag).unwrap_or(0);
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
    // The connection's count for its address goes with the socket.
    let connection_slot = request.extensions().get::<Arc<Slot>>().cloned();
    let header_user = context.user.map(|user| user.id);
    let (owner, cap) = match &header_user {
        Some(user) => (Principal::User(user.clone()), host.runtime.settings.max_sockets_per_user),
        None => (host.anonymous(), host.runtime.settings.max_anonymous_sockets),
    };
    // Like the graphql-ws reference server, a client that does not speak the subprotocol is
    // upgraded and then closed with 4406, so that it sees a documented close code. Other
    // sockets are registered now, under their owner's cap.
    let speaks_protocol = offers_subprotocol(&request);
    let registered = if speaks_protocol {
        // A socket not yet authenticated holds one of its address's few anonymous slots until
        // it authenticates or closes.
        let anonymous_slot = match (&header_user, client) {
            (None, Some(client)) => match host.anonymous_per_address.take(client) {
                Some(slot) => Some(slot),
                None => {
                    return retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "too many sockets from this address waiting for connection_init\n"))
                }
            },
            _ => None,
        };
        let queue = host.runtime.sockets.new_queue();
        let opener = Opener { owner: owner.clone(), header_user: header_user.clone(), session, opened_at_ms: now_ms(), anonymous_slot };
        match host.runtime.sockets.open(opener, cap, queue.clone()) {
            Ok(id) => {
                // Counted as a socket from now on, no longer as an HTTP connection.
                if let Some(counted) = request.extensions().get::<Arc<CountedConnection>>() {
                    counted.release();
                }
                Some(connection::Registered { id, owner, queue, client })
            }
            Err(Refused) if header_user.is_some() => {
                return text(StatusCode::TOO_MANY_REQUESTS, "too many open sockets for this user\n")
            }
            Err(Refused) => {
                return retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "too many sockets waiting for connection_init\n"))
            }
        }
    } else {
        None
    };
    let upgrading = hyper::upgrade::on(&mut request);
    let runtime = host.runtime.clone();
    tokio::spawn(async move {
        let _connection_slot = connection_slot;
        match upgrading.await {
            Ok(upgraded) => connection::run(runtime, upgraded, registered).await,
            Err(e) => {
                tracing::debug!("WebSocket upgrade failed: {e}");
                if let Some(registered) = registered {
                    runtime.sockets.remove(registered.id);
                }
            }
        }
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = response.headers_mut();
    out.insert(UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    out.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&key).expect("base64 is a valid header value"));
    if speaks_protocol {
        out.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    }
    response
}
