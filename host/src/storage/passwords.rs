//! Password hashing (argon2id, 19 MiB per hash) on a bounded set of blocking threads.
//!
//! Each hash holds 19 MiB while it runs, so a burst of sign-ups or sign-ins must not run
//! them all at once: at most one per core runs, the others wait their turn. (Freed hash
//! memory goes straight back to the OS: see `memory::configure_allocator`.)

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// A hash no password matches, verified in place of an unknown user's so that a sign-in for
/// an unknown e-mail takes as long as one with a wrong password.
static UNKNOWN_USER: OnceLock<String> = OnceLock::new();

fn unknown_user_hash() -> &'static str {
    UNKNOWN_USER.get_or_init(|| hash_password(&new_random_password()).unwrap_or_default())
}

fn new_random_password() -> String {
    SaltString::generate(&mut rand::rngs::OsRng).as_str().to_owned()
}

pub struct Passwords {
    running: Semaphore,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self { running: Semaphore::new(cores) }
    }
}

impl Passwords {
    /// The PHC string of a new salted hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        self.on_pool(move || hash_password(&password)).await.unwrap_or_else(|| Err("Could not hash the password".into()))
    }

    /// Whether `password` matches the PHC string `stored`.
    pub async fn verify(&self, password: String, stored: String) -> bool {
        self.on_pool(move || verify_password(&password, &stored)).await.unwrap_or(false)
    }

    /// The work of a verification that fails, for an e-mail no user has.
    pub async fn verify_unknown_user(&self, password: String) -> bool {
        self.on_pool(move || verify_password(&password, unknown_user_hash())).await;
        false
    }

    /// Make the stand-in hash now, in the background, so the first unknown e-mail does not
    /// pay for it (which would tell it apart).
    pub fn prepare_unknown_user() {
        std::thread::spawn(|| {
            unknown_user_hash();
        });
    }

    async fn on_pool<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _turn = self.running.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }
}

fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("Could not hash the password: {e}"))
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}
