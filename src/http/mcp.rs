//! `POST /mcp`: the Model Context Protocol over Streamable HTTP, so an agent running in an
//! MCP host reaches its wallet as tools rather than raw REST calls.
//!
//! Implements MCP revision [`SPEC`] (2026-07-28, stateless: `server/discover`, no session)
//! and, for hosts still on the handshake era, 2025-11-25 and 2025-06-18 (`initialize`,
//! answered without an `Mcp-Session-Id`, which those revisions allow). Every request is a
//! single JSON-RPC message answered with one `application/json` body; there is no SSE
//! stream (`GET`/`DELETE` answer 405, as the revision asks of a server that offers none).
//!
//! This is an http-edge adapter like the REST handlers: it authenticates with the same
//! [`Auth`] extractor (bearer token, tenant isolation, auth-failure throttling), reads the
//! body through the same [`Body`] bound, and each tool calls the one use case its REST route
//! calls (`present`, `verify_request`, `my_authority`, and for human approval
//! `present_or_approval`, `present_approved`, `approval_status`). It must never decide authority
//! itself, and a failing tool is an MCP tool error (`isError`) carrying the Sigil error
//! code, never a JSON-RPC crash or a 500.
//!
//! Hand-written rather than on the `rmcp` SDK: see docs/ARCHITECTURE.md ("MCP").

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::Body;
use super::auth::Auth;
use super::dto::CredentialSummary;
use super::presentations::{CreatePresentationRequest, VerifyRequest, presentation_body, presentation_request, verify_request};
use super::problem::ApiError;
use crate::codes::ErrorCode;
use crate::service::{ServiceError, Sigil};

/// The MCP revision this server implements (the current stable one).
pub const SPEC: &str = "2026-07-28";
/// Handshake-era revisions still answered, newest first.
const LEGACY: &[&str] = &[NEWEST_LEGACY, OLDEST_LEGACY];
const NEWEST_LEGACY: &str = "2025-11-25";
const OLDEST_LEGACY: &str = "2025-06-18";
/// JSON-RPC error of an unsupported protocol version (MCP 2026-07-28).
const UNSUPPORTED_VERSION: i64 = -32022;
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// Every revision served, newest first.
fn supported() -> Vec<&'static str> {
    std::iter::once(SPEC).chain(LEGACY.iter().copied()).collect()
}

/// A JSON-RPC error answer, and the HTTP status it travels with.
struct RpcError {
    status: StatusCode,
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self { status: StatusCode::OK, code, message: message.into(), data: None }
    }
}

/// Registers `/mcp`: outside [`super::ROUTES`] and the OpenAPI paths, since it is one
/// JSON-RPC endpoint rather than a REST resource (the OpenAPI description points here).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/mcp").route(web::post().to(post)).default_service(web::to(super::method_not_allowed)));
}

/// `POST /mcp`: one JSON-RPC request, notification or response.
pub async fn post(req: HttpRequest, sigil: web::Data<Sigil>, auth: Auth, body: Body<Value>) -> Result<HttpResponse, ApiError> {
    check_origin(&req)?;
    let msg = body.into_inner();
    let id = msg.get("id").cloned().filter(|i| i.is_string() || i.is_number());
    let method = msg.get("method").and_then(Value::as_str);
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Ok(rpc_error(id.unwrap_or(Value::Null), RpcError::new(-32600, "not a JSON-RPC 2.0 message")));
    }
    let (Some(id), Some(method)) = (id, method) else {
        // A notification (`notifications/initialized`, `notifications/cancelled`) or a
        // client's response: nothing to answer, as the transport specifies.
        if method.is_some() || msg.get("result").is_some() || msg.get("error").is_some() {
            return Ok(HttpResponse::Accepted().finish());
        }
        return Ok(rpc_error(Value::Null, RpcError::new(-32600, "a request needs a string or number id and a method")));
    };
    let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
    let Some(params) = params.as_object() else {
        return Ok(rpc_error(id, RpcError::new(-32602, "params must be an object")));
    };
    let answer = match version(&req, method, params) {
        Err(e) => Err(e),
        Ok(v) => dispatch(&req, &sigil, &auth, method, params, v).await,
    };
    Ok(match answer {
        Ok(result) => HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": result})),
        Err(e) => rpc_error(id, e),
    })
}

fn rpc_error(id: Value, e: RpcError) -> HttpResponse {
    let mut error = json!({"code": e.code, "message": e.message});
    if let (Some(d), Some(o)) = (e.data, error.as_object_mut()) {
        o.insert("data".into(), d);
    }
    HttpResponse::build(e.status).json(json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

/// A browser page must not drive /mcp through DNS rebinding (the transport requires the
/// check): an `Origin`, when sent, must name this very host.
fn check_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_ascii_lowercase();
    let same = origin.to_str().ok().and_then(|o| o.split_once("://")).is_some_and(|(_, h)| h.to_ascii_lowercase() == host);
    if same { Ok(()) } else { Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::NotAuthorized, "Origin does not match this server")) }
}

/// The revision of this request: `initialize` negotiates (the client's when served, else
/// the newest handshake one); any other method names it in `_meta` or the
/// `MCP-Protocol-Version` header, and an unknown one is refused with the served list.
fn version(req: &HttpRequest, method: &str, params: &Map<String, Value>) -> Result<&'static str, RpcError> {
    if method == "initialize" {
        let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
        return Ok(LEGACY.iter().copied().find(|v| *v == asked).unwrap_or(NEWEST_LEGACY));
    }
    let from_meta = params.get("_meta").and_then(|m| m.get(META_VERSION)).and_then(Value::as_str);
    let from_header = req.headers().get("mcp-protocol-version").and_then(|v| v.to_str().ok());
    // Without either, the transport says to assume the oldest handshake revision served.
    let asked = from_meta.or(from_header).unwrap_or(OLDEST_LEGACY);
    match supported().into_iter().find(|v| *v == asked) {
        Some(v) => Ok(v),
        None => Err(RpcError {
            status: StatusCode::BAD_REQUEST,
            code: UNSUPPORTED_VERSION,
            message: format!("unsupported protocol version {asked:?}"),
            data: Some(json!({"supported": supported(), "requested": asked})),
        }),
    }
}

async fn dispatch(
    req: &HttpRequest,
    sigil: &Sigil,
    auth: &Auth,
    method: &str,
    params: &Map<String, Value>,
    version: &'static str,
) -> Result<Value, RpcError> {
    let capabilities = json!({"tools": {"listChanged": false}});
    let info = json!({"name": "sigil", "title": "Sigil agent wallet", "version": env!("CARGO_PKG_VERSION")});
    match method {
        "server/discover" => Ok(json!({
            "supportedVersions": supported(), "capabilities": capabilities, "instructions": INSTRUCTIONS,
            "cacheScope": "public", "ttlMs": 0, "resultType": "complete",
            "_meta": {"io.modelcontextprotocol/serverInfo": info},
        })),
        "initialize" => Ok(json!({
            "protocolVersion": version, "capabilities": capabilities, "serverInfo": info, "instructions": INSTRUCTIONS,
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tools(), "cacheScope": "public", "ttlMs": 0, "resultType": "complete"})),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).ok_or_else(|| RpcError::new(-32602, "tools/call needs a name"))?;
            let args = match params.get("arguments") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(a @ Value::Object(_)) => a.clone(),
                Some(_) => return Err(RpcError::new(-32602, "arguments must be an object")),
            };
            let outcome = match name {
                "request_presentation" => request_presentation(sigil, auth, args).await,
                "my_authority" => my_authority(sigil, auth, args).await,
                "verify_presentation" => verify_presentation(req, sigil, args).await,
                "request_approval" => match parse_args(args) {
                    Ok(b) => super::approvals::mcp_request_approval(sigil, auth, b).await,
                    Err(e) => Err(e),
                },
                "approval_status" => match parse_args(args) {
                    Ok(a) => super::approvals::mcp_approval_status(sigil, auth, a).await,
                    Err(e) => Err(e),
                },
                other => return Err(RpcError::new(-32602, format!("unknown tool {other:?}; tools/list names the tools"))),
            };
            Ok(match outcome {
                Ok(v) => json!({"content": [{"type": "text", "text": v.to_string()}], "structuredContent": v, "isError": false,
                    "resultType": "complete"}),
                Err(e) => tool_error(&e),
            })
        }
        other => Err(RpcError::new(-32601, format!("method {other:?} is not served; Sigil offers tools only"))),
    }
}

/// An MCP tool error: the Sigil code and detail, plus what a model can do about it.
fn tool_error(e: &ApiError) -> Value {
    let code = e.code().as_str();
    let next = next_step(e.code());
    let structured = json!({"error": code, "status": e.status().as_u16(), "detail": e.detail(), "next_step": next});
    json!({"content": [{"type": "text", "text": format!("{code}: {}. {next}", e.detail().trim_end_matches('.'))}], "structuredContent": structured,
        "isError": true, "resultType": "complete"})
}

/// One sentence a model can act on, per refusal.
fn next_step(code: ErrorCode) -> &'static str {
    use ErrorCode as C;
    match code {
        C::ActionNotAllowed | C::ResourceNotAllowed | C::NoDelegation => {
            "Your delegations do not cover this; call my_authority to see what you may do, and ask your principal for a delegation if you need more."
        }
        C::AmountExceedsLimit => {
            "The amount is above a per-request limit or what remains of today's budget; call my_authority for your limits and remaining budget, then use a smaller amount or ask a human."
        }
        C::CurrencyMismatch => "Use the currency your delegation's amount limit names (see my_authority).",
        C::OutsideSchedule => "Your delegation allows this only inside its schedule (see my_authority); retry within it or ask a human.",
        C::CredentialExpired | C::CredentialNotYetValid | C::CredentialRevoked | C::CredentialSuspended | C::AgentSuspended => {
            "Your authority is not in force right now; do not retry, tell your principal or operator."
        }
        C::ApprovalRequired => {
            "This action needs a human's approval first: call request_approval with the same arguments, then approval_status with its id (and a fresh challenge and domain) until it yields the presentation."
        }
        C::ApprovalDenied => "A human denied this request; do not retry it, tell your principal.",
        C::ApprovalExpired | C::ApprovalDecided => "Call request_approval again for a new approval.",
        C::TooManyOpenApprovals => {
            "You have too many approval requests waiting; wait for the humans to decide (approval_status) before asking for new ones."
        }
        C::InvalidRequest => "Fix the arguments as the detail says (the tool's input schema lists the rules) and call again.",
        C::TooManyAuthFailures | C::RateLimited => "Too many requests; wait before calling again.",
        C::NotAuthorized | C::NotAuthenticated => "This token may not do this; the tool needs an agent token of the tenant.",
        _ => "Do not retry the same request unchanged.",
    }
}

fn parse_args<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, ApiError> {
    serde_json::from_value(args).map_err(|e| ApiError::bad_request(format!("invalid arguments: {e}")))
}

async fn request_presentation(sigil: &Sigil, auth: &Auth, args: Value) -> Result<Value, ApiError> {
    let (req, format) = presentation_request(parse_args::<CreatePresentationRequest>(args)?);
    let p = sigil.present(&auth.0, req).await?;
    serde_json::from_slice(&presentation_body(&p, format)?).map_err(|e| ServiceError::Internal(e.to_string()).into())
}

async fn verify_presentation(req: &HttpRequest, sigil: &Sigil, args: Value) -> Result<Value, ApiError> {
    let report = verify_request(sigil, super::client::client_ip(req), parse_args::<VerifyRequest>(args)?).await?;
    serde_json::to_value(report).map_err(|e| ServiceError::Internal(e.to_string()).into())
}

async fn my_authority(sigil: &Sigil, auth: &Auth, args: Value) -> Result<Value, ApiError> {
    if args.as_object().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::bad_request("my_authority takes no arguments"));
    }
    let mine = sigil.my_authority(&auth.0).await?;
    let delegations: Vec<Value> = mine
        .delegations
        .iter()
        .map(|(rec, budget)| {
            let mut d = serde_json::to_value(CredentialSummary::new(rec, mine.now)).unwrap_or_default();
            let authority = rec.authority.as_ref();
            if let Some(o) = d.as_object_mut() {
                o.insert("limits".into(), authority.map(|a| serde_json::to_value(&a.limits).unwrap_or_default()).unwrap_or_default());
                o.insert(
                    "schedule".into(),
                    authority.and_then(|a| a.schedule.as_ref()).map_or(Value::Null, |s| {
                        json!({"timezone": s.timezone, "days": s.days.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>(),
                            "from": s.from.strftime("%H:%M").to_string(), "to": s.to.strftime("%H:%M").to_string()})
                    }),
                );
                o.insert(
                    "budget_today".into(),
                    serde_json::to_value(super::credentials::BudgetResponse::from(budget.clone())).unwrap_or_default(),
                );
            }
            d
        })
        .collect();
    let a = &mine.agent;
    Ok(json!({
        "agent": {"id": a.id, "did": mine.did, "name": a.name, "state": a.state},
        "now": crate::clock::rfc3339(mine.now),
        "delegations": delegations,
    }))
}

const INSTRUCTIONS: &str = "Sigil is this agent's identity wallet. Before acting for your principal, call \
request_presentation with the action, resource and context, and hand the returned presentation to the service \
that asked for it (its challenge and domain). Call my_authority to plan within what you may do. An action that \
needs a human's approval: call request_approval, then approval_status until it yields the presentation.";

/// The tool list, built once: input schemas come from the same types (and OpenAPI
/// components) that parse the REST bodies, so a tool accepts exactly what its route does.
fn tools() -> Value {
    static TOOLS: OnceLock<Value> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            json!([
                {
                    "name": "request_presentation",
                    "title": "Request a signed presentation for one action",
                    "description": "Ask the wallet for a verifiable presentation proving you may perform ONE action \
            right now, e.g. action \"refunds:create\", resource \"orders/123\", context {\"amount\": \"120.00\", \"currency\": \"EUR\"}. \
            Use the challenge and domain the verifying service gave you. On success you get `presentation` (hand it to that service \
            unchanged), `credential_ids` and `expires_at`. If your authority does not cover the action you get an error whose code \
            (action_not_allowed, resource_not_allowed, amount_exceeds_limit, currency_mismatch, outside_schedule, credential_*, \
            no_delegation) says why; do not retry unchanged.",
                    "inputSchema": schema_of("CreatePresentationRequest"),
                },
                {
                    "name": "request_approval",
                    "title": "Ask for a human's approval of one action",
                    "description": "Same arguments as request_presentation. For an action your delegation says needs a human's \
            approval (e.g. refunds above an amount), this creates (or finds) the approval request and answers `approval` with its \
            `id`, `status` and `expires_at`; a human approves or denies it. If no approval is needed, or it is already approved, you \
            get the presentation directly, as from request_presentation.",
                    "inputSchema": schema_of("CreatePresentationRequest"),
                },
                {
                    "name": "approval_status",
                    "title": "Status of an approval, or its presentation once approved",
                    "description": "Pass the `id` from request_approval. Without challenge and domain: the approval's status \
            (pending, approved, denied, used, expired). With the verifier's challenge and domain: once approved, the presentation \
            carrying the approval (usable once); while pending, the approval again.",
                    "inputSchema": schema_of("ApprovalStatusArgs"),
                    "annotations": {"readOnlyHint": false},
                },
                {
                    "name": "my_authority",
                    "title": "What may I do now?",
                    "description": "List what this agent may do right now: each delegation with its status, principal, \
            allowed actions and resource patterns (globs), amount limits, weekly schedule and today's remaining daily budget. \
            Call it to plan before request_presentation, and after a refusal. Takes no arguments.",
                    "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
                    "annotations": {"readOnlyHint": true},
                },
                {
                    "name": "verify_presentation",
                    "title": "Verify a presentation (verifier side)",
                    "description": "Verify a presentation another agent handed you before allowing its action: signatures, \
            revocation and suspension, validity, holder binding, issuer trust and, if you pass `action`, that it covers exactly that \
            action. Pass the challenge and domain you issued; a challenge verifies once. Allow the action only when `verified` is true; \
            `checks` and `errors` say what failed.",
                    "inputSchema": schema_of("VerifyRequest"),
                },
            ])
        })
        .clone()
}

/// The OpenAPI component `name` as a self-contained JSON Schema: the components it refers
/// to move under `$defs`.
fn schema_of(name: &str) -> Value {
    let doc = serde_json::to_value(<super::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap_or_default();
    let components = doc.pointer("/components/schemas").cloned().unwrap_or_default();
    let mut defs = Map::new();
    let mut todo = vec![name.to_owned()];
    while let Some(n) = todo.pop() {
        if defs.contains_key(&n) {
            continue;
        }
        let mut s = components.get(&n).cloned().unwrap_or_else(|| json!({"type": "object"}));
        rewrite_refs(&mut s, &mut todo);
        defs.insert(n, s);
    }
    let mut root = defs.remove(name).unwrap_or_default();
    if let (Some(o), false) = (root.as_object_mut(), defs.is_empty()) {
        o.insert("$defs".into(), Value::Object(defs));
    }
    root
}

fn rewrite_refs(v: &mut Value, found: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                if let Some(n) = r.strip_prefix("#/components/schemas/") {
                    found.push(n.to_owned());
                    *r = format!("#/$defs/{n}");
                }
            }
            o.values_mut().for_each(|x| rewrite_refs(x, found));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, found)),
        _ => {}
    }
}
