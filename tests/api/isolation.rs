//! Tenant isolation matrix: every registered route × every kind of wrong token.

use serde_json::{Value, json};

use crate::helpers::{OPERATOR, Server};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Class {
    Public,
    Operator,
    TenantRead,
    TenantAdmin,
    /// Decides approvals: an approver or admin of the tenant (never an auditor or agent).
    Approver,
    Agent,
}

struct Fixture {
    admin_a: String,
    auditor_a: String,
    agent_a: String,
    agent_a_token: String,
    auditor_a_id: String,
    credential_a: String,
    identity_vc_a: Value,
    admin_b: String,
    auditor_b: String,
    agent_b_token: String,
    /// A pending approval asked for by tenant A's agent.
    approval_a: String,
}

/// A delegation that needs a human's approval for every payout.
fn approval_delegation() -> Value {
    json!({"principal": {"id": "alice@acme.example", "kind": "person"}, "actions": ["payouts:create"], "resources": ["payouts/*"],
           "approval": {}, "valid_until": "2099-01-01T00:00:00Z"})
}

/// Gives `agent` the approval delegation and asks for a payout: the pending approval's id.
async fn pending_approval(s: &Server, tenant: &str, admin: &str, agent: &str, agent_token: &str) -> String {
    let (st, v) = s.post(&format!("/v1/tenants/{tenant}/agents/{agent}/delegations"), admin, approval_delegation()).await;
    assert_eq!(st, 201, "{v}");
    let ask = json!({"action": "payouts:create", "resource": "payouts/1", "challenge": "iso", "domain": "d.example"});
    let (st, v) = s.post("/v1/presentations", agent_token, ask).await;
    assert_eq!(st, 202, "{v}");
    v["approval"]["id"].as_str().unwrap().to_owned()
}

/// The id of the credential the status route's own caller changes (issued with status
/// through the VC-API just before).
const ISSUED_WITH_STATUS: &str = "urn:uuid:1b2c3d4e-0000-4000-8000-000000000001";

/// Routes served outside the API table (`sigil::http::ROUTES`): they are public, and part of
/// the matrix all the same.
const EXTRA_ROUTES: &[(&str, &str)] = &[("get", "/metrics"), ("get", "/docs"), ("get", "/openapi.json")];

/// How each route is exercised: its class, the concrete path on tenant A, and a valid body.
fn case(method: &str, path: &str, f: &Fixture) -> (Class, String, Option<Value>) {
    case_on("tenant-a", method, path, f)
}

/// The same with `tenant` in the path (and still tenant A's object ids).
fn case_on(tenant: &str, method: &str, path: &str, f: &Fixture) -> (Class, String, Option<Value>) {
    let p = path
        .replace("{tenant}", tenant)
        .replace("{agent}", &f.agent_a)
        .replace("{token}", &f.auditor_a_id)
        .replace("{credential}", &f.credential_a)
        .replace("{list}", "r1")
        .replace("{version}", "1")
        .replace("{principal}", "alice%40acme.example")
        .replace("{approval}", &f.approval_a);
    let (class, body) = match (method, path) {
        ("get", "/healthz") | ("get", "/readyz") | ("get", "/metrics") | ("get", "/docs") | ("get", "/openapi.json") => {
            (Class::Public, None)
        }
        ("post", "/v1/tenants") => (Class::Operator, Some(json!({"name": "x"}))),
        ("get", "/v1/tenants") => (Class::Operator, None),
        ("delete", "/v1/tenants/{tenant}") => (Class::Operator, None),
        ("post", "/v1/tenants/{tenant}/tokens") => (Class::TenantAdmin, Some(json!({"role": "auditor", "expires_in": 3600}))),
        ("get", "/v1/tenants/{tenant}/tokens") => (Class::TenantRead, None),
        ("delete", "/v1/tenants/{tenant}/tokens/{token}") => (Class::TenantAdmin, None),
        ("post", "/v1/tenants/{tenant}/agents") => (Class::TenantAdmin, Some(json!({"name": "intruder"}))),
        ("get", "/v1/tenants/{tenant}/agents") => (Class::TenantRead, None),
        ("get", "/v1/tenants/{tenant}/agents/{agent}") => (Class::TenantRead, None),
        ("post", "/v1/tenants/{tenant}/agents/{agent}/tokens") => (Class::TenantAdmin, Some(json!({}))),
        ("get", "/v1/agent") | ("get", "/v1/agent/delegations") => (Class::Agent, None),
        ("post", "/v1/agent/delegations") => (
            Class::Agent,
            Some(json!({"to": f.agent_a, "parent": f.credential_a, "actions": ["refunds:create"], "resources": ["orders/1"]})),
        ),
        ("get", "/v1/tenants/{tenant}/credentials/{credential}/children") => (Class::TenantRead, None),
        ("post", "/v1/tenants/{tenant}/agents/{agent}/delegations") => (Class::TenantAdmin, Some(crate::credentials::delegation_body())),
        ("get", "/v1/tenants/{tenant}/agents/{agent}/credentials") => (Class::TenantRead, None),
        ("get", "/v1/tenants/{tenant}/credentials/{credential}") | ("get", "/v1/tenants/{tenant}/credentials/{credential}/budget") => {
            (Class::TenantRead, None)
        }
        ("post", "/v1/tenants/{tenant}/credentials/{credential}/revoke")
        | ("post", "/v1/tenants/{tenant}/credentials/{credential}/suspend")
        | ("post", "/v1/tenants/{tenant}/credentials/{credential}/resume") => (Class::TenantAdmin, None),
        ("get", "/ns/v1")
        | ("get", "/tenants/{tenant}/did.json")
        | ("get", "/tenants/{tenant}/agents/{agent}/did.json")
        | ("get", "/tenants/{tenant}/status/{list}")
        | ("get", "/tenants/{tenant}/audit/checkpoint") => (Class::Public, None),
        ("post", "/tenants/{tenant}/vc-api/credentials/issue") => (
            Class::TenantAdmin,
            Some(json!({"credential": {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                "issuer": "did:web:x", "credentialSubject": {"id": "did:example:1"}}})),
        ),
        ("post", "/tenants/{tenant}/vc-api/credentials/status") => (
            Class::TenantAdmin,
            Some(json!({"credentialId": ISSUED_WITH_STATUS, "status": true,
                "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "suspension"}})),
        ),
        ("post", "/tenants/{tenant}/vc-api/credentials/verify") => (Class::Public, Some(json!({"verifiableCredential": f.identity_vc_a}))),
        ("post", "/tenants/{tenant}/vc-api/presentations/verify") => (Class::Public, Some(json!({"verifiablePresentation": {}}))),
        ("post", "/v1/verify") => (Class::Public, Some(json!({"presentation": {}}))),
        ("post", "/v1/presentations") => (Class::Agent, Some(crate::presentations::refund("iso"))),
        ("post", "/v1/tenants/{tenant}/agents/{agent}/suspend")
        | ("post", "/v1/tenants/{tenant}/agents/{agent}/resume")
        | ("post", "/v1/tenants/{tenant}/agents/{agent}/retire")
        | ("post", "/v1/tenants/{tenant}/agents/{agent}/keys/rotate")
        | ("post", "/v1/tenants/{tenant}/agents/{agent}/keys/{version}/compromised")
        | ("post", "/v1/tenants/{tenant}/principals/{principal}/revoke")
        | ("post", "/v1/tenants/{tenant}/data-key/rotate") => (Class::TenantAdmin, None),
        ("post", "/v1/tenants/{tenant}/issuer-key/rotate") => (Class::TenantAdmin, Some(json!({}))),
        ("post", "/v1/tenants/{tenant}/issuer-key/{version}/compromised")
        | ("post", "/v1/tenants/{tenant}/issuer-key/{version}/reissue") => (Class::TenantAdmin, None),
        ("get", "/v1/tenants/{tenant}/issuer-key/{version}/credentials") => (Class::TenantRead, None),
        ("post", "/v1/tenants/{tenant}/credentials/{credential}/replace") => {
            (Class::TenantAdmin, Some(crate::credentials::delegation_body()))
        }
        ("put", "/v1/tenants/{tenant}/key-policy") => (Class::TenantAdmin, Some(json!({"agent_key_max_age_days": 30}))),
        ("put", "/v1/tenants/{tenant}/cryptosuite") => (Class::TenantAdmin, Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))),
        ("get", "/v1/tenants/{tenant}/agents/{agent}/keys")
        | ("get", "/v1/tenants/{tenant}/data-key")
        | ("get", "/v1/tenants/{tenant}/key-policy")
        | ("get", "/v1/tenants/{tenant}/cryptosuite") => (Class::TenantRead, None),
        ("post", "/v1/system/root-key/rotate") => (Class::Operator, Some(json!({"new_root_key_file": "/nonexistent"}))),
        ("get", "/v1/system/backup") => (Class::Operator, None),
        ("post", "/v1/system/operator-token/rotate") | ("post", "/v1/system/operator-token/revoke") => (Class::Operator, None),
        ("get", "/v1/tenants/{tenant}/guardrails") => (Class::TenantRead, None),
        ("put", "/v1/tenants/{tenant}/guardrails") => (
            Class::TenantAdmin,
            Some(
                json!({"rate_per_second": 50, "burst": 100, "denial_threshold": 20, "denial_window_secs": 300, "sensitive_context_keys": []}),
            ),
        ),

        ("get", "/v1/tenants/{tenant}/approvals")
        | ("get", "/v1/tenants/{tenant}/approvals/{approval}")
        | ("post", "/v1/tenants/{tenant}/approvals/{approval}/approve")
        | ("post", "/v1/tenants/{tenant}/approvals/{approval}/deny") => (Class::Approver, None),
        ("get", "/v1/approvals/{approval}") => (Class::Agent, None),
        ("post", "/v1/approvals/{approval}/presentation") => (Class::Agent, Some(json!({"challenge": "iso", "domain": "d.example"}))),
        ("get", "/v1/tenants/{tenant}/approval-settings") => (Class::TenantRead, None),
        ("put", "/v1/tenants/{tenant}/approval-settings") => (Class::TenantAdmin, Some(json!({"ttl_secs": 600}))),

        ("get", "/v1/tenants/{tenant}/audit")
        | ("get", "/v1/tenants/{tenant}/audit/verify")
        | ("get", "/v1/tenants/{tenant}/audit/export") => (Class::TenantRead, None),

        other => panic!("route {other:?} has no isolation case: add it to tests/api/isolation.rs"),
    };
    (class, p, body)
}

async fn expect(s: &Server, method: &str, path: &str, token: Option<&str>, body: &Option<Value>, want: u16, who: &str) {
    let (status, v) = s.call(&method.to_uppercase(), path, token, body.clone()).await;
    assert_eq!(status, want, "{who}: {method} {path} → {status} {v}");
}

async fn read(s: &Server, path: &str, token: Option<&str>) -> Value {
    let (st, v) = s.call("GET", path, token, None).await;
    assert_eq!(st, 200, "GET {path} → {st} {v}");
    v
}

/// Everything tenant `t` holds, as its own admin (or anyone, for DIDs) reads it: agents
/// with their keys and wallets, every credential with its status, key state and policies,
/// and the audit trail less what an intruder's refused attempt legitimately adds
/// (`auth.failed`), what the tenant's own agent may do in the matrix (`presentation.*`)
/// and the periodic `audit.checkpoint`.
async fn state(s: &Server, t: &str, admin: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let agents = read(s, &format!("/v1/tenants/{t}/agents?limit=500"), Some(admin)).await;
    out.push(("agents".to_owned(), agents.clone()));
    for a in agents["items"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        for path in [
            format!("/v1/tenants/{t}/agents/{id}"),
            format!("/v1/tenants/{t}/agents/{id}/keys"),
            format!("/v1/tenants/{t}/agents/{id}/credentials?limit=500"),
        ] {
            out.push((path.clone(), read(s, &path, Some(admin)).await));
        }
        let path = format!("/tenants/{t}/agents/{id}/did.json");
        out.push((path.clone(), read(s, &path, None).await));
        let wallet = read(s, &format!("/v1/tenants/{t}/agents/{id}/credentials?limit=500"), Some(admin)).await;
        for c in wallet["items"].as_array().unwrap() {
            let path = format!("/v1/tenants/{t}/credentials/{}", c["id"].as_str().unwrap());
            out.push((path.clone(), read(s, &path, Some(admin)).await));
        }
    }
    for path in [
        format!("/v1/tenants/{t}/data-key"),
        format!("/v1/tenants/{t}/key-policy"),
        format!("/v1/tenants/{t}/guardrails"),
        format!("/v1/tenants/{t}/cryptosuite"),
    ] {
        out.push((path.clone(), read(s, &path, Some(admin)).await));
    }
    let path = format!("/tenants/{t}/did.json");
    out.push((path.clone(), read(s, &path, None).await));
    let audit = read(s, &format!("/v1/tenants/{t}/audit?limit=500"), Some(admin)).await;
    let kept: Vec<Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let ev = e["event"].as_str().unwrap();
            !ev.starts_with("auth.") && !ev.starts_with("presentation.") && ev != "audit.checkpoint"
        })
        .cloned()
        .collect();
    assert!(!kept.is_empty(), "the audit trail lists no tenant or agent event: {audit}");
    out.push(("audit".to_owned(), Value::Array(kept)));
    out
}

fn assert_unchanged(before: &[(String, Value)], after: &[(String, Value)], t: &str) {
    assert_eq!(before.len(), after.len(), "tenant {t} gained or lost objects");
    for ((what, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(b, a, "tenant {t}: {what} changed");
    }
}

#[tokio::test]
async fn every_route_isolates_tenants_and_roles() {
    let s = Server::start().await;
    let admin_a = s.tenant("tenant-a").await;
    let admin_b = s.tenant("tenant-b").await;
    let (_, aud_a) = s.post("/v1/tenants/tenant-a/tokens", &admin_a, json!({"role": "auditor"})).await;
    let (_, aud_b) = s.post("/v1/tenants/tenant-b/tokens", &admin_b, json!({"role": "auditor"})).await;
    let (agent_a, agent_a_token, created_a) = s.agent("tenant-a", &admin_a, "a-bot").await;
    let mut any_time = crate::credentials::delegation_body();
    any_time.as_object_mut().unwrap().remove("schedule");
    let (st, _) = s.post(&format!("/v1/tenants/tenant-a/agents/{agent_a}/delegations"), &admin_a, any_time.clone()).await;
    assert_eq!(st, 201);

    let credential_a = created_a["identity_credential_id"].as_str().unwrap().to_owned();
    let (_, cred) = s.get(&format!("/v1/tenants/tenant-a/credentials/{credential_a}"), &admin_a).await;
    let (agent_b, agent_b_token, _) = s.agent("tenant-b", &admin_b, "b-bot").await;
    // Tenant B has a delegation from the same principal: B's principal cascade must stay in B.
    let (st, _) = s.post(&format!("/v1/tenants/tenant-b/agents/{agent_b}/delegations"), &admin_b, any_time).await;
    assert_eq!(st, 201);
    let approval_a = pending_approval(&s, "tenant-a", &admin_a, &agent_a, &agent_a_token).await;
    let f = Fixture {
        approval_a,
        admin_a,
        auditor_a: aud_a["token"].as_str().unwrap().into(),
        auditor_a_id: aud_a["id"].as_str().unwrap().into(),
        agent_a,
        agent_a_token,
        credential_a,
        identity_vc_a: cred["credential"].clone(),
        admin_b,
        auditor_b: aud_b["token"].as_str().unwrap().into(),
        agent_b_token,
    };
    // A signed checkpoint for tenant A, so its public checkpoint route has one to serve.
    let export = s.client.get(s.url("/v1/tenants/tenant-a/audit/export")).bearer_auth(&f.auditor_a).send().await.unwrap();
    assert_eq!(export.status(), 200);
    let before_a = state(&s, "tenant-a", &f.admin_a).await;
    let before_b = state(&s, "tenant-b", &f.admin_b).await;
    let garbled = format!("{}x", f.admin_a);
    let routes = || sigil::http::ROUTES.iter().chain(EXTRA_ROUTES);
    for (method, path) in routes() {
        let (class, p, body) = case(method, path, &f);
        if class == Class::Public {
            // Public routes answer anyone the same way, with or without a token.
            let (anon, _) = s.call(&method.to_uppercase(), &p, None, body.clone()).await;
            assert!(anon == 200 || (*method == "post" && anon == 422), "{method} {p} → {anon}");
            expect(&s, method, &p, Some(&f.admin_b), &body, anon, "other tenant's admin").await;
            expect(&s, method, &p, Some(&garbled), &body, anon, "garbled token").await;
            continue;
        }

        expect(&s, method, &p, None, &body, 401, "no token").await;
        expect(&s, method, &p, Some(&garbled), &body, 401, "garbled token").await;
        expect(&s, method, &p, Some("sgl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), &body, 401, "unknown token").await;
        match class {
            Class::Operator => {
                for (who, t) in [("tenant admin", &f.admin_a), ("auditor", &f.auditor_a), ("agent", &f.agent_a_token)] {
                    expect(&s, method, &p, Some(t), &body, 403, who).await;
                }
            }
            Class::TenantRead | Class::TenantAdmin => {
                for (who, t) in [("other admin", &f.admin_b), ("other auditor", &f.auditor_b), ("other agent", &f.agent_b_token)] {
                    expect(&s, method, &p, Some(t), &body, 404, who).await;
                }
                expect(&s, method, &p, Some(&f.agent_a_token), &body, 403, "own agent").await;
                expect(&s, method, &p, Some(OPERATOR), &body, 403, "operator").await;
                if class == Class::TenantAdmin {
                    expect(&s, method, &p, Some(&f.auditor_a), &body, 403, "own auditor").await;
                } else {
                    expect(&s, method, &p, Some(&f.auditor_a), &body, 200, "own auditor").await;
                }
            }
            Class::Approver => {
                for (who, t) in [("other admin", &f.admin_b), ("other auditor", &f.auditor_b), ("other agent", &f.agent_b_token)] {
                    expect(&s, method, &p, Some(t), &body, 404, who).await;
                }
                for (who, t) in [("own agent", &f.agent_a_token), ("own auditor", &f.auditor_a), ("operator", &OPERATOR.to_owned())] {
                    expect(&s, method, &p, Some(t), &body, 403, who).await;
                }
            }
            Class::Agent => {
                for (who, t) in [("admin", &f.admin_a), ("auditor", &f.auditor_a), ("operator", &OPERATOR.to_owned())] {
                    expect(&s, method, &p, Some(t), &body, 403, who).await;
                }
                // The approval is pending: its presentation route answers it again (202).
                // Tenant A has one agent: its sub-delegation to itself passes authorization
                // and is refused by a rule (400), changing nothing.
                let ok = if path.ends_with("/presentation") {
                    202
                } else if (*method, *path) == ("post", "/v1/agent/delegations") {
                    400
                } else {
                    200
                };
                expect(&s, method, &p, Some(&f.agent_a_token), &body, ok, "own agent").await;
                if path.contains("{approval}") {
                    expect(&s, method, &p, Some(&f.agent_b_token), &body, 404, "other tenant's agent").await;
                }
            }
            Class::Public => unreachable!(),
        }
    }

    // Tenant B's own path, with B's own tokens, but tenant A's object ids: nothing there.
    let mut foreign = 0;
    for (method, path) in routes() {
        let (class, p, body) = case_on("tenant-b", method, path, &f);
        if path.contains("{principal}") {
            // B's admin revoking a principal revokes B's delegations, never A's.
            let (st, v) = s.call(&method.to_uppercase(), &p, Some(&f.admin_b), body).await;
            assert_eq!(st, 200, "{p} → {st} {v}");
            assert_eq!(v["revoked"].as_array().unwrap().len(), 1, "{v}");
            continue;
        }
        if !["{agent}", "{token}", "{credential}", "{approval}"].iter().any(|id| path.contains(id)) || !path.contains("{tenant}") {
            continue;
        }
        foreign += 1;
        match class {
            Class::Public => expect(&s, method, &p, None, &body, 404, "anyone, A's id under B").await,
            Class::TenantRead => {
                expect(&s, method, &p, Some(&f.admin_b), &body, 404, "B's admin, A's id under B").await;
                expect(&s, method, &p, Some(&f.auditor_b), &body, 404, "B's auditor, A's id under B").await;
            }
            Class::TenantAdmin | Class::Approver => expect(&s, method, &p, Some(&f.admin_b), &body, 404, "B's admin, A's id under B").await,
            Class::Operator | Class::Agent => panic!("{method} {path}: no foreign-id case"),
        }
    }
    assert!(foreign >= 15, "only {foreign} routes take object ids?");

    // Nothing the intruders tried changed tenant A (nor B, beyond B's own revocation).
    assert_unchanged(&before_a, &state(&s, "tenant-a", &f.admin_a).await, "tenant-a");
    let after_b = state(&s, "tenant-b", &f.admin_b).await;
    assert_eq!(before_b.len(), after_b.len(), "tenant-b gained or lost objects");
    assert_eq!(read(&s, "/v1/tenants/tenant-a/agents", Some(&f.auditor_a)).await["items"].as_array().unwrap().len(), 1);
    // The public routes name no tenant, agent or credential.
    let metrics = s.metrics().await;
    assert!(metrics.contains("sigil_http_requests_total"), "{metrics}");
    for private in ["tenant-a", "tenant-b", &f.agent_a, &f.credential_a, &f.auditor_a_id] {
        assert!(!metrics.contains(private), "/metrics names {private}");
    }

    // And each route does succeed for whom it is for: a route that refused everyone would
    // pass every check above. Destructive routes get objects of their own; the operator
    // token's own routes come last, since they end the token every other route uses.
    let admin_a = f.admin_a.clone();
    for (method, path) in routes() {
        if path.starts_with("/v1/system/operator-token/") {
            continue;
        }
        let (class, _, _) = case(method, path, &f);
        let (tenant, token) = match class {
            Class::TenantAdmin | Class::TenantRead | Class::Approver => ("tenant-a".to_owned(), admin_a.clone()),
            Class::Operator if path.contains("{tenant}") => {
                let doomed = format!("doomed-{}", path.len());
                s.tenant(&doomed).await;
                (doomed, OPERATOR.to_owned())
            }
            Class::Operator => ("tenant-a".to_owned(), OPERATOR.to_owned()),
            Class::Public | Class::Agent => continue,
        };
        let (agent, agent_token, created) = s.agent("tenant-a", &admin_a, "own").await;
        let mut body = crate::credentials::delegation_body();
        body.as_object_mut().unwrap().remove("schedule");
        let (st, del) = s.post(&format!("/v1/tenants/tenant-a/agents/{agent}/delegations"), &admin_a, body).await;
        assert_eq!(st, 201, "{del}");
        let (_, aud) = s.post("/v1/tenants/tenant-a/tokens", &admin_a, json!({"role": "auditor"})).await;
        let approval_a =
            if class == Class::Approver { pending_approval(&s, "tenant-a", &admin_a, &agent, &agent_token).await } else { String::new() };
        let own = Fixture {
            approval_a,
            admin_a: admin_a.clone(),
            auditor_a: aud["token"].as_str().unwrap().into(),
            auditor_a_id: aud["id"].as_str().unwrap().into(),
            agent_a: agent.clone(),
            agent_a_token: agent_token,
            credential_a: del["id"].as_str().unwrap().into(),
            identity_vc_a: created["identity_credential"].clone(),
            admin_b: String::new(),
            auditor_b: String::new(),
            agent_b_token: String::new(),
        };
        let (_, p, mut body) = case_on(&tenant, method, path, &own);
        if path.ends_with("/resume") {
            let suspend = p.replace("/resume", "/suspend");
            assert_eq!(s.post(&suspend, &admin_a, json!({})).await.0, 200, "{suspend}");
        }
        if path.ends_with("/vc-api/credentials/issue") {
            let did = read(&s, &format!("/tenants/{tenant}/did.json"), None).await["id"].clone();
            body.as_mut().unwrap()["credential"]["issuer"] = did;
        }
        if path.ends_with("/vc-api/credentials/status") {
            let did = read(&s, &format!("/tenants/{tenant}/did.json"), None).await["id"].clone();
            let credential = json!({"@context": ["https://www.w3.org/ns/credentials/v2"], "id": ISSUED_WITH_STATUS,
                "type": ["VerifiableCredential"], "issuer": did, "credentialSubject": {"id": "did:example:1"}});
            let options = json!({"credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "suspension"}});
            let issue = format!("/tenants/{tenant}/vc-api/credentials/issue");
            let (st, v) = s.post(&issue, &admin_a, json!({"credential": credential, "options": options})).await;
            assert_eq!(st, 201, "{v}");
        }
        if *path == "/v1/system/root-key/rotate" {
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("new-root.key");
            std::fs::write(&key, [42u8; 32]).unwrap();
            s.secrets().add_key(&[42u8; 32]);
            body = Some(json!({"new_root_key_file": key.display().to_string()}));
            let (st, v) = s.call("POST", &p, Some(&token), body).await;
            assert!((200..300).contains(&st), "{method} {p} by its own {class:?} caller → {st} {v}");
            continue;
        }
        let (st, v) = s.call(&method.to_uppercase(), &p, Some(&token), body).await;
        assert!((200..300).contains(&st), "{method} {p} by its own {class:?} caller → {st} {v}");
    }
    let (st, v) = s.call("POST", "/v1/system/operator-token/rotate", Some(OPERATOR), None).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = s.call("POST", "/v1/system/operator-token/revoke", v["token"].as_str(), None).await;
    assert_eq!(st, 204, "{v}");
}

#[tokio::test]
async fn tokens_lifecycle_and_agent_token_rotation() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, tok) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "admin"})).await;
    assert_eq!(st, 201);
    let second = tok["token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/v1/tenants/acme/agents", &second).await.0, 200);
    let (st, _) = s.call("DELETE", &format!("/v1/tenants/acme/tokens/{}", tok["id"].as_str().unwrap()), Some(&admin), None).await;
    assert_eq!(st, 204);
    assert_eq!(s.get("/v1/tenants/acme/agents", &second).await.0, 401);

    let (agent, old, created) = s.agent("acme", &admin, "bot").await;
    assert!(created["did"].as_str().unwrap().ends_with(&format!(":tenants:acme:agents:{agent}")));

    // Admin and auditor tokens may expire; the list shows every token, never a secret.
    for bad in [json!({"role": "auditor", "expires_in": 59}), json!({"role": "auditor", "expires_in": 31_536_001})] {
        let (st, v) = s.post("/v1/tenants/acme/tokens", &admin, bad).await;
        assert_eq!((st, v["code"].as_str()), (400, Some("invalid_request")), "{v}");
    }
    let (st, aud) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor", "expires_in": 3600})).await;
    assert_eq!(st, 201, "{aud}");
    let expires: jiff::Timestamp = aud["expires_at"].as_str().unwrap().parse().unwrap();
    let ahead = expires.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((3500..=3600).contains(&ahead), "{aud}");
    let aud_token = aud["token"].as_str().unwrap();
    assert_eq!(s.get("/v1/tenants/acme/agents", aud_token).await.0, 200);
    let (st, list) = s.get("/v1/tenants/acme/tokens", aud_token).await;
    assert_eq!(st, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let find = |id: &str| items.iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("{id} not listed: {list}"));
    let listed = find(aud["id"].as_str().unwrap());
    assert_eq!((listed["role"].as_str(), listed["expires_at"].as_str()), (Some("auditor"), aud["expires_at"].as_str()));
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(listed["created"].is_string());
    let agent_token = find(created["token_id"].as_str().unwrap());
    assert_eq!((agent_token["role"].as_str(), agent_token["agent"].as_str()), (Some("agent"), Some(agent.as_str())));
    assert!(agent_token["expires_at"].is_null() && agent_token["last_used_at"].is_null(), "{agent_token}");
    assert_eq!(items.iter().filter(|t| t["role"] == "admin").count(), 1, "the deleted admin token is gone: {list}");
    let text = list.to_string();
    assert!(!text.contains("sgl_") && !text.contains("hash"), "a token or hash listed: {text}");
    let (st, page) = s.get("/v1/tenants/acme/tokens?limit=1", &admin).await;
    assert_eq!((st, page["items"].as_array().unwrap().len()), (200, 1));
    assert!(page["next_cursor"].is_string());
    let (st, me) = s.get("/v1/agent", &old).await;
    assert_eq!(st, 200);
    assert_eq!(me["id"], agent.as_str());
    assert_eq!(me["keys"][0]["public_key_multibase"].as_str().unwrap().get(..4), Some("z6Mk"));
    let (st, new) = s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({"expires_in": 3600})).await;
    assert_eq!(st, 201, "{new}");
    assert!(new["expires_at"].is_string());
    assert_eq!(s.get("/v1/agent", &old).await.0, 401);
    assert_eq!(s.get("/v1/agent", new["access_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn listing_is_cursor_paginated() {
    let s = Server::start().await;
    let admin = s.tenant("pager").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.agent("pager", &admin, &format!("bot-{i}")).await.0);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/tenants/pager/agents?limit=2&cursor={c}"),
            None => "/v1/tenants/pager/agents?limit=2".into(),
        };
        let (st, page) = s.get(&q, &admin).await;
        assert_eq!(st, 200);
        for a in page["items"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (st, tenants) = s.get("/v1/tenants?limit=1", OPERATOR).await;
    assert_eq!(st, 200);
    assert_eq!(tenants["items"][0]["id"], "pager");
}
