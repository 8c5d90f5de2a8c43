//! Accounts and sessions: users with argon2 password hashes, session tokens stored as
//! SHA-256 hashes, in `<data-dir>/accounts.sqlite`. Sessions expire after `--session-ttl`
//! without use (sliding). Validated tokens and users are cached in memory, boundedly. A
//! sign-in takes as long for an unknown e-mail as for a wrong password, and repeated failures
//! for one e-mail or from one client address are paused (see `throttle`).
//!
//! In a cluster, a shared [`AccountDirectory`] is the truth and the local database a cache
//! of it: what is not known here is looked up there, and what changes is written there.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;

use anyhow::Context;
use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::bounded::BoundedMap;
use super::passwords::Passwords;
use super::throttle::{SignInThrottle, SignUpRate, SignUpThrottle};
use crate::runtime::key::UserId;

/// A signed-up user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
}

/// A new session: the token is only ever seen here and by the client.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub user: User,
}

/// A session as the shared directory keeps it.
#[derive(Clone, Debug)]
pub struct DirectorySession {
    pub user_id: UserId,
    pub last_used_ms: u64,
    /// The directory's revision of the session when it was read (0 for a new one).
    pub revision: u64,
}

/// Accounts and sessions shared by every node of a cluster (see `cluster::accounts`).
pub trait AccountDirectory: Send + Sync {
    /// Record a new user under its e-mail; false when the e-mail is taken.
    fn claim_email<'a>(&'a self, user: &'a User, password_hash: &'a str) -> BoxFuture<'a, Result<bool, String>>;
    /// A user and its password hash, by e-mail.
    fn find_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Option<(User, String)>>;
    /// A user and its password hash, by id.
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<(User, String)>>;
    /// Record a new session.
    fn create_session<'a>(&'a self, hash: &'a str, session: DirectorySession) -> BoxFuture<'a, Result<(), String>>;
    /// A session, unless it was signed out (or never was); an error when the directory
    /// cannot be read.
    fn session<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<DirectorySession>, String>>;
    /// Write a session's use, unless it changed since `read`; false when it is gone (signed
    /// out), in which case it stays gone; an error when the directory cannot be reached.
    fn touch_session<'a>(&'a self, hash: &'a str, read: &'a DirectorySession, last_used_ms: u64) -> BoxFuture<'a, Result<bool, String>>;
    /// Delete a session and tell every node (which close its sockets, `tag`); false when
    /// either could not be done (the sign-out did not take everywhere: the client is told).
    fn end_session<'a>(&'a self, hash: &'a str, tag: u64) -> BoxFuture<'a, bool>;
}

/// Passwords shorter than this are refused at sign-up.
pub const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_NAME_CHARS: usize = 200;
const INVALID_CREDENTIALS: &str = "Invalid credentials";
/// Sessions and users kept in memory at most (each a few hundred bytes).
const CACHED: usize = 50_000;

/// A session token seen recently: its user, when it was last used, and when that was last
/// written to the database (at most every [`Accounts::touch_every_ms`], not at every request).
struct CachedSession {
    user: User,
    last_used_ms: u64,
    stored_ms: u64,
}

pub struct Accounts {
    db: Mutex<Connection>,
    sessions: Mutex<BoundedMap<String, CachedSession>>,
    users: Mutex<BoundedMap<UserId, User>>,
    passwords: Passwords,
    throttle: SignInThrottle,
    /// Sign-ups per client address (`--max-signups-per-address`; the default until set).
    sign_ups: OnceLock<SignUpThrottle>,
    /// A session unused this long is expired.
    session_ttl_ms: u64,
    /// In a cluster: the accounts every node shares.
    directory: OnceLock<Arc<dyn AccountDirectory>>,
    /// Sessions signed out since this node started (their token hashes, the latest
    /// [`CACHED`]): a check that read a session just before its sign-out must not cache it.
    signed_out: Mutex<BoundedMap<String, ()>>,
}

impl Accounts {
    pub fn open(data_dir: &Path, session_ttl: Duration) -> anyhow::Result<Arc<Self>> {
        let path = data_dir.join("accounts.sqlite");
        let db = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.execute_batch(super::sqlite::synchronous_pragma())?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS users (
               id TEXT PRIMARY KEY,
               email TEXT NOT NULL UNIQUE COLLATE NOCASE,
               name TEXT,
               password_hash TEXT NOT NULL,
               created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS sessions (
               token_hash TEXT PRIMARY KEY,
               user_id TEXT NOT NULL REFERENCES users(id),
               created_at INTEGER NOT NULL
             );",
        )?;
        let has_last_used: bool =
            db.query_row("SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'last_used_at'", [], |row| row.get::<_, i64>(0))? > 0;
        if !has_last_used {
            // Sessions made before expiry existed count as used now.
            db.execute_batch("ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;")?;
            db.execute("UPDATE sessions SET last_used_at = ?1", params![now_ms() as i64])?;
        }
        Passwords::prepare_unknown_user();
        Ok(Arc::new(Self {
            db: Mutex::new(db),
            sessions: Mutex::new(BoundedMap::new(CACHED)),
            users: Mutex::new(BoundedMap::new(CACHED)),
            passwords: Passwords::default(),
            throttle: SignInThrottle::default(),
            sign_ups: OnceLock::new(),
            session_ttl_ms: session_ttl.as_millis().max(1) as u64,
            directory: OnceLock::new(),
            signed_out: Mutex::new(BoundedMap::new(CACHED)),
        }))
    }

    /// Join a cluster's shared accounts (once, at start).
    pub fn set_directory(&self, directory: Arc<dyn AccountDirectory>) {
        let _ = self.directory.set(directory);
    }

    fn directory(&self) -> Option<&Arc<dyn AccountDirectory>> {
        self.directory.get()
    }

    /// Keep a user from the directory here (its e-mail is unique there, so a row here with
    /// the same e-mail is an older copy).
    fn cache_user(&self, user: &User, password_hash: &str) {
        let _ = self.db.lock().execute(
            "INSERT OR REPLACE INTO users (id, email, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&*user.id, &user.email, &user.name, password_hash, now_ms() as i64],
        );
    }

    /// Forget a session signed out on another node.
    pub fn forget_session(&self, hash: &str) {
        let db = self.db.lock();
        self.drop_session(&db, hash);
        self.signed_out.lock().insert(hash.to_string(), ());
    }

    /// Delete a session's row and its cached entry, under the database's lock (`db`); whether
    /// there was a row.
    fn drop_session(&self, db: &Connection, hash: &str) -> bool {
        let deleted = db.execute("DELETE FROM sessions WHERE token_hash = ?1", params![hash]).map(|n| n > 0).unwrap_or(false);
        self.sessions.lock().remove(hash);
        deleted
    }

    /// Set how many sign-ups one client address may make (once, at start).
    pub fn limit_sign_ups(&self, rate: SignUpRate) {
        let _ = self.sign_ups.set(SignUpThrottle::new(rate));
    }

    /// Count a sign-up from `client` (none: not counted), or the error to answer it with.
    pub fn admit_sign_up(&self, client: Option<IpAddr>) -> Result<(), String> {
        let Some(client) = client else { return Ok(()) };
        let throttle = self.sign_ups.get_or_init(|| SignUpThrottle::new(SignUpRate::default()));
        throttle.take(client, now_ms()).map_err(|wait_s| format!("Too many sign-ups from this address; try again in {wait_s} s"))
    }

    /// Delete every session unused for longer than the time to live (a last use is written
    /// up to [`Accounts::touch_every_ms`] late, so that much more is allowed); how many.
    pub fn purge_expired_sessions(&self) -> usize {
        let cutoff = now_ms().saturating_sub(self.session_ttl_ms + self.touch_every_ms());
        let db = self.db.lock();
        let expired: Vec<String> = db
            .prepare("SELECT token_hash FROM sessions WHERE COALESCE(last_used_at, created_at) < ?1")
            .and_then(|mut statement| statement.query_map(params![cutoff as i64], |row| row.get(0))?.collect())
            .unwrap_or_default();
        for hash in &expired {
            self.drop_session(&db, hash);
        }
        expired.len()
    }

    /// How often a session's use is written down: often enough for expiry to be off by at
    /// most an eighth of the time to live, never more than hourly.
    fn touch_every_ms(&self) -> u64 {
        (self.session_ttl_ms / 8).min(3_600_000)
    }

    /// Create a user and a first session.
    pub async fn sign_up(&self, email: &str, password: &str, name: Option<String>) -> Result<Session, String> {
        let email = email.trim().to_string();
        validate_email(&email)?;
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!("Password must be at least {MIN_PASSWORD_CHARS} characters"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!("Password must be at most {MAX_PASSWORD_CHARS} characters"));
        }
        let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
            return Err(format!("Name must be at most {MAX_NAME_CHARS} characters"));
        }
        // Hashed first, so a taken e-mail is answered after the same work as a new one (the
        // time does not tell which e-mails have accounts; sign-ups per address are throttled).
        let hash = self.passwords.hash(password.to_string()).await?;
        if self.find_by_email(&email).await.is_some() {
            return Err("Email already registered".into());
        }
        let user = User { id: new_user_id().into(), email, name };
        if let Some(directory) = self.directory() {
            if !directory.claim_email(&user, &hash).await? {
                return Err("Email already registered".into());
            }
        }
        {
            let db = self.db.lock();
            let inserted = db.execute(
                "INSERT INTO users (id, email, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&*user.id, &user.email, &user.name, hash, now_ms() as i64],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err("Email already registered".into())
                }
                Err(e) => return Err(format!("Could not create the account: {e}")),
            }
        }
        self.new_session(user).await
    }

    /// Check credentials and create a session. Every failure says only "Invalid credentials",
    /// after the same work (an unknown e-mail is checked against a stand-in hash); an e-mail or
    /// a client with too many failures in a row is told to wait, without any hashing.
    pub async fn sign_in(&self, email: &str, password: &str, client: Option<IpAddr>) -> Result<Session, String> {
        if let Err(wait_s) = self.throttle.check(email, client, now_ms()) {
            return Err(format!("Too many failed sign-ins; try again in {wait_s} s"));
        }
        let found = self.find_by_email(email.trim()).await;
        let matches = match &found {
            Some((_, stored)) => self.passwords.verify(password.to_string(), stored.clone()).await,
            None => self.passwords.verify_unknown_user(password.to_string()).await,
        };
        match found {
            Some((user, _)) if matches => {
                self.throttle.succeeded(email, client);
                self.new_session(user).await
            }
            _ => {
                self.throttle.failed(email, client, now_ms());
                Err(INVALID_CREDENTIALS.into())
            }
        }
    }

    /// End a session; false when the token named none. The row and the cached entry go
    /// together under the database's lock, which [`Accounts::authenticate`] also holds while
    /// it caches a session it read: a check racing with a sign-out cannot bring it back.
    pub async fn sign_out(&self, token: &str) -> bool {
        let hash = token_hash(token);
        let deleted = {
            let db = self.db.lock();
            let deleted = self.drop_session(&db, &hash);
            self.signed_out.lock().insert(hash.clone(), ());
            deleted
        };
        // In a cluster the directory says whether the sign-out took everywhere.
        match self.directory() {
            Some(directory) => directory.end_session(&hash, session_tag(token)).await,
            None => deleted,
        }
    }

    /// The user a session token belongs to, unless it expired (unused for the time to live;
    /// it is deleted then). Each use moves the expiry forward.
    pub async fn authenticate(&self, token: &str) -> Option<User> {
        let hash = token_hash(token);
        let now = now_ms();
        {
            let mut sessions = self.sessions.lock();
            if let Some(cached) = sessions.get_mut(&hash) {
                if now.saturating_sub(cached.last_used_ms) <= self.session_ttl_ms {
                    cached.last_used_ms = now;
                    if now.saturating_sub(cached.stored_ms) < self.touch_every_ms() {
                        return Some(cached.user.clone());
                    }
                }
            }
        }
        // In a cluster, a session not known here, or due to be written, is looked up in the
        // directory (another node may have made it, or signed it out). When the directory
        // cannot be reached, this node's own copy answers (a NATS hiccup signs no one out).
        if let Some(directory) = self.directory() {
            match directory.session(&hash).await {
                Ok(Some(shared)) => {
                    let (user, password_hash) = match self.local_user(&shared.user_id) {
                        Some(found) => found,
                        None => directory.user(&shared.user_id).await?,
                    };
                    self.cache_user(&user, &password_hash);
                    let last_used = self.sessions.lock().get(&hash).map_or(shared.last_used_ms, |c| c.last_used_ms.max(shared.last_used_ms));
                    if now.saturating_sub(last_used) <= self.session_ttl_ms {
                        match directory.touch_session(&hash, &shared, now).await {
                            Ok(true) => {}
                            Ok(false) => {
                                // Signed out on another node between the read and the write.
                                self.forget_session(&hash);
                                return None;
                            }
                            Err(e) => tracing::warn!("could not write a session's use to the cluster: {e}"),
                        }
                    }
                    let _ = self.db.lock().execute(
                        "INSERT OR REPLACE INTO sessions (token_hash, user_id, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4)",
                        params![hash, &*user.id, now as i64, last_used as i64],
                    );
                }
                Ok(None) => {
                    self.forget_session(&hash);
                    return None;
                }
                Err(e) => tracing::warn!("the cluster's accounts are unavailable; this node's copy of the session answers: {e}"),
            }
        }
        // Not cached, expired, or its last use is due to be written: ask the database, under
        // its lock (see `sign_out`). A session signed out while it was being read from the
        // directory (its notice came between the read and the local copy) stays out.
        let db = self.db.lock();
        if self.signed_out.lock().get(&hash).is_some() {
            self.drop_session(&db, &hash);
            return None;
        }
        let found = db
            .query_row(
                "SELECT u.id, u.email, u.name, COALESCE(s.last_used_at, s.created_at) FROM sessions s
                 JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                params![hash],
                |row| {
                    let user = User { id: row.get::<_, String>(0)?.into(), email: row.get(1)?, name: row.get(2)? };
                    Ok((user, row.get::<_, i64>(3)? as u64))
                },
            )
            .optional()
            .ok()
            .flatten();
        let Some((user, stored_last_used)) = found else {
            self.sessions.lock().remove(&hash);
            return None;
        };
        let last_used = self.sessions.lock().get(&hash).map_or(stored_last_used, |c| c.last_used_ms.max(stored_last_used));
        if now.saturating_sub(last_used) > self.session_ttl_ms {
            self.drop_session(&db, &hash);
            return None;
        }
        let _ = db.execute("UPDATE sessions SET last_used_at = ?2 WHERE token_hash = ?1", params![hash, now as i64]);
        self.sessions.lock().insert(hash, CachedSession { user: user.clone(), last_used_ms: now, stored_ms: now });
        drop(db);
        Some(user)
    }

    /// A user by id (cached: a user's id, email and name do not change here).
    pub async fn user_by_id(&self, id: &str) -> Option<User> {
        if let Some(user) = self.users.lock().get(id) {
            return Some(user.clone());
        }
        let user = match self.local_user(id) {
            Some((user, _)) => user,
            None => {
                let (user, password_hash) = self.directory()?.user(id).await?;
                self.cache_user(&user, &password_hash);
                user
            }
        };
        self.users.lock().insert(user.id.clone(), user.clone());
        Some(user)
    }

    /// A user and its password hash, from this node's database.
    fn local_user(&self, id: &str) -> Option<(User, String)> {
        self.db
            .lock()
            .query_row("SELECT id, email, name, password_hash FROM users WHERE id = ?1", params![id], |row| {
                Ok((User { id: row.get::<_, String>(0)?.into(), email: row.get(1)?, name: row.get(2)? }, row.get::<_, String>(3)?))
            })
            .optional()
            .ok()
            .flatten()
    }

    /// A user and its password hash by e-mail: here, else (in a cluster) in the directory.
    async fn find_by_email(&self, email: &str) -> Option<(User, String)> {
        if let Some(found) = self.local_user_by_email(email) {
            return Some(found);
        }
        let (user, password_hash) = self.directory()?.find_by_email(email).await?;
        self.cache_user(&user, &password_hash);
        Some((user, password_hash))
    }

    fn local_user_by_email(&self, email: &str) -> Option<(User, String)> {
        self.db
            .lock()
            .query_row(
                "SELECT id, email, name, password_hash FROM users WHERE email = ?1",
                params![email],
                |row| {
                    Ok((
                        User { id: row.get::<_, String>(0)?.into(), email: row.get(1)?, name: row.get(2)? },
                        row.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .ok()
            .flatten()
    }

    async fn new_session(&self, user: User) -> Result<Session, String> {
        let token = new_token();
        let hash = token_hash(&token);
        if let Some(directory) = self.directory() {
            directory.create_session(&hash, DirectorySession { user_id: user.id.clone(), last_used_ms: now_ms(), revision: 0 }).await?;
        }
        self.db
            .lock()
            .execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_used_at) VALUES (?1, ?2, ?3, ?3)",
                params![hash, &*user.id, now_ms() as i64],
            )
            .map_err(|e| format!("Could not create the session: {e}"))?;
        let now = now_ms();
        self.sessions.lock().insert(hash, CachedSession { user: user.clone(), last_used_ms: now, stored_ms: now });
        Ok(Session { token, user })
    }
}

fn validate_email(email: &str) -> Result<(), String> {
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if valid {
        Ok(())
    } else {
        Err("Invalid email address".into())
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

fn new_user_id() -> String {
    random_bytes::<12>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A session's short name, for the sockets it authenticated: the first 8 bytes of the
/// token's SHA-256 (never 0, which names no session).
pub fn session_tag(token: &str) -> u64 {
    let digest = Sha256::digest(token.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sign_up_sign_in_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let session = accounts.sign_up("Ada@example.com", "correct horse", Some("Ada".into())).await.unwrap();
        assert_eq!(accounts.authenticate(&session.token).await, Some(session.user.clone()));
        assert_eq!(
            accounts.sign_up("ada@EXAMPLE.com", "another password", None).await.unwrap_err(),
            "Email already registered"
        );
        assert_eq!(accounts.sign_in("ada@example.com", "wrong password", None).await.unwrap_err(), INVALID_CREDENTIALS);
        assert_eq!(accounts.sign_in("nobody@example.com", "whatever1", None).await.unwrap_err(), INVALID_CREDENTIALS);
        let again = accounts.sign_in("ada@example.com", "correct horse", None).await.unwrap();
        assert_eq!(again.user, session.user);
        assert!(accounts.sign_out(&session.token).await);
        assert!(accounts.authenticate(&session.token).await.is_none());
        assert!(!accounts.sign_out(&session.token).await);
        assert!(accounts.authenticate(&again.token).await.is_some());
        assert_eq!(accounts.sign_up("short@example.com", "short", None).await.unwrap_err(), "Password must be at least 8 characters");
        assert_eq!(accounts.sign_up("no-at-sign", "long enough", None).await.unwrap_err(), "Invalid email address");
    }

    #[tokio::test]
    async fn sessions_expire_when_unused_for_their_time_to_live() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path(), Duration::from_millis(300)).unwrap();
        let session = accounts.sign_up("eve@example.com", "correct horse", None).await.unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(150));
            assert!(accounts.authenticate(&session.token).await.is_some(), "each use slides the expiry");
        }
        std::thread::sleep(Duration::from_millis(400));
        assert!(accounts.authenticate(&session.token).await.is_none(), "unused for longer than the time to live");
        let reopened = Accounts::open(dir.path(), Duration::from_secs(3600)).unwrap();
        assert!(reopened.authenticate(&session.token).await.is_none(), "and deleted, not only forgotten");
    }

    #[tokio::test]
    async fn expired_sessions_are_purged_without_being_looked_up() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path(), Duration::from_millis(200)).unwrap();
        let stale = accounts.sign_up("old@example.com", "correct horse", None).await.unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let fresh = accounts.sign_up("new@example.com", "correct horse", None).await.unwrap();
        assert_eq!(accounts.purge_expired_sessions(), 1, "the unused session goes, never looked up again");
        let rows: i64 = accounts.db.lock().query_row("SELECT count(*) FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1);
        assert!(accounts.authenticate(&fresh.token).await.is_some());
        assert!(accounts.authenticate(&stale.token).await.is_none());
    }

    /// A directory holding one session: unreachable, or reachable with reads that wait at a
    /// gate when `gated` (to let a sign-out notice arrive between a node's read and its local
    /// copy).
    struct FakeDirectory {
        user: User,
        reachable: bool,
        gated: bool,
        read_started: tokio::sync::Notify,
        gate: tokio::sync::Notify,
    }

    impl FakeDirectory {
        fn new(user: User, reachable: bool, gated: bool) -> Arc<Self> {
            Arc::new(Self { user, reachable, gated, read_started: Default::default(), gate: Default::default() })
        }
    }

    impl AccountDirectory for FakeDirectory {
        fn claim_email<'a>(&'a self, _: &'a User, _: &'a str) -> BoxFuture<'a, Result<bool, String>> {
            Box::pin(async { Ok(false) })
        }
        fn find_by_email<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Option<(User, String)>> {
            Box::pin(async { None })
        }
        fn user<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Option<(User, String)>> {
            Box::pin(async { Some((self.user.clone(), "hash".to_string())) })
        }
        fn create_session<'a>(&'a self, _: &'a str, _: DirectorySession) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Ok(()) })
        }
        fn session<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<DirectorySession>, String>> {
            Box::pin(async {
                if !self.reachable {
                    return Err("unreachable".to_string());
                }
                if self.gated {
                    self.read_started.notify_one();
                    self.gate.notified().await;
                }
                Ok(Some(DirectorySession { user_id: self.user.id.clone(), last_used_ms: now_ms(), revision: 1 }))
            })
        }
        fn touch_session<'a>(&'a self, _: &'a str, _: &'a DirectorySession, _: u64) -> BoxFuture<'a, Result<bool, String>> {
            Box::pin(async { Ok(true) })
        }
        fn end_session<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, bool> {
            Box::pin(async { true })
        }
    }

    #[tokio::test]
    async fn a_session_signed_out_elsewhere_while_it_was_being_read_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let user = User { id: "u1".into(), email: "ada@example.com".into(), name: None };
        let directory = FakeDirectory::new(user, true, true);
        accounts.set_directory(directory.clone());
        let checking = tokio::spawn({
            let accounts = accounts.clone();
            async move { accounts.authenticate("a token").await }
        });
        directory.read_started.notified().await;
        // The sign-out's notice arrives while the directory still answers with the session.
        accounts.forget_session(&token_hash("a token"));
        directory.gate.notify_one();
        assert_eq!(checking.await.unwrap(), None);
        assert!(accounts.sessions.lock().get(&token_hash("a token")).is_none(), "not cached");
        let rows: i64 = accounts.db.lock().query_row("SELECT count(*) FROM sessions", [], |row| row.get(0)).unwrap();
        assert_eq!(rows, 0, "not kept in the local database");
    }

    #[tokio::test]
    async fn an_unreachable_directory_leaves_the_sessions_this_node_knows_valid() {
        let dir = tempfile::tempdir().unwrap();
        let session = Accounts::open(dir.path(), Duration::from_secs(3600)).unwrap().sign_up("ada@example.com", "correct horse", None).await.unwrap();
        // The same node after a restart (nothing cached in memory), its cluster unreachable.
        let accounts = Accounts::open(dir.path(), Duration::from_secs(3600)).unwrap();
        accounts.set_directory(FakeDirectory::new(session.user.clone(), false, false));
        assert_eq!(accounts.authenticate(&session.token).await, Some(session.user.clone()));
        assert!(accounts.signed_out.lock().is_empty(), "not taken for a sign-out");
        assert_eq!(accounts.authenticate("a token no node made").await, None);
    }
}
