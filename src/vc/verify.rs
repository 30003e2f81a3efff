//! Verification of credentials (and, in `presentation`, of presentations): one
//! implementation behind `POST /v1/verify`, the VC-API routes, the `sigil::verify` library
//! API and the `sigil verify` CLI. DID documents and status lists come from a [`Resolver`]
//! passed in by the caller; this module does no I/O of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::credential::{VC_V2, issuer_id, types};
use super::datamodel;
use super::did::{did_key_document, key_for, split_did_url};
use super::jsonld::{JsonLdError, VC_V1, is_vc_v1};
use super::proof::{self, ParsedProof, ProofError};
use super::status_list::Bitstring;
use super::trust::TrustPolicy;

/// Clock skew tolerated on a status list credential's validity window.
const STATUS_LIST_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Why a DID document or status list could not be had. The caller sees only the kind;
/// a resolver logs the detail (addresses, HTTP statuses) where only the operator reads it,
/// so a verifier's answer cannot be used to map internal hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The egress policy refused the destination (loopback, private, metadata, a port).
    #[error("refused by the egress policy")]
    Refused,
    /// Not found, unreachable, too large, malformed, or too slow.
    #[error("could not be fetched")]
    Unavailable,
    /// This verification's fetch budget (count or deadline) is spent.
    #[error("the verification's fetch budget is spent")]
    Budget,
}

impl ResolveError {
    fn code(self, otherwise: &'static str) -> &'static str {
        match self {
            Self::Refused => "egress_refused",
            Self::Budget => "fetch_limit",
            Self::Unavailable => otherwise,
        }
    }
}

/// Where DID documents and status list credentials come from.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The DID document of `did` (did:web; did:key is resolved without calling this).
    /// Shared: a verification resolves its issuer up to six times, and a resolver may hand
    /// out its cached copy rather than a fresh tree each time.
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, ResolveError>;
    /// The status list credential at `url` (shared: a resolver may hand out its cached copy).
    async fn fetch_status_list(&self, url: &str) -> Result<Arc<Value>, ResolveError>;
}

/// Distinct documents one verification may fetch (DID documents and status lists
/// together). A Sigil presentation needs at most six: the holder's and the issuer's DID
/// documents and two lists per credential.
pub const MAX_FETCHES: usize = 8;
/// One deadline for every fetch of a verification, however many there are.
pub const FETCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// One document's outcome within a verification, shared by every check that asks for it.
type Memo = Arc<tokio::sync::OnceCell<Result<Arc<Value>, ResolveError>>>;

/// The resolver one verification sees: at most [`MAX_FETCHES`] distinct documents, all
/// within [`FETCH_DEADLINE`]; each document is asked for once, however many entries name
/// it (concurrent askers wait for the first).
struct Budgeted<'a> {
    inner: &'a dyn Resolver,
    deadline: tokio::time::Instant,
    seen: Mutex<HashMap<String, Memo>>,
}

impl<'a> Budgeted<'a> {
    fn new(inner: &'a dyn Resolver) -> Self {
        Self { inner, deadline: tokio::time::Instant::now() + FETCH_DEADLINE, seen: Mutex::new(HashMap::new()) }
    }

    /// The memo of `key`, counting it against the budget the first time.
    fn admit(&self, key: &str) -> Result<Memo, ResolveError> {
        let mut seen = self.seen.lock().map_err(|_| ResolveError::Unavailable)?;
        if let Some(m) = seen.get(key) {
            return Ok(m.clone());
        }
        if seen.len() >= MAX_FETCHES {
            return Err(ResolveError::Budget);
        }
        let m = Memo::default();
        seen.insert(key.to_owned(), m.clone());
        Ok(m)
    }

    async fn run<F>(&self, key: &str, fetch: F) -> Result<Arc<Value>, ResolveError>
    where
        F: std::future::Future<Output = Result<Arc<Value>, ResolveError>>,
    {
        let memo = self.admit(key)?;
        memo.get_or_init(|| async { tokio::time::timeout_at(self.deadline, fetch).await.unwrap_or(Err(ResolveError::Budget)) })
            .await
            .clone()
    }
}

#[async_trait]
impl Resolver for Budgeted<'_> {
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, ResolveError> {
        self.run(did, self.inner.resolve_did(did)).await
    }

    async fn fetch_status_list(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        self.run(url, self.inner.fetch_status_list(url)).await
    }
}

/// `resolver` wrapped in one verification's fetch budget.
pub(crate) fn budgeted(resolver: &dyn Resolver) -> impl Resolver + '_ {
    Budgeted::new(resolver)
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`proof`, `issuer_trusted`, `valid_from`, `status:revocation`, …).
    pub check: String,
    pub ok: bool,
    /// Human-readable outcome.
    pub detail: String,
    /// Stable machine code when the check failed (`invalid_signature`, `expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Reported but not counted: only the W3C VC-API routes report issuer trust this way,
    /// as that API specifies. Sigil's own verifiers never make a check advisory.
    #[serde(skip)]
    pub advisory: bool,
}

impl Check {
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { check: check.into(), ok: true, detail: detail.into(), code: None, advisory: false }
    }
    pub fn fail(check: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        Self { check: check.into(), ok: false, detail: detail.into(), code: Some(code), advisory: false }
    }
}

/// The outcome of verifying one document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Verified when at least one check ran and none that counts failed.
    pub fn verified(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok || c.advisory)
    }

    /// True when every credential's issuer was found trusted (and at least one was checked).
    pub fn issuer_trusted(&self) -> bool {
        let mut trust = self.checks.iter().filter(|c| c.check.ends_with(TRUST_CHECK)).peekable();
        trust.peek().is_some() && trust.all(|c| c.ok)
    }

    /// `code: detail` of every failed check that counts.
    pub fn errors(&self) -> Vec<String> {
        self.failed(false)
    }

    /// `code: detail` of every failed advisory check.
    pub fn warnings(&self) -> Vec<String> {
        self.failed(true)
    }

    fn failed(&self, advisory: bool) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok && c.advisory == advisory)
            .map(|c| format!("{}: {}", c.code.unwrap_or("failed"), c.detail))
            .collect()
    }

    /// Codes of failed checks.
    pub fn codes(&self) -> Vec<&'static str> {
        self.checks.iter().filter_map(|c| if c.ok { None } else { c.code }).collect()
    }

    pub(crate) fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// True when nothing that counts has failed so far.
    pub(crate) fn clean(&self) -> bool {
        self.checks.iter().all(|c| c.ok || c.advisory)
    }
}

/// The name of the trust check (prefixed with `credential[i].` inside presentations).
pub const TRUST_CHECK: &str = "issuer_trusted";

/// What a credential verification should include.
#[derive(Debug, Clone, Copy)]
pub struct CredentialOptions {
    /// Fetch and check status lists.
    pub check_status: bool,
}

impl Default for CredentialOptions {
    fn default() -> Self {
        Self { check_status: true }
    }
}

/// Whether an untrusted issuer fails verification (Sigil's own verifiers) or is only
/// reported (the W3C VC-API routes, whose conformance suites sign with their own keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrustMode {
    Enforce,
    Advisory,
}

/// Who must have signed a proof, and the failure code when someone else did. Checked
/// before the signer's DID is resolved.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedSigner<'a> {
    pub did: &'a str,
    /// `issuer_mismatch`, `holder_mismatch`.
    pub code: &'static str,
}

impl ExpectedSigner<'_> {
    /// The issuer of a credential (or status list).
    pub fn issuer(did: &str) -> ExpectedSigner<'_> {
        ExpectedSigner { did, code: "issuer_mismatch" }
    }

    /// The holder of a presentation.
    pub fn holder(did: &str) -> ExpectedSigner<'_> {
        ExpectedSigner { did, code: "holder_mismatch" }
    }

    /// Fails when `did` is not the expected signer.
    pub fn check(&self, did: &str) -> Result<(), Check> {
        if did == self.did {
            return Ok(());
        }
        Err(Check::fail("proof", self.code, format!("signed by {did}, not by {}", self.did)))
    }
}

/// A verified proof: who signed it and its options.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The DID that controls the signing key.
    pub controller: String,
    pub proof: ParsedProof,
}

/// Verifies the single Data Integrity proof of `doc` for `purpose` (`assertionMethod` or
/// `authentication`): the key must be in that relationship of its resolved DID document.
/// With `signer`, a proof by any other DID fails before anything is resolved (a document
/// cannot make the verifier fetch a DID it has no business with).
pub async fn verify_proof(
    doc: &Value,
    purpose: &str,
    signer: Option<ExpectedSigner<'_>>,
    resolver: &dyn Resolver,
) -> Result<VerifiedProof, Check> {
    let (unsecured, parsed) = proof::parse(doc).map_err(|e| {
        let code = match e {
            ProofError::Missing => "proof_missing",
            ProofError::Unsupported => "unsupported_cryptosuite",
            ProofError::ContextMismatch => "context_mismatch",
            _ => "malformed_proof",
        };
        Check::fail("proof", code, e.to_string())
    })?;
    if parsed.str("proofPurpose") != Some(purpose) {
        return Err(Check::fail("proof", "wrong_proof_purpose", format!("proofPurpose must be {purpose}")));
    }
    let vm = parsed.str("verificationMethod").unwrap_or_default().to_owned();
    let (did, _) = split_did_url(&vm).ok_or_else(|| Check::fail("proof", "malformed_proof", "verificationMethod is not a DID URL"))?;
    if let Some(e) = signer {
        e.check(did)?;
    }
    let did_doc = resolve_document(did, resolver).await?;
    let key = key_for(&did_doc, &vm, purpose).map_err(|e| Check::fail("proof", "wrong_key", format!("{vm}: {e}")))?;
    proof::verify_parsed_cached(&unsecured, &parsed, &key).map_err(|e| {
        let code = match &e {
            ProofError::JsonLd(JsonLdError::UnknownContext(_)) => "unknown_context",
            ProofError::JsonLd(JsonLdError::TooComplex(_)) => "jsonld_too_complex",
            ProofError::JsonLd(_) | ProofError::Canonicalization => "invalid_jsonld",
            _ => "invalid_signature",
        };
        Check::fail("proof", code, e.to_string())
    })?;
    Ok(VerifiedProof { controller: did.to_owned(), proof: parsed })
}

/// The DID document of `did`: did:key documents are derived from the key itself, did:web
/// documents come from `resolver`; other methods are refused.
pub(crate) async fn resolve_document(did: &str, resolver: &dyn Resolver) -> Result<Arc<Value>, Check> {
    if did.starts_with("did:key:") {
        return did_key_document(did)
            .map(|(_, d)| Arc::new(d))
            .ok_or_else(|| Check::fail("proof", "unresolvable_did", "did:key is not an Ed25519 Multikey"));
    }
    if !did.starts_with("did:web:") {
        return Err(Check::fail("proof", "unsupported_did_method", format!("{did}: only did:web and did:key are supported")));
    }
    resolver.resolve_did(did).await.map_err(|e| Check::fail("proof", e.code("unresolvable_did"), format!("could not resolve {did}: {e}")))
}

/// A `validFrom`/`validUntil` value, read with the same parser the issue route uses
/// ([`datamodel::parse_date_time_stamp`]), so what one refuses the other refuses too.
fn parse_time(v: Option<&Value>) -> Result<Option<Timestamp>, ()> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => datamodel::parse_date_time_stamp(s).map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// Checks `validFrom`/`validUntil` against `now` (VC Data Model 2.0 §4.9); for a VC 1.1
/// credential, `issuanceDate` (required there) and `expirationDate` (VC Data Model 1.1
/// §4.6, §7.1).
pub fn check_validity(doc: &Value, now: Timestamp, report: &mut Report, label: &str) {
    let (from_key, until_key) = if is_vc_v1(doc) { ("issuanceDate", "expirationDate") } else { ("validFrom", "validUntil") };
    let not_a_time = |key: &str| format!("{key} is not an XML Schema dateTimeStamp (VC Data Model 2.0 §4.9)");
    let from = match doc.get(from_key) {
        None if from_key == "issuanceDate" => Err(()),
        v => parse_time(v),
    };
    let until = parse_time(doc.get(until_key));
    let not_a_time = |key: &str| if key == "validFrom" { not_a_time(from_key) } else { not_a_time(until_key) };
    match from {
        Ok(Some(f)) if now < f => report.push(Check::fail(format!("{label}valid_from"), "not_yet_valid", format!("valid from {f}"))),
        Ok(_) => report.push(Check::pass(format!("{label}valid_from"), "in effect")),
        Err(()) => report.push(Check::fail(format!("{label}valid_from"), "malformed_credential", not_a_time("validFrom"))),
    }
    match until {
        Ok(Some(u)) if from.ok().flatten().is_some_and(|f| f > u) => report.push(Check::fail(
            format!("{label}valid_until"),
            "malformed_credential",
            "validUntil is earlier than validFrom (VC Data Model 2.0 §4.9)",
        )),
        Ok(Some(u)) if now >= u => report.push(Check::fail(format!("{label}valid_until"), "expired", format!("expired at {u}"))),
        Ok(_) => report.push(Check::pass(format!("{label}valid_until"), "not expired")),
        Err(()) => report.push(Check::fail(format!("{label}valid_until"), "malformed_credential", not_a_time("validUntil"))),
    }
}

fn structure(vc: &Value) -> Result<(), String> {
    let ctx0 = vc.get("@context").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str);
    // VC 1.1 credentials are verified too (their proof decides; Sigil issues VC 2.0 only).
    if ctx0 != Some(VC_V2) && ctx0 != Some(VC_V1) {
        return Err(format!("@context must start with {VC_V2} (or {VC_V1})"));
    }
    if !types(vc).contains(&"VerifiableCredential") {
        return Err("type must include VerifiableCredential".into());
    }
    if issuer_id(vc).is_none() {
        return Err("issuer is missing".into());
    }
    if vc.get("credentialSubject").is_none_or(|s| !(s.is_object() || s.is_array())) {
        return Err("credentialSubject is missing".into());
    }
    Ok(())
}

/// How a credential's issuer signature is established.
#[derive(Debug, Clone)]
pub enum IssuerProof {
    /// An embedded Data Integrity proof, checked here.
    Embedded,
    /// Already checked elsewhere (a `vc+jwt` envelope): the DID that signed it.
    Verified(String),
}

/// Verifies a credential: structure, issuer trust, proof by the issuer's assertion key,
/// validity window and (optionally, once everything else holds) every Bitstring Status
/// List entry. `verified` is never true unless `trust` trusts the issuer for the
/// credential's type; nothing is fetched for an issuer it does not trust.
pub async fn verify_credential(
    vc: &Value,
    resolver: &dyn Resolver,
    now: Timestamp,
    opts: CredentialOptions,
    trust: &TrustPolicy,
) -> Report {
    verify_credential_in(vc, resolver, now, opts, trust, TrustMode::Enforce).await
}

/// [`verify_credential`] with the trust mode chosen by the caller (the VC-API routes).
pub(crate) async fn verify_credential_in(
    vc: &Value,
    resolver: &dyn Resolver,
    now: Timestamp,
    opts: CredentialOptions,
    trust: &TrustPolicy,
    mode: TrustMode,
) -> Report {
    let resolver = Budgeted::new(resolver);
    let mut report = Report::default();
    let trusted = trust_check(vc, trust, mode, "", &mut report);
    if !trusted && mode == TrustMode::Enforce {
        report.push(proof_not_checked(""));
        return report;
    }
    credential_checks(vc, IssuerProof::Embedded, &resolver, now, "", &mut report).await;
    // Status lists are fetched only once everything else holds: a failed verification
    // stays failed without them, and their URLs are the credential's to choose.
    if opts.check_status && report.clean() {
        let issuer = issuer_id(vc).unwrap_or_default();
        check_statuses(&status_entries(vc, issuer, ""), &resolver, now, &mut report).await;
    }
    report
}

/// The proof check that did not run: nothing is fetched for a document that already
/// failed a check needing no I/O (an untrusted issuer, a subject that is not the holder),
/// since its DIDs and URLs may point anywhere.
pub(crate) fn proof_not_checked(label: &str) -> Check {
    Check::fail(format!("{label}proof"), "proof_not_checked", "not checked: an earlier check failed, so nothing was fetched")
}

/// The `issuer_trusted` check of one credential, into `report`; true when trusted. Pure.
pub(crate) fn trust_check(vc: &Value, trust: &TrustPolicy, mode: TrustMode, label: &str, report: &mut Report) -> bool {
    let name = format!("{label}{TRUST_CHECK}");
    // A subject without an id is about no one: it counts, as "", so a tenant rule fails it.
    let subjects: Vec<&str> = match vc.get("credentialSubject") {
        Some(Value::Array(a)) => a.iter().map(|s| s.get("id").and_then(Value::as_str).unwrap_or_default()).collect(),
        Some(s) => vec![s.get("id").and_then(Value::as_str).unwrap_or_default()],
        None => vec![],
    };
    let outcome = match issuer_id(vc) {
        Some(issuer) => trust.check(issuer, &types(vc), &subjects).map(|()| issuer).map_err(|why| why.to_string()),
        None => Err("the credential names no issuer".to_owned()),
    };
    match outcome {
        Ok(issuer) => {
            report.push(Check::pass(name, format!("{issuer} is trusted for this credential")));
            true
        }
        Err(why) => {
            let mut c = Check::fail(name, "issuer_not_trusted", why);
            c.advisory = mode == TrustMode::Advisory;
            report.push(c);
            false
        }
    }
}

/// Structure, issuer proof and validity of one credential, into `report` (trust is
/// [`trust_check`], decided before anything is fetched).
pub(crate) async fn credential_checks(
    vc: &Value,
    proof: IssuerProof,
    resolver: &dyn Resolver,
    now: Timestamp,
    label: &str,
    report: &mut Report,
) {
    if let Err(e) = structure(vc) {
        report.push(Check::fail(format!("{label}structure"), "malformed_credential", e));
        return;
    }
    report.push(Check::pass(format!("{label}structure"), "VC 2.0"));
    let issuer = issuer_id(vc).unwrap_or_default().to_owned();
    let signer = match proof {
        IssuerProof::Embedded => {
            verify_proof(vc, "assertionMethod", Some(ExpectedSigner::issuer(&issuer)), resolver).await.map(|p| p.controller)
        }
        IssuerProof::Verified(did) => Ok(did),
    };
    match signer {
        Ok(did) if did == issuer => report.push(Check::pass(format!("{label}proof"), format!("signed by {issuer}"))),
        Ok(did) => {
            report.push(Check::fail(format!("{label}proof"), "issuer_mismatch", format!("signed by {did} but the issuer is {issuer}")))
        }
        Err(mut c) => {
            c.check = format!("{label}{}", c.check);
            report.push(c);
        }
    }
    check_validity(vc, now, report, label);
}

/// One status entry to check: (check name, entry, the credential's issuer).
pub(crate) struct StatusEntry<'a> {
    name: String,
    purpose: &'a str,
    entry: &'a Value,
    issuer: &'a str,
}

/// The `credentialStatus` entries of `vc`.
pub(crate) fn status_entries<'a>(vc: &'a Value, issuer: &'a str, label: &str) -> Vec<StatusEntry<'a>> {
    let entries: Vec<&Value> = match vc.get("credentialStatus") {
        None => return vec![],
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    };
    entries
        .into_iter()
        .map(|entry| {
            let purpose = entry.get("statusPurpose").and_then(Value::as_str).unwrap_or("unknown");
            StatusEntry { name: format!("{label}status:{purpose}"), purpose, entry, issuer }
        })
        .collect()
}

/// Checks every entry concurrently (one fetch per distinct list, within the verification's
/// fetch budget and deadline), reporting in entry order.
pub(crate) async fn check_statuses(entries: &[StatusEntry<'_>], resolver: &dyn Resolver, now: Timestamp, report: &mut Report) {
    let results = futures_util::future::join_all(entries.iter().map(|e| status_bit(e.entry, e.issuer, resolver, now))).await;
    for (e, result) in entries.iter().zip(results) {
        match result {
            Ok(false) => report.push(Check::pass(e.name.clone(), "not set")),
            Ok(true) => {
                let code = match e.purpose {
                    "revocation" => "revoked",
                    "suspension" => "suspended",
                    _ => "status_set",
                };
                report.push(Check::fail(e.name.clone(), code, format!("the credential is {code}")));
            }
            Err((code, detail)) => report.push(Check::fail(e.name.clone(), code, detail)),
        }
    }
}

type StatusResult = Result<bool, (&'static str, String)>;

fn unavailable(detail: impl Into<String>) -> (&'static str, String) {
    ("status_unavailable", detail.into())
}

async fn status_bit(entry: &Value, issuer: &str, resolver: &dyn Resolver, now: Timestamp) -> StatusResult {
    if entry.get("type").and_then(Value::as_str) != Some("BitstringStatusListEntry") {
        return Err(unavailable("unsupported credentialStatus type"));
    }
    let purpose = entry.get("statusPurpose").and_then(Value::as_str).ok_or_else(|| unavailable("statusPurpose missing"))?;
    let index: usize = entry
        .get("statusListIndex")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unavailable("statusListIndex must be a decimal string"))?;
    let url = entry.get("statusListCredential").and_then(Value::as_str).ok_or_else(|| unavailable("statusListCredential missing"))?;
    let list = resolver
        .fetch_status_list(url)
        .await
        .map_err(|e| (e.code("status_unavailable"), format!("could not fetch the status list: {e}")))?;
    let list: &Value = &list;
    if let Some(hit) = verified_lists::lookup(url, list, issuer, resolver, now).await {
        return hit.read(purpose, index, now).map_err(unavailable);
    }
    if !types(list).contains(&"BitstringStatusListCredential") {
        return Err(unavailable("status list is not a BitstringStatusListCredential"));
    }
    if issuer_id(list) != Some(issuer) {
        return Err(unavailable("status list has another issuer than the credential"));
    }
    let p = verify_proof(list, "assertionMethod", Some(ExpectedSigner::issuer(issuer)), resolver)
        .await
        .map_err(|c| unavailable(format!("status list proof: {}", c.detail)))?;
    if p.controller != issuer {
        return Err(unavailable("status list is not signed by its issuer"));
    }
    // Lists are re-signed on demand, so one may be a moment younger than the instant this
    // verification started; allow the usual clock skew on the list's own window.
    let mut window = Report::default();
    check_validity(list, now + STATUS_LIST_SKEW, &mut window, "");
    check_validity(list, now - STATUS_LIST_SKEW, &mut window, "");
    let from_ok = window.checks.iter().any(|c| c.check == "valid_from" && c.ok);
    let until_ok = window.checks.iter().any(|c| c.check == "valid_until" && c.ok);
    if !(from_ok && until_ok) {
        return Err(unavailable("status list credential is not valid now"));
    }
    let subject = list.get("credentialSubject").ok_or_else(|| unavailable("status list has no credentialSubject"))?;
    if subject.get("statusPurpose").and_then(Value::as_str) != Some(purpose) {
        return Err(unavailable("status list purpose does not match the entry"));
    }
    let encoded = subject.get("encodedList").and_then(Value::as_str).ok_or_else(|| unavailable("encodedList missing"))?;
    let bits = Bitstring::decode(encoded).map_err(|e| unavailable(e.to_string()))?;
    let bit = bits.get(index).ok_or_else(|| unavailable("statusListIndex is outside the list"));
    verified_lists::remember(url, list, issuer, purpose, bits, resolver, now).await;
    bit
}

/// Status lists whose proofs were already verified, so a verifier checking many credentials
/// against the same list does not verify its signature and inflate its bitstring each time
/// (a presentation carries two credentials with two lists each).
///
/// Freshness is not traded away: the list is still fetched on every check, and the cache is
/// consulted only when the fetched list carries the very `proofValue` verified before. Its
/// signing key must still be an `assertionMethod` of the issuer's DID document as resolved
/// now, with the same key bytes. What is used on a hit is the content that was verified
/// under that signature, never the fetched bytes.
///
/// Bounded in bytes ([`set_status_cache_bytes`], default [`DEFAULT_STATUS_CACHE_BYTES`]),
/// oldest entries evicted first, and no entry is used past [`MAX_AGE`]. Its size is the
/// `sigil_cache_bytes{cache="status_lists"}` gauge.
mod verified_lists {
    use std::collections::{HashMap, VecDeque};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use jiff::{SignedDuration, Timestamp};
    use serde_json::Value;

    use super::{Resolver, STATUS_LIST_SKEW, key_for, split_did_url};
    use crate::crypto::PublicKey;
    use crate::vc::status_list::Bitstring;

    /// An entry older than this is verified again.
    pub(super) const MAX_AGE: SignedDuration = SignedDuration::from_secs(300);
    /// Bookkeeping per entry beyond its bitstring (strings, key, map slot), in bytes.
    const OVERHEAD: usize = 512;

    pub(super) static BUDGET: AtomicUsize = AtomicUsize::new(super::DEFAULT_STATUS_CACHE_BYTES);

    pub(super) struct Verified {
        proof_value: String,
        issuer: String,
        method: String,
        key: PublicKey,
        purpose: String,
        valid_from: Option<Timestamp>,
        valid_until: Option<Timestamp>,
        bits: Bitstring,
        stored: Timestamp,
    }

    impl Verified {
        /// What the entry keeps, its URL included (stored twice: map key and order).
        fn bytes(&self, url: &str) -> usize {
            self.bits.as_bytes().len() + self.proof_value.len() + self.issuer.len() + self.method.len() + 2 * url.len() + OVERHEAD
        }

        pub(super) fn read(&self, purpose: &str, index: usize, now: Timestamp) -> Result<bool, String> {
            if self.purpose != purpose {
                return Err("status list purpose does not match the entry".into());
            }
            let from_ok = self.valid_from.is_none_or(|f| f <= now + STATUS_LIST_SKEW);
            let until_ok = self.valid_until.is_none_or(|u| now - STATUS_LIST_SKEW <= u);
            if !(from_ok && until_ok) {
                return Err("status list credential is not valid now".into());
            }
            self.bits.get(index).ok_or_else(|| "statusListIndex is outside the list".to_owned())
        }
    }

    #[derive(Default)]
    struct Cache {
        map: HashMap<String, Arc<Verified>>,
        order: VecDeque<String>,
        bytes: usize,
    }

    impl Cache {
        fn remove(&mut self, url: &str) {
            if let Some(old) = self.map.remove(url) {
                self.bytes -= old.bytes(url);
                self.order.retain(|u| u != url);
            }
        }

        fn insert(&mut self, url: String, v: Verified, budget: usize) {
            self.remove(&url);
            let size = v.bytes(&url);
            if size > budget {
                return;
            }
            while self.bytes + size > budget {
                let Some(oldest) = self.order.pop_front() else { break };
                if let Some(old) = self.map.remove(&oldest) {
                    self.bytes -= old.bytes(&oldest);
                }
            }
            self.bytes += size;
            self.order.push_back(url.clone());
            self.map.insert(url, Arc::new(v));
        }
    }

    fn cache() -> &'static Mutex<Cache> {
        static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
        CACHE.get_or_init(Default::default)
    }

    fn proof_field<'a>(list: &'a Value, k: &str) -> Option<&'a str> {
        list.get("proof").and_then(|p| p.get(k)).and_then(Value::as_str)
    }

    async fn current_key(resolver: &dyn Resolver, method: &str) -> Option<PublicKey> {
        let (did, _) = split_did_url(method)?;
        let doc = super::resolve_document(did, resolver).await.ok()?;
        key_for(&doc, method, "assertionMethod").ok()
    }

    pub(super) async fn lookup(url: &str, list: &Value, issuer: &str, resolver: &dyn Resolver, now: Timestamp) -> Option<Arc<Verified>> {
        let proof_value = proof_field(list, "proofValue")?;
        let hit = cache()
            .lock()
            .ok()?
            .map
            .get(url)
            .filter(|v| v.proof_value == proof_value && v.issuer == issuer && now.duration_since(v.stored) < MAX_AGE)
            .cloned()?;
        (current_key(resolver, &hit.method).await? == hit.key).then_some(hit)
    }

    pub(super) async fn remember(
        url: &str,
        list: &Value,
        issuer: &str,
        purpose: &str,
        bits: Bitstring,
        resolver: &dyn Resolver,
        now: Timestamp,
    ) {
        let (Some(proof_value), Some(method)) = (proof_field(list, "proofValue"), proof_field(list, "verificationMethod")) else {
            return;
        };
        let Some(key) = current_key(resolver, method).await else { return };
        let time = |k: &str| list.get(k).and_then(Value::as_str).and_then(|s| crate::vc::datamodel::parse_date_time_stamp(s).ok());
        let v = Verified {
            proof_value: proof_value.to_owned(),
            issuer: issuer.to_owned(),
            method: method.to_owned(),
            key,
            purpose: purpose.to_owned(),
            valid_from: time("validFrom"),
            valid_until: time("validUntil"),
            bits,
            stored: now,
        };
        if let Ok(mut c) = cache().lock() {
            c.insert(url.to_owned(), v, BUDGET.load(Ordering::Relaxed));
            metrics::gauge!("sigil_cache_bytes", "cache" => "status_lists").set(c.bytes as f64);
        }
    }

    #[cfg(test)]
    pub(super) fn bytes() -> usize {
        cache().lock().map(|c| c.bytes).unwrap_or(0)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn entry(kib: usize) -> Verified {
            Verified {
                proof_value: "z".into(),
                issuer: "did:key:x".into(),
                method: "did:key:x#x".into(),
                key: PublicKey([0; 32]),
                purpose: "revocation".into(),
                valid_from: None,
                valid_until: None,
                bits: Bitstring::zeros(kib * 8 * 1024),
                stored: Timestamp::UNIX_EPOCH,
            }
        }

        #[test]
        fn the_cache_stays_within_its_byte_budget() {
            let mut c = Cache::default();
            let budget = 100 * 1024;
            for i in 0..50 {
                c.insert(format!("https://x/{i}"), entry(16), budget);
                assert!(c.bytes <= budget, "{} > {budget}", c.bytes);
            }
            assert_eq!(c.map.len(), c.order.len());
            assert!(c.map.contains_key("https://x/49"), "the newest stays");
            assert!(!c.map.contains_key("https://x/0"), "the oldest went first");
            c.insert("https://x/big".into(), entry(200), budget);
            assert!(!c.map.contains_key("https://x/big"), "an entry above the whole budget is not kept");
            let _ = bytes();
        }
    }
}

#[cfg(test)]
#[path = "verify_failure_tests.rs"]
mod failure_tests;

/// Default byte budget of the verified status-list cache.
pub const DEFAULT_STATUS_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Sets the byte budget of the verified status-list cache (process-wide; `serve` sets it
/// from `--status-cache-bytes`).
pub fn set_status_cache_bytes(bytes: usize) {
    verified_lists::BUDGET.store(bytes, std::sync::atomic::Ordering::Relaxed);
}
