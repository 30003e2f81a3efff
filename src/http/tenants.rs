//! Handlers for tenants and tenant tokens (operator and tenant admin).

use actix_web::{HttpResponse, web};

use super::Body;
use super::auth::Auth;
use super::dto::*;
use super::problem::{ApiError, Problem};
use super::{parse_tenant, parse_token};
use crate::service::Sigil;
use crate::service::records::TokenRole;

/// Create a tenant (operator).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", operation_id = "create_tenant",
    request_body = CreateTenantRequest,
    responses((status = 201, description = "Tenant created; the admin token is shown once", body = TenantCreatedResponse),
              (status = 409, description = "Tenant id taken", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create(sigil: web::Data<Sigil>, auth: Auth, body: Body<CreateTenantRequest>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let c = sigil.create_tenant(&auth.0, body.id.as_deref(), &body.name).await?;
    Ok(HttpResponse::Created().json(TenantCreatedResponse {
        id: c.id.to_string(),
        did: c.did,
        admin_token: c.admin_token.reveal_once(),
        admin_token_id: c.admin_token_id.to_string(),
    }))
}

/// List tenants (operator).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", operation_id = "list_tenants", params(PageQuery),
    responses((status = 200, body = TenantList)), security(("bearer" = [])))]
pub async fn list(sigil: web::Data<Sigil>, auth: Auth, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let page = sigil.list_tenants(&auth.0, q.cursor.as_deref(), q.limit).await?;
    let items = page
        .items
        .into_iter()
        .map(|t| TenantSummary { id: t.id.to_string(), did: t.did, name: t.name, created: t.created.to_string() })
        .collect();
    Ok(HttpResponse::Ok().json(TenantList { items, next_cursor: page.next_cursor }))
}

/// Delete a tenant by crypto-shredding (operator): its data keys are destroyed first.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants", operation_id = "delete_tenant",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 204, description = "Deleted")), security(("bearer" = [])))]
pub async fn delete(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    sigil.delete_tenant(&auth.0, &tenant).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create an admin or auditor token for the tenant (tenant admin), optionally expiring.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/tokens", tag = "tokens", operation_id = "create_tenant_token",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = CreateTokenRequest,
    responses((status = 201, description = "Token created (shown once)", body = TokenCreatedResponse)),
    security(("bearer" = [])))]
pub async fn create_token(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<CreateTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let role = body.role;
    let expires_in = body.0.expires_in;
    let (id, token, expires) = match (role, body.0.principals) {
        (TenantTokenRole::Approver, principals) => {
            // Absent: every principal; `[]` is refused by the service (never "every").
            let c = sigil.create_approver_token(&auth.0, &tenant, principals, expires_in).await?;
            (c.id, c.token, c.expires)
        }
        (_, Some(_)) => return Err(ApiError::bad_request("principals is only for approver tokens")),
        (_, None) => {
            let c = sigil.create_tenant_token(&auth.0, &tenant, role.into(), expires_in).await?;
            (c.id, c.token, c.expires)
        }
    };
    Ok(HttpResponse::Created().json(TokenCreatedResponse {
        id: id.to_string(),
        role,
        token: token.reveal_once(),
        expires_at: expires.map(|e| e.to_string()),
    }))
}

/// List the tenant's tokens (tenant admin or auditor): admin, auditor and agent tokens
/// with their creation, expiry and last use. Never a token or its hash.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/tokens", tag = "tokens", operation_id = "list_tenant_tokens",
    params(("tenant" = String, Path, description = "Tenant id"), PageQuery),
    responses((status = 200, body = TokenList)), security(("bearer" = [])))]
pub async fn list_tokens(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let page = sigil.list_tenant_tokens(&auth.0, &tenant, q.cursor.as_deref(), q.limit).await?;
    let items = page
        .items
        .into_iter()
        .filter_map(|t| {
            let role = match t.role {
                TokenRole::Admin => ListedTokenRole::Admin,
                TokenRole::Auditor => ListedTokenRole::Auditor,
                TokenRole::Agent => ListedTokenRole::Agent,
                TokenRole::Approver => ListedTokenRole::Approver,
                // Operator tokens belong to no tenant; none is stored under one.
                TokenRole::Operator => return None,
            };
            Some(TokenSummary {
                id: t.id.to_string(),
                role,
                agent: t.agent.map(|a| a.to_string()),
                created: t.created.to_string(),
                expires_at: t.expires.map(|e| e.to_string()),
                last_used_at: t.last_used.map(|e| e.to_string()),
                principals: t.principals,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(TokenList { items, next_cursor: page.next_cursor }))
}

/// Delete an admin or auditor token (tenant admin).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/tokens/{token}", tag = "tokens", operation_id = "delete_tenant_token",
    params(("tenant" = String, Path, description = "Tenant id"), ("token" = String, Path, description = "Token id")),
    responses((status = 204, description = "Deleted")), security(("bearer" = [])))]
pub async fn delete_token(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, tok) = path.into_inner();
    let tenant = parse_tenant(&t)?;
    let token = parse_token(&tok)?;
    sigil.delete_tenant_token(&auth.0, &tenant, &token).await?;
    Ok(HttpResponse::NoContent().finish())
}
