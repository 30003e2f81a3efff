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
