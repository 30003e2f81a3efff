//! W3C VC-API (VCALM) routes in the shapes of that specification.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Body;
use super::auth::Auth;
use super::parse_tenant;
use super::problem::ApiError;
use crate::codes::ErrorCode;
use crate::service::Sigil;
use crate::service::vc_api::VcApiError;

/// VC-API issue request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The unsigned credential; `issuer` must be the tenant's DID.
    #[schema(schema_with = super::constraints::unsigned_credential)]
    pub credential: serde_json::Value,
    /// Optional; only `credentialId` (a URL, becomes the credential's `id`) is supported.
    #[schema(schema_with = super::constraints::issue_options)]
    pub options: Option<serde_json::Value>,
}

/// VC-API issue response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssueResponse {
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub verifiable_credential: serde_json::Value,
}

/// A VC-API problem detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDetail {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub detail: String,
}

/// VC-API verify response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VcApiVerifyResult)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// The proofs, validity and status hold (as the VC-API specifies; issuer trust is
    /// reported in `issuerTrusted`, not counted here).
    pub verified: bool,
    /// Every credential comes from an issuer `/v1/verify` trusts (this deployment's
    /// tenants and the operator's `--trust-issuer` list). When false, `warnings` says why.
    pub issuer_trusted: bool,
    /// Names of the checks that ran.
    pub checks: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problem_details: Vec<ProblemDetail>,
}

impl VerifyResponse {
    /// The VC-API answer for a verification report: 200 when verified, else 422 with
    /// `problemDetails` (one per failed check).
    pub fn answer(report: &crate::vc::verify::Report) -> HttpResponse {
        let verified = report.verified();
        let resp = VerifyResponse {
            verified,
            issuer_trusted: report.issuer_trusted(),
            checks: report.checks.iter().map(|c| c.check.clone()).collect(),
            warnings: report.warnings(),
            errors: report.errors(),
            problem_details: report
                .checks
                .iter()
                .filter(|c| !c.ok && !c.advisory)
                .map(|c| ProblemDetail {
                    kind: format!("urn:sigil:problem:{}", c.code.unwrap_or("verification_failed")),
                    title: c.check.clone(),
                    detail: c.detail.clone(),
                })
                .collect(),
        };
        if verified { HttpResponse::Ok().json(resp) } else { HttpResponse::UnprocessableEntity().json(resp) }
    }
}

fn vc_api_error(e: VcApiError) -> Result<HttpResponse, ApiError> {
    match e {
        VcApiError::BadRequest(d) => Err(ApiError::bad_request(d)),
        VcApiError::Unprocessable(d) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::UnprocessableCredential, d)),
        VcApiError::Service(s) => Err(s.into()),
    }
}

/// Issue a credential signed by the tenant's issuer key (tenant admin).
#[utoipa::path(post, path = "/tenants/{tenant}/vc-api/credentials/issue", tag = "vc-api", operation_id = "vc_api_issue_credential",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = IssueRequest,
    responses((status = 201, body = IssueResponse),
              (status = 422, description = "Issuer is not this tenant", body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn issue(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<IssueRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let b = body.into_inner();
    match sigil.vc_api_issue(&auth.0, &tenant, b.credential, b.options).await {
        Ok(vc) => Ok(HttpResponse::Created().json(IssueResponse { verifiable_credential: vc })),
        Err(e) => vc_api_error(e),
    }
}

/// Verify a credential from any issuer using `did:key` or `did:web`.
#[utoipa::path(post, path = "/tenants/{tenant}/vc-api/credentials/verify", tag = "vc-api", operation_id = "vc_api_verify_credential",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = Object, description = "`{verifiableCredential, options?}`"),
    responses((status = 200, description = "Verified", body = VerifyResponse),
              (status = 422, description = "Not verified", body = VerifyResponse),
              (status = 429, description = "`rate_limited`: too many verifications from this address", body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn verify(
    req: actix_web::HttpRequest,
    sigil: web::Data<Sigil>,
    path: web::Path<String>,
    body: Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    sigil.check_verify_rate(super::client::client_ip(&req))?;
    let tenant = parse_tenant(&path)?;
    let report = match sigil.vc_api_verify(&tenant, body.into_inner()).await {
        Ok(r) => r,
        Err(e) => return vc_api_error(e),
    };
    Ok(VerifyResponse::answer(&report))
}
