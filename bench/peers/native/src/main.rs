//! Benchmark peer: the schema subset the load generator uses (signUp, me, createStory, the
//! library channel), served natively by async-graphql on axum with graphql-ws
//! (`graphql-transport-ws`) subscriptions. Everything lives in memory; each user's events
//! go through that user's own tokio broadcast channel, so they reach only that user's
//! sockets. Auth: `Authorization: Bearer <token>` (401 when it names no session) or the
//! `connection_init` payload `{ "token": ... }` (close 4403 when it names none).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Context, Data, InputObject, Object, Schema, SimpleObject, Subscription, Union, ID};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use futures::{Stream, StreamExt};
use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

#[derive(Parser)]
#[command(name = "native-peer", about = "Benchmark peer: Library Realtime's schema subset on async-graphql + axum, in memory")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:8790")]
    listen: SocketAddr,
}

#[derive(Clone)]
struct CurrentUser(String);

#[derive(Clone, SimpleObject)]
struct StoryPayload {
    id: ID,
    url: String,
    title: String,
    description: Option<String>,
    created_at: String,
}

#[derive(Clone, SimpleObject)]
struct StoryCreateEvent {
    #[graphql(name = "type")]
    kind: String,
    story: StoryPayload,
}

#[derive(Clone, SimpleObject)]
struct LibraryChangeEvent {
    #[graphql(name = "type")]
    kind: String,
    total_stories: i32,
    total_tags: i32,
}

#[derive(Clone, Union)]
enum ChannelEvent {
    StoryCreateEvent(StoryCreateEvent),
    LibraryChangeEvent(LibraryChangeEvent),
}

#[derive(Clone)]
struct Published {
    channel: &'static str,
    event: ChannelEvent,
}

#[derive(Default)]
struct Store {
    next_id: AtomicU64,
    /// email -> (user id, password)
    accounts: Mutex<HashMap<String, (String, String)>>,
    /// token -> (user id, email)
    sessions: RwLock<HashMap<String, (String, String)>>,
    /// user id -> stories, oldest first
    libraries: Mutex<HashMap<String, Vec<StoryPayload>>>,
    /// user id -> that user's event channel
    channels: Mutex<HashMap<String, broadcast::Sender<Published>>>,
}

impl Store {
    fn user_for(&self, token: &str) -> Option<CurrentUser> {
        self.sessions.read().get(token).map(|(id, _)| CurrentUser(id.clone()))
    }

    fn channel(&self, user: &str) -> broadcast::Sender<Published> {
        self.channels.lock().entry(user.to_string()).or_insert_with(|| broadcast::channel(4096).0).clone()
    }

    fn publish(&self, user: &str, event: ChannelEvent) {
        let sender = self.channels.lock().get(user).cloned();
        if let Some(sender) = sender {
            let _ = sender.send(Published { channel: "library", event });
        }
    }
}

fn token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_iso() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    format!("{ms}")
}

struct User {
    id: String,
    email: String,
}

#[Object]
impl User {
    async fn id(&self) -> &str {
        &self.id
    }
    async fn email(&self) -> &str {
        &self.email
    }
    async fn library(&self) -> Library {
        Library { user: self.id.clone() }
    }
}

struct Library {
    user: String,
}

#[derive(SimpleObject)]
struct StoryEdge {
    cursor: String,
    node: StoryPayload,
}

#[derive(SimpleObject)]
struct StoryConnection {
    edges: Vec<StoryEdge>,
    total_count: i32,
}

#[Object]
impl Library {
    async fn id(&self) -> ID {
        ID(format!("Library:{}", self.user))
    }
    /// Newest first.
    async fn stories(&self, ctx: &Context<'_>, first: Option<i32>) -> StoryConnection {
        let store = ctx.data_unchecked::<Arc<Store>>();
        let libraries = store.libraries.lock();
        let stories = libraries.get(&self.user).map(Vec::as_slice).unwrap_or(&[]);
        let first = first.unwrap_or(20).clamp(0, 100) as usize;
        StoryConnection {
            edges: stories.iter().rev().take(first).map(|s| StoryEdge { cursor: s.id.to_string(), node: s.clone() }).collect(),
            total_count: stories.len() as i32,
        }
    }
}

#[derive(SimpleObject)]
struct SignInResponse {
    token: String,
    user: User,
}

#[derive(InputObject)]
struct CreateStoryInput {
    url: String,
    title: String,
    description: Option<String>,
    #[allow(dead_code)]
    tag_ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
struct CreateStoryPayload {
    story: Option<StoryPayload>,
}

struct Query;

#[Object]
impl Query {
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        let user = ctx.data_opt::<CurrentUser>()?;
        let store = ctx.data_unchecked::<Arc<Store>>();
        let email = store.accounts.lock().iter().find(|(_, (id, _))| *id == user.0).map(|(e, _)| e.clone()).unwrap_or_default();
        Some(User { id: user.0.clone(), email })
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn sign_up(&self, ctx: &Context<'_>, email: String, password: String, _name: Option<String>) -> async_graphql::Result<SignInResponse> {
        let store = ctx.data_unchecked::<Arc<Store>>();
        let id = {
            let mut accounts = store.accounts.lock();
            if accounts.contains_key(&email) {
                return Err("Email already registered".into());
            }
            let id = format!("u{}", store.next_id.fetch_add(1, Relaxed));
            accounts.insert(email.clone(), (id.clone(), password));
            id
        };
        let token = token();
        store.sessions.write().insert(token.clone(), (id.clone(), email.clone()));
        Ok(SignInResponse { token, user: User { id, email } })
    }

    async fn create_story(&self, ctx: &Context<'_>, input: CreateStoryInput) -> async_graphql::Result<CreateStoryPayload> {
        let user = ctx.data_opt::<CurrentUser>().ok_or("Not signed in")?;
        let store = ctx.data_unchecked::<Arc<Store>>();
        if !(input.url.starts_with("http://") || input.url.starts_with("https://")) {
            return Err("Invalid URL".into());
        }
        let story = StoryPayload {
            id: ID(format!("Story:{}", store.next_id.fetch_add(1, Relaxed))),
            url: input.url,
            title: input.title,
            description: input.description,
            created_at: now_iso(),
        };
        let total = {
            let mut libraries = store.libraries.lock();
            let stories = libraries.entry(user.0.clone()).or_default();
            stories.push(story.clone());
            stories.len() as i32
        };
        store.publish(&user.0, ChannelEvent::StoryCreateEvent(StoryCreateEvent { kind: "story:create".into(), story: story.clone() }));
        store.publish(
            &user.0,
            ChannelEvent::LibraryChangeEvent(LibraryChangeEvent { kind: "library:change".into(), total_stories: total, total_tags: 0 }),
        );
        Ok(CreateStoryPayload { story: Some(story) })
    }
}

struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    async fn channel(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<impl Stream<Item = ChannelEvent>> {
        let user = ctx.data_opt::<CurrentUser>().ok_or("Not signed in")?;
        let store = ctx.data_unchecked::<Arc<Store>>();
        let receiver = store.channel(&user.0).subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |published| {
            let event = match published {
                Ok(p) if p.channel == name => Some(p.event),
                _ => None,
            };
            futures::future::ready(event)
        }))
    }
}

type AppSchema = Schema<Query, Mutation, SubscriptionRoot>;

#[derive(Clone)]
struct App {
    schema: AppSchema,
    store: Arc<Store>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

async fn post(State(app): State<App>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    let mut request = request.into_inner();
    if let Some(token) = bearer(&headers) {
        match app.store.user_for(token) {
            Some(user) => request = request.data(user),
            None => return (StatusCode::UNAUTHORIZED, "invalid token").into_response(),
        }
    }
    GraphQLResponse::from(app.schema.execute(request).await).into_response()
}

async fn socket(State(app): State<App>, headers: HeaderMap, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    let header_user = match bearer(&headers) {
        None => None,
        Some(token) => match app.store.user_for(token) {
            Some(user) => Some(user),
            None => return (StatusCode::UNAUTHORIZED, "invalid token").into_response(),
        },
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let mut data = Data::default();
            if let Some(user) = header_user.clone() {
                data.insert(user);
            }
            let store = app.store.clone();
            GraphQLWebSocket::new(stream, app.schema.clone(), protocol)
                .with_data(data)
                .on_connection_init(move |payload| async move {
                    let mut data = Data::default();
                    match payload.get("token").and_then(|t| t.as_str()) {
                        Some(token) => match store.user_for(token) {
                            Some(user) => data.insert(user),
                            None => return Err("Forbidden".into()),
                        },
                        None if header_user.is_some() => {}
                        None => return Err("Forbidden".into()),
                    }
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let store = Arc::new(Store::default());
    let schema = Schema::build(Query, Mutation, SubscriptionRoot).data(store.clone()).finish();
    let app = Router::new()
        .route("/graphql", get(socket).post(post))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(App { schema, store });
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    eprintln!("native peer serving on http://{}", cli.listen);
    axum::serve(listener, app).await?;
    Ok(())
}
