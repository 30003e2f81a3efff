//! RFC 8785 (JCS) canonicalization. The algorithm itself is the `serde_json_canonicalizer`
//! crate's; Sigil adds only [`CanonicalObject`], which assembles the canonical form of an
//! object from members whose canonical forms were computed earlier (the credentials inside
//! a presentation never change, so the hot path does not canonicalize them again).

use serde_json::Value;

/// Why canonicalization failed (numbers JCS cannot represent, e.g. non-finite).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document cannot be canonicalized (RFC 8785)")]
pub struct JcsError;

/// Canonical UTF-8 bytes of a JSON value.
pub fn canonicalize(v: &Value) -> Result<Vec<u8>, JcsError> {
    serde_json_canonicalizer::to_vec(v).map_err(|_| JcsError)
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
            out.extend_from_slice(&canonicalize(&Value::String(k.clone()))?);
            out.push(b':');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Ok(out)
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
