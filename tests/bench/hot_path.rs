//! The hot path against its crypto ceiling, in one run on one machine:
//! - `ceiling`: RFC 8785 canonicalization + SHA-256 + one Ed25519 signature of a typical
//!   presentation (two credentials inside, about 3.5 KB), the least any signer must do;
//! - `present`: one full presentation through the service layer (token already resolved):
//!   wallet cache, policy, canonicalization of the envelope only, signature, and the audit
//!   entry made durable through group commit (one fsync per call here: no concurrency);
//! - `verify`: verification of such a presentation (three proofs, status lists in-process):
//!   a fresh one (its holder signature new, its credentials' remembered), and the same one
//!   again (all three remembered);
//! - `seal`/`open`: one record (an identity credential's size) sealed and opened under a data key;
//! - `policy`: the authority decision over a wallet of three delegations, the last one matching.
//!
//! Run: `cargo bench --bench hot_path`; compare the ratios, not the absolute times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sigil::clock::SystemClock;
use sigil::config::PublicUrl;
use sigil::crypto::{RootKey, SecretBytes, Signer, TokenPepper};
use sigil::ids::TokenId;
use sigil::policy::{ActionRequest, AmountLimit, Authority, Grant, Limits, Principal, PrincipalKind};
use sigil::service::agents::NewAgent;
use sigil::service::credentials::NewDelegation;
use sigil::service::presentations::{Format, PresentationRequest};
use sigil::service::{Caller, Keyring, Role, Settings, Sigil};
use sigil::store::{SledStore, Store};
use sigil::vc::jcs;
use sigil::vc::presentation::PresentationOptions;
use sigil::vc::proof::{self, ProofOptions};

fn setup(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (Arc<Sigil>, Caller) {
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
        let keys = Keyring::new(RootKey::from_bytes(SecretBytes::random(32), 1).unwrap(), TokenPepper::generate());
        let settings =
            Settings { data_dir: Some(dir.to_owned()), ..Settings::new(PublicUrl::parse("https://bench.example:8443").unwrap()) };
        let s = Sigil::new(store, keys, Arc::new(SystemClock), settings, sigil::verify::HttpResolver::public().unwrap());
        let op = Caller::Operator { token: TokenId::random() };
        let t = s.create_tenant(&op, Some("bench"), "Bench").await.unwrap();
        let admin = Caller::Tenant { tenant: t.id.clone(), role: Role::Admin, token: TokenId::random() };
        let relaxed = sigil::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 0,
            ..Default::default()
        };
        s.set_guardrails(&admin, &t.id, relaxed).await.unwrap();
        let a = s
            .create_agent(
                &admin,
                &t.id,
                NewAgent {
                    name: "bench-bot".into(),
                    operator: Some("Bench Inc".into()),
                    software: Some("bot/1.0".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let authority = Authority::new(
            &["refunds:create".into()],
            &["orders/*".into()],
            Limits { amount: Some(AmountLimit::parse("500.00", "EUR", None).unwrap()) },
            None,
        )
        .unwrap();
        let d = NewDelegation {
            principal: Principal::new("alice@bench.example".into(), PrincipalKind::Person, Some("Alice".into())).unwrap(),
            authority,
            valid_from: None,
            valid_until: "2099-01-01T00:00:00Z".parse().unwrap(),
        };
        s.issue_delegation(&admin, &t.id, &a.id, d).await.unwrap();
        (s, Caller::Agent { tenant: t.id, agent: a.id, token: TokenId::random() })
    })
}

fn request(n: u64) -> PresentationRequest {
    let mut context = serde_json::Map::new();
    context.insert("amount".into(), "120.00".into());
    context.insert("currency".into(), "EUR".into());
    PresentationRequest {
        action: "refunds:create".into(),
        resource: Some("orders/123".into()),
        context,
        challenge: format!("challenge-{n}"),
        domain: "payments.example".into(),
        format: Format::LdpVp,
        expires_in: None,
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sigil, agent) = setup(&rt, dir.path());
    let sample = rt.block_on(sigil.present(&agent, request(0))).unwrap().document();
    let mut unsigned = sample.as_object().unwrap().clone();
    unsigned.remove("proof");
    eprintln!("typical presentation: {} bytes", serde_json::to_vec(&sample).unwrap().len());
    let signer = Signer::generate();
    let opts = ProofOptions {
        cryptosuite: Default::default(),
        verification_method: "did:web:bench.example%3A8443:tenants:bench:agents:x#key-1".into(),
        proof_purpose: "authentication",
        created: "2026-11-28T20:00:00Z".into(),
        expires: Some("2026-11-28T20:05:00Z".into()),
        challenge: Some("c".into()),
        domain: Some("payments.example".into()),
    };
    let ctx = unsigned.get("@context").cloned();
    c.bench_function("ceiling: JCS + SHA-256 + Ed25519 sign (whole VP)", |b| {
        b.iter(|| {
            let canon = jcs::canonicalize_object(&unsigned, None).unwrap();
            proof::sign_canonical(&canon, ctx.as_ref(), &opts, &signer).unwrap()
        })
    });
    let mut n = 1u64;
    c.bench_function("present: service layer, durable audit", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(sigil.present(&agent, request(n))).unwrap()
        })
    });
    let resolver = sigil::service::resolver::LocalFirst { sigil: &sigil };
    let vopts = PresentationOptions {
        challenge: Some("challenge-0".into()),
        domain: Some("payments.example".into()),
        action: Some(json!({"action": "refunds:create", "resource": "orders/123", "context": {"amount": "120.00", "currency": "EUR"}})),
        // As `/v1/verify` trusts by default: the deployment's tenants.
        trust: sigil.verify_trust(None),
        max_ttl: Some(jiff::SignedDuration::from_secs(300)),
        skip_status: false,
    };
    // Fresh presentations, as `POST /v1/verify` sees them: the holder's signature is new
    // every time, the two credentials' signatures repeat (and are remembered). Made ahead
    // in batches that share their `fdatasync`s, outside the measured routine.
    // Each is signed anew (new id, time and signature); all name the challenge `vopts` expects.
    let fresh = |n: usize| -> Vec<serde_json::Value> {
        rt.block_on(async {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let batch = futures_util::future::join_all((0..256).map(|_| sigil.present(&agent, request(0)))).await;
                out.extend(batch.into_iter().map(|p| p.unwrap().document()));
            }
            out
        })
    };
    let mut pool: Vec<serde_json::Value> = Vec::new();
    c.bench_function("verify: a fresh presentation, 1 new + 2 remembered signatures (in-process)", |b| {
        b.iter_batched(
            || {
                if pool.is_empty() {
                    pool = fresh(4096);
                }
                pool.pop().unwrap()
            },
            |vp| {
                let r = rt.block_on(sigil::vc::presentation::verify_presentation(&vp, &vopts, &resolver, jiff::Timestamp::now()));
                assert!(r.verified(), "{:?}", r.report.codes());
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let r = rt.block_on(sigil::vc::presentation::verify_presentation(&sample, &vopts, &resolver, jiff::Timestamp::now()));
    assert!(r.verified(), "{:?}", r.report.codes());
    c.bench_function("verify: the same presentation again, all 3 signatures remembered (in-process)", |b| {
        b.iter(|| rt.block_on(sigil::vc::presentation::verify_presentation(&sample, &vopts, &resolver, jiff::Timestamp::now())))
    });

    // The hash input of a presentation's audit entry: written field by field, against the
    // serialize-to-Value-then-canonicalize route it replaced (same bytes, a property test).
    let entry = sigil::audit::Entry {
        seq: 123_456,
        time: "2026-11-29T09:10:21Z".into(),
        tenant: "bench".into(),
        event: "presentation.granted".into(),
        actor: "agent:0f3c9a7e2b6d4c18".into(),
        agent: Some("0f3c9a7e2b6d4c18".into()),
        request_id: Some("5f0e8c1d2a3b4c5d6e7f8091".into()),
        details: json!({"action": "refunds:create", "resource": "orders/123", "amount": "120.00", "currency": "EUR",
                        "credentials": ["urn:uuid:6f1d0c1e-8b0a-4c55-9d0e-1f2a3b4c5d6e", "urn:uuid:7a2e1d2f-9c1b-4d66-8e1f-2a3b4c5d6e7f"],
                        "presentation": "urn:uuid:8b3f2e30-ad2c-4e77-9f20-3b4c5d6e7f80", "format": "ldp_vp"}),
        prev: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        hash: String::new(),
    };
    c.bench_function("audit hash: one presentation entry, field by field", |b| b.iter(|| entry.compute_hash()));
    c.bench_function("audit hash: the same through a Value copy (the route replaced)", |b| {
        b.iter(|| {
            let mut v = serde_json::to_value(&entry).unwrap();
            v.as_object_mut().unwrap().remove("hash");
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(jcs::canonicalize(&v).unwrap()))
        })
    });

    let dk = sigil::crypto::DataKey::generate(1);
    // Metered as the service meters it: one atomic decrement per seal.
    dk.grant(u64::MAX);
    let aad = sigil::crypto::Aad { tenant: "bench", kind: "credential", id: "urn:uuid:1" };
    let record = serde_json::to_vec(&sample["verifiableCredential"][0]).unwrap();
    let blob = dk.seal(&aad, &record).unwrap();
    c.bench_function("seal: one credential-sized record (AES-256-GCM)", |b| b.iter(|| dk.seal(&aad, &record).unwrap()));
    c.bench_function("open: one credential-sized record", |b| b.iter(|| dk.open(&aad, &blob).unwrap()));

    let authority = |action: &str| {
        Authority::new(
            &[action.into()],
            &["orders/*".into()],
            Limits { amount: Some(AmountLimit::parse("500.00", "EUR", None).unwrap()) },
            None,
        )
        .unwrap()
    };
    let wallet = [authority("invoices:read"), authority("orders:cancel"), authority("refunds:create")];
    let grants: Vec<Grant<'_>> = wallet
        .iter()
        .map(|a| Grant { authority: a, valid_from: jiff::Timestamp::UNIX_EPOCH, valid_until: None, revoked: false, suspended: false })
        .collect();
    let amount = Some("120.00".parse().unwrap());
    c.bench_function("policy: decide over 3 delegations", |b| {
        b.iter(|| {
            let req = ActionRequest { action: "refunds:create", resource: Some("orders/123"), amount, currency: Some("EUR") };
            sigil::policy::decide(true, &grants, &req, jiff::Timestamp::now()).unwrap()
        })
    });
}

criterion_group! {
    name = hot_path;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(hot_path);
