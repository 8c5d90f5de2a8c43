//! Trying again while JetStream cannot answer yet: a NATS cluster that is starting, or a
//! stream electing its leader after a NATS server was lost, answers errors ("timed out", "no
//! stream found") for a few seconds, which a node waits out rather than fails on.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// Run `attempt` until it succeeds, fails for good (`final_error`), or `patience` has passed,
/// pausing more between tries each time (50 ms doubling to 1 s); each failure is logged.
pub async fn again_while_failing<T, E: Display, F: Future<Output = Result<T, E>>>(
    patience: Duration,
    what: &str,
    mut attempt: impl FnMut() -> F,
    final_error: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(e) if !final_error(&e) && started.elapsed() < patience => {
                tracing::warn!("{what}: {e:#}; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}
