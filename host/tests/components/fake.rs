//! An in-memory test host: implements every WIT import with fakes that record what the
//! component did, so the built `.wasm` of each component can be driven through its exports.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use realtime_host::runtime::bindings::host_api::{self, accounts, graphql, sockets, sql};
use realtime_host::storage::actor_db::{from_sql, to_sql};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The built component `name` (e.g. `user_channel`).
pub fn wasm_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release").join(format!("{name}.wasm"))
}

pub fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_component_model(true);
    Engine::new(&config).unwrap()
}

pub fn component(engine: &Engine, name: &str) -> Component {
    let path = wasm_path(name);
    Component::from_file(engine, &path)
        .unwrap_or_else(|e| panic!("{} (build it with scripts/build-components.sh): {e}", path.display()))
}

#[derive(Default, Debug, Clone)]
pub struct FakeSocket {
    pub sent: Vec<serde_json::Value>,
    pub closed: Option<(u16, String)>,
    pub attachment: Option<String>,
    pub opened_at: u64,
    /// The user a header authenticated this socket as.
    pub header_user: Option<String>,
    pub authenticated: bool,
}

/// What `graphql` answers, for testing the user-channel component.
pub type PrepareFn = fn(&str) -> Result<graphql::Operation, String>;

pub struct Fake {
    wasi: WasiCtx,
    table: ResourceTable,
    pub db: rusqlite::Connection,
    pub kv: BTreeMap<String, Vec<u8>>,
    pub published: Vec<(String, serde_json::Value)>,
    pub logs: Vec<String>,
    pub sockets: BTreeMap<u64, FakeSocket>,
    pub alarm: Option<u64>,
    pub now: u64,
    pub init_timeout_ms: u64,
    pub tokens: HashMap<String, String>,
    pub prepare: PrepareFn,
    pub executed: Vec<String>,
    pub resolved: Vec<(String, Vec<String>)>,
    /// How many `resolve-events` calls were made.
    pub resolve_calls: usize,
    pub user: Option<accounts::User>,
    pub library_calls: Vec<(String, serde_json::Value)>,
    pub library_answers: HashMap<String, Result<String, String>>,
    /// What `settings.event-retention` answers: (max events, max age in ms).
    pub retention: (u32, u64),
    /// What `sockets.max-frame-bytes` answers.
    pub max_frame_bytes: u32,
}

fn default_prepare(query: &str) -> Result<graphql::Operation, String> {
    let request: serde_json::Value = serde_json::from_str(query).unwrap();
    let query = request["query"].as_str().unwrap();
    if query.contains("invalid") {
        Err(r#"[{"message":"Cannot query field \"invalid\""}]"#.into())
    } else if query.starts_with("subscription") {
        let after = request["variables"]["after"].as_str().map(str::to_owned);
        Ok(graphql::Operation::Subscription(graphql::SubscriptionTarget { channel: "library".into(), after }))
    } else if query.starts_with("mutation") {
        Ok(graphql::Operation::Mutation)
    } else {
        Ok(graphql::Operation::Query)
    }
}

impl Default for Fake {
    fn default() -> Self {
        Self {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
            db: rusqlite::Connection::open_in_memory().unwrap(),
            kv: BTreeMap::new(),
            published: Vec::new(),
            logs: Vec::new(),
            sockets: BTreeMap::new(),
            alarm: None,
            now: 1_000_000,
            init_timeout_ms: 10_000,
            tokens: HashMap::new(),
            prepare: default_prepare,
            executed: Vec::new(),
            resolved: Vec::new(),
            resolve_calls: 0,
            user: None,
            library_calls: Vec::new(),
            library_answers: HashMap::new(),
            retention: (1000, 86_400_000),
            max_frame_bytes: 1 << 20,
        }
    }
}

impl WasiView for Fake {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub fn linker(engine: &Engine) -> Linker<Fake> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let l = &mut linker;
    host_api::log::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::sql::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::kv::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::channel::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::sockets::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::alarm::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::settings::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::graphql::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::accounts::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    host_api::library::add_to_linker::<_, HasSelf<_>>(l, |s| s).unwrap();
    linker
}

pub fn store(engine: &Engine, fake: Fake) -> Store<Fake> {
    Store::new(engine, fake)
}

impl host_api::log::Host for Fake {
    async fn log(&mut self, _level: host_api::log::Level, message: String) {
        self.logs.push(message);
    }
}

impl host_api::sql::Host for Fake {
    async fn execute(&mut self, statement: String, params: Vec<sql::Value>) -> Result<sql::ExecResult, String> {
        let changes = self
            .db
            .execute(&statement, rusqlite::params_from_iter(params.into_iter().map(to_sql)))
            .map_err(|e| e.to_string())?;
        Ok(sql::ExecResult { changes: changes as u64, last_insert_rowid: self.db.last_insert_rowid() })
    }

    async fn query(&mut self, statement: String, params: Vec<sql::Value>) -> Result<sql::Rows, String> {
        let mut stmt = self.db.prepare(&statement).map_err(|e| e.to_string())?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let width = columns.len();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.into_iter().map(to_sql))).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            out.push(
                (0..width).map(|i| from_sql(row.get_ref(i).unwrap())).collect(),
            );
        }
        Ok(sql::Rows { columns, rows: out })
    }
}

impl host_api::kv::Host for Fake {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key).cloned()
    }
    async fn put(&mut self, key: String, value: Vec<u8>) {
        self.kv.insert(key, value);
    }
    async fn delete(&mut self, key: String) -> bool {
        self.kv.remove(&key).is_some()
    }
}

impl host_api::channel::Host for Fake {
    async fn publish(&mut self, channel: String, event: String) {
        self.published.push((channel, serde_json::from_str(&event).expect("events are JSON")));
    }
}

impl host_api::alarm::Host for Fake {
    async fn now_ms(&mut self) -> u64 {
        self.now
    }
    async fn set(&mut self, at_ms: u64) {
        self.alarm = Some(at_ms);
    }
    async fn clear(&mut self) {
        self.alarm = None;
    }
}

impl host_api::settings::Host for Fake {
    async fn init_timeout_ms(&mut self) -> u64 {
        self.init_timeout_ms
    }
    async fn graphql_limits(&mut self) -> host_api::settings::QueryLimits {
        host_api::settings::QueryLimits { max_depth: 16, max_complexity: 2000, max_aliases: 64 }
    }
    async fn graphql_max_response_fields(&mut self) -> u32 {
        500
    }
    async fn event_retention(&mut self) -> host_api::settings::Retention {
        host_api::settings::Retention { max_events: self.retention.0, max_age_ms: self.retention.1 }
    }
}

impl sockets::Host for Fake {
    async fn max_attachment_bytes(&mut self) -> u32 {
        4096
    }
    async fn max_frame_bytes(&mut self) -> u32 {
        self.max_frame_bytes
    }
    async fn list(&mut self) -> Vec<u64> {
        self.sockets.iter().filter(|(_, s)| s.closed.is_none()).map(|(id, _)| *id).collect()
    }
    async fn send(&mut self, socket: u64, text: String) {
        if let Some(s) = self.sockets.get_mut(&socket) {
            s.sent.push(serde_json::from_str(&text).expect("sent frames are JSON"));
        }
    }
    async fn close(&mut self, socket: u64, code: u16, reason: String) {
        assert!(reason.len() <= 123, "close reason too long: {reason}");
        if let Some(s) = self.sockets.get_mut(&socket) {
            s.closed = Some((code, reason));
        }
    }
    async fn get_attachment(&mut self, socket: u64) -> Option<String> {
        self.sockets.get(&socket).and_then(|s| s.attachment.clone())
    }
    async fn set_attachment(&mut self, socket: u64, value: String) -> Result<(), String> {
        if value.len() > 4096 {
            return Err("too large".into());
        }
        match self.sockets.get_mut(&socket) {
            Some(s) => {
                s.attachment = Some(value);
                Ok(())
            }
            None => Err("no such socket".into()),
        }
    }
    async fn opened_at_ms(&mut self, socket: u64) -> u64 {
        self.sockets.get(&socket).map(|s| s.opened_at).unwrap_or(0)
    }
    async fn authenticate(&mut self, socket: u64, token: Option<String>) -> Result<(), sockets::AuthError> {
        let socket = self.sockets.get_mut(&socket).ok_or(sockets::AuthError::InvalidToken)?;
        let user = match token {
            Some(token) => self.tokens.get(&token).cloned().ok_or(sockets::AuthError::InvalidToken)?,
            None => socket.header_user.clone().ok_or(sockets::AuthError::MissingToken)?,
        };
        if socket.header_user.as_ref().is_some_and(|h| *h != user) {
            return Err(sockets::AuthError::InvalidToken);
        }
        socket.authenticated = true;
        Ok(())
    }
}

impl graphql::Host for Fake {
    async fn prepare(&mut self, request: String) -> Result<graphql::Operation, String> {
        (self.prepare)(&request)
    }
    async fn execute(&mut self, request: String) -> String {
        self.executed.push(request);
        r#"{"data":{"me":null}}"#.into()
    }
    async fn resolve_events(&mut self, events: Vec<graphql::EventFor>) -> Vec<Vec<String>> {
        self.resolve_calls += 1;
        events
            .into_iter()
            .map(|graphql::EventFor { event, requests }| {
                self.resolved.push((event.clone(), requests.clone()));
                requests
                    .iter()
                    .map(|r| {
                        let request: serde_json::Value = serde_json::from_str(r).unwrap();
                        serde_json::json!({ "data": { "channel": serde_json::from_str::<serde_json::Value>(&event).unwrap() }, "query": request["query"] }).to_string()
                    })
                    .collect()
            })
            .collect()
    }
    async fn schema_sdl(&mut self) -> String {
        String::new()
    }
}

impl host_api::accounts::Host for Fake {
    async fn current_user(&mut self) -> Option<accounts::User> {
        self.user.clone()
    }
    async fn sign_up(&mut self, email: String, _password: String, name: Option<String>) -> Result<accounts::Session, String> {
        let user = accounts::User { id: "u-new".into(), email, name };
        self.user = Some(user.clone());
        Ok(accounts::Session { token: "t-new".into(), user })
    }
    async fn sign_in(&mut self, email: String, password: String) -> Result<accounts::Session, String> {
        if password != "right password" {
            return Err("Invalid credentials".into());
        }
        let user = accounts::User { id: "u-1".into(), email, name: None };
        self.user = Some(user.clone());
        Ok(accounts::Session { token: "t-1".into(), user })
    }
    async fn sign_out(&mut self) -> bool {
        self.user.take().is_some()
    }
}

impl host_api::library::Host for Fake {
    async fn call(&mut self, method: String, args: String) -> Result<String, String> {
        self.library_calls.push((method.clone(), serde_json::from_str(&args).unwrap_or_default()));
        self.library_answers.get(&method).cloned().unwrap_or_else(|| Err(format!("no fake answer for {method}")))
    }
}
