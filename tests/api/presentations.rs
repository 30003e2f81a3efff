//! Action-bound presentations over a real server: policy decisions with their codes,
//! verification three ways (endpoint, CLI, independent verifier), replay, tampering.

use serde_json::{Value, json};

use crate::credentials::third_party;
use crate::helpers::{Server, TestClock};

const ALL_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub fn delegation(actions: &[&str], resources: &[&str]) -> Value {
    json!({
        "principal": {"id": "finance-lead", "kind": "role"},
        "actions": actions, "resources": resources,
        "limits": {"amount": {"max": "500.00", "currency": "EUR"}},
        "schedule": {"timezone": "UTC", "days": ALL_DAYS, "from": "00:00", "to": "24:00"},
        "valid_until": "2099-01-01T00:00:00Z"
    })
}

pub fn refund(challenge: &str) -> Value {
    json!({"action": "refunds:create", "resource": "orders/123", "context": {"amount": "120.00", "currency": "EUR"},
           "challenge": challenge, "domain": "payments.example"})
}

/// A tenant with one agent holding `delegation`; returns (admin, agent id, agent token).
pub async fn setup(s: &Server, tenant: &str, delegation_body: Option<Value>) -> (String, String, String) {
    let admin = s.tenant(tenant).await;
    let (agent, token, _) = s.agent(tenant, &admin, "refund-bot").await;
    if let Some(d) = delegation_body {
        let (st, v) = s.post(&format!("/v1/tenants/{tenant}/agents/{agent}/delegations"), &admin, d).await;
        assert_eq!(st, 201, "{v}");
    }
    (admin, agent, token)
}

async fn verify(s: &Server, vp: &Value, challenge: &str, action: Option<Value>) -> Value {
    let mut body = json!({"presentation": vp, "challenge": challenge, "domain": "payments.example"});
    if let Some(a) = action {
        body["action"] = a;
    }
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn failed(v: &Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap_or("?").to_owned()).collect()
}

/// The checks `sigil verify` reports as `FAIL`, by name, in order.
fn failed_checks(report: &str) -> Vec<&str> {
    report.lines().filter_map(|l| l.strip_prefix("FAIL ")).filter_map(|l| l.split_whitespace().next()).collect()
}

#[tokio::test]
async fn granted_presentations_verify_everywhere_once() {
    let s = Server::start().await;
    let (_, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let (st, p) = s.post("/v1/presentations", &token, refund("ch-1")).await;
    assert_eq!(st, 200, "{p}");
    let vp = p["presentation"].clone();
    assert_eq!(p["format"], "ldp_vp");
    assert_eq!(p["credential_ids"].as_array().unwrap().len(), 2);
    assert!(vp["holder"].as_str().unwrap().ends_with(&agent));
    assert_eq!(vp["action"]["context"]["amount"], "120.00");
    assert_eq!(vp["proof"]["proofPurpose"], "authentication");
    assert_eq!(vp["proof"]["challenge"], "ch-1");
    assert!(vp["proof"]["expires"].is_string());
    // The independent verifier accepts it (DID resolution and status lists over HTTPS).
    let (ok, out) = third_party(&s, "presentation", &vp, &["--challenge", "ch-1", "--domain", "payments.example"]);
    assert!(ok, "third-party verifier rejected a Sigil presentation: {out}");
    let (_, out) = third_party(&s, "presentation", &vp, &["--challenge", "other", "--domain", "payments.example"]);
    assert_eq!(out["reasons"], json!(["challenge_mismatch"]), "{out}");
    // Sigil's CLI (exit 0 only when verified).
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vp.json");
    std::fs::write(&f, serde_json::to_vec(&vp).unwrap()).unwrap();
    let ca = s.data.join("tls/ca.pem");
    let tenant_url = s.url("/tenants/acme");
    let cli = |extra: &[&str]| {
        std::process::Command::new(crate::helpers::bin())
            .arg("verify")
            .arg(&f)
            .arg("--ca")
            .arg(&ca)
            .args(["--resolver-allow", s.listen()])
            .args(["--challenge", "ch-1", "--domain", "payments.example"])
            .args(extra)
            .output()
            .unwrap()
    };
    let action = r#"{"action":"refunds:create","resource":"orders/123","context":{"amount":"120.00","currency":"EUR"}}"#;
    let out = cli(&["--action", action, "--trust-tenant", &tenant_url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // Without a trusted issuer the CLI never says verified, and says why.
    let out = cli(&["--action", action]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trusted issuer"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("issuer_trusted"));
    // Another tenant of the same deployment is not this one.
    let out = cli(&["--action", action, "--trust-tenant", &s.url("/tenants/other")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("issuer_not_trusted"), "{}", String::from_utf8_lossy(&out.stdout));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(failed_checks(&report), ["credential[0].issuer_trusted", "credential[1].issuer_trusted", "proof"], "{report}");
    assert!(report.contains("tenants:acme is not a trusted issuer"), "{report}");
    // Without the allow-list entry, the loopback server is out of the CLI's reach.
    let out = std::process::Command::new(crate::helpers::bin())
        .arg("verify")
        .arg(&f)
        .arg("--ca")
        .arg(&ca)
        .args(["--challenge", "ch-1", "--domain", "payments.example", "--trust-tenant", &tenant_url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused by the egress policy"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = cli(&["--action", r#"{"action":"refunds:create","resource":"orders/999"}"#, "--trust-tenant", &tenant_url]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(failed_checks(&report), ["action"], "only the action differs: {report}");
    assert!(report.contains("bound to a different action") && report.trim_end().ends_with("NOT verified"), "{report}");
    // The endpoint: verified once, then the challenge is spent.
    let expected = json!({"action": "refunds:create", "resource": "orders/123", "context": {"amount": "120.00", "currency": "EUR"}});
    let v = verify(&s, &vp, "ch-1", Some(expected.clone())).await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["holder"], vp["holder"]);
    let v = verify(&s, &vp, "ch-1", Some(expected)).await;
    assert_eq!((v["verified"].as_bool(), failed(&v)), (Some(false), vec!["replayed".to_owned()]));
    // VC-API shape.
    let (_, p2) = s.post("/v1/presentations", &token, refund("ch-2")).await;
    let body = json!({"verifiablePresentation": p2["presentation"], "options": {"challenge": "ch-2", "domain": "payments.example"}});
    let (st, v) = s.call("POST", "/tenants/acme/vc-api/presentations/verify", None, Some(body)).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(true)), "{v}");
}

/// `sigil_challenges_total{outcome}` from `/metrics` (0 when not yet counted).
async fn challenges(s: &Server, outcome: &str) -> u64 {
    let text = s.metrics().await;
    let prefix = format!("sigil_challenges_total{{outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |n| n.trim().parse().unwrap())
}

/// Challenges are claimed under a durable lease instead of one `fdatasync` each
/// (`service::verification`). After `kill -9`, which may lose claims made under it, every
/// presentation verified before the crash stays spent, and so does one made before it but
/// never verified; presentations made after the restart verify.
#[tokio::test]
async fn verified_challenges_stay_spent_after_kill_9() {
    let s = Server::start().await;
    let (_, _, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    async fn present(s: &Server, token: &str, c: &str) -> (Value, String) {
        let (st, p) = s.post("/v1/presentations", token, refund(c)).await;
        assert_eq!(st, 200, "{p}");
        (p["presentation"].clone(), c.to_owned())
    }
    let mut verified = Vec::new();
    for i in 0..20 {
        let (vp, c) = present(&s, &token, &format!("k-{i}")).await;
        assert_eq!(verify(&s, &vp, &c, None).await["verified"], true);
        verified.push((vp, c));
    }
    let never = present(&s, &token, "k-never").await;
    // On a database several nodes share there is no lease: each claim is committed before
    // the answer, so nothing is lost and no floor is needed.
    let shared = crate::helpers::pg::harness_on_postgres();
    if !shared {
        assert!(challenges(&s, "claimed_under_lease").await >= 1, "no challenge was claimed without its own fdatasync");
    }
    let s = s.restart_after_kill9().await;
    for (vp, c) in &verified {
        let v = verify(&s, vp, c, None).await;
        assert_eq!((v["verified"].as_bool(), failed(&v)), (Some(false), vec!["replayed".to_owned()]), "{c}: {v}");
    }
    if shared {
        // Never used before the crash, and no floor: it verifies, once.
        assert_eq!(verify(&s, &never.0, &never.1, None).await["verified"], true);
    } else {
        let v = verify(&s, &never.0, &never.1, None).await;
        assert_eq!((v["verified"].as_bool(), failed(&v)), (Some(false), vec!["replayed".to_owned()]), "{v}");
    }
    let (vp, c) = present(&s, &token, "k-after").await;
    assert_eq!(verify(&s, &vp, &c, None).await["verified"], true);
    // Refused by the floor rather than by a record that happened to reach the disk: at
    // least the presentation that was never verified.
    if !shared {
        assert!(challenges(&s, "below_floor").await >= 1);
    }
    // A clean stop keeps the claims and the floor, and refuses nothing new.
    let s = s.restart().await;
    let v = verify(&s, &never.0, &never.1, None).await;
    assert_eq!((v["verified"].as_bool(), failed(&v)), (Some(false), vec!["replayed".to_owned()]), "{v}");
    assert_eq!(failed(&verify(&s, &vp, &c, None).await), vec!["replayed".to_owned()]);
    let (vp, c) = present(&s, &token, "k-clean").await;
    assert_eq!(verify(&s, &vp, &c, None).await["verified"], true);
}

/// A `jwt_vp` presentation of the standard refund for `challenge`: the compact JWS.
pub async fn jwt_vp(s: &Server, token: &str, challenge: &str) -> String {
    let mut req = refund(challenge);
    req["format"] = "jwt_vp".into();
    let (st, p) = s.post("/v1/presentations", token, req).await;
    assert_eq!((st, p["format"].as_str()), (200, Some("jwt_vp")), "{p}");
    let jws = p["presentation"].as_str().unwrap().to_owned();
    assert_eq!(jws.split('.').count(), 3, "{jws}");
    jws
}

/// `jws` with one byte of its signature changed (decoded, flipped, re-encoded: changing a
/// base64url character could touch only the unused low bits of the last one).
pub fn flip_signature_byte(jws: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[20] ^= 0x01;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// `jws` with its payload edited by `edit` and re-encoded; header and signature unchanged.
pub fn edit_payload(jws: &str, edit: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jws.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut payload);
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()), parts[2])
}

/// The failed checks of a `/v1/verify` report as `check: code`.
fn failed_named(v: &Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| format!("{}: {}", c["check"].as_str().unwrap_or("?"), c["code"].as_str().unwrap_or("?")))
        .collect()
}

#[tokio::test]
async fn jwt_vp_is_signed_and_verifies() {
    let s = Server::start().await;
    let (_, _, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let jws = jwt_vp(&s, &token, "jwt-1").await;
    let v = verify(&s, &Value::String(jws.clone()), "jwt-1", None).await;
    assert_eq!(v["verified"], true, "{v}");
    // Another nonce fails.
    let p = jwt_vp(&s, &token, "jwt-2").await;
    let v = verify(&s, &Value::String(p), "jwt-x", None).await;
    assert_eq!(failed(&v), vec!["challenge_mismatch"]);
    // Tampering, each time on a presentation with a challenge of its own, never used, so that
    // only the holder's signature can catch it: the amount raised inside the signed payload
    // (still within the delegation's limit), or one byte of the signature changed.
    let jws = jwt_vp(&s, &token, "jwt-3").await;
    let raised = edit_payload(&jws, |p| p["action"]["context"]["amount"] = "499.00".into());
    let v = verify(&s, &Value::String(raised), "jwt-3", None).await;
    assert_eq!(failed_named(&v), vec!["proof: invalid_signature"], "{v}");
    let flipped = flip_signature_byte(&jws);
    let v = verify(&s, &Value::String(flipped), "jwt-3", None).await;
    assert_eq!(failed_named(&v), vec!["proof: invalid_signature"], "{v}");
    // Untouched, the same presentation verifies with that challenge: the signature was the
    // only difference, and a failed verification spends no challenge.
    let v = verify(&s, &Value::String(jws), "jwt-3", None).await;
    assert_eq!(v["verified"], true, "{v}");
}

#[tokio::test]
async fn every_denial_has_its_code() {
    // The server's clock stands on a Wednesday at noon UTC, so "today" is known and no
    // step of the test can cross midnight; the schedule and expiry steps move it.
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = Server::start_with(clock.opts()).await;
    let (admin, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create", "orders:*"], &["orders/*"]))).await;
    let deny = |body: Value| {
        let s = &s;
        let token = token.clone();
        async move {
            let (st, p) = s.post("/v1/presentations", &token, body).await;
            assert_eq!(st, 403, "{p}");
            p["code"].as_str().unwrap().to_owned()
        }
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = refund("c");
        f(&mut b);
        b
    };
    assert_eq!(deny(with(&|b| b["action"] = "invoices:pay".into())).await, "action_not_allowed");
    assert_eq!(deny(with(&|b| b["resource"] = "customers/1".into())).await, "resource_not_allowed");
    assert_eq!(deny(with(&|b| b["resource"] = "orders/1/lines".into())).await, "resource_not_allowed");
    assert_eq!(deny(with(&|b| b["context"]["amount"] = "500.001".into())).await, "amount_exceeds_limit");
    assert_eq!(deny(with(&|b| b["context"]["amount"] = "500.01".into())).await, "amount_exceeds_limit");
    assert_eq!(deny(with(&|b| b["context"] = json!({}))).await, "amount_exceeds_limit");
    assert_eq!(deny(with(&|b| b["context"]["currency"] = "USD".into())).await, "currency_mismatch");
    let (st, _) = s.post("/v1/presentations", &token, with(&|b| b["context"]["amount"] = "500.00".into())).await;
    assert_eq!(st, 200, "exactly the limit is allowed");
    // Bad input is a 400, not a denial.
    let (st, p) = s.post("/v1/presentations", &token, with(&|b| b["context"]["amount"] = json!(120.5))).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")));
    let (st, _) = s.post("/v1/presentations", &token, with(&|b| b["resource"] = "orders/../admin".into())).await;
    assert_eq!(st, 400);
    let (st, _) = s.post("/v1/presentations", &token, with(&|b| b["expires_in"] = json!(100000))).await;
    assert_eq!(st, 400);
    let (st, _) = s.post("/v1/presentations", &token, with(&|b| b["chalenge"] = "typo".into())).await;
    assert_eq!(st, 400);
    // An action name no delegation could ever grant (case, a wildcard) is malformed, not denied.
    for action in ["Refunds:Create", "orders:*", "refunds"] {
        let (st, p) = s.post("/v1/presentations", &token, with(&|b| b["action"] = action.into())).await;
        assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{action}: {p}");
    }
    // Suspended, then revoked delegation.
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{agent}/credentials"), &admin).await;
    let del = wallet["items"][1]["id"].as_str().unwrap().to_owned();
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{del}/suspend"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("suspended")), "{c}");
    assert_eq!(deny(refund("c")).await, "credential_suspended");
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{del}/resume"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("active")), "{c}");
    assert_eq!(s.post("/v1/presentations", &token, refund("c2")).await.0, 200);
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{del}/revoke"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("revoked")), "{c}");
    assert_eq!(deny(refund("c")).await, "credential_revoked");
    // No delegation at all; outside the schedule; not yet valid; expired.
    let (other, other_token, _) = s.agent("acme", &admin, "idle-bot").await;
    let (st, p) = s.post("/v1/presentations", &other_token, refund("c")).await;
    assert_eq!((st, p["code"].as_str()), (403, Some("no_delegation")));
    // Every day but Wednesday: refused on this Wednesday, up to its last second, granted
    // from Thursday 00:00 (UTC, the schedule's zone).
    let mut d = delegation(&["refunds:create"], &["orders/*"]);
    d["schedule"]["days"] = json!(["mon", "tue", "thu", "fri", "sat", "sun"]);
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{other}/delegations"), &admin, d).await.0, 201);
    let (_, p) = s.post("/v1/presentations", &other_token, refund("c")).await;
    assert_eq!(p["code"], "outside_schedule");
    clock.set("2026-06-03T23:59:59Z");
    let (_, p) = s.post("/v1/presentations", &other_token, refund("c")).await;
    assert_eq!(p["code"], "outside_schedule");
    clock.set("2026-06-04T00:00:00Z");
    let (st, p) = s.post("/v1/presentations", &other_token, refund("c")).await;
    assert_eq!(st, 200, "Thursday is in the schedule: {p}");
    let mut d = delegation(&["refunds:create"], &["orders/*"]);
    d["valid_from"] = "2098-01-01T00:00:00Z".into();
    let (third, third_token, _) = s.agent("acme", &admin, "future-bot").await;
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{third}/delegations"), &admin, d).await.0, 201);
    let (_, p) = s.post("/v1/presentations", &third_token, refund("c")).await;
    assert_eq!(p["code"], "credential_not_yet_valid");
    // Valid for one more minute: granted up to its last second, expired at `valid_until`.
    let mut d = delegation(&["refunds:create"], &["orders/*"]);
    d["valid_until"] = "2026-06-04T00:01:00Z".into();
    let (fourth, fourth_token, _) = s.agent("acme", &admin, "short-bot").await;
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{fourth}/delegations"), &admin, d).await;
    assert_eq!(st, 201, "{v}");
    clock.set("2026-06-04T00:00:59Z");
    let (st, p) = s.post("/v1/presentations", &fourth_token, refund("c")).await;
    assert_eq!(st, 200, "still valid: {p}");
    clock.set("2026-06-04T00:01:00Z");
    let (_, p) = s.post("/v1/presentations", &fourth_token, refund("c")).await;
    assert_eq!(p["code"], "credential_expired");
}

#[tokio::test]
async fn wrong_context_edits_and_later_revocation_fail_verification() {
    let s = Server::start().await;
    let (admin, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let present = |c: &'static str| {
        let s = &s;
        let token = token.clone();
        async move { s.post("/v1/presentations", &token, refund(c)).await.1["presentation"].clone() }
    };
    let vp = present("a").await;
    assert_eq!(failed(&verify(&s, &vp, "b", None).await), vec!["challenge_mismatch"]);
    let body = json!({"presentation": vp, "challenge": "a", "domain": "evil.example"});
    let (_, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(failed(&v), vec!["domain_mismatch"]);
    for (what, edit) in [
        ("action", json!({"name": "refunds:create", "resource": "orders/999", "context": {"amount": "120.00", "currency": "EUR"}})),
        ("amount", json!({"name": "refunds:create", "resource": "orders/123", "context": {"amount": "499.00", "currency": "EUR"}})),
        ("name", json!({"name": "orders:delete", "resource": "orders/123", "context": {"amount": "120.00", "currency": "EUR"}})),
    ] {
        let mut t = present("e").await;
        t["action"] = edit;
        let v = verify(&s, &t, "e", None).await;
        assert_eq!(v["verified"], false, "{what}");
        assert!(failed(&v).contains(&"invalid_signature".to_owned()), "{what}: {v}");
        let (_, out) = third_party(&s, "presentation", &t, &["--challenge", "e", "--domain", "payments.example"]);
        assert_eq!(out["reasons"], json!(["invalid_signature"]), "{what}: {out}");
    }
    // An enclosed credential edited after its proof was verified (and remembered) by the
    // verifications above: the edited bytes are a different signed message, checked afresh.
    for i in 0..2 {
        let mut t = present("k").await;
        t["verifiableCredential"][i]["description"] = json!("forged");
        let v = verify(&s, &t, "k", None).await;
        let check = format!("credential[{i}].proof");
        let c = v["checks"].as_array().unwrap().iter().find(|c| c["check"] == check.as_str()).unwrap_or_else(|| panic!("{v}"));
        assert_eq!((c["ok"].as_bool(), c["code"].as_str()), (Some(false), Some("invalid_signature")), "{v}");
    }
    // An expected action other than the signed one.
    let vp = present("x").await;
    let v = verify(&s, &vp, "x", Some(json!({"action": "refunds:create", "resource": "orders/1"}))).await;
    assert!(failed(&v).contains(&"action_mismatch".to_owned()));
    // Revoked after the VP was made: the next verification sees it.
    let vp = present("r").await;
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{agent}/credentials"), &admin).await;
    let del = wallet["items"][1]["id"].as_str().unwrap().to_owned();
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{del}/revoke"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("revoked")), "{c}");
    let v = verify(&s, &vp, "r", None).await;
    assert_eq!(failed(&v), vec!["revoked"], "{v}");
    let (_, out) = third_party(&s, "presentation", &vp, &["--challenge", "r", "--domain", "payments.example"]);
    assert_eq!(out["reasons"], json!(["revoked"]), "{out}");
}
