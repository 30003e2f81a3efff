//! Verification of action-bound presentations, `ldp_vp` (Data Integrity) and `jwt_vp`
//! (VC-JOSE-COSE): the holder's proof, challenge and domain, expiry, every enclosed
//! credential (issuer, validity, status, subject = holder), and that a presented delegation
//! covers the action inside the presentation (the same policy code that decided to sign).

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::credential::{VC_V2, subject_ids, types};
use super::did::{key_for, split_did_url};
use super::jose::{self, VC_JWT_DATA_URL};
use super::verify::{Check, CredentialOptions, IssuerProof, Report, Resolver, resolve_document, verify_credential_with, verify_proof};
use crate::policy::{self, ActionRequest, Authority, Grant};

/// What the verifier expects.
#[derive(Debug, Clone, Default)]
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
}

/// The outcome of verifying a presentation.
#[derive(Debug, Clone, Default)]
pub struct PresentationReport {
    pub holder: Option<String>,
    pub report: Report,
    /// The challenge inside the verified proof (for one-time use tracking).
    pub challenge: Option<String>,
    /// When the proof expires.
    pub expires: Option<Timestamp>,
    /// When the proof says it was created (`created`, or a JWT's `iat`).
    pub created: Option<Timestamp>,
}

impl PresentationReport {
    /// True when every check passed.
    pub fn verified(&self) -> bool {
        self.report.verified()
    }
}

fn did_of(kid: &str) -> Option<&str> {
    split_did_url(kid).map(|(d, _)| d)
}

/// Verifies a compact JWS signed by a key in `relationship` of its `kid`'s DID.
async fn verify_jws(jws: &jose::Jws, relationship: &str, resolver: &dyn Resolver) -> Result<String, Check> {
    let kid = jws.kid().ok_or_else(|| Check::fail("proof", "malformed_proof", "JWS has no kid"))?;
    let did = did_of(kid).ok_or_else(|| Check::fail("proof", "malformed_proof", "kid is not a DID URL"))?;
    let doc = resolve_document(did, resolver).await?;
    let key = key_for(&doc, kid, relationship).map_err(|e| Check::fail("proof", "wrong_key", format!("{kid}: {e}")))?;
    jws.verify(&key).map_err(|e| Check::fail("proof", "invalid_signature", e.to_string()))?;
    Ok(did.to_owned())
}

fn time_claim(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64().and_then(|s| Timestamp::from_second(s).ok()),
        _ => None,
    }
}

/// Verifies a presentation (an object for `ldp_vp`, a string for `jwt_vp`).
pub async fn verify_presentation(
    presentation: &Value,
    opts: &PresentationOptions,
    resolver: &dyn Resolver,
    now: Timestamp,
) -> PresentationReport {
    let mut out = PresentationReport::default();
    let r = &mut out.report;
    // 1. The holder's proof, whichever the securing mechanism.
    let (vp, signer, challenge, domain, expires, created) = match presentation {
        Value::Object(_) => {
            let proof = verify_proof(presentation, "authentication", resolver).await;
            let (signer, challenge, domain, expires, created) = match proof {
                Ok(p) => {
                    let s = |k: &str| p.proof.str(k).map(str::to_owned);
                    (
                        Some(p.controller.clone()),
                        s("challenge"),
                        s("domain"),
                        time_claim(p.proof.config.get("expires")),
                        time_claim(p.proof.config.get("created")),
                    )
                }
                Err(c) => {
                    r.push(c);
                    (None, None, None, None, None)
                }
            };
            (Cow::Borrowed(presentation), signer, challenge, domain, expires, created)
        }
        Value::String(s) => match jose::parse(s) {
            Err(e) => {
                r.push(Check::fail("proof", "malformed_proof", e.to_string()));
                return out;
            }
            Ok(jws) => {
                if jws.typ() != Some("vp+jwt") {
                    r.push(Check::fail("proof", "malformed_proof", "typ must be vp+jwt"));
                }
                let signer = match verify_jws(&jws, "authentication", resolver).await {
                    Ok(d) => Some(d),
                    Err(c) => {
                        r.push(c);
                        None
                    }
                };
                let p = &jws.payload;
                let st = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
                (Cow::Owned(p.clone()), signer, st("nonce"), st("aud"), time_claim(p.get("exp")), time_claim(p.get("iat")))
            }
        },
        _ => {
            r.push(Check::fail("structure", "malformed_presentation", "presentation must be an object (ldp_vp) or a compact JWS (jwt_vp)"));
            return out;
        }
    };
    // 2. Structure and holder binding.
    let ctx0 = vp.get("@context").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str);
    let holder = vp.get("holder").and_then(Value::as_str).map(str::to_owned);
    if ctx0 != Some(VC_V2) || !types(&vp).contains(&"VerifiablePresentation") || holder.is_none() {
        r.push(Check::fail("structure", "malformed_presentation", "a VC 2.0 VerifiablePresentation with a holder is required"));
        return out;
    }
    r.push(Check::pass("structure", "VC 2.0 presentation"));
    out.holder = holder.clone();
    if let Some(s) = &signer {
        if Some(s) == holder.as_ref() {
            r.push(Check::pass("proof", format!("signed by the holder {s}")));
        } else {
            r.push(Check::fail("proof", "holder_mismatch", format!("signed by {s}, not by the holder")));
        }
    }
    // 3. Challenge, domain, lifetime.
    for (name, expected, actual, code) in
        [("challenge", &opts.challenge, &challenge, "challenge_mismatch"), ("domain", &opts.domain, &domain, "domain_mismatch")]
    {
        match (expected, actual) {
            (Some(e), Some(a)) if e == a => r.push(Check::pass(name, "matches")),
            (Some(_), _) => r.push(Check::fail(name, code, format!("{name} does not match"))),
            (None, Some(_)) => r.push(Check::pass(name, "present (no expected value given)")),
            (None, None) => r.push(Check::fail(name, code, format!("the proof carries no {name}"))),
        }
    }
    out.challenge = challenge;
    out.expires = expires;
    out.created = created;
    match expires {
        Some(e) if now < e => r.push(Check::pass("expires", format!("until {e}"))),
        Some(e) => r.push(Check::fail("expires", "proof_expired", format!("expired at {e}"))),
        None => r.push(Check::fail("expires", "proof_expired", "the proof has no expiry")),
    }
    if created.is_some_and(|c| c > now + jiff::SignedDuration::from_secs(60)) {
        r.push(Check::fail("created", "proof_not_yet_valid", "the proof was created in the future"));
    }
    // 4. Every enclosed credential.
    // Borrowed, not copied: the credentials are most of a presentation's bytes.
    let creds: Vec<&Value> = match vp.get("verifiableCredential") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    };
    if creds.is_empty() {
        r.push(Check::fail("credentials", "no_delegation", "the presentation encloses no credential"));
    }
    let copts = CredentialOptions { check_status: !opts.skip_status };
    let mut delegations: Vec<(Authority, Option<Timestamp>, Option<Timestamp>)> = Vec::new();
    for (i, c) in creds.iter().enumerate() {
        let label = format!("credential[{i}].");
        let (vc, proof) = match c.get("id").and_then(Value::as_str).and_then(|id| id.strip_prefix(VC_JWT_DATA_URL)) {
            Some(jwt) if types(c).contains(&"EnvelopedVerifiableCredential") => match jose::parse(jwt) {
                Ok(jws) => match verify_jws(&jws, "assertionMethod", resolver).await {
                    Ok(did) => (Cow::Owned(jws.payload.clone()), IssuerProof::Verified(did)),
                    Err(mut chk) => {
                        chk.check = format!("{label}proof");
                        r.push(chk);
                        continue;
                    }
                },
                Err(e) => {
                    r.push(Check::fail(format!("{label}proof"), "malformed_proof", e.to_string()));
                    continue;
                }
            },
            _ => (Cow::Borrowed(*c), IssuerProof::Embedded),
        };
        let sub = verify_credential_with(&vc, proof, resolver, now, copts, &label).await;
        r.checks.extend(sub.checks);
        if holder.as_deref().is_some_and(|h| subject_ids(&vc).contains(&h)) {
            r.push(Check::pass(format!("{label}subject"), "issued to the holder"));
        } else {
            r.push(Check::fail(format!("{label}subject"), "subject_mismatch", "the credential is not about the holder"));
        }
        if types(&vc).contains(&"DelegatedAuthorityCredential") {
            let parsed = vc.get("credentialSubject").and_then(|s| s.get("authority")).and_then(|a| Authority::deserialize(a).ok());
            match parsed {
                Some(a) => delegations.push((a, time_claim(vc.get("validFrom")), time_claim(vc.get("validUntil")))),
                None => r.push(Check::fail(format!("{label}authority"), "malformed_credential", "authority is not understood")),
            }
        }
    }
    // 5. The action inside the presentation: as expected, and covered by a delegation.
    check_action(&vp, opts, &delegations, now, r);
    out
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
    let amount = context.get("amount").and_then(Value::as_str).and_then(|s| policy::parse_amount("amount", s).ok());
    let currency = context.get("currency").and_then(Value::as_str);
    let req = ActionRequest { action: name, resource, amount, currency };
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
    match policy::decide(true, &grants, &req, now) {
        Ok(_) => r.push(Check::pass("authority", "a presented delegation covers the action")),
        Err(d) => r.push(Check::fail("authority", d.code(), d.detail())),
    }
}
