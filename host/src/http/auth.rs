//! Who a request is: the user its `Authorization: Bearer <token>` names. A header that
//! names no session is refused with 401 before anything reaches a component.

use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::{json, Body};
use crate::runtime::call::CallContext;
use crate::storage::accounts::Accounts;

/// The caller's context, `Ok(default)` when the request carries no `Authorization`.
pub fn caller(accounts: &Accounts, headers: &HeaderMap) -> Result<CallContext, Response<Body>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(CallContext::default());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match token.and_then(|t| accounts.authenticate(t).map(|user| (t, user))) {
        Some((token, user)) => Ok(CallContext { user: Some(user), session_token: Some(token.to_string()) }),
        None => Err(unauthorized()),
    }
}

pub fn unauthorized() -> Response<Body> {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        "application/json",
        r#"{"errors":[{"message":"Invalid or expired token","extensions":{"code":"UNAUTHENTICATED"}}]}"#,
    );
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
