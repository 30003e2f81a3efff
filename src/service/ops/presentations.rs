//! The hot path: an agent asks for a presentation bound to one action; Sigil checks its
//! delegated authority first and signs only what that authority covers.
//!
//! token → cached wallet (opened signing key, credentials with their canonical form
//! precomputed) → policy → canonicalize the envelope only → one Ed25519 signature → audit
//! entry made durable (group commit) → response. Nothing here grows with the number of
//! tenants, agents or credentials stored.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::ids::CredentialId;
use crate::ids::TenantId;
use crate::policy::{self, ActionRequest, Denial, Grant};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::kernel::wallet::{Held, Wallet};
use crate::service::model::records::AgentState;
use crate::service::{Caller, ServiceError, Sigil};
use crate::vc::credential::{VC_V2, context_url};
use crate::vc::jcs::{CanonicalObject, canonical_array};
use crate::vc::proof::{self, ProofOptions};

/// Requested securing format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Data Integrity (`eddsa-jcs-2022`) JSON-LD presentation.
    LdpVp,
    /// VC-JOSE-COSE compact JWS (`vp+jwt`), credentials enveloped as `vc+jwt`.
    JwtVp,
}

/// What the agent asks for.
#[derive(Debug, Clone)]
pub struct PresentationRequest {
    pub action: String,
    pub resource: Option<String>,
    pub context: Map<String, Value>,
    pub challenge: String,
    pub domain: String,
    pub format: Format,
    pub expires_in: Option<u64>,
}

/// A signed presentation.
#[derive(Debug, Clone)]
pub struct Presentation {
    /// The presentation as JSON text: the VP object (ldp_vp) or a JSON string holding the
    /// compact JWS (jwt_vp). Kept as bytes: the credentials inside are spliced in from their
    /// cached canonical form, never rebuilt as `Value` trees and serialized again.
    pub json: Vec<u8>,
    pub format: Format,
    pub credential_ids: Vec<String>,
    pub expires_at: Timestamp,
}

/// What a request yields: a presentation, or (for an action its delegation says needs a
/// human's approval, not yet given) the approval request to wait for.
#[derive(Debug, Clone)]
pub enum Outcome {
    Presentation(Presentation),
    Approval(Box<crate::service::model::records::ApprovalRecord>),
}

impl Presentation {
    /// The presentation parsed (`Null` never happens: `json` is always produced by Sigil).
    pub fn document(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

fn budget_exceeded() -> ServiceError {
    ServiceError::forbidden(ErrorCode::DailyLimitExceeded, "the delegation's daily amount limit would be exceeded")
}

fn bad(detail: impl Into<String>) -> ServiceError {
    ServiceError::invalid(detail)
}

/// At most `max` characters (as JSON Schema's `maxLength` counts them), none of them control.
pub(crate) fn printable(field: &str, s: &str, max: usize) -> Result<(), ServiceError> {
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(bad(format!("{field} must be 1–{max} printable characters")));
    }
    Ok(())
}

/// A concrete action: what a delegation's action pattern can cover, never a wildcard. A
/// name no delegation could ever grant is a malformed request (400), not a refusal (403).
pub(crate) fn parse_action(action: &str) -> Result<(), ServiceError> {
    match policy::ActionPattern::parse(action) {
        Ok(_) if !action.ends_with(":*") => Ok(()),
        _ => Err(bad("action must look like 'namespace:verb' (2–8 ':'-separated segments of a-z 0-9 _ . -)")),
    }
}

/// The path of the first number in `context` RFC 8785 would not keep exactly
/// ([`crate::vc::jcs::inexact_number`]): such a number would hash like its neighbours (one
/// approval for another request) and be signed as a different value than asked.
pub(crate) fn unsafe_number(context: &Map<String, Value>) -> Option<String> {
    crate::vc::jcs::inexact_number("context", context)
}

/// Validates the request and extracts amount and currency from `context`.
fn parse_request(req: &PresentationRequest) -> Result<(Option<Decimal>, Option<&str>), ServiceError> {
    parse_action(&req.action)?;
    if let Some(r) = &req.resource {
        printable("resource", r, 512)?;
        if !policy::well_formed_resource(r) {
            return Err(bad("resource must be a '/'-separated path without empty, '.' or '..' segments"));
        }
    }
    printable("challenge", &req.challenge, 256)?;
    printable("domain", &req.domain, 256)?;
    if req.context.len() > 32 || serde_json::to_vec(&req.context).map(|v| v.len()).unwrap_or(usize::MAX) > 4096 {
        return Err(bad("context must have at most 32 keys and 4 KiB"));
    }
    if let Some(path) = unsafe_number(&req.context) {
        return Err(bad(format!(
            "{path}: numbers in context must lie within ±(2^53−1) (RFC 8785 would round a larger one, so two requests \
             would hash alike and the signed presentation would carry another number): send it as a string"
        )));
    }
    let amount = match req.context.get("amount") {
        None => None,
        Some(Value::String(s)) => Some(policy::parse_amount("context.amount", s).map_err(|e| bad(e.0))?),
        Some(_) => return Err(bad("context.amount must be a decimal string like \"120.00\", never a number")),
    };
    let currency = match req.context.get("currency") {
        None => None,
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c.as_str()),
        Some(_) => return Err(bad("context.currency must be an ISO 4217 code like EUR")),
    };
    if amount.is_some() != currency.is_some() {
        return Err(bad("context.amount and context.currency go together"));
    }
    Ok((amount, currency))
}

impl Sigil {
    /// Checks authority and signs a presentation bound to the requested action. An action
    /// that needs approval first is refused here (`approval_required`); callers that can
    /// answer an approval request use [`Sigil::present_or_approval`].
    pub async fn present(&self, caller: &Caller, req: PresentationRequest) -> Result<Presentation, ServiceError> {
        match self.present_or_approval(caller, req).await? {
            Outcome::Presentation(p) => Ok(p),
            Outcome::Approval(a) => Err(ServiceError::forbidden(
                ErrorCode::ApprovalRequired,
                format!(
                    "this action needs a human's approval first (approval {} is {})",
                    a.id,
                    crate::service::kernel::approval::effective_status(&a, self.clock.now())
                ),
            )),
        }
    }

    /// The presentation for an approval the caller's agent asked for: the approved request
    /// again, under a fresh `challenge` and `domain` (or, not yet approved, the approval).
    pub async fn present_approved(
        &self,
        caller: &Caller,
        id: &str,
        challenge: String,
        domain: String,
        format: Format,
        expires_in: Option<u64>,
    ) -> Result<Outcome, ServiceError> {
        let Caller::Agent { tenant, agent, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "presentations are requested with an agent token"));
        };
        // Another agent's approval, or another tenant's, does not exist for this caller.
        let rec = match self.load_approval(tenant, id).await? {
            Some(a) if a.rec.agent == agent.as_str() => a.rec,
            _ => return Err(ServiceError::not_found(ErrorCode::ApprovalNotFound, "no such approval")),
        };
        // Spent: this route collects that approval's presentation, and it was collected.
        // Going on would open (and announce) a new approval request in its name.
        if rec.status == crate::service::model::records::ApprovalStatus::Used {
            return Err(ServiceError::conflict(ErrorCode::ApprovalDecided, format!("approval {id} was already used")));
        }
        let req =
            PresentationRequest { action: rec.action, resource: rec.resource, context: rec.context, challenge, domain, format, expires_in };
        self.present_or_approval(caller, req).await
    }

    /// [`Sigil::present`], answering an approval request instead of a presentation when
    /// the covering delegation requires approval for this request and none is approved.
    pub async fn present_or_approval(&self, caller: &Caller, req: PresentationRequest) -> Result<Outcome, ServiceError> {
        let Caller::Agent { tenant, agent, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "presentations are requested with an agent token"));
        };
        let (amount, currency) = parse_request(&req)?;
        self.check_rate(tenant, agent).await?;
        let ttl = req.expires_in.unwrap_or(300.min(self.settings.max_presentation_ttl));
        if ttl == 0 || ttl > self.settings.max_presentation_ttl {
            return Err(bad(format!("expires_in must be between 1 and {} seconds", self.settings.max_presentation_ttl)));
        }
        let t = tenant;
        // Held until the signature is made: key rotation, suspension and retirement wait
        // for it, and nothing signs with a key or state they have replaced.
        let lock = self.agent_locks.read(t, agent).await;
        let wallet = self.wallet(tenant, agent).await?;
        let now = self.clock.now();
        let action = ActionRequest { action: &req.action, resource: req.resource.as_deref(), amount, currency };
        let decision = match wallet.state {
            AgentState::Retired => Err(Denial::AgentSuspended),
            _ => {
                let grants: Vec<Grant<'_>> = wallet
                    .delegations
                    .iter()
                    .filter_map(|h| {
                        h.authority.as_ref().map(|authority| Grant {
                            authority,
                            valid_from: h.valid_from,
                            valid_until: h.valid_until,
                            revoked: h.revoked,
                            suspended: h.suspended,
                        })
                    })
                    .collect();
                policy::decide(wallet.state == AgentState::Active, &grants, &action, now)
            }
        };
        let resource = req.resource.clone();
        let delegation = match decision {
            Ok(i) => wallet.delegations.iter().filter(|h| h.authority.is_some()).nth(i).cloned(),
            Err(denial) => {
                drop(lock);
                let event = Event::new("presentation.denied", json!({"action": req.action, "resource": resource, "reason": denial.code()}))
                    .agent(agent.as_str());
                self.record(t, actor(caller), event).await?;
                metrics::counter!("sigil_presentations_total", "outcome" => "denied", "reason" => denial.code()).increment(1);
                if denial != Denial::AgentSuspended {
                    self.note_denial(tenant, agent).await?;
                }
                return Err(ServiceError::forbidden(denial.error_code(), denial.detail()));
            }
        };
        let delegation = delegation.ok_or_else(|| ServiceError::Internal("policy chose a missing delegation".into()))?;
        // Human approval (step-up): the request is covered; does it need a decision first?
        let needs_approval = delegation.authority.as_ref().and_then(|a| a.approval.as_ref()).is_some_and(|r| r.requires(&action));
        // The agent's lock stays held: making an approval request commits, but takes no lock
        // a key rotation or suspension holds while it waits for this one.
        let approval = if needs_approval {
            if req.format == Format::JwtVp {
                return Err(bad("an action that needs approval is presented as ldp_vp (the approval travels inside it)"));
            }
            let delegation_urn = delegation.vc.get("id").and_then(Value::as_str).unwrap_or_default();
            // Never a fallback hash: one shared value would let one approval cover them all.
            let hash = crate::vc::approval::request_hash(&wallet.did, delegation_urn, &req.action, req.resource.as_deref(), &req.context)
                .map_err(|_| bad("context has no RFC 8785 (JSON canonicalization) form"))?;
            let principal = delegation.vc.pointer("/credentialSubject/principal/identifier").and_then(Value::as_str).unwrap_or_default();
            let asked = crate::service::kernel::approval::Asked {
                agent,
                delegation: &delegation.id,
                principal,
                request_hash: &hash,
                action: &req.action,
                resource: req.resource.as_deref(),
                context: &req.context,
            };
            match self.approval_gate(caller, t, asked).await? {
                crate::service::kernel::approval::Gate::Approved(a) => Some(a),
                crate::service::kernel::approval::Gate::Pending(rec) => return Ok(Outcome::Approval(Box::new(rec))),
                crate::service::kernel::approval::Gate::Denied(rec) => {
                    drop(lock);
                    let event = Event::new(
                        "presentation.denied",
                        json!({"action": req.action, "resource": resource, "reason": ErrorCode::ApprovalDenied.as_str(), "approval_id": rec.id}),
                    )
                    .agent(agent.as_str());
                    self.record(t, actor(caller), event).await?;
                    metrics::counter!("sigil_presentations_total", "outcome" => "denied", "reason" => ErrorCode::ApprovalDenied.as_str())
                        .increment(1);
                    return Err(ServiceError::forbidden(ErrorCode::ApprovalDenied, format!("approval {} was denied", rec.id)));
                }
            }
        } else {
            None
        };
        let approval_vc = match &approval {
            Some(a) => {
                let vc = a.rec.vc.clone().ok_or_else(|| ServiceError::Internal("an approved approval without its credential".into()))?;
                let canonical = crate::vc::jcs::canonicalize(&vc).map_err(|e| ServiceError::Internal(e.to_string()))?;
                Some((a.rec.id.clone(), vc, canonical))
            }
            None => None,
        };
        // Cumulative daily budget (limits.amount.per_day, in the delegation's time zone),
        // shared down a delegation chain: the spend counts against this delegation and
        // every ancestor with a daily limit (`budget_lines`). Reserved under one lock per
        // chain (its root's) and written compare-and-set in the same transaction as the
        // grant's audit entry, so concurrent requests never overspend.
        let per_day = crate::service::kernel::chain_budget::budget_lines(&delegation, amount, now);
        let budget_guard = match per_day.first() {
            Some(_) => Some(self.budget_locks.lock(t, crate::service::kernel::chain_budget::budget_lock_name(&delegation)).await),
            None => None,
        };
        if !per_day.is_empty() {
            let tk = self.tenant_keys(t).await?;
            if self.over_budget(&tk, t, &per_day).await? {
                // Release both locks before recording: nothing below may wait on them.
                drop(budget_guard);
                drop(lock);
                let event = Event::new(
                    "presentation.denied",
                    json!({"action": req.action, "resource": resource, "reason": ErrorCode::DailyLimitExceeded.as_str()}),
                )
                .agent(agent.as_str());
                self.record(t, actor(caller), event).await?;
                // An exhausted budget is an expected business event, not misbehaviour, so it
                // does not count toward automatic suspension (rate limits still apply).
                metrics::counter!("sigil_presentations_total", "outcome" => "denied", "reason" => ErrorCode::DailyLimitExceeded.as_str())
                    .increment(1);
                return Err(budget_exceeded());
            }
        }
        let identity = wallet
            .identity
            .clone()
            .ok_or_else(|| ServiceError::forbidden(ErrorCode::CredentialRevoked, "the agent's identity credential is revoked"))?;
        let expires_at = now.checked_add(SignedDuration::from_secs(ttl as i64)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut action_obj = Map::new();
        action_obj.insert("name".into(), req.action.clone().into());
        if let Some(r) = &req.resource {
            action_obj.insert("resource".into(), r.clone().into());
        }
        if !req.context.is_empty() {
            action_obj.insert("context".into(), Value::Object(req.context.clone()));
        }
        let ctx = json!([VC_V2, context_url(self.settings.public_url.base())]);
        let vp_id = format!("urn:uuid:{}", CredentialId::uuid());
        // A sub-delegation travels with its ancestors, nearest first: verifiers check each
        // link (and each one's status) themselves.
        let mut credential_ids = vec![identity.id.clone(), delegation.id.clone()];
        credential_ids.extend(delegation.chain.iter().map(|h| h.id.clone()));
        let (json, vp_hash) = match req.format {
            Format::LdpVp => {
                let mut canon = CanonicalObject::new();
                canon
                    .value("@context", &ctx)
                    .and_then(|c| c.value("id", &Value::String(vp_id.clone())))
                    .and_then(|c| c.value("type", &json!(["VerifiablePresentation", "ActionPresentation"])))
                    .and_then(|c| c.value("holder", &Value::String(wallet.did.clone())))
                    .and_then(|c| c.value("action", &Value::Object(action_obj.clone())))
                    .map_err(|e| bad(e.to_string()))?;
                let mut creds: Vec<&[u8]> = vec![&identity.canonical, &delegation.canonical];
                creds.extend(delegation.chain.iter().map(|h| h.canonical.as_slice()));
                if let Some((_, _, approval)) = &approval_vc {
                    creds.push(approval);
                }
                canon.canonical("verifiableCredential", canonical_array(&creds));
                let canonical = canon.finish().map_err(|e| bad(e.to_string()))?;
                let opts = ProofOptions {
                    cryptosuite: Default::default(),
                    verification_method: format!("{}#key-{}", wallet.did, wallet.key_version),
                    proof_purpose: "authentication",
                    created: rfc3339(now),
                    expires: Some(rfc3339(expires_at)),
                    challenge: Some(req.challenge.clone()),
                    domain: Some(req.domain.clone()),
                };
                let proof = proof::sign_canonical(&canonical, Some(&ctx), &opts, &wallet.signer)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                let hash = hex::encode(Sha256::digest(proof.get("proofValue").and_then(Value::as_str).unwrap_or_default()));
                // The signed VP is the canonical unsigned VP with `proof` appended: the same
                // members, so it verifies, and no second serialization of the credentials.
                let mut vp = canonical;
                vp.pop();
                vp.extend_from_slice(b",\"proof\":");
                serde_json::to_writer(&mut vp, &proof).map_err(|e| ServiceError::Internal(e.to_string()))?;
                vp.push(b'}');
                (vp, hash)
            }
            Format::JwtVp => {
                let jws = self.jwt_presentation(t, &wallet, &identity, &delegation, ctx, vp_id, action_obj, &req, now, expires_at).await?;
                let hash = hex::encode(Sha256::digest(jws.as_bytes()));
                (serde_json::to_vec(&jws).map_err(|e| ServiceError::Internal(e.to_string()))?, hash)
            }
        };
        drop(lock);
        // Context values the tenant marks sensitive are kept only as keyed hashes.
        let audit_context = self.redact_sensitive_context(t, &req.context).await?;
        metrics::counter!("sigil_presentations_total", "outcome" => "granted", "reason" => "").increment(1);
        let event = Event::new(
            "presentation.granted",
            json!({"action": req.action, "resource": resource, "context": audit_context, "credential_ids": credential_ids,
                   "vp_hash": vp_hash, "format": match req.format { Format::LdpVp => "ldp_vp", Format::JwtVp => "jwt_vp" },
                   "key_version": wallet.key_version, "approval_id": approval_vc.as_ref().map(|a| &a.0)}),
        )
        .agent(agent.as_str());
        if per_day.is_empty() && approval_vc.is_none() {
            self.record(t, actor(caller), event).await?;
        } else {
            // The spends are written compare-and-set (on the exact stored bytes) with the
            // grant's entry; re-staged from a fresh read if another node spent meanwhile
            // (still under the budget lock here). Sealed: amounts are not readable at rest.
            // An approval is spent in the same transaction (compare-and-set on its stored
            // bytes), so two requests racing with one approval get one presentation.
            let (event, lines, vc_ref) = (&event, &per_day, &approval_vc);
            let granted = self
                .mutate(t, &actor(caller), || async move {
                    let tk = self.tenant_keys(t).await?;
                    let mut txn = crate::store::Txn::new();
                    self.stage_spends(&tk, t, lines, &mut txn).await?;
                    if let Some((approval_id, vc, _)) = vc_ref {
                        self.stage_approval_use(&tk, &mut txn, t, approval_id, vc, self.clock.now()).await?;
                    }
                    Ok(Attempt::commit(txn, event.clone(), Effects::none(), ()))
                })
                .await;
            drop(budget_guard);
            if let Err(ServiceError::Forbidden { code, .. } | ServiceError::Conflict { code, .. } | ServiceError::Gone { code, .. }) =
                &granted
            {
                // Another node spent meanwhile (its write moved the total this stage read),
                // or the approval was used or decided meanwhile: a denial after all, in the
                // trail like every other.
                let denied =
                    Event::new("presentation.denied", json!({"action": req.action, "resource": req.resource, "reason": code.as_str()}))
                        .agent(agent.as_str());
                self.record(t, actor(caller), denied).await?;
                metrics::counter!("sigil_presentations_total", "outcome" => "denied", "reason" => code.as_str()).increment(1);
            }
            granted?;
            if let Some((approval_id, _, _)) = &approval_vc {
                crate::service::kernel::cache::pause::point("presentations.approval_used", t.as_str()).await;
                // Best effort: the approval is already spent by the grant's commit (whose
                // entry names it), so failing here would spend it and return nothing.
                let used = Event::new("approval.used", json!({"approval_id": approval_id, "vp_hash": vp_hash})).agent(agent.as_str());
                if let Err(e) = self.record(t, actor(caller), used).await {
                    tracing::warn!(tenant = %t, approval = %approval_id, error = %e, "approval.used not recorded (the grant's entry names the approval)");
                }
            }
        }
        Ok(Outcome::Presentation(Presentation { json, format: req.format, credential_ids, expires_at }))
    }
}

impl Sigil {
    /// The `vc+jwt` form of a held credential, signed once by the tenant's issuer key.
    async fn credential_jwt(&self, tenant: &TenantId, h: &Held) -> Result<String, ServiceError> {
        if let Some(j) = h.jwt.get() {
            return Ok(j.clone());
        }
        let rec = self.tenant_record(tenant).await?;
        let issuer = self.tenant_did(tenant);
        let signer = self.signer(tenant, "issuer", rec.issuer_current).await?;
        let mut claims = h.vc.clone();
        if let Some(o) = claims.as_object_mut() {
            o.remove("proof");
        }
        let kid = format!("{issuer}#issuer-{}", rec.issuer_current);
        let jwt = crate::vc::jose::sign("vc+jwt", "vc", &kid, &claims, &signer).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(h.jwt.get_or_init(|| jwt).clone())
    }

    /// Assembles and signs a `vp+jwt`.
    #[allow(clippy::too_many_arguments)]
    async fn jwt_presentation(
        &self,
        tenant: &TenantId,
        wallet: &Wallet,
        identity: &Held,
        delegation: &Held,
        ctx: Value,
        vp_id: String,
        action: Map<String, Value>,
        req: &PresentationRequest,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<String, ServiceError> {
        use crate::vc::jose;
        let mut creds = vec![
            jose::envelope(&self.credential_jwt(tenant, identity).await?),
            jose::envelope(&self.credential_jwt(tenant, delegation).await?),
        ];
        for h in &delegation.chain {
            creds.push(jose::envelope(&self.credential_jwt(tenant, h).await?));
        }
        let payload = json!({
            "@context": ctx,
            "id": vp_id,
            "type": ["VerifiablePresentation", "ActionPresentation"],
            "holder": wallet.did,
            "verifiableCredential": creds,
            "action": action,
            "nonce": req.challenge,
            "aud": req.domain,
            "iat": now.as_second(),
            "exp": expires_at.as_second(),
        });
        let kid = format!("{}#key-{}", wallet.did, wallet.key_version);
        jose::sign("vp+jwt", "vp", &kid, &payload, &wallet.signer).map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn approval_context_numbers_beyond_2_pow_53_are_refused_at_any_depth() {
        let ctx = |v: serde_json::Value| -> serde_json::Map<String, serde_json::Value> { serde_json::from_value(v).unwrap() };
        for ok in [
            serde_json::json!({"n": 9007199254740991_u64, "m": -9007199254740991_i64, "f": 0.5, "s": "9007199254740993"}),
            serde_json::json!({"deep": [{"n": 1}], "z": 0}),
        ] {
            assert_eq!(super::unsafe_number(&ctx(ok.clone())), None, "{ok}");
        }
        for (bad, path) in [
            (r#"{"order_id": 9007199254740993}"#, "context.order_id"),
            (r#"{"order_id": 9007199254740992}"#, "context.order_id"),
            (r#"{"n": -9007199254740993}"#, "context.n"),
            (r#"{"a": {"b": [1, 18446744073709551615]}}"#, "context.a.b[1]"),
            (r#"{"big": 123456789012345678901234567890}"#, "context.big"),
            (r#"{"e": 1e300}"#, "context.e"),
        ] {
            let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(bad).unwrap();
            assert_eq!(super::unsafe_number(&m).as_deref(), Some(path), "{bad}");
        }
        // Why: these two hash alike under RFC 8785 unless refused.
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str("9007199254740993").unwrap(), serde_json::from_str("9007199254740992").unwrap());
        assert_eq!(crate::vc::jcs::canonicalize(&a).unwrap(), crate::vc::jcs::canonicalize(&b).unwrap());
    }

    use super::*;
    use crate::ids::TenantId;
    use crate::policy::Authority;
    use std::sync::Arc;

    use crate::clock::FixedClock;
    use crate::ids::TokenId;
    use crate::policy::{AmountLimit, Limits, Principal, PrincipalKind};
    use crate::service::agents::NewAgent;
    use crate::service::credentials::NewDelegation;
    use crate::service::testing;
    use proptest::prelude::*;

    struct Fixture {
        sigil: Arc<Sigil>,
        clock: Arc<FixedClock>,
        agent: Caller,
        tenant: TenantId,
        dir: tempfile::TempDir,
    }

    async fn fixture(actions: &[&str], max: &str) -> Fixture {
        fixture_with(actions, max, None).await
    }

    async fn fixture_with(actions: &[&str], max: &str, per_day: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let authority = Authority::new(
            &actions.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            &["orders/*".to_owned()],
            Limits { amount: Some(AmountLimit::parse(max, "EUR", per_day).unwrap()) },
            None,
        )
        .unwrap();
        let new = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority,
            valid_from: None,
            valid_until: "2027-01-01T00:00:00Z".parse().unwrap(),
        };
        s.issue_delegation(&admin, &t.id, &a.id, new).await.unwrap();
        s.set_guardrails(&admin, &t.id, relaxed()).await.unwrap();
        let agent = Caller::Agent { tenant: t.id.clone(), agent: a.id, token: TokenId::random() };
        Fixture { sigil: s, clock, agent, tenant: t.id, dir }
    }

    /// The fixture's agent, its plain delegation replaced by one that needs approval above
    /// 200 EUR.
    async fn approval_fixture() -> Fixture {
        let f = fixture(&["refunds:create"], "500.00").await;
        let admin = testing::admin(&f.tenant);
        let Caller::Agent { agent: agent_id, .. } = &f.agent else { unreachable!() };
        let plain = f.sigil.wallet(&f.tenant, agent_id).await.unwrap().delegations[0].id.clone();
        f.sigil.change_credential_status(&admin, &f.tenant, &plain, crate::service::credentials::StatusChange::Revoke).await.unwrap();
        let authority = Authority::new(&["refunds:create".to_owned()], &["orders/*".to_owned()], Limits::default(), None)
            .unwrap()
            .with_approval(Some(crate::policy::ApprovalRule::new(&[], Some(("200.00", "EUR"))).unwrap()));
        let new = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority,
            valid_from: None,
            valid_until: "2027-01-01T00:00:00Z".parse().unwrap(),
        };
        f.sigil.issue_delegation(&admin, &f.tenant, agent_id, new).await.unwrap();
        f
    }

    async fn ask(f: &Fixture, amount: &str) -> Result<Box<crate::service::model::records::ApprovalRecord>, ServiceError> {
        match f.sigil.present_or_approval(&f.agent, request("refunds:create", "orders/1", amount, "c")).await? {
            Outcome::Approval(a) => Ok(a),
            Outcome::Presentation(_) => panic!("no approval asked for {amount}"),
        }
    }

    /// An agent varying its context cannot open approval requests without bound: the
    /// cap answers 429 `too_many_open_approvals`; a decision frees a place; expiry too.
    #[tokio::test]
    async fn approval_requests_open_per_agent_are_capped() {
        use crate::service::kernel::approval::MAX_OPEN_PER_AGENT;
        let f = approval_fixture().await;
        let admin = testing::admin(&f.tenant);
        let mut first = None;
        for i in 0..MAX_OPEN_PER_AGENT {
            let a = ask(&f, &format!("{}.00", 201 + i)).await.unwrap();
            first.get_or_insert(a.id);
        }
        let over = ask(&f, "400.00").await.unwrap_err();
        assert!(
            matches!(&over, ServiceError::TooManyRequests { code: ErrorCode::TooManyOpenApprovals, .. }),
            "the cap did not hold: {over:?}"
        );
        // The same request again is the same open approval, not a new one: not refused.
        assert_eq!(ask(&f, "201.00").await.unwrap().id, *first.as_ref().unwrap());
        f.sigil.decide_approval(&admin, &f.tenant, first.as_ref().unwrap(), crate::service::approvals::Decision::Deny).await.unwrap();
        ask(&f, "400.00").await.expect("a decision did not free a place");
        assert!(ask(&f, "401.00").await.is_err());
        // Expired requests no longer count.
        f.clock.set("2026-06-10T10:16:00Z".parse().unwrap());
        ask(&f, "401.00").await.expect("expired requests still count");
    }

    /// Housekeeping deletes approval records (and their index and open entries) a week
    /// after their expiry, through an audited commit; newer ones stay.
    #[tokio::test]
    async fn approval_records_are_purged_a_week_after_expiry() {
        let f = approval_fixture().await;
        let admin = testing::admin(&f.tenant);
        let old = ask(&f, "250.00").await.unwrap();
        let denied = ask(&f, "260.00").await.unwrap();
        f.sigil.decide_approval(&admin, &f.tenant, &denied.id, crate::service::approvals::Decision::Deny).await.unwrap();
        assert_eq!(f.sigil.purge_old_approvals().await.unwrap(), 0, "purged before their time");
        f.clock.set("2026-06-17T10:15:00Z".parse().unwrap());
        let recent = ask(&f, "270.00").await.unwrap();
        assert_eq!(f.sigil.purge_old_approvals().await.unwrap(), 2);
        let left: Vec<String> =
            f.sigil.list_approvals(&admin, &f.tenant, None, Some(500)).await.unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(left, vec![recent.id.clone()]);
        for id in [&old.id, &denied.id] {
            assert!(f.sigil.load_approval(&f.tenant, id).await.unwrap().is_none());
        }
        let index = f.sigil.approval_index_key(&f.tenant, &old.request_hash);
        assert!(f.sigil.store.get(&index).await.unwrap().is_none(), "the purged approval's index entry remains");
        // The same request is a new approval.
        assert_ne!(ask(&f, "250.00").await.unwrap().id, old.id);
        let open = f.sigil.store.scan(&crate::store::keys::approval_open_prefix(&f.tenant, None), None, 100).await.unwrap();
        assert_eq!(open.len(), 2, "open entries of purged or expired requests remain");
        let trail = f.sigil.audit_export(&admin, &f.tenant).await.unwrap();
        assert!(trail.lines().any(|l| l.contains("approval.purged") && l.contains(&old.id)), "the purge is not in the trail");
    }

    /// The approval is spent by the grant's commit: failing to write the `approval.used`
    /// entry after it (here: the tenant deleted meanwhile) must not withhold the
    /// presentation the approval was spent on.
    #[tokio::test]
    async fn a_spent_approval_yields_its_presentation_even_if_the_used_entry_fails() {
        let f = approval_fixture().await;
        let admin = testing::admin(&f.tenant);
        let a = ask(&f, "250.00").await.unwrap();
        f.sigil.decide_approval(&admin, &f.tenant, &a.id, crate::service::approvals::Decision::Approve).await.unwrap();
        let armed = crate::service::kernel::cache::pause::arm("presentations.approval_used", f.tenant.as_str());
        let (s, agent) = (f.sigil.clone(), f.agent.clone());
        let asked = tokio::spawn(async move { s.present(&agent, request("refunds:create", "orders/1", "250.00", "u1")).await });
        armed.arrived.notified().await;
        f.sigil.delete_tenant(&testing::operator(), &f.tenant).await.unwrap();
        armed.release.notify_one();
        asked.await.unwrap().expect("the approval was spent and no presentation returned");
    }

    /// A record decided while a listing reads the tenant's approvals is read again, not a
    /// failure of the whole list.
    #[tokio::test]
    async fn an_approval_listing_survives_a_decision_in_the_middle() {
        let f = approval_fixture().await;
        let admin = testing::admin(&f.tenant);
        let a = ask(&f, "250.00").await.unwrap();
        let armed = crate::service::kernel::cache::pause::arm("approvals.list", f.tenant.as_str());
        let (s, t, adm) = (f.sigil.clone(), f.tenant.clone(), admin.clone());
        let listing = tokio::spawn(async move { s.list_approvals(&adm, &t, None, None).await });
        armed.arrived.notified().await;
        f.sigil.decide_approval(&admin, &f.tenant, &a.id, crate::service::approvals::Decision::Approve).await.unwrap();
        armed.release.notify_one();
        let listed = listing.await.unwrap().expect("a record changed mid-list failed the list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, crate::service::model::records::ApprovalStatus::Approved);
    }

    /// A presentation that needs approval verifies only with the matching tenant-signed
    /// approval inside: the agent dropping it, or keeping it for another amount, and
    /// re-signing with its own key gets `approval_missing`.
    #[tokio::test]
    async fn a_presentation_without_its_matching_approval_is_refused() {
        let f = approval_fixture().await;
        let admin = testing::admin(&f.tenant);
        let Caller::Agent { agent: agent_id, .. } = &f.agent else { unreachable!() };
        let Outcome::Approval(a) =
            f.sigil.present_or_approval(&f.agent, request("refunds:create", "orders/1", "250.00", "a0")).await.unwrap()
        else {
            panic!("no approval asked for")
        };
        f.sigil.decide_approval(&admin, &f.tenant, &a.id, crate::service::approvals::Decision::Approve).await.unwrap();
        let p = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "250.00", "a1")).await.unwrap();
        let r = f.sigil.verify_presentation(&p.document(), opts("a1")).await.unwrap();
        assert!(r.verified(), "{:?}", r.report.errors());
        assert!(r.approval.is_some());

        let wallet = f.sigil.wallet(&f.tenant, agent_id).await.unwrap();
        let resign = |mut doc: Value, challenge: &str| {
            let o = ProofOptions {
                cryptosuite: Default::default(),
                verification_method: format!("{}#key-{}", wallet.did, wallet.key_version),
                proof_purpose: "authentication",
                created: rfc3339(f.sigil.now()),
                expires: Some(rfc3339(f.sigil.now() + SignedDuration::from_secs(60))),
                challenge: Some(challenge.into()),
                domain: Some("shop.example".into()),
            };
            let Value::Object(m) = doc.take() else { unreachable!() };
            proof::sign(m, &o, &wallet.signer).unwrap()
        };
        // Dropped: only the identity and the delegation are left.
        let mut dropped = p.document();
        dropped["verifiableCredential"].as_array_mut().unwrap().truncate(2);
        let r = f.sigil.verify_presentation(&resign(dropped, "a2"), opts("a2")).await.unwrap();
        assert_eq!(r.report.codes(), vec!["approval_missing"], "{:?}", r.report.errors());
        // Kept, for another request: the hash no longer matches.
        let mut other = p.document();
        other["action"]["context"]["amount"] = "260.00".into();
        let r = f.sigil.verify_presentation(&resign(other, "a3"), opts("a3")).await.unwrap();
        assert_eq!(r.report.codes(), vec!["approval_missing"], "{:?}", r.report.errors());
        // Below the threshold no approval is needed, so none is asked of the verifier.
        let mut below = p.document();
        below["verifiableCredential"].as_array_mut().unwrap().truncate(2);
        below["action"]["context"]["amount"] = "150.00".into();
        let r = f.sigil.verify_presentation(&resign(below, "a4"), opts("a4")).await.unwrap();
        assert!(r.verified(), "{:?}", r.report.errors());
    }

    /// These tests send many denied requests on purpose; the guardrails have their own tests.
    fn relaxed() -> crate::service::guardrails::GuardrailSettings {
        crate::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 0,
            ..Default::default()
        }
    }

    fn request(action: &str, resource: &str, amount: &str, challenge: &str) -> PresentationRequest {
        let mut context = Map::new();
        context.insert("amount".into(), amount.into());
        context.insert("currency".into(), "EUR".into());
        PresentationRequest {
            action: action.into(),
            resource: Some(resource.into()),
            context,
            challenge: challenge.into(),
            domain: "shop.example".into(),
            format: Format::LdpVp,
            expires_in: Some(60),
        }
    }

    fn opts(challenge: &str) -> crate::service::Expectation {
        crate::service::Expectation { challenge: Some(challenge.into()), domain: Some("shop.example".into()), ..Default::default() }
    }

    #[tokio::test]
    async fn proofs_expire_on_the_injected_clock() {
        let f = fixture(&["refunds:create"], "500.00").await;
        let p = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c1")).await.unwrap();
        f.clock.advance_secs(61);
        let r = f.sigil.verify_presentation(&p.document(), opts("c1")).await.unwrap();
        assert_eq!(r.report.codes(), vec!["proof_expired"]);
        let p = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c2")).await.unwrap();
        f.clock.advance_secs(59);
        assert!(f.sigil.verify_presentation(&p.document(), opts("c2")).await.unwrap().verified());
    }

    /// The challenge lease (`verification`): claims under it, a floor after an unclean
    /// stop that refuses exactly what may have been claimed, and a floor that outlives
    /// later clean stops.
    #[tokio::test]
    async fn an_unclean_stop_refuses_presentations_created_under_its_lease() {
        let f = fixture(&["refunds:create"], "500.00").await;
        let lease_record = || async { f.sigil.store.get(crate::store::keys::meta::CHALLENGE_LEASE).await.unwrap().unwrap() };
        let p1 = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c1")).await.unwrap();
        assert!(f.sigil.verify_presentation(&p1.document(), opts("c1")).await.unwrap().verified());
        // The first claim opened a durable lease two seconds ahead, with no floor.
        let now = f.sigil.now().as_millisecond();
        let rec = lease_record().await;
        assert_eq!((&rec[..8], &rec[8..]), (&i64::MIN.to_be_bytes()[..], &(now + 2_000).to_be_bytes()[..]));
        let p2 = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c2")).await.unwrap();
        assert!(f.sigil.verify_presentation(&p2.document(), opts("c2")).await.unwrap().verified());
        assert_eq!(f.sigil.verify_presentation(&p2.document(), opts("c2")).await.unwrap().report.codes(), vec!["replayed"]);

        // The lease was never closed, as after `kill -9`: a new run over the same store
        // refuses every presentation created before the lease end, even one never verified.
        let unverified = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c3")).await.unwrap();
        let reopen = || testing::sigil_with_store(f.dir.path(), f.sigil.store.clone(), f.clock.clone());
        let second = reopen();
        let floor = second.open_challenge_lease().await.unwrap().unwrap();
        assert_eq!(floor.as_millisecond(), now + 2_000);
        for (p, c) in [(&p2, "c2"), (&unverified, "c3")] {
            let r = second.verify_presentation(&p.document(), opts(c)).await.unwrap();
            assert_eq!(r.report.codes(), vec!["replayed"], "{c}");
            assert!(r.report.checks.iter().any(|c| c.detail.contains("stopped uncleanly")));
        }
        // Without a challenge nothing is claimed, so the floor does not apply.
        let no_challenge = crate::service::Expectation { challenge: None, ..opts("c3") };
        assert!(second.verify_presentation(&unverified.document(), no_challenge).await.unwrap().verified());
        // Presentations made once the floor has passed verify as usual.
        f.clock.advance_secs(2);
        let p4 = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c4")).await.unwrap();
        assert!(second.verify_presentation(&p4.document(), opts("c4")).await.unwrap().verified());

        // A clean stop closes the lease but keeps the floor for the runs after it.
        second.close_challenge_lease().await.unwrap();
        let rec = lease_record().await;
        assert_eq!((&rec[..8], &rec[8..]), (&(now + 2_000).to_be_bytes()[..], &i64::MIN.to_be_bytes()[..]));
        let third = reopen();
        assert_eq!(third.open_challenge_lease().await.unwrap(), Some(floor));
        assert_eq!(third.verify_presentation(&unverified.document(), opts("c3")).await.unwrap().report.codes(), vec!["replayed"]);
    }

    /// The one-time key is (holder, domain, challenge): two verifiers that issue the same
    /// challenge to one agent each verify their own presentation once, and a claim made
    /// before the domain was part of the key still spends the pair.
    #[tokio::test]
    async fn a_challenge_is_spent_per_domain() {
        let f = fixture(&["refunds:create"], "500.00").await;
        let at = |domain: &str, challenge: &str| PresentationRequest {
            domain: domain.into(),
            ..request("refunds:create", "orders/1", "1.00", challenge)
        };
        let expect = |domain: &str, challenge: &str| crate::service::Expectation {
            challenge: Some(challenge.into()),
            domain: Some(domain.into()),
            ..Default::default()
        };
        let shop = f.sigil.present(&f.agent, at("shop.example", "1")).await.unwrap();
        let bank = f.sigil.present(&f.agent, at("bank.example", "1")).await.unwrap();
        assert!(f.sigil.verify_presentation(&shop.document(), expect("shop.example", "1")).await.unwrap().verified());
        let r = f.sigil.verify_presentation(&bank.document(), expect("bank.example", "1")).await.unwrap();
        assert!(r.verified(), "the other verifier's presentation was spent by the first: {:?}", r.report.codes());
        for (p, d) in [(&shop, "shop.example"), (&bank, "bank.example")] {
            assert_eq!(f.sigil.verify_presentation(&p.document(), expect(d, "1")).await.unwrap().report.codes(), vec!["replayed"]);
        }
        // A claim in the form stored before this change (holder, challenge) still counts.
        let old = f.sigil.present(&f.agent, at("shop.example", "2")).await.unwrap();
        let holder = old.document()["holder"].as_str().unwrap().to_owned();
        let mut h = Sha256::new();
        h.update(holder.as_bytes());
        h.update([0]);
        h.update(b"2");
        let mut t = crate::store::Txn::new();
        t.put(crate::store::keys::replay(&hex::encode(h.finalize())), i64::MAX.to_be_bytes().to_vec());
        f.sigil.store.commit(t).await.unwrap();
        assert_eq!(
            f.sigil.verify_presentation(&old.document(), expect("shop.example", "2")).await.unwrap().report.codes(),
            vec!["replayed"]
        );
    }

    /// A day's spend is stored sealed (never the amount in clear), written compare-and-set
    /// on its stored bytes; a counter an older release stored in clear still counts and is
    /// sealed by the next spend.
    #[tokio::test]
    async fn daily_budgets_are_sealed_and_older_counters_still_count() {
        let f = fixture_with(&["refunds:create"], "100.00", Some("100.00")).await;
        f.sigil.present(&f.agent, request("refunds:create", "orders/1", "30.00", "c1")).await.unwrap();
        let counter = || async {
            let rows = f.sigil.store.scan(format!("t/{}/bd/", f.tenant).as_bytes(), None, 10).await.unwrap();
            assert_eq!(rows.len(), 1);
            rows.into_iter().next().unwrap()
        };
        let (key, stored) = counter().await;
        assert_eq!(stored.first(), Some(&crate::crypto::BLOB_VERSION), "the counter is not sealed: {:?}", String::from_utf8_lossy(&stored));
        assert!(!stored.windows(2).any(|w| w == b"30"), "the amount is readable at rest");
        // Sealing the same amount twice gives different bytes: the compare-and-set is on
        // the bytes a writer read, never on the amount.
        let tk = f.sigil.tenant_keys(&f.tenant).await.unwrap();
        let parts: Vec<String> = String::from_utf8(key.clone()).unwrap().rsplitn(3, '/').map(str::to_owned).collect();
        let (day, id) = (&parts[0], &parts[1]);
        let again = f.sigil.seal_budget(&tk, &f.tenant, id, day, "30.00".parse().unwrap()).unwrap();
        assert_ne!(again, stored);
        assert_eq!(f.sigil.budget_spent(&tk, &f.tenant, id, day).await.unwrap().amount, "30.00".parse().unwrap());

        // A store from before: the counter in clear, and no record manifests (built
        // from what is stored when such a store is upgraded).
        let mut t = crate::store::Txn::new();
        t.put(key.clone(), b"60.00".to_vec());
        t.delete(crate::store::keys::manifest_root(&f.tenant));
        for (k, _) in f.sigil.store.scan(format!("t/{}/mt/", f.tenant).as_bytes(), None, 1000).await.unwrap() {
            t.delete(k);
        }
        f.sigil.store.commit(t).await.unwrap();
        let upgraded = testing::sigil_with_store(f.dir.path(), f.sigil.store.clone(), f.clock.clone());
        upgraded.build_missing_manifests().await.unwrap();
        let tk = upgraded.tenant_keys(&f.tenant).await.unwrap();
        upgraded.set_guardrails(&testing::admin(&f.tenant), &f.tenant, relaxed()).await.unwrap();
        upgraded.present(&f.agent, request("refunds:create", "orders/1", "30.00", "c2")).await.unwrap();
        let (_, stored) = counter().await;
        assert_eq!(stored.first(), Some(&crate::crypto::BLOB_VERSION), "the older counter was not sealed by the next spend");
        assert_eq!(upgraded.budget_spent(&tk, &f.tenant, id, day).await.unwrap().amount, "90.00".parse().unwrap());
        let denied = upgraded.present(&f.agent, request("refunds:create", "orders/1", "20.00", "c3")).await.unwrap_err();
        assert!(matches!(denied, ServiceError::Forbidden { code: ErrorCode::DailyLimitExceeded, .. }), "{denied:?}");
    }

    #[tokio::test]
    async fn grants_and_denials_are_audited_without_secrets() {
        let f = fixture(&["refunds:create"], "500.00").await;
        f.sigil.present(&f.agent, request("refunds:create", "orders/1", "10.00", "c1")).await.unwrap();
        let denied = f.sigil.present(&f.agent, request("refunds:create", "orders/1", "900.00", "c2")).await.unwrap_err();
        assert!(matches!(denied, ServiceError::Forbidden { code: ErrorCode::AmountExceedsLimit, .. }));
        let entries = f.sigil.audit_entries(&f.tenant, 0, 100).await.unwrap();
        let kinds: Vec<&str> = entries.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(&kinds[kinds.len() - 2..], ["presentation.granted", "presentation.denied"]);
        let granted = &entries[entries.len() - 2];
        assert_eq!(granted.details["credential_ids"].as_array().unwrap().len(), 2);
        assert_eq!(granted.details["vp_hash"].as_str().unwrap().len(), 64);
        assert_eq!(entries.last().unwrap().details["reason"], "amount_exceeds_limit");
        assert!(granted.actor.starts_with("agent:"));
        crate::audit::verify_chain(&entries, entries[0].seq, &entries[0].prev).unwrap();
    }

    fn oracle(action: &str, resource: &str, amount: u32) -> bool {
        let action_ok = action == "refunds:create" || action.strip_prefix("orders:").is_some_and(|v| !v.is_empty());
        let res_ok = resource.strip_prefix("orders/").is_some_and(|r| !r.is_empty() && !r.contains('/') && r != "." && r != "..");
        action_ok && res_ok && amount <= 250
    }

    #[test]
    fn no_presentation_for_uncovered_requests() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let f = rt.block_on(fixture(&["refunds:create", "orders:*"], "250"));
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 64, ..Default::default() });
        let strategy = (
            proptest::sample::select(vec!["refunds:create", "refunds:delete", "orders:read", "orders:", "ordersx:read", "invoices:pay"]),
            proptest::sample::select(vec!["orders/1", "orders/1/2", "orders/.", "customers/1", "orders"]),
            0u32..400,
        );
        let counter = std::sync::atomic::AtomicU64::new(0);
        runner
            .run(&strategy, |(action, resource, amount)| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let req = request(action, resource, &amount.to_string(), &format!("c{n}"));
                let got = rt.block_on(f.sigil.present(&f.agent, req));
                let covered = oracle(action, resource, amount);
                prop_assert_eq!(got.is_ok(), covered, "{} {} {}", action, resource, amount);
                if let Ok(p) = got {
                    // What was signed is exactly what was asked, and it verifies.
                    prop_assert_eq!(&p.document()["action"]["name"], action);
                    let r = rt.block_on(f.sigil.verify_presentation(&p.document(), opts(&format!("c{n}")))).unwrap();
                    prop_assert!(r.verified(), "{:?}", r.report.errors());
                }
                Ok(())
            })
            .unwrap();
    }
}
