//! Sub-delegation over a real server: an agent narrows its delegation for another agent,
//! the sub-agent's presentation carries the chain and verifies (endpoint, CLI), widening is
//! refused naming the rule, revoking or suspending the root stops every descendant at once,
//! the daily budget is shared down the chain under concurrency, and a tampered chain is
//! refused by verification.

use serde_json::{Value, json};

use crate::helpers::{Server, TestClock};

const ALL_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The root delegation (admin-issued, re-delegable two levels down).
fn root_delegation() -> Value {
    json!({
        "principal": {"id": "finance-lead", "kind": "role"},
        "actions": ["refunds:*"], "resources": ["orders/**"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": "1000.00"}},
        "schedule": {"timezone": "UTC", "days": ALL_DAYS, "from": "00:00", "to": "24:00"},
        "delegable": {"max_depth": 2},
        "valid_until": "2099-01-01T00:00:00Z"
    })
}

/// A child of `parent` for agent `to`, narrower in every field; `edit` widens one.
fn child(to: &str, parent: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "to": to, "parent": parent,
        "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "200.00", "currency": "EUR", "per_day": "1000.00"}},
        "schedule": {"timezone": "UTC", "days": ALL_DAYS, "from": "00:00", "to": "24:00"},
        "delegable": {"max_depth": 1},
        "valid_until": "2098-01-01T00:00:00Z"
    });
    edit(&mut v);
    v
}

fn refund(challenge: &str, amount: &str) -> Value {
    json!({"action": "refunds:create", "resource": "orders/123", "context": {"amount": amount, "currency": "EUR"},
           "challenge": challenge, "domain": "payments.example"})
}

struct Chain {
    admin: String,
    /// (agent id, token, the delegation it holds) from the root holder down.
    agents: Vec<(String, String, String)>,
}

/// Tenant `acme`: agent 0 holds the root delegation, agent 1 a child of it, agent 2 a
/// grandchild (`orders/123` only, at most 150.00).
async fn chain(s: &Server) -> Chain {
    let admin = s.tenant("acme").await;
    let mut agents = Vec::new();
    for name in ["root-bot", "sub-bot", "subsub-bot"] {
        let (id, token, _) = s.agent("acme", &admin, name).await;
        agents.push((id, token, String::new()));
    }
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{}/delegations", agents[0].0), &admin, root_delegation()).await;
    assert_eq!(st, 201, "{v}");
    agents[0].2 = v["id"].as_str().unwrap().to_owned();
    let (st, v) = s.post("/v1/agent/delegations", &agents[0].1, child(&agents[1].0, &agents[0].2, |_| {})).await;
    assert_eq!(st, 201, "{v}");
    agents[1].2 = v["id"].as_str().unwrap().to_owned();
    let grandchild = child(&agents[2].0, &agents[1].2, |c| {
        c["resources"] = json!(["orders/123"]);
        c["limits"]["amount"] = json!({"max": "150.00", "currency": "EUR", "per_day": "500.00"});
        c.as_object_mut().unwrap().remove("delegable");
    });
    let (st, v) = s.post("/v1/agent/delegations", &agents[1].1, grandchild).await;
    assert_eq!(st, 201, "{v}");
    agents[2].2 = v["id"].as_str().unwrap().to_owned();
    Chain { admin, agents }
}

async fn verify(s: &Server, vp: &Value, challenge: &str) -> Value {
    let body = json!({"presentation": vp, "challenge": challenge, "domain": "payments.example"});
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn failed(v: &Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap_or("?").to_owned()).collect()
}

#[tokio::test]
async fn a_sub_agents_presentation_carries_the_chain_and_verifies() {
    let s = Server::start().await;
    let c = chain(&s).await;
    let (st, p) = s.post("/v1/presentations", &c.agents[2].1, refund("ch-1", "120.00")).await;
    assert_eq!(st, 200, "{p}");
    // Identity, the grandchild, then its parent and the root.
    let ids: Vec<&str> = p["credential_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(&ids[1..], [&c.agents[2].2, &c.agents[1].2, &c.agents[0].2]);
    let vp = p["presentation"].clone();
    let leaf = &vp["verifiableCredential"][1]["credentialSubject"];
    assert_eq!(leaf["delegationDepth"], 2);
    assert_eq!(leaf["parentDelegation"]["id"], format!("urn:uuid:{}", c.agents[1].2));
    assert!(leaf["parentDelegation"]["digest"].as_str().unwrap().starts_with("sha256:"));
    // The CLI (the library's code) verifies it too, before the endpoint spends the challenge.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vp.json");
    std::fs::write(&f, serde_json::to_vec(&vp).unwrap()).unwrap();
    let out = std::process::Command::new(crate::helpers::bin())
        .arg("verify")
        .arg(&f)
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .args(["--resolver-allow", s.listen()])
        .args(["--challenge", "ch-1", "--domain", "payments.example", "--trust-tenant", &s.url("/tenants/acme")])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("chain"), "{report}");
    let v = verify(&s, &vp, "ch-1").await;
    assert_eq!(v["verified"], true, "{v}");
    let chain_checks: Vec<&Value> =
        v["checks"].as_array().unwrap().iter().filter(|c| c["check"].as_str().unwrap().ends_with("chain")).collect();
    assert_eq!(chain_checks.len(), 2, "one check per link: {v}");
    // The jwt_vp form carries the chain as enveloped credentials and verifies as well.
    let mut req = refund("ch-2", "120.00");
    req["format"] = "jwt_vp".into();
    let (st, p) = s.post("/v1/presentations", &c.agents[2].1, req).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(verify(&s, &p["presentation"], "ch-2").await["verified"], true);
    // The grandchild's own limits apply, though its ancestors allow more; it may not
    // re-delegate (no `delegable`), and the admin sees the children of each delegation.
    let (st, d) = s.post("/v1/presentations", &c.agents[2].1, refund("ch-3", "180.00")).await;
    assert_eq!((st, d["code"].as_str()), (403, Some("amount_exceeds_limit")));
    let mut other = refund("ch-4", "10.00");
    other["resource"] = "orders/124".into();
    let (st, d) = s.post("/v1/presentations", &c.agents[2].1, other).await;
    assert_eq!((st, d["code"].as_str()), (403, Some("resource_not_allowed")));
    let (st, d) = s
        .post(
            "/v1/agent/delegations",
            &c.agents[2].1,
            child(&c.agents[0].0, &c.agents[2].2, |v| {
                v["resources"] = json!(["orders/123"]);
                v.as_object_mut().unwrap().remove("delegable");
            }),
        )
        .await;
    assert_eq!((st, d["code"].as_str()), (400, Some("delegation_not_narrower")), "{d}");
    // Each agent sees its own delegations, their parent and whether it may sub-delegate.
    let (st, own) = s.get("/v1/agent/delegations", &c.agents[1].1).await;
    assert_eq!(st, 200, "{own}");
    assert_eq!(own["items"][0]["id"], c.agents[1].2.as_str());
    assert_eq!(own["items"][0]["parent"], c.agents[0].2.as_str());
    assert_eq!(own["items"][0]["delegable"]["max_depth"], 1);
    let (st, kids) = s.get(&format!("/v1/tenants/acme/credentials/{}/children", c.agents[0].2), &c.admin).await;
    assert_eq!(st, 200);
    assert_eq!(kids["items"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect::<Vec<_>>(), [c.agents[1].2.as_str()]);
    // The trail names parent, child and both agents.
    let (_, audit) = s.get("/v1/tenants/acme/audit?limit=200", &c.admin).await;
    let sub = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "delegation.subdelegated")
        .expect("no delegation.subdelegated entry");
    assert_eq!(sub["details"]["parent"], c.agents[0].2.as_str());
    assert_eq!(sub["details"]["child"], c.agents[1].2.as_str());
    assert_eq!(sub["details"]["to_agent"], c.agents[1].0.as_str());
}

#[tokio::test]
async fn a_widening_child_is_refused_naming_the_rule() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (a, a_token, _) = s.agent("acme", &admin, "a").await;
    let (b, b_token, _) = s.agent("acme", &admin, "b").await;
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{a}/delegations"), &admin, root_delegation()).await;
    assert_eq!(st, 201, "{v}");
    let root = v["id"].as_str().unwrap().to_owned();
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("action", Box::new(|c| c["actions"] = json!(["payments:create"]))),
        ("resource", Box::new(|c| c["resources"] = json!(["invoices/*"]))),
        ("amount", Box::new(|c| c["limits"]["amount"]["max"] = "500.01".into())),
        ("amount", Box::new(|c| c["limits"]["amount"]["currency"] = "USD".into())),
        ("amount", Box::new(|c| c.as_object_mut().unwrap().remove("limits").map(|_| ()).unwrap_or(()))),
        ("budget", Box::new(|c| c["limits"]["amount"]["per_day"] = "1000.01".into())),
        ("schedule", Box::new(|c| c["schedule"]["timezone"] = "Europe/Berlin".into())),
        ("schedule", Box::new(|c| c.as_object_mut().unwrap().remove("schedule").map(|_| ()).unwrap_or(()))),
        ("validity", Box::new(|c| c["valid_until"] = "2099-01-01T00:00:01Z".into())),
        ("depth", Box::new(|c| c["delegable"]["max_depth"] = 2.into())),
    ];
    for (rule, edit) in cases {
        let (st, v) = s.post("/v1/agent/delegations", &a_token, child(&b, &root, edit)).await;
        assert_eq!((st, v["code"].as_str()), (400, Some("delegation_not_narrower")), "{rule}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(&format!("({rule}:")), "{rule}: {v}");
    }
    // The principal is never the agent's to choose: the field does not exist.
    let (st, _) =
        s.post("/v1/agent/delegations", &a_token, child(&b, &root, |c| c["principal"] = json!({"id": "ceo", "kind": "person"}))).await;
    assert_eq!(st, 400);
    // Not the caller's delegation, an unknown agent, itself, an admin token.
    let (st, v) = s.post("/v1/agent/delegations", &b_token, child(&a, &root, |_| {})).await;
    assert_eq!((st, v["code"].as_str()), (404, Some("credential_not_found")), "{v}");
    let (st, v) = s.post("/v1/agent/delegations", &a_token, child("a0b1c2d3e4f5a6b7c8d9", &root, |_| {})).await;
    assert_eq!(st, 404, "{v}");
    let (st, _) = s.post("/v1/agent/delegations", &a_token, child(&a, &root, |_| {})).await;
    assert_eq!(st, 400);
    let (st, _) = s.post("/v1/agent/delegations", &admin, child(&b, &root, |_| {})).await;
    assert_eq!(st, 403);
    // And a narrower one is issued.
    let (st, v) = s.post("/v1/agent/delegations", &a_token, child(&b, &root, |_| {})).await;
    assert_eq!(st, 201, "{v}");
}

#[tokio::test]
async fn suspending_or_revoking_the_root_stops_every_descendant_at_once() {
    let s = Server::start().await;
    let c = chain(&s).await;
    let present = |i: usize, ch: &str| {
        let (token, ch) = (c.agents[i].1.clone(), ch.to_owned());
        let s = &s;
        async move { s.post("/v1/presentations", &token, refund(&ch, "10.00")).await }
    };
    // Warm every wallet (the caches a cascade must reach), and keep presentations to verify.
    let mut before = Vec::new();
    for i in 1..3 {
        let (st, p) = present(i, &format!("warm-{i}")).await;
        assert_eq!(st, 200, "{p}");
        before.push((p["presentation"].clone(), format!("warm-{i}")));
    }
    let root = format!("/v1/tenants/acme/credentials/{}", c.agents[0].2);
    let (st, _) = s.post(&format!("{root}/suspend"), &c.admin, json!({})).await;
    assert_eq!(st, 200);
    for i in 1..3 {
        let (st, p) = present(i, &format!("s-{i}")).await;
        assert_eq!((st, p["code"].as_str()), (403, Some("credential_suspended")), "sub-agent {i}: {p}");
    }
    // A presentation made before the suspension fails verification: the root's status is
    // in the chain it carries.
    let v = verify(&s, &before[0].0, &before[0].1).await;
    assert_eq!(v["verified"], false, "{v}");
    assert!(failed(&v).contains(&"suspended".to_owned()), "{:?}", failed(&v));
    let (st, _) = s.post(&format!("{root}/resume"), &c.admin, json!({})).await;
    assert_eq!(st, 200);
    for i in 1..3 {
        let (st, p) = present(i, &format!("r-{i}")).await;
        assert_eq!(st, 200, "sub-agent {i} after resume: {p}");
    }
    // The root holder's agent suspended: its sub-agents are stopped too.
    let agent0 = format!("/v1/tenants/acme/agents/{}", c.agents[0].0);
    assert_eq!(s.post(&format!("{agent0}/suspend"), &c.admin, json!({})).await.0, 200);
    for i in 1..3 {
        let (st, p) = present(i, &format!("as-{i}")).await;
        assert_eq!(st, 403, "sub-agent {i} while the root's agent is suspended: {p}");
    }
    assert_eq!(s.post(&format!("{agent0}/resume"), &c.admin, json!({})).await.0, 200);
    assert_eq!(present(2, "ar-2").await.0, 200);
    // Revocation: every descendant's next request is refused, and their own credentials
    // are revoked too (what verifiers that only read status lists see).
    let (st, _) = s.post(&format!("{root}/revoke"), &c.admin, json!({})).await;
    assert_eq!(st, 200);
    for i in 1..3 {
        let (st, p) = present(i, &format!("v-{i}")).await;
        assert_eq!((st, p["code"].as_str()), (403, Some("credential_revoked")), "sub-agent {i}: {p}");
        let (_, rec) = s.get(&format!("/v1/tenants/acme/credentials/{}", c.agents[i].2), &c.admin).await;
        assert_eq!(rec["status"], "revoked", "{rec}");
    }
    let v = verify(&s, &before[1].0, &before[1].1).await;
    assert_eq!(v["verified"], false, "{v}");
    assert!(failed(&v).contains(&"revoked".to_owned()), "{:?}", failed(&v));
}

#[tokio::test]
async fn the_daily_budget_is_shared_down_the_chain_under_concurrency() {
    // Noon (UTC): sixty requests cannot straddle midnight.
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = std::sync::Arc::new(Server::start_with(clock.opts()).await);
    let admin = s.tenant("acme").await;
    let (a, a_token, _) = s.agent("acme", &admin, "a").await;
    let (b, b_token, _) = s.agent("acme", &admin, "b").await;
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{a}/delegations"), &admin, root_delegation()).await;
    assert_eq!(st, 201, "{v}");
    let root = v["id"].as_str().unwrap().to_owned();
    // The child may spend as much a day as the root: together, still 1,000.00.
    let body = child(&b, &root, |c| c["limits"]["amount"] = json!({"max": "500.00", "currency": "EUR", "per_day": "1000.00"}));
    let (st, v) = s.post("/v1/agent/delegations", &a_token, body).await;
    assert_eq!(st, 201, "{v}");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (s, token) = (s.clone(), if i % 2 == 0 { a_token.clone() } else { b_token.clone() });
        tasks.push(tokio::spawn(async move {
            let (st, p) = s.post("/v1/presentations", &token, refund(&format!("b{i}"), "30.00")).await;
            (st, p["code"].as_str().map(str::to_owned))
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => granted += 1,
            (403, Some(code)) => assert_eq!(code, "daily_limit_exceeded"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(granted, 33, "1000.00 / 30.00 → exactly 33 grants across parent and child");
    let (_, budget) = s.get(&format!("/v1/tenants/acme/credentials/{root}/budget"), &admin).await;
    assert_eq!(budget["spent"], "990.00", "{budget}");
    // What the child is told remains today is what the chain has left, not its own limit.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "my_authority", "arguments": {}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    let (st, r) = s.call("POST", "/mcp", Some(&b_token), Some(call)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["result"]["structuredContent"]["delegations"][0]["budget_today"]["remaining"], "10.00", "{r:#}");
}

#[tokio::test]
async fn a_tampered_chain_is_refused_by_verification() {
    let s = Server::start().await;
    let c = chain(&s).await;
    let (st, p) = s.post("/v1/presentations", &c.agents[2].1, refund("t-1", "10.00")).await;
    assert_eq!(st, 200, "{p}");
    let vp = p["presentation"].clone();
    // A link missing: the parent left out of the presentation.
    let mut missing = vp.clone();
    missing["verifiableCredential"].as_array_mut().unwrap().remove(2);
    let v = verify(&s, &missing, "t-1").await;
    assert_eq!(v["verified"], false);
    assert!(failed(&v).contains(&"delegation_chain_invalid".to_owned()), "{:?}", failed(&v));
    // A different parent under the named id (its authority widened): the digest differs.
    let mut swapped = vp.clone();
    swapped["verifiableCredential"][2]["credentialSubject"]["authority"]["resources"] = json!(["**"]);
    let v = verify(&s, &swapped, "t-1").await;
    assert_eq!(v["verified"], false);
    assert!(failed(&v).contains(&"delegation_chain_invalid".to_owned()), "{:?}", failed(&v));
    // The untouched presentation still verifies (and spends its challenge once).
    assert_eq!(verify(&s, &vp, "t-1").await["verified"], true);
}

/// Under `eddsa-rdfc-2022` (JSON-LD canonicalization) every term of a chain link is in
/// Sigil's context: the chain is issued, presented and verified as under JCS.
#[tokio::test]
async fn a_chain_secured_with_rdfc_verifies() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, v) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!(st, 200, "{v}");
    let (a, a_token, _) = s.agent("acme", &admin, "a").await;
    let (b, b_token, _) = s.agent("acme", &admin, "b").await;
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{a}/delegations"), &admin, root_delegation()).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = s.post("/v1/agent/delegations", &a_token, child(&b, v["id"].as_str().unwrap(), |_| {})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["credential"]["proof"]["cryptosuite"], "eddsa-rdfc-2022");
    let (st, p) = s.post("/v1/presentations", &b_token, refund("rdfc", "10.00")).await;
    assert_eq!(st, 200, "{p}");
    let v = verify(&s, &p["presentation"], "rdfc").await;
    assert_eq!(v["verified"], true, "{v}");
}

/// A sub-agent is no way around the approver: a child of a delegation that requires
/// approval inherits the rule (a looser one of its own is refused, naming the rule), its
/// request above the threshold answers `202`, and once approved its presentation carries
/// the chain and the approval and verifies.
#[tokio::test]
async fn a_sub_agent_needs_the_approval_its_parent_needs() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (root, root_token, _) = s.agent("acme", &admin, "root-bot").await;
    let (sub, sub_token, _) = s.agent("acme", &admin, "sub-bot").await;
    let mut d = root_delegation();
    d["approval"] = json!({"actions": ["refunds:*"], "above": {"amount": "100.00", "currency": "EUR"}});
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{root}/delegations"), &admin, d).await;
    assert_eq!(st, 201, "{v}");
    let parent = v["id"].as_str().unwrap().to_owned();
    let looser =
        child(&sub, &parent, |c| c["approval"] = json!({"actions": ["refunds:*"], "above": {"amount": "150.00", "currency": "EUR"}}));
    let (st, v) = s.post("/v1/agent/delegations", &root_token, looser).await;
    assert_eq!((st, v["code"].as_str()), (400, Some("delegation_not_narrower")), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("approval"), "{v}");
    let (st, v) = s.post("/v1/agent/delegations", &root_token, child(&sub, &parent, |_| {})).await;
    assert_eq!(st, 201, "{v}");

    assert_eq!(s.post("/v1/presentations", &sub_token, refund("small", "90.00")).await.0, 200, "below the threshold");
    let (st, asked) = s.post("/v1/presentations", &sub_token, refund("big-1", "150.00")).await;
    assert_eq!(st, 202, "the inherited rule: {asked}");
    let id = asked["approval"]["id"].as_str().unwrap();
    let (st, v) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &admin, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let (st, p) = s.post("/v1/presentations", &sub_token, refund("big-2", "150.00")).await;
    assert_eq!(st, 200, "{p}");
    let creds = p["presentation"]["verifiableCredential"].as_array().unwrap();
    assert_eq!(creds.len(), 4, "identity, delegation, its parent, the approval");
    let v = verify(&s, &p["presentation"], "big-2").await;
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["approval"].is_object(), "{v}");
}
