//! One WebSocket's task: reads frames and hands each to the owning user-channel actor
//! (waiting for that call, so a socket's frames are handled in order and a flooding
//! client is slowed down), writes what the actors queue for it, and closes it on
//! request, when its queue kills it (1008 for a client that does not read, 4403 when its
//! session signs out), when the peer stops answering pings (1001, see `--socket-ping-interval`)
//! or at shutdown (1001). A close never waits on the peer for more than [`CLOSE_GRACE`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::{Outbound, SendQueue, SocketId};
use crate::runtime::call::{CallContext, Envelope, Request};
use crate::runtime::key::{ActorKey, ComponentKind, Principal};
use crate::runtime::Runtime;

/// graphql-ws: the client did not offer `graphql-transport-ws`.
const CLOSE_SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
/// At most this many queued frames are written together (then flushed).
const MAX_FRAMES_PER_WRITE: usize = 64;
/// Frames are gathered up to this many bytes before a write to the socket; a batch takes no
/// more frames once it holds this much, so what sits in the writer outside the queue's byte
/// budget is one batch.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// How long to wait for the peer's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A peer silent for a whole ping interval is pinged; one that stays silent for another is
/// gone (a closed laptop, a dropped network): it is closed with this (going away).
pub const CLOSE_NO_PONG: u16 = 1001;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A socket the hub has registered (at the upgrade, where the caps are checked).
pub struct Registered {
    pub id: SocketId,
    pub owner: Principal,
    pub queue: Arc<SendQueue>,
    /// The client's address (sign-ins over the socket are throttled by it).
    pub client: Option<std::net::IpAddr>,
}

/// Serve an upgraded socket; `None` for a client that did not offer the subprotocol, which
/// is closed with 4406 at once.
pub async fn run(runtime: Arc<Runtime>, upgraded: Upgraded, socket: Option<Registered>) {
    // The writer's buffer is not bounded here: what reaches it is bounded by the queue's
    // budget and one batch, and a legitimate answer may be larger than any fixed buffer.
    let config = WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(runtime.settings.max_frame_bytes))
        .max_frame_size(Some(runtime.settings.max_frame_bytes));
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let Some(Registered { id, owner, queue, client }) = socket else {
        close(&mut ws, CLOSE_SUBPROTOCOL_NOT_ACCEPTABLE, "Subprotocol not acceptable").await;
        return;
    };
    runtime.metrics.open_sockets.fetch_add(1, Relaxed);
    runtime.metrics.sockets_opened.fetch_add(1, Relaxed);
    deliver(&runtime, id, owner, Request::SocketOpen(id), client).await;

    let mut shutdown = runtime.stopping();
    let ping_every = runtime.settings.socket_ping_interval;
    let ticker = tokio::time::sleep(ping_every.unwrap_or(Duration::MAX / 4));
    let mut ticker = std::pin::pin!(ticker);
    // Whether anything came from the peer since the last tick, and whether a ping is unanswered.
    let (mut heard, mut pinged) = (true, false);
    let code = loop {
        tokio::select! {
            biased;
            (code, reason) = queue.killed() => {
                close(&mut ws, code, &reason).await;
                break code;
            }
            _ = stopping(&mut shutdown) => {
                close(&mut ws, 1001, "Server shutting down").await;
                break 1001;
            }
            _ = ticker.as_mut(), if ping_every.is_some() => {
                let every = ping_every.expect("checked by the branch's condition");
                ticker.as_mut().reset(tokio::time::Instant::now() + every);
                if std::mem::replace(&mut heard, false) {
                    pinged = false;
                } else if !pinged {
                    pinged = true;
                    let ping = tokio::time::timeout(CLOSE_GRACE, ws.send(Message::Ping(Default::default())));
                    if !matches!(ping.await, Ok(Ok(()))) {
                        break 1006;
                    }
                } else {
                    close(&mut ws, CLOSE_NO_PONG, "No answer to ping").await;
                    break CLOSE_NO_PONG;
                }
            }
            frame = queue.pop() => match frame {
                Outbound::Text(text) => {
                    // Every frame already queued goes out in the same write. A peer that does
                    // not read blocks this write; its queue then overflows and the kill switch
                    // ends the socket without waiting for it.
                    // A peer that takes nothing for `--socket-write-timeout` is dropped even if
                    // nothing more is queued for it (the ping cannot go out behind the write).
                    let mut then_close = None;
                    let write_timeout = runtime.settings.socket_write_timeout;
                    tokio::select! {
                        sent = tokio::time::timeout(write_timeout, write_queued(&mut ws, text, &queue, &mut then_close)) => match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break 1006,
                            Err(_stalled) => {
                                queue.kill(super::CLOSE_NOT_READING, "Write timed out: the client is not reading");
                                break super::CLOSE_NOT_READING;
                            }
                        },
                        (code, _) = queue.killed() => break code,
                    }
                    if let Some((code, reason)) = then_close {
                        close(&mut ws, code, &reason).await;
                        break code;
                    }
                }
                Outbound::Close(code, reason) => {
                    close(&mut ws, code, &reason).await;
                    break code;
                }
            },
            incoming = ws.next() => match { heard |= matches!(incoming, Some(Ok(_))); incoming } {
                // A killed socket's frames are not handled; the kill branch closes it next.
                Some(Ok(_)) if queue.is_ended() => {}
                Some(Ok(Message::Text(text))) => {
                    let Some(owner) = runtime.sockets.owner(id) else { break 1006 };
                    deliver(&runtime, id, owner, Request::SocketMessage { socket: id, text: text.to_string(), binary: false }, client).await;
                }
                Some(Ok(Message::Binary(_))) => {
                    let Some(owner) = runtime.sockets.owner(id) else { break 1006 };
                    deliver(&runtime, id, owner, Request::SocketMessage { socket: id, text: String::new(), binary: true }, client).await;
                }
                Some(Ok(Message::Ping(_))) => {
                    // tungstenite queued the pong; push it out.
                    if ws.flush().await.is_err() {
                        break 1006;
                    }
                }
                Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queued the echo of the peer's close frame: send it.
                    let _ = SinkExt::flush(&mut ws).await;
                    break frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                }
                Some(Err(WsError::Capacity(_))) => {
                    close(&mut ws, 1009, "Message too big").await;
                    break 1009;
                }
                Some(Err(_)) | None => break 1006,
            },
        }
    };
    if queue.is_ended() {
        let counter = match code {
            super::CLOSE_NOT_READING => Some(&runtime.metrics.sockets_dropped_not_reading),
            super::CLOSE_SIGNED_OUT => Some(&runtime.metrics.sockets_signed_out),
            _ => None,
        };
        counter.map(|c| c.fetch_add(1, Relaxed));
    }
    if let Some(owner) = runtime.sockets.remove(id) {
        runtime.metrics.open_sockets.fetch_sub(1, Relaxed);
        // Tell the actor; nobody waits for the answer.
        let key = ActorKey::new(ComponentKind::UserChannel, owner);
        runtime.send(key, Envelope { request: Request::SocketClose { socket: id, code }, context: CallContext::default(), reply: None });
    }
}

/// Write `first` and every text frame already waiting in `queue` (up to
/// [`MAX_FRAMES_PER_WRITE`]) with one flush; a close found in the queue is left in `then_close`.
async fn write_queued(
    ws: &mut Socket,
    first: super::queue::Utf8Bytes,
    queue: &SendQueue,
    then_close: &mut Option<(u16, String)>,
) -> Result<(), WsError> {
    let mut batch_bytes = first.len();
    ws.feed(Message::Text(first)).await?;
    for _ in 1..MAX_FRAMES_PER_WRITE {
        if batch_bytes >= WRITE_BUFFER_BYTES {
            break;
        }
        match queue.try_pop() {
            Some(Outbound::Text(text)) => {
                batch_bytes += text.len();
                ws.feed(Message::Text(text)).await?
            }
            Some(Outbound::Close(code, reason)) => {
                *then_close = Some((code, reason));
                break;
            }
            None => break,
        }
    }
    ws.flush().await
}

/// Resolves when the server begins to shut down.
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Call the owner's user-channel actor with a socket event and wait until it is handled.
async fn deliver(runtime: &Arc<Runtime>, _id: SocketId, owner: Principal, request: Request, client: Option<std::net::IpAddr>) {
    let key = ActorKey::new(ComponentKind::UserChannel, owner);
    if let Err(e) = runtime.call(key, request, CallContext { client, ..CallContext::default() }).await {
        tracing::debug!("socket event not handled: {e}");
    }
}

/// Send a close frame and wait briefly for the peer's answer. A peer that reads nothing
/// cannot hold the socket: sending and waiting together take at most [`CLOSE_GRACE`].
async fn close(ws: &mut Socket, code: u16, reason: &str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_string().into() };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
