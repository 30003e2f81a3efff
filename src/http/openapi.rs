//! The OpenAPI 3.1 document, generated from the handlers' annotations. A modifier adds
//! the standard problem+json responses to every operation so no route can forget them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Doc, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::{
    agents, approvals, audit, credentials, dto, lifecycle, presentations, problem, public, subdelegation, system, tenants, vc_api,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sigil", description = "Cloud ID wallet for AI agents: did:web identities, W3C VC 2.0 credentials, action-bound presentations.\n\n\
`POST /mcp` (not listed below: it is one JSON-RPC endpoint, not a REST resource) serves the Model Context Protocol, revision \
2026-07-28 (and the 2025-11-25 / 2025-06-18 handshake), with the agent's token as a bearer token; its tools \
`request_presentation`, `my_authority`, `verify_presentation`, `request_approval` and `approval_status` call the same use cases \
as `POST /v1/presentations`, `POST /v1/verify` and the approval routes. See README, \"MCP\"."),
    paths(
        system::healthz, system::readyz, system::backup, system::rotate_operator_token, system::revoke_operator_tokens, audit::list, audit::verify, audit::export, lifecycle::get_guardrails, lifecycle::set_guardrails,
        tenants::create, tenants::list, tenants::delete, tenants::create_token, tenants::list_tokens, tenants::delete_token,
        agents::create, agents::list, agents::get, agents::rotate_token, agents::me,
        credentials::create_delegation, credentials::list, credentials::get, credentials::budget,
        credentials::revoke, credentials::suspend, credentials::resume, subdelegation::create, subdelegation::own, subdelegation::children,
        public::context, public::tenant_did, public::agent_did, public::status_list, public::audit_checkpoint,
        vc_api::issue, lifecycle::suspend, lifecycle::resume, lifecycle::retire, lifecycle::keys, lifecycle::rotate_key, lifecycle::compromised, lifecycle::replace, lifecycle::revoke_principal, lifecycle::rotate_issuer, lifecycle::issuer_compromised, lifecycle::issuer_credentials, lifecycle::issuer_reissue, lifecycle::rotate_data_key, lifecycle::data_key_status, lifecycle::get_policy, lifecycle::set_policy, lifecycle::get_cryptosuite, lifecycle::set_cryptosuite, lifecycle::rotate_root, presentations::create, presentations::verify, presentations::vc_api_verify, vc_api::verify, vc_api::update_status,
        approvals::list, approvals::get, approvals::approve, approvals::deny, approvals::status, approvals::presentation, approvals::get_settings, approvals::set_settings,
    ),
    components(schemas(problem::Problem, dto::Health, approvals::ApprovalStatusArgs)),
    modifiers(&Security, &StandardProblems),
    tags(
        (name = "system", description = "Health and readiness"),
        (name = "tenants", description = "Tenants (operator token)"),
        (name = "tokens", description = "Tenant admin and auditor tokens, the list of a tenant's tokens, the operator token"),
        (name = "agents", description = "Agents of a tenant (tenant admin; auditor may read)"),
        (name = "agent", description = "Routes for an agent's own token"),
        (name = "credentials", description = "Delegations and wallet credentials"),
        (name = "public", description = "DID documents, status lists, contexts and audit checkpoints (no token)"),
        (name = "vc-api", description = "W3C VC-API (VCALM) compatibility"),
        (name = "verify", description = "Presentation verification (no token)"),
        (name = "lifecycle", description = "Agent suspension, retirement and keys"),
        (name = "rotation", description = "Issuer, data and root key rotation"),
        (name = "audit", description = "Tamper-evident audit trail (admin and auditor tokens)"),
        (name = "guardrails", description = "Rate limits and automatic suspension of runaway agents"),
        (name = "approvals", description = "Human approval (step-up) of requests a delegation marks as needing it"),

    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("Sigil access token")).build()),
        );
    }
}

struct StandardProblems;

fn problem_response(desc: &str) -> RefOr<Response> {
    RefOr::T(
        Response::builder()
            .description(desc)
            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
            .build(),
    )
}

fn add_defaults(op: &mut Operation, has_body: bool, path: &str) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add = |code: &str, desc: &str| {
        op.responses.responses.entry(code.to_owned()).or_insert_with(|| problem_response(desc));
    };
    add("400", "Invalid request (`invalid_request`)");
    if has_body {
        add("413", "Body too large (`payload_too_large`)");
        add("415", "Body is not application/json (`unsupported_media_type`)");
    }
    if secured {
        add("401", "Missing or invalid token (`not_authenticated`)");
        add("403", "Token may not do this (`not_authorized`, `read_only`)");
        add("404", "Not found, or not visible to this token (`tenant_not_found`, `agent_not_found`, …)");
        add("429", "Throttled (`too_many_auth_failures`, `rate_limited`, `too_many_open_approvals`); see Retry-After");
    }
    if path.contains('{') {
        add("404", "Not found (`tenant_not_found`, `agent_not_found`, `credential_not_found`, `status_list_not_found`, …)");
    }
    if has_body
        || op.operation_id.as_deref().is_some_and(|id| !id.starts_with("get") && !id.starts_with("list")) && path.starts_with("/v1/")
    {
        add("409", "Conflicts with current state (`write_conflict`, `credential_revoked`, `rotation_in_progress`, …)");
    }
    if path.contains("{agent}") {
        add("410", "The agent is retired (`agent_retired`, `did_deactivated`)");
    }
    add("500", "Internal error (`internal_error`)");
    add("503", "Storage unavailable (`unavailable`)");
}

impl Modify for StandardProblems {
    fn modify(&self, doc: &mut Doc) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for (op, body) in [
                (item.get.as_mut(), false),
                (item.post.as_mut(), true),
                (item.put.as_mut(), true),
                (item.delete.as_mut(), false),
                (item.patch.as_mut(), true),
            ] {
                if let Some(op) = op {
                    add_defaults(op, body, path);
                }
            }
        }
    }
}

/// The document as pretty JSON (what `sigil openapi` prints and `openapi/openapi.json` holds).
pub fn document_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json().unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::from_str(&document_json()).unwrap()
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let d = doc();
        let paths = d["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (p, item) in paths {
            for m in ["get", "post", "put", "delete", "patch"] {
                if item.get(m).is_some() {
                    documented.push((m.to_owned(), p.clone()));
                }
            }
        }
        let mut registered: Vec<(String, String)> = crate::http::ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        documented.sort();
        registered.sort();
        assert_eq!(documented, registered, "openapi paths differ from the registered routes");
    }

    /// OpenAPI Generator (the Python SDK) fails on a `type` list other than "X or null"
    /// (3.1 allows any); such a schema is written as `oneOf` instead.
    #[test]
    fn multi_type_schemas_are_only_nullable_ones() {
        fn walk(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let (Some(serde_json::Value::Array(types)), false) = (m.get("type"), path.contains("/examples")) {
                        if types.len() > 2 || (types.len() == 2 && !types.iter().any(|t| t == "null")) {
                            bad.push(path.to_owned());
                        }
                    }
                    m.iter().for_each(|(k, v)| walk(v, &format!("{path}/{k}"), bad));
                }
                serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}/{i}"), bad)),
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk(&doc(), "", &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn operations_have_ids_tags_and_problem_responses() {
        let d = doc();
        for (p, item) in d["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                assert!(op["operationId"].is_string(), "{m} {p} lacks operationId");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{m} {p} lacks tags");
                assert!(op["responses"]["500"].is_object(), "{m} {p} lacks problem responses");
            }
        }
        assert_eq!(d["openapi"], "3.1.0");
        assert!(d["info"]["license"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    }
}
