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

/// Why a new checkpoint does not extend the one a monitor saw before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotExtended {
    /// The new checkpoint is at a lower sequence number: the trail was rolled back.
    RolledBack { seen: u64, now: u64 },
    /// The same sequence number with another head: two histories (a fork).
    Forked { seq: u64, seen: String, now: String },
    /// The entries between the two do not chain from the old head to the new one (or are
    /// not all there, or one of them does not verify).
    DoesNotExtend(String),
}

impl std::fmt::Display for NotExtended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotExtended::RolledBack { seen, now } => {
                write!(f, "rolled back: the checkpoint is at seq {now}, but one at seq {seen} was seen before")
            }
            NotExtended::Forked { seq, seen, now } => {
                write!(f, "forked: the checkpoint at seq {seq} has head {now}, but head {seen} was seen before at that seq")
            }
            NotExtended::DoesNotExtend(why) => write!(f, "the chain does not extend the checkpoint seen before: {why}"),
        }
    }
}

/// Proves, the way a transparency-log monitor does, that checkpoint `next` (already checked
/// with [`Checkpoint::verify_for`]) extends the chain a monitor last saw at (`seen_seq`,
/// `seen_head`; `0` and [`GENESIS`] before the first): `entries` must be exactly the entries
/// `seen_seq + 1 ..= next.seq`, each a valid entry of the tenant of `tenant_doc`, chaining
/// from `seen_head` to `next.head`. Returns how many entries were re-hashed. A monitor that
/// reads the entries page by page uses [`Rehash`] and [`Rehash::reaches`] instead.
pub fn verify_extension(
    seen_seq: u64,
    seen_head: &str,
    next: &Checkpoint,
    entries: &[Entry],
    tenant_doc: &Value,
) -> Result<usize, NotExtended> {
    compare_checkpoints(seen_seq, seen_head, next)?;
    let mut r = Rehash::new(tenant_doc, seen_seq, seen_head).map_err(NotExtended::DoesNotExtend)?;
    for e in entries.iter().take_while(|e| e.seq <= next.seq) {
        r.push(e)?;
    }
    r.reaches(next)
}

/// The checks that need no entries: `Ok(true)` when `next` is past what was seen (the
/// entries between must then be re-hashed), `Ok(false)` when it is the checkpoint seen.
pub fn compare_checkpoints(seen_seq: u64, seen_head: &str, next: &Checkpoint) -> Result<bool, NotExtended> {
    if next.seq < seen_seq {
        return Err(NotExtended::RolledBack { seen: seen_seq, now: next.seq });
    }
    if next.seq == seen_seq {
        if next.head != seen_head {
            return Err(NotExtended::Forked { seq: next.seq, seen: seen_head.to_owned(), now: next.head.clone() });
        }
        return Ok(false);
    }
    Ok(true)
}

/// Re-hashes a tenant's chain onward from a known (seq, head), one entry at a time, so a
/// monitor need not hold the entries between two checkpoints in memory.
#[derive(Debug)]
pub struct Rehash<'a> {
    doc: &'a Value,
    tenant: &'a str,
    from: u64,
    seq: u64,
    head: String,
}

impl<'a> Rehash<'a> {
    /// Starts after entry `seq` with hash `head` (`0` and [`GENESIS`]: the beginning) of the
    /// tenant whose DID document `tenant_doc` is.
    pub fn new(tenant_doc: &'a Value, seq: u64, head: &str) -> Result<Self, String> {
        let (_, tenant) = tenant_of_document(tenant_doc)?;
        Ok(Self { doc: tenant_doc, tenant, from: seq, seq, head: head.to_owned() })
    }

    /// The seq of the last entry re-hashed (or the start).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The next entry: it must follow, link, be intact and the tenant's (a checkpoint
    /// among them must verify too).
    pub fn push(&mut self, e: &Entry) -> Result<(), NotExtended> {
        check_entry(e, self.seq + 1, &self.head, self.tenant, self.doc)
            .map_err(|why| NotExtended::DoesNotExtend(format!("entry {}: {why}", self.seq + 1)))?;
        self.seq = e.seq;
        self.head.clone_from(&e.hash);
        Ok(())
    }

    /// Whether the entries pushed end exactly at `next`'s head; the count re-hashed.
    pub fn reaches(&self, next: &Checkpoint) -> Result<usize, NotExtended> {
        if self.seq != next.seq {
            return Err(NotExtended::DoesNotExtend(format!(
                "the entries stop at seq {}, before the checkpoint's seq {}",
                self.seq, next.seq
            )));
        }
        if self.head != next.head {
            return Err(NotExtended::DoesNotExtend(format!(
                "entry {} has hash {}, the checkpoint claims head {}",
                self.seq, self.head, next.head
            )));
        }
        Ok(usize::try_from(self.seq - self.from).unwrap_or(usize::MAX))
    }
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

    #[test]
    fn a_new_checkpoint_must_extend_the_one_seen() {
        let audit = Signer::generate();
        let doc = doc_with(DID, &audit, Purpose::AuditCheckpoint);
        let key = format!("{DID}#audit-1");
        let t = trail(&audit, &key);
        let cp = |i: usize| serde_json::from_value::<Checkpoint>(t[i].details.clone()).unwrap();
        let (first, second) = (cp(2), cp(5));
        assert_eq!((first.seq, second.seq), (2, 5));
        // From nothing to the first, from the first to the second, and the same one again.
        assert_eq!(verify_extension(0, GENESIS, &first, &t, &doc), Ok(2));
        assert_eq!(verify_extension(2, &first.head, &second, &t[2..], &doc), Ok(3));
        assert_eq!(verify_extension(5, &second.head, &second, &[], &doc), Ok(0));
        // Rolled back, forked, and a history that does not continue the one seen.
        assert!(matches!(verify_extension(5, &second.head, &first, &t[2..], &doc), Err(NotExtended::RolledBack { seen: 5, now: 2 })));
        assert!(matches!(verify_extension(2, GENESIS, &first, &[], &doc), Err(NotExtended::Forked { seq: 2, .. })));
        let other = salted(&audit, &key, 1);
        let r = verify_extension(2, &first.head, &serde_json::from_value(other[5].details.clone()).unwrap(), &other[2..], &doc);
        assert!(matches!(r, Err(NotExtended::DoesNotExtend(ref why)) if why.contains("entry 3")), "{r:?}");
        let r = verify_extension(2, &first.head, &second, &t[2..4], &doc);
        assert!(matches!(r, Err(NotExtended::DoesNotExtend(ref why)) if why.contains("stop at seq 4")), "{r:?}");
    }
}
