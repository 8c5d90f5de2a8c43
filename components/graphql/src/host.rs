//! The host imports (`accounts`, `library`, `log`) behind a trait.
//!
//! Resolvers reach the host only through [`HostRef`], stored in each request's data, so the
//! schema logic runs unchanged against a fake host in native tests.

use std::sync::Arc;

/// A signed-in user, as the host's `accounts` interface describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountUser {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
}

/// A new session: its bearer token and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSession {
    pub token: String,
    pub user: AccountUser,
}

/// Everything the schema needs from the host.
pub trait Host: Send + Sync {
    /// The user the current call acts for, if any.
    fn current_user(&self) -> Option<AccountUser>;
    /// Create an account and a session; the rest of the call acts for the new user.
    fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<AccountSession, String>;
    /// Check credentials and create a session; the rest of the call acts for that user.
    fn sign_in(&self, email: &str, password: &str) -> Result<AccountSession, String>;
    /// End the session the current request presented; false when there was none.
    fn sign_out(&self) -> bool;
    /// One JSON RPC into the current user's library actor.
    fn library_call(&self, method: &str, args: &str) -> Result<String, String>;
    /// A warning for the host's log.
    fn warn(&self, message: &str);
}

/// The host as request data (`Request::data`), read by resolvers through the context.
#[derive(Clone)]
pub struct HostRef(pub Arc<dyn Host>);
