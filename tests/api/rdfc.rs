//! `eddsa-rdfc-2022` over a real server: issuing through the VC-API (per-request option and
//! tenant default), verifying through the VC-API and `/v1/verify` (Sigil's own credentials
//! under the tenant default), VC 1.1 credentials with either cryptosuite, the JSON-LD-level
//! VC 2.0 rules and the offline context loader's refusals.

use serde_json::{Value, json};
use sigil::crypto::Signer;
use sigil::vc::proof::{self, Cryptosuite, ProofOptions};

use crate::helpers::{Opts, Server};
use crate::presentations::{delegation, refund};

const VC2: &str = "https://www.w3.org/ns/credentials/v2";
const EXAMPLES: &str = "https://www.w3.org/ns/credentials/examples/v2";

async fn tenant_did(s: &Server, t: &str) -> String {
    let (_, doc) = s.call("GET", &format!("/tenants/{t}/did.json"), None, None).await;
    doc["id"].as_str().unwrap().to_owned()
}

fn credential(issuer: &str) -> Value {
    json!({
        "@context": [VC2, EXAMPLES],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "AlumniCredential"],
        "name": "Alumni Credential",
        "issuer": issuer,
        "validFrom": "2023-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"}
    })
}

async fn issue(s: &Server, admin: &str, credential: Value, options: Option<Value>) -> (u16, Value) {
    let mut body = json!({"credential": credential});
    if let Some(o) = options {
        body["options"] = o;
    }
    s.post("/tenants/acme/vc-api/credentials/issue", admin, body).await
}

/// `(status, verified, problem codes)` from the VC-API credential verify route.
async fn vc_api_verify(s: &Server, vc: &Value) -> (u16, Option<bool>, Vec<String>) {
    let (st, v) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": vc}))).await;
    let codes = v["problemDetails"]
        .as_array()
        .map(|a| a.iter().map(|p| p["type"].as_str().unwrap_or("?").replace("urn:sigil:problem:", "")).collect())
        .unwrap_or_default();
    (st, v["verified"].as_bool(), codes)
}

#[tokio::test]
async fn rdfc_is_issued_on_request_and_by_tenant_default_and_verifies() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;

    // Per request: options.cryptosuite.
    let (st, r) = issue(&s, &admin, credential(&did), Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!(st, 201, "{r}");
    let vc = r["verifiableCredential"].clone();
    assert_eq!(vc["proof"]["cryptosuite"], "eddsa-rdfc-2022", "{vc}");
    assert!(vc["proof"].get("@context").is_none(), "an rdfc proof is attached without @context: {vc}");
    assert_eq!(vc_api_verify(&s, &vc).await, (200, Some(true), vec![]));
    // Changing what it says fails; so does relabelling the suite.
    let mut t = vc.clone();
    t["credentialSubject"]["alumniOf"] = "The School of Forgery".into();
    assert_eq!(vc_api_verify(&s, &t).await, (422, Some(false), vec!["invalid_signature".to_owned()]));
    let mut t = vc.clone();
    t["proof"]["cryptosuite"] = "eddsa-jcs-2022".into();
    assert_eq!(vc_api_verify(&s, &t).await.1, Some(false));
    // Without the option, the tenant default (JCS until set).
    let (_, r) = issue(&s, &admin, credential(&did), None).await;
    assert_eq!(r["verifiableCredential"]["proof"]["cryptosuite"], "eddsa-jcs-2022");
    let (st, v) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!((st, &v["cryptosuite"]), (200, &json!("eddsa-rdfc-2022")), "{v}");
    assert_eq!(s.get("/v1/tenants/acme/cryptosuite", &admin).await.1["cryptosuite"], "eddsa-rdfc-2022");
    let (_, r) = issue(&s, &admin, credential(&did), None).await;
    let vc = r["verifiableCredential"].clone();
    assert_eq!(vc["proof"]["cryptosuite"], "eddsa-rdfc-2022", "the tenant default applies: {vc}");
    assert_eq!(vc_api_verify(&s, &vc).await, (200, Some(true), vec![]));
    // The request still overrides the default.
    let (_, r) = issue(&s, &admin, credential(&did), Some(json!({"cryptosuite": "eddsa-jcs-2022"}))).await;
    assert_eq!(r["verifiableCredential"]["proof"]["cryptosuite"], "eddsa-jcs-2022");
    // Bad values are 400s.
    let (st, _) = issue(&s, &admin, credential(&did), Some(json!({"cryptosuite": "ecdsa-rdfc-2019"}))).await;
    assert_eq!(st, 400);
    let (st, _) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": "rdfc"}))).await;
    assert_eq!(st, 400);
}

/// Under an rdfc tenant default, Sigil's own credentials (identity, delegation) are
/// rdfc-signed, and the action-bound presentation carrying them verifies on `/v1/verify`.
#[tokio::test]
async fn sigil_credentials_under_rdfc_default_verify_on_v1_verify() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, v) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!(st, 200, "{v}");
    let (agent, token, _) = s.agent("acme", &admin, "refund-bot").await;
    let (st, v) =
        s.post(&format!("/v1/tenants/acme/agents/{agent}/delegations"), &admin, delegation(&["refunds:create"], &["orders/*"])).await;
    assert_eq!(st, 201, "{v}");
    let (st, p) = s.post("/v1/presentations", &token, refund("ch-1")).await;
    assert_eq!(st, 200, "{p}");
    let vp = p["presentation"].clone();
    for c in vp["verifiableCredential"].as_array().unwrap() {
        assert_eq!(c["proof"]["cryptosuite"], "eddsa-rdfc-2022", "{c}");
    }
    let body = json!({"presentation": vp, "challenge": "ch-1", "domain": "payments.example"});
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(true)), "{v}");
    // The CLI verifies it too (the trusted deployment's own context is the bundled one).
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vp.json");
    std::fs::write(&f, serde_json::to_vec(&vp).unwrap()).unwrap();
    let action = r#"{"action":"refunds:create","resource":"orders/123","context":{"amount":"120.00","currency":"EUR"}}"#;
    let out = std::process::Command::new(crate::helpers::bin())
        .arg("verify")
        .arg(&f)
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .args(["--resolver-allow", s.listen(), "--challenge", "ch-1", "--domain", "payments.example", "--action", action])
        .args(["--trust-tenant", &s.url("/tenants/acme")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Each credential alone verifies on the VC-API too.
    let cred = vp["verifiableCredential"][0].clone();
    assert_eq!(vc_api_verify(&s, &cred).await, (200, Some(true), vec![]));
}

/// The JSON-LD-level VC 2.0 rules, and contexts the loader does not serve, on issue.
#[tokio::test]
async fn jsonld_rules_and_unknown_contexts_are_4xx() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    for suite in ["eddsa-jcs-2022", "eddsa-rdfc-2022"] {
        let opts = Some(json!({"cryptosuite": suite}));
        let mut c = credential(&did);
        c["@context"] = json!([VC2, EXAMPLES, {"name": "https://evil.example/name"}]);
        let (st, p) = issue(&s, &admin, c, opts.clone()).await;
        assert_eq!((st, &p["code"]), (400, &json!("invalid_request")), "{suite}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("protected term") && p["detail"].as_str().unwrap().contains("§4.3"), "{p}");

        let mut c = credential(&did);
        c["type"] = json!(["VerifiableCredential", "_:notAUrl"]);
        let (st, p) = issue(&s, &admin, c, opts.clone()).await;
        assert_eq!(st, 400, "{suite}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("4.5 Types"), "{p}");
        let mut c = credential(&did);
        c["@context"] = json!([VC2, {"@vocab": null}]);
        c["type"] = json!(["VerifiableCredential", "AlumniCredential"]);
        let (st, p) = issue(&s, &admin, c, opts.clone()).await;
        assert_eq!(st, 400, "{suite}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("AlumniCredential"), "{p}");

        let mut c = credential(&did);
        c["@context"] = json!([VC2, EXAMPLES, 42]);
        let (st, p) = issue(&s, &admin, c, opts.clone()).await;
        assert_eq!(st, 400, "{suite}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("4.3 Contexts"), "{p}");

        let mut c = credential(&did);
        c["@context"] = json!([VC2, "https://contexts.example/unknown/v1"]);
        let (st, p) = issue(&s, &admin, c, opts.clone()).await;
        assert_eq!((st, &p["code"]), (400, &json!("unknown_context")), "{suite}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("https://contexts.example/unknown/v1"), "{p}");
    }
}

/// A credential signed elsewhere with `did:key`, as a VC 1.1 credential
/// (`https://www.w3.org/2018/credentials/v1`, `issuanceDate`/`expirationDate`) with a
/// DataIntegrityProof of either cryptosuite, verifies on the VC-API route; tampered, it
/// does not; naming a context Sigil does not have, it fails for that reason.
#[tokio::test]
async fn vc_1_1_credentials_verify_with_either_cryptosuite() {
    let signer = Signer::generate();
    let mk = sigil::vc::multikey::encode(&signer.public());
    let did = format!("did:key:{mk}");
    // The VC-API routes verify only for a trusted issuer: this one is.
    let s = Server::start_with(crate::helpers::Opts { args: vec!["--trust-issuer".into(), did.clone()], ..Default::default() }).await;
    s.tenant("acme").await;
    let v1 = |ctx2: &str| {
        json!({
            "@context": ["https://www.w3.org/2018/credentials/v1", ctx2],
            "id": "urn:uuid:11111111-2222-3333-4444-555555555555",
            "type": ["VerifiableCredential"],
            "issuer": did,
            "issuanceDate": "2023-01-01T00:00:00Z",
            "expirationDate": "2099-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:abcdefgh"}
        })
    };
    for suite in [Cryptosuite::EddsaRdfc2022, Cryptosuite::EddsaJcs2022] {
        let opts = ProofOptions {
            cryptosuite: suite,
            verification_method: format!("{did}#{mk}"),
            proof_purpose: "assertionMethod",
            created: "2023-02-24T23:36:38Z".into(),
            expires: None,
            challenge: None,
            domain: None,
        };
        let doc = v1("https://w3id.org/security/data-integrity/v2");
        let vc = proof::sign(doc.as_object().unwrap().clone(), &opts, &signer).unwrap();
        assert_eq!(vc_api_verify(&s, &vc).await, (200, Some(true), vec![]), "{suite:?}: {vc}");
        let mut t = vc.clone();
        t["credentialSubject"]["id"] = "did:example:mallory".into();
        assert_eq!(vc_api_verify(&s, &t).await.1, Some(false), "{suite:?}");
        // Expired by expirationDate (the VC 1.1 name).
        let mut d = doc.clone();
        d["expirationDate"] = "2024-01-01T00:00:00Z".into();
        let vc = proof::sign(d.as_object().unwrap().clone(), &opts, &signer).unwrap();
        assert_eq!(vc_api_verify(&s, &vc).await, (422, Some(false), vec!["expired".to_owned()]), "{suite:?}");
    }
    // rdfc needs every context: one Sigil does not serve is refused by name.
    let doc = v1("https://contexts.example/unknown/v1");
    let signed = json!({"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "created": "2023-02-24T23:36:38Z",
        "verificationMethod": format!("{did}#{mk}"), "proofPurpose": "assertionMethod", "proofValue": format!("z{}", "1".repeat(64))});
    let mut vc = doc;
    vc["proof"] = signed;
    let (st, verified, codes) = vc_api_verify(&s, &vc).await;
    assert_eq!((st, verified), (422, Some(false)));
    assert!(codes.contains(&"unknown_context".to_owned()) || codes.contains(&"malformed_proof".to_owned()), "{codes:?}");
}

/// An operator context file (`--jsonld-context URL=PATH`) is served to the pipeline.
#[tokio::test]
async fn configured_context_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ctx.jsonld");
    std::fs::write(&f, r#"{"@context": {"@protected": true, "degree": "https://contexts.example/vocab#degree"}}"#).unwrap();
    let mut o = Opts::default();
    o.args.push("--jsonld-context".into());
    o.args.push(format!("https://contexts.example/custom/v1={}", f.display()));
    let s = Server::start_with(o).await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    let mut c = credential(&did);
    c["@context"] = json!([VC2, EXAMPLES, "https://contexts.example/custom/v1"]);
    c["credentialSubject"]["degree"] = "BSc".into();
    let (st, r) = issue(&s, &admin, c, Some(json!({"cryptosuite": "eddsa-rdfc-2022"}))).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(vc_api_verify(&s, &r["verifiableCredential"]).await, (200, Some(true), vec![]));
}
