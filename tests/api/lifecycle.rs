//! Rotation and lifecycle over a real server: agent, issuer, data and root keys; suspend,
//! resume, retire; replacing authority and revocation cascades; all while serving.

use serde_json::{Value, json};

use crate::credentials::third_party;
use crate::helpers::{OPERATOR, Opts, Server, TestClock};
use crate::presentations::refund;

fn any_time_delegation(principal: &str, max: &str) -> Value {
    json!({
        "principal": {"id": principal, "kind": "person"},
        "actions": ["refunds:create"], "resources": ["orders/*"],
        "limits": {"amount": {"max": max, "currency": "EUR"}},
        "valid_until": "2099-01-01T00:00:00Z"
    })
}

async fn agent_with_delegation(s: &Server, admin: &str, principal: &str) -> (String, String, String) {
    let (agent, token, _) = s.agent("acme", admin, "bot").await;
    let (st, d) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), admin, any_time_delegation(principal, "500.00")).await;
    assert_eq!(st, 201, "{d}");
    (agent, token, d["id"].as_str().unwrap().to_owned())
}

async fn present(s: &Server, token: &str, challenge: &str) -> (u16, Value) {
    s.post("/v1/presentations", token, refund(challenge)).await
}

/// Verifies as a well-behaved client does: a `429 rate_limited` (the per-address verify
/// limit, 100/s by default, which a loop of fast verifications can outrun) waits and asks
/// again instead of counting as a failed verification.
async fn verified(s: &Server, vp: &Value, challenge: &str) -> (bool, Value) {
    let body = json!({"presentation": vp, "challenge": challenge, "domain": "payments.example"});
    for _ in 0..50 {
        let (st, v) = s.call("POST", "/v1/verify", None, Some(body.clone())).await;
        if st == 429 && v["code"] == "rate_limited" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        return (v["verified"] == true, v);
    }
    panic!("still rate limited after 5 s")
}

/// Creations and delegations racing issuer-key rotations: every one succeeds and carries
/// a proof by a key the tenant's DID document lists. (A creation that read the issuer key
/// just before a rotation destroyed it answered 500 under the API fuzzer; concurrent
/// creations in one tenant exhausted their retries on the status-list counters and got 409.)
#[tokio::test]
async fn issuance_racing_issuer_key_rotation_always_succeeds() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, _, _) = s.agent("acme", &admin, "delegate-bot").await;
    let creator = |w: usize| {
        let (s, admin) = (&s, &admin);
        async move {
            let mut out = Vec::new();
            for i in 0..8 {
                let (st, r) = s.post("/v1/tenants/acme/agents", admin, json!({"name": format!("bot-{w}-{i}")})).await;
                assert_eq!(st, 201, "create: {r}");
                out.push(r["identity_credential_id"].as_str().unwrap().to_owned());
            }
            out
        }
    };
    let delegator = async {
        let mut out = Vec::new();
        for i in 0..8 {
            let path = format!("/v1/tenants/acme/agents/{agent}/delegations");
            let (st, d) = s.post(&path, &admin, any_time_delegation(&format!("p{i}"), "5.00")).await;
            assert_eq!(st, 201, "delegate: {d}");
            out.push(d["id"].as_str().unwrap().to_owned());
        }
        out
    };
    let rotator = async {
        for _ in 0..6 {
            let (st, r) = s.post("/v1/tenants/acme/issuer-key/rotate", &admin, json!({})).await;
            assert_eq!(st, 200, "rotate: {r}");
        }
    };
    let (a, b, c, d, ()) = tokio::join!(creator(0), creator(1), creator(2), delegator, rotator);
    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let listed: Vec<&str> = doc["assertionMethod"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for id in a.iter().chain(&b).chain(&c).chain(&d) {
        let (st, r) = s.get(&format!("/v1/tenants/acme/credentials/{id}"), &admin).await;
        assert_eq!(st, 200, "{r}");
        let vm = r["credential"]["proof"]["verificationMethod"].as_str().unwrap();
        assert!(listed.contains(&vm), "{vm} not in {listed:?}");
        let (st, v) =
            s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": r["credential"]}))).await;
        assert_eq!(st, 200, "{v}");
    }
}

#[tokio::test]
async fn agent_key_rotation_keeps_earlier_presentations_valid() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = agent_with_delegation(&s, &admin, "alice").await;
    let (_, p1) = present(&s, &token, "before-1").await;
    let (_, p2) = present(&s, &token, "before-2").await;
    let (_, p3) = present(&s, &token, "before-3").await;
    assert!(p1["presentation"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#key-1"));
    let (st, keys) = s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/rotate"), &admin, json!({})).await;
    assert_eq!(st, 200, "{keys}");
    assert_eq!(keys["current_version"], 2);
    let states: Vec<&str> = keys["items"].as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["retired", "active"]);
    // DID document: both keys listed, key-2 current; key-1 kept verifiable.
    let (_, doc) = s.call("GET", &format!("/tenants/acme/agents/{agent}/did.json"), None, None).await;
    assert_eq!(doc["verificationMethod"].as_array().unwrap().len(), 2);
    assert!(doc["authentication"].as_array().unwrap().iter().any(|k| k.as_str().unwrap().ends_with("#key-2")));
    // Earlier presentations still verify (Sigil and third party); new ones use key-2.
    assert!(verified(&s, &p1["presentation"], "before-1").await.0);
    assert!(third_party(&s, "presentation", &p2["presentation"], &["--challenge", "before-2", "--domain", "payments.example"]).0);
    let (_, p4) = present(&s, &token, "after").await;
    assert!(p4["presentation"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#key-2"));
    assert!(verified(&s, &p4["presentation"], "after").await.0);
    // p3 verifies once more (no challenge named, so none is consumed): its key-1 signature
    // is now one this process remembers as verified.
    let (_, v) = s.call("POST", "/v1/verify", None, Some(json!({"presentation": p3["presentation"]}))).await;
    assert_eq!(v["verified"], true, "{v}");
    // Compromised key-1: gone from the DID document; what it signed no longer verifies,
    // remembered signature or not (the key is resolved before any signature is looked at).
    let (st, _) = s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/1/compromised"), &admin, json!({})).await;
    assert_eq!(st, 200);
    let (_, doc) = s.call("GET", &format!("/tenants/acme/agents/{agent}/did.json"), None, None).await;
    assert!(!doc.to_string().contains("#key-1"));
    let (ok, v) = verified(&s, &p3["presentation"], "before-3").await;
    assert!(!ok);
    assert!(v["errors"].to_string().contains("wrong_key"), "{v}");
    // Compromising the current key replaces it at once.
    let (_, keys) = s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/2/compromised"), &admin, json!({})).await;
    assert_eq!(keys["current_version"], 3);
    let (st, p5) = present(&s, &token, "after-3").await;
    assert_eq!(st, 200);
    assert!(p5["presentation"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#key-3"));
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/9/compromised"), &admin, json!({})).await.0, 404);
}

#[tokio::test]
async fn suspend_resume_and_retire() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, del) = agent_with_delegation(&s, &admin, "alice").await;
    let (_, before) = present(&s, &token, "pre-suspend").await;
    let (st, a) = s.post(&format!("/v1/tenants/acme/agents/{agent}/suspend"), &admin, json!({})).await;
    assert_eq!((st, a["state"].as_str()), (200, Some("suspended")));
    let (st, p) = present(&s, &token, "x").await;
    assert_eq!((st, p["code"].as_str()), (403, Some("agent_suspended")));
    let (_, c) = s.get(&format!("/v1/tenants/acme/credentials/{del}"), &admin).await;
    assert_eq!(c["status"], "suspended");
    let (ok, v) = verified(&s, &before["presentation"], "pre-suspend").await;
    assert!(!ok && v["errors"].to_string().contains("suspended"), "{v}");
    let (st, a) = s.post(&format!("/v1/tenants/acme/agents/{agent}/resume"), &admin, json!({})).await;
    assert_eq!((st, a["state"].as_str()), (200, Some("active")), "{a}");
    let (_, c) = s.get(&format!("/v1/tenants/acme/credentials/{del}"), &admin).await;
    assert_eq!(c["status"], "active");
    let (st, p) = present(&s, &token, "resumed").await;
    assert_eq!(st, 200);
    // A credential suspended by hand stays suspended across an agent suspend/resume.
    let (st, second) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, any_time_delegation("bob", "10.00")).await;
    assert_eq!(st, 201, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{second}/suspend"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("suspended")), "{c}");
    let (st, a) = s.post(&format!("/v1/tenants/acme/agents/{agent}/suspend"), &admin, json!({})).await;
    assert_eq!((st, a["state"].as_str()), (200, Some("suspended")), "{a}");
    let (st, a) = s.post(&format!("/v1/tenants/acme/agents/{agent}/resume"), &admin, json!({})).await;
    assert_eq!((st, a["state"].as_str()), (200, Some("active")), "{a}");
    let (_, c) = s.get(&format!("/v1/tenants/acme/credentials/{second}"), &admin).await;
    assert_eq!(c["status"], "suspended");
    // Retire: irreversible; tokens, keys and credentials gone; DID deactivated.
    let (st, a) = s.post(&format!("/v1/tenants/acme/agents/{agent}/retire"), &admin, json!({})).await;
    assert_eq!((st, a["state"].as_str()), (200, Some("retired")));
    let (st, p2) = present(&s, &token, "y").await;
    assert_eq!((st, p2["code"].as_str()), (401, Some("not_authenticated")), "retiring deletes the agent's tokens: {p2}");
    let (st, d) = s.call("GET", &format!("/tenants/acme/agents/{agent}/did.json"), None, None).await;
    assert_eq!((st, d["code"].as_str()), (410, Some("did_deactivated")));
    let (_, c) = s.get(&format!("/v1/tenants/acme/credentials/{del}"), &admin).await;
    assert_eq!(c["status"], "revoked");
    assert!(!verified(&s, &p["presentation"], "resumed").await.0);
    for path in ["resume", "suspend", "keys/rotate", "tokens"] {
        let (st, _) = s.post(&format!("/v1/tenants/acme/agents/{agent}/{path}"), &admin, json!({})).await;
        assert_eq!(st, 410, "{path}");
    }
}

#[tokio::test]
async fn replace_and_principal_cascade_take_effect_on_the_next_request() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (a1, t1, d1) = agent_with_delegation(&s, &admin, "alice@acme.example").await;
    let (_, t2, d2) = agent_with_delegation(&s, &admin, "alice@acme.example").await;
    let (_, t3, d3) = agent_with_delegation(&s, &admin, "bob@acme.example").await;
    let (_, before) = present(&s, &t1, "old-authority").await;
    // Replace: new authority (max 50) issued, old one revoked, in one step.
    let (st, new) =
        s.post(&format!("/v1/tenants/acme/credentials/{d1}/replace"), &admin, any_time_delegation("alice@acme.example", "50.00")).await;
    assert_eq!(st, 201, "{new}");
    let (_, p) = present(&s, &t1, "c").await;
    assert_eq!(p["code"], "amount_exceeds_limit");
    let (_, old) = s.get(&format!("/v1/tenants/acme/credentials/{d1}"), &admin).await;
    assert_eq!(old["status"], "revoked");
    assert!(!verified(&s, &before["presentation"], "old-authority").await.0);
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{a1}/credentials"), &admin).await;
    assert_eq!(wallet["items"].as_array().unwrap().len(), 3);
    // Cascade: everything alice delegated, across agents, is revoked; bob's stays.
    let (st, r) = s.post("/v1/tenants/acme/principals/alice%40acme.example/revoke", &admin, json!({})).await;
    assert_eq!(st, 200, "{r}");
    let revoked: Vec<&str> = r["revoked"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(revoked.len(), 2);
    assert!(revoked.contains(&d2.as_str()) && revoked.contains(&new["id"].as_str().unwrap()));
    assert_eq!(present(&s, &t2, "c").await.1["code"], "credential_revoked");
    assert_eq!(present(&s, &t3, "c").await.0, 200);
    let (_, bob) = s.get(&format!("/v1/tenants/acme/credentials/{d3}"), &admin).await;
    assert_eq!(bob["status"], "active");
}

#[tokio::test]
async fn issuer_key_rotation_keeps_old_credentials_valid() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, token, d1) = agent_with_delegation(&s, &admin, "alice").await;
    let (_, old) = s.get(&format!("/v1/tenants/acme/credentials/{d1}"), &admin).await;
    let old_vc = old["credential"].clone();
    let (st, r) = s.post("/v1/tenants/acme/issuer-key/rotate", &admin, json!({})).await;
    assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "{r}");
    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let issuer_keys = doc["assertionMethod"].as_array().unwrap().iter().filter(|k| k.as_str().unwrap().contains("#issuer-")).count();
    assert_eq!(issuer_keys, 2, "{doc}");
    // Old credential still verifies, here and in the independent verifier.
    let (st, _) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": old_vc}))).await;
    assert_eq!(st, 200);
    assert!(third_party(&s, "credential", &old_vc, &[]).0);
    // New credentials and status lists are signed with issuer-2.
    let (_, d2) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, any_time_delegation("bob", "5.00")).await;
    assert!(d2["credential"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#issuer-2"));
    let (_, list) = s.call("GET", "/tenants/acme/status/r1", None, None).await;
    assert!(list["proof"]["verificationMethod"].as_str().unwrap().ends_with("#issuer-2"));
    assert_eq!(present(&s, &token, "p").await.0, 200);
    // Re-issue: every active credential re-signed under issuer-3.
    let (_, r) = s.post("/v1/tenants/acme/issuer-key/rotate", &admin, json!({"reissue": true})).await;
    assert_eq!(r["version"], 3);
    assert!(r["reissued"].as_u64().unwrap() >= 3, "{r}");
    let (_, again) = s.get(&format!("/v1/tenants/acme/credentials/{d1}"), &admin).await;
    assert!(again["credential"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#issuer-3"));
    assert_eq!(again["credential"]["id"], old_vc["id"]);
    let (_, p) = present(&s, &token, "after-reissue").await;
    assert!(verified(&s, &p["presentation"], "after-reissue").await.0);
    assert!(third_party(&s, "credential", &again["credential"], &[]).0);
}

/// A leaked issuer key: marked compromised it leaves the DID document at once, so what it
/// signed stops verifying (here and in the independent verifier); the credentials it signed
/// are listed, and re-issued on request under the current key, each re-issue audited.
#[tokio::test]
async fn a_compromised_issuer_key_leaves_the_document_and_its_credentials_are_reissued() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (_, token, d1) = agent_with_delegation(&s, &admin, "alice").await;
    let (_, p) = present(&s, &token, "before").await;
    assert!(verified(&s, &p["presentation"], "before").await.0);
    let (_, auditor) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor"})).await;
    let auditor = auditor["token"].as_str().unwrap().to_owned();

    let (st, r) = s.post("/v1/tenants/acme/issuer-key/9/compromised", &admin, json!({})).await;
    assert_eq!((st, r["code"].as_str()), (404, Some("key_not_found")), "{r}");
    let (st, r) = s.post("/v1/tenants/acme/issuer-key/1/compromised", &auditor, json!({})).await;
    assert_eq!(st, 403, "auditors only read: {r}");
    let (st, r) = s.post("/v1/tenants/acme/issuer-key/1/compromised", &admin, json!({})).await;
    assert_eq!((st, r["version"].as_u64(), r["current"].as_u64()), (200, Some(1), Some(2)), "{r}");
    let listed: Vec<String> = r["to_reissue"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert!(listed.contains(&d1) && listed.len() == 2, "the delegation and the identity credential: {listed:?}");
    let (st, r) = s.get("/v1/tenants/acme/issuer-key/1/credentials", &auditor).await;
    assert_eq!((st, &r["credential_ids"]), (200, &json!(listed)), "{r}");

    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    assert!(!doc.to_string().contains("#issuer-1"), "the compromised key left the DID document: {doc}");
    let (_, old) = s.get(&format!("/v1/tenants/acme/credentials/{d1}"), &admin).await;
    assert!(old["credential"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#issuer-1"));
    assert!(!third_party(&s, "credential", &old["credential"], &[]).0, "an outside verifier refuses what the key signed");
    assert!(!verified(&s, &p["presentation"], "before-again").await.0);
    let (st, r) = present(&s, &token, "not-yet").await;
    assert_eq!(st, 200, "the wallet still presents: {r}");
    assert!(!verified(&s, &r["presentation"], "not-yet").await.0, "but its credentials no longer verify");

    let (st, r) = s.post("/v1/tenants/acme/issuer-key/2/reissue", &admin, json!({})).await;
    assert_eq!((st, r["code"].as_str()), (409, Some("rotation_in_progress")), "the current key re-issues nothing: {r}");
    let (st, r) = s.post("/v1/tenants/acme/issuer-key/1/reissue", &admin, json!({})).await;
    assert_eq!((st, &r["credential_ids"]), (200, &json!(listed)), "{r}");
    let (_, r) = s.get("/v1/tenants/acme/issuer-key/1/credentials", &admin).await;
    assert_eq!(r["credential_ids"], json!([]), "nothing left to re-issue");
    let (_, again) = s.get(&format!("/v1/tenants/acme/credentials/{d1}"), &admin).await;
    assert!(again["credential"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#issuer-2"));
    assert!(third_party(&s, "credential", &again["credential"], &[]).0);
    let (_, p) = present(&s, &token, "after").await;
    assert!(verified(&s, &p["presentation"], "after").await.0, "{p}");

    let (_, trail) = s.get("/v1/tenants/acme/audit?limit=500", &admin).await;
    let events: Vec<&str> = trail["items"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(events.iter().filter(|e| **e == "issuer.key_compromised").count(), 1, "{events:?}");
    assert_eq!(events.iter().filter(|e| **e == "credential.reissued").count(), 2, "one entry per re-issue: {events:?}");
}

async fn wait_resealed(s: &Server, admin: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = s.get("/v1/tenants/acme/data-key", admin).await;
        if v["rotating"] == false {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("data-key rotation did not finish");
}

#[tokio::test]
async fn data_key_rotation_survives_a_crash_and_loses_nothing() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let mut agents = Vec::new();
    for _ in 0..5 {
        agents.push(agent_with_delegation(&s, &admin, "alice").await);
    }
    let (st, r) = s.post("/v1/tenants/acme/data-key/rotate", &admin, json!({})).await;
    assert_eq!((st, r["version"].as_u64()), (202, Some(2)), "{r}");
    let (st, _) = s.post("/v1/tenants/acme/data-key/rotate", &admin, json!({})).await;
    assert_eq!(st, 409, "one rotation at a time");
    // Crash before the background re-seal ran; it must resume at the next start.
    let s = s.restart_after_kill9().await;
    let v = wait_resealed(&s, &admin).await;
    assert_eq!(v["version"], 2);
    for (agent, token, _) in &agents {
        assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
        let (st, p) = present(&s, token, &format!("after-{agent}")).await;
        assert_eq!(st, 200, "{p}");
    }
    // And again while serving, then a clean restart.
    let (st, _) = s.post("/v1/tenants/acme/data-key/rotate", &admin, json!({})).await;
    assert_eq!(st, 202);
    assert_eq!(wait_resealed(&s, &admin).await["version"], 3);
    let s = s.restart().await;
    assert_eq!(s.get("/v1/tenants/acme/agents", &admin).await.1["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn root_key_rotation_online_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = dir.path().join("k1");
    let k2 = dir.path().join("k2");
    let k3 = dir.path().join("k3");
    std::fs::write(&k1, [1u8; 32]).unwrap();
    std::fs::write(&k2, [2u8; 32]).unwrap();
    std::fs::write(&k3, [3u8; 32]).unwrap();
    let data = dir.path().join("data");
    let with_key = |k: &std::path::Path| Opts { args: vec!["--root-key-file".into(), k.display().to_string()], ..Default::default() };
    let mut s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k1)).await;
    let admin = s.tenant("acme").await;
    let (agent, token, _) = agent_with_delegation(&s, &admin, "alice").await;
    let (st, r) = s.post("/v1/system/root-key/rotate", OPERATOR, json!({"new_root_key_file": k2.display().to_string()})).await;
    assert_eq!((st, r["version"].as_u64()), (200, Some(2)), "{r}");
    assert_eq!(s.post("/v1/system/root-key/rotate", &admin, json!({"new_root_key_file": k2.display().to_string()})).await.0, 403);
    assert_eq!(present(&s, &token, "online").await.0, 200);
    s.stop();
    drop(s);
    // The old key no longer opens the store; the new one does, with every token intact.
    let (code, err) = crate::helpers::serve_fails(&data, &with_key(&k1));
    assert_eq!(code, 3, "the retired root key is a wrong key (exit 3): {err}");
    assert!(err.contains("root key or passphrase is wrong"), "{err}");
    let mut s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k2)).await;
    assert_eq!(s.get(&format!("/v1/tenants/acme/agents/{agent}"), &admin).await.0, 200);
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
    s.stop();
    drop(s);
    // Offline rotation with the CLI.
    let out = std::process::Command::new(crate::helpers::bin())
        .args(["rotate-root-key", "--data"])
        .arg(&data)
        .arg("--root-key-file")
        .arg(&k2)
        .arg("--new-root-key-file")
        .arg(&k3)
        .args(crate::helpers::store_args(&data))
        .env("SIGIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, err) = crate::helpers::serve_fails(&data, &with_key(&k2));
    assert_eq!(code, 3, "the key rotated away offline is a wrong key (exit 3): {err}");
    let s = Server::start_in(&data, "127.0.0.1:0", &with_key(&k3)).await;
    assert_eq!(present(&s, &token, "offline").await.0, 200);
    assert_eq!(s.get("/v1/tenants", OPERATOR).await.0, 200);
}

#[tokio::test]
async fn agent_token_rotation_with_grace() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, old, _) = s.agent("acme", &admin, "bot").await;
    let (st, r) = s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({"grace_seconds": 600})).await;
    assert_eq!(st, 201);
    let new = r["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/v1/agent", &old).await.0, 200, "old token works during the grace period");
    assert_eq!(s.get("/v1/agent", &new).await.0, 200);
    let (_, r) = s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({})).await;
    assert_eq!(s.get("/v1/agent", &old).await.0, 401);
    assert_eq!(s.get("/v1/agent", &new).await.0, 401);
    assert_eq!(s.get("/v1/agent", r["access_token"].as_str().unwrap()).await.0, 200);
    assert_eq!(s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({"grace_seconds": 999999})).await.0, 400);
}

/// A test clock file without a time refuses the start (a configuration error, exit 2)
/// rather than leaving the server on the system clock unnoticed.
#[test]
fn a_test_clock_file_without_a_time_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("now");
    std::fs::write(&file, "tomorrow").unwrap();
    let mut opts = Opts::default();
    opts.env.push(("SIGIL_TEST_CLOCK_FILE".into(), file.display().to_string()));
    let (code, err) = crate::helpers::serve_fails(&dir.path().join("data"), &opts);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SIGIL_TEST_CLOCK_FILE") && err.contains("holds no RFC 3339 time"), "{err}");
}

/// Token lifetimes lapse on the server's clock: the earlier token at the end of its grace
/// period, the new one at its `expires_at`; both for a token the server has just
/// authenticated (and remembers) and for one it reads afresh after a restart.
#[tokio::test]
async fn token_expiry_and_grace_lapse_on_the_servers_clock() {
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = Server::start_with(clock.opts()).await;
    let admin = s.tenant("acme").await;
    let (agent, old, _) = s.agent("acme", &admin, "bot").await;
    let (st, r) =
        s.post(&format!("/v1/tenants/acme/agents/{agent}/tokens"), &admin, json!({"expires_in": 3600, "grace_seconds": 600})).await;
    assert_eq!((st, r["expires_at"].as_str()), (201, Some("2026-06-03T13:00:00Z")), "{r}");
    let new = r["access_token"].as_str().unwrap().to_owned();
    // The last second of the grace period: both work (and are now remembered).
    clock.set("2026-06-03T12:09:59Z");
    assert_eq!(s.get("/v1/agent", &old).await.0, 200, "inside the grace period");
    assert_eq!(s.get("/v1/agent", &new).await.0, 200);
    clock.set("2026-06-03T12:10:00Z");
    assert_eq!(s.get("/v1/agent", &old).await.0, 401, "the grace period has lapsed");
    assert_eq!(s.get("/v1/agent", &new).await.0, 200);
    // Read afresh from the store: the same.
    let s = s.restart().await;
    assert_eq!(s.get("/v1/agent", &old).await.0, 401, "lapsed, after a restart");
    clock.set("2026-06-03T12:59:59Z");
    assert_eq!(s.get("/v1/agent", &new).await.0, 200, "the last second of its lifetime");
    clock.set("2026-06-03T13:00:00Z");
    assert_eq!(s.get("/v1/agent", &new).await.0, 401, "expired");
    let s = s.restart().await;
    assert_eq!(s.get("/v1/agent", &new).await.0, 401, "expired, after a restart");
}

#[tokio::test]
async fn presentations_during_rotations_always_verify_or_fail_cleanly() {
    let s = std::sync::Arc::new(Server::start().await);
    let admin = s.tenant("acme").await;
    let (agent, token, _) = agent_with_delegation(&s, &admin, "alice").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (s, token, stop) = (s.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && i < 400 {
                let ch = format!("w{w}-{i}");
                let (st, p) = s.post("/v1/presentations", &token, refund(&ch)).await;
                assert!(st == 200 || ((400..500).contains(&st) && p["code"].is_string()), "{st} {p}");
                if st == 200 {
                    out.push((ch, p["presentation"].clone()));
                }
                i += 1;
            }
            out
        }));
    }
    for round in 0..3 {
        let (st, _) = s.post(&format!("/v1/tenants/acme/agents/{agent}/keys/rotate"), &admin, json!({})).await;
        assert_eq!(st, 200);
        let (st, _) = s.post("/v1/tenants/acme/issuer-key/rotate", &admin, json!({"reissue": round == 1})).await;
        assert_eq!(st, 200);
        if round == 0 {
            assert_eq!(s.post("/v1/tenants/acme/data-key/rotate", &admin, json!({})).await.0, 202);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    assert!(all.len() > 20, "only {} presentations", all.len());
    let (_, keys) = s.get(&format!("/v1/tenants/acme/agents/{agent}/keys"), &admin).await;
    assert_eq!(keys["current_version"], 4);
    for (ch, vp) in &all {
        let (ok, v) = verified(&s, vp, ch).await;
        assert!(ok, "a presentation made during rotation does not verify: {v}");
    }
    let (_, p) = present(&s, &token, "final").await;
    assert!(p["presentation"]["proof"]["verificationMethod"].as_str().unwrap().ends_with("#key-4"));
}
