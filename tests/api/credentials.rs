//! Identities and credentials over a real server: DID documents, delegations, status
//! lists, VC-API, and verification by Sigil and by an independent third-party verifier.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{OPERATOR, Server};

pub fn delegation_body() -> Value {
    json!({
        "principal": {"id": "alice@acme.example", "kind": "person", "name": "Alice"},
        "actions": ["refunds:create", "orders:*"],
        "resources": ["orders/*"],
        "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": "1000.00"}},
        "schedule": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"},
        "valid_until": "2099-01-01T00:00:00Z"
    })
}

/// Runs the Digital Bazaar based verifier (tests/interop/verify.mjs) on `doc` and returns
/// `(verified, report)`, the report being its JSON line
/// `{"verified", "outcome": "verified"|"rejected", "reasons": [code…], "errors": […]}`.
/// Only a verdict comes back: "could not check" (exit 3: TLS, DNS, HTTP, an unmapped
/// context, a verifier crash) and usage errors (exit 2) fail the test here, so `!verified`
/// always means the document was *rejected*; assert `report["reasons"]` to say why.
pub fn third_party(s: &Server, kind: &str, doc: &Value, extra: &[&str]) -> (bool, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/interop/node_modules").exists(),
        "tests/interop/node_modules is missing: run scripts/test (it runs `npm ci` there)"
    );
    let ctx = format!("{}/ns/v1={}", s.base, root.join("src/vc/contexts/sigil-v1.jsonld").display());
    let out = std::process::Command::new("node")
        .arg(root.join("tests/interop/verify.mjs"))
        .args(["--kind", kind])
        .arg(&file)
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .args(["--context", &ctx])
        .args(extra)
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(stdout.trim().lines().next_back().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the third-party verifier printed no JSON report ({e}): {stdout} {stderr}"));
    let code = out.status.code();
    let verdict = match (code, report["outcome"].as_str()) {
        (Some(0), Some("verified")) => true,
        (Some(1), Some("rejected")) => false,
        _ => panic!("the third-party verifier gave no verdict (exit {code:?}): {report} {stderr}"),
    };
    assert_eq!(report["verified"], verdict, "{report}");
    assert_eq!(report["reasons"].as_array().map(Vec::is_empty), Some(verdict), "a rejection names its reasons: {report}");
    (verdict, report)
}

async fn sigil_verify(s: &Server, vc: &Value) -> (u16, Value) {
    s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": vc}))).await
}

fn codes(v: &Value) -> Vec<String> {
    v["problemDetails"]
        .as_array()
        .map(|a| a.iter().map(|p| p["type"].as_str().unwrap().replace("urn:sigil:problem:", "")).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn dids_resolve_and_credentials_verify_in_sigil_and_third_party() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, _, created) = s.agent("acme", &admin, "refund-bot").await;
    // DID documents over HTTPS.
    let (st, tdoc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    assert_eq!(st, 200);
    let tdid = tdoc["id"].as_str().unwrap().to_owned();
    assert!(tdid.starts_with("did:web:127.0.0.1%3A") && tdid.ends_with(":tenants:acme"), "{tdid}");
    assert_eq!(tdoc["assertionMethod"][0], format!("{tdid}#issuer-1"));
    assert!(tdoc["verificationMethod"][0]["publicKeyMultibase"].as_str().unwrap().starts_with("z6Mk"));
    let (st, adoc) = s.call("GET", &format!("/tenants/acme/agents/{agent}/did.json"), None, None).await;
    assert_eq!(st, 200);
    assert_eq!(adoc["id"], created["did"]);
    assert_eq!(adoc["authentication"][0], format!("{}#key-1", created["did"].as_str().unwrap()));
    assert_eq!(s.call("GET", "/tenants/nope/did.json", None, None).await.0, 404);
    // Identity credential issued with the agent.
    let id_cred = created["identity_credential_id"].as_str().unwrap();
    let (st, idv) = s.get(&format!("/v1/tenants/acme/credentials/{id_cred}"), &admin).await;
    assert_eq!(st, 200);
    let identity = idv["credential"].clone();
    assert_eq!(identity["type"][1], "AgentIdentityCredential");
    assert_eq!(identity["credentialSubject"]["id"], created["did"]);
    assert_eq!(identity["credentialSubject"]["name"], "refund-bot");
    // Delegation.
    let (st, del) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, delegation_body()).await;
    assert_eq!(st, 201, "{del}");
    let vc = del["credential"].clone();
    assert_eq!(vc["type"][1], "DelegatedAuthorityCredential");
    assert_eq!(vc["credentialSubject"]["authority"]["limits"]["amount"]["perDay"], "1000.00");
    assert_eq!(vc["credentialSubject"]["principal"]["identifier"], "alice@acme.example");
    assert_eq!(vc["credentialStatus"].as_array().unwrap().len(), 2);
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{agent}/credentials"), &admin).await;
    assert_eq!(wallet["items"].as_array().unwrap().len(), 2);
    assert_eq!(wallet["items"][1]["status"], "active");
    // Sigil verifies both, and so does the independent verifier (with live status lists).
    for c in [&identity, &vc] {
        let (st, r) = sigil_verify(&s, c).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["verified"], true);
        let (ok, out) = third_party(&s, "credential", c, &[]);
        assert!(ok, "third-party verifier rejected a Sigil credential: {out}");
    }
    // Tampering: any changed field fails in both.
    let mut t = vc.clone();
    t["credentialSubject"]["authority"]["limits"]["amount"]["max"] = "50000.00".into();
    let (st, r) = sigil_verify(&s, &t).await;
    assert_eq!(st, 422);
    assert_eq!(codes(&r), vec!["invalid_signature"]);
    let (_, out) = third_party(&s, "credential", &t, &[]);
    assert_eq!(out["reasons"], json!(["invalid_signature"]), "{out}");
    // A key that is not the issuer's assertion key.
    let mut t = vc.clone();
    t["proof"]["verificationMethod"] = format!("{tdid}#issuer-9").into();
    let (_, r) = sigil_verify(&s, &t).await;
    assert_eq!(codes(&r), vec!["wrong_key"]);
    let (_, out) = third_party(&s, "credential", &t, &[]);
    assert_eq!(out["reasons"], json!(["wrong_key"]), "{out}");
    // The status list itself is a credential that verifies in the third-party verifier.
    let list_url = vc["credentialStatus"][0]["statusListCredential"].as_str().unwrap().to_owned();
    let list_path = list_url.trim_start_matches(&s.base).to_owned();
    let (st, list) = s.call("GET", &list_path, None, None).await;
    assert_eq!(st, 200);
    assert_eq!(list["type"][1], "BitstringStatusListCredential");
    assert!(third_party(&s, "credential", &list, &["--no-status"]).0);
    let mut t = list.clone();
    t["credentialSubject"]["encodedList"] = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA".into();
    let (_, out) = third_party(&s, "credential", &t, &["--no-status"]);
    assert_eq!(out["reasons"], json!(["invalid_signature"]), "{out}");
}

#[tokio::test]
async fn revoke_suspend_resume_show_up_on_the_next_fetch() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, _, _) = s.agent("acme", &admin, "bot").await;
    let (_, del) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, delegation_body()).await;
    let vc = del["credential"].clone();
    let id = del["id"].as_str().unwrap();
    // Suspend → "suspended" in both verifiers; resume → valid again.
    let (st, r) = s.post(&format!("/v1/tenants/acme/credentials/{id}/suspend"), &admin, json!({})).await;
    assert_eq!((st, r["status"].as_str()), (200, Some("suspended")));
    let (_, r) = sigil_verify(&s, &vc).await;
    assert_eq!(codes(&r), vec!["suspended"]);
    let (_, out) = third_party(&s, "credential", &vc, &[]);
    assert_eq!(out["reasons"], json!(["suspended"]), "{out}");
    let (st, r) = s.post(&format!("/v1/tenants/acme/credentials/{id}/resume"), &admin, json!({})).await;
    assert_eq!((st, r["status"].as_str()), (200, Some("active")), "{r}");
    let (st, r) = sigil_verify(&s, &vc).await;
    assert_eq!(st, 200, "{r}");
    assert!(third_party(&s, "credential", &vc, &[]).0);
    // Revoke → "revoked"; it cannot be resumed or suspended afterwards.
    let (st, c) = s.post(&format!("/v1/tenants/acme/credentials/{id}/revoke"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("revoked")), "{c}");
    let (_, r) = sigil_verify(&s, &vc).await;
    assert_eq!(codes(&r), vec!["revoked"], "{r}");
    let (_, out) = third_party(&s, "credential", &vc, &[]);
    assert_eq!(out["reasons"], json!(["revoked"]), "{out}");
    let (st, p) = s.post(&format!("/v1/tenants/acme/credentials/{id}/resume"), &admin, json!({})).await;
    assert_eq!((st, p["code"].as_str()), (409, Some("credential_revoked")));
    let (_, one) = s.get(&format!("/v1/tenants/acme/credentials/{id}"), &admin).await;
    assert_eq!(one["status"], "revoked");
}

#[tokio::test]
async fn not_yet_valid_delegations_fail_with_their_own_reason() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, _, _) = s.agent("acme", &admin, "bot").await;
    let mut body = delegation_body();
    body["valid_from"] = "2098-01-01T00:00:00Z".into();
    let (st, del) = s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, body).await;
    assert_eq!(st, 201);
    let (_, r) = sigil_verify(&s, &del["credential"]).await;
    assert_eq!(codes(&r), vec!["not_yet_valid"]);
    let (_, out) = third_party(&s, "credential", &del["credential"], &[]);
    assert_eq!(out["reasons"], json!(["not_yet_valid"]), "{out}");
    // Evaluated in 2099-06, the same credential is expired (third-party clock override:
    // a verifier ignoring --now would still say not_yet_valid).
    let (_, out) = third_party(&s, "credential", &del["credential"], &["--now", "2099-06-01T00:00:00Z", "--no-status"]);
    assert_eq!(out["reasons"], json!(["expired"]), "{out}");
}

#[tokio::test]
async fn delegation_bodies_are_validated_strictly() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (agent, _, _) = s.agent("acme", &admin, "bot").await;
    let path = format!("/v1/tenants/acme/agents/{agent}/delegations");
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("unknown field", Box::new(|b| b["limts"] = json!({}))),
        ("unknown nested field", Box::new(|b| b["limits"]["amount"]["maximum"] = "1".into())),
        ("bad glob", Box::new(|b| b["resources"] = json!(["orders/["]))),
        ("empty resources", Box::new(|b| b["resources"] = json!([]))),
        ("bad action", Box::new(|b| b["actions"] = json!(["Refunds Create"]))),
        ("bare wildcard", Box::new(|b| b["actions"] = json!(["*"]))),
        ("bad time zone", Box::new(|b| b["schedule"]["timezone"] = "Europe/Atlantis".into())),
        ("bad day", Box::new(|b| b["schedule"]["days"] = json!(["monday"]))),
        ("inverted hours", Box::new(|b| b["schedule"]["from"] = "18:00".into())),
        ("negative amount", Box::new(|b| b["limits"]["amount"]["max"] = "-5.00".into())),
        ("float amount", Box::new(|b| b["limits"]["amount"]["max"] = json!(5.5))),
        ("exponent amount", Box::new(|b| b["limits"]["amount"]["max"] = "5e3".into())),
        ("bad currency", Box::new(|b| b["limits"]["amount"]["currency"] = "euro".into())),
        ("per_day below max", Box::new(|b| b["limits"]["amount"]["per_day"] = "100.00".into())),
        ("bad principal kind", Box::new(|b| b["principal"]["kind"] = "robot".into())),
        ("missing valid_until", Box::new(|b| drop(b.as_object_mut().unwrap().remove("valid_until")))),
        ("past valid_until", Box::new(|b| b["valid_until"] = "2001-01-01T00:00:00Z".into())),
        ("bad time", Box::new(|b| b["valid_until"] = "tomorrow".into())),
    ];
    for (what, edit) in edits {
        let mut b = delegation_body();
        edit(&mut b);
        let (st, p) = s.post(&path, &admin, b).await;
        assert_eq!(st, 400, "{what}: {p}");
        assert_eq!(p["code"], "invalid_request", "{what}");
    }
    let (_, wallet) = s.get(&format!("/v1/tenants/acme/agents/{agent}/credentials"), &admin).await;
    assert_eq!(wallet["items"].as_array().unwrap().len(), 1, "nothing but the identity credential was issued");
}

#[tokio::test]
async fn vc_api_issue_and_verify() {
    let vector: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/vectors/eddsa-jcs-2022.json")).unwrap(),
    )
    .unwrap();
    // The VC-API routes verify only for a trusted issuer: the vector's did:key is one here.
    let trusted = vector["keyPair"]["did"].as_str().unwrap().to_owned();
    let s = Server::start_with(crate::helpers::Opts { args: vec!["--trust-issuer".into(), trusted], ..Default::default() }).await;
    let admin = s.tenant("acme").await;
    let (_, tdoc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let did = tdoc["id"].as_str().unwrap();
    let cred = json!({"@context": ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"],
        "type": ["VerifiableCredential", "ExampleAlumniCredential"], "issuer": did,
        "credentialSubject": {"id": "did:example:ebfeb1f712ebc6f1c276e12ec21", "alumniOf": "Example University"}});
    let (st, r) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": cred, "options": {}})).await;
    assert_eq!(st, 201, "{r}");
    let vc = r["verifiableCredential"].clone();
    assert_eq!(vc["proof"]["cryptosuite"], "eddsa-jcs-2022");
    let (st, v) = sigil_verify(&s, &vc).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(true)), "{v}");
    // Issuer of another tenant → 400 (as the VC-API specifies); malformed → 400; auditor → 403.
    let mut other = cred.clone();
    other["issuer"] = "did:web:example.com".into();
    let (st, _) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": other})).await;
    assert_eq!(st, 400);
    let (st, _) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": "nope"})).await;
    assert_eq!(st, 400);
    // A number RFC 8785 would round: the proof would cover another value than the document.
    let mut big = cred.clone();
    big["credentialSubject"]["studentNumber"] = serde_json::from_str("9007199254740993").unwrap();
    let (st, e) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": big})).await;
    assert_eq!(st, 400, "{e}");
    assert!(e.to_string().contains("credential.credentialSubject.studentNumber"), "{e}");
    let (st, _) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": cred, "options": {"x": 1}})).await;
    assert_eq!(st, 400);
    let (st, _) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"nothing": 1}))).await;
    assert_eq!(st, 400);
    // The W3C eddsa-jcs-2022 vector (a did:key signer) with its issuer re-pointed from the
    // https URL it was signed with to that did:key: signer and issuer now agree, so the
    // signature is the only thing left to catch the edit, and it must. (That the unedited
    // vector's signature verifies is the third-party self-test's and the JCS unit tests'.)
    let mut w3c = vector["signedDocument"].clone();
    w3c["issuer"] = vector["keyPair"]["did"].clone();
    let (st, v) = sigil_verify(&s, &w3c).await;
    assert_eq!((st, codes(&v)), (422, vec!["invalid_signature".to_owned()]), "only the signature may fail: {v}");
    assert_eq!(v["problemDetails"][0]["title"], "proof", "{v}");
    // Unedited, the vector names an https issuer nobody trusts: refused for that, before
    // any key is resolved.
    let (st, v) = sigil_verify(&s, &vector["signedDocument"]).await;
    assert_eq!((st, codes(&v)), (422, vec!["issuer_not_trusted".to_owned(), "proof_not_checked".to_owned()]), "{v}");
    let _ = OPERATOR;
}
