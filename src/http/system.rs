//! Operational routes: liveness and readiness (public), backups and the operator token
//! (operator).

use actix_web::{HttpResponse, web};

use super::auth::Auth;
use super::dto::{Health, OperatorTokenResponse};
use super::problem::ApiError;
use crate::service::Sigil;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", operation_id = "healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".into() })
}

/// Readiness: the store is open and answers, the root key is loaded.
#[utoipa::path(get, path = "/readyz", tag = "system", operation_id = "readyz",
    responses((status = 200, body = Health), (status = 503, description = "Not ready", body = super::problem::Problem, content_type = "application/problem+json")),
    )]
pub async fn readyz(sigil: web::Data<Sigil>) -> Result<HttpResponse, ApiError> {
    sigil.ready().await?;
    Ok(HttpResponse::Ok().json(Health { status: "ready".into() }))
}

/// `/docs` → `/docs/` (Swagger UI, served from embedded assets).
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::MovedPermanently().insert_header(("Location", "/docs/")).finish()
}

/// A consistent backup of the encrypted store (operator). Restore with `sigil restore`.
#[utoipa::path(get, path = "/v1/system/backup", tag = "system", operation_id = "backup",
    responses((status = 200, description = "Backup file (sealed records and the key check; no keys)", content_type = "application/octet-stream", body = Vec<u8>)),
    security(("bearer" = [])))]
pub async fn backup(sigil: web::Data<Sigil>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let bytes = sigil.backup(&auth.0).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", "attachment; filename=\"sigil.backup\""))
        .body(bytes))
}

/// Rotate the operator token (operator): a new one, shown once; every earlier operator
/// token, the caller's included, fails for every request that starts after this response.
/// The generated `DATA/operator.token`, if still there, is removed (its token is revoked).
#[utoipa::path(post, path = "/v1/system/operator-token/rotate", tag = "tokens", operation_id = "rotate_operator_token",
    responses((status = 201, description = "New operator token (shown once)", body = OperatorTokenResponse)),
    security(("bearer" = [])))]
pub async fn rotate_operator_token(sigil: web::Data<Sigil>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let issued = sigil.rotate_operator_token(&auth.0).await?;
    Ok(HttpResponse::Created().json(OperatorTokenResponse {
        token_id: issued.id.to_string(),
        token: issued.token.reveal_once(),
        revoked: issued.revoked,
    }))
}

/// Revoke every operator token (operator), the caller's included. Tenant, agent and
/// tenant-token routes keep working; the operator routes answer 401 until
/// `sigil operator-token rotate` issues a new token on the stopped data directory.
#[utoipa::path(post, path = "/v1/system/operator-token/revoke", tag = "tokens", operation_id = "revoke_operator_tokens",
    responses((status = 204, description = "Every operator token revoked")),
    security(("bearer" = [])))]
pub async fn revoke_operator_tokens(sigil: web::Data<Sigil>, auth: Auth) -> Result<HttpResponse, ApiError> {
    sigil.revoke_operator_tokens(&auth.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Prometheus metrics (text exposition format).
pub async fn metrics(handle: web::Data<metrics_exporter_prometheus::PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}
