//! The W3C VC-API routes against the W3C specifications: the VC Data Model 2.0 rules on
//! issue, and the same date rules on verify.

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
    // Another tenant's issuer is well-formed but not this tenant: 422, as before.
    let mut other = ok.clone();
    other["issuer"] = json!("did:web:example.com");
    assert_eq!(issue(&s, &admin, other, None).await.0, 422);
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
