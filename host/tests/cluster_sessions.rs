//! Sessions in the cluster's shared directory, against a real `nats-server -js` (see
//! `common`): a node writing a session's use cannot bring back a session another node signed
//! out, and two nodes writing the use of one session at once both keep it.

mod common;

use realtime_host::cluster::accounts::{Directory, SharedAccounts};
use realtime_host::storage::accounts::{AccountDirectory, DirectorySession};

#[tokio::test]
async fn a_sign_out_is_not_undone_by_a_use_written_after_it() {
    let nats = common::start_nats();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let shared = SharedAccounts::open(&js, 1).await.unwrap();
    let (node_a, node_b) = (Directory::new(&shared, client.clone()), Directory::new(&shared, client.clone()));

    let session = DirectorySession { user_id: "u1".into(), last_used_ms: 1, revision: 0 };
    node_a.create_session("h1", session).await.unwrap();

    // Both nodes read the session; A writes its use first, then B: the session stands.
    let read_by_a = node_a.session("h1").await.unwrap().unwrap();
    let read_by_b = node_b.session("h1").await.unwrap().unwrap();
    assert_eq!(read_by_a.revision, read_by_b.revision);
    assert!(node_a.touch_session("h1", &read_by_a, 2).await.unwrap());
    assert!(node_b.touch_session("h1", &read_by_b, 3).await.unwrap(), "another node's write of its use is not a sign-out");
    assert_eq!(node_b.session("h1").await.unwrap().unwrap().last_used_ms, 2);

    // A reads it, B signs it out, A writes its use: refused, and the session stays gone.
    let read_by_a = node_a.session("h1").await.unwrap().unwrap();
    node_b.end_session("h1", 7).await;
    assert!(!node_a.touch_session("h1", &read_by_a, 4).await.unwrap());
    assert!(node_a.session("h1").await.unwrap().is_none());
    assert!(node_b.session("h1").await.unwrap().is_none());
}
