//! Property tests of the whole verifier on untrusted presentations: a genuine `ldp_vp`
//! verifies, and any single change to it (a member replaced, removed or added anywhere,
//! credentials and proofs included) neither panics nor verifies; a `jwt_vp` with any
//! character changed does not verify either. This drives every parser above together:
//! JCS, proofs, Multikey, DID URLs, JWS, times, the authority inside a credential and its
//! resource globs.
use super::*;
use crate::crypto::Signer;
use crate::vc::verify::ResolveError;
use crate::vc::{multikey, proof};
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;

/// Resolves nothing: every DID here is a did:key, which needs no resolver.
struct Nothing;

#[async_trait::async_trait]
impl Resolver for Nothing {
    async fn resolve_did(&self, _: &str) -> Result<Arc<Value>, ResolveError> {
        Err(ResolveError::Unavailable)
    }
    async fn fetch_status_list(&self, _: &str) -> Result<Arc<Value>, ResolveError> {
        Err(ResolveError::Unavailable)
    }
}

const NOW: &str = "2026-06-10T10:00:00Z";

struct Fixture {
    issuer: String,
    vp: Value,
    holder: Signer,
    holder_vm: String,
}

fn did_key(s: &Signer) -> (String, String) {
    let mb = multikey::encode(&s.public());
    (format!("did:key:{mb}"), format!("did:key:{mb}#{mb}"))
}

fn options(issuer: &str) -> PresentationOptions {
    let mut o = PresentationOptions::new(TrustPolicy::none().trust_issuer(issuer));
    o.challenge = Some("c-1".into());
    o.domain = Some("verifier.example".into());
    o
}

fn proof_opts(vm: &str, purpose: &'static str, holder: bool) -> proof::ProofOptions {
    proof::ProofOptions {
        cryptosuite: Default::default(),
        verification_method: vm.to_owned(),
        proof_purpose: purpose,
        created: "2026-06-10T09:59:00Z".into(),
        expires: holder.then(|| "2026-06-10T10:05:00Z".into()),
        challenge: holder.then(|| "c-1".into()),
        domain: holder.then(|| "verifier.example".into()),
    }
}

/// A delegation from a did:key issuer to a did:key holder, presented for one action.
fn fixture() -> Fixture {
    let (issuer_key, holder) = (Signer::generate(), Signer::generate());
    let ((issuer, issuer_vm), (holder_did, holder_vm)) = (did_key(&issuer_key), did_key(&holder));
    let credential = json!({
        "@context": [VC_V2],
        "type": ["VerifiableCredential", "DelegatedAuthorityCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2027-01-01T00:00:00Z",
        "credentialSubject": {"id": holder_did, "authority": {
            "actions": ["refunds:create"], "resources": ["orders/*"],
            "limits": {"amount": {"max": "500.00", "currency": "EUR"}},
        }},
    });
    let credential =
        proof::sign(credential.as_object().cloned().unwrap(), &proof_opts(&issuer_vm, "assertionMethod", false), &issuer_key).unwrap();
    let vp = json!({
        "@context": [VC_V2],
        "type": ["VerifiablePresentation"],
        "holder": holder_did,
        "verifiableCredential": [credential],
        "action": {"name": "refunds:create", "resource": "orders/1", "context": {"amount": "20.00", "currency": "EUR"}},
    });
    let vp = proof::sign(vp.as_object().cloned().unwrap(), &proof_opts(&holder_vm, "authentication", true), &holder).unwrap();
    Fixture { issuer, vp, holder, holder_vm }
}

fn verify(vp: &Value, issuer: &str) -> PresentationReport {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(verify_presentation(vp, &options(issuer), &Nothing, NOW.parse().unwrap()))
}

/// JSON pointers of every member and element of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            out.push(p.clone());
            pointers(x, p, out);
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            let p = format!("{at}/{i}");
            out.push(p.clone());
            pointers(x, p, out);
        }),
        _ => {}
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("refunds:create"),
            Just("orders/**"),
            Just("2026-06-10T10:00:00Z"),
            Just("c-1"),
            Just("z6Mk"),
            Just("did:key:z6Mk#z6Mk")
        ]
        .prop_map(|s| json!(s)),
        "[a-z0-9:/#*é]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z@]{1,4}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(crate::fuzz::config(300))]

    #[test]
    fn any_change_to_a_genuine_presentation_fails_verification(at in any::<proptest::sample::Index>(), op in 0u8..3, v in value(), key in "[a-zA-Z@]{1,12}") {
        let f = fixture();
        prop_assert!(verify(&f.vp, &f.issuer).verified(), "{:?}", verify(&f.vp, &f.issuer).report.errors());
        let mut ptrs = Vec::new();
        pointers(&f.vp, String::new(), &mut ptrs);
        let ptr = at.get(&ptrs).clone();
        let (parent, last) = ptr.rsplit_once('/').unwrap();
        let mut changed = f.vp.clone();
        match (op, changed.pointer_mut(parent).unwrap()) {
            (0, target) => *target.pointer_mut(&format!("/{last}")).unwrap() = v,
            (1, Value::Object(m)) => { m.remove(&last.replace("~1", "/").replace("~0", "~")); }
            (1, Value::Array(a)) => { a.remove(last.parse::<usize>().unwrap()); }
            (_, Value::Object(m)) => { m.insert(key, v); }
            (_, Value::Array(a)) => a.push(v),
            (_, other) => *other = v,
        }
        prop_assume!(changed != f.vp);
        let report = verify(&changed, &f.issuer);
        prop_assert!(!report.verified(), "verified after changing {}: {}", ptr, changed);
    }

    #[test]
    fn any_change_to_a_genuine_jwt_vp_fails_verification(at in any::<proptest::sample::Index>(), to in "[A-Za-z0-9_\\-.]") {
        let f = fixture();
        let mut claims = f.vp.clone();
        if let Some(m) = claims.as_object_mut() {
            m.remove("proof");
            m.insert("nonce".into(), json!("c-1"));
            m.insert("aud".into(), json!("verifier.example"));
            m.insert("exp".into(), json!(1_781_086_000)); // 2026-06-10T10:06:40Z
        }
        let jwt = super::jose::sign("vp+jwt", "vp", &f.holder_vm, &claims, &f.holder).unwrap();
        prop_assert!(verify(&json!(jwt), &f.issuer).verified(), "{:?}", verify(&json!(jwt), &f.issuer).report.errors());
        let mut chars: Vec<char> = jwt.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i].to_string() != to);
        chars[i] = to.chars().next().unwrap();
        let tampered: String = chars.into_iter().collect();
        prop_assert!(!verify(&json!(tampered), &f.issuer).verified());
    }

    #[test]
    fn any_json_is_not_a_verified_presentation(v in value()) {
        prop_assert!(!verify(&v, "did:key:z6Mk").verified());
    }
}
