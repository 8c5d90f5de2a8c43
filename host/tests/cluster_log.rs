//! The user log's fencing against a real `nats-server -js` (see `common`): an
//! append at a stale expected sequence is refused, so a node that lost a user (another node
//! appended its `owner` marker) cannot append for it; entries read back in order.

mod common;

use realtime_host::cluster::log::{decode, encode_owner, encode_writes, AppendError, Entry, UserLog};
use realtime_host::runtime::bindings::host_api::sql::Value;
use realtime_host::storage::actor_db::Write;

#[tokio::test]
async fn a_node_that_lost_the_user_cannot_append() {
    let nats = common::start_nats();
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let log = UserLog::open(&js, 1).await.unwrap();
    let user = "0123abcd";
    assert_eq!(log.last(user).await.unwrap(), 0);

    // Node A takes the user and commits one call.
    let a_marker = log.append(user, 0, encode_owner("node-a")).await.unwrap();
    let write = Write { sql: "INSERT INTO t (x) VALUES (?1)".into(), params: vec![Value::Integer(1)] };
    let a_commit = log.append(user, a_marker, encode_writes(std::slice::from_ref(&write))).await.unwrap();
    assert!(a_commit > a_marker);

    // Node B takes the user over from the last entry it read.
    let b_marker = log.append(user, log.last(user).await.unwrap(), encode_owner("node-b")).await.unwrap();

    // A, paused through all of that, tries its next commit at the sequence it knew: refused.
    let stale = log.append(user, a_commit, encode_writes(std::slice::from_ref(&write))).await;
    assert!(matches!(stale, Err(AppendError::Fenced)), "{stale:?}");
    // And so is a take-over that raced with B's.
    assert!(matches!(log.append(user, a_commit, encode_owner("node-c")).await, Err(AppendError::Fenced)));

    // B goes on; another user's log is its own.
    let b_commit = log.append(user, b_marker, encode_writes(std::slice::from_ref(&write))).await.unwrap();
    assert_eq!(log.append("other", 0, encode_owner("node-a")).await.ok().map(|s| s > b_commit), Some(true));

    // One history, in order.
    let (entries, mut received) = tokio::sync::mpsc::channel(16);
    log.read(user, 0, b_commit, &entries).await.unwrap();
    drop(entries);
    let mut read = Vec::new();
    while let Some((seq, entry)) = received.recv().await {
        read.push((seq, match entry {
            Entry::Owner(node) => format!("owner {node}"),
            Entry::Writes(writes) => format!("{} writes", writes.len()),
        }));
    }
    assert_eq!(read, vec![
        (a_marker, "owner node-a".to_string()),
        (a_commit, "1 writes".to_string()),
        (b_marker, "owner node-b".to_string()),
        (b_commit, "1 writes".to_string()),
    ]);
    assert!(matches!(decode(&encode_owner("x")).unwrap(), Entry::Owner(_)));
}
