//! Interop both ways, with independent implementations (Digital Bazaar's libraries, in
//! `tests/interop`): credentials and presentations that *they* sign, with either eddsa
//! cryptosuite and `did:key` or `did:web` issuers and holders (did:web documents hosted by
//! a test HTTPS host that Sigil reaches through its egress allow-list), verify in Sigil
//! when the issuer is trusted and are refused when tampered or untrusted; credentials
//! Sigil issues verify in the independent verifier, status included.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::credentials::third_party;
use crate::helpers::{Opts, Server};

const VC2: &str = "https://www.w3.org/ns/credentials/v2";
const JCS: &str = "eddsa-jcs-2022";
const RDFC: &str = "eddsa-rdfc-2022";

/// An HTTPS host on 127.0.0.1 serving `did.json` documents for did:web DIDs, with a
/// certificate from its own throw-away CA (Sigil trusts it through `--resolver-ca`). It
/// counts the requests for each path, so a test can tell what Sigil fetched.
pub struct DidHost {
    pub port: u16,
    /// The CA certificate (PEM) of the host's certificate.
    pub ca: PathBuf,
    docs: Arc<Mutex<HashMap<String, Value>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    _dir: tempfile::TempDir,
}

impl DidHost {
    pub fn start() -> DidHost {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "did:web test host CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("did-host-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let certs = vec![CertificateDer::from(leaf.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let docs: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (d, h) = (docs.clone(), hits.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, docs, hits) = (config.clone(), d.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let doc = docs.lock().unwrap().get(&path).cloned();
                    let (status, body) = match doc {
                        Some(d) => ("200 OK", serde_json::to_vec(&d).unwrap()),
                        None => ("404 Not Found", Vec::new()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/did+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).and_then(|_| tls.write_all(&body)).and_then(|_| tls.flush());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        DidHost { port, ca: ca_file, docs, hits, _dir: dir }
    }

    /// `did:web:127.0.0.1%3A{port}:{path}` (`path` like `issuers:a`).
    pub fn did(&self, path: &str) -> String {
        format!("did:web:127.0.0.1%3A{}:{path}", self.port)
    }

    /// The URL path a did:web DID of this host is fetched from.
    fn path_of(&self, did: &str) -> String {
        let rest = did.strip_prefix(&format!("did:web:127.0.0.1%3A{}:", self.port)).unwrap_or_else(|| panic!("{did} is not on this host"));
        format!("/{}/did.json", rest.replace(':', "/"))
    }

    /// Serves `doc` as the DID document of `did`.
    pub fn serve(&self, did: &str, doc: Value) {
        self.docs.lock().unwrap().insert(self.path_of(did), doc);
    }

    /// How many times the DID document of `did` was asked for.
    pub fn hits(&self, did: &str) -> usize {
        self.hits.lock().unwrap().get(&self.path_of(did)).copied().unwrap_or(0)
    }

    /// Sigil's options to reach this host: the egress allow-list and the host's CA.
    pub fn sigil_args(&self) -> Vec<String> {
        vec!["--resolver-allow".into(), format!("127.0.0.1:{}", self.port), "--resolver-ca".into(), self.ca.display().to_string()]
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Runs a `tests/interop` script and parses its one JSON line (exit 0 required).
fn node(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new("node")
        .arg(interop_dir().join(script))
        .args(args)
        .output()
        .expect("node must be installed (scripts/test installs tests/interop)");
    assert!(out.status.success(), "{script} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An independent signer's key: `seed` (64 hex digits) as a did:key, or as `web` (a
/// did:web, verification method `#key-1`).
#[derive(Clone)]
struct Signer {
    seed: String,
    web: Option<String>,
    did: String,
    did_document: Value,
}

impl Signer {
    fn new(seed_byte: &str, web: Option<String>) -> Signer {
        let seed = seed_byte.repeat(32);
        let mut args = vec!["--describe", "--seed", &seed];
        if let Some(w) = &web {
            args.extend(["--did", w]);
        }
        let d = node("sign.mjs", &args);
        Signer { did: d["did"].as_str().unwrap().to_owned(), did_document: d["did_document"].clone(), seed, web }
    }

    fn key_args(&self) -> Vec<&str> {
        let mut a = vec!["--seed", self.seed.as_str()];
        if let Some(w) = &self.web {
            a.extend(["--did", w.as_str()]);
        }
        a
    }

    /// `doc` signed by this key with `suite` (`extra`: sign.mjs options, such as the
    /// challenge and domain of a presentation).
    fn sign(&self, kind: &str, doc: &Value, suite: &str, extra: &[&str]) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("unsigned.json");
        std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
        let mut args = vec!["--kind", kind, file.to_str().unwrap(), "--cryptosuite", suite];
        args.extend(self.key_args());
        args.extend(extra);
        node("sign.mjs", &args)["document"].clone()
    }
}

/// An ordinary VC 2.0 credential from `issuer` (base-context terms only).
fn membership(issuer: &str, n: u32) -> Value {
    json!({
        "@context": [VC2],
        "id": format!("urn:uuid:2f0c1d4e-6a1b-4c3d-8e9f-{n:012}"),
        "type": ["VerifiableCredential", "https://example.org/vocab#MembershipCredential"],
        "issuer": issuer,
        "validFrom": "2024-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:ebfeb1f712ebc6f1c276e12ec21", "name": "A member of the Example Club"},
    })
}

/// The answer of Sigil's VC-API verify route for `kind`: (status, body, problem codes).
async fn vc_api_verify(s: &Server, kind: &str, doc: &Value, options: Value) -> (u16, Value, Vec<String>) {
    let body = match kind {
        "credential" => json!({"verifiableCredential": doc, "options": options}),
        _ => json!({"verifiablePresentation": doc, "options": options}),
    };
    let (st, v) = s.call("POST", &format!("/tenants/acme/vc-api/{kind}s/verify"), None, Some(body)).await;
    let codes = v["problemDetails"]
        .as_array()
        .map(|a| a.iter().map(|p| p["type"].as_str().unwrap().replace("urn:sigil:problem:", "")).collect())
        .unwrap_or_default();
    (st, v, codes)
}

trait Titled {
    /// `(status, ["title: code", …])` of the failed checks.
    fn into_titled(self) -> (u16, Vec<String>);
}

impl Titled for (u16, Value, Vec<String>) {
    fn into_titled(self) -> (u16, Vec<String>) {
        let pd = self.1["problemDetails"].as_array().cloned().unwrap_or_default();
        let titled = pd
            .iter()
            .map(|p| format!("{}: {}", p["title"].as_str().unwrap(), p["type"].as_str().unwrap().replace("urn:sigil:problem:", "")))
            .collect();
        (self.0, titled)
    }
}

/// Verified and the issuer trusted: 200, `verified`, `issuerTrusted`.
async fn assert_accepted(s: &Server, kind: &str, doc: &Value, options: Value, what: &str) {
    let (st, v, _) = vc_api_verify(s, kind, doc, options).await;
    assert_eq!((st, v["verified"].as_bool(), v["issuerTrusted"].as_bool()), (200, Some(true), Some(true)), "{what}: {v}");
}

/// `/v1/verify` of a refund action presentation (always answers 200).
async fn v1_verify(s: &Server, vp: Value, challenge: &str) -> Value {
    let body = json!({"presentation": vp, "challenge": challenge, "domain": "shop.example",
        "action": {"action": "refunds:create", "resource": "orders/1"}});
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// The checks that failed on `/v1/verify`.
fn failed_checks(v: &Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap_or("?").to_owned()).collect()
}

/// One file holding Sigil's CA and the did:web host's, for the independent verifier
/// (given after `third_party`'s own `--ca`, which it replaces: verify.mjs takes the last).
fn both_cas(s: &Server, host: &DidHost) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cas.pem");
    let mut pem = std::fs::read(s.data.join("tls/ca.pem")).unwrap();
    pem.extend(std::fs::read(&host.ca).unwrap());
    std::fs::write(&file, pem).unwrap();
    (dir, file)
}

/// A deployment trusting one did:key and one did:web issuer, the test host serving the
/// did:web documents, and the independent signers: trusted issuers, strangers (trusted by
/// nobody) and holders, each as did:key and did:web.
struct World {
    host: DidHost,
    s: Server,
    key_issuer: Signer,
    key_stranger: Signer,
    web_issuer: Signer,
    web_stranger: Signer,
    key_holder: Signer,
    web_holder: Signer,
    /// Sigil's CA and the host's, in one file for the independent verifier.
    cas: PathBuf,
    _cas_dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let host = DidHost::start();
        let key_issuer = Signer::new("a1", None);
        let key_stranger = Signer::new("a2", None);
        let web_issuer = Signer::new("a3", Some(host.did("issuers:trusted")));
        let web_stranger = Signer::new("a4", Some(host.did("issuers:stranger")));
        let key_holder = Signer::new("a5", None);
        let web_holder = Signer::new("a6", Some(host.did("holders:h")));
        for k in [&web_issuer, &web_stranger, &web_holder] {
            host.serve(&k.did, k.did_document.clone());
        }
        let mut opts = Opts::default();
        for trusted in [&key_issuer.did, &web_issuer.did] {
            opts.args.extend(["--trust-issuer".to_owned(), trusted.clone()]);
        }
        opts.args.extend(host.sigil_args());
        let s = Server::start_with(opts).await;
        s.tenant("acme").await;
        let (_cas_dir, cas) = both_cas(&s, &host);
        World { host, s, key_issuer, key_stranger, web_issuer, web_stranger, key_holder, web_holder, cas, _cas_dir }
    }
}

/// Credentials and presentations signed by the independent libraries with `suite`, by
/// did:key and did:web issuers and holders: Sigil's VC-API routes verify them when the
/// issuer is trusted, report an untrusted issuer as untrusted, and refuse tampered ones.
async fn independent_signers_verify_in_sigil(suite: &str) {
    let w = World::new().await;
    let (s, key_holder, web_holder) = (&w.s, &w.key_holder, &w.web_holder);
    let ca_arg = ["--ca", w.cas.to_str().unwrap()];

    let mut n = 0;
    for (label, issuer, stranger) in [("did:key", &w.key_issuer, &w.key_stranger), ("did:web", &w.web_issuer, &w.web_stranger)] {
        n += 1;
        let what = format!("{suite} {label} credential");
        let vc = issuer.sign("credential", &membership(&issuer.did, n), suite, &[]);
        assert_eq!(vc["proof"]["cryptosuite"], suite);
        let (ok, out) = third_party(s, "credential", &vc, &ca_arg);
        assert!(ok, "{what}: the independent verifier itself rejects it: {out}");
        assert_accepted(s, "credential", &vc, json!({}), &what).await;

        // One changed character: refused for its signature.
        let mut tampered = vc.clone();
        tampered["credentialSubject"]["name"] = json!("B member of the Example Club");
        let (st, v, codes) = vc_api_verify(s, "credential", &tampered, json!({})).await;
        assert_eq!((st, codes), (422, vec!["invalid_signature".to_owned()]), "{what}, tampered: {v}");

        // An issuer nobody trusts: whatever its proof, not verified (`--vc-api-trust
        // advisory` would only report it: trust::vc_api_routes_require_a_trusted_issuer).
        let foreign = stranger.sign("credential", &membership(&stranger.did, n), suite, &[]);
        let (st, v, codes) = vc_api_verify(s, "credential", &foreign, json!({})).await;
        assert_eq!((st, v["issuerTrusted"].as_bool()), (422, Some(false)), "{what}, stranger: {v}");
        assert!(codes.contains(&"issuer_not_trusted".to_owned()), "{what}, stranger: {v}");
        // The stranger naming the trusted issuer: refused.
        let mut posing = stranger.clone();
        if posing.web.is_some() {
            // Its own key under the trusted did:web: not the key that DID document lists.
            posing.web = issuer.web.clone();
        }
        let forged = posing.sign("credential", &membership(&issuer.did, n), suite, &[]);
        let (st, v, codes) = vc_api_verify(s, "credential", &forged, json!({})).await;
        let want = if issuer.web.is_some() { "invalid_signature" } else { "issuer_mismatch" };
        assert_eq!((st, codes), (422, vec![want.to_owned()]), "{what}, posing as the trusted issuer: {v}");

        for (holder_label, holder) in [("did:key", &key_holder), ("did:web", &web_holder)] {
            let what = format!("{suite} presentation by a {holder_label} holder of a {label} credential");
            let challenge = format!("ch-{n}-{holder_label}");
            let vp_of = |c: &Value, challenge: &str| {
                let vp = json!({"@context": [VC2], "type": ["VerifiablePresentation"], "holder": holder.did, "verifiableCredential": [c]});
                holder.sign("presentation", &vp, suite, &["--challenge", challenge, "--domain", "verifier.example"])
            };
            let vp = vp_of(&vc, &challenge);
            let asked = json!({"challenge": challenge, "domain": "verifier.example"});
            let (ok, out) =
                third_party(s, "presentation", &vp, &[&ca_arg[..], &["--challenge", &challenge, "--domain", "verifier.example"]].concat());
            assert!(ok, "{what}: the independent verifier itself rejects it: {out}");
            // The presentation changed (one property added): its proof fails.
            let mut tampered = vp.clone();
            tampered["id"] = json!("urn:uuid:3b1f5a2e-0c4d-4e8f-9a7b-6c5d4e3f2a1b");
            let (st, v) = vc_api_verify(s, "presentation", &tampered, asked.clone()).await.into_titled();
            assert_eq!((st, v), (422, vec!["proof: invalid_signature".to_owned()]), "{what}, presentation tampered");
            // The enclosed credential changed: its proof fails, and the holder's proof is
            // not checked (a failed credential ends verification before the holder's DID
            // is resolved, as on `/v1/verify`).
            let mut tampered = vp.clone();
            tampered["verifiableCredential"][0]["credentialSubject"]["name"] = json!("B member");
            let (st, v) = vc_api_verify(s, "presentation", &tampered, asked.clone()).await.into_titled();
            let want = ["credential[0].proof: invalid_signature", "proof: proof_not_checked"];
            assert_eq!((st, v), (422, want.map(str::to_owned).to_vec()), "{what}, enclosed credential tampered");
            // Another holder named: not the one who made the proof.
            let mut tampered = vp.clone();
            tampered["holder"] = json!(stranger.did);
            let (st, v, codes) = vc_api_verify(s, "presentation", &tampered, asked.clone()).await;
            assert_eq!(st, 422, "{what}, another holder named: {v}");
            assert!(codes.contains(&"holder_mismatch".to_owned()), "{what}, another holder named: {v}");
            assert_accepted(s, "presentation", &vp, asked.clone(), &what).await;
            // Accepted once: the challenge is spent.
            let (st, v, codes) = vc_api_verify(s, "presentation", &vp, asked).await;
            assert_eq!((st, codes), (422, vec!["replayed".to_owned()]), "{what}, again: {v}");
            let other = format!("{challenge}-stranger");
            let asked = json!({"challenge": other, "domain": "verifier.example"});
            let (st, v, codes) = vc_api_verify(s, "presentation", &vp_of(&foreign, &other), asked).await;
            assert_eq!((st, v["issuerTrusted"].as_bool()), (422, Some(false)), "{what}, stranger's credential: {v}");
            assert!(codes.contains(&"issuer_not_trusted".to_owned()), "{what}, stranger's credential: {v}");
        }
    }

    // Every trusted did:web was really fetched over HTTPS from the test host; the
    // stranger's never: nothing is fetched for an issuer nobody trusts.
    for k in [&w.web_issuer, &w.web_holder] {
        assert!(w.host.hits(&k.did) > 0, "{} was never fetched", k.did);
    }
    assert_eq!(w.host.hits(&w.web_stranger.did), 0, "the untrusted issuer's DID was fetched");
}

/// `/v1/verify` of action presentations the independent libraries sign with `suite`
/// (`forge.mjs`): accepted when the trusted issuer signed the delegation, whether the
/// issuer and the holder are did:key or did:web; refused when tampered, and when the
/// issuer is a stranger, without fetching the stranger's DID document.
async fn independent_action_presentations_on_v1_verify(suite: &str) {
    let w = World::new().await;
    let (s, host) = (&w.s, &w.host);
    // The strangers here are new, so that "not fetched" cannot be a cache hit.
    let context_url = format!("{}/ns/v1", s.base);
    let key_stranger = Signer::new("b2", None);
    let web_stranger = Signer::new("b4", Some(host.did("issuers:unknown")));
    host.serve(&web_stranger.did, web_stranger.did_document.clone());
    for (label, issuer, stranger) in [("did:key", &w.key_issuer, &key_stranger), ("did:web", &w.web_issuer, &web_stranger)] {
        for holder_label in ["did:key", "did:web"] {
            let what = format!("{suite} /v1/verify, {label} issuer, {holder_label} holder");
            let forge = |who: &Signer, ch: &str| {
                let mut args = vec!["--challenge", ch, "--domain", "shop.example", "--action", "refunds:create", "--resource", "orders/1"];
                args.extend(["--cryptosuite", suite, "--context-url", &context_url, "--issuer-seed", &who.seed]);
                if let Some(w) = &who.web {
                    args.extend(["--issuer", w]);
                }
                let holder_did = host.did(&format!("agents:{}", ch.replace(':', "-")));
                if holder_label == "did:web" {
                    args.extend(["--holder", &holder_did]);
                }
                let f = node("forge.mjs", &args);
                if holder_label == "did:web" {
                    host.serve(&holder_did, f["holder_did_document"].clone());
                }
                f["presentation"].clone()
            };
            let ch = format!("v1-{label}-{holder_label}");
            let v = v1_verify(s, forge(issuer, &ch), &ch).await;
            assert_eq!((v["verified"].as_bool(), v["issuer_trusted"].as_bool()), (Some(true), Some(true)), "{what}: {v}");

            let ch = format!("v1-{label}-{holder_label}-tampered");
            let mut vp = forge(issuer, &ch);
            vp["verifiableCredential"][1]["credentialSubject"]["authority"]["actions"] = json!(["refunds:create", "orders:*"]);
            let v = v1_verify(s, vp, &ch).await;
            assert_eq!(v["verified"], false, "{what}, tampered: {v}");
            assert!(failed_checks(&v).contains(&"invalid_signature".to_owned()), "{what}, tampered: {v}");

            let ch = format!("v1-{label}-{holder_label}-stranger");
            let fetched = || stranger.web.as_ref().map_or(0, |d| host.hits(d));
            let v = v1_verify(s, forge(stranger, &ch), &ch).await;
            assert_eq!((v["verified"].as_bool(), v["issuer_trusted"].as_bool()), (Some(false), Some(false)), "{what}, stranger: {v}");
            assert!(failed_checks(&v).contains(&"issuer_not_trusted".to_owned()), "{what}, stranger: {v}");
            assert_eq!(fetched(), 0, "{what}: the untrusted issuer's DID document was fetched");
        }
    }
    assert!(host.hits(&w.web_issuer.did) > 0, "the trusted did:web issuer was never fetched");
}

/// eddsa-jcs-2022 signed by the independent libraries. This is the test of a
/// `did:key`-issued credential verifying (and presentations by a `did:key` holder).
#[tokio::test]
async fn interop_jcs_signed_elsewhere_verifies_in_sigil() {
    independent_signers_verify_in_sigil(JCS).await;
}

#[tokio::test]
async fn interop_jcs_action_presentations_signed_elsewhere_on_v1_verify() {
    independent_action_presentations_on_v1_verify(JCS).await;
}

/// The same with eddsa-rdfc-2022 (RDF Dataset Canonicalization) signed by the
/// independent libraries.
#[tokio::test]
async fn interop_rdfc_signed_elsewhere_verifies_in_sigil() {
    independent_signers_verify_in_sigil(RDFC).await;
}

/// VC Data Model 1.1 credentials (`issuanceDate`, the 2018 context) with a
/// `DataIntegrityProof`, signed by the independent libraries with `suite`: the VC-API
/// credential route verifies them, and refuses a tampered one.
async fn independent_vc11_credentials_verify(suite: &str) {
    let issuer = Signer::new("c1", None);
    let s = Server::start_with(Opts { args: vec!["--trust-issuer".into(), issuer.did.clone()], ..Opts::default() }).await;
    s.tenant("acme").await;
    let credential = json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/security/data-integrity/v2"],
        "id": "urn:uuid:7e1c9a2b-5d4f-4a3e-8b6c-1f2e3d4c5b6a",
        "type": ["VerifiableCredential", "https://example.org/vocab#MembershipCredential"],
        "issuer": issuer.did,
        "issuanceDate": "2024-01-01T00:00:00Z",
        "expirationDate": "2099-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:ebfeb1f712ebc6f1c276e12ec21"},
    });
    let vc = issuer.sign("credential", &credential, suite, &[]);
    let (ok, out) = third_party(&s, "credential", &vc, &[]);
    assert!(ok, "the independent verifier itself rejects it: {out}");
    assert_accepted(&s, "credential", &vc, json!({}), &format!("{suite} VC 1.1 credential")).await;
    let mut tampered = vc.clone();
    tampered["expirationDate"] = json!("2098-01-01T00:00:00Z");
    let (st, v, codes) = vc_api_verify(&s, "credential", &tampered, json!({})).await;
    assert_eq!((st, codes), (422, vec!["invalid_signature".to_owned()]), "{suite} VC 1.1, tampered: {v}");
}

#[tokio::test]
async fn interop_jcs_vc11_signed_elsewhere_verifies_in_sigil() {
    independent_vc11_credentials_verify(JCS).await;
}

#[tokio::test]
async fn interop_rdfc_vc11_signed_elsewhere_verifies_in_sigil() {
    independent_vc11_credentials_verify(RDFC).await;
}

/// `POST /tenants/acme/vc-api/credentials/status` for the credential `id`.
async fn set_status(s: &Server, admin: &str, id: &str, purpose: &str, status: bool) {
    let body =
        json!({"credentialId": id, "credentialStatus": {"type": "BitstringStatusListEntry", "statusPurpose": purpose}, "status": status});
    let (st, u) = s.post("/tenants/acme/vc-api/credentials/status", admin, body).await;
    assert_eq!((st, u["status"].as_bool()), (200, Some(status)), "{purpose} := {status}: {u}");
}

/// Status end to end through the VC-API alone, judged by the independent verifier (its
/// Bitstring Status List check fetches Sigil's lists over HTTPS): a credential issued
/// with revocation and suspension entries verifies; suspended, it fails; unsuspended, it
/// verifies again; revoked, it fails for good.
async fn vc_api_status_seen_by_the_independent_verifier(suite: &str, options: Value) {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (_, doc) = s.call("GET", "/tenants/acme/did.json", None, None).await;
    let did = doc["id"].as_str().unwrap();
    let id = "urn:uuid:9d0e7c4a-3f6b-4b5e-8a1c-2d3e4f5a6b7c";
    let mut credential = membership(did, 1);
    credential["id"] = json!(id);
    let mut options = options;
    options["credentialStatus"] = json!([
        {"type": "BitstringStatusListEntry", "statusPurpose": "revocation"},
        {"type": "BitstringStatusListEntry", "statusPurpose": "suspension"}]);
    let (st, r) = s.post("/tenants/acme/vc-api/credentials/issue", &admin, json!({"credential": credential, "options": options})).await;
    assert_eq!(st, 201, "{r}");
    let vc = r["verifiableCredential"].clone();
    assert_eq!(vc["proof"]["cryptosuite"], suite, "{vc}");
    let independent = || third_party(&s, "credential", &vc, &[]);
    let (ok, out) = independent();
    assert!(ok, "issued: {out}");

    set_status(&s, &admin, id, "suspension", true).await;
    let (ok, out) = independent();
    assert_eq!((ok, &out["reasons"]), (false, &json!(["suspended"])), "suspended: {out}");
    set_status(&s, &admin, id, "suspension", false).await;
    let (ok, out) = independent();
    assert!(ok, "unsuspended: {out}");
    set_status(&s, &admin, id, "revocation", true).await;
    let (ok, out) = independent();
    assert_eq!((ok, &out["reasons"]), (false, &json!(["revoked"])), "revoked: {out}");
}

#[tokio::test]
async fn interop_jcs_vc_api_status_seen_by_the_independent_verifier() {
    vc_api_status_seen_by_the_independent_verifier(JCS, json!({})).await;
}

#[tokio::test]
async fn interop_rdfc_action_presentations_signed_elsewhere_on_v1_verify() {
    independent_action_presentations_on_v1_verify(RDFC).await;
}

#[tokio::test]
async fn interop_rdfc_vc_api_status_seen_by_the_independent_verifier() {
    vc_api_status_seen_by_the_independent_verifier(RDFC, json!({"cryptosuite": RDFC})).await;
}

/// A tenant whose default cryptosuite is eddsa-rdfc-2022: the agent's identity credential,
/// its delegation (Sigil's own context, with status) and the agent's presentation verify
/// in the independent verifier; a changed character fails there; once Sigil revokes the
/// delegation, the independent verifier refuses it for that.
#[tokio::test]
async fn interop_rdfc_sigil_issued_verifies_in_the_independent_verifier() {
    let s = Server::start().await;
    let admin = s.tenant("acme").await;
    let (st, c) = s.call("PUT", "/v1/tenants/acme/cryptosuite", Some(&admin), Some(json!({"cryptosuite": RDFC}))).await;
    assert_eq!((st, c["cryptosuite"].as_str()), (200, Some(RDFC)), "{c}");
    let (agent, token, created) = s.agent("acme", &admin, "refund-bot").await;
    let id_cred = created["identity_credential_id"].as_str().unwrap();
    let identity = s.get(&format!("/v1/tenants/acme/credentials/{id_cred}"), &admin).await.1["credential"].clone();
    let (st, del) = s
        .post(
            &format!("/v1/tenants/acme/agents/{agent}/delegations"),
            &admin,
            crate::presentations::delegation(&["refunds:create"], &["orders/*"]),
        )
        .await;
    assert_eq!(st, 201, "{del}");
    let delegation = del["credential"].clone();
    for (what, vc) in [("identity", &identity), ("delegation", &delegation)] {
        assert_eq!(vc["proof"]["cryptosuite"], RDFC, "{what}: {vc}");
        let (ok, out) = third_party(&s, "credential", vc, &[]);
        assert!(ok, "{what}: the independent verifier rejects Sigil's RDFC credential: {out}");
    }
    let mut tampered = delegation.clone();
    tampered["credentialSubject"]["authority"]["limits"]["amount"]["max"] = json!("50000.00");
    let (ok, out) = third_party(&s, "credential", &tampered, &[]);
    assert_eq!((ok, &out["reasons"]), (false, &json!(["invalid_signature"])), "{out}");

    let (st, p) = s.post("/v1/presentations", &token, crate::presentations::refund("rdfc-1")).await;
    assert_eq!(st, 200, "{p}");
    let vp = p["presentation"].clone();
    let (ok, out) = third_party(&s, "presentation", &vp, &["--challenge", "rdfc-1", "--domain", "payments.example"]);
    assert!(ok, "the independent verifier rejects Sigil's presentation of RDFC credentials: {out}");
    let body = json!({"presentation": vp, "challenge": "rdfc-1", "domain": "payments.example"});
    let (_, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(v["verified"], true, "{v}");

    let (st, r) = s.post(&format!("/v1/tenants/acme/credentials/{}/revoke", del["id"].as_str().unwrap()), &admin, json!({})).await;
    assert_eq!(st, 200, "{r}");
    let (ok, out) = third_party(&s, "credential", &delegation, &[]);
    assert_eq!((ok, &out["reasons"]), (false, &json!(["revoked"])), "{out}");
}
