//! Property tests of Multikey decoding (`publicKeyMultibase`, `did:key` suffixes): no input
//! panics, what decodes re-encodes to itself, and the length cap refuses an over-long input
//! before the (quadratic) base58 decoding.
use super::*;
use proptest::prelude::*;

/// The base58btc alphabet, and characters outside it.
const TEXT: &str = "[1-9A-HJ-NP-Za-km-z0OIl+/=_\\-é]";

proptest! {
    #![proptest_config(crate::fuzz::config(2000))]

    #[test]
    fn any_text_decodes_to_a_key_that_encodes_back_or_is_refused(s in proptest::string::string_regex(&format!("[zuf]?{TEXT}{{0,60}}")).unwrap()) {
        match decode_checked(&s) {
            Ok(pk) => prop_assert_eq!(encode(&pk), s),
            Err(MultikeyError::TooLong) => prop_assert!(s.len() > MAX_MULTIKEY),
            Err(_) => {}
        }
    }

    #[test]
    fn every_key_round_trips(raw in any::<[u8; 32]>()) {
        let mb = encode(&PublicKey(raw));
        prop_assert!(mb.starts_with("z6Mk") && mb.len() <= MAX_MULTIKEY);
        prop_assert_eq!(decode_checked(&mb), Ok(PublicKey(raw)));
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(200, 4000))]

    #[test]
    fn an_over_long_multikey_is_refused_before_decoding(extra in 1usize..60_000) {
        // `0` is not base58: decoding would say Encoding, so TooLong shows the order.
        let s = format!("z{}", "0".repeat(MAX_MULTIKEY + extra - 1));
        prop_assert_eq!(decode_checked(&s), Err(MultikeyError::TooLong));
    }
}

#[test]
fn a_multikey_at_the_cap_is_decoded() {
    assert_eq!(decode_checked(&format!("z{}", "0".repeat(MAX_MULTIKEY - 1))), Err(MultikeyError::Encoding));
}
