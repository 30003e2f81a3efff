//! The W3C VC-API routes against the W3C specifications: the VC Data Model 2.0 rules on
//! issue (and the same date rules on verify), status through the VC-API (Bitstring Status
//! List entries, the status update route, Sigil's own credential routes, and the
//! independent verifier seeing a revocation), and generic presentations on the VC-API
//! presentation route, forged by independent tooling (`tests/interop/forge.mjs`).

use serde_json::{Value, json};

use crate::credentials::third_party;
use crate::helpers::Server;

const VC2: &str = "https://www.w3.org/ns/credentials/v2";

async fn tenant_did(s: &Server, t: &str) -> String {
    let (_, doc) = s.call("GET", &format!("/tenants/{t}/did.json"), None, None).await;
    doc["id"].as_str().unwrap().to_owned()
}

/// An unsigned credential from `issuer` that meets the data model, using every optional
/// part VC 2.0 defines and only terms of the base context (so the independent verifier's
/// JSON-LD safe mode accepts it).
fn full_credential(issuer: &str) -> Value {
    json!({
        "@context": [VC2],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "https://example.org/vocab#AlumniCredential"],
        "name": [{"@value": "Alumni credential", "@language": "en"}, {"@value": "Diplôme", "@language": "fr"}],
        "description": {"@value": "Says who studied here", "@language": "en", "@direction": "ltr"},
        "issuer": {"id": issuer, "name": "Example University", "description": [{"@value": "A university", "@language": "en"}]},
        "validFrom": "2023-02-25T19:16:31-06:00",
        "validUntil": "2099-01-01T00:00:00Z",
        "credentialSubject": [{"id": "did:example:ebfeb1f712ebc6f1c276e12ec21", "name": "Jayden Doe"}, {"name": "Morgan Doe"}],
        "relatedResource": [{"id": "https://example.org/logo.png", "digestMultibase": "uEiBZlVztZpfWHgPyslVv6-UwirFoQoRvW1htfx963sknNA"}],
    })
}

/// `(status, problem)` of an issue request.
async fn issue(s: &Server, admin: &str, credential: Value, options: Option<Value>) -> (u16, Value) {
    let mut body = json!({"credential": credential});
    if let Some(o) = options {
        body["options"] = o;
    }
    s.post("/tenants/acme/vc-api/credentials/issue", admin, body).await
}

/// Every class of credential the VC Data Model 2.0 forbids gets a 400 problem+json whose
/// detail names the rule's section; nothing of it is signed.
#[tokio::test]
async fn vc_api_issue_refuses_what_the_data_model_forbids() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    let ok = full_credential(&did);
    let (st, r) = issue(&s, &admin, ok.clone(), None).await;
    assert_eq!(st, 201, "a conformant credential is issued: {r}");
    let vc = r["verifiableCredential"].clone();
    let (st, v) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": vc}))).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(true)), "{v}");
    let (ok_third, out) = third_party(&s, "credential", &vc, &[]);
    assert!(ok_third, "the independent verifier rejected a credential Sigil found conformant: {out}");

    type Edit = fn(&mut Value);
    let forbidden: Vec<(&str, &str, Edit)> = vec![
        ("null id", "4.4 Identifiers", |c| c["id"] = Value::Null),
        ("array id", "4.4 Identifiers", |c| c["id"] = json!(["urn:uuid:1", "urn:uuid:2"])),
        ("plain-string id", "4.4 Identifiers", |c| c["id"] = json!("credential-3732")),
        ("credentialStatus without type", "4.10 Status", |c| c["credentialStatus"] = json!({"id": "https://x.example/s#1"})),
        ("two credentialStatus entries with one id", "4.10 Status", |c| {
            let e = json!({"id": "https://x.example/s#1", "type": "BitstringStatusListEntry"});
            c["credentialStatus"] = json!([e, e]);
        }),
        ("termsOfUse without type", "5.5 Terms of Use", |c| c["termsOfUse"] = json!({"id": "https://x.example/terms"})),
        ("evidence without type", "5.6 Evidence", |c| c["evidence"] = json!([{"id": "https://x.example/evidence/1"}])),
        ("refreshService without type", "5.4 Refreshing", |c| c["refreshService"] = json!({"url": "https://x.example/refresh"})),
        ("credentialSchema without type", "4.11 Data Schemas", |c| c["credentialSchema"] = json!({"id": "https://x.example/s.json"})),
        ("name that is a number", "4.6 Names and Descriptions", |c| c["name"] = json!(42)),
        ("description with a key a language value may not have", "4.6 Names and Descriptions", |c| {
            c["description"] = json!({"@value": "x", "@language": "en", "@type": "xsd:string"})
        }),
        ("issuer name that is not a string or language value", "4.6 Names and Descriptions", |c| {
            c["issuer"]["name"] = json!({"en": "Example University"})
        }),
        ("issuer description that is a number", "4.6 Names and Descriptions", |c| c["issuer"]["description"] = json!(7)),
        ("empty credentialSubject", "4.8 Credential Subject", |c| c["credentialSubject"] = json!({})),
        ("an empty subject among others", "4.8 Credential Subject", |c| c["credentialSubject"] = json!([{"id": "did:example:1"}, {}])),
        ("relatedResource that is a string", "5.3 Integrity of Related Resources", |c| {
            c["relatedResource"] = json!(["https://example.org/logo.png"])
        }),
        ("relatedResource without id", "5.3 Integrity of Related Resources", |c| {
            c["relatedResource"] = json!([{"digestMultibase": "uEiBZlVztZpfWHgPyslVv6"}])
        }),
        ("relatedResource ids repeated", "5.3 Integrity of Related Resources", |c| {
            let r = json!({"id": "https://example.org/logo.png", "digestMultibase": "uEiBZlVztZpfWHgPyslVv6"});
            c["relatedResource"] = json!([r, r]);
        }),
        ("relatedResource without a digest", "5.3 Integrity of Related Resources", |c| {
            c["relatedResource"] = json!([{"id": "https://example.org/logo.png", "mediaType": "image/png"}])
        }),
        ("validFrom not a dateTimeStamp", "4.9 Validity Period", |c| c["validFrom"] = json!("Sat 25 Feb 2023 07:16:31 PM CST")),
        ("validUntil without a time zone", "4.9 Validity Period", |c| c["validUntil"] = json!("2099-01-01T00:00:00")),
        ("validFrom after validUntil", "4.9 Validity Period", |c| c["validFrom"] = json!("2100-01-01T00:00:00Z")),
    ];
    for (what, section, edit) in forbidden {
        let mut c = ok.clone();
        edit(&mut c);
        let (st, p) = issue(&s, &admin, c, None).await;
        assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{what}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("VC Data Model 2.0 §{section}")), "{what}: the detail names no rule: {detail}");
    }
    // Another tenant's issuer: 400, as the VC-API says of an issuer that does not match.
    let mut other = ok.clone();
    other["issuer"] = json!("did:web:example.com");
    let (st, p) = issue(&s, &admin, other, None).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("issuer must be this tenant"), "{p}");
}

/// The date rule is the same on both sides: what issue refuses, Sigil's verify refuses on
/// its own check (not only because the edit broke the signature). The second value is one
/// a lenient RFC 3339 reader takes (a space for the `T`), but no dateTimeStamp is.
#[tokio::test]
async fn issue_and_verify_agree_on_dates() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    let (_, r) = issue(&s, &admin, full_credential(&did), None).await;
    for date in ["Sat 25 Feb 2023 07:16:31 PM CST", "2023-02-25 19:16:31Z"] {
        let mut c = full_credential(&did);
        c["validFrom"] = json!(date);
        let (st, p) = issue(&s, &admin, c, None).await;
        assert_eq!(st, 400, "{date}: {p}");
        let mut vc = r["verifiableCredential"].clone();
        vc["validFrom"] = json!(date);
        let (st, v) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": vc}))).await;
        assert_eq!(st, 422, "{v}");
        let valid_from = v["problemDetails"].as_array().unwrap().iter().find(|p| p["title"] == "valid_from").cloned();
        let valid_from = valid_from.unwrap_or_else(|| panic!("{date}: verify did not refuse the date itself: {v}"));
        assert_eq!(valid_from["type"], "urn:sigil:problem:malformed_credential", "{v}");
        assert!(valid_from["detail"].as_str().unwrap().contains("dateTimeStamp"), "{v}");
    }
}

async fn update_status(s: &Server, admin: &str, id: &str, purpose: &str, status: bool) -> (u16, Value) {
    let body =
        json!({"credentialId": id, "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": purpose}, "status": status});
    s.post("/tenants/acme/vc-api/credentials/status", admin, body).await
}

async fn sigil_verify(s: &Server, vc: &Value) -> (u16, Vec<String>) {
    let (st, v) = s.call("POST", "/tenants/acme/vc-api/credentials/verify", None, Some(json!({"verifiableCredential": vc}))).await;
    let codes = v["problemDetails"]
        .as_array()
        .map(|a| a.iter().map(|p| p["type"].as_str().unwrap().replace("urn:sigil:problem:", "")).collect())
        .unwrap_or_default();
    (st, codes)
}

/// A credential issued with status through the VC-API is stored; its status changes
/// through the VC-API status route and Sigil's own routes; once revoked, Sigil's verify
/// and the independent verifier both refuse it for that reason.
#[tokio::test]
async fn vc_api_status_is_issued_changed_and_seen_by_every_verifier() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    let id = "urn:uuid:6a7c1e0e-1b7b-4b8e-9d3c-2f0f1e0c6a11";
    let mut cred = full_credential(&did);
    cred["id"] = json!(id);
    let options = json!({"credentialStatus": [
        {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"},
        {"type": "BitstringStatusListEntry", "statusPurpose": "suspension"}]});
    let resp = s
        .client
        .post(s.url("/tenants/acme/vc-api/credentials/issue"))
        .bearer_auth(&admin)
        .json(&json!({"credential": cred, "options": options}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers().get("location").expect("a stored credential is named in Location").to_str().unwrap().to_owned();
    let vc = resp.json::<Value>().await.unwrap()["verifiableCredential"].clone();
    let entries = vc["credentialStatus"].as_array().unwrap();
    let purposes: Vec<&str> = entries.iter().map(|e| e["statusPurpose"].as_str().unwrap()).collect();
    assert_eq!(purposes, ["revocation", "suspension"]);
    assert!(
        entries.iter().all(|e| e["type"] == "BitstringStatusListEntry" && e["statusListCredential"].as_str().unwrap().starts_with(&s.base))
    );
    // Stored like Sigil's own credentials, with no agent.
    assert!(location.starts_with("/v1/tenants/acme/credentials/"), "{location}");
    let (st, one) = s.get(&location, &admin).await;
    assert_eq!(st, 200, "{one}");
    assert_eq!((one["kind"].as_str(), one["agent_id"].clone(), one["status"].as_str()), (Some("issued"), Value::Null, Some("active")));
    assert_eq!(one["credential"], vc);
    assert_eq!(sigil_verify(&s, &vc).await, (200, vec![]));
    assert!(third_party(&s, "credential", &vc, &[]).0);

    // Sigil's own route suspends it; the VC-API status route resumes it.
    let (st, c) = s.post(&format!("{location}/suspend"), &admin, json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("suspended")), "{c}");
    assert_eq!(sigil_verify(&s, &vc).await, (422, vec!["suspended".to_owned()]));
    let (_, out) = third_party(&s, "credential", &vc, &[]);
    assert_eq!(out["reasons"], json!(["suspended"]), "{out}");
    let (st, u) = update_status(&s, &admin, id, "suspension", false).await;
    assert_eq!((st, u["status"].as_bool()), (200, Some(false)), "{u}");
    assert_eq!(u["credentialStatus"], entries[1]);
    assert_eq!(sigil_verify(&s, &vc).await, (200, vec![]));

    // Revoked through the VC-API status route: refused by Sigil and by the independent
    // verifier, for that reason.
    let (st, u) = update_status(&s, &admin, id, "revocation", true).await;
    assert_eq!((st, u["status"].as_bool(), u["credentialId"].as_str()), (200, Some(true), Some(id)), "{u}");
    assert_eq!(sigil_verify(&s, &vc).await, (422, vec!["revoked".to_owned()]));
    let (ok, out) = third_party(&s, "credential", &vc, &[]);
    assert!(!ok);
    assert_eq!(out["reasons"], json!(["revoked"]), "{out}");
    assert_eq!(s.get(&location, &admin).await.1["status"], "revoked");
    // Revocation is permanent, on either route.
    for (purpose, status) in [("revocation", false), ("suspension", true), ("suspension", false)] {
        let (st, p) = update_status(&s, &admin, id, purpose, status).await;
        assert_eq!((st, p["code"].as_str()), (409, Some("credential_revoked")), "{purpose} {status}: {p}");
    }
    assert_eq!(s.post(&format!("{location}/resume"), &admin, json!({})).await.0, 409);
    // Setting it again is no change.
    assert_eq!(update_status(&s, &admin, id, "revocation", true).await.0, 200);
}

/// The requests around status that cannot be honoured are refused with their reason.
#[tokio::test]
async fn vc_api_status_requests_are_checked() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let did = tenant_did(&s, "acme").await;
    let revocation_only = json!({"credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}});
    let mut cred = full_credential(&did);
    cred["id"] = json!("https://example.org/credentials/1");
    let (st, r) = issue(&s, &admin, cred.clone(), Some(revocation_only.clone())).await;
    assert_eq!(st, 201, "{r}");
    let vc = r["verifiableCredential"].clone();
    assert_eq!(vc["credentialStatus"].as_array().unwrap().len(), 1);
    // One id, one stored credential.
    let (st, p) = issue(&s, &admin, cred.clone(), Some(revocation_only.clone())).await;
    assert_eq!((st, p["code"].as_str()), (409, Some("credential_exists")), "{p}");
    // A credential with status needs an id to be named by; options must be understood.
    let mut anonymous = cred.clone();
    anonymous.as_object_mut().unwrap().remove("id");
    let (st, p) = issue(&s, &admin, anonymous.clone(), Some(revocation_only.clone())).await;
    assert_eq!(st, 400, "{p}");
    let with_id = json!({"credentialId": "urn:uuid:0c07c1ce-57cb-41af-bef2-1b932b986873",
        "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "suspension"}});
    let (st, r) = issue(&s, &admin, anonymous, Some(with_id)).await;
    assert_eq!(st, 201, "options.credentialId names it: {r}");
    assert_eq!(r["verifiableCredential"]["id"], "urn:uuid:0c07c1ce-57cb-41af-bef2-1b932b986873");
    for bad in [
        json!({"credentialStatus": {"type": "StatusList2021Entry", "statusPurpose": "revocation"}}),
        json!({"credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "message"}}),
        json!({"credentialStatus": [{"type": "BitstringStatusListEntry", "statusPurpose": "revocation"},
            {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}]}),
        json!({"credentialStatus": []}),
        json!({"mandatoryPointers": ["/issuer"]}),
    ] {
        let mut c = cred.clone();
        c["id"] = json!("urn:uuid:ffffffff-57cb-41af-bef2-1b932b986873");
        let (st, p) = issue(&s, &admin, c, Some(bad.clone())).await;
        assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{bad}: {p}");
    }
    let mut own_status = cred.clone();
    own_status["id"] = json!("urn:uuid:eeeeeeee-57cb-41af-bef2-1b932b986873");
    own_status["credentialStatus"] = json!({"id": "https://x.example/s#1", "type": "BitstringStatusListEntry"});
    assert_eq!(issue(&s, &admin, own_status, Some(revocation_only)).await.0, 400);

    // The status route: an entry the credential lacks, an unknown credential, a wrong
    // entry, an unknown field.
    let id = "https://example.org/credentials/1";
    let (st, p) = update_status(&s, &admin, id, "suspension", true).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("no_status_entry")), "{p}");
    let (st, p) = update_status(&s, &admin, "https://example.org/credentials/2", "revocation", true).await;
    assert_eq!((st, p["code"].as_str()), (404, Some("credential_not_found")), "{p}");
    let (st, p) = update_status(&s, &admin, id, "refresh", true).await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_request")), "{p}");
    let wrong_index = json!({"credentialId": id, "status": true, "credentialStatus": {"type": "BitstringStatusListEntry",
        "statusPurpose": "revocation", "statusListIndex": "131072", "statusListCredential": vc["credentialStatus"][0]["statusListCredential"]}});
    let (st, p) = s.post("/tenants/acme/vc-api/credentials/status", &admin, wrong_index).await;
    assert_eq!(st, 400, "{p}");
    let unknown = json!({"credentialId": id, "status": true, "indexAllocator": "x",
        "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"}});
    assert_eq!(s.post("/tenants/acme/vc-api/credentials/status", &admin, unknown).await.0, 400);
    // None of that revoked it; the entry as issued does.
    assert_eq!(sigil_verify(&s, &vc).await, (200, vec![]));
    let exact = json!({"credentialId": id, "status": true, "credentialStatus": vc["credentialStatus"][0]});
    let (st, u) = s.post("/tenants/acme/vc-api/credentials/status", &admin, exact).await;
    assert_eq!((st, u["status"].as_bool()), (200, Some(true)), "{u}");
    assert_eq!(sigil_verify(&s, &vc).await, (422, vec!["revoked".to_owned()]));
    // A credential issued without status is not stored: nothing to change.
    let (st, _) = issue(&s, &admin, full_credential(&did), None).await;
    assert_eq!(st, 201);
    let (st, _) = update_status(&s, &admin, "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33", "revocation", true).await;
    assert_eq!(st, 404);
}

/// A presentation forged with the independent tooling, ordinary VC 2.0 (no Sigil terms).
fn forge_generic(challenge: &str, extra: &[&str]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .arg(root.join("tests/interop/forge.mjs"))
        .args(["--generic", "--challenge", challenge, "--domain", "verifier.example"])
        .args(extra)
        .output()
        .expect("node must be installed (scripts/test installs tests/interop)");
    assert!(out.status.success(), "forge.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn vc_api_verify_vp(s: &Server, vp: &Value, options: Value) -> (u16, Vec<String>) {
    let (st, v) = s
        .call("POST", "/tenants/acme/vc-api/presentations/verify", None, Some(json!({"verifiablePresentation": vp, "options": options})))
        .await;
    let codes = v["problemDetails"]
        .as_array()
        .map(|a| a.iter().map(|p| p["type"].as_str().unwrap().replace("urn:sigil:problem:", "")).collect())
        .unwrap_or_default();
    if st == 200 {
        assert_eq!(v["verified"], true, "{v}");
    }
    (st, codes)
}

/// The VC-API presentation route verifies an ordinary VC 2.0 presentation: credentials
/// about someone other than the holder, no proof expiry, no action; challenge and domain
/// as the request asks; the holder, when named, must have made the proof. `/v1/verify`
/// keeps Sigil's action-bound rules for the very same presentation.
#[tokio::test]
async fn vc_api_verifies_generic_presentations() {
    let seed = "66".repeat(32);
    let probe = forge_generic("probe", &["--issuer-seed", &seed]);
    let issuer = probe["issuer"].as_str().unwrap().to_owned();
    let s = Server::start_with(crate::helpers::Opts { args: vec!["--trust-issuer".into(), issuer], ..Default::default() }).await;
    s.tenant("acme").await;
    let f = forge_generic("g-1", &["--issuer-seed", &seed]);
    let vp = f["presentation"].clone();
    assert_ne!(f["subject"], f["holder"], "the credential is about someone else");
    assert!(vp["proof"].get("expires").is_none() && vp.get("action").is_none());
    // The independent verifier accepts it.
    let (ok, out) = third_party(&s, "presentation", &vp, &["--challenge", "g-1", "--domain", "verifier.example"]);
    assert!(ok, "{out}");
    // Wrong challenge or domain: refused for that, and the challenge is not spent.
    assert_eq!(vc_api_verify_vp(&s, &vp, json!({"challenge": "g-2"})).await, (422, vec!["challenge_mismatch".to_owned()]));
    let wrong_domain = json!({"challenge": "g-1", "domain": "elsewhere.example"});
    assert_eq!(vc_api_verify_vp(&s, &vp, wrong_domain).await, (422, vec!["domain_mismatch".to_owned()]));
    // As asked: verified, then spent.
    let asked = json!({"challenge": "g-1", "domain": "verifier.example"});
    assert_eq!(vc_api_verify_vp(&s, &vp, asked.clone()).await, (200, vec![]));
    assert_eq!(vc_api_verify_vp(&s, &vp, asked).await, (422, vec!["replayed".to_owned()]));
    // Asking for nothing checks the proofs only.
    let g = forge_generic("g-3", &["--issuer-seed", &seed]);
    assert_eq!(vc_api_verify_vp(&s, &g["presentation"], json!({})).await, (200, vec![]));
    // No holder named: the proof's key is the holder, and it verifies.
    let n = forge_generic("g-4", &["--issuer-seed", &seed, "--no-holder"]);
    assert!(n["presentation"].get("holder").is_none());
    assert_eq!(vc_api_verify_vp(&s, &n["presentation"], json!({"challenge": "g-4"})).await, (200, vec![]));
    // A named holder that did not make the proof: refused before its DID is resolved.
    let mut other = forge_generic("g-5", &["--issuer-seed", &seed]);
    other["presentation"]["holder"] = probe["holder"].clone();
    assert_eq!(vc_api_verify_vp(&s, &other["presentation"], json!({})).await, (422, vec!["holder_mismatch".to_owned()]));
    // An expiry, when the proof has one, still counts.
    let e = forge_generic("g-6", &["--issuer-seed", &seed, "--expires-in", "120"]);
    assert_eq!(vc_api_verify_vp(&s, &e["presentation"], json!({"challenge": "g-6"})).await, (200, vec![]));
    // Options the route does not implement are refused, as the VC-API requires.
    let (st, _) = s
        .call(
            "POST",
            "/tenants/acme/vc-api/presentations/verify",
            None,
            Some(json!({"verifiablePresentation": vp, "options": {"checks": ["proof"]}})),
        )
        .await;
    assert_eq!(st, 400);

    // Sigil's own route keeps its action-bound rules, though it trusts this issuer.
    let fresh = forge_generic("g-7", &["--issuer-seed", &seed]);
    let body = json!({"presentation": fresh["presentation"], "challenge": "g-7", "domain": "verifier.example"});
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!((st, v["verified"].as_bool()), (200, Some(false)), "{v}");
    let failed: Vec<&str> =
        v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(failed, ["subject_mismatch", "proof_not_checked"], "{v}");
    // About the holder, it still lacks what Sigil asks: an expiry and an action.
    let own = forge_generic("g-8", &["--issuer-seed", &seed, "--holder-seed", &"77".repeat(32), "--subject", "did:key:placeholder"]);
    let mut about_holder =
        forge_generic("g-8", &["--issuer-seed", &seed, "--holder-seed", &"77".repeat(32), "--subject", own["holder"].as_str().unwrap()]);
    let body = json!({"presentation": about_holder["presentation"].take(), "challenge": "g-8", "domain": "verifier.example"});
    let (_, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    let failed: Vec<&str> =
        v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(failed, ["proof_expired", "malformed_presentation"], "{v}");
}
