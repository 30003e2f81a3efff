//! The HTTP edge: actix-web handlers, authentication extractor, problem+json mapping and
//! the OpenAPI document. Handlers are thin: parse, authenticate, call one service
//! function, serialize. This layer never touches `store` or `crypto`.
//!
//! Routes are declared once in [`routes!`]; the same table registers them with actix and
//! lists them for the test that fails when a route is missing from `openapi/openapi.json`.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod client;
pub mod constraints;
pub mod credentials;
pub mod dto;
pub mod lifecycle;
pub mod mcp;
pub mod middleware;
pub mod openapi;
pub mod presentations;
pub mod problem;
pub mod public;
pub mod subdelegation;
pub mod system;
pub mod tenants;
pub mod vc_api;

use actix_web::{HttpResponse, web};
use serde::de::DeserializeOwned;

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId, TokenId};
use problem::ApiError;

/// Declares every API route once: registers it with actix and lists it in [`ROUTES`].
macro_rules! routes {
    ($( $path:literal => { $( $method:ident : $handler:path ),+ $(,)? } ),+ $(,)?) => {
        /// Every (method, path) the API serves, as registered with actix.
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )+ ];

        /// Registers every route.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $( .route(web::$method().to($handler)) )+
                        .default_service(web::to(method_not_allowed)),
                );
            )+
        }
    };
}

// actix tries resources in this order, each dynamic one with a regex: the hot path comes
// first so a presentation is routed without matching every admin route before it.
routes! {
    "/v1/presentations" => { post: presentations::create },
    "/v1/verify" => { post: presentations::verify },
    "/v1/approvals/{approval}" => { get: approvals::status },
    "/v1/approvals/{approval}/presentation" => { post: approvals::presentation },
    "/healthz" => { get: system::healthz },
    "/readyz" => { get: system::readyz },
    "/v1/tenants" => { post: tenants::create, get: tenants::list },
    "/v1/tenants/{tenant}" => { delete: tenants::delete },
    "/v1/tenants/{tenant}/tokens" => { post: tenants::create_token, get: tenants::list_tokens },
    "/v1/tenants/{tenant}/tokens/{token}" => { delete: tenants::delete_token },
    "/v1/tenants/{tenant}/agents" => { post: agents::create, get: agents::list },
    "/v1/tenants/{tenant}/agents/{agent}" => { get: agents::get },
    "/v1/tenants/{tenant}/agents/{agent}/tokens" => { post: agents::rotate_token },
    "/v1/agent" => { get: agents::me },
    "/v1/agent/delegations" => { post: subdelegation::create, get: subdelegation::own },
    "/v1/tenants/{tenant}/credentials/{credential}/children" => { get: subdelegation::children },
    "/v1/tenants/{tenant}/agents/{agent}/delegations" => { post: credentials::create_delegation },
    "/v1/tenants/{tenant}/agents/{agent}/credentials" => { get: credentials::list },
    "/v1/tenants/{tenant}/credentials/{credential}" => { get: credentials::get },
    "/v1/tenants/{tenant}/credentials/{credential}/budget" => { get: credentials::budget },
    "/v1/tenants/{tenant}/credentials/{credential}/revoke" => { post: credentials::revoke },
    "/v1/tenants/{tenant}/credentials/{credential}/suspend" => { post: credentials::suspend },
    "/v1/tenants/{tenant}/credentials/{credential}/resume" => { post: credentials::resume },
    "/ns/v1" => { get: public::context },
    "/tenants/{tenant}/did.json" => { get: public::tenant_did },
    "/tenants/{tenant}/agents/{agent}/did.json" => { get: public::agent_did },
    "/tenants/{tenant}/status/{list}" => { get: public::status_list },
    "/tenants/{tenant}/audit/checkpoint" => { get: public::audit_checkpoint },
    "/tenants/{tenant}/vc-api/credentials/issue" => { post: vc_api::issue },
    "/tenants/{tenant}/vc-api/credentials/status" => { post: vc_api::update_status },
    "/tenants/{tenant}/vc-api/credentials/verify" => { post: vc_api::verify },
    "/tenants/{tenant}/vc-api/presentations/verify" => { post: presentations::vc_api_verify },
    "/v1/tenants/{tenant}/agents/{agent}/suspend" => { post: lifecycle::suspend },
    "/v1/tenants/{tenant}/agents/{agent}/resume" => { post: lifecycle::resume },
    "/v1/tenants/{tenant}/agents/{agent}/retire" => { post: lifecycle::retire },
    "/v1/tenants/{tenant}/agents/{agent}/keys" => { get: lifecycle::keys },
    "/v1/tenants/{tenant}/agents/{agent}/keys/rotate" => { post: lifecycle::rotate_key },
    "/v1/tenants/{tenant}/agents/{agent}/keys/{version}/compromised" => { post: lifecycle::compromised },
    "/v1/tenants/{tenant}/credentials/{credential}/replace" => { post: lifecycle::replace },
    "/v1/tenants/{tenant}/principals/{principal}/revoke" => { post: lifecycle::revoke_principal },
    "/v1/tenants/{tenant}/issuer-key/rotate" => { post: lifecycle::rotate_issuer },
    "/v1/tenants/{tenant}/issuer-key/{version}/compromised" => { post: lifecycle::issuer_compromised },
    "/v1/tenants/{tenant}/issuer-key/{version}/credentials" => { get: lifecycle::issuer_credentials },
    "/v1/tenants/{tenant}/issuer-key/{version}/reissue" => { post: lifecycle::issuer_reissue },
    "/v1/tenants/{tenant}/data-key/rotate" => { post: lifecycle::rotate_data_key },
    "/v1/tenants/{tenant}/data-key" => { get: lifecycle::data_key_status },
    "/v1/tenants/{tenant}/key-policy" => { get: lifecycle::get_policy, put: lifecycle::set_policy },
    "/v1/tenants/{tenant}/cryptosuite" => { get: lifecycle::get_cryptosuite, put: lifecycle::set_cryptosuite },
    "/v1/system/root-key/rotate" => { post: lifecycle::rotate_root },
    "/v1/system/backup" => { get: system::backup },
    "/v1/system/operator-token/rotate" => { post: system::rotate_operator_token },
    "/v1/system/operator-token/revoke" => { post: system::revoke_operator_tokens },
    "/v1/tenants/{tenant}/audit" => { get: audit::list },
    "/v1/tenants/{tenant}/guardrails" => { get: lifecycle::get_guardrails, put: lifecycle::set_guardrails },
    "/v1/tenants/{tenant}/audit/verify" => { get: audit::verify },
    "/v1/tenants/{tenant}/audit/export" => { get: audit::export },
    "/v1/tenants/{tenant}/approvals" => { get: approvals::list },
    "/v1/tenants/{tenant}/approvals/{approval}" => { get: approvals::get },
    "/v1/tenants/{tenant}/approvals/{approval}/approve" => { post: approvals::approve },
    "/v1/tenants/{tenant}/approvals/{approval}/deny" => { post: approvals::deny },
    "/v1/tenants/{tenant}/approval-settings" => { get: approvals::get_settings, put: approvals::set_settings },
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(actix_web::http::StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "method not allowed on this resource"))
}

/// Fallback for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(ErrorCode::NotFound, "no such resource"))
}

/// A path segment naming a tenant; malformed ids name nothing, hence 404.
pub(crate) fn parse_tenant(s: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(s).map_err(|_| ApiError::not_found(ErrorCode::TenantNotFound, "no such tenant"))
}

pub(crate) fn parse_agent(s: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(s).map_err(|_| ApiError::not_found(ErrorCode::AgentNotFound, "no such agent"))
}

pub(crate) fn parse_token(s: &str) -> Result<TokenId, ApiError> {
    TokenId::parse(s).map_err(|_| ApiError::not_found(ErrorCode::TokenNotFound, "no such token"))
}

/// A body that may be empty (→ `T::default()`) but, when present, is parsed strictly.
pub(crate) fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A JSON request body that must be an object and is parsed strictly (unknown fields are
/// rejected by the target types). serde alone would also accept a JSON array for a struct,
/// which no client means.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> actix_web::FromRequest for Body<T> {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let json_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json_type {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "request body must be application/json",
                ));
            }
            let bytes = bytes.await.map_err(|e| {
                if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::PayloadTooLarge,
                        "request body exceeds the configured limit",
                    )
                } else {
                    ApiError::bad_request("could not read the request body")
                }
            })?;
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(ApiError::bad_request("request body must be a JSON object"));
            }
            serde_json::from_slice(&bytes).map(Body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
        })
    }
}

#[cfg(test)]
#[path = "body_props.rs"]
mod fuzz;
