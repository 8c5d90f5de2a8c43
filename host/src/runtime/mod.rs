//! The actor runtime: wasmtime engine, component versions, actors and their mailboxes,
//! instances, the per-call transaction and output gate, and alarms.

pub mod actor;
pub mod actors;
pub mod alarms;
pub mod bindings;
pub mod call;
pub mod components;
pub mod effects;
pub mod engine;
pub mod graphql_pool;
pub mod instance;
pub mod key;
pub mod state;
pub mod watcher;
