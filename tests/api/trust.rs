//! Verified means trusted: the trust policy of `/v1/verify` and the CLI, the egress policy
//! of every outbound fetch, and the bounds on one verification's work. The attacker's
//! presentations are signed by an independent implementation (Digital Bazaar's libraries,
//! `tests/interop/forge.mjs`), never by Sigil's own code.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Opts, Server};
use crate::presentations::{delegation, refund, setup};

/// A presentation forged with `tests/interop/forge.mjs`: self-issued `did:key` authority
/// for `refunds:create` on every resource. Returns the tool's whole output.
fn forge(challenge: &str, extra: &[&str]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .arg(root.join("tests/interop/forge.mjs"))
        .args(["--challenge", challenge, "--domain", "shop.example", "--action", "refunds:create", "--resource", "orders/1"])
        .args(extra)
        .output()
        .expect("node must be installed (scripts/test installs tests/interop)");
    assert!(out.status.success(), "forge.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn verify(s: &Server, vp: &Value, challenge: &str, extra: Value) -> Value {
    let mut body = json!({"presentation": vp, "challenge": challenge, "domain": "shop.example"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (st, v) = s.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn codes(v: &Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["code"].as_str().unwrap_or("?").to_owned()).collect()
}

fn trusting(dids: &[&str], extra: &[&str]) -> Opts {
    let mut o = Opts::default();
    for d in dids {
        o.args.extend(["--trust-issuer".to_owned(), (*d).to_owned()]);
    }
    o.args.extend(extra.iter().map(|a| (*a).to_owned()));
    o
}

/// A loopback listener that counts (and drops) every connection made to it.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut c = c;
            let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = c.read(&mut [0u8; 64]);
        }
    });
    (port, n)
}

/// The sum of a Prometheus counter's samples whose labels contain every `want`.
fn counter(metrics: &str, name: &str, want: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && want.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn self_issued_authority_is_refused_unless_its_issuer_is_trusted() {
    let (port, connections) = counting_listener();
    // The test's port is even allowed: what keeps it unreached is the trust decision alone.
    let s = Server::start_with(trusting(&[], &["--resolver-allow", &format!("127.0.0.1:{port}")])).await;
    let status_url = format!("https://127.0.0.1:{port}/status/1");
    let plain = forge("ch-1", &[]);
    let with_status = forge("ch-2", &["--status-url", &status_url]);
    let issuer = plain["issuer"].as_str().unwrap().to_owned();
    for (vp, ch) in [(&plain["presentation"], "ch-1"), (&with_status["presentation"], "ch-2")] {
        let v = verify(&s, vp, ch, json!({"action": {"action": "refunds:create", "resource": "orders/1"}})).await;
        assert_eq!((v["verified"].clone(), v["issuer_trusted"].clone()), (json!(false), json!(false)), "{v}");
        assert!(codes(&v).contains(&"issuer_not_trusted".to_owned()), "{v}");
        // Asking to trust it does not help: a request narrows trust, never widens it.
        let v = verify(&s, vp, ch, json!({"trusted_issuers": [issuer]})).await;
        assert_eq!(v["verified"], false, "{v}");
        assert!(codes(&v).contains(&"issuer_not_trusted".to_owned()), "{v}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing is fetched for an untrusted issuer");
    assert_eq!(counter(&s.metrics().await, "sigil_outbound_fetches_total", &[]), 0.0, "not even a refused fetch");
    // A credential that names a trusted-looking issuer but carries a proof by another DID,
    // one this port would serve: refused before that DID is resolved.
    let mut twisted = forge("ch-6", &[]);
    twisted["presentation"]["verifiableCredential"][0]["proof"]["verificationMethod"] = json!(format!("did:web:127.0.0.1%3A{port}#key-1"));
    let t = Server::start_with(trusting(&[twisted["issuer"].as_str().unwrap()], &["--resolver-allow", &format!("127.0.0.1:{port}")])).await;
    let v = verify(&t, &twisted["presentation"], "ch-6", json!({})).await;
    assert!(codes(&v).contains(&"issuer_mismatch".to_owned()), "{v}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a foreign verification method was resolved");

    // The same presentation verifies where the operator trusts that issuer...
    let t = Server::start_with(trusting(&[&issuer], &[])).await;
    let v = verify(&t, &plain["presentation"], "ch-1", json!({"trusted_issuers": [issuer]})).await;
    assert_eq!((v["verified"].clone(), v["issuer_trusted"].clone()), (json!(true), json!(true)), "{v}");
    // ...unless the request narrows trust to someone else, or the operator trusts it only
    // for another credential type.
    let again = forge("ch-7", &["--issuer-seed", &"66".repeat(32)]);
    let again_issuer = again["issuer"].as_str().unwrap();
    let u = Server::start_with(trusting(&[again_issuer], &[])).await;
    let v = verify(&u, &again["presentation"], "ch-7", json!({"trusted_issuers": ["did:web:elsewhere.example"]})).await;
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "issuer_not_trusted"
                && c["detail"].as_str().unwrap().contains("not among the issuers this request trusts")),
        "{v}"
    );
    let other = forge("ch-3", &["--issuer-seed", &"11".repeat(32)]);
    let v = verify(&t, &other["presentation"], "ch-3", json!({})).await;
    assert!(codes(&v).contains(&"issuer_not_trusted".to_owned()), "{v}");
    let narrowed = forge("ch-4", &["--issuer-seed", &"22".repeat(32)]);
    let narrowed_issuer = narrowed["issuer"].as_str().unwrap();
    let n = Server::start_with(trusting(&[&format!("{narrowed_issuer}=AgentIdentityCredential")], &[])).await;
    let v = verify(&n, &narrowed["presentation"], "ch-4", json!({})).await;
    assert_eq!(v["verified"], false, "{v}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "issuer_not_trusted" && c["detail"].as_str().unwrap().contains("not trusted for this credential type")),
        "{v}"
    );

    // The CLI: nothing verifies without --trust, and it says why; with it, it verifies.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vp.json");
    let fresh = forge("ch-5", &[]);
    std::fs::write(&f, serde_json::to_vec(&fresh["presentation"]).unwrap()).unwrap();
    let cli = |extra: &[&str]| {
        std::process::Command::new(crate::helpers::bin())
            .arg("verify")
            .arg(&f)
            .args(["--challenge", "ch-5", "--domain", "shop.example"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = cli(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trusted issuer"));
    let out = cli(&["--trust", fresh["issuer"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn fetches_never_reach_loopback_private_or_metadata_addresses() {
    let (port, connections) = counting_listener();
    let seed = "33".repeat(32);
    let issuer = forge("probe", &["--issuer-seed", &seed])["issuer"].as_str().unwrap().to_owned();
    let s = Server::start_with(trusting(&[&issuer], &[])).await;
    // (holder, status URL, the code the caller sees). A URL naming an address or port the
    // policy refuses says so (egress_refused); a name that resolves only to refused
    // addresses reads like a name that does not resolve, so internal DNS cannot be probed.
    let cases = [
        // A did:web holder on the test's own loopback port: refused by port and address.
        (format!("did:web:127.0.0.1%3A{port}"), None, "egress_refused"),
        // A name that resolves to loopback, on port 443: refused at resolution.
        ("did:web:localhost".to_owned(), None, "unresolvable_did"),
        // A private address: refused before any connection is tried.
        ("did:web:10.1.2.3".to_owned(), None, "egress_refused"),
        // A status list on the loopback port, behind a holder that needs no fetch.
        (String::new(), Some(format!("https://127.0.0.1:{port}/status/1")), "egress_refused"),
        (String::new(), Some("https://169.254.169.254/latest/meta-data".to_owned()), "egress_refused"),
    ];
    for (i, (holder, status, code)) in cases.iter().enumerate() {
        let ch = format!("egress-{i}");
        let mut args = vec!["--issuer-seed", seed.as_str()];
        if !holder.is_empty() {
            args.extend(["--holder", holder.as_str()]);
        }
        if let Some(u) = status {
            args.extend(["--status-url", u.as_str()]);
        }
        let vp = forge(&ch, &args);
        let started = Instant::now();
        let v = verify(&s, &vp["presentation"], &ch, json!({})).await;
        // Refusals come at once: well inside the 5 s connect timeout a connection would take.
        assert!(started.elapsed() < Duration::from_secs(3), "case {i} took {:?}", started.elapsed());
        assert_eq!(v["verified"], false, "case {i}: {v}");
        assert!(codes(&v).contains(&(*code).to_owned()), "case {i}: {v}");
        let text = v.to_string();
        assert_eq!(text.contains("refused by the egress policy"), *code == "egress_refused", "case {i}: {v}");
        // Nothing about the internal network is echoed back.
        assert!(!text.contains("non-public") && !text.contains("HTTP ") && !text.contains("connect"), "case {i}: {v}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a fetch reached the loopback listener");
    let m = s.metrics().await;
    assert!(counter(&m, "sigil_outbound_fetches_total", &["outcome=\"refused\""]) >= 5.0, "{m}");
    assert_eq!(counter(&m, "sigil_outbound_fetches_total", &["outcome=\"made\""]), 0.0);
}

#[tokio::test]
async fn one_verification_fetches_a_bounded_number_of_documents() {
    let (port, connections) = counting_listener();
    let seed = "44".repeat(32);
    let issuer = forge("probe", &["--issuer-seed", &seed])["issuer"].as_str().unwrap().to_owned();
    // The loopback port is allowed here, so every fetch is really attempted.
    let allow = format!("127.0.0.1:{port}");
    let s = Server::start_with(trusting(&[&issuer], &["--resolver-allow", &allow])).await;
    let urls: Vec<String> = (0..250).map(|i| format!("https://127.0.0.1:{port}/s/{i}")).collect();
    let mut args = vec!["--issuer-seed", seed.as_str(), "--no-identity"];
    for u in &urls {
        args.extend(["--status-url", u.as_str()]);
    }
    let vp = forge("many", &args);
    let started = Instant::now();
    let v = verify(&s, &vp["presentation"], "many", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(15), "past the 10 s deadline: {:?}", started.elapsed());
    assert_eq!(v["verified"], false);
    let c = codes(&v);
    assert_eq!(c.iter().filter(|c| *c == "fetch_limit").count(), 250 - 8, "{c:?}");
    assert_eq!(c.iter().filter(|c| *c == "status_unavailable").count(), 8, "{c:?}");
    assert!(connections.load(Ordering::SeqCst) <= 8, "{} connections", connections.load(Ordering::SeqCst));
    let m = s.metrics().await;
    let fetched = counter(&m, "sigil_outbound_fetches_total", &["kind=\"status_list\""]);
    assert!((1.0..=8.0).contains(&fetched), "{fetched} fetches counted");
    // 250 entries naming one list cost one fetch, not 250.
    let before = connections.load(Ordering::SeqCst);
    let one = format!("https://127.0.0.1:{port}/same");
    let mut args = vec!["--issuer-seed", seed.as_str(), "--no-identity"];
    for _ in 0..250 {
        args.extend(["--status-url", one.as_str()]);
    }
    let vp = forge("same", &args);
    let v = verify(&s, &vp["presentation"], "same", json!({})).await;
    assert_eq!(v["verified"], false);
    assert_eq!(connections.load(Ordering::SeqCst) - before, 1, "one list, one connection");
}

#[tokio::test]
async fn another_deployments_tenant_verifies_once_trusted_with_real_fetches_in_bounded_caches() {
    // Deployment A issues; deployment B trusts A's tenant "acme" and fetches everything
    // over HTTPS: the holder's and issuer's DID documents and the status lists.
    let a = Server::start().await;
    let (_, _, token) = setup(&a, "acme", Some(delegation(&["refunds:create"], &["orders/*"]))).await;
    let (st, p) = a.post("/v1/presentations", &token, refund("x-1")).await;
    assert_eq!(st, 200, "{p}");
    let tenant_did = format!("did:web:{}:tenants:acme", a.listen().replace(':', "%3A"));
    let ca = a.data.join("tls/ca.pem");
    let extra = ["--resolver-allow", a.listen(), "--resolver-ca", ca.to_str().unwrap(), "--resolver-cache-bytes", "1048576"];
    let b = Server::start_with(trusting(&[&tenant_did], &extra)).await;
    let body = json!({"presentation": p["presentation"], "challenge": "x-1", "domain": "payments.example"});
    let (_, v) = b.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!((v["verified"].clone(), v["issuer_trusted"].clone()), (json!(true), json!(true)), "{v}");
    let m = b.metrics().await;
    // Each distinct document once: the holder's and the issuer's DID documents, and the
    // tenant's revocation and suspension lists, which both credentials share.
    assert_eq!(counter(&m, "sigil_outbound_fetches_total", &["outcome=\"made\""]), 4.0, "{m}");
    let cache = counter(&m, "sigil_cache_bytes", &["cache=\"resolver\""]);
    assert!(cache > 0.0 && cache <= 1_048_576.0, "resolver cache at {cache} bytes");
    let lists = counter(&m, "sigil_cache_bytes", &["cache=\"status_lists\""]);
    assert!(lists > 0.0 && lists <= 32.0 * 1_048_576.0, "status list cache at {lists} bytes");
    // Without the trust entry B refuses it, and fetches nothing more for it.
    let c = Server::start_with(Opts { args: extra.iter().map(|s| (*s).to_owned()).collect(), ..Opts::default() }).await;
    let (st, p) = a.post("/v1/presentations", &token, refund("x-2")).await;
    assert_eq!(st, 200);
    let body = json!({"presentation": p["presentation"], "challenge": "x-2", "domain": "payments.example"});
    let (_, v) = c.call("POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(v["issuer_trusted"], false, "{v}");
    assert_eq!(counter(&c.metrics().await, "sigil_outbound_fetches_total", &[]), 0.0);
}

#[tokio::test]
async fn proofs_living_longer_than_the_replay_window_are_refused() {
    let seed = "55".repeat(32);
    let issuer = forge("probe", &["--issuer-seed", &seed])["issuer"].as_str().unwrap().to_owned();
    let s = Server::start_with(trusting(&[&issuer], &["--max-presentation-ttl", "300"])).await;
    let far = forge("ttl-1", &["--issuer-seed", &seed, "--expires-in", "86400"]);
    let v = verify(&s, &far["presentation"], "ttl-1", json!({})).await;
    assert_eq!(codes(&v), vec!["expires_too_far"], "{v}");
    let near = forge("ttl-2", &["--issuer-seed", &seed, "--expires-in", "290"]);
    assert_eq!(verify(&s, &near["presentation"], "ttl-2", json!({})).await["verified"], true);
}

#[tokio::test]
async fn verify_is_rate_limited_per_client_address() {
    let s = Server::start_with(Opts { args: vec!["--verify-rate".into(), "1".into()], ..Opts::default() }).await;
    let body = json!({"presentation": {"not": "a presentation"}});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(s.call("POST", "/v1/verify", None, Some(body.clone())).await);
    }
    assert_eq!(statuses[0].0, 200);
    let limited = statuses.iter().find(|(st, _)| *st == 429).expect("a burst of 2 at 1/s lets 4 quick requests through");
    assert_eq!(limited.1["code"], "rate_limited", "{}", limited.1);
}

/// Nothing says "verified" without a trusted issuer, on the W3C VC-API routes too: a
/// self-issued presentation whose proofs all hold is refused there as on `/v1/verify`.
/// Only an operator who runs a VC-API conformance suite (throwaway `did:key` issuers)
/// turns that into a report beside `verified` (`--vc-api-trust advisory`).
#[tokio::test]
async fn vc_api_routes_require_a_trusted_issuer() {
    for (args, want) in [(vec![], (422, false)), (vec!["--vc-api-trust".to_owned(), "advisory".to_owned()], (200, true))] {
        let s = Server::start_with(Opts { args, ..Opts::default() }).await;
        s.tenant("acme").await;
        let forged = forge("vc-1", &[]);
        let body = json!({"verifiablePresentation": forged["presentation"], "options": {"challenge": "vc-1", "domain": "shop.example"}});
        let (st, v) = s.call("POST", "/tenants/acme/vc-api/presentations/verify", None, Some(body)).await;
        assert_eq!((st, v["verified"].as_bool().unwrap_or(false)), want, "{v}");
        assert_eq!(v["issuerTrusted"], false, "{v}");
        assert!(v.to_string().contains("issuer_not_trusted"), "{v}");
    }
}
