//! Public operational routes: liveness and readiness.

use actix_web::{HttpResponse, web};

use super::dto::Health;
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
pub async fn backup(sigil: web::Data<Sigil>, auth: super::auth::Auth) -> Result<HttpResponse, ApiError> {
    let bytes = sigil.backup(&auth.0).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", "attachment; filename=\"sigil.backup\""))
        .body(bytes))
}

/// Prometheus metrics (text exposition format).
pub async fn metrics(handle: web::Data<metrics_exporter_prometheus::PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}
