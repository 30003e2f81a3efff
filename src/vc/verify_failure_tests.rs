//! Sigil's own verifier when what it must fetch fails: a status list that is missing, slow,
//! oversized, signed by the wrong key, of the wrong purpose or too short, and an issuer or
//! holder DID that cannot be resolved (unavailable, refused by egress, slower than the
//! deadline). Every case must fail with its own check code, never panic, never say
//! verified, and never take longer than [`FETCH_DEADLINE`].
//!
//! The inputs are real: credentials, presentations and status lists built and signed by
//! Sigil's own code (`credential`, `status_list`, `proof::sign`, `crypto::Signer`). DID
//! documents and lists reach the verifier through its one injection point, a [`Resolver`],
//! here one that serves them from a map. The tests run on tokio's paused clock, so the
//! slow cases take no wall time and the deadline is asserted exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{FETCH_DEADLINE, Report, ResolveError, Resolver, verify_credential};
use crate::clock::rfc3339;
use crate::crypto::Signer;
use crate::policy::{Authority, Principal, PrincipalKind};
use crate::vc::credential::{self, Envelope, StatusEntries, VC_V2};
use crate::vc::did::{self, Method, Purpose};
use crate::vc::presentation::{PresentationOptions, PresentationReport, verify_presentation};
use crate::vc::proof::{self, ProofOptions};
use crate::vc::status_list::{self, Bitstring, LIST_SIZE, MAX_DECODED, MAX_ENCODED};
use crate::vc::trust::TrustPolicy;

const HOST: &str = "verify-tests.example";
const ISSUER: &str = "did:web:verify-tests.example:tenants:acme";
const HOLDER: &str = "did:web:verify-tests.example:tenants:acme:agents:k3v9x2mq7wz4";
const INDEX: u32 = 7;

fn now() -> Timestamp {
    "2026-06-10T10:00:00Z".parse().unwrap()
}

fn at(offset_secs: i64) -> String {
    rfc3339(now() + SignedDuration::from_secs(offset_secs))
}

/// What the test resolver does when asked for a document.
#[derive(Clone)]
enum Serve {
    Doc(Arc<Value>),
    Fail(ResolveError),
    /// Waits (on the tokio clock), then answers.
    Slow(Duration, Box<Serve>),
}

fn slow(secs: u64, then: Serve) -> Serve {
    Serve::Slow(Duration::from_secs(secs), Box::new(then))
}

/// Serves DID documents and status lists from maps; anything not in them is
/// [`ResolveError::Unavailable`], as a 404 is. Records what it was asked for.
struct MapResolver {
    dids: HashMap<String, Serve>,
    lists: HashMap<String, Serve>,
    asked: Mutex<Vec<String>>,
}

impl MapResolver {
    async fn answer(&self, map: &HashMap<String, Serve>, key: &str) -> Result<Arc<Value>, ResolveError> {
        self.asked.lock().unwrap().push(key.to_owned());
        let mut serve = map.get(key).cloned().unwrap_or(Serve::Fail(ResolveError::Unavailable));
        loop {
            match serve {
                Serve::Doc(d) => return Ok(d),
                Serve::Fail(e) => return Err(e),
                Serve::Slow(d, then) => {
                    tokio::time::sleep(d).await;
                    serve = *then;
                }
            }
        }
    }
}

#[async_trait]
impl Resolver for MapResolver {
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, ResolveError> {
        self.answer(&self.dids, did).await
    }

    async fn fetch_status_list(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        self.answer(&self.lists, url).await
    }
}

/// One run of the verifier: its report, what it fetched (in order), and how long it took
/// on the tokio clock.
struct Run<R> {
    report: R,
    asked: Vec<String>,
    elapsed: Duration,
}

/// A tenant issuer, one of its agents as holder, the agent's delegation with two status
/// entries, and both lists: everything served and valid until a test breaks one part.
struct World {
    issuer: Signer,
    /// The issuer's previous key: still listed in its DID document, no longer current.
    retired: Signer,
    holder: Signer,
    revocation_url: String,
    suspension_url: String,
    revocation_entry: Value,
    suspension_entry: Value,
    dids: HashMap<String, Serve>,
    lists: HashMap<String, Serve>,
}

impl World {
    fn new() -> Self {
        // Verified status lists are remembered process-wide by URL: each world has its own.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (issuer, retired, holder) = (Signer::generate(), Signer::generate(), Signer::generate());
        let revocation_url = format!("https://{HOST}/tenants/acme/status/revocation/{n}");
        let suspension_url = format!("https://{HOST}/tenants/acme/status/suspension/{n}");
        let issuer_doc = did::document(
            ISSUER,
            &[
                Method { fragment: "issuer-0".into(), public: retired.public(), current: false, purpose: Purpose::Sign },
                Method { fragment: "issuer-1".into(), public: issuer.public(), current: true, purpose: Purpose::Sign },
            ],
            None,
        );
        let holder_doc = did::document(
            HOLDER,
            &[Method { fragment: "key-1".into(), public: holder.public(), current: true, purpose: Purpose::Sign }],
            None,
        );
        let mut w = Self {
            revocation_entry: status_list::entry(&revocation_url, "revocation", INDEX),
            suspension_entry: status_list::entry(&suspension_url, "suspension", INDEX),
            issuer,
            retired,
            holder,
            revocation_url,
            suspension_url,
            dids: HashMap::from([
                (ISSUER.to_owned(), Serve::Doc(Arc::new(issuer_doc))),
                (HOLDER.to_owned(), Serve::Doc(Arc::new(holder_doc))),
            ]),
            lists: HashMap::new(),
        };
        let (r, s) = (w.revocation_url.clone(), w.suspension_url.clone());
        w.serve_list(&r, w.issuer_list(&r, "revocation", &Bitstring::zeros(LIST_SIZE)));
        w.serve_list(&s, w.issuer_list(&s, "suspension", &Bitstring::zeros(LIST_SIZE)));
        w
    }

    fn serve_list(&mut self, url: &str, list: Value) {
        self.lists.insert(url.to_owned(), Serve::Doc(Arc::new(list)));
    }

    /// The unsigned list credential as Sigil's status service builds it.
    fn unsigned_list(url: &str, issuer: &str, purpose: &str, bits: &Bitstring) -> Value {
        status_list::credential(url, issuer, purpose, bits, &at(-60), &at(3600))
    }

    /// `doc` signed by `signer` as `vm`, for `purpose`.
    fn sign(doc: Value, signer: &Signer, vm: &str, purpose: &'static str) -> Value {
        let opts = ProofOptions {
            cryptosuite: Default::default(),
            verification_method: vm.to_owned(),
            proof_purpose: purpose,
            created: at(-60),
            expires: None,
            challenge: None,
            domain: None,
        };
        proof::sign(doc.as_object().cloned().unwrap(), &opts, signer).unwrap()
    }

    /// A list signed as Sigil signs it: by the issuer's current key, for assertionMethod.
    fn issuer_list(&self, url: &str, purpose: &str, bits: &Bitstring) -> Value {
        Self::sign(Self::unsigned_list(url, ISSUER, purpose, bits), &self.issuer, &format!("{ISSUER}#issuer-1"), "assertionMethod")
    }

    fn credential(&self) -> Value {
        let authority = Authority::new(&["refunds:create".into()], &["orders/*".into()], Default::default(), None).unwrap();
        let principal = Principal::new("alice@example.com".into(), PrincipalKind::Person, None).unwrap();
        let ctx = credential::context_url(&format!("https://{HOST}"));
        let (valid_from, valid_until) = (at(-3600), at(86_400));
        let env = Envelope {
            id: "urn:uuid:6f1c1b7e-0000-4000-8000-000000000001",
            issuer: ISSUER,
            context_url: &ctx,
            valid_from: &valid_from,
            valid_until: Some(&valid_until),
            status: StatusEntries { revocation: self.revocation_entry.clone(), suspension: self.suspension_entry.clone() },
        };
        let vc = credential::delegation(&env, HOLDER, &principal, &authority).unwrap();
        Self::sign(Value::Object(vc), &self.issuer, &format!("{ISSUER}#issuer-1"), "assertionMethod")
    }

    fn presentation(&self) -> Value {
        let vp = json!({
            "@context": [VC_V2, credential::context_url(&format!("https://{HOST}"))],
            "type": ["VerifiablePresentation", "ActionPresentation"],
            "holder": HOLDER,
            "action": {"name": "refunds:create", "resource": "orders/1"},
            "verifiableCredential": [self.credential()],
        });
        let opts = ProofOptions {
            cryptosuite: Default::default(),
            verification_method: format!("{HOLDER}#key-1"),
            proof_purpose: "authentication",
            created: at(0),
            expires: Some(at(120)),
            challenge: Some("c-1".into()),
            domain: Some("shop.example".into()),
        };
        proof::sign(vp.as_object().cloned().unwrap(), &opts, &self.holder).unwrap()
    }

    fn resolver(&self) -> MapResolver {
        MapResolver { dids: self.dids.clone(), lists: self.lists.clone(), asked: Mutex::default() }
    }

    fn trust() -> TrustPolicy {
        TrustPolicy::none().trust_tenants_of(HOST)
    }

    async fn verify_presentation(&self) -> Run<PresentationReport> {
        let vp = self.presentation();
        let opts = PresentationOptions {
            challenge: Some("c-1".into()),
            domain: Some("shop.example".into()),
            ..PresentationOptions::new(Self::trust())
        };
        let resolver = self.resolver();
        let start = tokio::time::Instant::now();
        let report = verify_presentation(&vp, &opts, &resolver, now()).await;
        finish(report, resolver, start)
    }

    async fn verify_credential(&self) -> Run<Report> {
        let vc = self.credential();
        let resolver = self.resolver();
        let start = tokio::time::Instant::now();
        let report = verify_credential(&vc, &resolver, now(), Default::default(), &Self::trust()).await;
        finish(report, resolver, start)
    }
}

fn finish<R>(report: R, resolver: MapResolver, start: tokio::time::Instant) -> Run<R> {
    let elapsed = start.elapsed();
    let asked = resolver.asked.into_inner().unwrap();
    // One verification asks for each document once, however many checks need it, and
    // a document that failed is not asked for again.
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), asked.len(), "a document was fetched twice: {asked:?}");
    assert!(elapsed <= FETCH_DEADLINE, "the verification took {elapsed:?}, beyond the {FETCH_DEADLINE:?} deadline");
    Run { report, asked, elapsed }
}

/// The one failed check of `r` named `check`: its code and detail.
fn failure<'a>(r: &'a Report, check: &str) -> (&'static str, &'a str) {
    let c = r.checks.iter().find(|c| c.check == check).unwrap_or_else(|| panic!("no check {check}: {:?}", r.checks));
    assert!(!c.ok, "{check} passed: {c:?}");
    (c.code.unwrap(), c.detail.as_str())
}

/// Both of Sigil's verifiers (credential and presentation) fail `check` of the revocation
/// entry with `code` and `detail`, and nothing else fails.
async fn assert_revocation_status_fails(w: &World, code: &str, detail: &str) {
    let vc = w.verify_credential().await;
    assert!(!vc.report.verified(), "a credential verified: {:?}", vc.report.checks);
    assert_eq!(vc.report.codes(), vec![code], "{:?}", vc.report.errors());
    assert_eq!(failure(&vc.report, "status:revocation"), (code, detail));

    let vp = w.verify_presentation().await;
    assert!(!vp.report.verified(), "a presentation verified: {:?}", vp.report.report.checks);
    assert_eq!(vp.report.report.codes(), vec![code], "{:?}", vp.report.report.errors());
    assert_eq!(failure(&vp.report.report, "credential[0].status:revocation"), (code, detail));
}

// ---- The fixture verifies: every failure below is the broken part's doing. ----

#[tokio::test(start_paused = true)]
async fn the_untouched_world_verifies_and_a_set_bit_is_reported() {
    let mut w = World::new();
    let vp = w.verify_presentation().await;
    assert!(vp.report.verified(), "{:?}", vp.report.report.errors());
    let mut asked = vp.asked.clone();
    asked[2..].sort();
    let mut lists = [w.revocation_url.clone(), w.suspension_url.clone()];
    lists.sort();
    assert_eq!(asked, [ISSUER.to_owned(), HOLDER.to_owned(), lists[0].clone(), lists[1].clone()], "issuer, then holder, then lists");
    assert_eq!(vp.elapsed, Duration::ZERO);
    assert!(w.verify_credential().await.report.verified());

    let mut bits = Bitstring::zeros(LIST_SIZE);
    bits.set(INDEX as usize, true);
    let url = w.revocation_url.clone();
    w.serve_list(&url, w.issuer_list(&url, "revocation", &bits));
    assert_revocation_status_fails(&w, "revoked", "the credential is revoked").await;
}

// ---- 1. Status lists ----

#[tokio::test(start_paused = true)]
async fn a_missing_status_list_fails_status_unavailable() {
    let mut w = World::new();
    w.lists.remove(&w.revocation_url);
    assert_revocation_status_fails(&w, "status_unavailable", "could not fetch the status list: could not be fetched").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_refused_by_egress_fails_egress_refused() {
    let mut w = World::new();
    w.lists.insert(w.revocation_url.clone(), Serve::Fail(ResolveError::Refused));
    assert_revocation_status_fails(&w, "egress_refused", "could not fetch the status list: refused by the egress policy").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_slower_than_the_deadline_fails_fetch_limit_at_the_deadline() {
    let mut w = World::new();
    let good = w.lists[&w.revocation_url].clone();
    w.lists.insert(w.revocation_url.clone(), slow(3600, good));
    assert_revocation_status_fails(&w, "fetch_limit", "could not fetch the status list: the verification's fetch budget is spent").await;
    let vp = w.verify_presentation().await;
    assert_eq!(vp.elapsed, FETCH_DEADLINE, "waited for the deadline, and not a moment longer");
}

#[tokio::test(start_paused = true)]
async fn an_oversized_status_list_fails_and_the_largest_allowed_verifies() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    // The largest list allowed: 1 MiB of bits.
    w.serve_list(&url, w.issuer_list(&url, "revocation", &Bitstring::zeros(MAX_DECODED * 8)));
    assert!(w.verify_presentation().await.report.verified());
    // One byte more inflates past the cap (a zip bomb is this, larger).
    let w = {
        let mut w = World::new();
        let url = w.revocation_url.clone();
        w.serve_list(&url, w.issuer_list(&url, "revocation", &Bitstring::zeros((MAX_DECODED + 1) * 8)));
        w
    };
    assert_revocation_status_fails(&w, "status_unavailable", "status list is larger than allowed").await;
    // An encodedList longer than any list allowed is refused before it is decoded.
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let mut doc = World::unsigned_list(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE));
    doc["credentialSubject"]["encodedList"] = Value::String(format!("u{}", "A".repeat(MAX_ENCODED)));
    w.serve_list(&url, World::sign(doc, &w.issuer, &format!("{ISSUER}#issuer-1"), "assertionMethod"));
    assert_revocation_status_fails(&w, "status_unavailable", "status list is larger than allowed").await;
}

#[tokio::test(start_paused = true)]
async fn a_revoked_list_edited_after_signing_fails_status_unavailable() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let mut revoked = Bitstring::zeros(LIST_SIZE);
    revoked.set(INDEX as usize, true);
    let mut list = w.issuer_list(&url, "revocation", &revoked);
    // Someone between the issuer and the verifier clears the bit, keeping the proof.
    list["credentialSubject"]["encodedList"] = Value::String(Bitstring::zeros(LIST_SIZE).encode());
    w.serve_list(&url, list);
    assert_revocation_status_fails(&w, "status_unavailable", "status list proof: signature does not verify").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_signed_by_a_key_not_in_the_issuers_document_fails() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let forger = Signer::generate();
    let doc = World::unsigned_list(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE));
    w.serve_list(&url, World::sign(doc, &forger, &format!("{ISSUER}#issuer-1"), "assertionMethod"));
    assert_revocation_status_fails(&w, "status_unavailable", "status list proof: signature does not verify").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_signed_by_the_issuers_retired_key_fails() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let doc = World::unsigned_list(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE));
    w.serve_list(&url, World::sign(doc, &w.retired, &format!("{ISSUER}#issuer-0"), "assertionMethod"));
    let detail = format!("status list proof: {ISSUER}#issuer-0: key is not authorized for this proof purpose");
    assert_revocation_status_fails(&w, "status_unavailable", &detail).await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_signed_by_the_holder_fails() {
    // An agent's key verifies under its own DID; it must not be able to vouch for its
    // own status.
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let doc = World::unsigned_list(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE));
    w.serve_list(&url, World::sign(doc, &w.holder, &format!("{HOLDER}#key-1"), "assertionMethod"));
    let detail = format!("status list proof: signed by {HOLDER}, not by {ISSUER}");
    assert_revocation_status_fails(&w, "status_unavailable", &detail).await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_of_another_issuer_fails() {
    // Validly signed, by someone else, about their own list.
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let other = Signer::generate();
    let other_did = format!("did:key:{}", crate::vc::multikey::encode(&other.public()));
    let doc = World::unsigned_list(&url, &other_did, "revocation", &Bitstring::zeros(LIST_SIZE));
    let vm = format!("{other_did}#{}", crate::vc::multikey::encode(&other.public()));
    w.serve_list(&url, World::sign(doc, &other, &vm, "assertionMethod"));
    assert_revocation_status_fails(&w, "status_unavailable", "status list has another issuer than the credential").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_signed_for_authentication_fails() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let doc = World::unsigned_list(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE));
    w.serve_list(&url, World::sign(doc, &w.issuer, &format!("{ISSUER}#issuer-1"), "authentication"));
    assert_revocation_status_fails(&w, "status_unavailable", "status list proof: proofPurpose must be assertionMethod").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_of_the_wrong_purpose_fails() {
    // The revocation entry names the (valid, all-zero) suspension list.
    let mut w = World::new();
    w.revocation_entry["statusListCredential"] = Value::String(w.suspension_url.clone());
    assert_revocation_status_fails(&w, "status_unavailable", "status list purpose does not match the entry").await;
}

#[tokio::test(start_paused = true)]
async fn a_remembered_status_list_of_the_wrong_purpose_fails() {
    // The same, once the suspension list has been verified and remembered: the purpose is
    // checked again on the remembered list.
    let mut w = World::new();
    assert!(w.verify_presentation().await.report.verified());
    w.revocation_entry["statusListCredential"] = Value::String(w.suspension_url.clone());
    assert_revocation_status_fails(&w, "status_unavailable", "status list purpose does not match the entry").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_shorter_than_the_minimum_fails() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    // Long enough for the entry's index, short of the specification's minimum.
    w.serve_list(&url, w.issuer_list(&url, "revocation", &Bitstring::zeros(1024)));
    assert_revocation_status_fails(&w, "status_unavailable", "status list is shorter than 131072 entries").await;
}

#[tokio::test(start_paused = true)]
async fn a_status_list_too_short_for_the_entrys_index_fails() {
    let mut w = World::new();
    w.revocation_entry = status_list::entry(&w.revocation_url, "revocation", LIST_SIZE as u32);
    assert_revocation_status_fails(&w, "status_unavailable", "statusListIndex is outside the list").await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_status_list_fails() {
    let mut w = World::new();
    let url = w.revocation_url.clone();
    let doc = status_list::credential(&url, ISSUER, "revocation", &Bitstring::zeros(LIST_SIZE), &at(-7200), &at(-3600));
    w.serve_list(&url, World::sign(doc, &w.issuer, &format!("{ISSUER}#issuer-1"), "assertionMethod"));
    assert_revocation_status_fails(&w, "status_unavailable", "status list credential is not valid now").await;
}

// ---- 2. DID resolution ----

/// The presentation fails with exactly `codes`, the first being check `check`'s with
/// `detail`, after fetching exactly `asked`.
fn assert_vp(run: &Run<PresentationReport>, codes: &[&str], check: &str, detail: &str, asked: &[&str]) {
    let r = &run.report.report;
    assert!(!run.report.verified(), "verified: {:?}", r.checks);
    assert_eq!(r.codes(), codes, "{:?}", r.errors());
    assert_eq!(failure(r, check), (codes[0], detail));
    assert_eq!(run.asked, asked, "fetched");
}

// A presentation whose holder proof could not be checked reports nothing about its
// challenge, domain and expiry: they are read from inside that proof.
const HOLDER_UNCHECKED: [&str; 0] = [];

#[tokio::test(start_paused = true)]
async fn an_unavailable_issuer_did_fails_unresolvable_did_and_nothing_else_is_fetched() {
    let mut w = World::new();
    w.dids.remove(ISSUER);
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {ISSUER}: could not be fetched");
    assert_vp(&run, &["unresolvable_did", "proof_not_checked"], "credential[0].proof", &detail, &[ISSUER]);
    let vc = w.verify_credential().await;
    assert!(!vc.report.verified());
    assert_eq!(vc.report.codes(), ["unresolvable_did"]);
    assert_eq!(failure(&vc.report, "proof"), ("unresolvable_did", detail.as_str()));
    assert_eq!(vc.asked, [ISSUER], "no status list for a credential whose proof failed");
}

#[tokio::test(start_paused = true)]
async fn an_issuer_did_refused_by_egress_fails_egress_refused() {
    let mut w = World::new();
    w.dids.insert(ISSUER.into(), Serve::Fail(ResolveError::Refused));
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {ISSUER}: refused by the egress policy");
    assert_vp(&run, &["egress_refused", "proof_not_checked"], "credential[0].proof", &detail, &[ISSUER]);
    let vc = w.verify_credential().await;
    assert_eq!(vc.report.codes(), ["egress_refused"]);
}

#[tokio::test(start_paused = true)]
async fn an_issuer_did_slower_than_the_deadline_fails_fetch_limit_at_the_deadline() {
    let mut w = World::new();
    let good = w.dids[ISSUER].clone();
    w.dids.insert(ISSUER.into(), slow(3600, good));
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {ISSUER}: the verification's fetch budget is spent");
    assert_vp(&run, &["fetch_limit", "proof_not_checked"], "credential[0].proof", &detail, &[ISSUER]);
    assert_eq!(run.elapsed, FETCH_DEADLINE);
    let vc = w.verify_credential().await;
    assert_eq!(vc.report.codes(), ["fetch_limit"]);
    assert_eq!(vc.elapsed, FETCH_DEADLINE);
}

#[tokio::test(start_paused = true)]
async fn an_issuer_did_answered_with_another_dids_document_fails_wrong_key() {
    let mut w = World::new();
    let other = "did:web:evil.test";
    let doc = did::document(
        other,
        &[Method { fragment: "issuer-1".into(), public: w.issuer.public(), current: true, purpose: Purpose::Sign }],
        None,
    );
    w.dids.insert(ISSUER.into(), Serve::Doc(Arc::new(doc)));
    let run = w.verify_presentation().await;
    let detail = format!("{ISSUER}#issuer-1: verification method does not belong to the resolved DID");
    assert_vp(&run, &["wrong_key", "proof_not_checked"], "credential[0].proof", &detail, &[ISSUER]);
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_holder_did_fails_unresolvable_did_and_no_list_is_fetched() {
    let mut w = World::new();
    w.dids.remove(HOLDER);
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {HOLDER}: could not be fetched");
    let codes = [&["unresolvable_did"][..], &HOLDER_UNCHECKED].concat();
    assert_vp(&run, &codes, "proof", &detail, &[ISSUER, HOLDER]);
}

#[tokio::test(start_paused = true)]
async fn a_holder_did_refused_by_egress_fails_egress_refused() {
    let mut w = World::new();
    w.dids.insert(HOLDER.into(), Serve::Fail(ResolveError::Refused));
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {HOLDER}: refused by the egress policy");
    let codes = [&["egress_refused"][..], &HOLDER_UNCHECKED].concat();
    assert_vp(&run, &codes, "proof", &detail, &[ISSUER, HOLDER]);
}

#[tokio::test(start_paused = true)]
async fn a_holder_did_slower_than_the_deadline_fails_fetch_limit_at_the_deadline() {
    let mut w = World::new();
    let good = w.dids[HOLDER].clone();
    w.dids.insert(HOLDER.into(), slow(3600, good));
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {HOLDER}: the verification's fetch budget is spent");
    let codes = [&["fetch_limit"][..], &HOLDER_UNCHECKED].concat();
    assert_vp(&run, &codes, "proof", &detail, &[ISSUER, HOLDER]);
    assert_eq!(run.elapsed, FETCH_DEADLINE);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_one_for_the_whole_verification() {
    // Each DID alone is within the deadline; together they are not.
    let mut w = World::new();
    for did in [ISSUER, HOLDER] {
        let good = w.dids[did].clone();
        w.dids.insert(did.into(), slow(6, good));
    }
    let run = w.verify_presentation().await;
    let detail = format!("could not resolve {HOLDER}: the verification's fetch budget is spent");
    let codes = [&["fetch_limit"][..], &HOLDER_UNCHECKED].concat();
    assert_vp(&run, &codes, "proof", &detail, &[ISSUER, HOLDER]);
    assert_eq!(run.elapsed, FETCH_DEADLINE);
}

#[tokio::test(start_paused = true)]
async fn slow_fetches_within_the_deadline_verify() {
    let mut w = World::new();
    for did in [ISSUER, HOLDER] {
        let good = w.dids[did].clone();
        w.dids.insert(did.into(), slow(4, good));
    }
    for url in [w.revocation_url.clone(), w.suspension_url.clone()] {
        let good = w.lists[&url].clone();
        w.lists.insert(url, slow(1, good));
    }
    let run = w.verify_presentation().await;
    assert!(run.report.verified(), "{:?}", run.report.report.errors());
    // Sequential DIDs (4 s + 4 s), then both lists together (1 s).
    assert_eq!(run.elapsed, Duration::from_secs(9));
}
