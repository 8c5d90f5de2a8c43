//! Spec null propagation for field errors ("Handling Field Errors" in the GraphQL spec).
//!
//! async-graphql 7.2 drops a field whose resolver fails from its parent object (and turns an
//! object left without keys into `null`), so a failed nullable field such as `signIn` would
//! vanish instead of reading `null`, and a failed non-null field would not null its parent.
//! The [`ErrorNulls`] extension restores the spec's behaviour with its `resolve` hook:
//! - a failed **nullable** field resolves to `null`; its error is kept aside;
//! - a failed **non-null** field keeps its error aside too, reports a private marker error to
//!   the engine (so the key is dropped), and is remembered as *pending*; when its parent
//!   field finishes, the parent nulls the nearest nullable position on the way up (a list
//!   item, the list, the parent itself) or, if none is nullable, becomes pending in turn;
//!   a pending root field makes `data` null.
//!
//! The `execute` and `subscribe` hooks remove the markers and append the kept errors.
//! It also restores `{}` for a non-null object field whose selection picked no field
//! (async-graphql 7.2 turns such an object into `null`).

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, NextSubscribe,
    ResolveInfo,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{
    PathSegment, QueryPathNode, QueryPathSegment, Response, ServerError, ServerResult, Value,
};
use futures::StreamExt;

/// The message of the marker error that stands for "this non-null field failed".
const MARKER: &str = "\u{0}graphql-component: propagated null";

/// Extension factory registered on the schema.
pub struct ErrorNulls;

impl ExtensionFactory for ErrorNulls {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorNullsExtension::default())
    }
}

#[derive(Default)]
struct State {
    /// The real errors, in the order they happened.
    errors: Vec<ServerError>,
    /// Paths of failed non-null fields whose parent has not handled them yet.
    pending: Vec<Vec<PathSegment>>,
}

#[derive(Default)]
struct ErrorNullsExtension {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path = Vec::new();
    let mut current = Some(node);
    while let Some(node) = current {
        path.push(match node.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        });
        current = node.parent;
    }
    path.reverse();
    path
}

/// Nullability of each level of a type, outermost first: `[Tag!]!` is `[false, false]`,
/// `Story` is `[true]`.
fn nullability(ty: &str) -> Vec<bool> {
    let mut levels = Vec::new();
    let mut rest = ty;
    loop {
        let (nullable, inner) = match rest.strip_suffix('!') {
            Some(inner) => (false, inner),
            None => (true, rest),
        };
        levels.push(nullable);
        match inner.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(item) => rest = item,
            None => return levels,
        }
    }
}

/// Set the list element at `indices` (one index per list level) to null.
fn null_at(value: &mut Value, indices: &[usize]) {
    let Some((&last, outer)) = indices.split_last() else {
        *value = Value::Null;
        return;
    };
    let mut current = value;
    for &index in outer {
        match current {
            Value::List(items) => match items.get_mut(index) {
                Some(item) => current = item,
                None => return,
            },
            _ => return,
        }
    }
    if let Value::List(items) = current {
        if let Some(item) = items.get_mut(last) {
            *item = Value::Null;
        }
    }
}

fn marker() -> ServerError {
    ServerError::new(MARKER, None)
}

/// Remove the markers from a finished response and add the kept errors.
fn finish(state: &Mutex<State>, mut response: Response) -> Response {
    let mut state = lock(state);
    response.errors.retain(|e| e.message != MARKER);
    if state.pending.iter().any(|path| path.len() <= 1) {
        response.data = Value::Null;
    }
    state.pending.clear();
    response.errors.append(&mut state.errors);
    response
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorNullsExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        finish(&self.state, response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let state = self.state.clone();
        next.run(ctx, stream)
            .map(move |response| finish(&state, response))
            .boxed()
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let path_node = info.path_node;
        let return_type = info.return_type;
        let result = next.run(ctx, info).await;
        match result {
            Err(err) => {
                let mut state = lock(&self.state);
                if err.message != MARKER {
                    state.errors.push(err);
                }
                if !return_type.ends_with('!') {
                    Ok(Some(Value::Null))
                } else {
                    state.pending.push(path_of(path_node));
                    Err(marker())
                }
            }
            Ok(Some(mut value)) => {
                // async-graphql resolves an object whose selection picked no field (a union
                // member no fragment matched, `@include(if: false)` on every field) to null.
                // A non-null field cannot be null without an error: it is the empty object.
                if matches!(value, Value::Null) && return_type.ends_with('!') {
                    value = Value::Object(Default::default());
                }
                let mut state = lock(&self.state);
                if state.pending.is_empty() {
                    return Ok(Some(value));
                }
                // Only now (a child failed) are the list levels of the type needed.
                let levels = nullability(return_type);
                let path = path_of(path_node);
                let depth = levels.len() - 1;
                let is_child = |p: &Vec<PathSegment>| {
                    p.len() == path.len() + depth + 1
                        && p.starts_with(&path)
                        && p[path.len()..path.len() + depth]
                            .iter()
                            .all(|s| matches!(s, PathSegment::Index(_)))
                };
                let (children, others): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending)
                    .into_iter()
                    .partition(is_child);
                state.pending = others;
                for child in children {
                    let indices: Vec<usize> = child[path.len()..path.len() + depth]
                        .iter()
                        .filter_map(|s| match s {
                            PathSegment::Index(i) => Some(*i),
                            PathSegment::Field(_) => None,
                        })
                        .collect();
                    match (0..=depth).rev().find(|&level| levels[level]) {
                        Some(0) => return Ok(Some(Value::Null)),
                        Some(level) => null_at(&mut value, &indices[..level]),
                        None => {
                            state.pending.push(path.clone());
                            return Err(marker());
                        }
                    }
                }
                Ok(Some(value))
            }
            Ok(None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullability_levels() {
        assert_eq!(nullability("Story"), vec![true]);
        assert_eq!(nullability("Story!"), vec![false]);
        assert_eq!(nullability("[Tag!]!"), vec![false, false]);
        assert_eq!(nullability("[[Tag]!]"), vec![true, false, true]);
    }
}
