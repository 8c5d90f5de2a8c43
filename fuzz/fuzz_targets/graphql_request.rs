//! A GraphQL-over-HTTP request body, as the graphql component takes it: `prepare` (parse and
//! validate) and `execute` (against a host that refuses everything) must answer any text with
//! a response or errors, never a panic or a stack overflow.
#![no_main]

use std::sync::{Arc, OnceLock};

use graphql::host::{AccountSession, AccountUser, Host, HostRef};
use graphql::schema::{self, AppSchema};
use libfuzzer_sys::fuzz_target;

/// A signed-in user whose library and accounts refuse every call.
struct Refusing;

impl Host for Refusing {
    fn current_user(&self) -> Option<AccountUser> {
        Some(AccountUser { id: "fuzz".into(), email: "fuzz@example.com".into(), name: None })
    }
    fn sign_up(&self, _: &str, _: &str, _: Option<&str>) -> Result<AccountSession, String> {
        Err("refused".into())
    }
    fn sign_in(&self, _: &str, _: &str) -> Result<AccountSession, String> {
        Err("Invalid credentials".into())
    }
    fn sign_out(&self) -> bool {
        false
    }
    fn library_call(&self, _: &str, _: &str) -> Result<String, String> {
        Err("refused".into())
    }
    fn warn(&self, _: &str) {}
}

fn schema() -> &'static AppSchema {
    static SCHEMA: OnceLock<AppSchema> = OnceLock::new();
    SCHEMA.get_or_init(schema::build)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = graphql::prepare::prepare(schema(), &text);
    let response = graphql::engine::execute(schema(), HostRef(Arc::new(Refusing)), &text);
    assert!(response.starts_with('{'), "a JSON response: {response}");
});
