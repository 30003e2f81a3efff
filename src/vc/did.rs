//! DID documents (DID Core 1.0 with Multikey verification methods) and the `did:web` /
//! `did:key` rules a verifier needs to find a key: which URL a did:web resolves from, and
//! the key a did:key carries.

use serde_json::{Value, json};

use super::multikey;
use crate::crypto::PublicKey;

/// The contexts every DID document Sigil serves uses.
pub const DID_CONTEXTS: [&str; 2] = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"];

/// The verification relationship of a tenant's audit keys, and of nothing else: a key
/// listed here signs audit checkpoints, and a verifier that looks for it under
/// `assertionMethod` or `authentication` (credentials, presentations) does not find it.
/// Defined in Sigil's JSON-LD context (`sigil:auditCheckpoint`), which a document listing
/// it names in its `@context`.
pub const AUDIT_CHECKPOINT: &str = "auditCheckpoint";

/// What a verification method is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Signs credentials or presentations: `authentication` and `assertionMethod`.
    Sign,
    /// Signs audit checkpoints: [`AUDIT_CHECKPOINT`] only.
    AuditCheckpoint,
}

/// One verification method to list.
#[derive(Debug, Clone)]
pub struct Method {
    /// Fragment without `#`, e.g. `key-2` or `issuer-1`.
    pub fragment: String,
    pub public: PublicKey,
    /// Listed under the relationships of its `purpose` (a current key); otherwise only
    /// resolvable.
    pub current: bool,
    pub purpose: Purpose,
}

/// Builds a DID document. Only `current` methods are in the verification relationships of
/// their purpose; the others stay resolvable so proofs they made can still be checked.
/// `sigil_context` (the URL of Sigil's JSON-LD context) is added to `@context` when given;
/// a document with audit keys needs it, since it defines [`AUDIT_CHECKPOINT`].
pub fn document(did: &str, methods: &[Method], sigil_context: Option<&str>) -> Value {
    let vms: Vec<Value> = methods
        .iter()
        .map(|m| {
            json!({
                "id": format!("{did}#{}", m.fragment),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey::encode(&m.public),
            })
        })
        .collect();
    let current = |purpose: Purpose| -> Vec<Value> {
        methods.iter().filter(|m| m.current && m.purpose == purpose).map(|m| Value::String(format!("{did}#{}", m.fragment))).collect()
    };
    let signing = current(Purpose::Sign);
    let mut contexts: Vec<&str> = DID_CONTEXTS.to_vec();
    contexts.extend(sigil_context);
    let mut doc = json!({
        "@context": contexts,
        "id": did,
        "verificationMethod": vms,
        "authentication": signing,
        "assertionMethod": signing,
    });
    if let Some(o) = doc.as_object_mut().filter(|_| methods.iter().any(|m| m.purpose == Purpose::AuditCheckpoint)) {
        o.insert(AUDIT_CHECKPOINT.to_owned(), Value::Array(current(Purpose::AuditCheckpoint)));
    }
    doc
}

/// The longest DID or DID URL looked at, in bytes, checked before it is split or
/// rewritten. A did:web DID becomes an HTTPS URL of about its own length, and the egress
/// policy refuses URLs over 2048 characters (`service::egress::MAX_URL`); a DID no fetch
/// could serve is refused here before it is decoded, kept or used as a cache key.
pub const MAX_DID_URL: usize = 2048;

/// The HTTPS URL a `did:web` DID document is fetched from (did:web spec §3.2).
pub fn did_web_url(did: &str) -> Option<String> {
    if did.len() > MAX_DID_URL {
        return None;
    }
    let rest = did.strip_prefix("did:web:")?;
    let mut parts = rest.split(':');
    let host = parts.next()?.replace("%3A", ":").replace("%3a", ":");
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return None;
    }
    let path: Vec<&str> = parts.collect();
    // A dot segment in any spelling: an HTTP client's URL parser reads `%2e` as `.`, so
    // `did:web:host:a:%2e%2e` would fetch `https://host/did.json`.
    let dot = |p: &str| matches!(p.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..");
    if path.iter().any(|p| p.is_empty() || p.contains(['/', '?', '#']) || dot(p)) {
        return None;
    }
    if path.is_empty() {
        Some(format!("https://{host}/.well-known/did.json"))
    } else {
        Some(format!("https://{host}/{}/did.json", path.join("/")))
    }
}

/// The key of a `did:key` (Ed25519 only) and its DID document.
pub fn did_key_document(did: &str) -> Option<(PublicKey, Value)> {
    let mb = did.strip_prefix("did:key:")?;
    let pk = multikey::decode(mb)?;
    let doc = document(did, &[Method { fragment: mb.to_owned(), public: pk, current: true, purpose: Purpose::Sign }], None);
    Some((pk, doc))
}

/// Splits a DID URL into (DID, fragment).
pub fn split_did_url(url: &str) -> Option<(&str, &str)> {
    if url.len() > MAX_DID_URL {
        return None;
    }
    url.split_once('#').filter(|(d, f)| d.starts_with("did:") && !f.is_empty())
}

/// Finds a verification method's public key in `doc` if it is listed under `relationship`
/// (`authentication`, `assertionMethod` or [`AUDIT_CHECKPOINT`]) and controlled by the
/// document's DID.
pub fn key_for(doc: &Value, method_id: &str, relationship: &str) -> Result<PublicKey, &'static str> {
    let did = doc.get("id").and_then(Value::as_str).ok_or("DID document has no id")?;
    if split_did_url(method_id).map(|(d, _)| d) != Some(did) {
        return Err("verification method does not belong to the resolved DID");
    }
    if doc.get("deactivated").and_then(Value::as_bool) == Some(true) {
        return Err("DID is deactivated");
    }
    let listed = doc
        .get(relationship)
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(method_id) || r.get("id").and_then(Value::as_str) == Some(method_id)));
    if !listed {
        return Err("key is not authorized for this proof purpose");
    }
    let vm = doc
        .get("verificationMethod")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|m| m.get("id").and_then(Value::as_str) == Some(method_id)))
        .ok_or("verification method not found")?;
    if vm.get("controller").and_then(Value::as_str) != Some(did) {
        return Err("verification method has another controller");
    }
    if vm.get("type").and_then(Value::as_str) != Some("Multikey") {
        return Err("unsupported verification method type");
    }
    vm.get("publicKeyMultibase").and_then(Value::as_str).and_then(multikey::decode).ok_or("publicKeyMultibase is not an Ed25519 Multikey")
}

#[cfg(test)]
#[path = "did_props.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Signer;

    #[test]
    fn did_web_urls() {
        assert_eq!(did_web_url("did:web:example.com").unwrap(), "https://example.com/.well-known/did.json");
        assert_eq!(
            did_web_url("did:web:127.0.0.1%3A8443:tenants:acme:agents:ab").unwrap(),
            "https://127.0.0.1:8443/tenants/acme/agents/ab/did.json"
        );
        assert!(did_web_url("did:web:evil.com:..:x").is_none());
        assert!(did_web_url("did:web:a@b").is_none());
        assert!(did_web_url("did:key:z6Mk").is_none());
    }

    #[test]
    fn only_current_keys_are_authorized_but_all_resolve() {
        let (a, b) = (Signer::generate().public(), Signer::generate().public());
        let did = "did:web:x:tenants:t";
        let doc = document(
            did,
            &[
                Method { fragment: "key-1".into(), public: a, current: false, purpose: Purpose::Sign },
                Method { fragment: "key-2".into(), public: b, current: true, purpose: Purpose::Sign },
            ],
            None,
        );
        assert_eq!(key_for(&doc, "did:web:x:tenants:t#key-2", "authentication").unwrap(), b);
        assert!(key_for(&doc, "did:web:x:tenants:t#key-1", "authentication").is_err());
        assert!(key_for(&doc, "did:web:y:tenants:t#key-2", "authentication").is_err());
        let (pk, kdoc) = did_key_document("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2").unwrap();
        let vm = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2";
        assert_eq!(key_for(&kdoc, vm, "assertionMethod").unwrap(), pk);
    }

    /// An audit key is found only under its own relationship: it can neither sign
    /// credentials nor presentations, and a signing key cannot sign checkpoints.
    #[test]
    fn audit_keys_sit_only_in_their_own_relationship() {
        let (issuer, audit) = (Signer::generate().public(), Signer::generate().public());
        let did = "did:web:x:tenants:t";
        let doc = document(
            did,
            &[
                Method { fragment: "issuer-1".into(), public: issuer, current: true, purpose: Purpose::Sign },
                Method { fragment: "audit-1".into(), public: audit, current: true, purpose: Purpose::AuditCheckpoint },
            ],
            Some("https://x/ns/v1"),
        );
        let (a, i) = ("did:web:x:tenants:t#audit-1", "did:web:x:tenants:t#issuer-1");
        assert_eq!(key_for(&doc, a, AUDIT_CHECKPOINT).unwrap(), audit);
        assert!(key_for(&doc, a, "assertionMethod").is_err());
        assert!(key_for(&doc, a, "authentication").is_err());
        assert!(key_for(&doc, i, AUDIT_CHECKPOINT).is_err());
        assert_eq!(doc["@context"][2], "https://x/ns/v1");
        assert_eq!(doc[AUDIT_CHECKPOINT], serde_json::json!([a]));
    }
}
