//! `Subscription.channel(name)`: yields the event being resolved, once.
//!
//! The component is stateless: the user-channel actor owns the subscriptions and calls
//! `resolve-events` with each event; that event reaches this resolver as request data
//! ([`CurrentEvent`]), so the subscriber's own selection runs on it.

use std::sync::Arc;

use async_graphql::{Context, Error, Result, Subscription as SubscriptionRoot};
use futures::stream::{self, Stream};

use crate::schema::events::ChannelEvent;

/// The only channel.
pub const LIBRARY_CHANNEL: &str = "library";

/// The error for any other channel name.
pub fn unknown_channel(name: &str) -> String {
    format!("Unknown channel \"{name}\"")
}

/// The event `resolve-events` is resolving (or why it could not be decoded).
#[derive(Clone)]
pub struct CurrentEvent(pub Arc<Result<ChannelEvent, String>>);

/// The subscription root.
pub struct Subscription;

#[SubscriptionRoot]
impl Subscription {
    /// Every change to the user's library. Each `next` carries the event's position in the
    /// user's event log as `extensions.position` (an opaque string; one user's positions are
    /// totally ordered).
    ///
    /// `after` resumes: give the position of the last event this client has. Every retained
    /// event after it comes first, in order, then the live ones, with no gap and no duplicate.
    /// When that cannot be done (the position is older than the events kept, from a log that
    /// was reset, or not a position), one `ChannelResetEvent` comes instead, then the live
    /// events: refetch.
    async fn channel(
        &self,
        ctx: &Context<'_>,
        name: String,
        after: Option<String>,
    ) -> Result<impl Stream<Item = ChannelEvent>> {
        let _ = after; // The user-channel actor replays; this resolver only shapes events.
        if name != LIBRARY_CHANNEL {
            return Err(Error::new(unknown_channel(&name)));
        }
        let current = ctx
            .data_opt::<CurrentEvent>()
            .ok_or_else(|| Error::new("Subscriptions are delivered over the WebSocket"))?;
        let event = match &*current.0 {
            Ok(event) => event.clone(),
            Err(message) => return Err(Error::new(message.clone())),
        };
        Ok(stream::once(async move { event }))
    }
}
