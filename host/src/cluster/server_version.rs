//! Which NATS servers a node agrees to join: JetStream's fencing by expected last subject
//! sequence, which the user log relies on, was not reliable on replicated streams before
//! 2.10 (nats-server #4320: two publishes with the same expected sequence both accepted;
//! #5644: an expected sequence of 0 desyncs replicas), so older servers are refused.

/// The oldest nats-server a node joins.
pub const MIN_VERSION: (u64, u64, u64) = (2, 10, 0);

/// `Ok` when `version` (the server's INFO, e.g. `2.15.1` or `2.11.0-beta.2`) is at least
/// [`MIN_VERSION`]; else the reason, naming both.
pub fn check(version: &str) -> Result<(), String> {
    let (major, minor, patch) = MIN_VERSION;
    match parse(version) {
        Some(found) if found >= MIN_VERSION => Ok(()),
        Some(_) => Err(format!(
            "nats-server {version} is too old: the cluster needs {major}.{minor}.{patch} or newer \
             (older servers can accept two appends fenced on the same sequence); \
             scripts/nats-server.sh installs a current one"
        )),
        None => Err(format!("nats-server reports an unreadable version {version:?}")),
    }
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_servers_are_accepted() {
        for ok in ["2.15.1", "2.10.0", "v2.12.3", "2.11.0-beta.2", "3.0.0"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn servers_with_the_fencing_bug_are_refused() {
        for old in ["2.9.10", "2.9.20", "2.2.0", "1.4.1"] {
            let err = check(old).expect_err(old);
            assert!(err.contains("too old") && err.contains(old) && err.contains("2.10.0"), "{err}");
        }
        assert!(check("nonsense").unwrap_err().contains("unreadable"));
    }
}
