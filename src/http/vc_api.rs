//! W3C VC-API (VCALM) routes in the shapes of that specification.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Body;
use super::auth::Auth;
use super::parse_tenant;
use super::problem::ApiError;
use crate::service::Sigil;
use crate::service::vc_api::{StatusUpdate, VcApiError};

/// VC-API issue request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The unsigned credential; `issuer` must be the tenant's DID.
    #[schema(schema_with = super::constraints::unsigned_credential)]
    pub credential: serde_json::Value,
    /// Optional: `credentialId` (a URL, becomes the credential's `id`) and
    /// `credentialStatus` (Sigil's extension: one or more `{type: "BitstringStatusListEntry",
    /// statusPurpose: "revocation" | "suspension"}`; Sigil adds those entries, stores the
    /// credential and answers its record id in `Location`), `cryptosuite` (Sigil's
    /// extension: `eddsa-jcs-2022` or `eddsa-rdfc-2022`; default: the tenant's). Any other
    /// option is refused.
    #[schema(schema_with = super::constraints::issue_options)]
    pub options: Option<serde_json::Value>,
}

/// The status entry to update (VC-API `UpdateCredentialStatusRequest.credentialStatus`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = VcApiStatusEntry)]
pub struct StatusEntryDto {
    /// `BitstringStatusListEntry` (or `BitstringStatusList`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `revocation` or `suspension`.
    pub status_purpose: String,
    /// When given, must be the credential's entry of that purpose.
    pub id: Option<String>,
    pub status_list_index: Option<String>,
    pub status_list_credential: Option<String>,
}

/// VC-API status update request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({"credentialId": "urn:uuid:6a7c1e0e-1b7b-4b8e-9d3c-2f0f1e0c6a11",
    "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}, "status": true}))]
pub struct UpdateStatusRequest {
    /// The credential's own `id` (as issued with `options.credentialStatus`).
    pub credential_id: String,
    pub credential_status: StatusEntryDto,
    /// `true` sets the status (revoked, suspended), `false` clears it (resume; revocation
    /// cannot be cleared).
    pub status: bool,
}

/// VC-API status update response: the credential's entry and its status now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatusResponse {
    pub credential_id: String,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub credential_status: serde_json::Value,
    pub status: bool,
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
    /// The proofs, validity and status hold and every issuer is trusted (with
    /// `--vc-api-trust advisory`: trust is only reported in `issuerTrusted`).
    pub verified: bool,
    /// Every credential comes from an issuer this route trusts (what `/v1/verify` trusts,
    /// plus the tenant for any subject). When false, `problemDetails` or `warnings` say why.
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
        VcApiError::Service(s) => Err(s.into()),
    }
}

/// Issue a credential signed by the tenant's issuer key (tenant admin).
///
/// The credential must meet the VC Data Model 2.0 (a `400 invalid_request` names the rule
/// and its section otherwise), including the rules that need JSON-LD expansion (protected
/// terms, types that expand to URLs); a context Sigil neither bundles nor was configured
/// with is `400 unknown_context` (contexts are never fetched). With `options.credentialStatus` Sigil adds Bitstring Status
/// List entries and stores the credential: `Location` names it for Sigil's credential
/// routes, and `POST …/vc-api/credentials/status` changes its status by its `id`.
#[utoipa::path(post, path = "/tenants/{tenant}/vc-api/credentials/issue", tag = "vc-api", operation_id = "vc_api_issue_credential",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = IssueRequest,
    responses((status = 201, body = IssueResponse,
               headers(("Location" = String, description = "With status: `/v1/tenants/{tenant}/credentials/{id}`, the stored credential"))),
              (status = 409, description = "Conflicts with current state (`credential_exists`: a credential with this id was already issued with status; `write_conflict`)", body = super::problem::Problem, content_type = "application/problem+json"),
              (status = 400, description = "`invalid_request`: the credential breaks a VC Data Model 2.0 rule, an option is not understood, or the issuer is not this tenant (as the VC-API specifies)", body = super::problem::Problem, content_type = "application/problem+json")),
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
        Ok(issued) => {
            let mut resp = HttpResponse::Created();
            if let Some(id) = issued.record_id {
                resp.insert_header((actix_web::http::header::LOCATION, format!("/v1/tenants/{tenant}/credentials/{id}")));
            }
            Ok(resp.json(IssueResponse { verifiable_credential: issued.credential }))
        }
        Err(e) => vc_api_error(e),
    }
}

/// Update the status of a credential issued with status through the VC-API (tenant admin).
///
/// The VC-API's status update: `credentialStatus.statusPurpose` names the entry, `status:
/// true` revokes or suspends, `false` resumes a suspension (revocation is permanent). The
/// same credential's status also changes through `/v1/tenants/{tenant}/credentials/{id}/…`
/// (its id is in the issue response's `Location`). Effective for Sigil's verifier at once,
/// for outside verifiers within the status list's 5-minute validity.
#[utoipa::path(post, path = "/tenants/{tenant}/vc-api/credentials/status", tag = "vc-api", operation_id = "vc_api_update_credential_status",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = UpdateStatusRequest,
    responses((status = 200, description = "The credential's entry of that purpose and its status now", body = UpdateStatusResponse),
              (status = 404, description = "`credential_not_found`: no credential with this id was issued with status", body = super::problem::Problem, content_type = "application/problem+json"),
              (status = 409, description = "Conflicts with current state (`credential_revoked`: revocation is permanent; `write_conflict`)", body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn update_status(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<UpdateStatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let b = body.into_inner();
    let credential_id = b.credential_id.clone();
    let req = StatusUpdate {
        credential_id: b.credential_id,
        entry_type: b.credential_status.kind,
        purpose: b.credential_status.status_purpose,
        entry_id: b.credential_status.id,
        list_index: b.credential_status.status_list_index,
        list_credential: b.credential_status.status_list_credential,
        status: b.status,
    };
    match sigil.vc_api_update_status(&auth.0, &tenant, req).await {
        Ok(u) => Ok(HttpResponse::Ok().json(UpdateStatusResponse { credential_id, credential_status: u.entry, status: u.status })),
        Err(e) => vc_api_error(e),
    }
}

/// Verify a credential from a trusted issuer using `did:key` or `did:web`.
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
