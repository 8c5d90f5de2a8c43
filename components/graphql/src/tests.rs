//! Native tests of the schema logic against a fake host
//! (`cargo test -p graphql --target x86_64-unknown-linux-gnu`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{Type, TypeKind, TypeSystemDefinition};
use serde_json::{json, Value};

use crate::engine;
use crate::host::{AccountSession, AccountUser, Host, HostRef};
use crate::prepare::{prepare, OperationKind};
use crate::schema;

/// The GraphQL schema of BRIEF.md section 2, verbatim.
const CONTRACT: &str = r#"
interface Node { id: ID! }

type Query {
  me: User                                  # null when not signed in
  node(id: String!): Node
}

type Mutation {
  signUp(email: String!, password: String!, name: String): SignInResponse!
  signIn(email: String!, password: String!): SignInResponse   # error "Invalid credentials" on failure
  signOut: Boolean!
  createStory(input: CreateStoryInput!): CreateStoryPayload!
  updateStory(input: UpdateStoryInput!): UpdateStoryPayload!
  deleteStory(input: DeleteStoryInput!): DeleteStoryPayload!
  createTag(input: CreateTagInput!): CreateTagPayload!
  updateTag(input: UpdateTagInput!): UpdateTagPayload!
  deleteTag(input: DeleteTagInput!): DeleteTagPayload!
  tagStory(storyId: ID!, tagIds: [ID!]!): Story
  untagStory(storyId: ID!, tagIds: [ID!]!): Story
}

type Subscription { channel(name: String!, after: String): ChannelEvent! }

type User { id: String!  email: String!  name: String  library: Library! }
type SignInResponse { token: String!  user: User! }

type Library implements Node {
  id: ID!
  stories(first: Int, after: String): StoryConnection!          # newest first
  storiesByTag(tagName: String!, first: Int, after: String): StoryConnection!
  story(id: ID!): Story
  tags: [Tag!]!
}
type Story implements Node { id: ID!  url: String!  title: String!  description: String  createdAt: String!  tags: [Tag!]! }
type Tag implements Node { id: ID!  name: String!  color: String!  stories(first: Int, after: String): StoryConnection! }
type StoryConnection { edges: [StoryEdge!]!  pageInfo: PageInfo!  totalCount: Int! }
type StoryEdge { cursor: String!  node: Story! }
type PageInfo { hasNextPage: Boolean!  hasPreviousPage: Boolean!  startCursor: String  endCursor: String }

input CreateStoryInput { url: String!  title: String!  description: String  tagIds: [ID!] }
input UpdateStoryInput { id: ID!  title: String  description: String  tagIds: [ID!] }
input DeleteStoryInput { id: ID! }
input CreateTagInput { name: String!  color: String! }
input UpdateTagInput { id: ID!  name: String  color: String }
input DeleteTagInput { id: ID! }

type CreateStoryPayload { story: Story  storyEdge: StoryEdge }
type UpdateStoryPayload { story: Story  error: StoryNotFoundError }
type DeleteStoryPayload { deletedStoryId: ID  success: Boolean!  error: StoryNotFoundError }
type CreateTagPayload { tag: Tag  error: TagError }
type UpdateTagPayload { tag: Tag  error: UpdateTagError }
type DeleteTagPayload { deletedTagId: ID  success: Boolean!  error: TagNotFoundError }
union TagError = InvalidTagNameError | TagNameExistsError
union UpdateTagError = InvalidTagNameError | TagNameExistsError | TagNotFoundError
type InvalidTagNameError { code: String!  message: String!  tagName: String! }
type TagNameExistsError { code: String!  message: String!  tagName: String! }
type TagNotFoundError { code: String!  message: String!  tagId: String! }
type StoryNotFoundError { code: String!  message: String!  storyId: String! }

union ChannelEvent = StoryCreateEvent | StoryUpdateEvent | StoryDeleteEvent | TagCreateEvent
  | TagUpdateEvent | TagDeleteEvent | StoryTagEvent | StoryUntagEvent | LibraryChangeEvent
  | ChannelResetEvent
type StoryPayload { id: ID!  url: String!  title: String!  description: String  createdAt: String! }
type TagPayload { id: ID!  name: String!  color: String!  createdAt: String! }
type StoryCreateEvent { type: String!  story: StoryPayload! }        # "story:create"
type StoryUpdateEvent { type: String!  story: StoryPayload! }        # "story:update"
type StoryDeleteEvent { type: String!  deletedStoryId: ID! }         # "story:delete"
type TagCreateEvent { type: String!  tag: TagPayload! }              # "tag:create"
type TagUpdateEvent { type: String!  tag: TagPayload! }              # "tag:update"
type TagDeleteEvent { type: String!  deletedTagId: ID! }             # "tag:delete"
type StoryTagEvent { type: String!  storyId: ID!  tagIds: [ID!]! }   # "story:tag"
type StoryUntagEvent { type: String!  storyId: ID!  tagIds: [ID!]! } # "story:untag"
type LibraryChangeEvent { type: String!  totalStories: Int!  totalTags: Int! }  # "library:change"
type ChannelResetEvent { type: String!  reason: String! }                         # "channel:reset"
"#;

/// What this server adds to the contract, as SDL extensions: only what an old client may leave
/// out (an optional input field or argument) or not ask for (a nullable payload field). A field
/// given again replaces the contract's, to add an argument.
const ADDITIONS: &str = r#"
extend input CreateStoryInput { clientMutationId: String }
extend input UpdateStoryInput { clientMutationId: String }
extend input DeleteStoryInput { clientMutationId: String }
extend input CreateTagInput { clientMutationId: String }
extend input UpdateTagInput { clientMutationId: String }
extend input DeleteTagInput { clientMutationId: String }
extend type CreateStoryPayload { clientMutationId: String }
extend type UpdateStoryPayload { clientMutationId: String }
extend type DeleteStoryPayload { clientMutationId: String }
extend type CreateTagPayload { clientMutationId: String }
extend type UpdateTagPayload { clientMutationId: String }
extend type DeleteTagPayload { clientMutationId: String }
extend type Mutation {
  tagStory(storyId: ID!, tagIds: [ID!]!, clientMutationId: String): Story
  untagStory(storyId: ID!, tagIds: [ID!]!, clientMutationId: String): Story
}
"#;

/// One named type of an SDL document: its kind (with interfaces or members) and its fields
/// (`name` → `name(args): Type`), extensions merged in.
#[derive(Debug, Default, PartialEq)]
struct Described {
    kind: String,
    fields: BTreeMap<String, String>,
}

type FieldDefs = Vec<async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>>;
type InputDefs = Vec<async_graphql::Positioned<async_graphql::parser::types::InputValueDefinition>>;

fn field_entries(fields: &FieldDefs) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| {
            let args: Vec<String> = f
                .node
                .arguments
                .iter()
                .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                .collect();
            let name = f.node.name.node.to_string();
            let desc = format!("{name}({}): {}", args.join(", "), f.node.ty.node);
            (name, desc)
        })
        .collect()
}

fn input_entries(fields: &InputDefs) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| (f.node.name.node.to_string(), format!("{}: {}", f.node.name.node, f.node.ty.node)))
        .collect()
}

/// A canonical, order-independent description of every named type in an SDL document.
fn describe(sdl: &str) -> BTreeMap<String, Described> {
    let doc = parse_schema(sdl).expect("SDL parses");
    let mut out: BTreeMap<String, Described> = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let sorted = |names: Vec<String>| {
            let mut names = names;
            names.sort();
            names.join(", ")
        };
        let (kind, fields) = match &ty.kind {
            TypeKind::Object(o) => (
                format!("type implements [{}]", sorted(o.implements.iter().map(|i| i.node.to_string()).collect())),
                field_entries(&o.fields),
            ),
            TypeKind::Interface(i) => ("interface".into(), field_entries(&i.fields)),
            TypeKind::Union(u) => (format!("union [{}]", sorted(u.members.iter().map(|m| m.node.to_string()).collect())), vec![]),
            TypeKind::InputObject(i) => ("input".into(), input_entries(&i.fields)),
            TypeKind::Scalar => ("scalar".into(), vec![]),
            TypeKind::Enum(_) => ("enum".into(), vec![]),
        };
        let entry = out.entry(ty.name.node.to_string()).or_default();
        if !ty.extend {
            entry.kind = kind;
        }
        entry.fields.extend(fields);
    }
    out
}

#[derive(Default)]
struct FakeHost {
    user: Mutex<Option<AccountUser>>,
    calls: Mutex<Vec<(String, Value)>>,
    replies: Mutex<BTreeMap<String, Result<String, String>>>,
}

impl FakeHost {
    fn signed_in() -> Arc<Self> {
        let host = Arc::new(FakeHost::default());
        *host.user.lock().unwrap() = Some(alice());
        host
    }
    fn reply(&self, method: &str, result: Result<Value, &str>) {
        self.replies.lock().unwrap().insert(
            method.to_owned(),
            result.map(|v| v.to_string()).map_err(str::to_owned),
        );
    }
    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

fn alice() -> AccountUser {
    AccountUser {
        id: "u1".into(),
        email: "alice@example.com".into(),
        name: Some("Alice".into()),
    }
}

impl Host for FakeHost {
    fn current_user(&self) -> Option<AccountUser> {
        self.user.lock().unwrap().clone()
    }
    fn sign_up(&self, email: &str, _: &str, name: Option<&str>) -> Result<AccountSession, String> {
        if email == "taken@example.com" {
            return Err("Email already registered".into());
        }
        let user = AccountUser {
            id: "u2".into(),
            email: email.into(),
            name: name.map(str::to_owned),
        };
        *self.user.lock().unwrap() = Some(user.clone());
        Ok(AccountSession {
            token: "t2".into(),
            user,
        })
    }
    fn sign_in(&self, email: &str, password: &str) -> Result<AccountSession, String> {
        if email == "alice@example.com" && password == "pw" {
            *self.user.lock().unwrap() = Some(alice());
            Ok(AccountSession {
                token: "t1".into(),
                user: alice(),
            })
        } else {
            Err("Invalid credentials".into())
        }
    }
    fn sign_out(&self) -> bool {
        self.user.lock().unwrap().take().is_some()
    }
    fn library_call(&self, method: &str, args: &str) -> Result<String, String> {
        self.calls
            .lock()
            .unwrap()
            .push((method.to_owned(), serde_json::from_str(args).unwrap()));
        self.replies
            .lock()
            .unwrap()
            .get(method)
            .cloned()
            .unwrap_or_else(|| Err(format!("no reply for {method}")))
    }
    fn warn(&self, _: &str) {}
}

fn run(host: &Arc<FakeHost>, query: &str, variables: Value) -> Value {
    let request = json!({ "query": query, "variables": variables }).to_string();
    let text = engine::execute(schema::schema(), HostRef(host.clone()), &request);
    serde_json::from_str(&text).unwrap()
}

fn story_json(id: &str) -> Value {
    json!({
        "id": id, "url": "https://example.com/", "title": "Example", "description": null,
        "createdAt": "2026-11-26T13:41:16.123Z",
        "tags": [{ "id": "VGFnOjE=", "name": "rust", "color": "#f00", "createdAt": "2026-11-26T13:41:16.123Z" }]
    })
}

#[test]
fn sdl_matches_the_contract_with_its_additions() {
    let ours = describe(&schema::schema().sdl());
    let contract = describe(&format!("{CONTRACT}{ADDITIONS}"));
    for (name, desc) in &contract {
        assert_eq!(ours.get(name), Some(desc), "type {name}");
    }
}

/// An addition breaks no client of the contract: every added input field, argument and payload
/// field is nullable, and a field given again keeps its type and its arguments, adding some.
#[test]
fn the_additions_only_add_what_a_client_may_leave_out() {
    let contract = fields_of(CONTRACT);
    let additions = fields_of(ADDITIONS);
    assert!(!additions.is_empty());
    for ((type_name, field), (field_type, args)) in &additions {
        let at = format!("{type_name}.{field}");
        let added_arg = |arg: &String| args[arg].nullable;
        match contract.get(&(type_name.clone(), field.clone())) {
            None => {
                assert!(field_type.nullable, "{at} is new: it must be nullable");
                assert!(args.keys().all(added_arg), "{at} is new: its arguments must be optional");
            }
            Some((old_type, old_args)) => {
                assert_eq!(field_type, old_type, "{at} keeps its type");
                for (arg, arg_type) in old_args {
                    assert_eq!(args.get(arg), Some(arg_type), "{at} keeps its argument {arg}");
                }
                let new_args = args.keys().filter(|arg| !old_args.contains_key(*arg));
                assert!(new_args.clone().all(added_arg), "{at}: a new argument must be optional");
            }
        }
    }
}

/// Every field an SDL document defines or extends: (type, field) → (its type, its arguments).
#[allow(clippy::type_complexity)]
fn fields_of(sdl: &str) -> BTreeMap<(String, String), (Type, BTreeMap<String, Type>)> {
    let mut out = BTreeMap::new();
    for def in parse_schema(sdl).expect("SDL parses").definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let type_name = ty.node.name.node.to_string();
        let key = |name: &async_graphql::Name| (type_name.clone(), name.to_string());
        match &ty.node.kind {
            TypeKind::Object(o) => {
                for f in &o.fields {
                    let args = f.node.arguments.iter().map(|a| (a.node.name.node.to_string(), a.node.ty.node.clone()));
                    out.insert(key(&f.node.name.node), (f.node.ty.node.clone(), args.collect()));
                }
            }
            TypeKind::InputObject(i) => {
                for f in &i.fields {
                    out.insert(key(&f.node.name.node), (f.node.ty.node.clone(), BTreeMap::new()));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn me_is_null_when_signed_out() {
    let host = Arc::new(FakeHost::default());
    assert_eq!(
        run(&host, "{ me { id } }", json!(null)),
        json!({ "data": { "me": null } })
    );
}

#[test]
fn me_and_library() {
    let host = FakeHost::signed_in();
    host.reply(
        "stories",
        Ok(json!({
            "edges": [{ "cursor": "c1", "node": story_json("U3Rvcnk6MQ==") }],
            "pageInfo": { "hasNextPage": false, "hasPreviousPage": false, "startCursor": "c1", "endCursor": "c1" },
            "totalCount": 1
        })),
    );
    let res = run(
        &host,
        "query Q($n: Int) { me { id email name library { id stories(first: $n) { totalCount edges { cursor node { id tags { name } } } pageInfo { hasNextPage endCursor } } } } }",
        json!({ "n": 500 }),
    );
    assert_eq!(
        res["data"]["me"]["library"]["id"],
        json!(crate::ids::library_id("u1"))
    );
    assert_eq!(
        res["data"]["me"]["library"]["stories"]["totalCount"],
        json!(1)
    );
    assert_eq!(
        res["data"]["me"]["library"]["stories"]["edges"][0]["node"]["tags"][0]["name"],
        json!("rust")
    );
    assert_eq!(
        host.calls(),
        vec![("stories".to_owned(), json!({ "first": 100 }))]
    );
}

#[test]
fn library_operations_need_a_user() {
    let host = Arc::new(FakeHost::default());
    let res = run(
        &host,
        r#"mutation { createStory(input: { url: "https://a.example/", title: "A" }) { story { id } } }"#,
        json!(null),
    );
    assert_eq!(res["data"], json!(null));
    assert_eq!(res["errors"][0]["message"], json!("Not signed in"));
    assert_eq!(
        res["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    let res = run(&host, r#"{ node(id: "U3Rvcnk6MQ==") { id } }"#, json!(null));
    assert_eq!(res["data"]["node"], json!(null));
    assert_eq!(res["errors"][0]["message"], json!("Not signed in"));
    assert!(host.calls().is_empty());
}

#[test]
fn sign_in_and_sign_up() {
    let host = Arc::new(FakeHost::default());
    let res = run(
        &host,
        r#"mutation { signIn(email: "alice@example.com", password: "wrong") { token } }"#,
        json!(null),
    );
    assert_eq!(res["data"], json!({ "signIn": null }));
    assert_eq!(res["errors"][0]["message"], json!("Invalid credentials"));

    let res = run(
        &host,
        r#"mutation { signIn(email: "alice@example.com", password: "pw") { token user { id library { id } } } }"#,
        json!(null),
    );
    assert_eq!(res["data"]["signIn"]["token"], json!("t1"));
    assert_eq!(
        res["data"]["signIn"]["user"]["library"]["id"],
        json!(crate::ids::library_id("u1"))
    );

    let res = run(
        &host,
        r#"mutation { signUp(email: "taken@example.com", password: "pw") { token } }"#,
        json!(null),
    );
    assert_eq!(
        res["errors"][0]["message"],
        json!("Email already registered")
    );

    let res = run(&host, "mutation { a: signOut b: signOut }", json!(null));
    assert_eq!(res["data"], json!({ "a": true, "b": false }));
}

#[test]
fn mutations_map_payloads_and_errors() {
    let host = FakeHost::signed_in();
    host.reply(
        "createStory",
        Ok(json!({ "story": story_json("U3Rvcnk6MQ=="), "cursor": "c9" })),
    );
    let res = run(
        &host,
        r#"mutation($t: [ID!]) { createStory(input: { url: "https://example.com/", title: "Example", tagIds: $t }) { story { id } storyEdge { cursor node { id } } } }"#,
        json!({ "t": ["VGFnOjE="] }),
    );
    assert_eq!(
        res["data"]["createStory"]["storyEdge"]["cursor"],
        json!("c9")
    );
    assert_eq!(
        host.calls()[0],
        (
            "createStory".to_owned(),
            json!({ "url": "https://example.com/", "title": "Example", "tagIds": ["VGFnOjE="] })
        )
    );

    host.reply("createStory", Err("Invalid URL: nope"));
    let res = run(
        &host,
        r#"mutation { createStory(input: { url: "nope", title: "x" }) { story { id } } }"#,
        json!(null),
    );
    assert_eq!(res["errors"][0]["message"], json!("Invalid URL: nope"));

    host.reply(
        "createTag",
        Ok(json!({ "error": { "__typename": "TagNameExistsError", "code": "TAG_NAME_EXISTS", "message": "exists", "tagName": "Rust" } })),
    );
    let res = run(
        &host,
        r##"mutation { createTag(input: { name: "Rust", color: "#000" }) { tag { id } error { __typename ... on TagNameExistsError { code tagName } } } }"##,
        json!(null),
    );
    assert_eq!(
        res["data"]["createTag"],
        json!({ "tag": null, "error": { "__typename": "TagNameExistsError", "code": "TAG_NAME_EXISTS", "tagName": "Rust" } })
    );

    host.reply(
        "updateStory",
        Ok(json!({ "error": { "__typename": "StoryNotFoundError", "code": "STORY_NOT_FOUND", "message": "no", "storyId": "x" } })),
    );
    let res = run(
        &host,
        r#"mutation { updateStory(input: { id: "x", description: null }) { story { id } error { code storyId } } }"#,
        json!(null),
    );
    assert_eq!(res["data"]["updateStory"]["error"]["storyId"], json!("x"));
    assert_eq!(
        host.calls().last().unwrap().1,
        json!({ "id": "x", "description": null })
    );

    host.reply("deleteTag", Ok(json!({ "deletedTagId": "VGFnOjE=" })));
    let res = run(
        &host,
        r#"mutation { deleteTag(input: { id: "VGFnOjE=" }) { deletedTagId success error { code } } }"#,
        json!(null),
    );
    assert_eq!(
        res["data"]["deleteTag"],
        json!({ "deletedTagId": "VGFnOjE=", "success": true, "error": null })
    );
}

#[test]
fn a_client_mutation_id_goes_to_the_library_and_back() {
    let host = FakeHost::signed_in();
    host.reply("createStory", Ok(json!({ "story": story_json("U3Rvcnk6MQ=="), "cursor": "c9" })));
    host.reply("deleteTag", Ok(json!({ "deletedTagId": "VGFnOjE=" })));
    host.reply("tagStory", Ok(story_json("U3Rvcnk6MQ==")));
    let res = run(
        &host,
        r#"mutation($k: String) {
            createStory(input: { url: "https://example.com/", title: "Example", clientMutationId: $k }) { clientMutationId story { id } }
            deleteTag(input: { id: "VGFnOjE=", clientMutationId: "k2" }) { clientMutationId success }
            tagStory(storyId: "U3Rvcnk6MQ==", tagIds: ["VGFnOjE="], clientMutationId: "k3") { id }
            unkeyed: deleteTag(input: { id: "VGFnOjE=" }) { clientMutationId }
        }"#,
        json!({ "k": "k1" }),
    );
    assert_eq!(res["errors"], Value::Null, "{res}");
    assert_eq!(res["data"]["createStory"]["clientMutationId"], json!("k1"));
    assert_eq!(res["data"]["deleteTag"], json!({ "clientMutationId": "k2", "success": true }));
    assert_eq!(res["data"]["unkeyed"], json!({ "clientMutationId": null }));
    assert_eq!(
        host.calls(),
        vec![
            ("createStory".to_owned(), json!({ "url": "https://example.com/", "title": "Example", "clientMutationId": "k1" })),
            ("deleteTag".to_owned(), json!({ "id": "VGFnOjE=", "clientMutationId": "k2" })),
            ("tagStory".to_owned(), json!({ "storyId": "U3Rvcnk6MQ==", "tagIds": ["VGFnOjE="], "clientMutationId": "k3" })),
            ("deleteTag".to_owned(), json!({ "id": "VGFnOjE=" })),
        ]
    );
}

#[test]
fn node_resolves_library_story_and_tag() {
    let host = FakeHost::signed_in();
    let lib = crate::ids::library_id("u1");
    let res = run(
        &host,
        "query($id: String!) { node(id: $id) { __typename id } }",
        json!({ "id": lib }),
    );
    assert_eq!(
        res["data"]["node"],
        json!({ "__typename": "Library", "id": lib })
    );
    let other = crate::ids::library_id("u2");
    let res = run(
        &host,
        "query($id: String!) { node(id: $id) { id } }",
        json!({ "id": other }),
    );
    assert_eq!(res["data"]["node"], json!(null));
    host.reply(
        "node",
        Ok(json!({ "type": "Story", "story": story_json("U3Rvcnk6MQ==") })),
    );
    let res = run(
        &host,
        r#"{ node(id: "U3Rvcnk6MQ==") { __typename id ... on Story { title } } }"#,
        json!(null),
    );
    assert_eq!(
        res["data"]["node"],
        json!({ "__typename": "Story", "id": "U3Rvcnk6MQ==", "title": "Example" })
    );
    host.reply("node", Ok(json!(null)));
    let res = run(&host, r#"{ node(id: "zzz") { id } }"#, json!(null));
    assert_eq!(res["data"]["node"], json!(null));
}

#[test]
fn execute_refuses_bad_requests() {
    for bad in [
        "",
        "nope",
        "[]",
        r#"{"query": 1}"#,
        r#"{"query": "{ me { id }", "variables": 3}"#,
    ] {
        let text = engine::execute(
            schema::schema(),
            HostRef(Arc::new(FakeHost::default())),
            bad,
        );
        let res: Value = serde_json::from_str(&text).unwrap();
        assert!(res.get("data").is_none(), "{bad}: {text}");
        assert_eq!(
            res["errors"].as_array().map(Vec::len),
            Some(1),
            "{bad}: {text}"
        );
    }
    let res = run(
        &Arc::new(FakeHost::default()),
        "query($id: String!) { node(id: $id) { id } }",
        json!({}),
    );
    assert!(res.get("data").is_none(), "{res}");
    assert!(
        res["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not provided"),
        "{res}"
    );
    let nested = format!(
        "{}me {{ id }}{}",
        "{ __typename ... on Query ".repeat(60),
        "}".repeat(60)
    );
    let res = run(&Arc::new(FakeHost::default()), &nested, json!(null));
    assert!(res["errors"].is_array(), "{res}");
    let deep = format!("{{\"query\": \"{}\"}}", "{".repeat(100_000));
    let text = engine::execute(
        schema::schema(),
        HostRef(Arc::new(FakeHost::default())),
        &deep,
    );
    assert!(text.contains("nested too deeply"), "{text}");
}

fn prep(
    query: &str,
    variables: Value,
    operation_name: Option<&str>,
) -> Result<OperationKind, Value> {
    let request =
        json!({ "query": query, "variables": variables, "operationName": operation_name });
    prepare(schema::schema(), &request.to_string()).map_err(|e| serde_json::from_str(&e).unwrap())
}

fn first_message(err: Value) -> String {
    assert!(err.as_array().is_some_and(|a| !a.is_empty()), "{err}");
    err[0]["message"].as_str().unwrap().to_owned()
}

#[test]
fn prepare_reports_the_operation_without_running_it() {
    assert_eq!(
        prep("{ me { id } }", json!(null), None),
        Ok(OperationKind::Query)
    );
    assert_eq!(
        prep(
            r#"mutation { signOut createTag(input: {name: "a", color: "b"}) { tag { id } } }"#,
            json!(null),
            None
        ),
        Ok(OperationKind::Mutation)
    );
    assert_eq!(
        prep(
            r#"subscription { channel(name: "library") { __typename } }"#,
            json!(null),
            None
        ),
        Ok(OperationKind::Subscription { channel: "library".into(), after: None })
    );
    assert_eq!(
        prep(
            "query A { me { id } } subscription B($c: String!) { events: channel(name: $c) { ...E } } fragment E on ChannelEvent { __typename }",
            json!({ "c": "library" }),
            Some("B")
        ),
        Ok(OperationKind::Subscription { channel: "library".into(), after: None })
    );
    assert_eq!(
        prep(
            r#"subscription($c: String! = "library") { ... on Subscription { channel(name: $c) { __typename } } }"#,
            json!({}),
            None
        ),
        Ok(OperationKind::Subscription { channel: "library".into(), after: None })
    );
    // The resume position, literal or from a variable; null or left out: none.
    assert_eq!(
        prep(r#"subscription { channel(name: "library", after: "p:1") { __typename } }"#, json!(null), None),
        Ok(OperationKind::Subscription { channel: "library".into(), after: Some("p:1".into()) })
    );
    assert_eq!(
        prep("subscription($a: String) { channel(name: \"library\", after: $a) { __typename } }", json!({ "a": "p:2" }), None),
        Ok(OperationKind::Subscription { channel: "library".into(), after: Some("p:2".into()) })
    );
    for variables in [json!({ "a": null }), json!({})] {
        assert_eq!(
            prep("subscription($a: String) { channel(name: \"library\", after: $a) { __typename } }", variables, None),
            Ok(OperationKind::Subscription { channel: "library".into(), after: None })
        );
    }
}

#[test]
fn prepare_errors() {
    let msg = first_message(
        prep(
            r#"subscription { channel(name: "x") { __typename } }"#,
            json!(null),
            None,
        )
        .unwrap_err(),
    );
    assert_eq!(msg, r#"Unknown channel "x""#);
    let msg = first_message(
        prep(
            "subscription S($c: String!) { channel(name: $c) { __typename } }",
            json!({ "c": "other" }),
            None,
        )
        .unwrap_err(),
    );
    assert_eq!(msg, r#"Unknown channel "other""#);
    let err = prep(
        r#"subscription { a: channel(name: "library") { __typename } b: channel(name: "library") { __typename } }"#,
        json!(null),
        None,
    )
    .unwrap_err();
    assert!(first_message(err).contains("must select only one top level field"));
    let err = prep("{ me { id }", json!(null), None).unwrap_err();
    assert!(err[0]["locations"].is_array(), "{err}");
    assert!(!first_message(prep("{ nope }", json!(null), None).unwrap_err()).is_empty());
    let msg = first_message(prep("{ me { id } }", json!(null), Some("Missing")).unwrap_err());
    assert_eq!(msg, r#"Unknown operation named "Missing""#);
    let msg = first_message(
        prep(
            "query($id: String!) { node(id: $id) { id } }",
            json!({}),
            None,
        )
        .unwrap_err(),
    );
    assert!(msg.contains("$id") && msg.contains("not provided"), "{msg}");
    let msg = first_message(
        prep(
            "subscription($c: String!) { channel(name: $c) { __typename } }",
            json!(null),
            None,
        )
        .unwrap_err(),
    );
    assert!(msg.contains("not provided"), "{msg}");
    let msg = first_message(
        prep(
            "query A { me { id } } query B { me { id } }",
            json!(null),
            None,
        )
        .unwrap_err(),
    );
    assert!(msg.contains("Operation name required"), "{msg}");
    assert!(prep("{ me { id } }", json!({ "x": 1 }), None).is_ok());
    assert!(prepare(schema::schema(), "not json").is_err());
}

/// The issue's amplification: 64 aliases as written, complexity about 1,060, yet every
/// `story:update` would answer the title 1,024 times.
fn aliases_multiplied_through_a_fragment() -> String {
    let stories: Vec<String> = (0..32).map(|i| format!("s{i}: story {{ ...F }}")).collect();
    let titles: Vec<String> = (0..32).map(|i| format!("t{i}: title")).collect();
    format!(
        r#"subscription {{ channel(name: "library") {{ ... on StoryUpdateEvent {{ {} }} }} }} fragment F on StoryPayload {{ {} }}"#,
        stories.join(" "),
        titles.join(" ")
    )
}

/// The web app's subscription (`web/src/live/LibraryChannel.js`), as sent.
const WEB_APP_SUBSCRIPTION: &str = r#"subscription LibraryChannelSubscription($after: String) {
  channel(name: "library", after: $after) {
    ... on StoryCreateEvent { type story { id url title description createdAt } }
    ... on StoryUpdateEvent { type story { id url title description createdAt } }
    ... on StoryDeleteEvent { type deletedStoryId }
    ... on TagCreateEvent { type tag { id name color createdAt } }
    ... on TagUpdateEvent { type tag { id name color createdAt } }
    ... on TagDeleteEvent { type deletedTagId }
    ... on StoryTagEvent { type storyId tagIds }
    ... on StoryUntagEvent { type storyId tagIds }
    ... on LibraryChangeEvent { type totalStories totalTags }
    ... on ChannelResetEvent { type reason }
  }
}"#;

#[test]
fn response_fields_multiplied_through_fragments_are_refused_before_anything_runs() {
    let attack = aliases_multiplied_through_a_fragment();
    let expected = "Query has too many response fields (1057 with fragments expanded; at most 500).";
    assert_eq!(first_message(prep(&attack, json!(null), None).unwrap_err()), expected);
    let res = run(&FakeHost::signed_in(), &attack, json!(null));
    assert!(res.get("data").is_none(), "a request error: {res}");
    assert_eq!(res["errors"][0]["message"], expected);
    assert_eq!(
        prep(WEB_APP_SUBSCRIPTION, json!({ "after": "p:1" }), None),
        Ok(OperationKind::Subscription { channel: "library".into(), after: Some("p:1".into()) })
    );
}

#[test]
fn resolve_event_runs_each_selection() {
    let host = HostRef(FakeHost::signed_in());
    let a = json!({ "query": r#"subscription { channel(name: "library") { __typename ... on StoryCreateEvent { kind: type story { id title } } } }"# }).to_string();
    let b = json!({
        "query": "subscription S($c: String!) { e: channel(name: $c) { ...F } } fragment F on ChannelEvent { ... on LibraryChangeEvent { totalStories } ... on StoryCreateEvent { story { url } } }",
        "variables": { "c": "library" }
    })
    .to_string();
    let event = json!({
        "type": "story:create",
        "story": { "id": "U3Rvcnk6MQ==", "url": "https://example.com/", "title": "Example", "description": null, "createdAt": "2026-11-26T13:41:16.123Z" }
    })
    .to_string();
    let out = engine::resolve_event(host.clone(), &event, &[a.clone(), b.clone(), a.clone()]);
    let out: Vec<Value> = out
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(
        out[0],
        json!({ "data": { "channel": { "__typename": "StoryCreateEvent", "kind": "story:create", "story": { "id": "U3Rvcnk6MQ==", "title": "Example" } } } })
    );
    assert_eq!(
        out[1],
        json!({ "data": { "e": { "story": { "url": "https://example.com/" } } } })
    );
    assert_eq!(out[2], out[0]);

    let change = json!({ "type": "library:change", "totalStories": 3, "totalTags": 1 }).to_string();
    let out = engine::resolve_event(host.clone(), &change, std::slice::from_ref(&b));
    let out: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(out, json!({ "data": { "e": { "totalStories": 3 } } }));

    for bad in [
        r#"{"type": "story:explode"}"#,
        "nope",
        r#"{"type": "story:delete"}"#,
    ] {
        let out = engine::resolve_event(host.clone(), bad, std::slice::from_ref(&a));
        let out: Value = serde_json::from_str(&out[0]).unwrap();
        assert!(
            out["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{bad}: {out}"
        );
    }
    let invalid = [
        json!({ "query": r#"subscription { channel(name: "other") { __typename } }"# }).to_string(),
        json!({ "query": r#"subscription { channel(name: "library") { nope } }"# }).to_string(),
        json!({ "query": r#"subscription($c: String!) { channel(name: $c) { __typename } }"# })
            .to_string(),
        "{".to_owned(),
    ];
    let out = engine::resolve_event(host.clone(), &event, &invalid);
    for (text, request) in out.iter().zip(&invalid) {
        let res: Value = serde_json::from_str(text).unwrap();
        assert!(res.get("data").is_none(), "{request}: {res}");
        assert!(
            res["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{request}: {res}"
        );
    }
    let all = [
        json!({"type":"story:update","story":{"id":"s","url":"u","title":"t","createdAt":"c"}}),
        json!({"type":"story:delete","deletedStoryId":"s"}),
        json!({"type":"tag:create","tag":{"id":"t","name":"n","color":"c","createdAt":"c"}}),
        json!({"type":"tag:update","tag":{"id":"t","name":"n","color":"c","createdAt":"c"}}),
        json!({"type":"tag:delete","deletedTagId":"t"}),
        json!({"type":"story:tag","storyId":"s","tagIds":["t"]}),
        json!({"type":"story:untag","storyId":"s","tagIds":[]}),
    ];
    let names = [
        "StoryUpdateEvent",
        "StoryDeleteEvent",
        "TagCreateEvent",
        "TagUpdateEvent",
        "TagDeleteEvent",
        "StoryTagEvent",
        "StoryUntagEvent",
    ];
    for (event, name) in all.iter().zip(names) {
        let out = engine::resolve_event(host.clone(), &event.to_string(), std::slice::from_ref(&a));
        let out: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(out["data"]["channel"]["__typename"], json!(name), "{out}");
    }
}

#[test]
fn field_errors_null_the_nearest_nullable_field() {
    let host = FakeHost::signed_in();
    host.reply("stories", Err("boom"));
    let res = run(
        &host,
        "{ me { id library { stories { totalCount } } } }",
        json!(null),
    );
    assert_eq!(res["data"], json!({ "me": null }));
    assert_eq!(res["errors"].as_array().unwrap().len(), 1, "{res}");
    assert_eq!(res["errors"][0]["message"], json!("boom"));
    assert_eq!(
        res["errors"][0]["path"],
        json!(["me", "library", "stories"])
    );

    host.reply(
        "tags",
        Ok(json!([{ "id": "VGFnOjE=", "name": "rust", "color": "#f00", "createdAt": "x" }])),
    );
    host.reply("tagStories", Err("nope"));
    host.reply("story", Ok(json!(null)));
    let res = run(
        &host,
        r#"{ me { id } again: me { library { tags { name stories { totalCount } } } } node(id: "x") { id } }"#,
        json!(null),
    );
    assert_eq!(res["data"]["me"], json!({ "id": "u1" }));
    assert_eq!(res["data"]["again"], json!(null));
    assert_eq!(
        res["errors"][0]["path"],
        json!(["again", "library", "tags", 0, "stories"])
    );

    let res = run(
        &host,
        r#"mutation { createStory(input: { url: "x", title: "y" }) { story { id } } signOut }"#,
        json!(null),
    );
    assert_eq!(res["data"], json!(null), "{res}");
    assert_eq!(res["errors"].as_array().unwrap().len(), 1, "{res}");
}

#[test]
fn objects_without_selected_fields_are_empty_not_null() {
    let host = FakeHost::signed_in();
    let sub = json!({ "query": r#"subscription { channel(name: "library") { ... on StoryCreateEvent { story { id } } } }"# }).to_string();
    let change = json!({ "type": "library:change", "totalStories": 3, "totalTags": 1 }).to_string();
    let out = engine::resolve_event(HostRef(host.clone()), &change, &[sub]);
    let out: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(out, json!({ "data": { "channel": {} } }));

    host.reply(
        "createTag",
        Ok(json!({ "tag": { "id": "VGFnOjE=", "name": "a", "color": "b", "createdAt": "c" } })),
    );
    let res = run(
        &host,
        r#"mutation { createTag(input: { name: "a", color: "b" }) { tag @skip(if: true) { id } } }"#,
        json!(null),
    );
    assert_eq!(res, json!({ "data": { "createTag": {} } }));
}

#[test]
fn introspection_and_samples() {
    let host = FakeHost::signed_in();
    let res = run(
        &host,
        "{ __typename __schema { subscriptionType { name } types { name } } }",
        json!(null),
    );
    assert_eq!(
        res["data"]["__schema"]["subscriptionType"]["name"],
        json!("Subscription")
    );
    if std::env::var("SHOW").is_ok() {
        println!("{}", schema::schema().sdl());
        println!(
            "{:?}",
            prep(
                r#"subscription { channel(name: "x") { __typename } }"#,
                json!(null),
                None
            )
        );
        println!("{:?}", prep("{ me { id ", json!(null), None));
        println!("{:?}", prep("{ me { idd } }", json!(null), None));
        println!(
            "{}",
            engine::execute(
                schema::schema(),
                HostRef(host.clone()),
                r#"{"query":"subscription { channel(name: \"library\") { __typename } }"}"#
            )
        );
    }
}

#[test]
fn selections_that_pick_nothing_are_answered_without_executing_again() {
    let host = HostRef(FakeHost::signed_in());
    // Picks nothing on a library:change unless $all is true; the response must follow the
    // variables and the event type, never a previous event's data.
    let only_stories = json!({
        "query": r#"subscription($all: Boolean!) { c: channel(name: "library") { ... on StoryCreateEvent { story { title } } ... on LibraryChangeEvent @include(if: $all) { totalStories } } }"#,
        "variables": { "all": false }
    })
    .to_string();
    let everything = only_stories.replace("false", "true");
    let change = |n: u32| json!({ "type": "library:change", "totalStories": n, "totalTags": 0 }).to_string();
    for n in [1, 2, 3] {
        let out = engine::resolve_event(host.clone(), &change(n), &[only_stories.clone(), everything.clone()]);
        let out: Vec<Value> = out.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        assert_eq!(out[0], json!({ "data": { "c": {} } }));
        assert_eq!(out[1], json!({ "data": { "c": { "totalStories": n } } }));
    }
    // A story event with the same request is executed on its own data.
    for title in ["first", "second"] {
        let event = json!({
            "type": "story:create",
            "story": { "id": "U3Rvcnk6MQ==", "url": "https://example.com/", "title": title, "createdAt": "2026-11-26T13:41:16.123Z" }
        })
        .to_string();
        let out = engine::resolve_event(host.clone(), &event, std::slice::from_ref(&only_stories));
        let out: Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(out, json!({ "data": { "c": { "story": { "title": title } } } }));
    }
}
