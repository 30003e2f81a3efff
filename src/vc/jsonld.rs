//! The JSON-LD pipeline behind `eddsa-rdfc-2022` and the JSON-LD-level VC 2.0 rules:
//! an offline context registry, JSON-LD 1.1 expansion (json-ld 0.15), deserialization to
//! RDF (json-ld's toRdf) and RDF Dataset Canonicalization (RDFC-1.0, rdf-canon), every
//! step bounded.
//!
//! **Contexts are never fetched.** The registry holds the contexts bundled in the binary
//! (`contexts/`: VC 2.0 and its undefined-terms context, VC 1.1, Data Integrity v1/v2,
//! Multikey, Bitstring Status List, DID v1, the W3C examples context, Sigil's own) plus the
//! files an operator lists (`--jsonld-context URL=PATH`), read once at start by the caller
//! and [`install`]ed; a document naming any other context URL is refused
//! ([`JsonLdError::UnknownContext`]).
//!
//! **Bounds** (hostile input): the document's JSON size ([`MAX_DOCUMENT_BYTES`]) and
//! nesting ([`MAX_DEPTH`]), the number of quads it yields ([`MAX_QUADS`]), and RDFC-1.0's
//! Hash N-Degree Quads calls ([`HNDQ_CALL_LIMIT`]): a "poison" dataset of look-alike blank
//! nodes is refused ([`JsonLdError::TooComplex`]) instead of taking factorial time. The
//! processing runs on its own large-stack thread (json-ld recurses deeply).
//!
//! Must never: do I/O (file or network), or let input panic or overflow the caller's stack.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};

use iref::{Iri, IriBuf};
use json_ld::future::{BoxFuture, FutureExt};
use json_ld::{JsonLdProcessor, Loader, RemoteDocument, ValidId};
use json_syntax::Parse;
use locspan::{Location, Meta};
use rdf_types::BlankIdBuf;
use serde_json::Value;

use super::credential::VC_V2;

/// The largest JSON document (serialized) the pipeline takes: the request bodies that
/// reach it are smaller already; this bounds callers that are not requests.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The most quads one document may yield: a credential has tens.
pub const MAX_QUADS: usize = 10_000;
/// How many times RDFC-1.0 may run its Hash N-Degree Quads algorithm for one document.
/// A credential's blank nodes (its proof, status entries, nested objects) are told apart
/// by their first-degree hashes and need none or a few; a poison graph of look-alike blank
/// nodes needs a number of calls that grows factorially, and is cut off here.
pub const HNDQ_CALL_LIMIT: usize = 4_000;

/// The VC 1.1 base context (verification only: Sigil issues VC 2.0).
pub const VC_V1: &str = "https://www.w3.org/2018/credentials/v1";

/// The contexts shipped in the binary, by URL.
const BUNDLED: &[(&str, &str)] = &[
    (VC_V2, include_str!("contexts/credentials-v2.jsonld")),
    (VC_V1, include_str!("contexts/credentials-v1.jsonld")),
    ("https://www.w3.org/ns/credentials/examples/v2", include_str!("contexts/credentials-examples-v2.jsonld")),
    ("https://www.w3.org/ns/credentials/undefined-terms/v2", include_str!("contexts/credentials-undefined-terms-v2.jsonld")),
    ("https://w3id.org/security/data-integrity/v1", include_str!("contexts/data-integrity-v1.jsonld")),
    ("https://w3id.org/security/data-integrity/v2", include_str!("contexts/data-integrity-v2.jsonld")),
    ("https://w3id.org/security/multikey/v1", include_str!("contexts/multikey-v1.jsonld")),
    ("https://www.w3.org/ns/credentials/status/v1", include_str!("contexts/vc-bitstring-status-list-v1.jsonld")),
    ("https://www.w3.org/ns/did/v1", include_str!("contexts/did-v1.jsonld")),
];

/// Why a document could not go through the JSON-LD pipeline. All are the caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonLdError {
    #[error("unknown JSON-LD context {0}: only bundled and configured contexts are used, none is fetched")]
    UnknownContext(String),
    #[error("JSON-LD protected term redefinition: a context redefines a term a protected context defines")]
    ProtectedTermRedefinition,
    #[error("JSON-LD processing failed: {0}")]
    Invalid(String),
    #[error("the document is too large or too complex to canonicalize: {0}")]
    TooComplex(&'static str),
}

type Loc = Location<IriBuf>;
type Json = json_syntax::Value<Loc>;
type Doc = Meta<Json, Loc>;
type Remote = RemoteDocument<IriBuf, Loc, Json>;

/// The contexts this process serves to the JSON-LD processor, parsed once.
#[derive(Debug, Clone)]
pub struct Contexts {
    docs: Arc<HashMap<String, Doc>>,
}

impl Contexts {
    /// The bundled contexts, Sigil's own at `sigil_context_url` (deployment-specific), and
    /// `extra` (`(url, JSON text)`, read from files by the caller); an extra URL replaces a
    /// bundled one of the same URL.
    pub fn new(sigil_context_url: Option<&str>, extra: &[(String, String)]) -> Result<Self, String> {
        let mut docs = HashMap::new();
        let sigil = sigil_context_url.map(|u| (u, super::credential::SIGIL_CONTEXT));
        for (url, text) in BUNDLED.iter().copied().chain(sigil).chain(extra.iter().map(|(u, t)| (u.as_str(), t.as_str()))) {
            docs.insert(url.to_owned(), parse_context(url, text)?);
        }
        Ok(Self { docs: Arc::new(docs) })
    }

    /// Whether `url` is served.
    pub fn knows(&self, url: &str) -> bool {
        self.docs.contains_key(url)
    }

    /// The URLs served, sorted.
    pub fn urls(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.docs.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

fn parse_context(url: &str, text: &str) -> Result<Doc, String> {
    let iri = Iri::new(url).map_err(|_| format!("context URL {url} is not an absolute IRI"))?.to_owned();
    let doc = json_syntax::Value::parse_str(text, |span| Location::new(iri.clone(), span))
        .map_err(|e| format!("context {url} is not JSON: {}", e.value()))?;
    if doc.as_object().is_none_or(|o| o.get_unique("@context").ok().flatten().is_none()) {
        return Err(format!("context {url} has no @context member"));
    }
    Ok(doc)
}

static INSTALLED: OnceLock<Contexts> = OnceLock::new();

/// Installs the process's contexts (at start, before serving). A second call is refused.
pub fn install(contexts: Contexts) -> Result<(), String> {
    INSTALLED.set(contexts).map_err(|_| "JSON-LD contexts are already installed".to_owned())
}

/// The installed contexts, or the bundled ones (library use and tests).
pub fn contexts() -> &'static Contexts {
    static BUNDLED_ONLY: OnceLock<Contexts> = OnceLock::new();
    INSTALLED
        .get()
        .unwrap_or_else(|| BUNDLED_ONLY.get_or_init(|| Contexts::new(None, &[]).unwrap_or_else(|_| Contexts { docs: Arc::default() })))
}

/// The document loader handed to json-ld: answers from memory, never from the network.
#[derive(Clone)]
struct Offline(Contexts);

#[derive(Debug, thiserror::Error)]
#[error("unknown context {0}")]
struct NotBundled(String);

impl Loader<IriBuf, Loc> for Offline {
    type Output = Json;
    type Error = NotBundled;

    fn load_with<'a>(
        &'a mut self,
        _vocabulary: &'a mut (impl Sync + Send + rdf_types::IriVocabularyMut<Iri = IriBuf>),
        url: IriBuf,
    ) -> BoxFuture<'a, json_ld::LoadingResult<IriBuf, Loc, Self::Output, Self::Error>>
    where
        IriBuf: 'a,
    {
        let found = self.0.docs.get(url.as_str()).cloned();
        async move {
            let doc = found.ok_or_else(|| NotBundled(url.as_str().to_owned()))?;
            Ok(RemoteDocument::new(Some(url), "application/ld+json".parse().ok(), doc))
        }
        .boxed()
    }
}

/// Runs a future that never waits: every context comes from memory, so the json-ld
/// futures are ready on their first polls. A future still pending after that is an error
/// rather than a blocked thread.
fn run_ready<F: Future>(f: F) -> Result<F::Output, JsonLdError> {
    let mut f = pin!(f);
    let mut cx = TaskContext::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Ok(v);
        }
    }
    Err(JsonLdError::Invalid("JSON-LD processing did not complete".into()))
}

/// The stack the JSON-LD processing runs on. json-ld's expansion and toRdf are recursive
/// async functions, polled recursively: each level of JSON nesting costs tens of kilobytes
/// of stack (far more unoptimized), more than a server worker's 2 MiB holds for an
/// ordinary credential. The document's nesting is bounded ([`MAX_DEPTH`]) so that this
/// stack is enough.
const STACK_BYTES: usize = 64 * 1024 * 1024;
/// The deepest JSON nesting the pipeline takes (a credential nests a handful of levels).
pub const MAX_DEPTH: usize = 24;

/// Runs the (third-party) JSON-LD code on its own thread with [`STACK_BYTES`] of stack; a
/// panic inside it is answered as refused input, never a crashed worker.
fn guarded<T: Send>(f: impl FnOnce() -> Result<T, JsonLdError> + Send) -> Result<T, JsonLdError> {
    let failed = || JsonLdError::Invalid("the JSON-LD processor could not process the document".into());
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new().name("jsonld".into()).stack_size(STACK_BYTES).spawn_scoped(scope, f);
        match worker {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(failed())),
            Err(_) => Err(JsonLdError::TooComplex("no thread for JSON-LD processing")),
        }
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every context URL the document names (in any `@context`, at any depth, including
/// `@import`) must be served: named here, before processing, so the answer names the URL.
fn check_context_urls(v: &Value, reg: &Contexts) -> Result<(), JsonLdError> {
    fn urls<'a>(ctx: &'a Value, out: &mut Vec<&'a str>) {
        match ctx {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|c| urls(c, out)),
            Value::Object(o) => {
                if let Some(Value::String(s)) = o.get("@import") {
                    out.push(s);
                }
                // Scoped contexts inside term definitions.
                o.values().filter_map(|d| d.get("@context")).for_each(|c| urls(c, out));
            }
            _ => {}
        }
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "@context" {
                    let mut found = Vec::new();
                    urls(x, &mut found);
                    if let Some(u) = found.into_iter().find(|u| !reg.knows(u)) {
                        return Err(JsonLdError::UnknownContext(u.chars().take(200).collect()));
                    }
                } else {
                    check_context_urls(x, reg)?;
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_context_urls(x, reg)),
        _ => Ok(()),
    }
}

fn to_text(doc: &Value) -> Result<String, JsonLdError> {
    if depth(doc) > MAX_DEPTH {
        return Err(JsonLdError::TooComplex("JSON nesting deeper than the JSON-LD limit"));
    }
    let text = serde_json::to_string(doc).map_err(|e| JsonLdError::Invalid(e.to_string()))?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(JsonLdError::TooComplex("document larger than the JSON-LD size limit"));
    }
    Ok(text)
}

fn remote(text: &str) -> Result<Remote, JsonLdError> {
    let base = IriBuf::new("x-string://").map_err(|_| JsonLdError::Invalid("base".into()))?;
    let json = json_syntax::Value::parse_str(text, |span| Location::new(base.clone(), span))
        .map_err(|e| JsonLdError::Invalid(e.value().to_string()))?;
    Ok(RemoteDocument::new(None, None, json))
}

fn classify(message: String) -> JsonLdError {
    // json-ld reports context-processing errors by their JSON-LD error code's text.
    if message.contains("Protected term redefinition") {
        JsonLdError::ProtectedTermRedefinition
    } else if let Some(rest) = message.split("unknown context ").nth(1) {
        JsonLdError::UnknownContext(rest.chars().take(200).collect())
    } else {
        JsonLdError::Invalid(message.chars().take(300).collect())
    }
}

/// JSON-LD expansion of `doc` with the offline loader, then the JSON-LD-level VC 2.0 rules
/// that need it: §4.3 (via JSON-LD 1.1 §4.1.11) no context may redefine a protected term
/// (the processor raises "protected term redefinition"), and §4.5 Types: every `type` must
/// expand to a URL (an absolute IRI; a blank node or relative reference is not one).
pub fn check_expanded(doc: &Value) -> Result<(), ExpansionFinding> {
    let reg = contexts();
    check_context_urls(doc, reg).map_err(ExpansionFinding::Error)?;
    let text = to_text(doc).map_err(ExpansionFinding::Error)?;
    guarded(|| {
        let rd = remote(&text)?;
        let mut loader = Offline(reg.clone());
        let expanded = run_ready(rd.expand(&mut loader))?.map_err(|e| classify(e.to_string()))?;
        use json_ld::object::FragmentRef as F;
        for frag in expanded.traverse() {
            let node = match frag {
                F::Object(json_ld::Object::Node(n)) => Some(&**n),
                F::IndexedObject(o) => match o.inner() {
                    json_ld::Object::Node(n) => Some(&**n),
                    _ => None,
                },
                F::Node(n) => Some(n),
                F::IndexedNode(n) => Some(n.inner()),
                _ => None,
            };
            if let Some(bad) = node.and_then(|n| n.types().iter().find(|t| !t.is_iri())) {
                return Err(JsonLdError::Invalid(format!("TYPE:{}", describe_id(bad.value()))));
            }
        }
        Ok(())
    })
    .map_err(|e| match e {
        JsonLdError::Invalid(m) if m.starts_with("TYPE:") => ExpansionFinding::TypeNotUrl(m.trim_start_matches("TYPE:").to_owned()),
        other => ExpansionFinding::Error(other),
    })
}

fn describe_id(id: &json_ld::Id<IriBuf, BlankIdBuf>) -> String {
    match id {
        json_ld::Id::Valid(ValidId::Blank(b)) => format!("blank node {}", b.as_str()),
        json_ld::Id::Valid(ValidId::Iri(i)) => i.as_str().to_owned(),
        json_ld::Id::Invalid(s) => s.chars().take(100).collect(),
    }
}

/// What [`check_expanded`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpansionFinding {
    /// A `type` whose expansion is not a URL (what it expanded to).
    TypeNotUrl(String),
    /// The document could not be expanded.
    Error(JsonLdError),
}

/// The RDFC-1.0 canonical N-Quads of `doc` (JSON-LD 1.1 toRdf, then RDFC-1.0 with SHA-256),
/// the `eddsa-rdfc-2022` transformation (VC-DI-EdDSA §3.2.3).
pub fn canonicalize(doc: &Value) -> Result<Vec<u8>, JsonLdError> {
    let reg = contexts();
    check_context_urls(doc, reg)?;
    let text = to_text(doc)?;
    guarded(|| {
        let rd = remote(&text)?;
        let mut loader = Offline(reg.clone());
        let gen_at =
            Location::new(IriBuf::new("x-bnode-gen://").map_err(|_| JsonLdError::Invalid("base".into()))?, locspan::Span::default());
        let mut generator = rdf_types::generator::Blank::new().with_metadata(gen_at);
        let mut to_rdf = run_ready(rd.to_rdf(&mut generator, &mut loader))?.map_err(|e| classify(e.to_string()))?;
        let mut dataset = oxrdf::Dataset::new();
        for q in to_rdf.cloned_quads() {
            if dataset.len() >= MAX_QUADS {
                return Err(JsonLdError::TooComplex("more quads than the JSON-LD limit"));
            }
            let rdf_types::Quad(s, p, o, g) = q;
            let subject: oxrdf::Subject = match id(s) {
                oxrdf::Term::NamedNode(n) => n.into(),
                oxrdf::Term::BlankNode(b) => b.into(),
                _ => continue,
            };
            let oxrdf::Term::NamedNode(predicate) = id(p) else {
                // Generalized RDF (a blank node predicate) is not produced by default; skip.
                continue;
            };
            let object = match o {
                rdf_types::Term::Id(i) => id(i),
                rdf_types::Term::Literal(l) => literal(l)?,
            };
            let graph = match g.map(id) {
                None => oxrdf::GraphName::DefaultGraph,
                Some(oxrdf::Term::NamedNode(n)) => n.into(),
                Some(oxrdf::Term::BlankNode(b)) => b.into(),
                Some(_) => continue,
            };
            dataset.insert(&oxrdf::Quad::new(subject, predicate, object, graph));
        }
        let opts = rdf_canon::CanonicalizationOptions { hndq_call_limit: Some(HNDQ_CALL_LIMIT) };
        rdf_canon::canonicalize_with::<sha2::Sha256>(&dataset, &opts).map(String::into_bytes).map_err(|e| match e {
            rdf_canon::CanonicalizationError::HndqCallLimitExceeded(_) => {
                JsonLdError::TooComplex("RDFC-1.0 blank node labelling exceeds its work limit")
            }
            other => JsonLdError::Invalid(other.to_string()),
        })
    })
}

fn id(i: ValidId<IriBuf, BlankIdBuf>) -> oxrdf::Term {
    match i {
        ValidId::Iri(i) => oxrdf::NamedNode::new_unchecked(i.as_str()).into(),
        // json-ld labels blank nodes `_:b0`…; oxrdf wants the label without `_:`.
        ValidId::Blank(b) => oxrdf::BlankNode::new_unchecked(b.as_str().trim_start_matches("_:")).into(),
    }
}

fn literal(l: rdf_types::Literal) -> Result<oxrdf::Term, JsonLdError> {
    let (value, ty) = (l.value().clone(), l.type_().clone());
    Ok(match ty {
        rdf_types::literal::Type::Any(dt) => oxrdf::Literal::new_typed_literal(value, oxrdf::NamedNode::new_unchecked(dt.as_str())).into(),
        rdf_types::literal::Type::LangString(tag) => oxrdf::Literal::new_language_tagged_literal(value, tag.as_str())
            .map_err(|_| JsonLdError::Invalid("a language tag is not well formed".into()))?
            .into(),
    })
}

/// Whether `ctx` (a document's `@context`) starts with the VC 1.1 base context.
pub fn is_vc_v1(doc: &Value) -> bool {
    match doc.get("@context") {
        Some(Value::Array(a)) => a.first().and_then(Value::as_str) == Some(VC_V1),
        Some(Value::String(s)) => s == VC_V1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundled_contexts_all_parse() {
        let c = Contexts::new(Some("https://sigil.example/ns/v1"), &[]).unwrap();
        assert!(c.knows(VC_V2) && c.knows(VC_V1) && c.knows("https://sigil.example/ns/v1"));
        assert_eq!(c.urls().len(), BUNDLED.len() + 1);
    }

    #[test]
    fn unknown_context_is_named() {
        let doc = json!({"@context": [VC_V2, "https://evil.example/ctx"], "type": "VerifiableCredential"});
        assert_eq!(canonicalize(&doc), Err(JsonLdError::UnknownContext("https://evil.example/ctx".into())));
        let nested = json!({"@context": [VC_V2, {"x": {"@id": "https://e/x", "@context": "https://evil.example/scoped"}}]});
        assert_eq!(canonicalize(&nested), Err(JsonLdError::UnknownContext("https://evil.example/scoped".into())));
    }

    fn credential() -> Value {
        json!({
            "@context": [VC_V2, "https://www.w3.org/ns/credentials/examples/v2"],
            "type": ["VerifiableCredential", "ExampleCredential"],
            "issuer": "did:example:issuer",
            "credentialSubject": {"id": "did:example:subject", "name": "x"}
        })
    }

    #[test]
    fn a_conformant_credential_expands() {
        assert_eq!(check_expanded(&credential()), Ok(()));
    }

    /// VC Data Model 2.0 §4.3 / JSON-LD 1.1 §4.1.11: the VC context protects `name` and
    /// `VerifiableCredential`; a later context may not point them elsewhere. (`issuer` is
    /// defined in the type-scoped context of `VerifiableCredential`, which is applied after
    /// the document's own contexts, so a top-level `issuer` definition is overridden, not a
    /// redefinition.)
    #[test]
    fn redefining_a_protected_term_is_refused() {
        let mut c = credential();
        c["@context"] = json!([VC_V2, {"name": "https://evil.example/name"}]);
        assert_eq!(check_expanded(&c), Err(ExpansionFinding::Error(JsonLdError::ProtectedTermRedefinition)));
        c["@context"] = json!([VC_V2, {"VerifiableCredential": "https://evil.example/VC"}]);
        assert_eq!(check_expanded(&c), Err(ExpansionFinding::Error(JsonLdError::ProtectedTermRedefinition)));
        // Defining a new term, or the same definition again, is fine.
        c["@context"] = json!([VC_V2, "https://www.w3.org/ns/credentials/examples/v2", {"favouriteColour": "https://example.org/colour"}]);
        assert_eq!(check_expanded(&c), Ok(()));
    }

    /// VC Data Model 2.0 §4.5: each type must be (expand to) a URL.
    #[test]
    fn a_type_that_does_not_expand_to_a_url_is_refused() {
        let mut c = credential();
        c["@context"] = json!([VC_V2, {"@vocab": null}]);
        c["type"] = json!(["VerifiableCredential", "NotAUrl"]);
        assert!(matches!(check_expanded(&c), Err(ExpansionFinding::TypeNotUrl(t)) if t.contains("NotAUrl")), "{:?}", check_expanded(&c));
        let mut c = credential();
        c["type"] = json!(["VerifiableCredential", "_:blank"]);
        assert!(matches!(check_expanded(&c), Err(ExpansionFinding::TypeNotUrl(_))));
        // A type nested in the subject is held to the same rule.
        let mut c = credential();
        c["@context"] = json!([VC_V2, {"@vocab": null}]);
        c["credentialSubject"]["type"] = json!("Relative");
        assert!(matches!(check_expanded(&c), Err(ExpansionFinding::TypeNotUrl(_))));
    }

    #[test]
    fn an_unknown_context_is_refused_in_expansion_too() {
        let mut c = credential();
        c["@context"] = json!([VC_V2, "https://unknown.example/ctx"]);
        assert_eq!(check_expanded(&c), Err(ExpansionFinding::Error(JsonLdError::UnknownContext("https://unknown.example/ctx".into()))));
    }

    /// A "poison" dataset: blank nodes that all look alike (a complete graph), which sends
    /// RDFC-1.0 into factorial work. Refused within the call limit, quickly.
    #[test]
    fn a_poison_graph_is_refused_quickly() {
        let n = 12;
        let nodes: Vec<Value> = (0..n)
            .map(|i| json!({"@id": format!("_:b{i}"), "p": (0..n).filter(|j| *j != i).map(|j| format!("_:b{j}")).collect::<Vec<_>>()}))
            .collect();
        let doc = json!({"@context": {"p": {"@id": "https://example.org/p", "@type": "@id"}}, "@graph": nodes});
        let t = std::time::Instant::now();
        assert!(matches!(canonicalize(&doc), Err(JsonLdError::TooComplex(_))), "{:?}", canonicalize(&doc).map(|v| v.len()));
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "took {:?}", t.elapsed());
        // A small symmetric graph still canonicalizes (the limit is not hit by ordinary data).
        let small = json!({"@context": {"p": {"@id": "https://example.org/p", "@type": "@id"}},
            "@graph": [{"@id": "_:a", "p": "_:b"}, {"@id": "_:b", "p": "_:a"}]});
        assert!(canonicalize(&small).is_ok());
    }

    #[test]
    fn too_many_quads_or_bytes_are_refused() {
        let many: Vec<Value> = (0..(MAX_QUADS + 1)).map(|i| json!({"@id": format!("https://e.example/{i}"), "p": "x"})).collect();
        let doc = json!({"@context": {"p": "https://example.org/p"}, "@graph": many});
        assert!(matches!(canonicalize(&doc), Err(JsonLdError::TooComplex(_))));
        let big = json!({"@context": {"p": "https://example.org/p"}, "p": "x".repeat(MAX_DOCUMENT_BYTES)});
        assert!(matches!(canonicalize(&big), Err(JsonLdError::TooComplex(_))));
        let mut deep = json!("x");
        for _ in 0..=MAX_DEPTH {
            deep = json!({"p": deep});
        }
        deep["@context"] = json!({"p": "https://example.org/p"});
        assert!(matches!(canonicalize(&deep), Err(JsonLdError::TooComplex(_))));
    }

    /// Nesting up to the limit is processed, on a worker-sized caller stack (the pipeline
    /// brings its own), without overflowing.
    #[test]
    fn nesting_up_to_the_limit_fits_the_stack() {
        let mut deep = json!("x");
        for _ in 0..MAX_DEPTH {
            deep = json!({"p": deep});
        }
        deep["@context"] = json!({"p": "https://example.org/p"});
        let h = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || canonicalize(&deep).map(|b| b.len())).unwrap();
        assert!(h.join().unwrap().is_ok());
    }
}
#[cfg(test)]
mod cost {
    use super::*;
    use serde_json::json;

    #[test]
    #[ignore = "measurement"]
    fn where_the_time_goes() {
        let t = |f: &dyn Fn()| {
            let s = std::time::Instant::now();
            for _ in 0..20 {
                f();
            }
            s.elapsed().as_secs_f64() / 20.0 * 1e3
        };
        let vc = json!({"@context": [VC_V2, "https://www.w3.org/ns/credentials/examples/v2"], "type": ["VerifiableCredential"], "issuer": "did:example:i", "credentialSubject": {"id": "did:example:s"}});
        let inline = json!({"@context": {"p": "https://example.org/p"}, "@id": "https://example.org/s", "p": "x"});
        eprintln!(
            "canonicalize vc2 {:.2} ms; inline {:.2} ms; expand vc2 {:.2} ms; thread only {:.3} ms",
            t(&|| drop(canonicalize(&vc))),
            t(&|| drop(canonicalize(&inline))),
            t(&|| drop(check_expanded(&vc))),
            t(&|| drop(guarded(|| Ok(()))))
        );
    }
}
