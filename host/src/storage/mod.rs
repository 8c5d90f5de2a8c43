//! Durable state the host owns: accounts and sessions, and each actor's SQLite database.

pub mod accounts;
pub mod actor_db;
pub mod bounded;
pub mod connections;
pub mod passwords;
pub mod sqlite;
pub mod throttle;
