//! Component unit tests: each built `.wasm` (target/wasm32-wasip2/release) is loaded into a
//! test host whose imports are in-memory fakes, and driven through its exports.

mod fake;
mod graphql;
mod library;
mod user_channel;
