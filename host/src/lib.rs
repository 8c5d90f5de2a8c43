//! Library Realtime's host: a wasmtime runtime for per-user WebAssembly actors, serving
//! GraphQL over HTTP and graphql-ws WebSockets. See ARCHITECTURE.md for the picture.
//!
//! - [`server`]: start-up, the shared [`server::Host`], accept loop and shutdown;
//! - [`http`]: routes, GraphQL over HTTP, the WebSocket upgrade, admin;
//! - [`sockets`]: the sockets the host owns, their attachments and queues;
//! - [`runtime`]: engine, component versions, actors, instances, the call transaction;
//! - [`imports`]: the host side of every WIT import;
//! - [`storage`]: accounts and sessions, and each actor's SQLite database;
//! - [`memory`]: hands memory freed by evicted instances back to the OS.

pub mod cli;
pub mod deploy;
pub mod http;
pub mod imports;
pub mod memory;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod sockets;
pub mod storage;
