//! Property tests of Data Integrity proof parsing and checking (`eddsa-jcs-2022`): no
//! document or proof value panics, what parses carries a 64-byte signature, a signed
//! document verifies until any member changes, and the `proofValue` cap refuses an
//! over-long value before the (quadratic) base58 decoding.
use super::*;
use proptest::prelude::*;
use serde_json::json;

fn signed(subject: &Value, signer: &Signer) -> Value {
    let doc = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": "did:key:z6Mk",
        "credentialSubject": subject,
    });
    let opts = ProofOptions {
        cryptosuite: Default::default(),
        verification_method: "did:key:z6Mk#z6Mk".into(),
        proof_purpose: "assertionMethod",
        created: "2026-01-01T00:00:00Z".into(),
        expires: None,
        challenge: None,
        domain: None,
    };
    sign(doc.as_object().cloned().unwrap_or_default(), &opts, signer).unwrap()
}

/// Small JSON values for subjects and for whatever replaces a proof member.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z1-9zé\"\\\\]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zé@]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(crate::fuzz::config(500))]

    #[test]
    fn any_proof_value_parses_to_64_bytes_or_is_refused(pv in "z?[1-9A-HJ-NP-Za-km-z0Il+/]{0,120}") {
        let mut doc = signed(&json!({"id": "did:key:z6Mk"}), &Signer::generate());
        doc["proof"]["proofValue"] = Value::String(pv.clone());
        match parse(&doc) {
            Ok((_, p)) => prop_assert!(p.signature.len() == 64 && pv.len() <= MAX_PROOF_VALUE),
            Err(ProofError::Malformed(why)) if why == PROOF_VALUE_TOO_LONG => prop_assert!(pv.len() > MAX_PROOF_VALUE),
            Err(_) => {}
        }
    }

    #[test]
    fn any_proof_member_or_document_never_panics(member in "[a-zA-Z@]{1,20}", v in value(), whole in value()) {
        let signer = Signer::generate();
        let mut doc = signed(&json!({"id": "did:key:z6Mk"}), &signer);
        for key in [member.as_str(), "type", "cryptosuite", "proofValue", "@context", "verificationMethod"] {
            let mut d = doc.clone();
            d["proof"][key] = v.clone();
            if let Ok((u, p)) = parse(&d) {
                let _ = verify_parsed(&u, &p, &signer.public());
            }
        }
        doc["proof"] = whole.clone();
        let _ = parse(&doc);
        let _ = parse(&whole);
    }

    #[test]
    fn a_signed_document_verifies_until_a_member_changes(subject in value(), replacement in value(), key in "[a-z@]{1,8}") {
        let signer = Signer::generate();
        let doc = signed(&subject, &signer);
        let (u, p) = parse(&doc).unwrap();
        prop_assert_eq!(verify_parsed(&u, &p, &signer.public()), Ok(()));
        let mut changed = doc.clone();
        changed["credentialSubject"] = json!({key.as_str(): replacement});
        prop_assume!(changed["credentialSubject"] != doc["credentialSubject"]);
        let (u, p) = parse(&changed).unwrap();
        prop_assert_eq!(verify_parsed(&u, &p, &signer.public()), Err(ProofError::BadSignature));
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(100, 4000))]

    #[test]
    fn an_over_long_proof_value_is_refused_before_decoding(extra in 1usize..60_000) {
        // `0` is not base58: decoding would answer "not multibase", so the cap's error shows
        // the length was checked first.
        let mut doc = signed(&json!({"id": "did:key:z6Mk"}), &Signer::generate());
        doc["proof"]["proofValue"] = Value::String(format!("z{}", "0".repeat(MAX_PROOF_VALUE - 1 + extra)));
        prop_assert_eq!(parse(&doc).err(), Some(ProofError::Malformed(PROOF_VALUE_TOO_LONG)));
    }
}

#[test]
fn a_proof_value_at_the_cap_is_decoded() {
    let mut doc = signed(&json!({"id": "did:key:z6Mk"}), &Signer::generate());
    doc["proof"]["proofValue"] = Value::String(format!("z{}", "0".repeat(MAX_PROOF_VALUE - 1)));
    assert_eq!(parse(&doc).err(), Some(ProofError::Malformed("proofValue is not multibase")));
}
