//! Names of actors: which component, acting for whom.

use std::fmt;
use std::sync::Arc;

/// A user's id, as stored in the accounts database.
pub type UserId = Arc<str>;

/// The component worlds the host knows how to run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ComponentKind {
    Library,
    UserChannel,
    Graphql,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 3] = [Self::Library, Self::UserChannel, Self::Graphql];

    /// The name used in URLs, metrics and file names (`user-channel.wasm` or `user_channel.wasm`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Library => "library",
            Self::UserChannel => "user-channel",
            Self::Graphql => "graphql",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.replace('_', "-");
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// For whom an actor acts: one signed-in user, or one of a few anonymous actors that
/// serve requests without a user (sign-up, sign-in, sockets waiting for `connection_init`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Principal {
    User(UserId),
    Anonymous(u8),
}

impl Principal {
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User(id) => Some(id),
            Self::Anonymous(_) => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => f.write_str(id),
            Self::Anonymous(n) => write!(f, "~anonymous-{n}"),
        }
    }
}

/// One actor: a (component, principal) pair. At most one live instance exists per key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ActorKey {
    pub component: ComponentKind,
    pub principal: Principal,
}

impl ActorKey {
    pub fn new(component: ComponentKind, principal: Principal) -> Self {
        Self { component, principal }
    }
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.component, self.principal)
    }
}
