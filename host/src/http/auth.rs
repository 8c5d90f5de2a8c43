//! Who a request is: the user its `Authorization: Bearer <token>` names. A header that
//! names no session is refused with 401 before anything reaches a component.

use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::{json, Body};
use crate::runtime::call::CallContext;
use crate::storage::accounts::Accounts;

/// The caller's context, `Ok(default)` when the request carries no `Authorization`.
pub async fn caller(accounts: &Accounts, headers: &HeaderMap) -> Result<CallContext, Response<Body>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(CallContext::default());
    };
    let Some(token) = value.to_str().ok().and_then(bearer_token) else {
        return Err(unauthorized());
    };
    match accounts.authenticate(token).await {
        Some(user) => Ok(CallContext { user: Some(user), session_token: Some(token.to_string()), client: None }),
        None => Err(unauthorized()),
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110 section 11.1), so `bearer x` and `BEARER x` name the same token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr   abc ", "Bearer\tabc"] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
