//! Public, unauthenticated documents: DID documents, status lists, Sigil's JSON-LD
//! context and each tenant's latest signed audit checkpoint. These are what independent
//! verifiers and audit monitors fetch.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::ApiError;
use super::{parse_agent, parse_tenant};
use crate::service::Sigil;
use crate::vc::credential::SIGIL_CONTEXT;

/// Sigil's JSON-LD context (terms of its credentials and presentations).
#[utoipa::path(get, path = "/ns/v1", tag = "public", operation_id = "get_context",
    responses((status = 200, description = "JSON-LD context", content_type = "application/ld+json", body = Object)))]
pub async fn context() -> HttpResponse {
    HttpResponse::Ok().content_type("application/ld+json").insert_header(("Cache-Control", "public, max-age=86400")).body(SIGIL_CONTEXT)
}

/// The tenant (issuer) DID document, `did:web`.
#[utoipa::path(get, path = "/tenants/{tenant}/did.json", tag = "public", operation_id = "get_tenant_did",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "DID document", content_type = "application/did+json", body = Object)))]
pub async fn tenant_did(sigil: web::Data<Sigil>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let t = parse_tenant(&path)?;
    let doc = sigil.tenant_did_document(&t).await?;
    Ok(HttpResponse::Ok().content_type("application/did+json").insert_header(("Cache-Control", "max-age=60")).json(doc))
}

/// An agent's DID document, `did:web`.
#[utoipa::path(get, path = "/tenants/{tenant}/agents/{agent}/did.json", tag = "public", operation_id = "get_agent_did",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, description = "DID document", content_type = "application/did+json", body = Object)))]
pub async fn agent_did(sigil: web::Data<Sigil>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    let doc = sigil.agent_did_document(&parse_tenant(&t)?, &parse_agent(&a)?).await?;
    Ok(HttpResponse::Ok().content_type("application/did+json").insert_header(("Cache-Control", "max-age=60")).json(doc))
}

/// A signed `BitstringStatusListCredential` (`r1`, `s1`, …).
#[utoipa::path(get, path = "/tenants/{tenant}/status/{list}", tag = "public", operation_id = "get_status_list",
    params(("tenant" = String, Path, description = "Tenant id"), ("list" = String, Path, description = "List name, e.g. r1 (revocation) or s1 (suspension)")),
    responses((status = 200, description = "Status list credential", body = Object)))]
pub async fn status_list(sigil: web::Data<Sigil>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, list) = path.into_inner();
    let t = parse_tenant(&t)?;
    let vc = sigil.status_list_credential(&t, &list).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-cache")).json(&*vc))
}

/// A tenant's signed audit checkpoint: "the chain of `tenant` had head `head` at `seq`",
/// signed by the tenant's audit key (`key`, listed in its DID document under
/// `auditCheckpoint`). The signature is base58btc multibase Ed25519 over the RFC 8785 form
/// of the other five fields.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditCheckpoint)]
pub struct AuditCheckpointDto {
    pub tenant: String,
    /// The seq of the last entry it covers (the checkpoint entry itself is the next one).
    pub seq: u64,
    /// The hash of that entry (hex).
    pub head: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// DID URL of the audit key.
    pub key: String,
    pub signature: String,
}

/// The tenant's latest signed audit checkpoint, for monitors (`sigil audit watch`) that
/// check each one extends the last they saw. `404 checkpoint_not_found` before the first
/// (checkpoints are made periodically and at every export).
#[utoipa::path(get, path = "/tenants/{tenant}/audit/checkpoint", tag = "public", operation_id = "get_audit_checkpoint",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The latest signed checkpoint", body = AuditCheckpointDto),
        (status = 404, description = "No such tenant (`tenant_not_found`), or no checkpoint yet (`checkpoint_not_found`)",
         body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn audit_checkpoint(sigil: web::Data<Sigil>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let cp = sigil.audit_latest_checkpoint(&parse_tenant(&path)?).await?;
    let dto = AuditCheckpointDto { tenant: cp.tenant, seq: cp.seq, head: cp.head, time: cp.time, key: cp.key, signature: cp.signature };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-cache")).json(dto))
}
