//! Property tests of what `crypto` reads from outside: sealed blobs (a store or a backup
//! someone else wrote), Ed25519 signatures and keys taken from documents, bearer tokens
//! from headers. No input panics, and none opens, verifies or authenticates unless it is
//! the genuine article.
use super::*;
use proptest::prelude::*;

const AAD: Aad<'static> = Aad { tenant: "acme", kind: "agent", id: "a1" };

proptest! {
    #![proptest_config(crate::fuzz::config(1000))]

    #[test]
    fn any_bytes_are_refused_as_a_sealed_blob(blob in proptest::collection::vec(any::<u8>(), 0..80), version in 0u32..3) {
        let _ = blob_key_version(&blob);
        prop_assert_eq!(DataKey::generate(version).open(&AAD, &blob).err(), Some(CryptoError));
    }

    #[test]
    fn a_changed_sealed_blob_never_opens(plain in proptest::collection::vec(any::<u8>(), 0..64), at in any::<proptest::sample::Index>(), xor in 1u8.., cut in any::<proptest::sample::Index>(), tail in proptest::collection::vec(any::<u8>(), 1..8)) {
        let k = DataKey::generate(1);
        k.grant(1);
        let blob = k.seal(&AAD, &plain).unwrap();
        let opened = k.open(&AAD, &blob).unwrap();
        prop_assert_eq!(opened.expose(), plain.as_slice());
        let mut flipped = blob.clone();
        flipped[at.index(blob.len())] ^= xor;
        prop_assert!(k.open(&AAD, &flipped).is_err());
        prop_assert!(k.open(&AAD, &blob[..cut.index(blob.len())]).is_err());
        prop_assert!(k.open(&AAD, &[blob.as_slice(), &tail].concat()).is_err());
    }

    #[test]
    fn only_a_genuine_signature_verifies(key in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64), sig in proptest::collection::vec(any::<u8>(), 0..100)) {
        // Arbitrary key and signature bytes, as a document may carry them.
        prop_assert!(verify_strict(&PublicKey(key), &msg, &sig).is_err());
        let s = Signer::generate();
        let good = s.sign(&msg);
        prop_assert!(verify_strict(&s.public(), &msg, &good).is_ok());
        prop_assume!(sig.as_slice() != good.as_slice());
        prop_assert!(verify_strict(&s.public(), &msg, &sig).is_err());
        prop_assert!(verify_strict_cached(&s.public(), &msg, &sig).is_err());
    }

    #[test]
    fn presented_tokens_are_bounded_printable_text(s in "[ -~\t\u{e9}]{0,300}") {
        if let Some(t) = AccessToken::from_presented(&s) {
            prop_assert!((32..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(t.reveal_once(), s);
        }
    }
}
