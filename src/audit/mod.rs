//! The audit trail's data model: entries hash-chained over their RFC 8785 canonical form
//! (each entry commits to the previous one), and the pure check that a sequence of entries
//! is an unbroken chain. Appending (and sealing at rest) is the service's job.
//!
//! Must never: contain a token, a key or a secret; entries carry ids, codes and hashes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

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
    /// The hash this entry must carry.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("hash");
        }
        let canonical = crate::vc::jcs::canonicalize(&v).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
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
