//! Handlers for agents (tenant admin / auditor) and the agent's own view.

use actix_web::{HttpResponse, web};

use super::Body;
use super::auth::Auth;
use super::dto::*;
use super::problem::ApiError;
use super::{optional_json, parse_agent, parse_tenant};
use crate::service::Sigil;
use crate::service::agents::NewAgent;

/// Create an agent with its signing key, access token and identity credential.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents", tag = "agents", operation_id = "create_agent",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = CreateAgentRequest,
    responses((status = 201, description = "Agent created; the access token is shown once", body = AgentCreatedResponse)),
    security(("bearer" = [])))]
pub async fn create(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<CreateAgentRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let b = body.into_inner();
    let new = NewAgent { name: b.name, operator: b.operator, software: b.software, metadata: b.metadata.unwrap_or_default() };
    let c = sigil.create_agent(&auth.0, &tenant, new).await?;
    Ok(HttpResponse::Created().json(AgentCreatedResponse {
        id: c.id.to_string(),
        did: c.did,
        access_token: c.access_token.reveal_once(),
        token_id: c.token_id.to_string(),
        identity_credential_id: c.identity_credential_id,
    }))
}

/// List the tenant's agents.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents", tag = "agents", operation_id = "list_agents",
    params(("tenant" = String, Path, description = "Tenant id"), PageQuery),
    responses((status = 200, body = AgentList)), security(("bearer" = [])))]
pub async fn list(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let page = sigil.list_agents(&auth.0, &tenant, q.cursor.as_deref(), q.limit).await?;
    Ok(HttpResponse::Ok().json(AgentList { items: page.items.into_iter().map(Agent::from).collect(), next_cursor: page.next_cursor }))
}

/// Read one agent.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents/{agent}", tag = "agents", operation_id = "get_agent",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn get(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    let tenant = parse_tenant(&t)?;
    let agent = parse_agent(&a)?;
    Ok(HttpResponse::Ok().json(Agent::from(sigil.get_agent(&auth.0, &tenant, &agent).await?)))
}

/// Issue a new access token for the agent; all earlier tokens stop working.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/tokens", tag = "agents", operation_id = "rotate_agent_token",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    request_body(content = RotateAgentTokenRequest, description = "Optional; an empty body means defaults"),
    responses((status = 201, body = AgentTokenResponse)), security(("bearer" = [])))]
pub async fn rotate_token(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    let tenant = parse_tenant(&t)?;
    let agent = parse_agent(&a)?;
    let req: RotateAgentTokenRequest = optional_json(&body)?;
    let r = sigil.rotate_agent_token(&auth.0, &tenant, &agent, req.expires_in, req.grace_seconds).await?;
    Ok(HttpResponse::Created().json(AgentTokenResponse {
        token_id: r.token_id.to_string(),
        access_token: r.access_token.reveal_once(),
        expires_at: r.expires.map(|e| e.to_string()),
    }))
}

/// The calling agent's own record (agent token).
#[utoipa::path(get, path = "/v1/agent", tag = "agent", operation_id = "get_self",
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn me(sigil: web::Data<Sigil>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Agent::from(sigil.whoami(&auth.0).await?)))
}
