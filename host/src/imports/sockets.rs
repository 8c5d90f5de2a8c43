//! `sockets`: the calling user-channel actor's own sockets. Every function checks that
//! the socket belongs to the caller; others' sockets look absent.

use std::sync::Arc;

use crate::runtime::bindings::host_api::sockets::{AuthError, Host, SocketId};
use crate::runtime::key::Principal;
use crate::runtime::state::{ActorState, Effect};
use crate::sockets::{Utf8Bytes, CLOSE_NOT_READING, MAX_ATTACHMENT_BYTES};
use crate::storage::accounts::session_tag;

/// RFC 6455: a message too big to process.
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// Close reasons are limited to 123 bytes by RFC 6455; cut on a char boundary.
pub fn clamp_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

impl ActorState {
    fn owns(&self, socket: SocketId) -> bool {
        self.runtime.sockets.is_owned_by(socket, &self.key.principal)
    }
}

impl Host for ActorState {
    async fn max_attachment_bytes(&mut self) -> u32 {
        MAX_ATTACHMENT_BYTES
    }

    async fn max_frame_bytes(&mut self) -> u32 {
        u32::try_from(self.runtime.settings.max_outgoing_frame_bytes).unwrap_or(u32::MAX)
    }

    async fn list(&mut self) -> Vec<SocketId> {
        self.runtime.sockets.list(&self.key.principal)
    }

    /// A frame over `--max-outgoing-frame-bytes` is not held: the socket is closed (1009)
    /// after the call instead, whatever the component does.
    async fn send(&mut self, socket: SocketId, text: String) {
        if !self.owns(socket) {
            return;
        }
        if text.len() > self.runtime.settings.max_outgoing_frame_bytes {
            tracing::warn!(socket, bytes = text.len(), "a component sent a message over --max-outgoing-frame-bytes; closing the socket");
            self.call.effects.push(Effect::Close { socket, code: CLOSE_MESSAGE_TOO_BIG, reason: "Message too big".into() });
            return;
        }
        // Held frames count against the budgets now: past them the socket is dropped at once
        // and the frame is not kept (one event fanned out to many sockets cannot hold more
        // than the process may queue).
        let sockets = &self.runtime.sockets;
        if !sockets.admits(socket, self.call.held.for_socket(socket), self.call.held.total(), text.len()) {
            sockets.kill(socket, CLOSE_NOT_READING, "Too much to send: the client is not keeping up");
            return;
        }
        self.call.held.hold(sockets.queue_limits_arc(), socket, text.len());
        // A fan-out sends the same bytes to socket after socket: hold them once.
        let text = match &self.call.last_frame {
            Some(last) if last.as_str() == text => last.clone(),
            _ => {
                let frame = Utf8Bytes::from(text);
                self.call.last_frame = Some(frame.clone());
                frame
            }
        };
        self.call.effects.push(Effect::Send { socket, text });
    }

    async fn close(&mut self, socket: SocketId, code: u16, reason: String) {
        if self.owns(socket) {
            self.call.effects.push(Effect::Close { socket, code, reason: clamp_reason(reason) });
        }
    }

    async fn get_attachment(&mut self, socket: SocketId) -> Option<String> {
        if let Some(staged) = self.call.attachments.get(&socket) {
            return Some(staged.to_string());
        }
        if !self.owns(socket) {
            return None;
        }
        self.runtime.sockets.attachment(socket).map(|a| a.to_string())
    }

    async fn set_attachment(&mut self, socket: SocketId, value: String) -> Result<(), String> {
        if value.len() > MAX_ATTACHMENT_BYTES as usize {
            return Err(format!(
                "attachment of {} bytes is larger than the limit of {MAX_ATTACHMENT_BYTES} bytes",
                value.len()
            ));
        }
        if !self.owns(socket) {
            return Err("no such socket".into());
        }
        self.call.attachments.insert(socket, Arc::from(value));
        Ok(())
    }

    async fn opened_at_ms(&mut self, socket: SocketId) -> u64 {
        if self.owns(socket) {
            self.runtime.sockets.opened_at_ms(socket).unwrap_or(0)
        } else {
            0
        }
    }

    async fn authenticate(&mut self, socket: SocketId, token: Option<String>) -> Result<(), AuthError> {
        if !self.owns(socket) {
            return Err(AuthError::InvalidToken);
        }
        let header_user = self.runtime.sockets.header_user(socket);
        let user_id = match token {
            Some(token) => {
                // Tagged before the check, so a sign-out that the check misses finds the socket.
                self.runtime.sockets.set_init_session(socket, session_tag(&token));
                let user = self.runtime.accounts.authenticate(&token).await.ok_or(AuthError::InvalidToken)?;
                if header_user.as_ref().is_some_and(|h| *h != user.id) {
                    return Err(AuthError::InvalidToken);
                }
                user.id
            }
            None => header_user.ok_or(AuthError::MissingToken)?,
        };
        match &self.key.principal {
            Principal::User(owner) if *owner == user_id => Ok(()),
            Principal::User(_) => Err(AuthError::InvalidToken),
            Principal::Anonymous(_) => {
                self.call.effects.push(Effect::Transfer { socket, user: user_id });
                Ok(())
            }
        }
    }
}
