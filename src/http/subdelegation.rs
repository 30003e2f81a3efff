//! Handlers for sub-delegation: an agent narrows one of its delegations for another agent
//! of its tenant (agent token), and admins list a delegation's children.
//!
//! Must never judge narrowing or sign: the rules are `policy::narrowing`, the signature
//! the tenant issuer key's in the service; this module only parses and answers.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::Body;
use super::auth::Auth;
use super::dto::{CredentialList, CredentialResponse, CredentialSummary, DelegableDto, LimitsDto, ScheduleDto};
use super::parse_tenant;
use super::problem::ApiError;
use crate::service::Sigil;
use crate::service::subdelegation::NewSubDelegation;

/// `POST /v1/agent/delegations`: a subset of one of the caller's delegations for another
/// agent. Each field must be equal to or narrower than the parent's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "to": "agt_2b7d0c0e9f4a41c3", "parent": "0b9c3e7a-5f7e-4f0e-9a51-6c7f2d1e8a90",
    "actions": ["refunds:create"], "resources": ["orders/123"],
    "limits": {"amount": {"max": "100.00", "currency": "EUR", "per_day": "200.00"}},
    "valid_until": "2026-12-31T00:00:00Z"}))]
pub struct SubDelegateRequest {
    /// The receiving agent: another agent of the caller's tenant, active.
    #[schema(min_length = 1, max_length = 64)]
    pub to: String,
    /// Id of the caller's delegation to narrow; it must allow re-delegation (`delegable`).
    #[schema(min_length = 1, max_length = 64)]
    pub parent: String,
    /// Each within one of the parent's action patterns.
    #[schema(schema_with = super::constraints::action_patterns)]
    pub actions: Vec<String>,
    /// Each provably within one of the parent's globs (else refused).
    #[schema(schema_with = super::constraints::resource_patterns)]
    pub resources: Vec<String>,
    /// Required (in the parent's currency, at most its limits) when the parent has limits.
    pub limits: Option<LimitsDto>,
    /// Required (same time zone, days and window within) when the parent has a schedule.
    pub schedule: Option<ScheduleDto>,
    /// Re-delegation below the child: fewer levels than the parent allows.
    pub delegable: Option<DelegableDto>,
    /// Human approval for the child's requests: absent, the parent's rule (if any) is
    /// inherited; given, it must be at least as strict as the parent's.
    pub approval: Option<super::dto::ApprovalRuleDto>,
    /// RFC 3339; default (and at least) now, not before the parent's.
    #[schema(schema_with = super::constraints::date_time_opt)]
    pub valid_from: Option<String>,
    /// RFC 3339; default and at most the parent's end.
    #[schema(schema_with = super::constraints::date_time_opt)]
    pub valid_until: Option<String>,
}

impl SubDelegateRequest {
    fn into_domain(self) -> Result<NewSubDelegation, String> {
        let to = crate::ids::AgentId::parse(&self.to).map_err(|_| "to must be an agent id".to_owned())?;
        let authority =
            super::dto::authority_from(&self.actions, &self.resources, self.limits, self.schedule, self.delegable, self.approval)?;
        let ts = |field: &str, s: Option<String>| {
            s.map(|s| s.parse::<jiff::Timestamp>().map_err(|_| format!("{field} must be an RFC 3339 time like 2027-01-01T00:00:00Z")))
                .transpose()
        };
        Ok(NewSubDelegation {
            to,
            parent: self.parent,
            authority,
            valid_from: ts("valid_from", self.valid_from)?,
            valid_until: ts("valid_until", self.valid_until)?,
        })
    }
}

/// Sub-delegate: the tenant's issuer key signs a child of the caller's delegation into the
/// wallet of another agent of its tenant. Refused (400 `delegation_not_narrower`, the
/// detail naming the rule: action, resource, amount, budget, schedule, validity, principal,
/// depth) unless it narrows the parent.
#[utoipa::path(post, path = "/v1/agent/delegations", tag = "agent", operation_id = "subdelegate",
    request_body = SubDelegateRequest,
    responses((status = 201, description = "Child delegation issued", body = CredentialResponse),
        (status = 404, description = "No such delegation in the caller's wallet, or no such agent", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The parent (or an ancestor) is not active, or the receiving agent is suspended", body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create(sigil: web::Data<Sigil>, auth: Auth, body: Body<SubDelegateRequest>) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().into_domain().map_err(ApiError::bad_request)?;
    let rec = sigil.subdelegate(&auth.0, new).await?;
    Ok(HttpResponse::Created().json(CredentialResponse::new(&rec, sigil.now())))
}

/// The direct sub-delegations of a delegation (tenant admins and auditors).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/credentials/{credential}/children", tag = "credentials", operation_id = "list_delegation_children",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialList)), security(("bearer" = [])))]
pub async fn children(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, c) = path.into_inner();
    let recs = sigil.delegation_children(&auth.0, &parse_tenant(&t)?, &c).await?;
    let now = sigil.now();
    Ok(HttpResponse::Ok().json(CredentialList { items: recs.iter().map(|r| CredentialSummary::new(r, now)).collect() }))
}

/// The calling agent's delegations (agent token): the ids to name as `parent`, with each
/// one's status and whether it may be sub-delegated.
#[utoipa::path(get, path = "/v1/agent/delegations", tag = "agent", operation_id = "list_own_delegations",
    responses((status = 200, body = CredentialList)), security(("bearer" = [])))]
pub async fn own(sigil: web::Data<Sigil>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let me = sigil.my_authority(&auth.0).await?;
    Ok(HttpResponse::Ok().json(CredentialList { items: me.delegations.iter().map(|(r, _)| CredentialSummary::new(r, me.now)).collect() }))
}
