//! Public, unauthenticated documents: DID documents, status lists and Sigil's JSON-LD
//! context. These are what independent verifiers fetch.

use actix_web::{HttpResponse, web};

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
