//! `POST /v1/presentations` (agent token), `POST /v1/verify` and the VC-API presentation
//! verify route (no token).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Body;
use super::auth::Auth;
use super::parse_tenant;
use super::problem::{ApiError, Problem};
use super::vc_api::VerifyResponse as VcApiVerifyResponse;
use crate::clock::rfc3339;
use crate::service::presentations::{Format, PresentationRequest};
use crate::service::{Expectation, Sigil};
use crate::vc::presentation::PresentationReport;

/// Securing format of a presentation.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schema(as = PresentationFormat)]
pub enum FormatDto {
    /// Data Integrity proof (`eddsa-jcs-2022`), JSON-LD.
    #[default]
    LdpVp,
    /// VC-JOSE-COSE compact JWS (`vp+jwt`).
    JwtVp,
}

/// `POST /v1/presentations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "refunds:create", "resource": "orders/123", "context": {"amount": "120.00", "currency": "EUR"},
    "challenge": "c0ffee-6f1d", "domain": "payments.example"}))]
pub struct CreatePresentationRequest {
    /// The action, e.g. `refunds:create`: 2–8 `:`-separated segments of `a-z 0-9 _ . -`.
    #[schema(schema_with = super::constraints::action)]
    pub action: String,
    /// The resource acted on, e.g. `orders/123`: `/`-separated segments, none empty, `.` or `..`.
    #[schema(schema_with = super::constraints::resource_opt)]
    pub resource: Option<String>,
    /// Facts about the action (at most 32 keys, 4 KiB); `amount` (a decimal string) and
    /// `currency` go together and are checked against limits.
    #[schema(schema_with = super::constraints::context)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// The verifier's nonce: printable text.
    #[schema(schema_with = super::constraints::printable_256)]
    pub challenge: String,
    /// The verifier's domain: printable text.
    #[schema(schema_with = super::constraints::printable_256)]
    pub domain: String,
    pub format: Option<FormatDto>,
    /// Lifetime in seconds (default 300, at most the configured maximum).
    #[schema(minimum = 1, maximum = 86400)]
    pub expires_in: Option<u64>,
}

/// A signed, action-bound presentation.
// The body of `POST /v1/presentations` is written by `presentation_body`; this documents it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PresentationResponse {
    /// The `VerifiablePresentation` object (`ldp_vp`) or compact JWS string (`jwt_vp`).
    #[schema(value_type = serde_json::Value)]
    pub presentation: serde_json::Value,
    pub format: FormatDto,
    /// The identity credential and the delegation that authorised the action.
    pub credential_ids: Vec<String>,
    pub expires_at: String,
}

/// The action a verifier is about to allow.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAction {
    pub action: String,
    pub resource: Option<String>,
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /v1/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// A presentation object (`ldp_vp`) or compact JWS (`jwt_vp`).
    #[schema(value_type = serde_json::Value)]
    pub presentation: serde_json::Value,
    pub challenge: Option<String>,
    pub domain: Option<String>,
    pub action: Option<ExpectedAction>,
    /// Trust only these issuer DIDs for this request. Narrows the deployment's policy (its
    /// own tenants and the operator's `--trust-issuer` list); it can never add an issuer.
    #[schema(max_items = 16, value_type = Option<Vec<String>>)]
    pub trusted_issuers: Option<Vec<String>>,
}

/// One verification check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VerificationCheck)]
pub struct CheckDto {
    pub check: String,
    pub ok: bool,
    pub detail: String,
    /// Machine code of a failed check (`invalid_signature`, `replayed`, `revoked`, `challenge_mismatch`, …).
    pub code: Option<String>,
}

/// Verification result.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PresentationVerification)]
pub struct VerifyResponse {
    /// True only when every check passed, `issuer_trusted` included.
    pub verified: bool,
    /// Every enclosed credential comes from an issuer this verifier trusts for its type.
    pub issuer_trusted: bool,
    pub holder: Option<String>,
    pub checks: Vec<CheckDto>,
    pub errors: Vec<String>,
    /// The human approval the presentation carries, when its action needed one:
    /// `{id, issuer, approver, approved_at, request_hash, delegation}`.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub approval: Option<serde_json::Value>,
}

impl From<PresentationReport> for VerifyResponse {
    fn from(r: PresentationReport) -> Self {
        Self {
            verified: r.verified(),
            issuer_trusted: r.issuer_trusted(),
            errors: r.report.errors(),
            approval: r.approval,
            holder: r.holder,
            checks: r
                .report
                .checks
                .into_iter()
                .map(|c| CheckDto { check: c.check, ok: c.ok, detail: c.detail, code: c.code.map(str::to_owned) })
                .collect(),
        }
    }
}

/// Request a presentation bound to one action; signed only if the agent's authority covers it.
#[utoipa::path(post, path = "/v1/presentations", tag = "agent", operation_id = "create_presentation",
    request_body = CreatePresentationRequest,
    responses((status = 200, description = "Signed presentation", body = PresentationResponse),
              (status = 202, description = "The delegation requires human approval for this request: the approval request \
(`id`, what is asked, `expires_at`). Once approved, the same request (any challenge) or `POST /v1/approvals/{id}/presentation` \
yields the presentation carrying the approval", body = super::approvals::ApprovalRequested),
              (status = 403, description = "Not covered: `action_not_allowed`, `resource_not_allowed`, `amount_exceeds_limit`, \
`currency_mismatch`, `outside_schedule`, `credential_expired`, `credential_not_yet_valid`, `credential_revoked`, \
`credential_suspended`, `agent_suspended`, `no_delegation`, `approval_denied`", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create(sigil: web::Data<Sigil>, auth: Auth, body: Body<CreatePresentationRequest>) -> Result<HttpResponse, ApiError> {
    let (req, format) = presentation_request(body.into_inner());
    let o = sigil.present_or_approval(&auth.0, req).await?;
    super::approvals::outcome_response(&sigil, o, format)
}

/// The use case's request from the wire's (REST and the MCP `request_presentation` tool).
pub(crate) fn presentation_request(b: CreatePresentationRequest) -> (PresentationRequest, FormatDto) {
    let format = b.format.unwrap_or_default();
    let req = PresentationRequest {
        action: b.action,
        resource: b.resource,
        context: b.context.unwrap_or_default(),
        challenge: b.challenge,
        domain: b.domain,
        format: match format {
            FormatDto::LdpVp => Format::LdpVp,
            FormatDto::JwtVp => Format::JwtVp,
        },
        expires_in: b.expires_in,
    };
    (req, format)
}

/// The [`PresentationResponse`] body, written around the presentation's JSON bytes: the hot
/// path never turns the credentials back into `Value` trees just to serialize them again.
pub(crate) fn presentation_body(p: &crate::service::presentations::Presentation, format: FormatDto) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct Rest<'a> {
        format: FormatDto,
        credential_ids: &'a [String],
        expires_at: String,
    }
    let rest = serde_json::to_vec(&Rest { format, credential_ids: &p.credential_ids, expires_at: rfc3339(p.expires_at) })
        .map_err(|e| ApiError::from(crate::service::ServiceError::Internal(e.to_string())))?;
    let mut out = Vec::with_capacity(p.json.len() + rest.len() + 24);
    out.extend_from_slice(b"{\"presentation\":");
    out.extend_from_slice(&p.json);
    out.push(b',');
    out.extend_from_slice(rest.get(1..).unwrap_or_default());
    Ok(out)
}

/// Verify a presentation; a challenge is accepted once within the proof's lifetime.
///
/// `verified` is true only when the signatures, status, validity, holder binding, action
/// coverage **and issuer trust** all hold. Trusted by default: this deployment's tenants,
/// each only for its own agents, plus the issuers the operator configured
/// (`--trust-issuer`); `trusted_issuers` narrows that, never widens it. Nothing is fetched
/// for an untrusted issuer, and a proof may live at most `--max-presentation-ttl` seconds
/// (`expires_too_far`). When `challenge` is given, the (holder, domain, challenge) triple is
/// spent and never verifies again, also across crashes: after an unclean stop or a restore from
/// a backup, a presentation created before it fails with `replayed` and must be requested
/// anew. Limited per client address (`--verify-rate`).
#[utoipa::path(post, path = "/v1/verify", tag = "verify", operation_id = "verify_presentation",
    request_body = VerifyRequest,
    responses((status = 200, description = "Verification result (see `verified`)", body = VerifyResponse),
              (status = 429, description = "`rate_limited`: too many verifications from this address", body = Problem, content_type = "application/problem+json")))]
pub async fn verify(req: actix_web::HttpRequest, sigil: web::Data<Sigil>, body: Body<VerifyRequest>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(verify_request(&sigil, super::client::client_ip(&req), body.into_inner()).await?))
}

/// `/v1/verify` and the MCP `verify_presentation` tool: the per-address rate, the request's
/// own bounds, then the verification use case.
pub(crate) async fn verify_request(
    sigil: &Sigil,
    client: Option<std::net::IpAddr>,
    b: VerifyRequest,
) -> Result<VerifyResponse, crate::service::ServiceError> {
    sigil.check_verify_rate(client)?;
    if let Some(t) = &b.trusted_issuers {
        if t.len() > 16 || t.iter().any(|d| d.is_empty() || d.len() > 512) {
            return Err(crate::service::ServiceError::invalid("trusted_issuers takes at most 16 DIDs of at most 512 characters"));
        }
    }
    let expect = Expectation {
        challenge: b.challenge,
        domain: b.domain,
        action: b.action.and_then(|a| serde_json::to_value(a).ok()),
        trusted_issuers: b.trusted_issuers,
    };
    Ok(VerifyResponse::from(sigil.verify_presentation(&b.presentation, expect).await?))
}

/// VC-API presentation verify request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VcApiPresentationVerify {
    /// A VC 2.0 presentation: an object secured with a Data Integrity proof, or a `vp+jwt`.
    #[schema(value_type = serde_json::Value)]
    pub verifiable_presentation: serde_json::Value,
    pub options: Option<VcApiPresentationOptions>,
}

/// What the verifier asks of the presentation's proof (VC-API `VerifyPresentationOptions`).
/// Any other option is refused, as the VC-API requires of options it does not implement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VcApiPresentationOptions {
    /// The challenge the verifier issued: the proof's must equal it, and a verified
    /// (holder, challenge) pair is spent (never verifies again).
    pub challenge: Option<String>,
    /// The verifier's domain: the proof's must equal it.
    pub domain: Option<String>,
}

/// Verify a presentation in the W3C VC-API shape (`options.challenge`, `options.domain`).
///
/// Any VC 2.0 presentation: credentials about anyone; `holder`, when named, must be the
/// one whose key made the proof; the proof's `challenge` and `domain` are checked when
/// `options` names them, its `expires` when it has one. Sigil's action-bound rules are
/// `/v1/verify`'s. Issuer trust is reported in `issuerTrusted`, not counted in `verified`.
#[utoipa::path(post, path = "/tenants/{tenant}/vc-api/presentations/verify", tag = "vc-api", operation_id = "vc_api_verify_presentation",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = VcApiPresentationVerify,
    responses((status = 200, description = "Verified", body = VcApiVerifyResponse),
              (status = 422, description = "Not verified", body = VcApiVerifyResponse),
              (status = 429, description = "`rate_limited`: too many verifications from this address", body = Problem, content_type = "application/problem+json")))]
pub async fn vc_api_verify(
    req: actix_web::HttpRequest,
    sigil: web::Data<Sigil>,
    path: web::Path<String>,
    body: Body<VcApiPresentationVerify>,
) -> Result<HttpResponse, ApiError> {
    sigil.check_verify_rate(super::client::client_ip(&req))?;
    let tenant = parse_tenant(&path)?;
    sigil.tenant_did_document(&tenant).await?;
    let b = body.into_inner();
    let o = b.options.unwrap_or_default();
    let report = sigil.vc_api_verify_presentation(&tenant, &b.verifiable_presentation, o.challenge, o.domain).await?;
    Ok(VcApiVerifyResponse::answer(&report.report))
}
