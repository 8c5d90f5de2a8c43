//! Imports answered by another component for the same user: `graphql` (for user-channel,
//! by the shared graphql instances) and `library` (for graphql and for user-channel, by the
//! user's library actor). The caller waits; that wait is not charged to its CPU deadline, and one call may
//! make at most `--max-library-calls` library calls.

use crate::runtime::bindings::host_api::{graphql, library};
use crate::runtime::call::{CallContext, CallError, Request, Response};
use crate::runtime::graphql_pool::GraphqlPool;
use crate::runtime::key::{ActorKey, ComponentKind, Principal};
use crate::runtime::state::ActorState;
use crate::storage::actor_db::DISK_FULL;

impl ActorState {
    /// Call `component` for the same principal (or, for `library`, the acting user).
    async fn forward(&mut self, key: ActorKey, request: Request, context: CallContext) -> Result<Response, CallError> {
        let runtime = self.runtime.clone();
        self.waiting(runtime.call(key, request, context)).await
    }

    /// The user this call acts for: the caller's (a graphql call), else the actor's own
    /// (a user-channel actor).
    fn acting_user(&self) -> impl std::future::Future<Output = Option<crate::storage::accounts::User>> + Send + 'static {
        let known = self.call.context.user.clone();
        let id = self.key.principal.user().cloned();
        let accounts = self.runtime.accounts.clone();
        async move {
            match known {
                Some(user) => Some(user),
                None => accounts.user_by_id(&id?).await,
            }
        }
    }

    /// Call the shared graphql instances for this actor's user.
    async fn graphql(&mut self, request: Request) -> Result<Response, CallError> {
        let user = self.acting_user().await;
        let runtime = self.runtime.clone();
        // The socket's client address travels with its frame, so sign-ins over a socket are
        // throttled like those over HTTP.
        let client = self.call.context.client;
        self.waiting(GraphqlPool::call(&runtime, request, CallContext { user, session_token: None, client })).await
    }
}

fn graphql_error_list(message: &str) -> String {
    serde_json::json!([{ "message": message }]).to_string()
}

fn graphql_error_response(message: &str) -> String {
    serde_json::json!({ "errors": [{ "message": message }] }).to_string()
}

impl graphql::Host for ActorState {
    async fn prepare(&mut self, request: String) -> Result<graphql::Operation, String> {
        match self.graphql(Request::Prepare(request)).await {
            Ok(Response::Prepared(prepared)) => prepared,
            Ok(_) => Err(graphql_error_list("Internal error: unexpected answer from the GraphQL component")),
            Err(e) => Err(graphql_error_list(&format!("Internal error: {e}"))),
        }
    }

    async fn execute(&mut self, request: String) -> String {
        match self.graphql(Request::Execute(request)).await {
            Ok(Response::Json(json)) => json,
            Ok(_) => graphql_error_response("Internal error: unexpected answer from the GraphQL component"),
            Err(e) => graphql_error_response(&format!("Internal error: {e}")),
        }
    }

    async fn resolve_events(&mut self, events: Vec<graphql::EventFor>) -> Vec<Vec<String>> {
        let counts: Vec<usize> = events.iter().map(|e| e.requests.len()).collect();
        let failed = |message: String| counts.iter().map(|&n| vec![graphql_error_response(&message); n]).collect();
        match self.graphql(Request::ResolveEvents(events)).await {
            Ok(Response::JsonLists(lists)) if lists.iter().map(Vec::len).eq(counts.iter().copied()) => lists,
            Ok(_) => failed("Internal error: unexpected answer from the GraphQL component".into()),
            Err(e) => failed(format!("Internal error: {e}")),
        }
    }

    async fn schema_sdl(&mut self) -> String {
        match self.graphql(Request::SchemaSdl).await {
            Ok(Response::Json(sdl)) => sdl,
            _ => String::new(),
        }
    }
}

impl library::Host for ActorState {
    async fn call(&mut self, method: String, args: String) -> Result<String, String> {
        let Some(user) = self.acting_user().await else {
            return Err("Not signed in".into());
        };
        if self.call.held_too_long() {
            let limit = self.runtime.settings.max_call_time * crate::runtime::graphql_pool::MAX_HOLD_CALLS;
            return Err(format!("This request took longer than its time limit of {limit:?}"));
        }
        let max = self.runtime.settings.max_library_calls;
        self.call.library_calls += 1;
        if self.call.library_calls > max {
            return Err(format!("This request made more than {max} library calls (the server's limit)"));
        }
        let key = ActorKey::new(ComponentKind::Library, Principal::User(user.id.clone()));
        let context = CallContext { user: Some(user), session_token: None, client: None };
        match self.forward(key, Request::Library { method, args }, context).await {
            Ok(Response::Library(result)) => result,
            // A full disk is the server's state, not a fault: said as it is.
            Err(CallError::Commit(message)) if message == DISK_FULL => Err(message),
            // The client must know its change may have been saved (OUTCOME_UNKNOWN).
            Err(e @ CallError::OutcomeUnknown(_)) => Err(e.to_string()),
            Ok(_) => Err("Internal error: unexpected answer from the library component".into()),
            Err(e) => Err(format!("Internal error: {e}")),
        }
    }
}
