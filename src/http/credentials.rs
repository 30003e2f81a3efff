//! Handlers for delegations and wallet credentials (tenant admin; auditor may read).

use actix_web::{HttpResponse, web};

use super::Body;
use super::auth::Auth;
use super::dto::*;
use super::problem::ApiError;
use super::{parse_agent, parse_tenant};
use crate::service::Sigil;
use crate::service::credentials::StatusChange;

/// Issue a `DelegatedAuthorityCredential` into the agent's wallet.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/delegations", tag = "credentials", operation_id = "create_delegation",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    request_body = CreateDelegationRequest,
    responses((status = 201, description = "Delegation issued", body = CredentialResponse)),
    security(("bearer" = [])))]
pub async fn create_delegation(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<(String, String)>,
    body: Body<CreateDelegationRequest>,
) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    let (tenant, agent) = (parse_tenant(&t)?, parse_agent(&a)?);
    let new = body.into_inner().into_domain().map_err(ApiError::bad_request)?;
    let rec = sigil.issue_delegation(&auth.0, &tenant, &agent, new).await?;
    Ok(HttpResponse::Created().json(CredentialResponse::new(&rec, sigil.now())))
}

/// Summaries of the credentials in an agent's wallet.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents/{agent}/credentials", tag = "credentials", operation_id = "list_agent_credentials",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = CredentialList)), security(("bearer" = [])))]
pub async fn list(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    let recs = sigil.agent_credentials(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?).await?;
    let now = sigil.now();
    Ok(HttpResponse::Ok().json(CredentialList { items: recs.iter().map(|r| CredentialSummary::new(r, now)).collect() }))
}

/// One credential: its summary and the full signed VC.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/credentials/{credential}", tag = "credentials", operation_id = "get_credential",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialResponse)), security(("bearer" = [])))]
pub async fn get(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, c) = path.into_inner();
    let rec = sigil.get_credential(&auth.0, &parse_tenant(&t)?, &c).await?;
    Ok(HttpResponse::Ok().json(CredentialResponse::new(&rec, sigil.now())))
}

async fn change(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<(String, String)>,
    what: StatusChange,
) -> Result<HttpResponse, ApiError> {
    let (t, c) = path.into_inner();
    let rec = sigil.change_credential_status(&auth.0, &parse_tenant(&t)?, &c, what).await?;
    Ok(HttpResponse::Ok().json(CredentialSummary::new(&rec, sigil.now())))
}

/// Revoke a credential (permanent; its revocation bit is set).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/credentials/{credential}/revoke", tag = "credentials", operation_id = "revoke_credential",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialSummary)), security(("bearer" = [])))]
pub async fn revoke(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    change(sigil, auth, path, StatusChange::Revoke).await
}

/// Suspend a credential (reversible; its suspension bit is set).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/credentials/{credential}/suspend", tag = "credentials", operation_id = "suspend_credential",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialSummary)), security(("bearer" = [])))]
pub async fn suspend(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    change(sigil, auth, path, StatusChange::Suspend).await
}

/// Resume a suspended credential.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/credentials/{credential}/resume", tag = "credentials", operation_id = "resume_credential",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialSummary), (status = 409, description = "Revoked credentials cannot be resumed", body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn resume(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    change(sigil, auth, path, StatusChange::Resume).await
}

/// Query of `GET …/credentials/{credential}/budget`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BudgetParams {
    /// The day, `YYYY-MM-DD`, in the delegation's time zone (default: today there).
    pub day: Option<String>,
}

/// A delegation's spend on one day against its daily limit.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetResponse {
    /// `YYYY-MM-DD` in `time_zone`.
    pub day: String,
    /// The delegation's schedule time zone (UTC without a schedule).
    pub time_zone: String,
    pub currency: Option<String>,
    /// `limits.amount.per_day` (a decimal string), if set.
    pub per_day: Option<String>,
    /// Spent that day (a decimal string).
    pub spent: String,
    /// What remains of the daily limit, never below zero; absent without one.
    pub remaining: Option<String>,
}

/// A delegation's daily spend and remaining budget (tenant admins and auditors).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/credentials/{credential}/budget", tag = "credentials", operation_id = "get_delegation_budget",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id"), BudgetParams),
    responses((status = 200, body = BudgetResponse)), security(("bearer" = [])))]
pub async fn budget(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<(String, String)>,
    q: web::Query<BudgetParams>,
) -> Result<HttpResponse, ApiError> {
    let (t, c) = path.into_inner();
    let day = match &q.day {
        Some(d) => Some(d.parse::<jiff::civil::Date>().map_err(|_| ApiError::bad_request("day must be YYYY-MM-DD"))?),
        None => None,
    };
    let b = sigil.delegation_budget(&auth.0, &parse_tenant(&t)?, &c, day).await?;
    Ok(HttpResponse::Ok().json(BudgetResponse::from(b)))
}

impl From<crate::service::credentials::BudgetView> for BudgetResponse {
    fn from(b: crate::service::credentials::BudgetView) -> Self {
        Self {
            day: b.day,
            time_zone: b.time_zone,
            currency: b.currency,
            per_day: b.per_day.map(|d| d.to_string()),
            spent: b.spent.to_string(),
            remaining: b.remaining.map(|d| d.to_string()),
        }
    }
}
