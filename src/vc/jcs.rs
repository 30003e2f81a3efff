//! RFC 8785 (JCS) canonicalization, plus [`CanonicalObject`], which assembles the canonical
//! form of an object from members whose canonical forms were computed earlier (the
//! credentials inside a presentation never change, so the hot path does not canonicalize
//! them again).
//!
//! The writer here walks a parsed `serde_json::Value` directly. The `serde_json_canonicalizer`
//! crate is the reference: it re-parses every object key as JSON to sort it, which made
//! canonicalization 80% of the bare signing cost of a presentation. Everything JCS
//! specifies beyond "sorted keys, no whitespace" is still the crate's or serde_json's:
//! strings are escaped by serde_json (the same escapes as ECMAScript `JSON.stringify`,
//! which RFC 8785 §3.2.2.2 adopts) and non-integer numbers are formatted by the crate
//! (ECMAScript number serialization, §3.2.2.3). A property test holds the two equal on
//! arbitrary documents, and the W3C vectors pass byte for byte.

use serde_json::{Map, Number, Value};

/// How deep a JSON document may nest: serde_json's parser refuses a 128th level (its
/// recursion limit), and the recursive writer here relies on that to bound its stack. Every
/// `Value` canonicalized on a request path was parsed by serde_json (request bodies,
/// fetched documents, JWS payloads); a property test holds the parser to this number.
pub const MAX_JSON_DEPTH: usize = 127;

/// Why canonicalization failed (numbers JCS cannot represent, e.g. non-finite).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document cannot be canonicalized (RFC 8785)")]
pub struct JcsError;

/// Canonical UTF-8 bytes of a JSON value.
pub fn canonicalize(v: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(512);
    write_value(v, &mut out)?;
    Ok(out)
}

/// Canonical UTF-8 bytes of a JSON object, leaving out the member named `skip` (a secured
/// document without its `proof`): the verifier canonicalizes the document as it arrived,
/// instead of copying the whole tree to remove one member first.
pub fn canonicalize_object(map: &Map<String, Value>, skip: Option<&str>) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(512);
    write_object(map, skip, &mut out)?;
    Ok(out)
}

/// Integers of at most 2^53 in magnitude print the same as ECMAScript numbers.
const SAFE_INTEGER: u64 = 1 << 53;

/// The largest integer magnitude below which every integer is a distinct IEEE 754 double.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The path (from `root`) of the first number in `object`, at any depth, that RFC 8785,
/// which prints numbers as IEEE 754 doubles, would not keep exactly: an integer beyond
/// ±(2^53−1), or a number parsed as a double of that magnitude (every fraction is smaller).
/// Inputs that are signed or hashed in canonical form refuse such numbers: two of them can
/// canonicalize alike, and the canonical form carries another value than the document.
pub fn inexact_number(root: &str, object: &Map<String, Value>) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> bool {
        match v {
            Value::Number(n) => {
                let ok = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => u <= MAX_SAFE_INTEGER,
                    (_, Some(i), _) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
                    (_, _, Some(f)) => f.is_finite() && f.abs() <= MAX_SAFE_INTEGER as f64,
                    _ => false,
                };
                !ok
            }
            Value::Array(a) => a.iter().enumerate().any(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(m) => m.iter().any(|(k, v)| {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                let found = walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = root.to_owned();
    object
        .iter()
        .any(|(k, v)| {
            path.truncate(root.len());
            path.push('.');
            path.push_str(k);
            walk(v, &mut path)
        })
        .then_some(path)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, None, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| Some(k.as_str()) != skip).collect();
    // Byte order equals UTF-16 order unless a key holds characters at or above
    // U+E000 (surrogate pairs sort below them in UTF-16); sort by UTF-16 then.
    if members.iter().any(|(k, _)| k.chars().any(|c| c >= '\u{e000}')) {
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    } else {
        members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    out.push(b'{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write_value(v, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) if u <= SAFE_INTEGER => out.extend_from_slice(u.to_string().as_bytes()),
        (_, Some(i)) if i.unsigned_abs() <= SAFE_INTEGER => out.extend_from_slice(i.to_string().as_bytes()),
        _ => out.extend_from_slice(&serde_json_canonicalizer::to_vec(&Value::Number(n.clone())).map_err(|_| JcsError)?),
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json writes a &str infallibly into a Vec; its escapes are the JCS ones.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// Builds the canonical form of a JSON object member by member.
#[derive(Debug, Default)]
pub struct CanonicalObject {
    members: Vec<(String, Vec<u8>)>,
}

impl CanonicalObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member by value (canonicalized now).
    pub fn value(&mut self, key: &str, v: &Value) -> Result<&mut Self, JcsError> {
        self.members.push((key.to_owned(), canonicalize(v)?));
        Ok(self)
    }

    /// Adds a member whose value is already canonical JSON bytes.
    pub fn canonical(&mut self, key: &str, canonical: Vec<u8>) -> &mut Self {
        self.members.push((key.to_owned(), canonical));
        self
    }

    /// The canonical bytes: members sorted by the UTF-16 code units of their keys (RFC 8785
    /// §3.2.3), keys encoded as JSON strings, no whitespace.
    pub fn finish(mut self) -> Result<Vec<u8>, JcsError> {
        self.members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        let mut out = Vec::with_capacity(self.members.iter().map(|m| m.0.len() + m.1.len() + 4).sum::<usize>() + 2);
        out.push(b'{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(k, &mut out);
            out.push(b':');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Writes the canonical form of an object whose member names the caller gives already in
/// RFC 8785 order: a typed record with fixed names (the audit entry's hash input) written
/// straight from its fields, with no `Value` copy and no sort. [`CanonicalObject`] takes
/// members in any order. Debug builds check the order.
#[derive(Debug, Default)]
pub struct OrderedObject {
    out: Vec<u8>,
    last: Option<&'static str>,
}

impl OrderedObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, k: &'static str) {
        debug_assert!(self.last.is_none_or(|l| l.encode_utf16().lt(k.encode_utf16())), "member {k} out of RFC 8785 order");
        self.out.push(if self.last.is_none() { b'{' } else { b',' });
        self.last = Some(k);
        write_string(k, &mut self.out);
        self.out.push(b':');
    }

    /// Adds a string member; `None` leaves the member out.
    pub fn string(&mut self, k: &'static str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.key(k);
            write_string(v, &mut self.out);
        }
        self
    }

    /// Adds a member by value (canonicalized now).
    pub fn value(&mut self, k: &'static str, v: &Value) -> Result<&mut Self, JcsError> {
        self.key(k);
        write_value(v, &mut self.out)?;
        Ok(self)
    }

    /// The canonical bytes.
    pub fn finish(mut self) -> Vec<u8> {
        if self.last.is_none() {
            self.out.push(b'{');
        }
        self.out.push(b'}');
        self.out
    }
}

/// Canonical bytes of a JSON array of already-canonical items.
pub fn canonical_array(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it);
    }
    out.push(b']');
    out
}

#[cfg(test)]
#[path = "jcs_props.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn spliced_object_equals_whole_canonicalization() {
        let cred = json!({"b": 1, "a": [true, null, "x\u{e9}"], "é": {"z": 1.5, "y": "é"}});
        let doc = json!({"holder": "did:x", "verifiableCredential": [cred, cred], "@context": ["a"], "type": ["VerifiablePresentation"]});
        let c = canonicalize(&cred).unwrap();
        let mut o = CanonicalObject::new();
        o.value("holder", &doc["holder"]).unwrap();
        o.value("@context", &doc["@context"]).unwrap();
        o.value("type", &doc["type"]).unwrap();
        o.canonical("verifiableCredential", canonical_array(&[&c, &c]));
        assert_eq!(o.finish().unwrap(), canonicalize(&doc).unwrap());
    }

    #[test]
    fn ordered_object_equals_whole_canonicalization() {
        let mut o = OrderedObject::new();
        o.string("a", Some("x\u{1}\"")).string("absent", None);
        o.value("b", &json!({"z": 1, "y": [1.5, "é"]})).unwrap().string("c\u{1F600}", Some("é"));
        assert_eq!(o.finish(), canonicalize(&json!({"a": "x\u{1}\"", "b": {"z": 1, "y": [1.5, "é"]}, "c\u{1F600}": "é"})).unwrap());
        assert_eq!(OrderedObject::new().finish(), b"{}");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of RFC 8785 order")]
    fn ordered_object_refuses_members_out_of_order() {
        OrderedObject::new().string("b", Some("1")).string("a", Some("2"));
    }

    /// Arbitrary JSON, with keys and strings drawn to hit escapes, non-ASCII and non-BMP
    /// characters, and numbers across integers, large integers and fractions.
    fn arb_json() -> impl Strategy<Value = Value> {
        let text = "[a-z@\"\\\\\u{0}-\u{1f}\u{7f}é\u{e000}\u{ffff}\u{1F600}\u{2028}]{0,6}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(text, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn equals_the_reference_canonicalizer(v in arb_json()) {
            prop_assert_eq!(canonicalize(&v).unwrap(), serde_json_canonicalizer::to_vec(&v).unwrap());
        }
    }

    proptest! {
        #[test]
        fn skipping_a_member_equals_removing_it(v in arb_json(), skip in "[a-z@é]{0,2}") {
            let Value::Object(mut map) = json!({"proof": {"p": 1}, "x": v.clone()}) else { unreachable!() };
            if let Value::Object(extra) = &v {
                map.extend(extra.clone());
            }
            let skipped = canonicalize_object(&map, Some(&skip)).unwrap();
            map.remove(&skip);
            prop_assert_eq!(skipped, canonicalize(&Value::Object(map)).unwrap());
        }
    }

    proptest! {
        #[test]
        fn splicing_matches_for_any_keys(keys in proptest::collection::btree_set("[a-zA-Z@é\u{1F600}]{1,6}", 1..8), n in 0i64..1000) {
            let mut map = serde_json::Map::new();
            let mut o = CanonicalObject::new();
            for k in &keys {
                let v = json!({"n": n, "k": k});
                o.value(k, &v).unwrap();
                map.insert(k.clone(), v);
            }
            prop_assert_eq!(o.finish().unwrap(), canonicalize(&Value::Object(map)).unwrap());
        }
    }
}
