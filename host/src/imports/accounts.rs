//! `accounts`: sign-up, sign-in and sign-out against the host's accounts database.
//! A successful sign-up or sign-in makes the rest of the call act for that user.

use crate::runtime::bindings::host_api::accounts::{Host, Session, User};
use crate::runtime::state::ActorState;
use crate::storage::accounts as store;

fn to_wit(user: &store::User) -> User {
    User { id: user.id.to_string(), email: user.email.clone(), name: user.name.clone() }
}

impl ActorState {
    fn act_as(&mut self, session: &store::Session) -> Session {
        self.call.context.user = Some(session.user.clone());
        self.call.context.session_token = Some(session.token.clone());
        Session { token: session.token.clone(), user: to_wit(&session.user) }
    }
}

impl Host for ActorState {
    async fn current_user(&mut self) -> Option<User> {
        self.call.context.user.as_ref().map(to_wit)
    }

    async fn sign_up(&mut self, email: String, password: String, name: Option<String>) -> Result<Session, String> {
        let accounts = self.runtime.accounts.clone();
        accounts.admit_sign_up(self.call.context.client)?;
        let session = self.waiting(accounts.sign_up(&email, &password, name)).await?;
        Ok(self.act_as(&session))
    }

    async fn sign_in(&mut self, email: String, password: String) -> Result<Session, String> {
        let accounts = self.runtime.accounts.clone();
        let client = self.call.context.client;
        let session = self.waiting(accounts.sign_in(&email, &password, client)).await?;
        Ok(self.act_as(&session))
    }

    /// End the calling session, and close the sockets it authenticated (4403) at once.
    async fn sign_out(&mut self) -> bool {
        match self.call.context.session_token.take() {
            Some(token) => {
                self.call.context.user = None;
                let accounts = self.runtime.accounts.clone();
                let signed_out = accounts.sign_out(&token).await;
                let closed = self.runtime.sockets.revoke_session(store::session_tag(&token));
                tracing::debug!(closed, "signed out");
                signed_out
            }
            None => false,
        }
    }
}
