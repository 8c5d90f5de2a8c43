//! The built `user_channel.wasm` under wasmtime: the graphql-ws state machine, every close
//! code, fan-out with each subscription's own request, and state that survives eviction.

use realtime_host::runtime::bindings::user_channel::exports::realtime::host::user_channel_actor::ChannelEvent;
use realtime_host::runtime::bindings::user_channel::UserChannelComponent;
use serde_json::{json, Value};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};

use crate::fake::{self, Fake, FakeSocket};

struct Channel {
    engine: Engine,
    component: Component,
    store: Store<Fake>,
    actor: UserChannelComponent,
}

impl Channel {
    async fn new() -> Self {
        let engine = fake::engine();
        let component = fake::component(&engine, "user_channel");
        let mut fake = Fake::default();
        fake.tokens.insert("alice-token".into(), "alice".into());
        let mut store = fake::store(&engine, fake);
        let actor = UserChannelComponent::instantiate_async(&mut store, &component, &fake::linker(&engine)).await.unwrap();
        Self { engine, component, store, actor }
    }

    /// Drop the instance and start a new one on the same fake host (an eviction).
    async fn evict(&mut self) {
        self.actor = UserChannelComponent::instantiate_async(&mut self.store, &self.component, &fake::linker(&self.engine)).await.unwrap();
    }

    async fn open(&mut self, id: u64, header_user: Option<&str>) {
        let now = self.store.data().now;
        self.store.data_mut().sockets.insert(id, FakeSocket { opened_at: now, header_user: header_user.map(String::from), ..Default::default() });
        self.actor.realtime_host_user_channel_actor().call_on_open(&mut self.store, id).await.unwrap();
    }

    async fn message(&mut self, id: u64, frame: Value) {
        self.text(id, &frame.to_string()).await;
    }

    async fn text(&mut self, id: u64, text: &str) {
        self.actor.realtime_host_user_channel_actor().call_on_message(&mut self.store, id, text, false).await.unwrap();
    }

    async fn publish(&mut self, event: Value) {
        self.publish_all(&[event]).await;
    }

    /// One `publish` call carrying several events on the library channel.
    async fn publish_all(&mut self, events: &[Value]) {
        let events: Vec<ChannelEvent> =
            events.iter().map(|e| ChannelEvent { channel: "library".into(), event: e.to_string() }).collect();
        self.actor.realtime_host_user_channel_actor().call_publish(&mut self.store, &events).await.unwrap();
    }

    fn sent(&mut self, id: u64) -> Vec<Value> {
        std::mem::take(&mut self.store.data_mut().sockets.get_mut(&id).unwrap().sent)
    }

    fn closed(&self, id: u64) -> Option<(u16, String)> {
        self.store.data().sockets[&id].closed.clone()
    }

    /// An acknowledged socket authenticated by header.
    async fn ready(&mut self, id: u64) {
        self.open(id, Some("alice")).await;
        self.message(id, json!({"type": "connection_init"})).await;
        assert_eq!(self.sent(id), vec![json!({"type": "connection_ack"})]);
    }
}

#[tokio::test]
async fn handshake_ping_and_init_rules() {
    let mut ch = Channel::new().await;
    ch.open(1, None).await;
    assert_eq!(ch.store.data().alarm, Some(1_000_000 + 10_000), "init timeout armed at open");
    ch.message(1, json!({"type": "ping", "payload": {"x": 1}})).await;
    assert_eq!(ch.sent(1), vec![json!({"type": "pong", "payload": {"x": 1}})]);
    ch.message(1, json!({"type": "pong"})).await;
    assert!(ch.sent(1).is_empty(), "an unsolicited pong is ignored");
    ch.message(1, json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}})).await;
    assert_eq!(ch.closed(1), Some((4401, "Unauthorized".into())));

    ch.open(2, None).await;
    ch.message(2, json!({"type": "connection_init", "payload": {"token": "alice-token"}})).await;
    assert_eq!(ch.sent(2), vec![json!({"type": "connection_ack"})]);
    assert!(ch.store.data().sockets[&2].authenticated);
    ch.message(2, json!({"type": "connection_init", "payload": {"token": "alice-token"}})).await;
    assert_eq!(ch.closed(2), Some((4429, "Too many initialisation requests".into())));

    ch.open(3, None).await;
    ch.message(3, json!({"type": "connection_init", "payload": {"token": "wrong"}})).await;
    assert_eq!(ch.closed(3), Some((4403, "Forbidden".into())));
    ch.open(4, None).await;
    ch.message(4, json!({"type": "connection_init"})).await;
    assert_eq!(ch.closed(4), Some((4403, "Forbidden".into())));
}

#[tokio::test]
async fn malformed_frames_close_4400() {
    for frame in ["{nope", "[]", "1", r#"{"type":"nope"}"#, r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#,
        r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#, r#"{"type":"subscribe","id":"1","payload":"x"}"#,
        r#"{"type":"complete"}"#, r#"{"type":"ping","payload":"text"}"#] {
        let mut ch = Channel::new().await;
        ch.ready(1).await;
        ch.text(1, frame).await;
        let (code, reason) = ch.closed(1).unwrap_or_else(|| panic!("{frame} did not close"));
        assert_eq!(code, 4400, "{frame}: {reason}");
        assert!(reason.len() <= 123);
    }
    let mut ch = Channel::new().await;
    ch.ready(1).await;
    ch.actor.realtime_host_user_channel_actor().call_on_message(&mut ch.store, 1, "", true).await.unwrap();
    assert_eq!(ch.closed(1).unwrap().0, 4400);
}

#[tokio::test]
async fn init_timeout_fires_by_alarm() {
    let mut ch = Channel::new().await;
    ch.open(1, None).await;
    ch.store.data_mut().now += 5_000;
    ch.open(2, None).await;
    ch.store.data_mut().now += 5_001;
    ch.actor.realtime_host_user_channel_actor().call_on_alarm(&mut ch.store).await.unwrap();
    assert_eq!(ch.closed(1), Some((4408, "Connection initialisation timeout".into())));
    assert_eq!(ch.closed(2), None);
    assert_eq!(ch.store.data().alarm, Some(1_000_000 + 5_000 + 10_000), "re-armed for the next socket");
}

#[tokio::test]
async fn operations_and_subscriptions() {
    let mut ch = Channel::new().await;
    ch.ready(1).await;
    ch.message(1, json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me { id } }"}})).await;
    assert_eq!(ch.sent(1), vec![
        json!({"id": "q", "type": "next", "payload": {"data": {"me": null}}}),
        json!({"id": "q", "type": "complete"}),
    ]);
    ch.message(1, json!({"id": "e", "type": "subscribe", "payload": {"query": "{ invalid }"}})).await;
    assert_eq!(ch.sent(1), vec![json!({"id": "e", "type": "error", "payload": [{"message": "Cannot query field \"invalid\""}]})]);
    assert_eq!(ch.closed(1), None);

    ch.message(1, json!({"id": "a", "type": "subscribe", "payload": {"query": "subscription A { channel(name: \"library\") { __typename } }"}})).await;
    ch.message(1, json!({"id": "b", "type": "subscribe", "payload": {"query": "subscription B { channel(name: \"library\") { type } }"}})).await;
    ch.message(1, json!({"id": "a", "type": "subscribe", "payload": {"query": "subscription A { channel(name: \"library\") { __typename } }"}})).await;
    assert_eq!(ch.closed(1), Some((4409, "Subscriber for a already exists".into())));

    let mut ch = Channel::new().await;
    ch.ready(1).await;
    ch.ready(2).await;
    let a = "subscription A { channel(name: \"library\") { __typename } }";
    ch.message(1, json!({"id": "a", "type": "subscribe", "payload": {"query": a}})).await;
    ch.message(1, json!({"id": "b", "type": "subscribe", "payload": {"query": "subscription B { channel(name: \"library\") { type } }"}})).await;
    ch.message(2, json!({"id": "x", "type": "subscribe", "payload": {"query": a}})).await;
    assert!(ch.sent(1).is_empty() && ch.sent(2).is_empty(), "subscribing sends nothing");
    let subscribers = ch.actor.realtime_host_user_channel_actor().call_subscriber_count(&mut ch.store, "library").await.unwrap();
    assert_eq!(subscribers, 2);
    assert_eq!(ch.actor.realtime_host_user_channel_actor().call_connection_count(&mut ch.store).await.unwrap(), 2);

    let event = json!({"type": "library:change", "totalStories": 1, "totalTags": 0});
    ch.publish(event.clone()).await;
    let resolved = ch.store.data().resolved.clone();
    assert_eq!(resolved.len(), 1, "one event resolved");
    assert_eq!(ch.store.data().resolve_calls, 1, "one resolve-events call per publish");
    assert_eq!(resolved[0].1.len(), 2, "identical requests are resolved once");
    let to1 = ch.sent(1);
    assert_eq!(to1.len(), 2);
    assert_eq!(to1[0], json!({"id": "a", "type": "next", "payload": {"data": {"channel": event}, "query": a}}));
    assert_eq!(to1[1]["id"], "b");
    assert_eq!(ch.sent(2), vec![json!({"id": "x", "type": "next", "payload": {"data": {"channel": event}, "query": a}})]);

    // complete stops exactly that id and echoes nothing; an unknown id is ignored.
    ch.message(1, json!({"id": "a", "type": "complete"})).await;
    ch.message(1, json!({"id": "zzz", "type": "complete"})).await;
    assert!(ch.sent(1).is_empty());
    // State lives in attachments: a fresh instance (after eviction) carries on.
    ch.evict().await;
    ch.publish(event.clone()).await;
    let to1 = ch.sent(1);
    assert_eq!(to1.len(), 1);
    assert_eq!(to1[0]["id"], "b");
    assert_eq!(ch.sent(2).len(), 1);
    // And the id is reusable after complete.
    ch.message(1, json!({"id": "a", "type": "subscribe", "payload": {"query": a}})).await;
    assert_eq!(ch.closed(1), None);

    // Several events in one publish: one resolve-events call, each socket gets every
    // event's nexts in publish order.
    let calls = ch.store.data().resolve_calls;
    let first = json!({"type": "library:change", "totalStories": 2, "totalTags": 0});
    let second = json!({"type": "library:change", "totalStories": 3, "totalTags": 0});
    ch.publish_all(&[first.clone(), second.clone()]).await;
    assert_eq!(ch.store.data().resolve_calls, calls + 1);
    let to1 = ch.sent(1);
    let order: Vec<(&str, &Value)> = to1.iter().map(|f| (f["id"].as_str().unwrap(), &f["payload"]["data"]["channel"]["totalStories"])).collect();
    assert_eq!(order, vec![("b", &json!(2)), ("a", &json!(2)), ("b", &json!(3)), ("a", &json!(3))]);
    let to2 = ch.sent(2);
    assert_eq!(to2.len(), 2);
    assert_eq!((&to2[0]["payload"]["data"]["channel"]["totalStories"], &to2[1]["payload"]["data"]["channel"]["totalStories"]), (&json!(2), &json!(3)));
}

#[tokio::test]
async fn an_event_too_large_to_send_becomes_an_error_and_the_subscription_goes_on() {
    let mut ch = Channel::new().await;
    ch.store.data_mut().max_frame_bytes = 2_000;
    ch.ready(1).await;
    let query = "subscription { channel(name: \"library\") { __typename } }";
    ch.message(1, json!({"id": "s", "type": "subscribe", "payload": {"query": query}})).await;
    let big = json!({"position": "e:5", "type": "story:update", "story": {"title": "x".repeat(3_000)}});
    ch.publish(big).await;
    let sent = ch.sent(1);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["id"], "s");
    assert_eq!(sent[0]["type"], "next");
    assert_eq!(sent[0]["payload"]["errors"][0]["extensions"]["code"], "RESPONSE_TOO_LARGE");
    assert_eq!(sent[0]["payload"]["extensions"]["position"], "e:5", "the subscriber learns which event it missed");
    assert!(sent[0].to_string().len() <= 2_000);
    let small = json!({"position": "e:6", "type": "library:change", "totalStories": 1, "totalTags": 0});
    ch.publish(small.clone()).await;
    let sent = ch.sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["payload"]["data"]["channel"], small, "the next event arrives as usual");
    assert_eq!(ch.closed(1), None);
}

/// The `next`s of `frames`: each payload's `data.channel` and its `extensions.position`.
fn channel_events(frames: &[Value]) -> Vec<(Value, Value)> {
    frames.iter().map(|f| (f["payload"]["data"]["channel"].clone(), f["payload"]["extensions"]["position"].clone())).collect()
}

#[tokio::test]
async fn resuming_replays_the_log_then_goes_live_without_a_duplicate() {
    let mut ch = Channel::new().await;
    ch.ready(1).await;
    let e = |seq: u32, n: u32| json!({"position": format!("ep:{seq}"), "type": "library:change", "totalStories": n, "totalTags": 0});
    let replay = json!({"events": [e(4, 4).to_string(), e(5, 5).to_string()], "head": "ep:5"});
    ch.store.data_mut().library_answers.insert("eventsAfter".into(), Ok(replay.to_string()));
    let query = "subscription R($after: String) { channel(name: \"library\", after: $after) { __typename } }";
    ch.message(1, json!({"id": "r", "type": "subscribe", "payload": {"query": query, "variables": {"after": "ep:3"}}})).await;
    assert_eq!(ch.store.data().library_calls, vec![("eventsAfter".to_string(), json!({"after": "ep:3"}))]);
    assert_eq!(channel_events(&ch.sent(1)), vec![(e(4, 4), json!("ep:4")), (e(5, 5), json!("ep:5"))]);

    // Event 5 was committed before the replay read it, and reaches the actor after: not sent
    // again; event 6 is.
    ch.publish_all(&[e(5, 5), e(6, 6)]).await;
    assert_eq!(channel_events(&ch.sent(1)), vec![(e(6, 6), json!("ep:6"))]);
    // The seam is remembered across an eviction.
    ch.evict().await;
    ch.publish_all(&[e(5, 5), e(7, 7)]).await;
    assert_eq!(channel_events(&ch.sent(1)), vec![(e(7, 7), json!("ep:7"))]);
}

#[tokio::test]
async fn a_position_the_log_cannot_resume_gets_one_reset_then_live_events() {
    let mut ch = Channel::new().await;
    ch.ready(1).await;
    let reset = json!({"reset": "that position is older than the events kept for resuming", "head": "ep:9"});
    ch.store.data_mut().library_answers.insert("eventsAfter".into(), Ok(reset.to_string()));
    let query = "subscription R($after: String) { channel(name: \"library\", after: $after) { __typename } }";
    ch.message(1, json!({"id": "r", "type": "subscribe", "payload": {"query": query, "variables": {"after": "ep:1"}}})).await;
    let expected_reset = json!({"position": "ep:9", "type": "channel:reset", "reason": "that position is older than the events kept for resuming"});
    assert_eq!(channel_events(&ch.sent(1)), vec![(expected_reset, json!("ep:9"))]);
    let live = json!({"position": "ep:10", "type": "library:change", "totalStories": 1, "totalTags": 0});
    ch.publish(live.clone()).await;
    assert_eq!(channel_events(&ch.sent(1)), vec![(live, json!("ep:10"))]);

    // A library that cannot answer: a reset too (the client refetches), never silence.
    ch.store.data_mut().library_answers.insert("eventsAfter".into(), Err("down".into()));
    ch.message(1, json!({"id": "s", "type": "subscribe", "payload": {"query": query, "variables": {"after": "ep:1"}}})).await;
    let sent = ch.sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["payload"]["data"]["channel"]["type"], "channel:reset");
    assert_eq!(sent[0]["payload"]["extensions"], Value::Null, "no head known: no position");
}
