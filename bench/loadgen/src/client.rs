//! The two clients every scenario uses, speaking only the public contract:
//! GraphQL over HTTP/1.1 (keep-alive, one connection per `Http`) and a graphql-ws tab
//! (`graphql-transport-ws`, `Authorization` header and `connection_init {token}`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The subscription every tab holds: story events carry the title, which holds the
/// sequence number and the send time of the mutation that caused them.
pub const SUBSCRIPTION: &str =
    r#"subscription { channel(name: "library") { ... on StoryCreateEvent { story { id title } } } }"#;

pub const CREATE_STORY: &str =
    "mutation($input: CreateStoryInput!) { createStory(input: $input) { story { id title } } }";

/// One keep-alive HTTP/1.1 connection to the server.
pub struct Http {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// A connection ready to send, reconnecting when the server closed the last one.
    /// Timing of a request starts after this returns.
    pub async fn ready(&mut self) -> Result<()> {
        for _ in 0..3 {
            if let Some(sender) = &mut self.sender {
                if sender.ready().await.is_ok() {
                    return Ok(());
                }
            }
            self.sender = None;
            self.connect().await?;
        }
        bail!("could not get a ready HTTP connection")
    }

    /// POST /graphql; returns the parsed body. A non-200 status or `errors` is an error.
    pub async fn graphql(&mut self, token: Option<&str>, query: &str, variables: Value) -> Result<Value> {
        self.ready().await?;
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut request = hyper::Request::post("/graphql")
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let sender = self.sender.as_mut().expect("ready");
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        let value: Value = serde_json::from_slice(&body).context("response is not JSON")?;
        if let Some(errors) = value.get("errors") {
            bail!("GraphQL errors: {errors}");
        }
        Ok(value)
    }
}

/// `PUT /admin/components/<name>` with the component's bytes; returns the HTTP status and body.
pub async fn put_component(addr: SocketAddr, admin_token: &str, name: &str, wasm: Vec<u8>) -> Result<(u16, String)> {
    let mut http = Http::new(addr);
    http.ready().await?;
    let request = hyper::Request::put(format!("/admin/components/{name}"))
        .header("host", addr.to_string())
        .header("content-type", "application/wasm")
        .header("authorization", format!("Bearer {admin_token}"))
        .body(Full::new(Bytes::from(wasm)))?;
    let response = http.sender.as_mut().expect("ready").send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub async fn sign_up(http: &mut Http, email: &str) -> Result<String> {
    let value = http
        .graphql(
            None,
            "mutation($email: String!, $password: String!) { signUp(email: $email, password: $password) { token } }",
            json!({ "email": email, "password": "bench-password-1" }),
        )
        .await?;
    value["data"]["signUp"]["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no token in {value}"))
}

/// `createStory` with a title that names the mutation: `seq:<n>:<send time in µs>`.
pub async fn create_story(http: &mut Http, token: &str, seq: u64, sent_us: u64) -> Result<()> {
    let title = format!("seq:{seq}:{sent_us}");
    http.graphql(
        Some(token),
        CREATE_STORY,
        json!({ "input": { "url": format!("https://example.com/story/{seq}"), "title": title } }),
    )
    .await?;
    Ok(())
}

pub type Ws = WebSocketStream<TcpStream>;

fn ws_config() -> WebSocketConfig {
    // Small buffers: the load generator holds up to 15,000 tabs in one process.
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_string()),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("socket ended"),
        }
    }
}

/// Open a tab: upgrade, `connection_init`, wait for `connection_ack`, subscribe, then
/// ping and wait for the pong so the subscribe has been read before we return.
pub async fn open_tab(addr: SocketAddr, token: &str) -> Result<Ws> {
    let stream = TcpStream::connect(addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    let (mut ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await.context("upgrade")?;
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "token": token } }).to_string())).await?;
    let ack = tokio::time::timeout(Duration::from_secs(30), next_text(&mut ws)).await.context("no connection_ack")??;
    if !ack.contains("connection_ack") {
        bail!("expected connection_ack, got {ack}");
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
    ws.send(Message::text(subscribe.to_string())).await?;
    ws.send(Message::text(r#"{"type":"ping"}"#)).await?;
    loop {
        let text = tokio::time::timeout(Duration::from_secs(30), next_text(&mut ws)).await.context("no pong")??;
        if text.contains("\"pong\"") {
            break;
        }
        if text.contains("\"error\"") {
            bail!("subscribe failed: {text}");
        }
    }
    Ok(ws)
}

/// What one `next` frame was.
enum Frame {
    /// A story event: (sequence number, send time in µs).
    Story(u64, u64),
    /// Any other event (the `library:change` that follows every story, as `{"channel":{}}`).
    Other,
    Ping,
    Error,
    Ignore,
}

fn classify(text: &str) -> Frame {
    if let Some(at) = text.find("seq:") {
        let mut parts = text[at + 4..].splitn(3, |c: char| c == ':' || c == '"');
        let seq = parts.next().and_then(|s| s.parse().ok());
        let sent = parts.next().and_then(|s| s.parse().ok());
        if let (Some(seq), Some(sent)) = (seq, sent) {
            return Frame::Story(seq, sent);
        }
    }
    if text.contains("\"next\"") {
        Frame::Other
    } else if text.contains("\"ping\"") {
        Frame::Ping
    } else if text.contains("\"error\"") {
        Frame::Error
    } else {
        Frame::Ignore
    }
}

/// Counters shared by every tab of a run.
#[derive(Default)]
pub struct TabStats {
    pub story_events: AtomicU64,
    pub other_events: AtomicU64,
    pub errors: AtomicU64,
    /// Tabs the server closed (or that failed) before the scenario stopped them.
    pub dropped: AtomicU64,
    /// Time of the last story event, µs since the clock's start.
    pub last_event_us: AtomicU64,
}

/// Where a tab records latencies (µs from mutation sent to event received).
pub struct LatencySink {
    /// Events of mutations sent before this time (µs since `clock`) are warm-up, not recorded.
    pub record_from_us: AtomicU64,
    pub histogram: Mutex<Histogram<u64>>,
    /// The same latencies by the second (from `record_from_us`) their mutation was sent in,
    /// for the first `MAX_SECONDS`: how a cold start settles.
    pub by_second: Mutex<Vec<Histogram<u64>>>,
}

/// A histogram of µs from 1 µs to 120 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap()
}

impl LatencySink {
    const MAX_SECONDS: usize = 120;

    pub fn new(record_from_us: u64) -> Self {
        Self { record_from_us: AtomicU64::new(record_from_us), histogram: Mutex::new(latency_histogram()), by_second: Mutex::default() }
    }

    /// An event of the mutation sent at `sent_us` arrived at `now_us` (both on the clock).
    fn record(&self, sent_us: u64, now_us: u64) {
        let from = self.record_from_us.load(Relaxed);
        if sent_us < from {
            return;
        }
        let latency = now_us.saturating_sub(sent_us).max(1);
        let _ = self.histogram.lock().unwrap().record(latency);
        let second = ((sent_us - from) / 1_000_000) as usize;
        if second < Self::MAX_SECONDS {
            let mut seconds = self.by_second.lock().unwrap();
            if seconds.len() <= second {
                seconds.resize_with(second + 1, latency_histogram);
            }
            let _ = seconds[second].record(latency);
        }
    }
}

/// Read a tab until `stop` turns true; answer pings; count and time events.
/// Returns the number of story events this tab received.
pub async fn run_tab(
    mut ws: Ws,
    stats: Arc<TabStats>,
    clock: Instant,
    latency: Option<Arc<LatencySink>>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut mine = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => match classify(text.as_str()) {
                    Frame::Story(_seq, sent_us) => {
                        let now = clock.elapsed().as_micros() as u64;
                        mine += 1;
                        stats.story_events.fetch_add(1, Relaxed);
                        stats.last_event_us.fetch_max(now, Relaxed);
                        if let Some(sink) = &latency {
                            sink.record(sent_us, now);
                        }
                    }
                    Frame::Other => { stats.other_events.fetch_add(1, Relaxed); }
                    Frame::Ping => { let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await; }
                    Frame::Error => { stats.errors.fetch_add(1, Relaxed); }
                    Frame::Ignore => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    stats.dropped.fetch_add(1, Relaxed);
                    return mine;
                }
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = ws.close(None).await;
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        let story = r#"{"id":"1","type":"next","payload":{"data":{"channel":{"story":{"id":"x","title":"seq:42:123456"}}}}}"#;
        assert!(matches!(classify(story), Frame::Story(42, 123456)));
        assert!(matches!(classify(r#"{"id":"1","type":"next","payload":{"data":{"channel":{}}}}"#), Frame::Other));
        assert!(matches!(classify(r#"{"type":"ping"}"#), Frame::Ping));
        assert!(matches!(classify(r#"{"id":"1","type":"error","payload":[]}"#), Frame::Error));
    }
}
