//! Verification of credentials (and, in `presentation`, of presentations): one
//! implementation behind `POST /v1/verify`, the VC-API routes, the `sigil::verify` library
//! API and the `sigil verify` CLI. DID documents and status lists come from a [`Resolver`]
//! passed in by the caller; this module does no I/O of its own.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::credential::{VC_V2, issuer_id, types};
use super::did::{did_key_document, key_for, split_did_url};
use super::proof::{self, ParsedProof, ProofError};
use super::status_list::Bitstring;

/// Clock skew tolerated on a status list credential's validity window.
const STATUS_LIST_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Where DID documents and status list credentials come from.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The DID document of `did` (did:web; did:key is resolved without calling this).
    /// Shared: a verification resolves its issuer up to six times, and a resolver may hand
    /// out its cached copy rather than a fresh tree each time.
    async fn resolve_did(&self, did: &str) -> Result<std::sync::Arc<Value>, String>;
    /// The status list credential at `url` (shared: a resolver may hand out its cached copy).
    async fn fetch_status_list(&self, url: &str) -> Result<std::sync::Arc<Value>, String>;
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`proof`, `valid_from`, `status:revocation`, …).
    pub check: String,
    pub ok: bool,
    /// Human-readable outcome.
    pub detail: String,
    /// Stable machine code when the check failed (`invalid_signature`, `expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

impl Check {
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { check: check.into(), ok: true, detail: detail.into(), code: None }
    }
    pub fn fail(check: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        Self { check: check.into(), ok: false, detail: detail.into(), code: Some(code) }
    }
}

/// The outcome of verifying one document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Verified when at least one check ran and none failed.
    pub fn verified(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// `code: detail` of every failed check.
    pub fn errors(&self) -> Vec<String> {
        self.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.code.unwrap_or("failed"), c.detail)).collect()
    }

    /// Codes of failed checks.
    pub fn codes(&self) -> Vec<&'static str> {
        self.checks.iter().filter_map(|c| if c.ok { None } else { c.code }).collect()
    }

    pub(crate) fn push(&mut self, c: Check) {
        self.checks.push(c);
    }
}

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

/// A verified proof: who signed it and its options.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The DID that controls the signing key.
    pub controller: String,
    pub proof: ParsedProof,
}

/// Verifies the single Data Integrity proof of `doc` for `purpose` (`assertionMethod` or
/// `authentication`): the key must be in that relationship of its resolved DID document.
pub async fn verify_proof(doc: &Value, purpose: &str, resolver: &dyn Resolver) -> Result<VerifiedProof, Check> {
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
    let did_doc = resolve_document(did, resolver).await?;
    let key = key_for(&did_doc, &vm, purpose).map_err(|e| Check::fail("proof", "wrong_key", format!("{vm}: {e}")))?;
    proof::verify_parsed_cached(&unsecured, &parsed, &key).map_err(|e| Check::fail("proof", "invalid_signature", e.to_string()))?;
    Ok(VerifiedProof { controller: did.to_owned(), proof: parsed })
}

/// The DID document of `did`: did:key documents are derived from the key itself, did:web
/// documents come from `resolver`; other methods are refused.
pub(crate) async fn resolve_document(did: &str, resolver: &dyn Resolver) -> Result<std::sync::Arc<Value>, Check> {
    if did.starts_with("did:key:") {
        return did_key_document(did)
            .map(|(_, d)| std::sync::Arc::new(d))
            .ok_or_else(|| Check::fail("proof", "unresolvable_did", "did:key is not an Ed25519 Multikey"));
    }
    if !did.starts_with("did:web:") {
        return Err(Check::fail("proof", "unsupported_did_method", format!("{did}: only did:web and did:key are supported")));
    }
    resolver.resolve_did(did).await.map_err(|e| Check::fail("proof", "unresolvable_did", format!("cannot resolve {did}: {e}")))
}

fn parse_time(v: Option<&Value>) -> Result<Option<Timestamp>, ()> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => s.parse::<Timestamp>().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// Checks `validFrom`/`validUntil` against `now`.
pub fn check_validity(doc: &Value, now: Timestamp, report: &mut Report, label: &str) {
    match parse_time(doc.get("validFrom")) {
        Ok(Some(f)) if now < f => report.push(Check::fail(format!("{label}valid_from"), "not_yet_valid", format!("valid from {f}"))),
        Ok(_) => report.push(Check::pass(format!("{label}valid_from"), "in effect")),
        Err(()) => report.push(Check::fail(format!("{label}valid_from"), "malformed_credential", "validFrom is not an RFC 3339 time")),
    }
    match parse_time(doc.get("validUntil")) {
        Ok(Some(u)) if now >= u => report.push(Check::fail(format!("{label}valid_until"), "expired", format!("expired at {u}"))),
        Ok(_) => report.push(Check::pass(format!("{label}valid_until"), "not expired")),
        Err(()) => report.push(Check::fail(format!("{label}valid_until"), "malformed_credential", "validUntil is not an RFC 3339 time")),
    }
}

fn structure(vc: &Value) -> Result<(), String> {
    let ctx0 = vc.get("@context").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str);
    if ctx0 != Some(VC_V2) {
        return Err(format!("@context must start with {VC_V2}"));
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

/// Verifies a credential: structure, proof by the issuer's assertion key, validity window
/// and (optionally) every Bitstring Status List entry.
pub async fn verify_credential(vc: &Value, resolver: &dyn Resolver, now: Timestamp, opts: CredentialOptions, label: &str) -> Report {
    verify_credential_with(vc, IssuerProof::Embedded, resolver, now, opts, label).await
}

/// [`verify_credential`] with the issuer signature established by `proof`.
pub async fn verify_credential_with(
    vc: &Value,
    proof: IssuerProof,
    resolver: &dyn Resolver,
    now: Timestamp,
    opts: CredentialOptions,
    label: &str,
) -> Report {
    let mut report = Report::default();
    if let Err(e) = structure(vc) {
        report.push(Check::fail(format!("{label}structure"), "malformed_credential", e));
        return report;
    }
    report.push(Check::pass(format!("{label}structure"), "VC 2.0"));
    let issuer = issuer_id(vc).unwrap_or_default().to_owned();
    let signer = match proof {
        IssuerProof::Embedded => verify_proof(vc, "assertionMethod", resolver).await.map(|p| p.controller),
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
    check_validity(vc, now, &mut report, label);
    if opts.check_status {
        check_status(vc, &issuer, resolver, now, &mut report, label).await;
    }
    report
}

async fn check_status(vc: &Value, issuer: &str, resolver: &dyn Resolver, now: Timestamp, report: &mut Report, label: &str) {
    let entries: Vec<&Value> = match vc.get("credentialStatus") {
        None => return,
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    };
    for e in entries {
        let purpose = e.get("statusPurpose").and_then(Value::as_str).unwrap_or("unknown");
        let name = format!("{label}status:{purpose}");
        match status_bit(e, issuer, resolver, now).await {
            Ok(false) => report.push(Check::pass(name, "not set")),
            Ok(true) => {
                let code = match purpose {
                    "revocation" => "revoked",
                    "suspension" => "suspended",
                    _ => "status_set",
                };
                report.push(Check::fail(name, code, format!("the credential is {code}")));
            }
            Err(detail) => report.push(Check::fail(name, "status_unavailable", detail)),
        }
    }
}

async fn status_bit(entry: &Value, issuer: &str, resolver: &dyn Resolver, now: Timestamp) -> Result<bool, String> {
    if entry.get("type").and_then(Value::as_str) != Some("BitstringStatusListEntry") {
        return Err("unsupported credentialStatus type".into());
    }
    let purpose = entry.get("statusPurpose").and_then(Value::as_str).ok_or("statusPurpose missing")?;
    let index: usize = entry
        .get("statusListIndex")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("statusListIndex must be a decimal string")?;
    let url = entry.get("statusListCredential").and_then(Value::as_str).ok_or("statusListCredential missing")?;
    let list = resolver.fetch_status_list(url).await.map_err(|e| format!("cannot fetch {url}: {e}"))?;
    let list: &Value = &list;
    if let Some(hit) = verified_lists::lookup(url, list, issuer, resolver).await {
        return hit.read(purpose, index, now);
    }
    if !types(list).contains(&"BitstringStatusListCredential") {
        return Err("status list is not a BitstringStatusListCredential".into());
    }
    if issuer_id(list) != Some(issuer) {
        return Err("status list has another issuer than the credential".into());
    }
    let p = verify_proof(list, "assertionMethod", resolver).await.map_err(|c| format!("status list proof: {}", c.detail))?;
    if p.controller != issuer {
        return Err("status list is not signed by its issuer".into());
    }
    // Lists are re-signed on demand, so one may be a moment younger than the instant this
    // verification started; allow the usual clock skew on the list's own window.
    let mut window = Report::default();
    check_validity(list, now + STATUS_LIST_SKEW, &mut window, "");
    check_validity(list, now - STATUS_LIST_SKEW, &mut window, "");
    let from_ok = window.checks.iter().any(|c| c.check == "valid_from" && c.ok);
    let until_ok = window.checks.iter().any(|c| c.check == "valid_until" && c.ok);
    if !(from_ok && until_ok) {
        return Err("status list credential is not valid now".into());
    }
    let subject = list.get("credentialSubject").ok_or("status list has no credentialSubject")?;
    if subject.get("statusPurpose").and_then(Value::as_str) != Some(purpose) {
        return Err("status list purpose does not match the entry".into());
    }
    let encoded = subject.get("encodedList").and_then(Value::as_str).ok_or("encodedList missing")?;
    let bits = Bitstring::decode(encoded).map_err(|e| e.to_string())?;
    let bit = bits.get(index).ok_or_else(|| "statusListIndex is outside the list".to_owned());
    verified_lists::remember(url, list, issuer, purpose, bits, resolver).await;
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
mod verified_lists {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use jiff::Timestamp;
    use serde_json::Value;

    use super::{Resolver, STATUS_LIST_SKEW, key_for, split_did_url};
    use crate::crypto::PublicKey;
    use crate::vc::status_list::Bitstring;

    const MAX_ENTRIES: usize = 4096;

    pub(super) struct Verified {
        proof_value: String,
        issuer: String,
        method: String,
        key: PublicKey,
        purpose: String,
        valid_from: Option<Timestamp>,
        valid_until: Option<Timestamp>,
        bits: Bitstring,
    }

    impl Verified {
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

    fn cache() -> &'static Mutex<HashMap<String, Arc<Verified>>> {
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<Verified>>>> = OnceLock::new();
        CACHE.get_or_init(Default::default)
    }

    fn proof_field<'a>(list: &'a Value, k: &str) -> Option<&'a str> {
        list.get("proof").and_then(|p| p.get(k)).and_then(Value::as_str)
    }

    async fn current_key(resolver: &dyn Resolver, method: &str) -> Option<PublicKey> {
        let (did, _) = split_did_url(method)?;
        let doc = resolver.resolve_did(did).await.ok()?;
        key_for(&doc, method, "assertionMethod").ok()
    }

    pub(super) async fn lookup(url: &str, list: &Value, issuer: &str, resolver: &dyn Resolver) -> Option<Arc<Verified>> {
        let proof_value = proof_field(list, "proofValue")?;
        let hit = cache().lock().ok()?.get(url).filter(|v| v.proof_value == proof_value && v.issuer == issuer).cloned()?;
        (current_key(resolver, &hit.method).await? == hit.key).then_some(hit)
    }

    pub(super) async fn remember(url: &str, list: &Value, issuer: &str, purpose: &str, bits: Bitstring, resolver: &dyn Resolver) {
        let (Some(proof_value), Some(method)) = (proof_field(list, "proofValue"), proof_field(list, "verificationMethod")) else {
            return;
        };
        let Some(key) = current_key(resolver, method).await else { return };
        let time = |k: &str| list.get(k).and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok());
        let v = Verified {
            proof_value: proof_value.to_owned(),
            issuer: issuer.to_owned(),
            method: method.to_owned(),
            key,
            purpose: purpose.to_owned(),
            valid_from: time("validFrom"),
            valid_until: time("validUntil"),
            bits,
        };
        if let Ok(mut c) = cache().lock() {
            if c.len() >= MAX_ENTRIES {
                c.clear();
            }
            c.insert(url.to_owned(), Arc::new(v));
        }
    }
}
