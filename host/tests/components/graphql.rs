//! The built `graphql.wasm` under wasmtime: the schema, validation without execution,
//! execution through the library RPC, and each subscriber's selection run on an event.

use realtime_host::runtime::bindings::graphql::exports::realtime::host::graphql::{EventFor, Operation};
use realtime_host::runtime::bindings::graphql::GraphqlComponent;
use realtime_host::runtime::bindings::host_api::accounts;
use serde_json::{json, Value};
use wasmtime::Store;

use crate::fake::{self, Fake};

struct Graphql {
    store: Store<Fake>,
    component: GraphqlComponent,
}

impl Graphql {
    async fn new() -> Self {
        let engine = fake::engine();
        let component = fake::component(&engine, "graphql");
        let mut store = fake::store(&engine, Fake::default());
        let component = GraphqlComponent::instantiate_async(&mut store, &component, &fake::linker(&engine)).await.unwrap();
        Self { store, component }
    }

    fn sign_in(&mut self) {
        self.store.data_mut().user = Some(accounts::User { id: "u-1".into(), email: "ada@example.com".into(), name: Some("Ada".into()) });
    }

    async fn prepare(&mut self, request: Value) -> Result<Operation, Value> {
        self.component
            .realtime_host_graphql()
            .call_prepare(&mut self.store, &request.to_string())
            .await
            .unwrap()
            .map_err(|errors| serde_json::from_str(&errors).unwrap())
    }

    async fn execute(&mut self, request: Value) -> Value {
        let response = self.component.realtime_host_graphql().call_execute(&mut self.store, &request.to_string()).await.unwrap();
        serde_json::from_str(&response).unwrap()
    }

    async fn resolve(&mut self, event: Value, requests: &[Value]) -> Vec<Value> {
        let requests: Vec<String> = requests.iter().map(Value::to_string).collect();
        let events = [EventFor { event: event.to_string(), requests }];
        let mut responses = self.component.realtime_host_graphql().call_resolve_events(&mut self.store, &events).await.unwrap();
        assert_eq!(responses.len(), 1, "one list of responses per event");
        responses.remove(0).iter().map(|r| serde_json::from_str(r).unwrap()).collect()
    }
}

#[tokio::test]
async fn schema_is_the_contract() {
    let mut gql = Graphql::new().await;
    let sdl = gql.component.realtime_host_graphql().call_schema_sdl(&mut gql.store).await.unwrap();
    for needle in [
        "channel(name: String!, after: String): ChannelEvent!",
        "node(id: String!): Node",
        "signIn(email: String!, password: String!): SignInResponse",
        "tagStory(storyId: ID!, tagIds: [ID!]!, clientMutationId: String): Story",
        "union UpdateTagError = InvalidTagNameError | TagNameExistsError | TagNotFoundError",
        "type Story implements Node",
        "storiesByTag(tagName: String!, first: Int, after: String): StoryConnection!",
    ] {
        assert!(sdl.contains(needle), "SDL lacks `{needle}`:\n{sdl}");
    }
}

#[tokio::test]
async fn prepare_validates_without_executing() {
    let mut gql = Graphql::new().await;
    gql.sign_in();
    assert!(matches!(gql.prepare(json!({"query": "{ me { id } }"})).await, Ok(Operation::Query)));
    assert!(matches!(
        gql.prepare(json!({"query": "mutation { createTag(input: {name: \"a\", color: \"b\"}) { tag { id } } }"})).await,
        Ok(Operation::Mutation)
    ));
    assert!(gql.store.data().library_calls.is_empty(), "prepare executed nothing");
    match gql.prepare(json!({"query": "subscription { channel(name: \"library\") { __typename } }"})).await {
        Ok(Operation::Subscription(target)) => assert_eq!((target.channel.as_str(), target.after), ("library", None)),
        other => panic!("{other:?}"),
    }
    match gql.prepare(json!({"query": "subscription S($n: String!) { channel(name: $n) { __typename } }", "variables": {"n": "library"}})).await {
        Ok(Operation::Subscription(target)) => assert_eq!((target.channel.as_str(), target.after), ("library", None)),
        other => panic!("{other:?}"),
    }
    match gql.prepare(json!({"query": "subscription S($a: String) { channel(name: \"library\", after: $a) { __typename } }", "variables": {"a": "p:7"}})).await {
        Ok(Operation::Subscription(target)) => assert_eq!(target.after.as_deref(), Some("p:7")),
        other => panic!("{other:?}"),
    }
    let unknown = gql.prepare(json!({"query": "subscription { channel(name: \"nope\") { __typename } }"})).await.unwrap_err();
    assert!(unknown[0]["message"].as_str().unwrap().contains("Unknown channel \"nope\""), "{unknown}");
    let syntax = gql.prepare(json!({"query": "{ nope"})).await.unwrap_err();
    assert!(syntax.as_array().is_some_and(|a| !a.is_empty()));
    let invalid = gql.prepare(json!({"query": "{ me { nosuchfield } }"})).await.unwrap_err();
    assert!(invalid[0]["message"].as_str().unwrap().contains("nosuchfield"));
    let missing_variable = gql.prepare(json!({"query": "subscription S($n: String!) { channel(name: $n) { __typename } }"})).await;
    assert!(missing_variable.is_err());
}

#[tokio::test]
async fn execute_goes_through_the_library_and_accounts() {
    let mut gql = Graphql::new().await;
    assert_eq!(gql.execute(json!({"query": "{ me { id } }"})).await, json!({"data": {"me": null}}));
    let not_signed_in = gql.execute(json!({"query": "mutation { createTag(input: {name: \"a\", color: \"b\"}) { tag { id } } }"})).await;
    assert_eq!(not_signed_in["errors"][0]["message"], "Not signed in");

    gql.sign_in();
    let tag = json!({"id": "VGFnOjE=", "name": "rust", "color": "#f00", "createdAt": "2026-01-01T00:00:00.000Z"});
    gql.store.data_mut().library_answers.insert("createTag".into(), Ok(json!({"tag": tag}).to_string()));
    let created = gql.execute(json!({
        "query": "mutation($i: CreateTagInput!) { createTag(input: $i) { tag { __typename id name color } error { __typename } } }",
        "variables": {"i": {"name": "rust", "color": "#f00"}},
    })).await;
    assert_eq!(created, json!({"data": {"createTag": {"tag": {"__typename": "Tag", "id": "VGFnOjE=", "name": "rust", "color": "#f00"}, "error": null}}}));
    assert_eq!(gql.store.data().library_calls, vec![("createTag".to_string(), json!({"name": "rust", "color": "#f00"}))]);

    gql.store.data_mut().library_answers.insert("createTag".into(), Ok(json!({"error": {"__typename": "TagNameExistsError", "code": "TAG_NAME_EXISTS", "message": "exists", "tagName": "rust"}}).to_string()));
    let exists = gql.execute(json!({"query": "mutation { createTag(input: {name: \"rust\", color: \"x\"}) { tag { id } error { __typename ... on TagNameExistsError { code tagName } } } }"})).await;
    assert_eq!(exists, json!({"data": {"createTag": {"tag": null, "error": {"__typename": "TagNameExistsError", "code": "TAG_NAME_EXISTS", "tagName": "rust"}}}}));

    let me = gql.execute(json!({"query": "{ me { id email name } }"})).await;
    assert_eq!(me, json!({"data": {"me": {"id": "u-1", "email": "ada@example.com", "name": "Ada"}}}));

    let bad = gql.execute(json!({"query": "mutation { signIn(email: \"a@b.c\", password: \"wrong\") { token } }"})).await;
    assert_eq!(bad["errors"][0]["message"], "Invalid credentials");
    assert_eq!(bad["data"]["signIn"], Value::Null);
}

#[tokio::test]
async fn resolve_event_runs_each_selection() {
    let mut gql = Graphql::new().await;
    gql.sign_in();
    let story = json!({"id": "U3Rvcnk6MQ==", "url": "https://example.com", "title": "Hello", "description": null, "createdAt": "2026-01-01T00:00:00.000Z"});
    let event = json!({"type": "story:create", "story": story});
    let full = json!({"query": "subscription { channel(name: \"library\") { __typename ... on StoryCreateEvent { type story { id url title description createdAt } } } }"});
    let aliased = json!({
        "query": "subscription S($n: String!) { e: channel(name: $n) { kind: __typename ...F ... on LibraryChangeEvent { totalStories } } } fragment F on StoryCreateEvent { s: story { t: title } }",
        "variables": {"n": "library"},
    });
    let responses = gql.resolve(event.clone(), &[full.clone(), aliased.clone(), full.clone()]).await;
    assert_eq!(responses[0], json!({"data": {"channel": {"__typename": "StoryCreateEvent", "type": "story:create", "story": story}}}));
    assert_eq!(responses[1], json!({"data": {"e": {"kind": "StoryCreateEvent", "s": {"t": "Hello"}}}}));
    assert_eq!(responses[2], responses[0]);

    let change = json!({"type": "library:change", "totalStories": 3, "totalTags": 1});
    let responses = gql.resolve(change, &[full, aliased]).await;
    assert_eq!(responses[0], json!({"data": {"channel": {"__typename": "LibraryChangeEvent"}}}));
    assert_eq!(responses[1], json!({"data": {"e": {"kind": "LibraryChangeEvent", "totalStories": 3}}}));

    let only_tags = json!({"query": "subscription { channel(name: \"library\") { ... on TagCreateEvent { tag { name } } } }"});
    let responses = gql.resolve(json!({"type": "tag:delete", "deletedTagId": "x"}), &[only_tags]).await;
    assert_eq!(responses[0], json!({"data": {"channel": {}}}), "a selection that matches nothing is an empty object");

    let unknown = gql.resolve(json!({"type": "nope"}), &[json!({"query": "subscription { channel(name: \"library\") { __typename } }"})]).await;
    assert!(unknown[0]["errors"].as_array().is_some_and(|e| !e.is_empty()));
}
