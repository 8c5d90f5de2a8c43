//! HTTP routing: `/graphql` (POST, GET, WebSocket upgrade), `/graphql/schema`,
//! `/healthz`, `/metrics`, `/admin/*`, and the web app at every other GET.

mod admin;
mod auth;
mod graphql;
pub mod web;
mod websocket;

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::server::Host;

pub use crate::clients::ClientAddr;

pub type Body = Full<Bytes>;

pub async fn route(host: Arc<Host>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    host.runtime.metrics.http_requests.fetch_add(1, Relaxed);
    let path = request.uri().path().to_string();
    if host.runtime.is_stopping() && path != "/healthz" {
        // Nothing new starts while the server stops: the client sends it elsewhere.
        let mut response = retry_after(text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"));
        response.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    let response = match (request.method(), path.as_str()) {
        (_, "/graphql") if websocket::is_upgrade(&request) => websocket::upgrade(host, request).await,
        (&Method::POST, "/graphql") => graphql::post(host, request).await,
        (&Method::GET, "/graphql") => graphql::get(host, request).await,
        (_, "/graphql") => method_not_allowed("GET, POST"),
        (&Method::GET, "/graphql/schema") => graphql::schema(host.runtime.clone()).await,
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") if !metrics_allowed(&host, &request) => text(StatusCode::NOT_FOUND, "not found\n"),
        (&Method::GET, "/metrics") => {
            let mut metrics = host.runtime.metrics.render(host.runtime.sockets.queue_limits().queued.load(std::sync::atomic::Ordering::Relaxed));
            if let Some(cluster) = host.cluster.get() {
                metrics.push_str(&cluster.metrics.render(&cluster.node, cluster.ownership.owned_count()));
            }
            let mut response = text(StatusCode::OK, metrics);
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            response
        }
        (_, path) if path.starts_with("/admin/") => admin::route(host, request).await,
        (&Method::GET | &Method::HEAD, path) => host.web.serve(path, request.headers()),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// Whether `request` may read `/metrics`: with `--metrics-token`, when it carries that bearer
/// token; without one, when it comes from this machine (loopback).
fn metrics_allowed(host: &Host, request: &Request<Incoming>) -> bool {
    match &host.http.metrics_token {
        Some(token) => {
            let given = request.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(auth::bearer_token);
            given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
        }
        None => request.extensions().get::<ClientAddr>().is_some_and(|client| client.0.is_loopback()),
    }
}

/// Compare without returning early on the first difference (a token must not leak by timing).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `response`, telling the client to try again in a second (a limit that frees up by itself).
pub fn retry_after(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

pub fn json(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}
