//! The tenant audit trail (tenant admin and auditor tokens; read-only).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::parse_tenant;
use super::problem::ApiError;
use crate::service::Sigil;
use crate::service::audit::AuditQuery;

/// Filters for `GET …/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries after this seq (the `next_cursor` of the previous page).
    pub after: Option<u64>,
    /// Only entries about this agent.
    pub agent: Option<String>,
    /// Event type or prefix (`presentation`, `presentation.denied`, …).
    pub event: Option<String>,
    /// Only entries made while serving this request (`X-Request-Id`).
    pub request_id: Option<String>,
    /// Entries at or after this time (RFC 3339); the page starts there without reading the
    /// entries before it.
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    pub to: Option<String>,
    /// Page size 1–500 (default 100).
    pub limit: Option<u32>,
}

/// One audit entry (hash-chained; see `audit/mod.rs`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntryDto {
    pub seq: u64,
    pub time: String,
    pub tenant: String,
    pub event: String,
    pub actor: String,
    pub agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = serde_json::Value)]
    pub details: serde_json::Value,
    pub prev: String,
    pub hash: String,
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryDto>,
    pub next_cursor: Option<String>,
}

/// Result of verifying the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub entries: usize,
    pub head_hash: String,
    pub checkpoints: usize,
    /// The first entry that fails: position, seq and reason.
    #[schema(value_type = Option<serde_json::Value>)]
    pub first_bad: Option<serde_json::Value>,
}

fn ts(field: &str, s: &Option<String>) -> Result<Option<jiff::Timestamp>, ApiError> {
    s.as_deref().map(|v| v.parse().map_err(|_| ApiError::bad_request(format!("{field} must be an RFC 3339 time")))).transpose()
}

/// Read audit entries, filtered, cursor-paginated.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit", tag = "audit", operation_id = "list_audit",
    params(("tenant" = String, Path, description = "Tenant id"), AuditParams),
    responses((status = 200, body = AuditPage)), security(("bearer" = [])))]
pub async fn list(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let query = AuditQuery {
        after: q.after,
        agent: q.agent.clone(),
        event: q.event.clone(),
        request_id: q.request_id.clone(),
        from: ts("from", &q.from)?,
        to: ts("to", &q.to)?,
        limit: q.limit.unwrap_or(100).clamp(1, 500) as usize,
    };
    let page = sigil.audit_list(&auth.0, &tenant, query).await?;
    let items = page
        .items
        .into_iter()
        .map(|e| AuditEntryDto {
            seq: e.seq,
            time: e.time,
            tenant: e.tenant,
            event: e.event,
            actor: e.actor,
            agent: e.agent,
            request_id: e.request_id,
            details: e.details,
            prev: e.prev,
            hash: e.hash,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { items, next_cursor: page.next_cursor }))
}

/// Verify the stored trail: hash chain and signed checkpoints.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit/verify", tag = "audit", operation_id = "verify_audit",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = AuditVerification)), security(("bearer" = [])))]
pub async fn verify(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let r = sigil.audit_verify(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok().json(AuditVerification {
        ok: r.ok,
        entries: r.entries,
        head_hash: r.head_hash,
        checkpoints: r.checkpoints,
        first_bad: r.first_bad.and_then(|b| serde_json::to_value(b).ok()),
    }))
}

/// Export the trail as JSON Lines (ends with a fresh signed checkpoint); verify offline with
/// `sigil audit verify FILE`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit/export", tag = "audit", operation_id = "export_audit",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "JSON Lines, one entry per line", content_type = "application/x-ndjson", body = String)),
    security(("bearer" = [])))]
pub async fn export(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let body = sigil.audit_export(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").body(body))
}
