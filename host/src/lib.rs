//! Library Realtime's host: a wasmtime runtime for per-user WebAssembly actors, serving
//! GraphQL over HTTP and graphql-ws WebSockets. See ARCHITECTURE.md for the picture.
//!
//! - [`server`]: start-up, the listener's [`server::Host`] (runtime + HTTP settings), accept
//!   loop and shutdown;
//! - [`http`]: routes, GraphQL over HTTP, the WebSocket upgrade, admin;
//! - [`sockets`]: the sockets the host owns, their attachments and queues, each socket's task;
//! - [`runtime`]: the [`runtime::Runtime`] handle: engine, component versions, actors,
//!   instances, the call transaction, the shared graphql instances; no HTTP;
//! - [`imports`]: the host side of every WIT import;
//! - [`storage`]: accounts and sessions, and each actor's SQLite database;
//! - [`cluster`]: cluster mode on NATS JetStream (`--cluster`): ownership, the user log,
//!   routed calls, events, accounts and component versions across nodes;
//! - [`memory`]: hands memory freed by evicted instances back to the OS.

pub mod cli;
pub mod clients;
pub mod cluster;
pub mod deploy;
pub mod http;
pub mod imports;
pub mod memory;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod sockets;
pub mod storage;
