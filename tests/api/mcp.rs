//! MCP at `/mcp` and through `sigil mcp` (stdio), driven by the official MCP Python SDK
//! (tests/mcp/client.py, installed by scripts/mcp-venv into .venv-mcp). A missing SDK fails
//! these tests: they never skip.

use std::path::PathBuf;
use std::sync::Once;

use serde_json::{Value, json};

use crate::helpers::{Opts, Server};
use crate::presentations::{delegation, setup};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SDK's Python, installed once per test run (idempotent, stamped).
fn python() -> PathBuf {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let st = std::process::Command::new(root().join("scripts/mcp-venv")).status().expect("scripts/mcp-venv runs");
        assert!(st.success(), "scripts/mcp-venv failed: the MCP Python SDK is required for these tests");
    });
    root().join(".venv-mcp/bin/python")
}

/// Runs tests/mcp/client.py against `s` with `token`; its JSON report.
fn client(s: &Server, token: &str, transport: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    s.secrets().add(token);
    let ca = s.data.join("tls/ca.pem");
    let out = std::process::Command::new(python())
        .arg(root().join("tests/mcp/client.py"))
        .args(["--transport", transport, "--url", &s.base])
        .arg("--ca")
        .arg(&ca)
        .arg("--token-file")
        .arg(&token_file)
        .arg("--sigil")
        .arg(crate::helpers::bin())
        .args(extra)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client.py failed: {stderr}");
    // Neither the client's nor the bridge's stderr (it inherits the client's) shows the token.
    assert!(!stderr.contains(token), "the token leaked to stderr");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)))
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn assert_granted_denied_verified(r: &Value) {
    assert!(r.get("exception").is_none(), "{r:#}");
    let g = &r["granted"];
    assert_eq!(g["is_error"], false, "{g:#}");
    assert!(g["structured"]["presentation"]["proof"].is_object(), "{g:#}");
    assert_eq!(g["structured"]["credential_ids"].as_array().unwrap().len(), 2, "{g:#}");
    let d = &r["denied"];
    assert_eq!(d["is_error"], true, "{d:#}");
    assert_eq!(d["structured"]["error"], "action_not_allowed", "{d:#}");
    assert!(d["text"][0].as_str().unwrap().contains("my_authority"), "a sentence a model can act on: {d:#}");
    let v = &r["verified"];
    assert_eq!(v["is_error"], false, "{v:#}");
    assert_eq!(v["structured"]["verified"], true, "{v:#}");
}

#[tokio::test]
async fn official_python_client_over_streamable_http() {
    let s = Server::start().await;
    let (_, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let r = client(&s, &token, "http", &[]);
    // The SDK negotiates the current revision (server/discover, no initialize).
    assert_eq!(r["protocol_version"], "2026-07-28", "{r:#}");
    let tools = r["tools"].as_object().unwrap();
    let names: Vec<&str> = tools.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for n in ["request_presentation", "my_authority", "verify_presentation", "request_approval", "approval_status"] {
        let t = &tools[n];
        assert!(t["description"].as_str().unwrap().len() > 80, "{n} needs a description written for a model");
        assert_eq!(t["input_schema"]["type"], "object", "{n}: {t:#}");
    }
    let schema = &tools["request_presentation"]["input_schema"];
    for field in ["action", "resource", "context", "challenge", "domain", "format"] {
        assert!(schema["properties"][field].is_object(), "{field} missing: {schema:#}");
    }
    assert_eq!(schema["required"], json!(["action", "challenge", "domain"]), "{schema:#}");
    // Schemas are self-contained: every $ref points into the tool's own $defs.
    for (n, t) in tools {
        let mut refs = Vec::new();
        collect_refs(&t["input_schema"], &mut refs);
        for r in refs {
            let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{n}: {r} is not local"));
            assert!(t["input_schema"]["$defs"][name].is_object(), "{n}: {r} unresolved");
        }
    }
    assert_granted_denied_verified(&r);
    // The presentation the tool returned is the one REST would: it names the agent.
    assert!(r["granted"]["structured"]["presentation"]["holder"].as_str().unwrap().ends_with(&agent), "{r:#}");

    // my_authority: what the agent may do, with today's budget.
    let a = &r["authority"]["structured"];
    assert_eq!(r["authority"]["is_error"], false, "{a:#}");
    assert_eq!(a["agent"]["id"], agent.as_str());
    let d = &a["delegations"][0];
    assert_eq!(d["status"], "active", "{a:#}");
    assert_eq!(d["actions"], json!(["refunds:create"]));
    assert_eq!(d["resources"], json!(["orders/*"]));
    assert_eq!(d["limits"]["amount"]["max"], "500.00", "{a:#}");
    assert_eq!(d["schedule"]["timezone"], "UTC", "{a:#}");
    assert!(d["budget_today"]["spent"].is_string(), "{a:#}");

    // The handshake era (2025-11-25 `initialize`) is served too, statelessly.
    let r = client(&s, &token, "http", &["--mode", "legacy", "--challenge", "mcp-legacy"]);
    assert_eq!(r["protocol_version"], "2025-11-25", "{r:#}");
    assert_granted_denied_verified(&r);
}

#[tokio::test]
async fn official_python_client_through_the_stdio_bridge() {
    let s = Server::start().await;
    let (_, _, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let r = client(&s, &token, "stdio", &["--challenge", "mcp-stdio"]);
    assert_eq!(r["tools"].as_object().map(|t| t.len()), Some(5), "{r:#}");
    assert_granted_denied_verified(&r);

    // A bad token through the bridge: the server's 401 comes back as an error the host can show.
    let r = client(&s, "sgl_not-a-valid-token-0123456789abcdefghij", "stdio", &["--steps", "list"]);
    let e = r["exception"].as_str().unwrap_or_default();
    assert!(e.contains("401") && e.contains("not_authenticated"), "{r:#}");
}

#[tokio::test]
async fn human_approval_through_the_official_python_client() {
    let s = Server::start().await;
    let mut d = delegation(&["refunds:create"], &["orders/*"]);
    d["approval"] = json!({"above": {"amount": "200.00", "currency": "EUR"}});
    let (admin, _, token) = setup(&s, "acme", Some(d)).await;
    // request_presentation refuses with a step a model can act on; request_approval asks.
    let r = client(&s, &token, "http", &["--steps", "granted,request_approval", "--amount", "250.00", "--challenge", "mcp-ap-1"]);
    assert_eq!(r["granted"]["is_error"], false, "below the threshold: {r:#}");
    let asked = &r["request_approval"];
    assert_eq!(asked["is_error"], false, "{r:#}");
    let id = asked["structured"]["approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(asked["structured"]["approval"]["status"], "pending", "{r:#}");
    let (st, v) = rpc(
        &s,
        Some(&token),
        call(
            "request_presentation",
            json!({"action": "refunds:create", "resource": "orders/123", "challenge": "x", "domain": "payments.example",
                   "context": {"amount": "250.00", "currency": "EUR"}}),
        ),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["result"]["structuredContent"]["error"], "approval_required", "{v}");
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains("request_approval"), "{v}");
    // A human approves; approval_status then yields the presentation carrying it.
    let (st, _) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &admin, json!({})).await;
    assert_eq!(st, 200);
    let r = client(&s, &token, "http", &["--steps", "approval_status", "--approval-id", &id, "--challenge", "mcp-ap-2"]);
    assert_eq!(r["approval_status"]["structured"]["approval"]["status"], "approved", "{r:#}");
    let p = &r["approval_presentation"];
    assert_eq!(p["is_error"], false, "{r:#}");
    let body = json!({"presentation": p["structured"]["presentation"], "challenge": "mcp-ap-2", "domain": "payments.example"});
    let (_, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["approval"]["approver"].is_string(), "{v}");
}

/// Raw JSON-RPC, for what the SDK will not send.
async fn rpc(s: &Server, token: Option<&str>, body: Value) -> (u16, Value) {
    s.call("POST", "/mcp", token, Some(body)).await
}

fn call(name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": name, "arguments": args, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
}

#[tokio::test]
async fn tokens_tenants_and_bounds_are_the_rest_api_s() {
    let s = Server::start().await;
    let (_, _, token_a) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let (admin_b, agent_b, token_b) = setup(&s, "globex", Some(delegation(&["refunds:create"], &["orders/*"]))).await;

    // No token, a bad token: refused before any JSON-RPC, as on REST (the SDK too).
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let (st, v) = rpc(&s, None, list.clone()).await;
    assert_eq!((st, v["code"].as_str()), (401, Some("not_authenticated")), "{v}");
    let (st, _) = rpc(&s, Some("sgl_wrong-token-0123456789abcdefghijklmnopq"), list.clone()).await;
    assert_eq!(st, 401);
    let r = client(&s, "sgl_wrong-token-0123456789abcdefghijklmnopq", "http", &["--steps", "list"]);
    // (The SDK reports any HTTP 4xx without a JSON-RPC body as this generic error.)
    assert!(r["exception"].as_str().is_some_and(|e| e.contains("Server returned an error response")), "{r:#}");
    assert!(r.get("tools").is_none(), "{r:#}");

    // Tenant isolation: acme's agent token acts as acme's agent only. Its authority lists
    // nothing of globex, and it cannot get a presentation from globex's delegation: its own
    // wallet (refunds on orders/*) answers, under acme's DID.
    let (st, v) = rpc(&s, Some(&token_a), call("my_authority", json!({}))).await;
    assert_eq!(st, 200, "{v}");
    let me = &v["result"]["structuredContent"];
    assert!(me["agent"]["did"].as_str().unwrap().contains("acme"), "{v}");
    assert!(!v.to_string().contains(&agent_b) && !v.to_string().contains("globex"), "{v}");
    // globex revokes its agent's delegation: acme's token is unaffected, globex's refused.
    let (_, creds) = s.get(&format!("/v1/tenants/globex/agents/{agent_b}/credentials"), &admin_b).await;
    let deleg = creds["items"].as_array().unwrap().iter().find(|c| c["kind"] == "delegation").unwrap()["id"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/v1/tenants/globex/credentials/{deleg}/revoke"), &admin_b, json!({})).await;
    assert_eq!(st, 200);
    let ask = |ch: &str| {
        call(
            "request_presentation",
            json!({"action": "refunds:create", "resource": "orders/1", "challenge": ch, "domain": "d.example",
            "context": {"amount": "10.00", "currency": "EUR"}}),
        )
    };
    let (_, v) = rpc(&s, Some(&token_b), ask("iso-b")).await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_eq!(v["result"]["structuredContent"]["error"], "credential_revoked", "{v}");
    let (_, v) = rpc(&s, Some(&token_a), ask("iso-a")).await;
    assert_eq!(v["result"]["isError"], false, "{v}");
    let holder = v["result"]["structuredContent"]["presentation"]["holder"].as_str().unwrap();
    assert!(holder.contains("acme") && !holder.contains("globex"), "{holder}");
    // A tenant admin token is no agent: the tool refuses with the Sigil code.
    let (_, v) = rpc(&s, Some(&admin_b), ask("iso-admin")).await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_eq!(v["result"]["structuredContent"]["error"], "not_authorized", "{v}");

    // Bad arguments are a tool error naming the rule, never a 500.
    let (st, v) = rpc(&s, Some(&token_a), call("request_presentation", json!({"action": "x", "surprise": 1}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["structuredContent"]["error"], "invalid_request", "{v}");
    // Unknown method and version: JSON-RPC errors (-32601; -32022 with HTTP 400).
    let (_, v) = rpc(&s, Some(&token_a), json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list", "params": {}})).await;
    assert_eq!(v["error"]["code"], -32601, "{v}");
    // (A JSON-RPC error body, not problem+json, so not through `Server::call`.)
    let resp = s
        .client
        .post(s.url("/mcp"))
        .bearer_auth(&token_a)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list",
                      "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "1999-01-01"}}}))
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32022)), "{v}");
    assert_eq!(v["error"]["data"]["supported"][0], "2026-07-28", "{v}");
    // The REST body limit holds on /mcp.
    let big = "x".repeat(128 * 1024);
    let (st, v) = rpc(&s, Some(&token_a), call("verify_presentation", json!({"presentation": big}))).await;
    assert_eq!((st, v["code"].as_str()), (413, Some("payload_too_large")), "{v}");
    // A browser page from elsewhere (DNS rebinding) is refused; this host's own origin is not.
    for (origin, want) in [("https://evil.example".to_owned(), 403), (s.base.clone(), 200)] {
        let resp = s.client.post(s.url("/mcp")).bearer_auth(&token_a).header("origin", origin).json(&list).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want);
    }
    // No SSE stream: GET answers 405.
    let (st, _) = s.call("GET", "/mcp", Some(&token_a), None).await;
    assert_eq!(st, 405);
}

/// Failed authentications on /mcp count toward the same per-address throttle as REST; a
/// valid token is still served.
#[tokio::test]
async fn failed_authentications_on_mcp_are_throttled() {
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_AUTH_FAILURE_BURST".into(), "5".into()));
    let s = Server::start_with(opts).await;
    let (_, _, token) = setup(&s, "acme", None).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(rpc(&s, Some("sgl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), list.clone()).await.0);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[7], 429, "{statuses:?}");
    let (st, v) = rpc(&s, Some(&token), list).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["tools"].as_array().map(Vec::len), Some(5), "{v}");
}
