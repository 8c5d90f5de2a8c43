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
    let a_marker = log.append(user, 0, encode_owner("node-a"), "node-a").await.unwrap();
    let write = Write { sql: "INSERT INTO t (x) VALUES (?1)".into(), params: vec![Value::Integer(1)] };
    let a_commit = log.append(user, a_marker, encode_writes(std::slice::from_ref(&write)), "node-a").await.unwrap();
    assert!(a_commit > a_marker);

    // Node B takes the user over from the last entry it read.
    let b_marker = log.append(user, log.last(user).await.unwrap(), encode_owner("node-b"), "node-b").await.unwrap();

    // A, paused through all of that, tries its next commit at the sequence it knew: refused.
    let stale = log.append(user, a_commit, encode_writes(std::slice::from_ref(&write)), "node-a").await;
    assert!(matches!(stale, Err(AppendError::Fenced)), "{stale:?}");
    // And so is a take-over that raced with B's.
    assert!(matches!(log.append(user, a_commit, encode_owner("node-c"), "node-c").await, Err(AppendError::Fenced)));

    // B goes on; another user's log is its own.
    let b_commit = log.append(user, b_marker, encode_writes(std::slice::from_ref(&write)), "node-b").await.unwrap();
    assert_eq!(log.append("other", 0, encode_owner("node-a"), "node-a").await.ok().map(|s| s > b_commit), Some(true));

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

/// An append whose answer was lost is settled from the log: it landed (its id is the first
/// entry after the expected sequence), another entry came first (it never can land), or
/// nothing came (a marker of this node shuts it out, so a late copy of it is refused).
#[tokio::test]
async fn an_append_whose_answer_was_lost_is_settled_from_the_log() {
    let nats = common::start_nats();
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let log = UserLog::open(&js, 1).await.unwrap();
    let write = Write { sql: "INSERT INTO t (x) VALUES (?1)".into(), params: vec![Value::Integer(1)] };
    let publish = |user: &str, expected: u64, id: &str| {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(encode_writes(std::slice::from_ref(&write)))
            .expected_last_subject_sequence(expected)
            .message_id(id);
        let js = js.clone();
        let subject = realtime_host::cluster::log::subject(user);
        async move { js.send_publish(subject, message).await.unwrap().await }
    };

    // It landed, and its answer was lost: the log says so.
    let start = log.append("landed", 0, encode_owner("node-a"), "node-a").await.unwrap();
    let landed = publish("landed", start, "call-1").await.unwrap().sequence;
    assert_eq!(log.settle("landed", start, "call-1", "node-a", "lost".into()).await.unwrap(), landed);
    // A second publish of the same id (the client's buffer after a reconnect) is not appended:
    // the stream drops it (same id) or refuses it (its expectation is gone).
    let again = publish("landed", start, "call-1").await;
    assert!(again.as_ref().map_or(true, |ack| ack.duplicate && ack.sequence == landed), "{again:?}");
    assert_eq!(log.last("landed").await.unwrap(), landed);

    // Another entry came first: it never can land.
    let start = log.append("raced", 0, encode_owner("node-a"), "node-a").await.unwrap();
    log.append("raced", start, encode_owner("node-b"), "node-b").await.unwrap();
    assert!(matches!(log.settle("raced", start, "call-2", "node-a", "lost".into()).await, Err(AppendError::NotApplied(_))));

    // Nothing came: a marker shuts it out, and a late copy of it is refused.
    let start = log.append("quiet", 0, encode_owner("node-a"), "node-a").await.unwrap();
    assert!(matches!(log.settle("quiet", start, "call-3", "node-a", "lost".into()).await, Err(AppendError::NotApplied(_))));
    let late = publish("quiet", start, "call-3").await;
    assert!(late.is_err(), "the late copy must be refused: {late:?}");
    let (entries, mut received) = tokio::sync::mpsc::channel(16);
    log.read("quiet", 0, log.last("quiet").await.unwrap(), &entries).await.unwrap();
    drop(entries);
    let mut kinds = Vec::new();
    while let Some((_, entry)) = received.recv().await {
        kinds.push(matches!(entry, Entry::Owner(_)));
    }
    assert_eq!(kinds, vec![true, true], "two markers and no write");
}
