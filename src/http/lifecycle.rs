//! Handlers for agent lifecycle, keys and rotations (tenant admin; operator for the root key).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Body;
use super::auth::Auth;
use super::dto::{Agent, CreateDelegationRequest, CredentialResponse, KeyStateDto};
use super::problem::ApiError;
use super::{optional_json, parse_agent, parse_tenant};
use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::service::Sigil;
use crate::service::rotation::KeyPolicy;

type TA = web::Path<(String, String)>;

async fn agent_view(sigil: &Sigil, auth: &Auth, t: &str, a: &str) -> Result<HttpResponse, ApiError> {
    let view = sigil.get_agent(&auth.0, &parse_tenant(t)?, &parse_agent(a)?).await?;
    Ok(HttpResponse::Ok().json(Agent::from(view)))
}

/// Suspend an agent: no presentations; its credentials are suspended in the status list.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/suspend", tag = "lifecycle", operation_id = "suspend_agent",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn suspend(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    sigil.set_agent_suspended(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?, true).await?;
    agent_view(&sigil, &auth, &t, &a).await
}

/// Resume a suspended agent and the credentials suspended with it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/resume", tag = "lifecycle", operation_id = "resume_agent",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn resume(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    sigil.set_agent_suspended(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?, false).await?;
    agent_view(&sigil, &auth, &t, &a).await
}

/// Retire an agent (irreversible): credentials revoked, tokens revoked, private keys destroyed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/retire", tag = "lifecycle", operation_id = "retire_agent",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn retire(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    sigil.retire_agent(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?).await?;
    agent_view(&sigil, &auth, &t, &a).await
}

/// One key version with its age.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersionInfo {
    pub version: u32,
    pub state: KeyStateDto,
    pub created: String,
    pub retired_at: Option<String>,
    pub age_seconds: i64,
    pub public_key_multibase: String,
}

/// Key versions of an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub current_version: u32,
    pub items: Vec<KeyVersionInfo>,
}

async fn key_list(sigil: &Sigil, auth: &Auth, t: &str, a: &str) -> Result<KeyList, ApiError> {
    let (tenant, agent) = (parse_tenant(t)?, parse_agent(a)?);
    let keys = sigil.agent_keys(&auth.0, &tenant, &agent).await?;
    let current =
        keys.iter().filter(|k| k.key.state == crate::service::records::KeyState::Active).map(|k| k.key.version).max().unwrap_or(0);
    Ok(KeyList {
        current_version: current,
        items: keys
            .into_iter()
            .map(|k| KeyVersionInfo {
                version: k.key.version,
                state: k.key.state.into(),
                created: rfc3339(k.key.created),
                retired_at: k.key.retired_at.map(rfc3339),
                age_seconds: k.age_seconds,
                public_key_multibase: crate::vc::multikey::encode_hex(&k.key.public_hex).unwrap_or_default(),
            })
            .collect(),
    })
}

/// List an agent's key versions with their state and age.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/agents/{agent}/keys", tag = "lifecycle", operation_id = "list_agent_keys",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = KeyList)), security(("bearer" = [])))]
pub async fn keys(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    Ok(HttpResponse::Ok().json(key_list(&sigil, &auth, &t, &a).await?))
}

/// Rotate the agent's signing key; the previous private key is destroyed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/keys/rotate", tag = "lifecycle", operation_id = "rotate_agent_key",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id")),
    responses((status = 200, body = KeyList)), security(("bearer" = [])))]
pub async fn rotate_key(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, a) = path.into_inner();
    sigil.rotate_agent_key(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?).await?;
    Ok(HttpResponse::Ok().json(key_list(&sigil, &auth, &t, &a).await?))
}

/// Mark a key version compromised: removed from the DID document entirely (replaced first if current).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/agents/{agent}/keys/{version}/compromised", tag = "lifecycle", operation_id = "mark_agent_key_compromised",
    params(("tenant" = String, Path, description = "Tenant id"), ("agent" = String, Path, description = "Agent id"), ("version" = u32, Path, description = "Key version")),
    responses((status = 200, body = KeyList)), security(("bearer" = [])))]
pub async fn compromised(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, a, v) = path.into_inner();
    let v: u32 = v.parse().map_err(|_| ApiError::not_found(ErrorCode::KeyNotFound, "no such key version"))?;
    sigil.mark_key_compromised(&auth.0, &parse_tenant(&t)?, &parse_agent(&a)?, v).await?;
    Ok(HttpResponse::Ok().json(key_list(&sigil, &auth, &t, &a).await?))
}

/// Replace a delegation: the new one is issued and the old one revoked in one transaction.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/credentials/{credential}/replace", tag = "credentials", operation_id = "replace_credential",
    params(("tenant" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    request_body = CreateDelegationRequest,
    responses((status = 201, body = CredentialResponse)), security(("bearer" = [])))]
pub async fn replace(sigil: web::Data<Sigil>, auth: Auth, path: TA, body: Body<CreateDelegationRequest>) -> Result<HttpResponse, ApiError> {
    let (t, c) = path.into_inner();
    let new = body.into_inner().into_domain().map_err(ApiError::bad_request)?;
    let rec = sigil.replace_credential(&auth.0, &parse_tenant(&t)?, &c, new).await?;
    Ok(HttpResponse::Created().json(CredentialResponse::new(&rec, sigil.now())))
}

/// Credentials revoked by a cascade.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedList {
    pub revoked: Vec<String>,
}

/// Revoke every delegation naming this principal, across all agents (revocation cascade).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/principals/{principal}/revoke", tag = "credentials", operation_id = "revoke_principal",
    params(("tenant" = String, Path, description = "Tenant id"), ("principal" = String, Path, description = "Principal identifier (URL-encoded)")),
    responses((status = 200, body = RevokedList)), security(("bearer" = [])))]
pub async fn revoke_principal(sigil: web::Data<Sigil>, auth: Auth, path: TA) -> Result<HttpResponse, ApiError> {
    let (t, p) = path.into_inner();
    let revoked = sigil.revoke_principal(&auth.0, &parse_tenant(&t)?, &p).await?;
    Ok(HttpResponse::Ok().json(RevokedList { revoked }))
}

/// `POST …/issuer-key/rotate` options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIssuerRequest {
    /// Re-sign every active credential under the new key (same ids and status entries).
    #[serde(default)]
    pub reissue: bool,
}

/// Result of a key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationResult {
    pub version: u32,
    /// Credentials re-signed (issuer key), or records still to re-seal in the background (data key).
    pub reissued: Option<usize>,
    pub status: String,
}

/// Rotate the tenant's issuer key; credentials signed with the old key still verify.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/issuer-key/rotate", tag = "rotation", operation_id = "rotate_issuer_key",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = RotateIssuerRequest, description = "Optional; an empty body means defaults"),
    responses((status = 200, body = RotationResult)), security(("bearer" = [])))]
pub async fn rotate_issuer(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: RotateIssuerRequest = optional_json(&body)?;
    let (version, n) = sigil.rotate_issuer_key(&auth.0, &parse_tenant(&path)?, req.reissue).await?;
    Ok(HttpResponse::Ok().json(RotationResult { version, reissued: Some(n), status: "done".into() }))
}

/// An issuer key taken out of service.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerKeyCompromised {
    /// The compromised version; it is no longer in the tenant's DID document.
    pub version: u32,
    /// The issuer key version now current.
    pub current: u32,
    /// Credentials the compromised key signed: they no longer verify until re-issued
    /// (`POST …/issuer-key/{version}/reissue`).
    pub to_reissue: Vec<String>,
}

/// Credential ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialIdList {
    pub credential_ids: Vec<String>,
}

fn parse_version(v: &str) -> Result<u32, ApiError> {
    v.parse().map_err(|_| ApiError::not_found(ErrorCode::KeyNotFound, "no such key version"))
}

/// Mark an issuer key compromised: replaced first if current, removed from the tenant's DID document, its private half destroyed; lists the credentials it signed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/issuer-key/{version}/compromised", tag = "rotation", operation_id = "mark_issuer_key_compromised",
    params(("tenant" = String, Path, description = "Tenant id"), ("version" = u32, Path, description = "Issuer key version")),
    responses((status = 200, body = IssuerKeyCompromised)), security(("bearer" = [])))]
pub async fn issuer_compromised(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, v) = path.into_inner();
    let (tenant, version) = (parse_tenant(&t)?, parse_version(&v)?);
    let r = sigil.mark_issuer_key_compromised(&auth.0, &tenant, version).await?;
    Ok(HttpResponse::Ok().json(IssuerKeyCompromised { version: r.version, current: r.current, to_reissue: r.to_reissue }))
}

/// Credentials (not revoked) whose proof an issuer key version made (admins and auditors).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/issuer-key/{version}/credentials", tag = "rotation", operation_id = "issuer_key_credentials",
    params(("tenant" = String, Path, description = "Tenant id"), ("version" = u32, Path, description = "Issuer key version")),
    responses((status = 200, body = CredentialIdList)), security(("bearer" = [])))]
pub async fn issuer_credentials(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, v) = path.into_inner();
    let credential_ids = sigil.issuer_key_credentials(&auth.0, &parse_tenant(&t)?, parse_version(&v)?).await?;
    Ok(HttpResponse::Ok().json(CredentialIdList { credential_ids }))
}

/// Re-issue, under the current issuer key, every credential an earlier issuer key signed (each re-issue audited).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/issuer-key/{version}/reissue", tag = "rotation", operation_id = "reissue_issuer_key_credentials",
    params(("tenant" = String, Path, description = "Tenant id"), ("version" = u32, Path, description = "Issuer key version")),
    responses((status = 200, body = CredentialIdList)), security(("bearer" = [])))]
pub async fn issuer_reissue(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (t, v) = path.into_inner();
    let credential_ids = sigil.reissue_issuer_key_credentials(&auth.0, &parse_tenant(&t)?, parse_version(&v)?).await?;
    Ok(HttpResponse::Ok().json(CredentialIdList { credential_ids }))
}

/// Rotate the tenant's data key; records are re-sealed in the background, then the old key is destroyed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/data-key/rotate", tag = "rotation", operation_id = "rotate_data_key",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 202, body = RotationResult), (status = 409, description = "Rotation already running", body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn rotate_data_key(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let version = sigil.clone().into_inner().rotate_data_key(&auth.0, &tenant).await?;
    Ok(HttpResponse::Accepted().json(RotationResult { version, reissued: None, status: "resealing".into() }))
}

/// Data key state of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataKeyStatus {
    pub version: u32,
    /// True while records are being re-sealed under `version`.
    pub rotating: bool,
}

/// The tenant's current data key version and whether a rotation is re-sealing records.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/data-key", tag = "rotation", operation_id = "get_data_key_status",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = DataKeyStatus)), security(("bearer" = [])))]
pub async fn data_key_status(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (version, rotating) = sigil.data_key_status(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok().json(DataKeyStatus { version, rotating }))
}

/// `POST /v1/system/root-key/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRootRequest {
    /// Path, on the server, of a file holding the new 32-byte root key.
    pub new_root_key_file: String,
}

/// Re-wrap every tenant data key under a new root key (operator).
#[utoipa::path(post, path = "/v1/system/root-key/rotate", tag = "rotation", operation_id = "rotate_root_key",
    request_body = RotateRootRequest,
    responses((status = 200, body = RotationResult)), security(("bearer" = [])))]
pub async fn rotate_root(sigil: web::Data<Sigil>, auth: Auth, body: Body<RotateRootRequest>) -> Result<HttpResponse, ApiError> {
    auth.0.require_operator().map_err(ApiError::from)?;
    let version = sigil.rotate_root_key(&auth.0, std::path::Path::new(&body.new_root_key_file)).await?;
    Ok(HttpResponse::Ok().json(RotationResult { version, reissued: None, status: "done".into() }))
}

/// Key-age policy enforced by scheduled rotation.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyPolicy)]
pub struct KeyPolicyDto {
    /// Rotate agent keys older than this many days.
    pub agent_key_max_age_days: Option<u32>,
    /// Rotate the issuer key when older than this many days.
    pub issuer_key_max_age_days: Option<u32>,
}

/// Read the tenant's key-age policy.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/key-policy", tag = "rotation", operation_id = "get_key_policy",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = KeyPolicyDto)), security(("bearer" = [])))]
pub async fn get_policy(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let p = sigil.key_policy(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok()
        .json(KeyPolicyDto { agent_key_max_age_days: p.agent_key_max_age_days, issuer_key_max_age_days: p.issuer_key_max_age_days }))
}

/// Set the tenant's key-age policy.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/key-policy", tag = "rotation", operation_id = "set_key_policy",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = KeyPolicyDto,
    responses((status = 200, body = KeyPolicyDto)), security(("bearer" = [])))]
pub async fn set_policy(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<KeyPolicyDto>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let p = sigil
        .set_key_policy(
            &auth.0,
            &parse_tenant(&path)?,
            KeyPolicy { agent_key_max_age_days: b.agent_key_max_age_days, issuer_key_max_age_days: b.issuer_key_max_age_days },
        )
        .await?;
    Ok(HttpResponse::Ok()
        .json(KeyPolicyDto { agent_key_max_age_days: p.agent_key_max_age_days, issuer_key_max_age_days: p.issuer_key_max_age_days }))
}

/// The Data Integrity cryptosuite a tenant issues with when a request names none.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CryptosuiteDto {
    /// `eddsa-jcs-2022` (the default) or `eddsa-rdfc-2022`.
    #[schema(pattern = "^eddsa-(jcs|rdfc)-2022$", example = "eddsa-rdfc-2022")]
    pub cryptosuite: String,
}

/// Read the tenant's default cryptosuite.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/cryptosuite", tag = "rotation", operation_id = "get_cryptosuite",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = CryptosuiteDto)), security(("bearer" = [])))]
pub async fn get_cryptosuite(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let s = sigil.cryptosuite(&auth.0, &parse_tenant(&path)?).await?;
    Ok(HttpResponse::Ok().json(CryptosuiteDto { cryptosuite: s.as_str().to_owned() }))
}

/// Set the tenant's default cryptosuite (issuing through Sigil's routes and the VC-API;
/// the VC-API issue request may name another in `options.cryptosuite`).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/cryptosuite", tag = "rotation", operation_id = "set_cryptosuite",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = CryptosuiteDto,
    responses((status = 200, body = CryptosuiteDto)), security(("bearer" = [])))]
pub async fn set_cryptosuite(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<CryptosuiteDto>,
) -> Result<HttpResponse, ApiError> {
    let tenant = parse_tenant(&path)?;
    let suite = crate::vc::proof::Cryptosuite::parse(&body.into_inner().cryptosuite)
        .ok_or_else(|| ApiError::bad_request("cryptosuite must be eddsa-jcs-2022 or eddsa-rdfc-2022"))?;
    let s = sigil.set_cryptosuite(&auth.0, &tenant, suite).await?;
    Ok(HttpResponse::Ok().json(CryptosuiteDto { cryptosuite: s.as_str().to_owned() }))
}

/// Guardrails of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Guardrails)]
pub struct GuardrailsDto {
    /// Sustained presentation requests per second per agent (default 50).
    #[schema(minimum = 1, maximum = 100000)]
    pub rate_per_second: u32,
    /// Burst per agent (default 100).
    #[schema(minimum = 1, maximum = 100000)]
    pub burst: u32,
    /// Denials within the window that suspend the agent automatically (default 20; 0 = off).
    #[schema(minimum = 0, maximum = 100000)]
    pub denial_threshold: u32,
    /// Window for the denial rule in seconds (default 300).
    #[schema(minimum = 1, maximum = 86400)]
    pub denial_window_secs: u64,
    /// Context keys whose values the audit trail stores only as keyed hashes.
    pub sensitive_context_keys: Vec<String>,
}

impl From<crate::service::guardrails::GuardrailSettings> for GuardrailsDto {
    fn from(s: crate::service::guardrails::GuardrailSettings) -> Self {
        Self {
            rate_per_second: s.rate_per_second,
            burst: s.burst,
            denial_threshold: s.denial_threshold,
            denial_window_secs: s.denial_window_secs,
            sensitive_context_keys: s.sensitive_context_keys,
        }
    }
}

/// Read the tenant's guardrails.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/guardrails", tag = "guardrails", operation_id = "get_guardrails",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = GuardrailsDto)), security(("bearer" = [])))]
pub async fn get_guardrails(sigil: web::Data<Sigil>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(GuardrailsDto::from(sigil.guardrails_of(&auth.0, &parse_tenant(&path)?).await?)))
}

/// Set the tenant's guardrails (rate limits, automatic suspension, sensitive context keys).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/guardrails", tag = "guardrails", operation_id = "set_guardrails",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body = GuardrailsDto,
    responses((status = 200, body = GuardrailsDto)), security(("bearer" = [])))]
pub async fn set_guardrails(
    sigil: web::Data<Sigil>,
    auth: Auth,
    path: web::Path<String>,
    body: Body<GuardrailsDto>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let s = crate::service::guardrails::GuardrailSettings {
        rate_per_second: b.rate_per_second,
        burst: b.burst,
        denial_threshold: b.denial_threshold,
        denial_window_secs: b.denial_window_secs,
        sensitive_context_keys: b.sensitive_context_keys,
    };
    Ok(HttpResponse::Ok().json(GuardrailsDto::from(sigil.set_guardrails(&auth.0, &parse_tenant(&path)?, s).await?)))
}
