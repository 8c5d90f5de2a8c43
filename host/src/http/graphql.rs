//! GraphQL over HTTP: `POST /graphql` (JSON body) and `GET /graphql?query=...` (queries
//! only), answered by the shared graphql instances for the caller. Media types and status codes follow
//! the GraphQL-over-HTTP spec: `application/graphql-response+json` when the client
//! accepts it (request errors are 400), `application/json` otherwise (always 200).

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Request as HttpRequest, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::{auth, method_not_allowed, text, Body};
use crate::runtime::bindings::host_api::graphql::Operation;
use super::ClientAddr;
use crate::runtime::call::{CallContext, CallError, Request, Response as CallResponse};
use crate::runtime::graphql_pool::GraphqlPool;
use crate::runtime::Runtime;
use crate::server::Host;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

#[derive(Clone, Copy, PartialEq)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
            Self::Json => JSON,
        }
    }

    /// The status for a response that holds only request errors (no `data`).
    fn request_error_status(self) -> StatusCode {
        match self {
            Self::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        }
    }
}

fn negotiate(accept: Option<&str>) -> Option<MediaType> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(MediaType::Json);
    };
    let types: Vec<&str> = accept.split(',').map(|t| t.split(';').next().unwrap_or("").trim()).collect();
    if types.iter().any(|t| t.eq_ignore_ascii_case("application/graphql-response+json")) {
        Some(MediaType::GraphqlResponseJson)
    } else if types.iter().any(|t| matches!(t.to_ascii_lowercase().as_str(), "application/json" | "application/*" | "*/*")) {
        Some(MediaType::Json)
    } else {
        None
    }
}

fn respond(media: MediaType, status: StatusCode, body: String) -> Response<Body> {
    super::json(status, media.content_type(), body)
}

fn request_error(media: MediaType, status: StatusCode, message: &str) -> Response<Body> {
    respond(media, status, json!({ "errors": [{ "message": message }] }).to_string())
}

pub async fn post(host: Arc<Host>, request: HttpRequest<Incoming>) -> Response<Body> {
    let Some(media) = negotiate(request.headers().get(ACCEPT).and_then(|v| v.to_str().ok())) else {
        return text(StatusCode::NOT_ACCEPTABLE, "accept application/graphql-response+json or application/json\n");
    };
    let context = match auth::caller(&host.runtime.accounts, request.headers()).await {
        Ok(context) => CallContext { client: request.extensions().get::<ClientAddr>().map(|c| c.0), ..context },
        Err(response) => return response,
    };
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" {
        return request_error(media, StatusCode::UNSUPPORTED_MEDIA_TYPE, "POST /graphql takes a body of type application/json");
    }
    let body = match tokio::time::timeout(host.http.body_timeout, Limited::new(request.into_body(), host.http.max_body_bytes).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => return request_error(media, StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large"),
        Err(_slow) => {
            let mut response = request_error(media, StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time");
            response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            return response;
        }
    };
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(params)) => params,
        Ok(_) => return request_error(media, StatusCode::BAD_REQUEST, "The request body must be a JSON object"),
        Err(e) => return request_error(media, StatusCode::BAD_REQUEST, &format!("The request body is not JSON: {e}")),
    };
    run(&host.runtime, media, params, context, false).await
}

pub async fn get(host: Arc<Host>, request: HttpRequest<Incoming>) -> Response<Body> {
    let Some(media) = negotiate(request.headers().get(ACCEPT).and_then(|v| v.to_str().ok())) else {
        return text(StatusCode::NOT_ACCEPTABLE, "accept application/graphql-response+json or application/json\n");
    };
    let context = match auth::caller(&host.runtime.accounts, request.headers()).await {
        Ok(context) => CallContext { client: request.extensions().get::<ClientAddr>().map(|c| c.0), ..context },
        Err(response) => return response,
    };
    let mut params = Map::new();
    for (key, value) in url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        let value = match key.as_ref() {
            "variables" | "extensions" => match serde_json::from_str::<Value>(&value) {
                Ok(parsed) => parsed,
                Err(_) => {
                    return request_error(media, StatusCode::BAD_REQUEST, &format!("`{key}` must be JSON"));
                }
            },
            _ => Value::String(value.into_owned()),
        };
        params.insert(key.into_owned(), value);
    }
    run(&host.runtime, media, params, context, true).await
}

/// Check the request's parameters, then execute it. A GET is prepared first (parsed and
/// validated without executing) so that a mutation is refused before it runs; a POST goes
/// straight to `execute`, whose response leaves out `data` exactly when it failed as a
/// request (syntax, validation, variables).
async fn run(runtime: &Arc<Runtime>, media: MediaType, params: Map<String, Value>, context: CallContext, is_get: bool) -> Response<Body> {
    let request = match normalize(params) {
        Ok(request) => request,
        Err(message) => return request_error(media, StatusCode::BAD_REQUEST, &message),
    };
    if !is_get {
        return match GraphqlPool::call_for_client(runtime, Request::Execute(request), context).await {
            Ok(CallResponse::Json(response)) => {
                let status = if is_request_error(&response) { media.request_error_status() } else { StatusCode::OK };
                respond(media, status, response)
            }
            Ok(_) => internal_error(media, "unexpected answer from the GraphQL component"),
            Err(e) => call_failed(media, e),
        };
    }
    let operation = match GraphqlPool::call_for_client(runtime, Request::Prepare(request.clone()), context.clone()).await {
        Ok(CallResponse::Prepared(Ok(operation))) => operation,
        Ok(CallResponse::Prepared(Err(errors))) => {
            return respond(media, media.request_error_status(), format!(r#"{{"errors":{errors}}}"#));
        }
        Ok(_) => return internal_error(media, "unexpected answer from the GraphQL component"),
        Err(e) => return call_failed(media, e),
    };
    match operation {
        Operation::Query => {}
        Operation::Mutation if !is_get => {}
        Operation::Mutation => return method_not_allowed("POST"),
        Operation::Subscription(_) => {
            return request_error(
                media,
                StatusCode::BAD_REQUEST,
                "Subscriptions are served over WebSocket (graphql-transport-ws) on /graphql",
            )
        }
    }
    match GraphqlPool::call_for_client(runtime, Request::Execute(request), context).await {
        Ok(CallResponse::Json(response)) => respond(media, StatusCode::OK, response),
        Ok(_) => internal_error(media, "unexpected answer from the GraphQL component"),
        Err(e) => call_failed(media, e),
    }
}

/// A GraphQL response without `data`: the request failed before execution.
fn is_request_error(response: &str) -> bool {
    if response.starts_with(r#"{"data":"#) {
        return false;
    }
    serde_json::from_str::<Map<String, Value>>(response).map(|r| !r.contains_key("data")).unwrap_or(true)
}

/// `{query, variables, operationName, extensions}` with each field of the right type; a
/// trusted document's `documentId` may stand for `query` (the graphql pool puts its text in).
fn normalize(mut params: Map<String, Value>) -> Result<String, String> {
    let named = params.contains_key("documentId")
        || params.get("extensions").and_then(|e| e.get("persistedQuery")).is_some();
    let mut request = Map::new();
    match params.remove("query") {
        Some(Value::String(query)) => {
            request.insert("query".into(), Value::String(query));
        }
        None | Some(Value::Null) if named => {}
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("`query` is missing".into()),
    }
    for (field, object) in [("variables", true), ("operationName", false), ("extensions", true), ("documentId", false)] {
        match params.remove(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) if object => {
                request.insert(field.into(), Value::Object(o));
            }
            Some(Value::String(s)) if !object => {
                request.insert(field.into(), Value::String(s));
            }
            Some(_) => {
                return Err(format!("`{field}` must be {}", if object { "an object" } else { "a string" }))
            }
        }
    }
    Ok(Value::Object(request).to_string())
}

fn internal_error(media: MediaType, message: &str) -> Response<Body> {
    request_error(media, StatusCode::INTERNAL_SERVER_ERROR, &format!("Internal error: {message}"))
}

fn call_failed(media: MediaType, error: CallError) -> Response<Body> {
    if matches!(error, CallError::Busy) {
        let body = json!({ "errors": [{ "message": error.to_string(), "extensions": { "code": "TOO_MANY_REQUESTS" } }] });
        return super::retry_after(respond(media, StatusCode::TOO_MANY_REQUESTS, body.to_string()));
    }
    let status = match error {
        CallError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    respond(
        media,
        status,
        json!({ "errors": [{ "message": format!("Internal error: {error}"), "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] })
            .to_string(),
    )
}

/// `GET /graphql/schema`: the schema in SDL, from the graphql component now serving.
pub async fn schema(runtime: Arc<Runtime>) -> Response<Body> {
    match GraphqlPool::call(&runtime, Request::SchemaSdl, CallContext::default()).await {
        Ok(CallResponse::Json(sdl)) => {
            let mut response = text(StatusCode::OK, sdl);
            response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/graphql; charset=utf-8"));
            response
        }
        Ok(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer from the GraphQL component\n"),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(negotiate(None) == Some(MediaType::Json));
        assert!(negotiate(Some("application/graphql-response+json, application/json;q=0.9")) == Some(MediaType::GraphqlResponseJson));
        assert!(negotiate(Some("*/*")) == Some(MediaType::Json));
        assert!(negotiate(Some("text/html")).is_none());
    }

    #[test]
    fn parameters_are_checked() {
        let params = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(normalize(params(json!({"query": "{me{id}}"}))).unwrap(), r#"{"query":"{me{id}}"}"#);
        assert!(normalize(params(json!({"query": 1}))).is_err());
        assert!(normalize(params(json!({"query": "{a}", "variables": "x"}))).is_err());
        assert!(normalize(params(json!({}))).is_err());
        assert_eq!(normalize(params(json!({"documentId": "abc"}))).unwrap(), r#"{"documentId":"abc"}"#);
        assert!(normalize(params(json!({"documentId": 1}))).is_err());
    }
}
