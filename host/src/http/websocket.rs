//! The WebSocket upgrade on `/graphql`: checks the handshake and the `Authorization`
//! header (401 before the upgrade when it names no session), negotiates the
//! `graphql-transport-ws` subprotocol, and hands the upgraded stream to a socket task.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{auth, text, Body};
use crate::runtime::key::Principal;
use crate::server::Host;
use crate::sockets::connection;
use crate::storage::accounts::session_tag;

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

pub fn upgrade(host: Arc<Host>, mut request: Request<Incoming>) -> Response<Body> {
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
    let context = match auth::caller(&host.runtime.accounts, headers) {
        Ok(context) => context,
        Err(response) => return response,
    };
    let session = context.session_token.as_deref().map(session_tag).unwrap_or(0);
    let header_user = context.user.map(|user| user.id);
    if let Some(user) = &header_user {
        if host.runtime.sockets.list(&Principal::User(user.clone())).len() >= host.runtime.settings.max_sockets_per_user {
            return text(StatusCode::TOO_MANY_REQUESTS, "too many open sockets for this user\n");
        }
    }
    let owner = match &header_user {
        Some(user) => Principal::User(user.clone()),
        None => host.anonymous(),
    };
    // Like the graphql-ws reference server, a client that does not speak the subprotocol is
    // upgraded and then closed with 4406, so that it sees a documented close code.
    let speaks_protocol = offers_subprotocol(&request);
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => {
                let opener = connection::Opener { owner, header_user, session };
                connection::run(host.runtime.clone(), upgraded, opener, speaks_protocol).await
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
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
