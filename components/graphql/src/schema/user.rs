//! `User` (from the host's accounts) and `SignInResponse`.

use async_graphql::{ComplexObject, SimpleObject};

use crate::host::{AccountSession, AccountUser};
use crate::schema::library::Library;

/// An account.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
}

#[ComplexObject]
impl User {
    /// The user's library.
    async fn library(&self) -> Library {
        Library::of_user(&self.id)
    }
}

impl From<AccountUser> for User {
    fn from(u: AccountUser) -> Self {
        User {
            id: u.id,
            email: u.email,
            name: u.name,
        }
    }
}

/// A new session.
#[derive(SimpleObject, Clone, Debug)]
pub struct SignInResponse {
    pub token: String,
    pub user: User,
}

impl From<AccountSession> for SignInResponse {
    fn from(s: AccountSession) -> Self {
        SignInResponse {
            token: s.token,
            user: s.user.into(),
        }
    }
}
