//! The audit trail's data model: entries hash-chained over their RFC 8785 canonical form
//! (each entry commits to the previous one), and the pure check that a sequence of entries
//! is an unbroken chain. Appending (and sealing at rest) is the service's job.
//!
//! Must never: contain a token, a key or a secret; entries carry ids, codes and hashes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::vc::jcs;

/// Hash of the (virtual) entry before the first one.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3, … per tenant, without gaps.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub time: String,
    pub tenant: String,
    /// Event type, e.g. `presentation.granted`.
    pub event: String,
    /// `token:{id}`, `agent:{id}` or `system`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Event-specific, secret-free details.
    pub details: Value,
    /// `hash` of the previous entry (hex), [`GENESIS`] for the first.
    pub prev: String,
    /// SHA-256 over the canonical form of every other field (hex).
    pub hash: String,
}

impl Entry {
    /// The hash this entry must carry: SHA-256 over the RFC 8785 form of every field but
    /// `hash`. Undigestible details (a number JCS cannot write) hash as the empty input,
    /// as they always have.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_without_hash().unwrap_or_default()))
    }

    /// The JCS form of the entry without `hash`, written field by field: every presentation
    /// hashes an entry, and going through a `Value` copy of it cost more than the hash.
    /// A property test holds it equal to canonicalizing the serialized entry.
    fn canonical_without_hash(&self) -> Result<Vec<u8>, jcs::JcsError> {
        let mut o = jcs::OrderedObject::new();
        o.string("actor", Some(&self.actor)).string("agent", self.agent.as_deref());
        o.value("details", &self.details)?;
        o.string("event", Some(&self.event)).string("prev", Some(&self.prev)).string("request_id", self.request_id.as_deref());
        o.value("seq", &Value::from(self.seq))?;
        o.string("tenant", Some(&self.tenant)).string("time", Some(&self.time));
        Ok(o.finish())
    }
}

/// Where a chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// Position in the given sequence (0-based).
    pub position: usize,
    /// The entry's own `seq`, when readable.
    pub seq: Option<u64>,
    pub reason: String,
}

/// Checks `entries` (in order, starting at seq `first_seq` after `prev_hash`).
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a Entry>, first_seq: u64, prev_hash: &str) -> Result<(usize, String), Break> {
    let mut prev = prev_hash.to_owned();
    let mut n = 0;
    for (expect, (i, e)) in (first_seq..).zip(entries.into_iter().enumerate()) {
        let fail = |reason: &str| Break { position: i, seq: Some(e.seq), reason: reason.to_owned() };
        if e.seq != expect {
            return Err(fail("sequence number out of order (entry missing, duplicated or reordered)"));
        }
        if e.prev != prev {
            return Err(fail("does not link to the previous entry"));
        }
        if e.compute_hash() != e.hash {
            return Err(fail("content does not match its hash (entry modified)"));
        }
        prev = e.hash.clone();
        n += 1;
    }
    Ok((n, prev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn field_by_field_hash_input_equals_canonicalizing_the_entry(
            seq in any::<u64>(),
            text in proptest::collection::vec("[a-z\"\\\u{0}-\u{1f}é\u{e000}\u{1F600}]{0,8}", 6),
            agent in proptest::option::of("[a-z0-9-]{1,12}"),
            request_id in proptest::option::of("[a-zA-Z0-9:._-]{1,16}"),
            n in any::<i64>(),
            f in -1e9f64..1e9,
        ) {
            let e = Entry {
                seq,
                time: text[0].clone(),
                tenant: text[1].clone(),
                event: text[2].clone(),
                actor: text[3].clone(),
                agent,
                request_id,
                details: serde_json::json!({text[4].clone(): n, "f": f, "nested": {"é": [text[5].clone(), null, true]}, "big": u64::MAX}),
                prev: GENESIS.into(),
                hash: "ignored".into(),
            };
            let mut v = serde_json::to_value(&e).unwrap();
            v.as_object_mut().unwrap().remove("hash");
            prop_assert_eq!(e.canonical_without_hash().unwrap(), jcs::canonicalize(&v).unwrap());
        }
    }

    fn chain(n: u64) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = Entry {
                    seq,
                    time: "2026-01-01T00:00:00Z".into(),
                    tenant: "t".into(),
                    event: "x".into(),
                    actor: "system".into(),
                    agent: None,
                    request_id: None,
                    details: serde_json::json!({"n": seq}),
                    prev: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.compute_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn detects_edits_deletions_and_reorders() {
        let c = chain(5);
        assert_eq!(verify_chain(&c, 1, GENESIS).unwrap().0, 5);
        let mut edited = c.clone();
        edited[2].details = serde_json::json!({"n": 99});
        assert_eq!(verify_chain(&edited, 1, GENESIS).unwrap_err().position, 2);
        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(verify_chain(&deleted, 1, GENESIS).unwrap_err().position, 1);
        let mut swapped = c.clone();
        swapped.swap(3, 4);
        assert_eq!(verify_chain(&swapped, 1, GENESIS).unwrap_err().position, 3);
        let mut relinked = c;
        relinked[4].prev = GENESIS.into();
        relinked[4].hash = relinked[4].compute_hash();
        assert_eq!(verify_chain(&relinked, 1, GENESIS).unwrap_err().position, 4);
    }
}

/// A signed statement "the chain of `tenant` had head `head` at `seq`", made with the
/// tenant's audit key (listed in the tenant DID document as `#audit-N`, under the
/// `auditCheckpoint` relationship only). Stored as the details of an `audit.checkpoint`
/// entry, so checkpoints are part of the chain they sign; the latest one is also published
/// at `/tenants/{tenant}/audit/checkpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub tenant: String,
    pub seq: u64,
    pub head: String,
    pub time: String,
    /// DID URL of the audit key.
    pub key: String,
    /// base58btc multibase Ed25519 signature over the canonical form of the other fields.
    pub signature: String,
}

/// The event of a checkpoint entry.
pub const CHECKPOINT_EVENT: &str = "audit.checkpoint";

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn signing_input(tenant: &str, seq: u64, head: &str, time: &str, key: &str) -> Vec<u8> {
        let v = serde_json::json!({"tenant": tenant, "seq": seq, "head": head, "time": time, "key": key});
        crate::vc::jcs::canonicalize(&v).unwrap_or_default()
    }

    /// Checks the signature with the audit key's public half. This says nothing about
    /// whose key it is: [`Checkpoint::verify_for`] does.
    pub fn verify(&self, key: &crate::crypto::PublicKey) -> bool {
        let Ok((_, sig)) = multibase::decode(&self.signature) else { return false };
        let input = Self::signing_input(&self.tenant, self.seq, &self.head, &self.time, &self.key);
        crate::crypto::verify_strict(key, &input, &sig).is_ok()
    }

    /// Checks that this is the checkpoint of the tenant whose DID document `tenant_doc` is,
    /// signed by one of its audit keys: `tenant_doc` must be a Sigil tenant's DID document
    /// (`did:web:…:tenants:{tenant}`, obtained from a source the verifier trusts, never
    /// from the trail), the checkpoint must name that tenant, and its key must be a method
    /// of that DID listed under `auditCheckpoint`.
    pub fn verify_for(&self, tenant_doc: &Value) -> Result<(), String> {
        let (did, tenant) = tenant_of_document(tenant_doc)?;
        if self.tenant != tenant {
            return Err(format!("checkpoint of tenant {:?}, not of {did}", self.tenant));
        }
        let key = crate::vc::did::key_for(tenant_doc, &self.key, crate::vc::did::AUDIT_CHECKPOINT)
            .map_err(|e| format!("checkpoint key {} is not an audit key of {did}: {e}", self.key))?;
        if !self.verify(&key) {
            return Err(format!("checkpoint signature does not verify with {}", self.key));
        }
        Ok(())
    }
}

/// The DID and the tenant id a Sigil tenant's DID document names (`did:web:HOST:tenants:T`).
pub fn tenant_of_document(doc: &Value) -> Result<(&str, &str), String> {
    let did = doc.get("id").and_then(Value::as_str).ok_or("the DID document has no id")?;
    let tenant = did
        .strip_prefix("did:web:")
        .and_then(|rest| rest.rsplit_once(":tenants:"))
        .map(|(_, t)| t)
        .filter(|t| !t.is_empty() && !t.contains(':'))
        .ok_or_else(|| format!("{did} is not a Sigil tenant's DID (did:web:HOST:tenants:TENANT)"))?;
    Ok((did, tenant))
}

/// Result of verifying an exported or stored trail.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrailReport {
    pub ok: bool,
    pub entries: usize,
    pub head_hash: String,
    pub checkpoints: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<Break>,
}

/// Verifies a whole trail from its first entry against the tenant's DID document: the hash
/// chain, that every entry is that tenant's, and every checkpoint's signature and claim
/// about the chain ([`Checkpoint::verify_for`]). `tenant_doc` must come from a source the
/// verifier trusts (its own store, a pinned file, a trusted tenant URL): a trail that names
/// its own keys proves nothing, since anyone can re-chain entries and sign them.
pub fn verify_trail(entries: &[Entry], tenant_doc: &Value) -> TrailReport {
    let mut prev = GENESIS.to_owned();
    let mut checkpoints = 0;
    let fail = |i: usize, e: Option<&Entry>, reason: &str, prev: &str, checkpoints: usize| TrailReport {
        ok: false,
        entries: i,
        head_hash: prev.to_owned(),
        checkpoints,
        first_bad: Some(Break { position: i, seq: e.map(|e| e.seq), reason: reason.to_owned() }),
    };
    let tenant = match tenant_of_document(tenant_doc) {
        Ok((_, t)) => t,
        Err(reason) => return fail(0, entries.first(), &reason, &prev, 0),
    };
    for (i, e) in entries.iter().enumerate() {
        match check_entry(e, i as u64 + 1, &prev, tenant, tenant_doc) {
            Ok(is_checkpoint) => checkpoints += usize::from(is_checkpoint),
            Err(reason) => return fail(i, Some(e), &reason, &prev, checkpoints),
        }
        prev = e.hash.clone();
    }
    TrailReport { ok: true, entries: entries.len(), head_hash: prev, checkpoints, first_bad: None }
}

/// One entry of `tenant`'s chain: `seq` and linked to `prev`, intact, that tenant's, and,
/// when it is a checkpoint, signed by the tenant's audit key over the head it extends.
/// `Ok(true)` for a checkpoint.
fn check_entry(e: &Entry, seq: u64, prev: &str, tenant: &str, tenant_doc: &Value) -> Result<bool, String> {
    verify_chain(std::iter::once(e), seq, prev).map_err(|b| b.reason)?;
    if e.tenant != tenant {
        return Err(format!("entry of tenant {:?}, not of the tenant of the DID document ({tenant:?})", e.tenant));
    }
    if e.event != CHECKPOINT_EVENT {
        return Ok(false);
    }
    let cp = serde_json::from_value::<Checkpoint>(e.details.clone()).map_err(|_| "malformed checkpoint".to_owned())?;
    if !(cp.seq + 1 == e.seq && cp.head == e.prev) {
        return Err("checkpoint claim does not match the chain".into());
    }
    cp.verify_for(tenant_doc)?;
    Ok(true)
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;
    use crate::crypto::Signer;
    use crate::vc::did::{Method, Purpose, document};

    const DID: &str = "did:web:x:tenants:t";

    fn doc_with(did: &str, audit: &Signer, purpose: Purpose) -> Value {
        document(did, &[Method { fragment: "audit-1".into(), public: audit.public(), current: true, purpose }], Some("https://x/ns/v1"))
    }

    /// Appends an entry (a checkpoint over the current head when `checkpoint`, signed by
    /// `signer` as `key`) to `trail`.
    fn push(trail: &mut Vec<Entry>, checkpoint: Option<(&Signer, &str)>, salt: u32) {
        let (seq, prev) = trail.last().map_or((1, GENESIS.to_owned()), |e| (e.seq + 1, e.hash.clone()));
        let (event, details) = match checkpoint {
            Some((signer, key)) => {
                let time = "2026-01-01T00:00:00Z";
                let input = Checkpoint::signing_input("t", seq - 1, &prev, time, key);
                let signature = multibase::encode(multibase::Base::Base58Btc, signer.sign(&input));
                let cp = Checkpoint { tenant: "t".into(), seq: seq - 1, head: prev.clone(), time: time.into(), key: key.into(), signature };
                (CHECKPOINT_EVENT, serde_json::to_value(cp).unwrap())
            }
            None => ("x", serde_json::json!({"n": seq, "salt": salt})),
        };
        let mut e = Entry {
            seq,
            time: "2026-01-01T00:00:00Z".into(),
            tenant: "t".into(),
            event: event.into(),
            actor: "system".into(),
            agent: None,
            request_id: None,
            details,
            prev,
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        trail.push(e);
    }

    fn trail(signer: &Signer, key: &str) -> Vec<Entry> {
        salted(signer, key, 0)
    }

    /// Six entries, the third and the sixth checkpoints; `salt` changes the others.
    fn salted(signer: &Signer, key: &str, salt: u32) -> Vec<Entry> {
        let mut t = Vec::new();
        for i in 0..6 {
            push(&mut t, (i == 2 || i == 5).then_some((signer, key)), salt);
        }
        t
    }

    #[test]
    fn checkpoints_must_be_signed_by_an_audit_key_of_the_tenant() {
        let audit = Signer::generate();
        let doc = doc_with(DID, &audit, Purpose::AuditCheckpoint);
        let r = verify_trail(&trail(&audit, &format!("{DID}#audit-1")), &doc);
        assert!(r.ok && r.checkpoints == 2, "{r:?}");
        // Re-chained and signed by a key of someone else's DID: the forger's own did:key,
        // or a look-alike did:web for the same tenant id.
        let forger = Signer::generate();
        let mb = crate::vc::multikey::encode(&forger.public());
        for key in [format!("did:key:{mb}#{mb}"), "did:web:evil.example:tenants:t#audit-1".to_owned()] {
            let r = verify_trail(&trail(&forger, &key), &doc);
            assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(Some(3)), "{key}: {r:?}");
            assert!(r.first_bad.unwrap().reason.contains("is not an audit key of did:web:x:tenants:t"));
        }
        // The forger's own document does not make it the tenant's: the pinned document
        // must name the trail's tenant.
        let evil = doc_with("did:web:evil.example:tenants:u", &forger, Purpose::AuditCheckpoint);
        let r = verify_trail(&trail(&forger, "did:web:evil.example:tenants:u#audit-1"), &evil);
        assert_eq!(r.first_bad.map(|b| (b.seq, b.reason.contains("not of the tenant"))), Some((Some(1), true)));
        assert!(!verify_trail(&trail(&audit, "did:key:z#z"), &serde_json::json!({"id": "did:key:z"})).ok);
        // The right key under a signing relationship is not an audit key.
        let r = verify_trail(&trail(&audit, &format!("{DID}#audit-1")), &doc_with(DID, &audit, Purpose::Sign));
        assert!(r.first_bad.unwrap().reason.contains("not authorized for this proof purpose"));
    }
}
