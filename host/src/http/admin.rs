//! `/admin/*`, behind the admin bearer token (404 when the server has none):
//! `PUT /admin/components/<name>` installs a new version of a component.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};

use super::{constant_time_eq, json, method_not_allowed, text, Body};
use crate::runtime::key::ComponentKind;
use crate::runtime::watcher;
use crate::server::Host;

/// Largest component accepted.
const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub async fn route(host: Arc<Host>, request: Request<Incoming>) -> Response<Body> {
    let Some(admin_token) = host.http.admin_token.clone() else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let presented = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(super::auth::bearer_token);
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), admin_token.as_bytes())) {
        return text(StatusCode::UNAUTHORIZED, "admin token required\n");
    }
    let path = request.uri().path().to_string();
    let Some(name) = path.strip_prefix("/admin/components/") else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(kind) = ComponentKind::from_name(name) else {
        return text(StatusCode::NOT_FOUND, format!("no component named `{name}`\n"));
    };
    if request.method() != Method::PUT {
        return method_not_allowed("PUT");
    }
    let wasm = match Limited::new(request.into_body(), MAX_COMPONENT_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "component too large\n"),
    };
    match watcher::install(&host.runtime, kind, wasm.to_vec()).await {
        Ok(number) => {
            tracing::info!(component = %kind, version = number, "installed a new version from PUT");
            if let Some(cluster) = host.cluster.get() {
                if let Err(e) = crate::cluster::swaps::share(cluster, kind, &wasm).await {
                    tracing::warn!(component = %kind, "installed here, but not shared with the cluster: {e:#}");
                    return text(StatusCode::BAD_GATEWAY, format!("installed on this node, but not shared with the cluster: {e:#}\n"));
                }
            }
            let digest = host.runtime.components.current(kind).map(|v| v.digest.clone()).unwrap_or_default();
            json(
                StatusCode::OK,
                "application/json",
                serde_json::json!({ "component": kind.name(), "version": number, "digest": digest }).to_string(),
            )
        }
        Err(e) => {
            tracing::warn!(component = %kind, "refused a new version: {e:#}");
            text(StatusCode::UNPROCESSABLE_ENTITY, format!("refused: the {kind} component {e:#}\n"))
        }
    }
}
