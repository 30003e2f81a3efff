//! Property tests of compact JWS parsing: no input panics, what parses has the one
//! accepted header shape, any change to a signed JWS fails, and the length cap refuses an
//! over-long input before it is split or decoded.
use super::*;
use proptest::prelude::*;

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Header JSON: the accepted one, refused ones, and arbitrary text.
fn header() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"alg":"EdDSA"}"#.to_vec()),
        Just(br#"{"alg":"EdDSA","kid":"did:key:z6Mk#z6Mk","typ":"vp+jwt"}"#.to_vec()),
        Just(br#"{"alg":"none"}"#.to_vec()),
        Just(br#"{"alg":"EdDSA","crit":["b64"]}"#.to_vec()),
        Just(br#"["alg","EdDSA"]"#.to_vec()),
        "[{}\\[\\]\":,a-z0-9 ]{0,24}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

proptest! {
    #![proptest_config(crate::fuzz::config(1000))]

    #[test]
    fn any_text_parses_or_is_refused(s in "[A-Za-z0-9_\\-.=+/ \u{e9}]{0,120}") {
        let _ = parse(&s);
    }

    #[test]
    fn what_parses_is_eddsa_without_crit(h in header(), p in header(), sig in proptest::collection::vec(any::<u8>(), 0..80), dots in 0usize..3) {
        let s = format!("{}.{}.{}{}", b64(&h), b64(&p), b64(&sig), ".".repeat(dots));
        if let Ok(jws) = parse(&s) {
            prop_assert_eq!(dots, 0);
            prop_assert_eq!(jws.header.get("alg").and_then(Value::as_str), Some("EdDSA"));
            prop_assert!(!jws.header.contains_key("crit"));
            prop_assert_eq!(sig.len(), 64);
            // A signature that is not the key's never verifies.
            prop_assert_eq!(jws.verify(&Signer::generate().public()), Err(JoseError::BadSignature));
        }
    }

    #[test]
    fn any_change_to_a_signed_jws_fails(claim in "[a-z0-9é]{0,16}", at in any::<proptest::sample::Index>(), to in "[A-Za-z0-9_\\-.]") {
        let signer = Signer::generate();
        let jws = sign("vp+jwt", "vp", "did:key:z6Mk#z6Mk", &json!({"nonce": claim}), &signer).unwrap();
        parse(&jws).unwrap().verify(&signer.public()).unwrap();
        let mut chars: Vec<char> = jws.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i].to_string() != to);
        chars[i] = to.chars().next().unwrap();
        let tampered: String = chars.into_iter().collect();
        // The signing input is the text itself, and non-canonical base64 is refused, so a
        // changed character cannot verify.
        prop_assert!(parse(&tampered).and_then(|j| j.verify(&signer.public())).is_err(), "{}", tampered);
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(100, 2000))]

    #[test]
    fn an_over_long_jws_is_refused_before_decoding(extra in 1usize..4096) {
        // Not base64 at all: decoding would fail as Malformed, so TooLarge shows that the
        // length was checked first.
        let s = "!".repeat(MAX_JWS + extra);
        prop_assert_eq!(parse(&s).unwrap_err(), JoseError::TooLarge);
    }
}

#[test]
fn a_jws_at_the_cap_is_decoded() {
    assert_eq!(parse(&"!".repeat(MAX_JWS)).unwrap_err(), JoseError::Malformed);
    // A real JWS close to the cap parses.
    let signer = Signer::generate();
    let big = sign("vp+jwt", "vp", "did:key:z6Mk#z6Mk", &json!({"pad": "x".repeat(MAX_JWS / 2)}), &signer).unwrap();
    assert!(big.len() > MAX_JWS * 2 / 3 && big.len() <= MAX_JWS);
    parse(&big).unwrap().verify(&signer.public()).unwrap();
}
