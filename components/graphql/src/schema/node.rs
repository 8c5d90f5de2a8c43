//! The `Node` interface and `Query.node(id)`.
//!
//! Library ids are this component's own (`base64("Library:<userId>")`) and resolve only for
//! the current user; every other id is handed to the library's `node` method.

use async_graphql::{Context, Interface, Result, ID};
use serde_json::json;

use crate::ids;
use crate::rpc::{self, NodeResult};
use crate::schema::library::Library;
use crate::schema::require_user;
use crate::schema::story::{Story, Tag};

/// An object with a global id.
#[derive(Interface, Clone, Debug)]
#[graphql(field(name = "id", ty = "&ID"))]
pub enum Node {
    Library(Library),
    Story(Story),
    Tag(Tag),
}

/// The object `id` names, if the current user may see it.
pub fn resolve(ctx: &Context<'_>, id: &str) -> Result<Option<Node>> {
    let user = require_user(ctx)?;
    if let Some((type_name, local_id)) = ids::decode(id) {
        if type_name == "Library" {
            return Ok((local_id == user.id).then(|| Node::Library(Library::of_user(&user.id))));
        }
    }
    let found: Option<NodeResult> = rpc::call(ctx, "node", json!({ "id": id }))?;
    Ok(found.map(|node| match node {
        NodeResult::Story { story } => Node::Story(story),
        NodeResult::Tag { tag } => Node::Tag(tag),
    }))
}
