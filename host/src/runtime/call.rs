//! The messages an actor's mailbox carries: what to call, for whom, and the answer.

use tokio::sync::oneshot;

use super::bindings::host_api::graphql::{EventFor, Operation};
use super::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use crate::sockets::SocketId;
use crate::storage::accounts::User;

/// One call into an actor's exports.
#[derive(Debug)]
pub enum Request {
    /// `library.call(method, args)`.
    Library { method: String, args: String },
    /// `graphql.prepare(request)`.
    Prepare(String),
    /// `graphql.execute(request)`.
    Execute(String),
    /// `graphql.resolve-events(events)`.
    ResolveEvents(Vec<EventFor>),
    /// `graphql.schema-sdl()`.
    SchemaSdl,
    /// `user-channel-actor.on-open`.
    SocketOpen(SocketId),
    /// `user-channel-actor.on-message`.
    SocketMessage { socket: SocketId, text: String, binary: bool },
    /// `user-channel-actor.on-close`.
    SocketClose { socket: SocketId, code: u16 },
    /// `user-channel-actor.on-alarm`.
    Alarm,
    /// `user-channel-actor.publish(events)`: what one or more calls published, in order.
    Publish(Vec<ChannelEvent>),
    /// `user-channel-actor.connection-count`.
    ConnectionCount,
    /// `user-channel-actor.subscriber-count`.
    SubscriberCount(String),
    /// Not a call: drop the live instance (the cap on live instances chose this actor).
    Evict,
}

impl Request {
    /// The export this request calls, for logs and errors.
    pub fn export_name(&self) -> &'static str {
        match self {
            Self::Library { .. } => "call",
            Self::Prepare(_) => "prepare",
            Self::Execute(_) => "execute",
            Self::ResolveEvents(_) => "resolve-events",
            Self::SchemaSdl => "schema-sdl",
            Self::SocketOpen(_) => "on-open",
            Self::SocketMessage { .. } => "on-message",
            Self::SocketClose { .. } => "on-close",
            Self::Alarm => "on-alarm",
            Self::Publish(_) => "publish",
            Self::ConnectionCount => "connection-count",
            Self::SubscriberCount(_) => "subscriber-count",
            Self::Evict => "(evict)",
        }
    }
}

/// What a call returned.
#[derive(Debug)]
pub enum Response {
    Library(Result<String, String>),
    Prepared(Result<Operation, String>),
    Json(String),
    /// `resolve-events`: per event, one response per request.
    JsonLists(Vec<Vec<String>>),
    Count(u32),
    Unit,
}

impl Response {
    /// A call that returned an application error: its transaction rolls back and
    /// its effects are dropped, as if it had trapped.
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Library(Err(_)))
    }
}

/// Who made the request that led to this call (for `accounts`).
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// The user the call acts for.
    pub user: Option<User>,
    /// The session token the HTTP request or socket presented, for `sign-out`.
    pub session_token: Option<String>,
    /// The client's network address, when the call came from an HTTP request (failed
    /// sign-ins are counted per address).
    pub client: Option<std::net::IpAddr>,
}

/// How a call whose fate is unknown is reported (the graphql component gives the error the
/// code `OUTCOME_UNKNOWN`).
pub const OUTCOME_UNKNOWN: &str = "Outcome unknown: the change may or may not have been saved";

/// Why a call did not return.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("component {0} is not loaded")]
    NotLoaded(&'static str),
    #[error("the {component} component trapped in {export}: {message}")]
    Trap { component: &'static str, export: &'static str, message: String },
    #[error("the call's transaction did not commit: {0}")]
    Commit(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("too many requests from this client are in flight; retry shortly")]
    Busy,
    #[error("{0}")]
    Refused(String),
    /// In a cluster: the user's library is owned by another node now (the caller routes again).
    #[error("this user's library moved to another node")]
    Moved,
    /// The call may or may not have been applied, and nothing could tell which (the answer
    /// says so, with the code `OUTCOME_UNKNOWN`: a client retries only if it can tell).
    #[error("{OUTCOME_UNKNOWN}: {0}")]
    OutcomeUnknown(String),
}

/// A request in an actor's mailbox, with where to send the answer.
pub struct Envelope {
    pub request: Request,
    pub context: CallContext,
    pub reply: Option<oneshot::Sender<Result<Response, CallError>>>,
}
