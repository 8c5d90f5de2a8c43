//! `prepare`: parse and validate a request with the real engine, without running a resolver.
//!
//! The request runs through `Schema::execute` with a [`PrepareProbe`] in its data. Parsing,
//! the depth/recursion checks, every validation rule and the choice of operation
//! (`operationName`) are async-graphql's own. The [`PrepareGate`] extension registered on the
//! schema then short-circuits the `execute` hook when the probe is present: it records the
//! chosen operation's name and returns without calling `next`, so no resolver (and no
//! mutation) runs. `Schema::execute` treats subscriptions the same way (prepare, validate,
//! then the `execute` hook), so one path serves every operation type.
//!
//! On the validated document this module then adds what GraphQL requires but async-graphql
//! leaves to execution time: required variables must be provided, and a subscription must
//! select exactly one root field. For a subscription it resolves the channel name (literal or
//! variable, with the variable's default) and refuses any channel but `library`.
//!
//! A request text that prepares successfully is remembered (`engine::mark_validated`), so
//! `resolve-events` can run it on every event without validating it again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, Pos, Positioned, Request, Response, ServerError, Value, Variables};
use futures::executor::block_on;

use crate::engine;
use crate::schema::subscription::{unknown_channel, LIBRARY_CHANNEL};
use crate::schema::AppSchema;

/// What a prepared request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    /// A subscription to the named channel, resuming after a position when `after` is set.
    Subscription { channel: String, after: Option<String> },
}

/// Request data that makes the [`PrepareGate`] stop before execution.
#[derive(Default)]
pub struct PrepareProbe {
    state: Mutex<ProbeState>,
}

#[derive(Default)]
struct ProbeState {
    reached_execute: bool,
    operation_name: Option<String>,
}

/// Extension factory registered on the schema; inert unless the request holds a probe.
pub struct PrepareGate;

impl ExtensionFactory for PrepareGate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PrepareGateExtension)
    }
}

struct PrepareGateExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for PrepareGateExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(probe) = ctx.data_opt::<Arc<PrepareProbe>>() {
            let mut state = probe.state.lock().unwrap_or_else(|e| e.into_inner());
            state.reached_execute = true;
            state.operation_name = operation_name.map(str::to_owned);
            return Response::new(Value::Null);
        }
        next.run(ctx, operation_name).await
    }
}

/// Parse and validate `request` (JSON text); `Err` holds a JSON array of GraphQL errors.
pub fn prepare(schema: &AppSchema, text: &str) -> Result<OperationKind, String> {
    let mut request = engine::request_from_json(text).map_err(|e| engine::errors_json(&e))?;
    let document = match request.parsed_query() {
        Ok(doc) => doc.clone(),
        Err(err) => return Err(engine::errors_json(&[err])),
    };
    let variables = request.variables.clone();
    let probe = Arc::new(PrepareProbe::default());
    let response = block_on(schema.execute(request.data(probe.clone())));
    if !response.errors.is_empty() {
        return Err(engine::errors_json(&response.errors));
    }
    let (reached, operation_name) = {
        let mut state = probe.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.reached_execute, state.operation_name.take())
    };
    if !reached {
        return Err(engine::errors_json(&[ServerError::new(
            "The request could not be prepared.",
            None,
        )]));
    }
    let kind = analyze(&document, operation_name.as_deref(), &variables)
        .map_err(|e| engine::errors_json(&e))?;
    engine::mark_validated(text);
    Ok(kind)
}

/// Whether the operation `request` would run lacks a required variable. Cheap (no
/// validation): `execute` uses it to turn that case into a request error, as `prepare` does.
pub fn lacks_required_variables(request: &mut Request) -> bool {
    let operation_name = request.operation_name.clone();
    let variables = std::mem::take(&mut request.variables);
    let lacks = match request.parsed_query() {
        Ok(doc) => match select_operation(doc, operation_name.as_deref()) {
            Ok((_, operation)) => check_required_variables(&operation.node, &variables).is_err(),
            Err(_) => false,
        },
        Err(_) => false,
    };
    request.variables = variables;
    lacks
}

/// The kind (and channel) of the operation the engine chose, with the extra checks.
pub fn analyze(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Result<OperationKind, Vec<ServerError>> {
    let (name, operation) = select_operation(doc, operation_name)?;
    check_required_variables(&operation.node, variables)?;
    match operation.node.ty {
        OperationType::Query => Ok(OperationKind::Query),
        OperationType::Mutation => Ok(OperationKind::Mutation),
        OperationType::Subscription => subscription_target(doc, name, &operation.node, variables),
    }
}

fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&'a str>,
) -> Result<(Option<&'a str>, &'a Positioned<OperationDefinition>), Vec<ServerError>> {
    let found = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some((None, op)),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| (Some(name), op)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .iter()
            .next()
            .map(|(name, op)| (Some(name.as_str()), op)),
        (DocumentOperations::Multiple(_), None) => {
            return Err(vec![ServerError::new(
                "Operation name required in request.",
                None,
            )])
        }
    };
    found.ok_or_else(|| {
        vec![ServerError::new(
            format!(
                "Unknown operation named \"{}\"",
                operation_name.unwrap_or_default()
            ),
            None,
        )]
    })
}

fn check_required_variables(
    operation: &OperationDefinition,
    variables: &Variables,
) -> Result<(), Vec<ServerError>> {
    let mut errors = Vec::new();
    for def in &operation.variable_definitions {
        let def_node = &def.node;
        let ty = &def_node.var_type.node;
        if ty.nullable || def_node.default_value.is_some() {
            continue;
        }
        let name = &def_node.name.node;
        match variables.get(name) {
            None => errors.push(ServerError::new(
                format!("Variable \"${name}\" of required type \"{ty}\" was not provided."),
                Some(def.pos),
            )),
            Some(Value::Null) => errors.push(ServerError::new(
                format!("Variable \"${name}\" of non-null type \"{ty}\" must not be null."),
                Some(def.pos),
            )),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The deepest fragment nesting followed when collecting root fields.
const MAX_FRAGMENT_DEPTH: usize = 32;

fn collect_root_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    visited: &mut HashSet<&'a str>,
    depth: usize,
    out: &mut Vec<&'a Positioned<Field>>,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => out.push(field),
            Selection::InlineFragment(inline) => collect_root_fields(
                doc,
                &inline.node.selection_set.node,
                visited,
                depth + 1,
                out,
            ),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if !visited.insert(name) {
                    continue;
                }
                if let Some(fragment) = doc.fragments.get(name) {
                    collect_root_fields(
                        doc,
                        &fragment.node.selection_set.node,
                        visited,
                        depth + 1,
                        out,
                    );
                }
            }
        }
    }
}

/// The channel (and resume position) of a subscription: its one root field's arguments.
fn subscription_target(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Result<OperationKind, Vec<ServerError>> {
    let mut fields = Vec::new();
    collect_root_fields(
        doc,
        &operation.selection_set.node,
        &mut HashSet::new(),
        0,
        &mut fields,
    );
    let subject = match operation_name {
        Some(name) => format!("Subscription \"{name}\""),
        None => "Anonymous Subscription".to_owned(),
    };
    let Some(first) = fields.first() else {
        return Err(vec![ServerError::new(
            format!("{subject} must select only one top level field."),
            Some(operation.selection_set.pos),
        )]);
    };
    let key = first.node.response_key().node.as_str();
    let extra: Vec<Pos> = fields
        .iter()
        .filter(|f| f.node.response_key().node.as_str() != key)
        .map(|f| f.pos)
        .collect();
    if !extra.is_empty() {
        let mut err = ServerError::new(
            format!("{subject} must select only one top level field."),
            None,
        );
        err.locations = extra;
        return Err(vec![err]);
    }
    let field = &first.node;
    if field.name.node.starts_with("__") {
        return Err(vec![ServerError::new(
            format!("{subject} must not select an introspection top level field."),
            Some(first.pos),
        )]);
    }
    let channel = match argument_value(field, "name", operation, variables) {
        None => return Err(vec![ServerError::new("The channel name is missing.", Some(first.pos))]),
        Some((Ok(Value::String(name)), _)) if name == LIBRARY_CHANNEL => name,
        Some((Ok(Value::String(name)), pos)) => return Err(vec![ServerError::new(unknown_channel(&name), Some(pos))]),
        Some((Ok(_), pos)) => return Err(vec![ServerError::new("The channel name must be a string.", Some(pos))]),
        Some((Err(var), pos)) => return Err(vec![missing_variable(&var, pos)]),
    };
    let after = match argument_value(field, "after", operation, variables) {
        Some((Ok(Value::String(position)), _)) => Some(position),
        Some((Ok(Value::Null), _)) | None => None,
        Some((Ok(_), pos)) => return Err(vec![ServerError::new("The position `after` must be a string.", Some(pos))]),
        // An optional argument's variable may be left out: no position.
        Some((Err(_), _)) => None,
    };
    Ok(OperationKind::Subscription { channel, after })
}

/// The value of `field`'s argument `name` with the request's variables (or their defaults)
/// substituted, and where it is; `Err` names a variable that has neither.
fn argument_value(
    field: &Field,
    name: &str,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Option<(Result<Value, Name>, Pos)> {
    let arg = field.get_argument(name)?;
    let value = arg.node.clone().into_const_with(|var| {
        variables
            .get(&var)
            .cloned()
            .or_else(|| {
                operation
                    .variable_definitions
                    .iter()
                    .find(|d| d.node.name.node == var)
                    .and_then(|d| d.node.default_value().cloned())
            })
            .ok_or(var)
    });
    Some((value, arg.pos))
}

fn missing_variable(var: &Name, pos: Pos) -> ServerError {
    ServerError::new(format!("Variable \"${var}\" was not provided."), Some(pos))
}
