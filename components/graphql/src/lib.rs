//! The GraphQL component of Library Realtime (world `graphql-component` in `wit/host.wit`).
//!
//! Stateless: it holds the schema (built once per instance) and turns GraphQL requests into
//! calls on the host's `accounts` import and the user's library actor (`library.call`).
//! Exports `prepare` (parse + validate, nothing runs), `execute` (queries and mutations),
//! `resolve-events` (each subscriber's selection on one channel event) and `schema-sdl`.

wit_bindgen::generate!({
    world: "graphql-component",
    path: "../../wit",
});

pub mod engine;
pub mod host;
pub mod ids;
pub mod limits;
pub mod nulls;
pub mod prepare;
pub mod rpc;
pub mod schema;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use exports::realtime::host::graphql::{EventFor, Guest, Operation, SubscriptionTarget};
use realtime::host::{accounts, library, log, settings};

use crate::host::{AccountSession, AccountUser, Host, HostRef};
use crate::prepare::OperationKind;

/// The host imports of this instance, as a [`Host`].
struct WasiHost;

impl From<accounts::User> for AccountUser {
    fn from(u: accounts::User) -> Self {
        AccountUser {
            id: u.id,
            email: u.email,
            name: u.name,
        }
    }
}

impl From<accounts::Session> for AccountSession {
    fn from(s: accounts::Session) -> Self {
        AccountSession {
            token: s.token,
            user: s.user.into(),
        }
    }
}

impl Host for WasiHost {
    fn current_user(&self) -> Option<AccountUser> {
        accounts::current_user().map(Into::into)
    }

    fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<AccountSession, String> {
        accounts::sign_up(email, password, name).map(Into::into)
    }

    fn sign_in(&self, email: &str, password: &str) -> Result<AccountSession, String> {
        accounts::sign_in(email, password).map(Into::into)
    }

    fn sign_out(&self) -> bool {
        accounts::sign_out()
    }

    fn library_call(&self, method: &str, args: &str) -> Result<String, String> {
        library::call(method, args)
    }

    fn warn(&self, message: &str) {
        log::log(log::Level::Warn, message);
    }
}

fn wasi_host() -> HostRef {
    HostRef(Arc::new(WasiHost))
}

/// Take the host's limits, once per instance, before any schema is built.
fn configure_limits() {
    limits::configure(|| {
        let host = settings::graphql_limits();
        limits::QueryLimits {
            max_depth: host.max_depth as usize,
            max_complexity: host.max_complexity as usize,
            max_aliases: host.max_aliases as usize,
            max_response_fields: settings::graphql_max_response_fields() as usize,
        }
    });
}

/// The schema, built on first use with the host's limits.
fn schema() -> &'static schema::AppSchema {
    configure_limits();
    schema::schema()
}

/// The exported `graphql` interface.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn prepare(request: String) -> Result<Operation, String> {
        prepare::prepare(schema(), &request).map(|kind| match kind {
            OperationKind::Query => Operation::Query,
            OperationKind::Mutation => Operation::Mutation,
            OperationKind::Subscription { channel, after } => Operation::Subscription(SubscriptionTarget { channel, after }),
        })
    }

    fn execute(request: String) -> String {
        engine::execute(schema(), wasi_host(), &request)
    }

    fn resolve_events(events: Vec<EventFor>) -> Vec<Vec<String>> {
        configure_limits();
        let host = wasi_host();
        events.iter().map(|job| engine::resolve_event(host.clone(), &job.event, &job.requests)).collect()
    }

    fn schema_sdl() -> String {
        schema().sdl()
    }
}

// Exported only in the wasm build: a native build (the fuzz targets link this crate) has no
// component exports, whose names a native linker's version script cannot hold.
#[cfg(target_arch = "wasm32")]
export!(Component);
