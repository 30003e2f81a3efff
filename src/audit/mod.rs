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
/// tenant's audit key (listed in the tenant DID document as `#audit-N`). Stored as the
/// details of an `audit.checkpoint` entry, so checkpoints are part of the chain they sign.
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

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn signing_input(tenant: &str, seq: u64, head: &str, time: &str, key: &str) -> Vec<u8> {
        let v = serde_json::json!({"tenant": tenant, "seq": seq, "head": head, "time": time, "key": key});
        crate::vc::jcs::canonicalize(&v).unwrap_or_default()
    }

    /// Checks the signature with the audit key's public half.
    pub fn verify(&self, key: &crate::crypto::PublicKey) -> bool {
        let Ok((_, sig)) = multibase::decode(&self.signature) else { return false };
        let input = Self::signing_input(&self.tenant, self.seq, &self.head, &self.time, &self.key);
        crate::crypto::verify_strict(key, &input, &sig).is_ok()
    }
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

/// Verifies a whole trail from its first entry: the hash chain, and every checkpoint's
/// signature (by a key `key_for(did_url)` returns) and its claim about the chain.
pub fn verify_trail(entries: &[Entry], key_for: &dyn Fn(&str) -> Option<crate::crypto::PublicKey>) -> TrailReport {
    let mut prev = GENESIS.to_owned();
    let mut checkpoints = 0;
    let fail = |i: usize, e: &Entry, reason: &str, prev: &str, checkpoints: usize| TrailReport {
        ok: false,
        entries: i,
        head_hash: prev.to_owned(),
        checkpoints,
        first_bad: Some(Break { position: i, seq: Some(e.seq), reason: reason.to_owned() }),
    };
    for (i, e) in entries.iter().enumerate() {
        if let Err(b) = verify_chain(std::iter::once(e), i as u64 + 1, &prev) {
            return fail(i, e, &b.reason, &prev, checkpoints);
        }
        if e.event == "audit.checkpoint" {
            let Ok(cp) = serde_json::from_value::<Checkpoint>(e.details.clone()) else {
                return fail(i, e, "malformed checkpoint", &prev, checkpoints);
            };
            let claims_prev = cp.seq + 1 == e.seq && cp.head == e.prev && cp.tenant == e.tenant;
            let signed = key_for(&cp.key).is_some_and(|k| cp.verify(&k));
            if !claims_prev || !signed {
                return fail(i, e, "checkpoint signature or claim does not verify", &prev, checkpoints);
            }
            checkpoints += 1;
        }
        prev = e.hash.clone();
    }
    TrailReport { ok: true, entries: entries.len(), head_hash: prev, checkpoints, first_bad: None }
}
