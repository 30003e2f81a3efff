//! Human approval (step-up), end to end over HTTPS: a delegation that requires approval
//! above 200.00 EUR answers `202` with an approval request; an approver decides; the
//! agent's next identical request (another challenge) yields a presentation carrying the
//! tenant-signed approval, once; `/v1/verify` shows it. Refusals: deny, expiry, the agent
//! itself, another tenant, an approver scoped to another principal. The webhook is
//! received signed by the tenant's issuer key, and never sent where egress refuses.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::{Server, TestClock};

const ALL_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn stepped_delegation(principal: &str) -> Value {
    json!({
        "principal": {"id": principal, "kind": "person"},
        "actions": ["refunds:create", "orders:read"], "resources": ["orders/*"],
        "limits": {"amount": {"max": "1000.00", "currency": "EUR", "per_day": "5000.00"}},
        "schedule": {"timezone": "UTC", "days": ALL_DAYS, "from": "00:00", "to": "24:00"},
        "approval": {"actions": ["refunds:create"], "above": {"amount": "200.00", "currency": "EUR"}},
        "valid_until": "2099-01-01T00:00:00Z"
    })
}

fn refund(amount: &str, challenge: &str) -> Value {
    json!({"action": "refunds:create", "resource": "orders/7", "context": {"amount": amount, "currency": "EUR"},
           "challenge": challenge, "domain": "payments.example"})
}

/// A tenant whose agent holds a delegation of `principal` that needs approval above 200 EUR;
/// returns (admin, agent id, agent token).
async fn setup(s: &Server, tenant: &str, principal: &str) -> (String, String, String) {
    let admin = s.tenant(tenant).await;
    let (agent, token, _) = s.agent(tenant, &admin, "refund-bot").await;
    let (st, v) = s.post(&format!("/v1/tenants/{tenant}/agents/{agent}/delegations"), &admin, stepped_delegation(principal)).await;
    assert_eq!(st, 201, "{v}");
    (admin, agent, token)
}

async fn approver(s: &Server, tenant: &str, admin: &str, principals: Option<&[&str]>) -> String {
    let mut body = json!({"role": "approver"});
    if let Some(p) = principals {
        body["principals"] = json!(p);
    }
    let (st, v) = s.post(&format!("/v1/tenants/{tenant}/tokens"), admin, body).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["role"], "approver");
    v["token"].as_str().unwrap().to_owned()
}

async fn verify(s: &Server, vp: &Value, challenge: &str) -> Value {
    let body = json!({"presentation": vp, "challenge": challenge, "domain": "payments.example"});
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test]
async fn an_approved_request_is_presented_once_carrying_the_tenant_signed_approval() {
    let s = Server::start().await;
    let (admin, agent, token) = setup(&s, "acme", "alice").await;
    let approver = approver(&s, "acme", &admin, None).await;

    // Below the threshold: signed at once, no approval involved.
    let (st, small) = s.post("/v1/presentations", &token, refund("150.00", "c0")).await;
    assert_eq!(st, 200, "{small}");
    // Above it: 202 with the approval request, no presentation.
    let (st, v) = s.post("/v1/presentations", &token, refund("250.00", "c1")).await;
    assert_eq!(st, 202, "{v}");
    assert!(v.get("presentation").is_none());
    let a = &v["approval"];
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (a["status"].as_str(), a["action"].as_str(), a["amount"].as_str()),
        (Some("pending"), Some("refunds:create"), Some("250.00"))
    );
    assert_eq!((a["agent_id"].as_str(), a["principal"].as_str()), (Some(agent.as_str()), Some("alice")));
    assert!(a["expires_at"].as_str().is_some());
    // Asked again (another challenge) before a decision: the same request, not a new one.
    let (st, again) = s.post("/v1/presentations", &token, refund("250.00", "c2")).await;
    assert_eq!((st, again["approval"]["id"].as_str()), (202, Some(id.as_str())), "{again}");
    // The approver sees it, pending; the agent sees its status.
    let (st, list) = s.get("/v1/tenants/acme/approvals?status=pending", &approver).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (st, mine) = s.get(&format!("/v1/approvals/{id}"), &token).await;
    assert_eq!((st, mine["status"].as_str()), (200, Some("pending")));

    // The agent's own token never decides; an auditor neither.
    let (st, e) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &token, json!({})).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("not_authorized")), "{e}");
    let (st, approved) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &approver, json!({})).await;
    assert_eq!((st, approved["status"].as_str()), (200, Some("approved")), "{approved}");
    assert!(approved["decided_by"].as_str().unwrap().starts_with("token:"));
    // Decided twice: 409.
    let (st, e) = s.post(&format!("/v1/tenants/acme/approvals/{id}/deny"), &approver, json!({})).await;
    assert_eq!((st, e["code"].as_str()), (409, Some("approval_decided")), "{e}");

    // The next identical request, under a fresh challenge: a presentation with the approval.
    let (st, p) = s.post("/v1/presentations", &token, refund("250.00", "c3")).await;
    assert_eq!(st, 200, "{p}");
    let vcs = p["presentation"]["verifiableCredential"].as_array().unwrap();
    let approval_vc =
        vcs.iter().find(|c| c["type"].as_array().unwrap().iter().any(|t| t == "SigilApprovalCredential")).expect("no approval");
    assert_eq!(approval_vc["issuer"], "did:web:".to_owned() + &s.listen().replace(':', "%3A") + ":tenants:acme");
    assert_eq!(approval_vc["credentialSubject"]["approvedRequest"]["requestHash"], a["request_hash"]);
    let v = verify(&s, &p["presentation"], "c3").await;
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["approval"]["approver"], approved["decided_by"], "{v}");
    assert!(v["checks"].as_array().unwrap().iter().any(|c| c["check"] == "approval" && c["ok"] == true), "{v}");

    // Single use: the same request again is a new approval request, never a presentation.
    let (st, v) = s.post("/v1/presentations", &token, refund("250.00", "c4")).await;
    assert_eq!(st, 202, "the approval was used twice: {v}");
    let (_, mine) = s.get(&format!("/v1/approvals/{id}"), &token).await;
    assert_eq!(mine["status"], "used");
    assert_ne!(v["approval"]["id"].as_str(), Some(id.as_str()));
    let (st, e) =
        s.post(&format!("/v1/approvals/{id}/presentation"), &token, json!({"challenge": "c5", "domain": "payments.example"})).await;
    assert_eq!((st, e["code"].as_str()), (409, Some("approval_decided")), "a used approval opened a new request: {e}");
    let (_, pending) = s.get("/v1/tenants/acme/approvals?status=pending", &approver).await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(1), "only c4's request is open: {pending}");

    // Another request (another amount) is not covered by an approval of the first.
    let (st, other) = s.post("/v1/presentations", &token, refund("260.00", "c6")).await;
    assert_eq!(st, 202, "{other}");
    assert_ne!(other["approval"]["id"], v["approval"]["id"]);

    // Audited: requested, approved, used.
    let (_, trail) = s.get("/v1/tenants/acme/audit?event=approval&limit=500", &admin).await;
    let events: Vec<&str> = trail["items"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    for e in ["approval.requested", "approval.approved", "approval.used"] {
        assert!(events.contains(&e), "{e} not in {events:?}");
    }
    assert!(!trail.to_string().contains(&approver), "a token in the trail");
}

#[tokio::test]
async fn approval_status_yields_the_presentation_under_a_fresh_challenge() {
    let s = Server::start().await;
    let (admin, _, token) = setup(&s, "acme", "alice").await;
    let (_, v) = s.post("/v1/presentations", &token, refund("300.00", "c1")).await;
    let id = v["approval"]["id"].as_str().unwrap().to_owned();
    let ask = json!({"challenge": "fresh", "domain": "payments.example"});
    let (st, pending) = s.post(&format!("/v1/approvals/{id}/presentation"), &token, ask.clone()).await;
    assert_eq!((st, pending["approval"]["status"].as_str()), (202, Some("pending")));
    // An admin may approve too (it could grant the authority outright).
    let (st, _) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &admin, json!({})).await;
    assert_eq!(st, 200);
    let (st, p) = s.post(&format!("/v1/approvals/{id}/presentation"), &token, ask).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(verify(&s, &p["presentation"], "fresh").await["verified"], true);
}

#[tokio::test]
async fn denied_expired_and_foreign_decisions_are_refused() {
    let clock = TestClock::at("2026-06-03T12:00:00Z");
    let s = Server::start_with(clock.opts()).await;
    let (admin, _, token) = setup(&s, "acme", "alice").await;
    let approver_all = approver(&s, "acme", &admin, None).await;
    let bobs = approver(&s, "acme", &admin, Some(&["bob"])).await;
    let alices = approver(&s, "acme", &admin, Some(&["alice"])).await;
    let other_admin = s.tenant("globex").await;
    let foreign = approver(&s, "globex", &other_admin, None).await;
    let (_, tokens) = s.get("/v1/tenants/acme/tokens", &admin).await;
    let listed: Vec<&Value> = tokens["items"].as_array().unwrap().iter().filter(|t| t["role"] == "approver").collect();
    assert_eq!(listed.len(), 3, "{tokens}");
    assert!(listed.iter().any(|t| t["principals"] == json!(["bob"])), "{tokens}");
    // An approver token reads nothing else of the tenant.
    let (st, _) = s.get("/v1/tenants/acme/agents", &approver_all).await;
    assert_eq!(st, 403);

    // Deny: the identical request is refused with a clear code while the denial stands.
    let (_, v) = s.post("/v1/presentations", &token, refund("250.00", "d1")).await;
    let id = v["approval"]["id"].as_str().unwrap().to_owned();
    let (st, e) = s.post(&format!("/v1/tenants/globex/approvals/{id}/deny"), &foreign, json!({})).await;
    assert_eq!(st, 404, "another tenant's approval must not exist for it: {e}");
    let (st, e) = s.post(&format!("/v1/tenants/acme/approvals/{id}/deny"), &foreign, json!({})).await;
    assert_eq!(st, 404, "another tenant's token must learn nothing: {e}");
    let (st, e) = s.post(&format!("/v1/tenants/acme/approvals/{id}/deny"), &bobs, json!({})).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("approval_out_of_scope")), "{e}");
    let (st, l) = s.get("/v1/tenants/acme/approvals", &bobs).await;
    assert_eq!((st, l["items"].as_array().map(Vec::len)), (200, Some(0)), "{l}");
    let (st, d) = s.post(&format!("/v1/tenants/acme/approvals/{id}/deny"), &alices, json!({})).await;
    assert_eq!((st, d["status"].as_str()), (200, Some("denied")), "{d}");
    let (st, e) = s.post("/v1/presentations", &token, refund("250.00", "d2")).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("approval_denied")), "{e}");

    // Expiry: a pending request cannot be approved after it (410), and an approval cannot
    // be used after it (a new request instead).
    let (_, v) = s.post("/v1/presentations", &token, refund("270.00", "e1")).await;
    let late = v["approval"]["id"].as_str().unwrap().to_owned();
    let (_, v) = s.post("/v1/presentations", &token, refund("280.00", "e2")).await;
    let unused = v["approval"]["id"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/v1/tenants/acme/approvals/{unused}/approve"), &approver_all, json!({})).await;
    assert_eq!(st, 200);
    clock.set("2026-06-03T12:16:00Z");
    let (st, e) = s.post(&format!("/v1/tenants/acme/approvals/{late}/approve"), &approver_all, json!({})).await;
    assert_eq!((st, e["code"].as_str()), (410, Some("approval_expired")), "{e}");
    let (st, v) = s.post("/v1/presentations", &token, refund("280.00", "e3")).await;
    assert_eq!(st, 202, "an expired approval was used: {v}");
    assert_ne!(v["approval"]["id"].as_str(), Some(unused.as_str()));
    let (_, trail) = s.get("/v1/tenants/acme/audit?event=approval&limit=500", &admin).await;
    let events: Vec<&str> = trail["items"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(events.contains(&"approval.denied") && events.contains(&"approval.expired"), "{events:?}");
}

/// One POST the webhook host received: its headers (lowercase names) and body.
type Delivery = (HashMap<String, String>, Vec<u8>);

/// An HTTPS host on 127.0.0.1 that records every POST (headers and body), with a
/// certificate from its own throw-away CA (Sigil trusts it through `--resolver-ca`).
struct WebhookHost {
    port: u16,
    ca: PathBuf,
    seen: Arc<Mutex<Vec<Delivery>>>,
    _dir: tempfile::TempDir,
}

impl WebhookHost {
    fn start() -> WebhookHost {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "webhook test host CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("webhook-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let certs = vec![CertificateDer::from(leaf.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let recorded = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, recorded) = (config.clone(), recorded.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&req[..head_end]).to_string();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
                        .collect();
                    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    while req.len() < head_end + len {
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    recorded.lock().unwrap().push((headers, req[head_end..head_end + len].to_vec()));
                    let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").and_then(|_| tls.flush());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        WebhookHost { port, ca: ca_file, seen, _dir: dir }
    }
}

#[tokio::test]
async fn the_webhook_is_signed_by_the_tenant_and_never_sent_where_egress_refuses() {
    let host = WebhookHost::start();
    // A port nothing listens on (allowed too): a delivery there fails with reqwest's error,
    // whose text quotes the URL.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args = vec![
        "--resolver-allow".into(),
        format!("127.0.0.1:{}", host.port),
        "--resolver-allow".into(),
        format!("127.0.0.1:{closed}"),
        "--resolver-ca".into(),
        host.ca.display().to_string(),
    ];
    let s = Server::start_with(crate::helpers::Opts { args, ..Default::default() }).await;
    let (admin, _, token) = setup(&s, "acme", "alice").await;
    let (st, g) = s.call("PUT", "/v1/tenants/acme/guardrails", Some(&admin),
        Some(json!({"rate_per_second": 100, "burst": 100, "denial_threshold": 0, "denial_window_secs": 300, "sensitive_context_keys": ["customer"]}))).await;
    assert_eq!(st, 200, "{g}");
    let auditor = {
        let (st, v) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "auditor"})).await;
        assert_eq!(st, 201, "{v}");
        v["token"].as_str().unwrap().to_owned()
    };

    // Loopback (or any address class the policy refuses) is not a destination.
    for url in ["https://127.0.0.1/hook", "https://localhost:9/hook", "http://example.com/hook", "https://169.254.169.254/latest"] {
        let (st, e) = s.call("PUT", "/v1/tenants/acme/approval-settings", Some(&admin), Some(json!({"webhook_url": url}))).await;
        assert_eq!((st, e["code"].as_str()), (400, Some("invalid_request")), "{url}: {e}");
    }
    // Hook URLs carry their receiver's credential in the path or query: it never reaches
    // the logs (the harness scans them for registered secrets) or the trail.
    let (path_secret, query_secret) = ("hookpathsecret0123456789", "hookquerysecret0123456789");
    s.secrets().add(path_secret);
    s.secrets().add(query_secret);
    let url = format!("https://127.0.0.1:{}/hooks/{path_secret}/approvals?key={query_secret}", host.port);
    let (st, v) = s.call("PUT", "/v1/tenants/acme/approval-settings", Some(&admin), Some(json!({"webhook_url": url}))).await;
    assert_eq!(st, 200, "{v}");
    let (st, read) = s.get("/v1/tenants/acme/approval-settings", &auditor).await;
    assert_eq!((st, read["webhook_url"].as_str()), (200, Some(format!("https://127.0.0.1:{}", host.port).as_str())), "{read}");

    let mut asked = refund("250.00", "w1");
    asked["context"]["customer"] = json!("Jane Roe");
    let (st, v) = s.post("/v1/presentations", &token, asked).await;
    assert_eq!(st, 202, "{v}");
    let id = v["approval"]["id"].as_str().unwrap();
    let mut waited = 0;
    while host.seen.lock().unwrap().is_empty() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let (headers, body) = host.seen.lock().unwrap().first().cloned().expect("the webhook was not delivered");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((payload["type"].as_str(), payload["approval"]["id"].as_str()), (Some("approval.requested"), Some(id)));
    assert_eq!(payload["approval"]["context"]["amount"], "250.00");
    // A context key the tenant marks sensitive goes as a keyed hash, as in the trail.
    let customer = payload["approval"]["context"]["customer"].as_str().unwrap();
    assert!(customer.starts_with("hmac-sha256:"), "a sensitive context value in clear: {payload}");
    assert!(!String::from_utf8_lossy(&body).contains("Jane Roe"));
    // The approver still reads it whole through the authenticated route.
    let (_, full) = s.get(&format!("/v1/tenants/acme/approvals/{id}"), &admin).await;
    assert_eq!(full["context"]["customer"], "Jane Roe", "{full}");
    assert!(!String::from_utf8_lossy(&body).contains("sgl_"), "a token in the webhook");
    // The signature verifies against the key the tenant's DID document lists.
    let sig_header = headers.get("sigil-signature").expect("unsigned webhook");
    let parts: HashMap<&str, &str> = sig_header.split(',').filter_map(|p| p.split_once('=')).collect();
    let kid = parts["kid"];
    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let vm = doc["verificationMethod"].as_array().unwrap().iter().find(|m| m["id"] == kid).expect("kid not in the DID document");
    let pk = sigil::vc::multikey::decode(vm["publicKeyMultibase"].as_str().unwrap()).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.0).unwrap();
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts["sig"]).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    let mut signed = format!("{}.", parts["t"]).into_bytes();
    signed.extend_from_slice(&body);
    vk.verify_strict(&signed, &sig).expect("the webhook signature does not verify");
    let mut tampered = signed.clone();
    tampered.push(b' ');
    assert!(vk.verify_strict(&tampered, &sig).is_err());

    // A delivery that fails: reqwest's error quotes the URL, the log must not.
    let dead = format!("https://127.0.0.1:{closed}/hooks/{path_secret}/approvals?key={query_secret}");
    let (st, v) = s.call("PUT", "/v1/tenants/acme/approval-settings", Some(&admin), Some(json!({"webhook_url": dead}))).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post("/v1/presentations", &token, refund("251.00", "w2")).await;
    assert_eq!(st, 202, "{v}");
    let mut waited = 0;
    while !s.logs().contains("approval webhook not delivered") && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let logs = s.logs();
    assert!(logs.contains("approval webhook not delivered"), "the failure was not logged");
    assert!(!logs.contains(path_secret) && !logs.contains(query_secret), "the webhook URL's secret is in the logs");
    let (_, trail) = s.get("/v1/tenants/acme/audit?limit=500", &auditor).await;
    let trail = trail.to_string();
    assert!(trail.contains("tenant.approval_settings_set"), "{trail}");
    assert!(!trail.contains(path_secret) && !trail.contains(query_secret), "the webhook URL's secret is in the trail");
}

/// Under an `eddsa-rdfc-2022` tenant the delegation's approval rule and the approval
/// credential are JSON-LD terms of Sigil's context: both are signed and verify.
#[tokio::test]
async fn approvals_under_an_rdfc_tenant_verify() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, v) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!(st, 200, "{v}");
    let (agent, token, _) = s.agent("acme", &admin, "refund-bot").await;
    let (st, v) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, stepped_delegation("alice")).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["credential"]["proof"]["cryptosuite"], "eddsa-rdfc-2022", "{v}");
    // The rule is covered by the rdfc signature (its terms expand through VC 2.0's @vocab,
    // never dropped): the credential without it no longer verifies.
    let path = "/tenants/acme/vc-api/credentials/verify";
    let (st, r) = s.call("POST", path, None, Some(json!({"verifiableCredential": v["credential"]}))).await;
    assert_eq!((st, r["verified"].as_bool()), (200, Some(true)), "{r}");
    let mut stripped = v["credential"].clone();
    stripped["credentialSubject"]["authority"].as_object_mut().unwrap().remove("approval");
    let (st, r) = s.call("POST", path, None, Some(json!({"verifiableCredential": stripped}))).await;
    assert_eq!((st, r["verified"].as_bool()), (422, Some(false)), "the approval rule is not signed: {r}");
    let (st, v) = s.post("/v1/presentations", &token, refund("250.00", "r1")).await;
    assert_eq!(st, 202, "{v}");
    let id = v["approval"]["id"].as_str().unwrap();
    let (st, v) = s.post(&format!("/v1/tenants/acme/approvals/{id}/approve"), &admin, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let (st, p) = s.post("/v1/presentations", &token, refund("250.00", "r2")).await;
    assert_eq!(st, 200, "{p}");
    let v = verify(&s, &p["presentation"], "r2").await;
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["approval"].is_object(), "{v}");
    // The approval credential is rdfc-signed, its request hash covered.
    let vcs = p["presentation"]["verifiableCredential"].as_array().unwrap();
    let approval = vcs.iter().find(|c| c["type"][1] == "SigilApprovalCredential").unwrap().clone();
    assert_eq!(approval["proof"]["cryptosuite"], "eddsa-rdfc-2022", "{approval}");
    let (st, r) = s.call("POST", path, None, Some(json!({"verifiableCredential": approval}))).await;
    assert_eq!((st, r["verified"].as_bool()), (200, Some(true)), "{r}");
    let mut other = approval.clone();
    other["credentialSubject"]["approvedRequest"]["requestHash"] = "00".repeat(32).into();
    let (st, r) = s.call("POST", path, None, Some(json!({"verifiableCredential": other}))).await;
    assert_eq!((st, r["verified"].as_bool()), (422, Some(false)), "the request hash is not signed: {r}");
}

/// A webhook URL that passes the check when set (a name on port 443) but resolves to a
/// loopback address is refused at delivery by the egress policy: nothing is sent, the
/// refusal is counted and logged, and the 202 is unaffected.
#[tokio::test]
async fn a_webhook_name_resolving_to_loopback_is_never_delivered() {
    let s = Server::start().await;
    let (admin, _, token) = setup(&s, "acme", "alice").await;
    let (st, v) =
        s.call("PUT", "/v1/tenants/acme/approval-settings", Some(&admin), Some(json!({"webhook_url": "https://localhost/hooks"}))).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post("/v1/presentations", &token, refund("250.00", "l1")).await;
    assert_eq!(st, 202, "{v}");
    let mut refused = false;
    for _ in 0..50 {
        let m = s.metrics().await;
        if m.lines().any(|l| l.starts_with("sigil_webhook_deliveries_total") && l.contains("outcome=\"refused\"") && l.ends_with(" 1")) {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "no refused delivery counted: {}", s.metrics().await);
    assert!(!s.metrics().await.contains("outcome=\"delivered\""));
    assert!(s.logs().contains("approval webhook refused by the egress policy"), "not logged");
}

/// `principals: []` is refused (it must never read as "every principal"); absent means
/// every principal.
#[tokio::test]
async fn an_approver_token_with_an_empty_principal_list_is_refused() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, e) = s.post("/v1/tenants/acme/tokens", &admin, json!({"role": "approver", "principals": []})).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_request")), "an empty scope fails open: {e}");
    assert!(e["detail"].as_str().unwrap().contains("1–64"), "{e}");
    let (_, tokens) = s.get("/v1/tenants/acme/tokens", &admin).await;
    assert!(!tokens["items"].as_array().unwrap().iter().any(|t| t["role"] == "approver"), "{tokens}");
    approver(&s, "acme", &admin, None).await;
}

/// A context number RFC 8785 would round (beyond ±(2^53−1)) is refused: otherwise
/// `order_id` …993 and …992 hash alike and one approval covers the other.
#[tokio::test]
async fn a_context_number_beyond_2_pow_53_is_refused_before_any_approval() {
    let s = Server::start().await;
    let (admin, _, token) = setup(&s, "acme", "alice").await;
    let mut asked = refund("250.00", "n1");
    asked["context"]["order_id"] = serde_json::from_str("9007199254740993").unwrap();
    let (st, e) = s.post("/v1/presentations", &token, asked).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_request")), "{e}");
    assert!(e["detail"].as_str().unwrap().contains("context.order_id"), "{e}");
    let (_, list) = s.get("/v1/tenants/acme/approvals", &admin).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    // Within the safe range it is an ordinary request.
    let mut asked = refund("250.00", "n2");
    asked["context"]["order_id"] = json!(9007199254740991_u64);
    let (st, v) = s.post("/v1/presentations", &token, asked).await;
    assert_eq!(st, 202, "{v}");
}
