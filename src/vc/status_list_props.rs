//! Property tests of status list decoding (multibase base64url + GZIP bitstrings, as a
//! fetched `encodedList` carries them): no input panics, every list within the bounds
//! round-trips bit for bit, a list is refused exactly when it is shorter or larger than
//! allowed, the encoded-size cap refuses before decoding, and a gzip bomb inflates no
//! further than the decoded-size cap.
use super::*;
use proptest::prelude::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn encoded(compressed: &[u8]) -> String {
    format!("u{}", URL_SAFE_NO_PAD.encode(compressed))
}

proptest! {
    #![proptest_config(crate::fuzz::config(1000))]

    #[test]
    fn any_text_decodes_or_is_refused(s in "[uz]?[A-Za-z0-9_\\-=+/]{0,80}") {
        if let Ok(b) = Bitstring::decode(&s) {
            prop_assert!(b.len() >= LIST_SIZE && b.as_bytes().len() <= MAX_DECODED);
        }
    }

    #[test]
    fn any_bytes_after_the_prefix_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200), gzip_header in any::<bool>()) {
        // With a real gzip header, the bytes are inflated; without, they are refused early.
        let body = if gzip_header { [&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff][..], &raw].concat() } else { raw };
        prop_assert!(Bitstring::decode(&encoded(&body)).is_err());
    }

    #[test]
    fn a_changed_byte_is_refused_or_changes_nothing(at in any::<proptest::sample::Index>(), xor in 1u8..) {
        let mut bits = Bitstring::zeros(LIST_SIZE);
        bits.set(12345, true);
        let mut compressed = gzip(bits.as_bytes());
        let i = at.index(compressed.len());
        compressed[i] ^= xor;
        // The gzip CRC and length guard the data; header fields (time, OS) are ignored.
        if let Ok(d) = Bitstring::decode(&encoded(&compressed)) {
            prop_assert_eq!(d, bits);
        }
    }
}

proptest! {
    // Lists of 16 KiB to 1 MiB, bombs of megabytes, strings past a 2 MiB cap: expensive
    // cases over small input spaces, so few of them, even in a long run.
    #![proptest_config(crate::fuzz::config_bounded(24, 300))]

    #[test]
    fn lists_decode_exactly_within_the_bounds(
        len in prop_oneof![0usize..64, (LIST_SIZE / 8 - 2)..(LIST_SIZE / 8 + 2), (MAX_DECODED - 2)..(MAX_DECODED + 3)],
        set in proptest::collection::vec(any::<proptest::sample::Index>(), 0..16),
    ) {
        let mut bits = Bitstring::zeros(len * 8);
        for i in &set {
            if len > 0 {
                bits.set(i.index(len * 8), true);
            }
        }
        let result = Bitstring::decode(&encoded(&gzip(bits.as_bytes())));
        if len * 8 < LIST_SIZE {
            prop_assert_eq!(result, Err(StatusListError::TooShort));
        } else if len > MAX_DECODED {
            prop_assert_eq!(result, Err(StatusListError::TooLarge));
        } else {
            let d = result.unwrap();
            for i in &set {
                prop_assert_eq!(d.get(i.index(len * 8)), Some(true));
            }
            prop_assert_eq!(d, bits);
        }
    }

    #[test]
    fn a_gzip_bomb_inflates_no_further_than_the_cap(mib in 2usize..24) {
        // `mib` MiB of zeros gzip to about a thousandth of that.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..mib {
            gz.write_all(&chunk).unwrap();
        }
        let bomb = gz.finish().unwrap();
        prop_assert!(bomb.len() < MAX_ENCODED / 8);
        let mut out = Vec::new();
        prop_assert_eq!(inflate_into(&bomb, &mut out), Err(StatusListError::TooLarge));
        prop_assert!(out.len() <= MAX_DECODED + 1, "inflated {} bytes", out.len());
        prop_assert_eq!(Bitstring::decode(&encoded(&bomb)), Err(StatusListError::TooLarge));
    }

    #[test]
    fn an_over_long_encoded_list_is_refused_before_decoding(extra in 1usize..4096) {
        // Not base64: decoding would answer Encoding, so TooLarge shows the order.
        let s = format!("u{}", "!".repeat(MAX_ENCODED - 1 + extra));
        prop_assert_eq!(Bitstring::decode(&s), Err(StatusListError::TooLarge));
    }
}

#[test]
fn an_encoded_list_at_the_cap_is_decoded() {
    assert_eq!(Bitstring::decode(&format!("u{}", "!".repeat(MAX_ENCODED - 1))), Err(StatusListError::Encoding));
}
