//! Verification of action-bound presentations, `ldp_vp` (Data Integrity) and `jwt_vp`
//! (VC-JOSE-COSE): issuer trust, the holder's proof, challenge and domain, expiry, every
//! enclosed credential (issuer, validity, status, subject = holder), and that a presented
//! delegation covers the action inside the presentation (the same policy code that decided
//! to sign). The W3C VC-API route verifies ordinary VC 2.0 presentations with the same code
//! under the [`Profile::Generic`] rules: holder binding as VC Data Model 2.0 §4.13 states
//! it, challenge and domain as the request asks, no action.
//!
//! Must never: say verified without a trusted issuer ([`PresentationOptions::trust`] has
//! no default), or fetch anything for a presentation that already failed a check needing
//! no I/O.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::credential::{VC_V2, issuer_id, subject_ids, types};
use super::did::{key_for, split_did_url};
use super::jose::{self, VC_JWT_DATA_URL};
use super::trust::TrustPolicy;
use super::verify::{
    Check, ExpectedSigner, IssuerProof, Report, Resolver, TrustMode, budgeted, check_statuses, credential_checks, proof_not_checked,
    resolve_document, status_entries, trust_check, verify_proof,
};
use crate::policy::{self, ActionRequest, Authority, Grant};

/// Which rules a presentation is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Sigil's own (`/v1/verify`, the library, the CLI): a holder that is every
    /// credential's subject, a proof that expires, challenge and domain in the proof, and
    /// an action covered by a presented delegation.
    ActionBound,
    /// An ordinary VC 2.0 presentation (the W3C VC-API route): `holder` optional, and when
    /// present the one whose key made the proof; the subjects are anyone's; challenge and
    /// domain checked when the request names them; `expires` checked when the proof has
    /// one; no action.
    Generic,
}

/// Clock skew tolerated between the presenter and this verifier.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// What the verifier expects. There is no default: a verifier must say whom it trusts.
#[derive(Debug, Clone)]
pub struct PresentationOptions {
    /// The challenge the verifier issued; checked when given.
    pub challenge: Option<String>,
    /// The verifier's domain; checked when given.
    pub domain: Option<String>,
    /// The action the verifier is about to allow: `{action, resource?, context?}`; when
    /// given it must equal the action inside the presentation.
    pub action: Option<Value>,
    /// Skip status list checks (offline use).
    pub skip_status: bool,
    /// Whom the verifier trusts to issue which credentials. A presentation is never
    /// verified unless every credential in it comes from an issuer trusted for its type.
    pub trust: TrustPolicy,
    /// The longest proof lifetime accepted, counted from now (`expires_too_far` beyond
    /// it); `None` accepts any. A verifier that remembers challenges until expiry sets it.
    pub max_ttl: Option<jiff::SignedDuration>,
}

impl PresentationOptions {
    /// Options that check nothing but the proofs and trust `trust`.
    pub fn new(trust: TrustPolicy) -> Self {
        Self { challenge: None, domain: None, action: None, skip_status: false, trust, max_ttl: None }
    }
}

/// The outcome of verifying a presentation.
#[derive(Debug, Clone, Default)]
pub struct PresentationReport {
    pub holder: Option<String>,
    pub report: Report,
    /// The challenge inside the verified proof (for one-time use tracking).
    pub challenge: Option<String>,
    /// The domain inside the verified proof (part of the one-time use key).
    pub domain: Option<String>,
    /// When the proof expires.
    pub expires: Option<Timestamp>,
    /// When the proof says it was created (`created`, or a JWT's `iat`).
    pub created: Option<Timestamp>,
    /// The human approval the presentation carries for its action, when one was needed
    /// and matched ([`super::approval`]).
    pub approval: Option<Value>,
}

impl PresentationReport {
    /// True when every check passed, issuer trust included.
    pub fn verified(&self) -> bool {
        self.report.verified()
    }

    /// True when every enclosed credential comes from a trusted issuer.
    pub fn issuer_trusted(&self) -> bool {
        self.report.issuer_trusted()
    }
}

fn did_of(kid: &str) -> Option<&str> {
    split_did_url(kid).map(|(d, _)| d)
}

/// Verifies a compact JWS signed by a key in `relationship` of its `kid`'s DID; with
/// `signer`, a `kid` of any other DID fails before anything is resolved.
async fn verify_jws(
    jws: &jose::Jws,
    relationship: &str,
    signer: Option<ExpectedSigner<'_>>,
    resolver: &dyn Resolver,
) -> Result<String, Check> {
    let kid = jws.kid().ok_or_else(|| Check::fail("proof", "malformed_proof", "JWS has no kid"))?;
    let did = did_of(kid).ok_or_else(|| Check::fail("proof", "malformed_proof", "kid is not a DID URL"))?;
    if let Some(e) = signer {
        e.check(did)?;
    }
    let doc = resolve_document(did, resolver).await?;
    let key = key_for(&doc, kid, relationship).map_err(|e| Check::fail("proof", "wrong_key", format!("{kid}: {e}")))?;
    jws.verify(&key).map_err(|e| Check::fail("proof", "invalid_signature", e.to_string()))?;
    Ok(did.to_owned())
}

fn time_claim(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::String(s) => super::datamodel::parse_date_time_stamp(s).ok(),
        Value::Number(n) => n.as_i64().and_then(|s| Timestamp::from_second(s).ok()),
        _ => None,
    }
}

/// One enclosed credential, parsed but not yet verified.
struct Enclosed<'a> {
    label: String,
    vc: Cow<'a, Value>,
    /// The `vc+jwt` envelope, whose signature is checked with the other proofs.
    envelope: Option<jose::Jws>,
}

/// Verifies a presentation (an object for `ldp_vp`, a string for `jwt_vp`).
///
/// Order: everything that needs no I/O first (structure, issuer trust, holder binding),
/// then the proofs (which resolve DIDs), then, only when all of that holds, the status
/// lists, fetched concurrently. At most [`MAX_FETCHES`](super::verify::MAX_FETCHES)
/// distinct documents are fetched, all within one deadline.
pub async fn verify_presentation(
    presentation: &Value,
    opts: &PresentationOptions,
    resolver: &dyn Resolver,
    now: Timestamp,
) -> PresentationReport {
    verify_presentation_in(presentation, opts, resolver, now, TrustMode::Enforce, Profile::ActionBound).await
}

/// [`verify_presentation`] with the trust mode and rules chosen by the caller (the VC-API
/// routes).
pub(crate) async fn verify_presentation_in(
    presentation: &Value,
    opts: &PresentationOptions,
    resolver: &dyn Resolver,
    now: Timestamp,
    mode: TrustMode,
    profile: Profile,
) -> PresentationReport {
    let generic = profile == Profile::Generic;
    let budget = budgeted(resolver);
    let resolver: &dyn Resolver = &budget;
    let mut out = PresentationReport::default();
    let r = &mut out.report;
    // 1. The securing mechanism, parsed but not verified yet.
    let (vp, holder_jws) = match presentation {
        Value::Object(_) => (Cow::Borrowed(presentation), None),
        Value::String(s) => match jose::parse(s) {
            Err(e) => {
                r.push(Check::fail("proof", "malformed_proof", e.to_string()));
                return out;
            }
            Ok(jws) => {
                if jws.typ() != Some("vp+jwt") {
                    r.push(Check::fail("proof", "malformed_proof", "typ must be vp+jwt"));
                }
                (Cow::Owned(jws.payload.clone()), Some(jws))
            }
        },
        _ => {
            r.push(Check::fail("structure", "malformed_presentation", "presentation must be an object (ldp_vp) or a compact JWS (jwt_vp)"));
            return out;
        }
    };
    // 2. Structure.
    let ctx0 = vp.get("@context").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str);
    let typed = ctx0 == Some(VC_V2) && types(&vp).contains(&"VerifiablePresentation");
    let holder = if generic {
        match generic_structure(&vp) {
            Ok(h) if typed => h,
            Ok(_) => {
                r.push(Check::fail("structure", "malformed_presentation", "a VC 2.0 VerifiablePresentation is required"));
                return out;
            }
            Err(why) => {
                r.push(Check::fail("structure", "malformed_presentation", why));
                return out;
            }
        }
    } else {
        let Some(h) = vp.get("holder").and_then(Value::as_str).map(str::to_owned).filter(|_| typed) else {
            r.push(Check::fail("structure", "malformed_presentation", "a VC 2.0 VerifiablePresentation with a holder is required"));
            return out;
        };
        Some(h)
    };
    r.push(Check::pass("structure", "VC 2.0 presentation"));
    out.holder.clone_from(&holder);
    // 3. Every enclosed credential: issuer trust and holder binding, before any fetch.
    // Borrowed, not copied: the credentials are most of a presentation's bytes.
    let raw: Vec<&Value> = match vp.get("verifiableCredential") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    };
    if raw.is_empty() && !generic {
        r.push(Check::fail("credentials", "no_delegation", "the presentation encloses no credential"));
    }
    let mut creds: Vec<Enclosed<'_>> = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let label = format!("credential[{i}].");
        match c.get("id").and_then(Value::as_str).and_then(|id| id.strip_prefix(VC_JWT_DATA_URL)) {
            Some(jwt) if types(c).contains(&"EnvelopedVerifiableCredential") => match jose::parse(jwt) {
                Ok(jws) => creds.push(Enclosed { label, vc: Cow::Owned(jws.payload.clone()), envelope: Some(jws) }),
                Err(e) => r.push(Check::fail(format!("{label}proof"), "malformed_proof", e.to_string())),
            },
            _ => creds.push(Enclosed { label, vc: Cow::Borrowed(c), envelope: None }),
        }
    }
    // Delegation chains (sub-delegations): every link present, the one named, narrowing.
    let ancestor = if generic {
        vec![false; creds.len()]
    } else {
        let docs: Vec<&Value> = creds.iter().map(|c| c.vc.as_ref()).collect();
        let labels: Vec<String> = creds.iter().map(|c| c.label.clone()).collect();
        super::chain::check_chains(&docs, &labels, r)
    };
    let mut bound = true;
    for (c, is_ancestor) in creds.iter().zip(&ancestor) {
        trust_check(&c.vc, &opts.trust, mode, &c.label, r);
        // VC Data Model 2.0 §4.13 lets a holder present credentials about anyone; that
        // the subject is the holder is Sigil's own rule.
        if generic {
            continue;
        }
        if *is_ancestor {
            r.push(Check::pass(format!("{}subject", c.label), "an ancestor in the holder's delegation chain"));
            continue;
        }
        if holder.as_deref().is_some_and(|h| subject_ids(&c.vc).contains(&h)) {
            r.push(Check::pass(format!("{}subject", c.label), "issued to the holder"));
        } else {
            r.push(Check::fail(format!("{}subject", c.label), "subject_mismatch", "the credential is not about the holder"));
            bound = false;
        }
    }
    if mode == TrustMode::Enforce && (!bound || !r.clean()) {
        r.push(proof_not_checked(""));
        return out;
    }
    // 4. Every enclosed credential's own proof (resolving only its issuer's DID) and
    // validity, before the holder's DID is resolved: a holder DID is fetched only once a
    // trusted issuer vouched for it.
    let mut delegations: Vec<(Authority, Option<Timestamp>, Option<Timestamp>)> = Vec::new();
    // Beside each delegation, its issuer and id (what an approval must name), and every
    // enclosed approval.
    let mut delegation_refs: Vec<(String, String)> = Vec::new();
    let mut approvals: Vec<super::approval::ApprovalClaim> = Vec::new();
    for (c, is_ancestor) in creds.iter().zip(&ancestor) {
        let proof = match &c.envelope {
            None => IssuerProof::Embedded,
            Some(jws) => match verify_jws(jws, "assertionMethod", issuer_id(&c.vc).map(ExpectedSigner::issuer), resolver).await {
                Ok(did) => IssuerProof::Verified(did),
                Err(mut chk) => {
                    chk.check = format!("{}proof", c.label);
                    r.push(chk);
                    continue;
                }
            },
        };
        credential_checks(&c.vc, proof, resolver, now, &c.label, r).await;
        // An ancestor is checked, never granting: only the holder's own delegations do.
        if !generic && !*is_ancestor && types(&c.vc).contains(&"DelegatedAuthorityCredential") {
            let parsed = c.vc.get("credentialSubject").and_then(|s| s.get("authority")).and_then(|a| Authority::deserialize(a).ok());
            match parsed {
                Some(a) => {
                    delegations.push((a, time_claim(c.vc.get("validFrom")), time_claim(c.vc.get("validUntil"))));
                    let s = |k: &str| c.vc.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                    delegation_refs.push((issuer_id(&c.vc).unwrap_or_default().to_owned(), s("id")));
                }
                None => r.push(Check::fail(format!("{}authority", c.label), "malformed_credential", "authority is not understood")),
            }
        }
        if !generic {
            approvals.extend(super::approval::ApprovalClaim::of(&c.vc));
        }
    }
    if mode == TrustMode::Enforce && !r.clean() {
        r.push(proof_not_checked(""));
        return out;
    }
    // 5. The holder's proof, whichever the securing mechanism. A named holder must be the
    // one whose key made it (checked before its DID is resolved).
    let expected = holder.as_deref().map(ExpectedSigner::holder);
    let mut malformed_expiry = false;
    let (signer, challenge, domain, expires, created) = match &holder_jws {
        None => match verify_proof(presentation, "authentication", expected, resolver).await {
            Ok(p) => {
                let s = |k: &str| p.proof.str(k).map(str::to_owned);
                let t = |k: &str| time_claim(p.proof.config.get(k));
                malformed_expiry = p.proof.config.contains_key("expires") && t("expires").is_none();
                (Some(p.controller.clone()), s("challenge"), s("domain"), t("expires"), t("created"))
            }
            Err(c) => {
                r.push(c);
                (None, None, None, None, None)
            }
        },
        Some(jws) => {
            let signer = match verify_jws(jws, "authentication", expected, resolver).await {
                Ok(d) => Some(d),
                Err(c) => {
                    r.push(c);
                    None
                }
            };
            let p = &jws.payload;
            let st = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            malformed_expiry = p.get("exp").is_some() && time_claim(p.get("exp")).is_none();
            (signer, st("nonce"), st("aud"), time_claim(p.get("exp")), time_claim(p.get("iat")))
        }
    };
    match (&signer, &holder) {
        (Some(s), Some(h)) if s == h => r.push(Check::pass("proof", format!("signed by the holder {s}"))),
        (Some(s), Some(_)) => r.push(Check::fail("proof", "holder_mismatch", format!("signed by {s}, not by the holder"))),
        // §4.13: without a holder property, who holds it is what the securing mechanism
        // says: the controller of the key that made the proof.
        (Some(s), None) => {
            r.push(Check::pass("proof", format!("signed by {s} (the presentation names no holder)")));
            out.holder = Some(s.clone());
        }
        // The challenge, domain and lifetime live inside the proof that did not verify:
        // reading them would report claims nobody vouched for (as mismatches). The proof's
        // own failure is the answer.
        (None, _) => return out,
    }
    // 6. Challenge, domain, lifetime.
    for (name, expected, actual, code) in
        [("challenge", &opts.challenge, &challenge, "challenge_mismatch"), ("domain", &opts.domain, &domain, "domain_mismatch")]
    {
        match (expected, actual) {
            (Some(e), Some(a)) if e == a => r.push(Check::pass(name, "matches")),
            (Some(_), _) => r.push(Check::fail(name, code, format!("{name} does not match"))),
            (None, Some(_)) => r.push(Check::pass(name, "present (no expected value given)")),
            (None, None) if generic => r.push(Check::pass(name, "none was asked for")),
            (None, None) => r.push(Check::fail(name, code, format!("the proof carries no {name}"))),
        }
    }
    out.challenge = challenge;
    out.domain = domain;
    out.expires = expires;
    out.created = created;
    match expires {
        Some(e) if now >= e => r.push(Check::fail("expires", "proof_expired", format!("expired at {e}"))),
        Some(e) if opts.max_ttl.is_some_and(|max| e.duration_since(now) > max.saturating_add(CLOCK_SKEW)) => r.push(Check::fail(
            "expires",
            "expires_too_far",
            format!("expires at {e}, further ahead than this verifier accepts ({} s)", opts.max_ttl.unwrap_or_default().as_secs()),
        )),
        Some(e) => r.push(Check::pass("expires", format!("until {e}"))),
        None if malformed_expiry => {
            r.push(Check::fail("expires", "malformed_proof", "the proof's expiry is not a dateTimeStamp (VC Data Model 2.0 §4.9)"))
        }
        None if generic => r.push(Check::pass("expires", "the proof sets no expiry")),
        None => r.push(Check::fail("expires", "proof_expired", "the proof has no expiry")),
    }
    if created.is_some_and(|c| c > now + CLOCK_SKEW) {
        r.push(Check::fail("created", "proof_not_yet_valid", "the proof was created in the future"));
    }
    // 7. Status lists, only once everything above holds (a failed verification stays
    // failed without them), all fetched together.
    if !opts.skip_status && r.clean() {
        let entries: Vec<_> = creds
            .iter()
            .flat_map(|c| {
                let issuer = issuer_id(&c.vc).unwrap_or_default();
                status_entries(&c.vc, issuer, &c.label)
            })
            .collect();
        check_statuses(&entries, resolver, now, r).await;
    }
    // 8. The action inside the presentation: as expected, and covered by a delegation.
    if !generic {
        check_action(&vp, opts, &delegations, now, r);
        if let Some(h) = &out.holder {
            out.approval = check_approval(&vp, h, &delegations, &delegation_refs, &approvals, now, &mut out.report);
        }
    }
    out
}

/// Step 9, human approval: when the delegation that covers the action requires approval
/// for it, an enclosed approval from that delegation's issuer must name this holder, this
/// delegation and this exact request (`approval_missing` otherwise). Answers the approval.
fn check_approval(
    vp: &Value,
    holder: &str,
    delegations: &[(Authority, Option<Timestamp>, Option<Timestamp>)],
    refs: &[(String, String)],
    approvals: &[super::approval::ApprovalClaim],
    now: Timestamp,
    r: &mut Report,
) -> Option<Value> {
    // The common case, no delegation with an approval rule: nothing more to decide.
    if !delegations.iter().any(|(a, _, _)| a.approval.is_some()) {
        return None;
    }
    let action = vp.get("action").and_then(Value::as_object)?;
    let name = action.get("name").and_then(Value::as_str).unwrap_or_default();
    let resource = action.get("resource").and_then(Value::as_str);
    let empty = Map::new();
    let context = action.get("context").and_then(Value::as_object).unwrap_or(&empty);
    let req = action_request(name, resource, context);
    // No covering delegation: `check_action` already failed the presentation.
    let i = covering(delegations, &req, now).ok()?;
    let (authority, (issuer, delegation_id)) = (&delegations.get(i)?.0, refs.get(i)?);
    if !authority.approval.as_ref().is_some_and(|rule| rule.requires(&req)) {
        return None;
    }
    let Ok(hash) = super::approval::request_hash(holder, delegation_id, name, resource, context) else {
        r.push(Check::fail("approval", "approval_missing", "the presented request has no RFC 8785 form, so no approval can match it"));
        return None;
    };
    match super::approval::matching(approvals, issuer, holder, delegation_id, &hash) {
        Some(a) => {
            r.push(Check::pass(
                "approval",
                format!(
                    "approved by {} at {}",
                    a.approver.as_deref().unwrap_or("an approver"),
                    a.approved_at.as_deref().unwrap_or("an unknown time")
                ),
            ));
            Some(a.to_json())
        }
        None => {
            r.push(Check::fail(
                "approval",
                "approval_missing",
                "the delegation requires human approval for this action and no matching approval signed by its issuer is enclosed",
            ));
            None
        }
    }
}

/// VC Data Model 2.0 §4.13 Verifiable Presentations, for a presentation under the generic
/// rules: an `id`, when present, is a URL (§4.4); `holder`, when present, "MUST be either
/// a URL or an object containing an id property"; `verifiableCredential` values "MUST NOT
/// be non-object values". Answers the holder named, if any.
fn generic_structure(vp: &Value) -> Result<Option<String>, String> {
    use super::datamodel::{is_url, section};
    if vp.get("id").is_some_and(|id| !id.as_str().is_some_and(is_url)) {
        return Err(format!("the presentation's id must be a URL (VC Data Model 2.0 §{})", section::IDENTIFIERS));
    }
    let holder = match vp.get("holder") {
        None => None,
        Some(Value::String(h)) if is_url(h) => Some(h.clone()),
        Some(Value::Object(o)) => match o.get("id").and_then(Value::as_str) {
            Some(h) if is_url(h) => Some(h.to_owned()),
            _ => {
                return Err(format!("holder must be a URL or an object whose id is a URL (VC Data Model 2.0 §{})", section::PRESENTATIONS));
            }
        },
        Some(_) => {
            return Err(format!("holder must be a URL or an object whose id is a URL (VC Data Model 2.0 §{})", section::PRESENTATIONS));
        }
    };
    let objects = match vp.get("verifiableCredential") {
        None | Some(Value::Object(_)) => true,
        Some(Value::Array(a)) => a.iter().all(Value::is_object),
        Some(_) => false,
    };
    if !objects {
        return Err(format!("every verifiableCredential must be an object (VC Data Model 2.0 §{})", section::PRESENTATIONS));
    }
    Ok(holder)
}

fn check_action(
    vp: &Value,
    opts: &PresentationOptions,
    delegations: &[(Authority, Option<Timestamp>, Option<Timestamp>)],
    now: Timestamp,
    r: &mut Report,
) {
    let Some(action) = vp.get("action").and_then(Value::as_object) else {
        r.push(Check::fail("action", "malformed_presentation", "the presentation is not bound to an action"));
        return;
    };
    let name = action.get("name").and_then(Value::as_str).unwrap_or_default();
    let resource = action.get("resource").and_then(Value::as_str);
    let empty = Map::new();
    let context = action.get("context").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(expected) = &opts.action {
        let e_name = expected.get("action").and_then(Value::as_str);
        let e_res = expected.get("resource").and_then(Value::as_str);
        let e_ctx = expected.get("context").and_then(Value::as_object).unwrap_or(&empty);
        if e_name == Some(name) && e_res == resource && e_ctx == context {
            r.push(Check::pass("action", "matches the expected action"));
        } else {
            r.push(Check::fail("action", "action_mismatch", "the presentation is bound to a different action"));
        }
    }
    match covering(delegations, &action_request(name, resource, context), now) {
        Ok(_) => r.push(Check::pass("authority", "a presented delegation covers the action")),
        Err(d) => r.push(Check::fail("authority", d.code(), d.detail())),
    }
}

/// The request a presentation's `action` names, as the policy reads it.
fn action_request<'a>(name: &'a str, resource: Option<&'a str>, context: &'a Map<String, Value>) -> ActionRequest<'a> {
    let amount = context.get("amount").and_then(Value::as_str).and_then(|s| policy::parse_amount("amount", s).ok());
    ActionRequest { action: name, resource, amount, currency: context.get("currency").and_then(Value::as_str) }
}

/// Which presented delegation covers `req` (the one the service would have granted it
/// under): the same decision for the action check and for the approval check.
fn covering(
    delegations: &[(Authority, Option<Timestamp>, Option<Timestamp>)],
    req: &ActionRequest<'_>,
    now: Timestamp,
) -> Result<usize, policy::Denial> {
    let grants: Vec<Grant<'_>> = delegations
        .iter()
        .map(|(a, from, until)| Grant {
            authority: a,
            valid_from: from.unwrap_or(Timestamp::MIN),
            valid_until: *until,
            revoked: false,
            suspended: false,
        })
        .collect();
    policy::decide(true, &grants, req, now)
}

#[cfg(test)]
#[path = "presentation_props.rs"]
mod fuzz;
