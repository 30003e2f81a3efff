//! Property tests of request bodies through JSON and JCS: any bytes parse as JSON or are
//! refused without a panic, whatever parses canonicalizes, canonical form is a fixed point
//! (parsing it and canonicalizing again gives the same bytes), and it equals the reference
//! canonicalizer on parsed input. The recursive writer's stack is bounded by the parser's
//! nesting cap, [`MAX_JSON_DEPTH`], which a test holds.
use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Arbitrary JSON with the awkward parts: escapes, non-BMP text, big and fractional numbers.
fn arb_json() -> impl Strategy<Value = Value> {
    let text = "[a-z@\"\\\\\u{0}-\u{1f}é\u{e000}\u{1F600}\u{2028}]{0,6}";
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(text, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON text with a few bytes inserted, removed or replaced: mostly almost-JSON.
fn mutated_json() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<proptest::sample::Index>(), 0u8..3, proptest::sample::select(b"{}[]\",:0-.eE+\\ nu\xff\xc3".to_vec()));
    (arb_json(), proptest::collection::vec(edit, 0..4)).prop_map(|(v, edits)| {
        let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, b),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ if i < bytes.len() => bytes[i] = b,
                _ => bytes.push(b),
            }
        }
        bytes
    })
}

fn check_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        // Every number serde_json parses is finite, so every parsed document canonicalizes.
        let canonical = canonicalize(&v).unwrap();
        prop_assert_eq!(&canonical, &serde_json_canonicalizer::to_vec(&v).unwrap());
        let again: Value = serde_json::from_slice(&canonical).unwrap();
        prop_assert_eq!(canonicalize(&again).unwrap(), canonical);
        if let Value::Object(map) = &v {
            let first = map.keys().next().cloned().unwrap_or_default();
            let mut without = map.clone();
            without.remove(&first);
            prop_assert_eq!(canonicalize_object(map, Some(&first)).unwrap(), canonicalize(&Value::Object(without)).unwrap());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::fuzz::config(2000))]

    #[test]
    fn any_bytes_parse_and_canonicalize_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_body(&bytes)?;
    }

    #[test]
    fn almost_json_parses_and_canonicalizes_or_is_refused(bytes in mutated_json()) {
        check_body(&bytes)?;
    }
}

proptest! {
    // Depths 1 to 4 x the cap: a small input space.
    #![proptest_config(crate::fuzz::config_bounded(200, 2000))]

    #[test]
    fn nesting_past_the_cap_is_refused_by_the_parser(depth in 1usize..4 * MAX_JSON_DEPTH, object in any::<bool>()) {
        let (open, close) = if object { (r#"{"a":"#, "}") } else { ("[", "]") };
        let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                prop_assert!(depth <= MAX_JSON_DEPTH, "depth {} parsed", depth);
                prop_assert_eq!(canonicalize(&v).unwrap(), text.into_bytes());
            }
            Err(e) => {
                prop_assert!(depth > MAX_JSON_DEPTH, "depth {} refused: {}", depth, e);
                prop_assert!(e.to_string().contains("recursion limit"));
            }
        }
    }
}
