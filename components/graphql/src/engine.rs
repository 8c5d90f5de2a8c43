//! Request decoding, response encoding, and the `execute` / `resolve-events` exports.
//!
//! Everything runs synchronously from the guest's view (`futures::executor::block_on`): the
//! host imports are blocking calls, so no future ever waits on anything outside.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, Value};
use futures::executor::block_on;
use futures::StreamExt;
use serde::Serialize;

use crate::host::HostRef;
use crate::limits;
use crate::prepare;
use crate::schema::events::parse_event;
use crate::schema::subscription::CurrentEvent;
use crate::schema::{self, AppSchema};

/// How many parsed documents an instance keeps (subscriptions resolve the same few often).
const DOCUMENT_CACHE_SIZE: usize = 128;

/// How many request texts an instance remembers as validated.
const VALIDATED_CACHE_SIZE: usize = 256;

/// How many data-independent event responses an instance remembers.
const CONSTANT_CACHE_SIZE: usize = 256;

thread_local! {
    static DOCUMENTS: RefCell<HashMap<String, ExecutableDocument>> = RefCell::new(HashMap::new());
    /// Request texts (query, variables and operation name) that passed `prepare` in this
    /// instance, so the same schema version: safe to execute without validating again.
    static VALIDATED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    /// Per event type, per request text: the response when that request's selection on that
    /// type picks no field at all (e.g. `... on StoryCreateEvent` for a `library:change`).
    /// Which fields a selection picks depends only on the document, its variables and the
    /// event's type, never on the event's data, so such a response is the same for every
    /// event of that type and need not be executed again.
    static CONSTANT: RefCell<HashMap<&'static str, HashMap<String, String>>> = RefCell::new(HashMap::new());
}

/// Remember that `request` passed full validation (called by `prepare`).
pub fn mark_validated(request: &str) {
    VALIDATED.with(|set| {
        let mut set = set.borrow_mut();
        if set.len() >= VALIDATED_CACHE_SIZE {
            set.clear();
        }
        set.insert(request.to_owned());
    });
}

fn is_validated(request: &str) -> bool {
    VALIDATED.with(|set| set.borrow().contains(request))
}

/// Decode `{query, variables?, operationName?, extensions?}` and parse its document
/// (through a small per-instance cache). Errors are GraphQL errors, ready to return.
pub fn request_from_json(text: &str) -> Result<Request, Vec<ServerError>> {
    let fail = |message: String| vec![ServerError::new(message, None)];
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| fail(format!("The request is not valid JSON: {err}")))?;
    let Some(object) = value.as_object() else {
        return Err(fail("The request must be a JSON object.".into()));
    };
    match object.get("query") {
        Some(serde_json::Value::String(_)) => {}
        _ => return Err(fail("The request has no \"query\" string.".into())),
    }
    match object.get("variables") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Object(_)) => {}
        _ => return Err(fail("\"variables\" must be an object.".into())),
    }
    match object.get("operationName") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => {}
        _ => return Err(fail("\"operationName\" must be a string.".into())),
    }
    match object.get("extensions") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Object(_)) => {}
        _ => return Err(fail("\"extensions\" must be an object.".into())),
    }
    let mut request: Request = serde_json::from_value(value)
        .map_err(|err| fail(format!("The request is malformed: {err}")))?;
    attach_document(&mut request)?;
    Ok(request)
}

fn attach_document(request: &mut Request) -> Result<(), Vec<ServerError>> {
    let cached = DOCUMENTS.with(|docs| docs.borrow().get(&request.query).cloned());
    if let Some(doc) = cached {
        request.set_parsed_query(doc);
        return Ok(());
    }
    limits::check_document(&request.query).map_err(|m| vec![ServerError::new(m, None)])?;
    let doc = request.parsed_query().map_err(|err| vec![err])?.clone();
    let limits = limits::current();
    limits::check_aliases(&doc, limits.max_aliases)
        .and_then(|()| limits::check_response_fields(&doc, limits.max_response_fields))
        .map_err(|m| vec![ServerError::new(m, None)])?;
    DOCUMENTS.with(|docs| {
        let mut docs = docs.borrow_mut();
        if docs.len() >= DOCUMENT_CACHE_SIZE {
            docs.clear();
        }
        docs.insert(request.query.clone(), doc);
    });
    Ok(())
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

/// A JSON response. `data` is left out when execution never started (a request error:
/// every error lacks a `path` and there is no data), as the GraphQL spec asks.
pub fn response_json(response: &Response) -> String {
    let request_error = matches!(response.data, Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let out = ResponseOut {
        data: (!request_error).then_some(&response.data),
        errors: &response.errors,
        extensions: &response.extensions,
    };
    serde_json::to_string(&out).unwrap_or_else(|err| {
        error_response_json(&format!("The response could not be encoded: {err}"))
    })
}

/// A response holding only these errors.
pub fn errors_response_json(errors: &[ServerError]) -> String {
    response_json(&Response::from_errors(errors.to_vec()))
}

/// A response holding one error.
pub fn error_response_json(message: &str) -> String {
    serde_json::json!({ "errors": [{ "message": message }] }).to_string()
}

/// A JSON array of GraphQL errors (never empty).
pub fn errors_json(errors: &[ServerError]) -> String {
    if errors.is_empty() {
        return r#"[{"message":"Unknown error"}]"#.to_owned();
    }
    serde_json::to_string(errors).unwrap_or_else(|_| r#"[{"message":"Unknown error"}]"#.to_owned())
}

/// Execute a query or mutation; returns the JSON response.
pub fn execute(schema: &AppSchema, host: HostRef, text: &str) -> String {
    let mut request = match request_from_json(text) {
        Ok(request) => request,
        Err(errors) => return errors_response_json(&errors),
    };
    if prepare::lacks_required_variables(&mut request) {
        // A request error, reported after any validation errors: `prepare` reports both.
        if let Err(errors) = prepare::prepare(schema, text) {
            return format!("{{\"errors\":{errors}}}");
        }
    }
    let response = block_on(schema.execute(request.data(host)));
    response_json(&response)
}

/// Run each subscription request's own selection on one event; one JSON response per
/// request, in order. Identical request texts are executed once.
///
/// A request text not yet seen by `prepare` in this instance is prepared first (full
/// validation and the subscription checks; its errors become the response). Execution then
/// uses [`schema::event_schema`].
pub fn resolve_event(host: HostRef, event: &str, requests: &[String]) -> Vec<String> {
    let event = CurrentEvent(Arc::new(parse_event(event)));
    let type_name = event.0.as_ref().as_ref().ok().map(|e| e.type_name());
    let mut out: Vec<String> = Vec::with_capacity(requests.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, text) in requests.iter().enumerate() {
        if let Some(&earlier) = seen.get(text.as_str()) {
            let same = out.get(earlier).cloned().unwrap_or_default();
            out.push(same);
            continue;
        }
        let constant = type_name.and_then(|t| CONSTANT.with(|c| c.borrow().get(t)?.get(text.as_str()).cloned()));
        let response = match constant {
            Some(response) => response,
            None => {
                let (response, selects_nothing) = resolve_one(&host, &event, text);
                if let (Some(t), true) = (type_name, selects_nothing) {
                    remember_constant(t, text, &response);
                }
                response
            }
        };
        out.push(response);
        seen.insert(text.as_str(), index);
    }
    out
}

fn remember_constant(type_name: &'static str, text: &str, response: &str) {
    CONSTANT.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.values().map(HashMap::len).sum::<usize>() >= CONSTANT_CACHE_SIZE {
            cache.clear();
        }
        cache.entry(type_name).or_default().insert(text.to_owned(), response.to_owned());
    });
}

/// The response to one request on one event, and whether its selection on the event
/// picked no field at all (an error-free response whose root fields are all `{}`).
fn resolve_one(host: &HostRef, event: &CurrentEvent, text: &str) -> (String, bool) {
    if !is_validated(text) {
        if let Err(errors) = prepare::prepare(schema::schema(), text) {
            return (format!("{{\"errors\":{errors}}}"), false);
        }
    }
    let request = match request_from_json(text) {
        Ok(request) => request,
        Err(errors) => return (errors_response_json(&errors), false),
    };
    let request = request.data(host.clone()).data(event.clone());
    let mut stream = schema::event_schema().execute_stream(request);
    match block_on(stream.next()) {
        Some(mut response) => {
            restore_empty_event(&mut response);
            (response_json(&response), selects_nothing(&response))
        }
        None => (error_response_json("The subscription produced no result."), false),
    }
}

fn selects_nothing(response: &Response) -> bool {
    response.errors.is_empty()
        && response.extensions.is_empty()
        && matches!(&response.data, Value::Object(fields)
            if !fields.is_empty() && fields.values().all(|v| matches!(v, Value::Object(inner) if inner.is_empty())))
}

/// `channel` is non-null, so a null root field in an error-free event response can only be
/// an event whose selection picked no field (e.g. `... on StoryCreateEvent` for a
/// `library:change`), which async-graphql 7.2 turns into null: it is the empty object.
fn restore_empty_event(response: &mut Response) {
    if !response.errors.is_empty() {
        return;
    }
    if let Value::Object(fields) = &mut response.data {
        for value in fields.values_mut() {
            if matches!(value, Value::Null) {
                *value = Value::Object(Default::default());
            }
        }
    }
}
