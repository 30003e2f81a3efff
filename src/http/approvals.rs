//! Human approval routes: the approver's (`/v1/tenants/{tenant}/approvals…`), the
//! agent's (`/v1/approvals/{id}…`) and the tenant's approval settings (webhook, lifetime).
//! `POST /v1/presentations` answers `202` with an [`ApprovalRequested`] body when the
//! action needs approval first.
//!
//! Must never decide anything itself: who may decide, single use and expiry live in the
//! service (`ops::approvals`, `kernel::approval`); this module only parses and answers.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Body;
use super::auth::Auth;
use super::parse_tenant;
use super::presentations::{FormatDto, presentation_body};
use super::problem::{ApiError, Problem};
use crate::clock::rfc3339;
use crate::service::Sigil;
use crate::service::approvals::Decision;
use crate::service::presentations::{Format, Outcome};
use crate::service::records::{ApprovalRecord, ApprovalSettings};

/// One approval request: what is asked, by which agent under which delegation, and where
/// it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub status: String,
    pub agent_id: String,
    /// The delegation credential whose authority requires the approval.
    pub delegation_id: String,
    /// The identifier of the delegation's principal.
    pub principal: String,
    pub action: String,
    pub resource: Option<String>,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub context: serde_json::Map<String, serde_json::Value>,
    /// `context.amount`, when the request names one (a decimal string).
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// SHA-256 (hex) of what is approved: holder, delegation, action, resource, context.
    pub request_hash: String,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC: a pending request can no longer be decided, an approval no longer used.
    pub expires_at: String,
    /// Who decided (`token:<id>`), never a token.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub used_at: Option<String>,
}

impl ApprovalView {
    pub fn new(r: &ApprovalRecord, now: jiff::Timestamp) -> Self {
        let s = |k: &str| r.context.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
        Self {
            id: r.id.clone(),
            status: crate::service::approvals::effective_status(r, now).to_owned(),
            agent_id: r.agent.clone(),
            delegation_id: r.delegation.clone(),
            principal: r.principal.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            context: r.context.clone(),
            amount: s("amount"),
            currency: s("currency"),
            request_hash: r.request_hash.clone(),
            created: rfc3339(r.created),
            expires_at: rfc3339(r.expires),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at.map(rfc3339),
            used_at: r.used_at.map(rfc3339),
        }
    }
}

/// The `202` answer of a request that needs approval first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalRequested {
    pub approval: ApprovalView,
}

/// Approval requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
}

/// `GET /v1/tenants/{tenant}/approvals` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only approvals in this status: `pending`, `approved`, `denied`, `used` or `expired`.
    pub status: Option<String>,
    /// At most this many, 1–500 (default 50).
    pub limit: Option<u32>,
}

/// `POST /v1/approvals/{id}/presentation`: the verifier's fresh challenge and domain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPresentationRequest {
    #[schema(schema_with = super::constraints::printable_256)]
    pub challenge: String,
    #[schema(schema_with = super::constraints::printable_256)]
    pub domain: String,
    /// Only `ldp_vp`: the approval travels inside the Data Integrity presentation.
    pub format: Option<FormatDto>,
    #[schema(minimum = 1, maximum = 86400)]
    pub expires_in: Option<u64>,
}

/// Arguments of the MCP `approval_status` tool: the approval, and (to get the
/// presentation once approved) the verifier's fresh challenge and domain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatusArgs {
    /// The approval id `request_approval` answered.
    #[schema(min_length = 36, max_length = 36)]
    pub id: String,
    #[schema(schema_with = super::constraints::printable_256_opt)]
    pub challenge: Option<String>,
    #[schema(schema_with = super::constraints::printable_256_opt)]
    pub domain: Option<String>,
    #[schema(minimum = 1, maximum = 86400)]
    pub expires_in: Option<u64>,
}

/// The MCP tools' answer: the presentation body, or `{approval}` while one is awaited.
pub(crate) fn outcome_json(sigil: &Sigil, o: Outcome, format: FormatDto) -> Result<serde_json::Value, ApiError> {
    match o {
        Outcome::Presentation(p) => serde_json::from_slice(&presentation_body(&p, format)?)
            .map_err(|e| crate::service::ServiceError::Internal(e.to_string()).into()),
        Outcome::Approval(a) => Ok(serde_json::json!({"approval": ApprovalView::new(&a, sigil.now())})),
    }
}

/// The MCP `request_approval` tool: `POST /v1/presentations`, answering the approval
/// request (or the presentation when none is needed or it is already approved).
pub(crate) async fn mcp_request_approval(
    sigil: &Sigil,
    auth: &Auth,
    b: super::presentations::CreatePresentationRequest,
) -> Result<serde_json::Value, ApiError> {
    let (req, format) = super::presentations::presentation_request(b);
    let o = sigil.present_or_approval(&auth.0, req).await?;
    outcome_json(sigil, o, format)
}

/// The MCP `approval_status` tool: the approval's status, or with a challenge and domain
/// the presentation once it is approved.
pub(crate) async fn mcp_approval_status(sigil: &Sigil, auth: &Auth, a: ApprovalStatusArgs) -> Result<serde_json::Value, ApiError> {
    match (a.challenge, a.domain) {
        (Some(challenge), Some(domain)) => {
            let o = sigil.present_approved(&auth.0, &a.id, challenge, domain, Format::LdpVp, a.expires_in).await?;
            outcome_json(sigil, o, FormatDto::LdpVp)
        }
        (None, None) => {
            let r = sigil.approval_status(&auth.0, &a.id).await?;
            Ok(serde_json::json!({"approval": ApprovalView::new(&r, sigil.now())}))
        }
        _ => Err(ApiError::bad_request("challenge and domain go together")),
    }
}

/// A tenant's approval settings.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalSettings)]
pub struct ApprovalSettingsDto {
    /// HTTPS URL that new approval requests are POSTed to, signed by the tenant's issuer
    /// key (`Sigil-Signature: t=…,kid=…,sig=…` over `t.body`), under the egress policy.
    pub webhook_url: Option<String>,
    /// How long a request stays open and an approval usable, seconds (60–86400; default 900).
    #[schema(minimum = 60, maximum = 86400)]
    pub ttl_secs: Option<u64>,
}

/// The answer to a request that may need approval: `200` with the presentation, or `202`
/// with the approval request.
pub(crate) fn outcome_response(sigil: &Sigil, o: Outcome, format: FormatDto) -> Result<HttpResponse, ApiError> {
    match o {
        Outcome::Presentation(p) => Ok(HttpResponse::Ok().content_type("application/json").body(presentation_body(&p, format)?)),
        Outcome::Approval(a) => Ok(HttpResponse::Accepted().json(ApprovalRequested { approval: ApprovalView::new(&a, sigil.now()) })),
    }
}

/// List approval requests (approver or admin; an approver scoped to principals sees theirs).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/approvals", tag = "approvals", operation_id = "list_approvals",
    params(("tenant" = String, Path, description = "Tenant id"), ApprovalQuery),
    responses((status = 200, body = ApprovalList)), security(("bearer" = [])))]
pub async fn list(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    q: web::Query<ApprovalQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let items = sigil.list_approvals(&auth.0, &tenant, q.status.as_deref(), q.limit).await?;
    let now = sigil.now();
    Ok(HttpResponse::Ok().json(ApprovalList { items: items.iter().map(|r| ApprovalView::new(r, now)).collect() }))
}

/// Read one approval request (approver or admin).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/approvals/{approval}", tag = "approvals", operation_id = "get_approval",
    params(("tenant" = String, Path, description = "Tenant id"), ("approval" = String, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView),
              (status = 403, description = "`approval_out_of_scope`, `not_authorized`", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "`approval_not_found`", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let r = sigil.get_approval(&auth.0, &parse_tenant(&t)?, &id).await?;
    Ok(HttpResponse::Ok().json(ApprovalView::new(&r, sigil.now())))
}

async fn decide(sigil: &Sigil, auth: &Auth, path: (String, String), d: Decision) -> Result<HttpResponse, ApiError> {
    let (t, id) = path;
    let r = sigil.decide_approval(&auth.0, &parse_tenant(&t)?, &id, d).await?;
    Ok(HttpResponse::Ok().json(ApprovalView::new(&r, sigil.now())))
}

/// Approve a pending request (approver or admin; never an agent). Signs the approval
/// (approver, time, request hash) with the tenant's issuer key; the agent's next identical
/// request, or `POST /v1/approvals/{id}/presentation`, yields a presentation carrying it,
/// once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/approvals/{approval}/approve", tag = "approvals", operation_id = "approve_approval",
    params(("tenant" = String, Path, description = "Tenant id"), ("approval" = String, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView),
              (status = 403, description = "`not_authorized` (agent or auditor token), `approval_out_of_scope`", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "`approval_not_found` (also for another tenant's token)", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`approval_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 410, description = "`approval_expired`", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn approve(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    decide(&sigil, &auth, path.into_inner(), Decision::Approve).await
}

/// Deny a pending request (approver or admin). The agent's identical requests are refused
/// (`approval_denied`) until the approval's expiry.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/approvals/{approval}/deny", tag = "approvals", operation_id = "deny_approval",
    params(("tenant" = String, Path, description = "Tenant id"), ("approval" = String, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView),
              (status = 403, description = "`not_authorized`, `approval_out_of_scope`", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "`approval_not_found`", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`approval_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 410, description = "`approval_expired`", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn deny(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    decide(&sigil, &auth, path.into_inner(), Decision::Deny).await
}

/// The status of one of the calling agent's approval requests (agent token).
#[utoipa::path(get, path = "/v1/approvals/{approval}", tag = "agent", operation_id = "approval_status",
    params(("approval" = String, Path, description = "Approval id")),
    responses((status = 200, body = ApprovalView),
              (status = 404, description = "`approval_not_found`", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn status(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let r = sigil.approval_status(&auth.0, &path).await?;
    Ok(HttpResponse::Ok().json(ApprovalView::new(&r, sigil.now())))
}

/// The presentation for an approved request, under the verifier's fresh challenge and
/// domain (agent token): `200` with a presentation carrying the approval (which is then
/// spent), or `202` with the approval while it is still pending (a new one if it expired).
#[utoipa::path(post, path = "/v1/approvals/{approval}/presentation", tag = "agent", operation_id = "approval_presentation",
    params(("approval" = String, Path, description = "Approval id")),
    request_body = ApprovalPresentationRequest,
    responses((status = 200, description = "Signed presentation carrying the approval", body = super::presentations::PresentationResponse),
              (status = 202, description = "Still waiting for a decision", body = ApprovalRequested),
              (status = 403, description = "`approval_denied`, or any refusal of `POST /v1/presentations`", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "`approval_not_found`", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`approval_decided`: already used", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn presentation(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<ApprovalPresentationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let format = b.format.unwrap_or_default();
    let f = match format {
        FormatDto::LdpVp => Format::LdpVp,
        FormatDto::JwtVp => Format::JwtVp,
    };
    let o = sigil.present_approved(&auth.0, &path, b.challenge, b.domain, f, b.expires_in).await?;
    outcome_response(&sigil, o, format)
}

/// The tenant's approval settings (admin or auditor).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/approval-settings", tag = "approvals", operation_id = "get_approval_settings",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = ApprovalSettingsDto)), security(("bearer" = [])))]
pub async fn get_settings(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let s = sigil.approval_settings(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok().json(ApprovalSettingsDto { webhook_url: s.webhook_url, ttl_secs: s.ttl_secs }))
}

/// Set the tenant's approval settings (admin): the webhook new requests are announced to
/// (refused at once when the egress policy refuses it) and the approval lifetime.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/approval-settings", tag = "approvals", operation_id = "set_approval_settings",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = ApprovalSettingsDto,
    responses((status = 200, body = ApprovalSettingsDto),
              (status = 400, description = "`invalid_request`: a URL the egress policy refuses, a lifetime out of range", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn set_settings(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<ApprovalSettingsDto>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let s = sigil
        .set_approval_settings(&auth.0, &parse_tenant(&path)?, ApprovalSettings { webhook_url: b.webhook_url, ttl_secs: b.ttl_secs })
        .await?;
    Ok(HttpResponse::Ok().json(ApprovalSettingsDto { webhook_url: s.webhook_url, ttl_secs: s.ttl_secs }))
}
