//! Sigil's VC-JOSE-COSE output checked outside Sigil: the `jwt_vp` presentation and the
//! `vc+jwt` credentials enveloped in it, verified with panva's `jose` library
//! (`tests/interop/jose-verify.mjs`) against the DID documents Sigil serves over HTTPS.
//! Sigil's own JOSE module signs and verifies with the same code, so only this shows that
//! its JWTs are what a standard JOSE library accepts.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::Server;
use crate::presentations::{delegation, edit_payload, flip_signature_byte, jwt_vp, setup};

/// Runs `tests/interop/jose-verify.mjs --kind presentation` on `jws`, resolving did:web
/// over HTTPS with the server's dev CA, and returns `(verified, report)`. Only a verdict
/// comes back: "could not check" (exit 3) and usage errors (exit 2) fail the test here.
fn jose_verify(s: &Server, jws: &str, extra: &[&str]) -> (bool, Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/interop/node_modules/jose").exists(),
        "tests/interop/node_modules/jose is missing: run scripts/test (it runs `npm ci` there)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vp.jwt");
    std::fs::write(&file, jws).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/interop/jose-verify.mjs"))
        .args(["--kind", "presentation"])
        .arg(&file)
        .arg("--ca")
        .arg(s.data.join("tls/ca.pem"))
        .args(extra)
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(stdout.trim().lines().next_back().unwrap_or_default())
        .unwrap_or_else(|e| panic!("jose-verify.mjs printed no JSON report ({e}): {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let verdict = match (out.status.code(), report["outcome"].as_str()) {
        (Some(0), Some("verified")) => true,
        (Some(1), Some("rejected")) => false,
        (code, _) => panic!("jose-verify.mjs gave no verdict (exit {code:?}): {report}"),
    };
    assert_eq!(report["reasons"].as_array().map(Vec::is_empty), Some(verdict), "{report}");
    (verdict, report)
}

/// `(part, verified)` of every JWS the report says it checked.
fn parts(report: &Value) -> Vec<(&str, bool)> {
    report["jws"].as_array().unwrap().iter().map(|j| (j["part"].as_str().unwrap(), j["verified"] == true)).collect()
}

#[tokio::test]
async fn jwt_vp_and_its_credentials_verify_with_an_independent_jose_library() {
    let s = Server::start().await;
    let (_, agent, token) = setup(&s, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let (_, tdoc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let (_, adoc) = s.call("GET", &format!("/tenants/acme/agents/{agent}/did.json"), None, None).await;
    let (tenant_did, agent_did) = (tdoc["id"].as_str().unwrap(), adoc["id"].as_str().unwrap());
    let jws = jwt_vp(&s, &token, "jose-1").await;
    let bound = ["--nonce", "jose-1", "--aud", "payments.example"];
    // Every signature verifies with `jose`, with the keys Sigil's DID documents publish,
    // and the headers follow VC-JOSE-COSE: the holder's authentication key on the vp+jwt,
    // the issuer's assertion key on each vc+jwt.
    let (ok, out) = jose_verify(&s, &jws, &bound);
    assert!(ok, "jose rejected Sigil's jwt_vp: {out}");
    let header = |part: &str, typ: &str, kid: String| json!({"part": part, "alg": "EdDSA", "typ": typ, "cty": &typ[..2], "kid": kid, "verified": true});
    let issuer_kid = format!("{tenant_did}#issuer-1");
    assert_eq!(
        out["jws"],
        json!([
            header("presentation", "vp+jwt", format!("{agent_did}#key-1")),
            header("credential[0]", "vc+jwt", issuer_kid.clone()),
            header("credential[1]", "vc+jwt", issuer_kid),
        ]),
        "{out}"
    );
    // One byte of the presentation's signature changed: jose refuses that signature, and
    // only that one (the enveloped credentials are untouched).
    let (ok, out) = jose_verify(&s, &flip_signature_byte(&jws), &bound);
    assert!(!ok);
    assert_eq!(out["reasons"], json!(["invalid_signature"]), "{out}");
    assert_eq!(parts(&out), [("presentation", false), ("credential[0]", true), ("credential[1]", true)]);
    // One byte of an enveloped credential's signature changed (inside the presentation's
    // payload, so the presentation's signature breaks too): jose refuses both, each on its own.
    let tampered = edit_payload(&jws, |p| {
        let vc_jwt = p["verifiableCredential"][1]["id"].as_str().unwrap().strip_prefix("data:application/vc+jwt,").unwrap();
        p["verifiableCredential"][1]["id"] = format!("data:application/vc+jwt,{}", flip_signature_byte(vc_jwt)).into();
    });
    let (ok, out) = jose_verify(&s, &tampered, &bound);
    assert!(!ok);
    assert_eq!(out["reasons"], json!(["invalid_signature", "credential[1].invalid_signature"]), "{out}");
    assert_eq!(parts(&out), [("presentation", false), ("credential[0]", true), ("credential[1]", false)]);
    // Bound to its nonce and audience.
    let (_, out) = jose_verify(&s, &jws, &["--nonce", "jose-2", "--aud", "payments.example"]);
    assert_eq!(out["reasons"], json!(["nonce_mismatch"]), "{out}");
    let (_, out) = jose_verify(&s, &jws, &["--nonce", "jose-1", "--aud", "evil.example"]);
    assert_eq!(out["reasons"], json!(["aud_mismatch"]), "{out}");
}
