//! Trusted documents: the one place where a request that names a document by id gets its
//! text, and where `--trusted-documents-only` refuses any other document. Every request for
//! the graphql component passes here (`GraphqlPool::call`), whether it came over HTTP or from
//! a socket's user-channel, so both transports accept and refuse the same things.
//!
//! A manifest is relay-compiler's persisted-queries file: a JSON object id -> document text.
//! A request names a document by
//! - `documentId` (the GraphQL-over-HTTP persisted-documents convention; a `sha256:` prefix is
//!   accepted too), or
//! - `extensions.persistedQuery.sha256Hash` (Apollo's automatic persisted queries form).
//!
//! Rules, each tested below:
//! 1. A known id is replaced by its text (`query`); a `query` sent beside it is ignored.
//! 2. An unknown id is refused, `PERSISTED_QUERY_NOT_FOUND`, with or without `--trusted-documents-only`.
//! 3. With `--trusted-documents-only`, a `query` text is accepted only when it is, byte for
//!    byte, one of the manifest's documents; any other is refused, `ARBITRARY_DOCUMENT_NOT_ALLOWED`.
//! 4. Without it, a request that names no id passes untouched (and pays no parse here).
//!
//! Nothing here does I/O after loading: the decision is a pure function of the request.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// Why a request was refused; `code` goes to the error's `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound(String),
    NotAllowed,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "PERSISTED_QUERY_NOT_FOUND",
            Self::NotAllowed => "ARBITRARY_DOCUMENT_NOT_ALLOWED",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::NotFound(id) => format!("No trusted document has the id \"{id}\""),
            Self::NotAllowed => "This server runs only its trusted documents: send a documentId".into(),
        }
    }

    /// The GraphQL error list (JSON) for this refusal.
    pub fn errors(&self) -> Value {
        json!([{ "message": self.message(), "extensions": { "code": self.code() } }])
    }
}

#[derive(Default, Debug)]
pub struct TrustedDocuments {
    by_id: HashMap<String, Arc<str>>,
    /// Ids of manifests given by flag (not only the web app's own): those must validate.
    given: HashSet<String>,
    texts: HashSet<Arc<str>>,
    /// `--trusted-documents-only`.
    only: bool,
}

impl TrustedDocuments {
    pub fn new(only: bool) -> Self {
        Self { only, ..Self::default() }
    }

    /// Add the documents of a manifest (JSON object id -> text); `source` names it in errors;
    /// `given`: named by `--trusted-documents` (see [`TrustedDocuments::is_given`]).
    /// An id already known with another text is an error.
    pub fn add_manifest(&mut self, source: &str, json: &str, given: bool) -> Result<()> {
        let manifest: Map<String, Value> =
            serde_json::from_str(json).with_context(|| format!("{source}: not a JSON object of id -> document"))?;
        for (id, text) in manifest {
            let Value::String(text) = text else { bail!("{source}: document {id} is not a string") };
            let text: Arc<str> = self.texts.get(text.as_str()).cloned().unwrap_or_else(|| text.into());
            if let Some(known) = self.by_id.get(&id) {
                if *known != text {
                    bail!("{source}: document {id} differs from the one of that id in an earlier manifest");
                }
            }
            self.texts.insert(text.clone());
            if given {
                self.given.insert(id.clone());
            }
            self.by_id.insert(id, text);
        }
        Ok(())
    }

    pub fn load(&mut self, path: &Path, given: bool) -> Result<()> {
        let json = std::fs::read_to_string(path).with_context(|| format!("reading the trusted documents {}", path.display()))?;
        self.add_manifest(&path.display().to_string(), &json, given)
    }

    /// Whether `id` came from a manifest the operator named (`--trusted-documents`): one that
    /// does not validate stops the start. The web app's own manifest, loaded from `--web-dir`
    /// whatever the flags, must not stop a server that did not ask for it (a test's low
    /// GraphQL limits, an older component): its failures are logged.
    pub fn is_given(&self, id: &str) -> bool {
        self.given.contains(id)
    }

    /// Every (id, text), sorted by id: what start-up validates.
    pub fn documents(&self) -> Vec<(&str, &str)> {
        let mut documents: Vec<_> = self.by_id.iter().map(|(id, text)| (id.as_str(), &**text)).collect();
        documents.sort();
        documents
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The request (JSON `{query | documentId, variables, operationName, extensions}`) as the
    /// graphql component takes it, with its document's text; or why it is refused. A request
    /// that is not a JSON object passes untouched (the component answers it).
    pub fn resolve<'r>(&self, request: &'r str) -> Result<Cow<'r, str>, Refusal> {
        if !self.only && !request.contains("documentId") && !request.contains("persistedQuery") {
            return Ok(Cow::Borrowed(request));
        }
        let Ok(Value::Object(mut params)) = serde_json::from_str::<Value>(request) else {
            return Ok(Cow::Borrowed(request));
        };
        match named_id(&mut params) {
            Some(id) => {
                let key = id.strip_prefix("sha256:").unwrap_or(&id);
                let Some(text) = self.by_id.get(key).or_else(|| self.by_id.get(&id)) else {
                    return Err(Refusal::NotFound(id));
                };
                params.insert("query".into(), Value::String(text.to_string()));
                Ok(Cow::Owned(Value::Object(params).to_string()))
            }
            None => match params.get("query") {
                Some(Value::String(text)) if self.only && !self.texts.contains(text.as_str()) => Err(Refusal::NotAllowed),
                _ => Ok(Cow::Borrowed(request)),
            },
        }
    }

    /// For a request already accepted (a stored subscription's, on each event): its text when
    /// it names a known id, else `None` (leave it as it is). Requests without an id are not parsed.
    pub fn substitute(&self, request: &str) -> Option<String> {
        if !request.contains("documentId") && !request.contains("persistedQuery") {
            return None;
        }
        match self.resolve(request) {
            Ok(Cow::Owned(resolved)) => Some(resolved),
            _ => None,
        }
    }
}

/// The id a request names (removing `documentId`, which the component does not know).
fn named_id(params: &mut Map<String, Value>) -> Option<String> {
    if let Some(Value::String(id)) = params.remove("documentId") {
        return Some(id);
    }
    match params.get("extensions")?.get("persistedQuery")?.get("sha256Hash")? {
        Value::String(hash) => Some(hash.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "query Q { me { id } }";

    fn trusted(only: bool) -> TrustedDocuments {
        let mut t = TrustedDocuments::new(only);
        t.add_manifest("m.json", &json!({ "abc": Q }).to_string(), true).unwrap();
        t
    }

    fn query_of(request: &str) -> Value {
        serde_json::from_str::<Value>(request).unwrap()
    }

    #[test]
    fn a_known_id_is_replaced_by_its_text() {
        for only in [false, true] {
            let t = trusted(only);
            let r = t.resolve(r#"{"documentId":"abc","variables":{"a":1}}"#).unwrap();
            assert_eq!(query_of(&r), json!({ "query": Q, "variables": { "a": 1 } }));
            let r = t.resolve(r#"{"documentId":"sha256:abc","query":"{ other }"}"#).unwrap();
            assert_eq!(query_of(&r)["query"], Q);
            let r = t.resolve(r#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}"#).unwrap();
            assert_eq!(query_of(&r)["query"], Q);
        }
    }

    #[test]
    fn an_unknown_id_is_refused_in_either_mode() {
        for only in [false, true] {
            let t = trusted(only);
            let refused = t.resolve(r#"{"documentId":"nope"}"#).unwrap_err();
            assert_eq!(refused, Refusal::NotFound("nope".into()));
            assert_eq!(refused.code(), "PERSISTED_QUERY_NOT_FOUND");
            let apq = t.resolve(r#"{"query":"{ a }","extensions":{"persistedQuery":{"sha256Hash":"x"}}}"#);
            assert_eq!(apq.unwrap_err().code(), "PERSISTED_QUERY_NOT_FOUND");
        }
    }

    #[test]
    fn only_mode_accepts_manifest_texts_and_refuses_others() {
        let t = trusted(true);
        let same = json!({ "query": Q }).to_string();
        assert_eq!(t.resolve(&same).unwrap(), same);
        let refused = t.resolve(r#"{"query":"{ me { id email } }"}"#).unwrap_err();
        assert_eq!(refused.code(), "ARBITRARY_DOCUMENT_NOT_ALLOWED");
    }

    #[test]
    fn without_only_mode_other_documents_pass_untouched() {
        let t = trusted(false);
        let request = r#"{"query":"{ me { id email } }"}"#;
        assert!(matches!(t.resolve(request).unwrap(), Cow::Borrowed(r) if r == request));
    }

    #[test]
    fn an_accepted_request_gets_its_text_and_others_are_left_alone() {
        let t = trusted(true);
        assert_eq!(query_of(&t.substitute(r#"{"documentId":"abc"}"#).unwrap())["query"], Q);
        assert_eq!(t.substitute(r#"{"query":"{ other }"}"#), None);
        assert_eq!(t.substitute(r#"{"documentId":"gone"}"#), None);
    }

    #[test]
    fn manifests_merge_and_an_id_with_two_texts_is_an_error() {
        let mut t = trusted(false);
        t.add_manifest("b.json", &json!({ "abc": Q, "def": "{ x }" }).to_string(), false).unwrap();
        assert_eq!(t.documents(), vec![("abc", Q), ("def", "{ x }")]);
        let err = t.add_manifest("c.json", &json!({ "abc": "{ y }" }).to_string(), true).unwrap_err();
        assert!(err.to_string().contains("c.json: document abc"), "{err}");
        assert!(t.add_manifest("d.json", "[1]", true).is_err());
        assert!(t.is_given("abc") && !t.is_given("def"), "def came only from a manifest not given by flag");
    }
}
