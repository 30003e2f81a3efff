//! Reading the audit trail: paged queries, verification of the whole chain against its
//! signed checkpoints and its authenticated head, export for offline verification, and the
//! latest signed checkpoint, published for monitors (`sigil audit watch`).
//!
//! Must never: write to the trail (the kernel's journal does), or show an entry of one
//! tenant to another.

use crate::audit::{Break, CHECKPOINT_EVENT, Checkpoint, Entry, TrailReport, verify_trail};
use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::ids::TenantId;
use crate::service::kernel::journal::{Event, StoredHead};
use crate::service::kernel::mutation::Effects;
use crate::service::model::records::kind;
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after: Option<u64>,
    pub agent: Option<String>,
    pub event: Option<String>,
    pub request_id: Option<String>,
    pub from: Option<jiff::Timestamp>,
    pub to: Option<jiff::Timestamp>,
    pub limit: usize,
}

/// At most this many entries are examined per page, so a selective filter cannot make one
/// request scan the whole trail; the cursor continues from where it stopped.
const SCAN_BUDGET: usize = 5_000;

impl Sigil {
    /// Appends a checkpoint signed by the tenant's audit key over the current head.
    pub async fn audit_checkpoint(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        let rec = self.tenant_record(tenant).await?;
        let key = rec
            .audit_keys
            .iter()
            .find(|k| k.state == crate::service::model::records::KeyState::Active)
            .ok_or_else(|| ServiceError::Internal("tenant has no audit key".into()))?;
        let signer = self.signer(tenant, "audit", key.version).await?;
        let vm = format!("{}#audit-{}", self.tenant_did(tenant), key.version);
        let now = rfc3339(self.clock.now());
        let t = tenant.as_str().to_owned();
        self.record_over_head(tenant, "system:audit", Event::new(CHECKPOINT_EVENT, serde_json::Value::Null), move |seq, head| {
            let input = Checkpoint::signing_input(&t, seq, head, &now, &vm);
            let sig = multibase::encode(multibase::Base::Base58Btc, signer.sign(&input));
            let cp = Checkpoint { tenant: t.clone(), seq, head: head.to_owned(), time: now.clone(), key: vm.clone(), signature: sig };
            serde_json::to_value(cp).map_err(|e| ServiceError::Internal(e.to_string()))
        })
        .await
    }

    /// Appends a checkpoint when entries were added since the last one (housekeeping).
    pub async fn checkpoint_if_needed(&self, tenant: &TenantId) -> Result<bool, ServiceError> {
        let seq = self.audit_head_seq(tenant).await?;
        if seq == 0 {
            return Ok(false);
        }
        let last = self.audit_entries(tenant, seq - 1, 1).await?;
        if last.first().is_some_and(|e| e.event == CHECKPOINT_EVENT) {
            return Ok(false);
        }
        self.audit_checkpoint(tenant).await?;
        Ok(true)
    }
}

impl Sigil {
    /// A page of entries (admins and auditors); `next_cursor` is the last seq examined.
    pub async fn audit_list(
        &self,
        caller: &Caller,
        tenant: &crate::ids::TenantId,
        q: AuditQuery,
    ) -> Result<crate::service::Page<Entry>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let mut after = match (q.after, q.from) {
            (Some(a), _) => a,
            (None, Some(from)) => self.audit_seq_before(t, from).await?,
            (None, None) => 0,
        };
        let mut items = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = self.audit_entries(t, after, 500).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                return Ok(crate::service::Page { items, next_cursor: None });
            };
            for e in batch {
                after = e.seq;
                scanned += 1;
                let t_ok = |bound: Option<jiff::Timestamp>, cmp: fn(&jiff::Timestamp, &jiff::Timestamp) -> bool| {
                    bound.is_none_or(|b| e.time.parse::<jiff::Timestamp>().is_ok_and(|et| cmp(&et, &b)))
                };
                if q.to.is_some_and(|to| e.time.parse::<jiff::Timestamp>().is_ok_and(|et| et >= to)) {
                    // Entries are in time order: nothing later can match.
                    return Ok(crate::service::Page { items, next_cursor: None });
                }
                let keep = q.agent.as_deref().is_none_or(|a| e.agent.as_deref() == Some(a))
                    && q.request_id.as_deref().is_none_or(|r| e.request_id.as_deref() == Some(r))
                    && q.event.as_deref().is_none_or(|ev| e.event == ev || e.event.starts_with(&format!("{ev}.")))
                    && t_ok(q.from, |a, b| a >= b)
                    && t_ok(q.to, |a, b| a < b);
                if keep {
                    items.push(e);
                    if items.len() >= q.limit {
                        return Ok(crate::service::Page { items, next_cursor: Some(after.to_string()) });
                    }
                }
            }
            if scanned >= SCAN_BUDGET {
                return Ok(crate::service::Page { items, next_cursor: Some(last.to_string()) });
            }
        }
    }

    /// The last seq whose entry is older than `from` (0 if none), by binary search over the
    /// chain: about log2(entries) single reads. Entries are appended in time order (one
    /// writer per tenant stamps each with the clock as it links it), so the entries at or
    /// after `from` are exactly those after this seq.
    async fn audit_seq_before(&self, t: &TenantId, from: jiff::Timestamp) -> Result<u64, ServiceError> {
        let (mut lo, mut hi) = (0u64, self.audit_head_seq(t).await?);
        // Invariant: entry `lo` (or the start) is older than `from`; entries after `hi` are not.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let older = match self.audit_entries(t, mid - 1, 1).await?.first() {
                Some(e) => e.time.parse::<jiff::Timestamp>().is_ok_and(|et| et < from),
                None => false,
            };
            if older {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    async fn all_entries(&self, t: &TenantId) -> Result<Vec<Entry>, ServiceError> {
        let mut out = Vec::new();
        loop {
            let batch = self.audit_entries(t, out.last().map(|e: &Entry| e.seq).unwrap_or(0), 1000).await?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch);
        }
    }

    /// Verifies the stored trail (admins and auditors): the chain, every checkpoint against
    /// the tenant's own audit keys, and that the trail ends exactly at the authenticated
    /// chain head, so entries cut from the end are reported.
    pub async fn audit_verify(&self, caller: &Caller, tenant: &crate::ids::TenantId) -> Result<TrailReport, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let tk = self.tenant_keys(t).await?;
        let doc = self.tenant_did_document(tenant).await?;
        // Read before the entries: what is appended meanwhile only extends past it.
        let head_before = self.audit_head(t).await?;
        // Open entry by entry: a modified or moved sealed entry is itself the first bad one.
        let mut entries = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        let prefix = keys::audit_prefix(t);
        loop {
            let rows = self.store.scan(&prefix, after.as_deref(), 1000).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            for (k, blob) in rows {
                let seq = std::str::from_utf8(k.get(prefix.len()..).unwrap_or_default())
                    .ok()
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
                match self.open_record::<Entry>(&tk, t, kind::AUDIT, &seq.to_string(), &blob) {
                    Ok(e) => entries.push(e),
                    Err(_) => {
                        let mut r = verify_trail(&entries, &doc);
                        if r.ok {
                            r.ok = false;
                            r.first_bad = Some(crate::audit::Break {
                                position: entries.len(),
                                seq: Some(seq),
                                reason: "stored entry was modified or moved (does not open)".into(),
                            });
                        }
                        return Ok(r);
                    }
                }
            }
            after = Some(last);
        }
        let mut report = verify_trail(&entries, &doc);
        if report.ok {
            let head_after = self.audit_head(t).await?;
            if let Err(bad) = ends_at_head(&entries, &head_before, &head_after) {
                report.ok = false;
                report.first_bad = Some(bad);
            }
        }
        Ok(report)
    }

    /// The tenant's latest signed checkpoint (public, no token): what monitors compare
    /// with the last one they saw. `404 checkpoint_not_found` before the first.
    pub async fn audit_latest_checkpoint(&self, tenant: &TenantId) -> Result<Checkpoint, ServiceError> {
        let none = || ServiceError::not_found(ErrorCode::CheckpointNotFound, "this tenant has no signed checkpoint yet");
        // Fails for a tenant that does not exist (or is being deleted).
        self.tenant_keys(tenant).await?;
        let Some(b) = self.store.get(&keys::audit_latest_checkpoint(tenant)).await? else { return Err(none()) };
        let seq = std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ServiceError::Internal("malformed checkpoint pointer".into()))?;
        let entry = self.audit_entries(tenant, seq.saturating_sub(1), 1).await?.into_iter().next();
        let entry = entry
            .filter(|e| e.seq == seq && e.event == CHECKPOINT_EVENT)
            .ok_or_else(|| ServiceError::Internal("the checkpoint pointer names no checkpoint".into()))?;
        serde_json::from_value(entry.details).map_err(|e| ServiceError::Internal(format!("malformed checkpoint: {e}")))
    }

    /// The whole trail as JSON Lines, ending with a fresh checkpoint so all of it is signed.
    pub async fn audit_export(&self, caller: &Caller, tenant: &crate::ids::TenantId) -> Result<String, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        self.audit_checkpoint(t).await?;
        let mut out = String::new();
        for e in self.all_entries(t).await? {
            out.push_str(&serde_json::to_string(&e).map_err(|e| ServiceError::Internal(e.to_string()))?);
            out.push('\n');
        }
        Ok(out)
    }
}

impl Sigil {
    /// Checkpoints every tenant whose trail grew since its last checkpoint. A tenant whose
    /// chain cannot be extended (its head does not authenticate) is logged and skipped, so
    /// it does not hold up the others.
    pub async fn checkpoint_all(&self) -> Result<usize, ServiceError> {
        let mut n = 0;
        for (k, _) in self.store.scan(crate::store::keys::TENANT_INDEX_PREFIX, None, 100_000).await? {
            if let Some(t) =
                k.strip_prefix(crate::store::keys::TENANT_INDEX_PREFIX).and_then(|s| TenantId::parse(std::str::from_utf8(s).ok()?).ok())
            {
                match self.checkpoint_if_needed(&t).await {
                    Ok(true) => n += 1,
                    Ok(false) => {}
                    Err(ServiceError::Internal(detail)) => tracing::error!(tenant = %t, %detail, "audit checkpoint failed"),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }
}

/// Whether a verified trail ends at the stored chain head: the head read before the entries
/// (`before`) must authenticate and name an entry that is there, with that hash; the head
/// read after them (`after`) must not be behind the last entry (entries appended meanwhile
/// move it forward, never back).
fn ends_at_head(entries: &[Entry], before: &StoredHead, after: &StoredHead) -> Result<(), Break> {
    let n = entries.len();
    let last = entries.last().map_or(0, |e| e.seq);
    let bad = |position: usize, seq: u64, reason: String| Break { position, seq: Some(seq), reason };
    for head in [before, after] {
        match head {
            StoredHead::Authentic { .. } => {}
            StoredHead::Absent => return Err(bad(n, last + 1, "the trail has no chain head (deleted at rest)".into())),
            StoredHead::NotAuthentic => {
                return Err(bad(n, last + 1, "the stored chain head does not authenticate (rewritten at rest)".into()));
            }
        }
    }
    if let StoredHead::Authentic { seq, hash } = before {
        if last < *seq {
            let reason = format!("entries {} to {seq} are missing: the trail ends before its chain head (cut at the end)", last + 1);
            return Err(bad(n, last + 1, reason));
        }
        let at = usize::try_from(*seq).ok().and_then(|s| s.checked_sub(1)).and_then(|i| entries.get(i));
        if at.is_none_or(|e| e.hash != *hash) {
            return Err(bad(
                usize::try_from(*seq).unwrap_or(n).saturating_sub(1),
                *seq,
                "the entry at the chain head differs from it".into(),
            ));
        }
    }
    if let StoredHead::Authentic { seq, hash } = after {
        if *seq < last || (*seq == last && entries.last().is_some_and(|e| e.hash != *hash)) {
            return Err(bad(n.saturating_sub(1), last, "the trail goes on past its chain head".into()));
        }
    }
    Ok(())
}

impl Sigil {
    /// Finds the chain heads that data directories from before authenticated heads stored
    /// as `{seq}:{hash}`, and with `apply` (the operator's one-time `--upgrade-audit-heads`)
    /// authenticates each that names the real end of its chain: the entry it names exists,
    /// opens under the tenant's key, has that hash and is the last. Never automatic: a head
    /// an attacker rewrote at rest (without the pepper) has exactly this form. Answers how
    /// many heads were (with `apply`) or would be upgraded. A cut made before the upgrade
    /// cannot be told from an intact chain (the old heads proved nothing); published
    /// checkpoints and `sigil audit watch` can.
    pub async fn upgrade_legacy_audit_heads(&self, apply: bool) -> Result<usize, ServiceError> {
        let mut upgraded = 0;
        for (k, _) in self.store.scan(keys::TENANT_INDEX_PREFIX, None, 100_000).await? {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| TenantId::parse(std::str::from_utf8(s).ok()?).ok()) else {
                continue;
            };
            let Some(raw) = self.store.get(&keys::audit_head(&t)).await? else { continue };
            let Some((seq, hash)) = std::str::from_utf8(&raw).ok().and_then(|s| {
                let (seq, hash) = s.split_once(':')?;
                (!hash.contains(':')).then(|| Some((seq.parse::<u64>().ok()?, hash.to_owned())))?
            }) else {
                continue;
            };
            let last = if seq == 0 { None } else { self.audit_entries(&t, seq - 1, 2).await.ok() };
            let intact = matches!(last.as_deref(), Some([e]) if e.seq == seq && e.hash == hash);
            if !intact {
                tracing::error!(tenant = %t, seq, "legacy audit head does not match the end of its chain; left as is (the tenant's writes will fail)");
                continue;
            }
            if !apply {
                upgraded += 1;
                continue;
            }
            let mut txn = Txn::new();
            let key = keys::audit_head(&t);
            txn.require_equals(key.clone(), raw).put(key, self.authenticated_head(&t, seq, &hash));
            if self.commit_unaudited(txn, Effects::none()).await? {
                tracing::warn!(tenant = %t, seq, "upgraded the audit chain head to its authenticated form");
                upgraded += 1;
            }
        }
        Ok(upgraded)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FixedClock;
    use crate::service::kernel::journal::{Event, REQUEST_ID};
    use crate::service::{audit::AuditQuery, testing};

    fn query() -> AuditQuery {
        AuditQuery { after: None, agent: None, event: None, request_id: None, from: None, to: None, limit: 500 }
    }

    /// Time ranges start at the first entry at or after `from` (found by binary search) and
    /// stop before `to`; a request id selects exactly the entries made under it.
    #[tokio::test]
    async fn queries_filter_by_time_range_and_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let t0: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        let clock = FixedClock::new(t0);
        let s = testing::sigil_in(dir.path(), clock.clone() as Arc<dyn crate::clock::Clock>);
        let op = testing::operator();
        let t = s.create_tenant(&op, Some("acme"), "Acme").await.unwrap().id;
        let admin = testing::admin(&t);
        // Entry 1 is the tenant's creation at t0; entries 2..=41 one minute apart after it.
        for i in 1..=40 {
            clock.advance_secs(60);
            let rid = format!("req-{}", i % 3);
            REQUEST_ID.scope(rid, s.record(&t, "test".into(), Event::new("test.tick", serde_json::json!({"i": i})))).await.unwrap();
        }
        let minute = |m: i64| t0.checked_add(jiff::SignedDuration::from_mins(m)).unwrap();
        let page = s.audit_list(&admin, &t, AuditQuery { from: Some(minute(10)), to: Some(minute(20)), ..query() }).await.unwrap();
        let ticks: Vec<i64> = page.items.iter().map(|e| e.details["i"].as_i64().unwrap()).collect();
        assert_eq!(ticks, (10..20).collect::<Vec<_>>());
        assert_eq!(page.next_cursor, None, "the range ended before the page did");
        let page = s.audit_list(&admin, &t, AuditQuery { from: Some(minute(40)), ..query() }).await.unwrap();
        assert_eq!(page.items.len(), 1);
        let page = s.audit_list(&admin, &t, AuditQuery { from: Some(minute(41)), ..query() }).await.unwrap();
        assert!(page.items.is_empty());
        let page = s.audit_list(&admin, &t, AuditQuery { from: Some(t0), ..query() }).await.unwrap();
        assert_eq!(page.items.len(), 41, "from the first entry on");
        let page =
            s.audit_list(&admin, &t, AuditQuery { request_id: Some("req-1".into()), to: Some(minute(41)), ..query() }).await.unwrap();
        let ticks: Vec<i64> = page.items.iter().map(|e| e.details["i"].as_i64().unwrap()).collect();
        assert_eq!(ticks, (1..=40).filter(|i| i % 3 == 1).collect::<Vec<_>>());
    }

    /// Verification reads the head before and after the entries, so entries journaled
    /// while it runs (a busy tenant's presentations) never look like a cut or an overrun.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn verifying_while_entries_are_appended_stays_ok() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (s, tenant) = (s.clone(), t.id.clone());
                tokio::spawn(async move {
                    for i in 0..150u32 {
                        s.record(&tenant, "test".into(), Event::new("test.event", serde_json::json!({"w": w, "i": i}))).await.unwrap();
                        if i % 50 == 0 {
                            s.audit_checkpoint(&tenant).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        let mut checks = 0;
        while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
            let r = s.audit_verify(&admin, &t.id).await.unwrap();
            assert!(r.ok, "{r:?}");
            checks += 1;
        }
        for w in writers {
            w.await.unwrap();
        }
        let r = s.audit_verify(&admin, &t.id).await.unwrap();
        assert!(r.ok && r.entries > 600 && r.checkpoints == 12, "{r:?} after {checks} checks under load");
        assert_eq!(s.audit_latest_checkpoint(&t.id).await.unwrap().tenant, "acme");
    }

    #[test]
    fn a_trail_must_end_at_its_head() {
        let e = |seq: u64, hash: &str| Entry {
            seq,
            time: String::new(),
            tenant: "t".into(),
            event: "x".into(),
            actor: "system".into(),
            agent: None,
            request_id: None,
            details: serde_json::Value::Null,
            prev: String::new(),
            hash: hash.into(),
        };
        let trail = [e(1, "a"), e(2, "b"), e(3, "c")];
        let at = |seq: u64, hash: &str| StoredHead::Authentic { seq, hash: hash.into() };
        assert!(ends_at_head(&trail, &at(3, "c"), &at(3, "c")).is_ok());
        // Appended while verifying: the head moves on, past the entries read.
        assert!(ends_at_head(&trail, &at(2, "b"), &at(5, "e")).is_ok());
        let reason = |r: Result<(), Break>| r.unwrap_err().reason;
        assert!(reason(ends_at_head(&trail[..2], &at(3, "c"), &at(3, "c"))).contains("entries 3 to 3 are missing"));
        assert!(reason(ends_at_head(&trail, &at(3, "x"), &at(3, "x"))).contains("differs"));
        assert!(reason(ends_at_head(&trail, &at(2, "b"), &at(2, "b"))).contains("past its chain head"));
        assert!(reason(ends_at_head(&trail, &StoredHead::NotAuthentic, &at(3, "c"))).contains("does not authenticate"));
        assert!(reason(ends_at_head(&trail, &at(3, "c"), &StoredHead::Absent)).contains("no chain head"));
    }

    /// A head in the form stored before heads were authenticated is upgraded at start when
    /// it names the real end of its chain, and left failing closed when it does not.
    #[tokio::test]
    async fn legacy_heads_are_upgraded_only_when_they_match_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let op = testing::operator();
        let mut tenants = Vec::new();
        for id in ["intact", "cut"] {
            let t = s.create_tenant(&op, Some(id), "T").await.unwrap().id;
            for i in 0..3 {
                s.record(&t, "test".into(), Event::new("test.tick", serde_json::json!({"i": i}))).await.unwrap();
            }
            tenants.push(t);
        }
        let (intact, cut) = (&tenants[0], &tenants[1]);
        let legacy = |t: &crate::ids::TenantId, seq: u64| {
            let s = s.clone();
            let t = t.clone();
            async move {
                let e = s.audit_entries(&t, seq - 1, 1).await.unwrap().remove(0);
                let mut txn = crate::store::Txn::new();
                txn.put(crate::store::keys::audit_head(&t), format!("{}:{}", e.seq, e.hash).into_bytes());
                s.store.commit(txn).await.unwrap();
                s.audit_heads.forget(&t).await;
            }
        };
        legacy(intact, 4).await;
        legacy(cut, 3).await; // the last entry (seq 4) is beyond the head: a cut chain
        for t in [intact, cut] {
            let r = s.record(t, "test".into(), Event::new("test.tick", serde_json::json!({}))).await;
            assert!(matches!(r, Err(ServiceError::Internal(_))), "a legacy head is not extended: {r:?}");
        }
        assert_eq!(s.upgrade_legacy_audit_heads(false).await.unwrap(), 1, "counted, not applied");
        let r = s.record(intact, "test".into(), Event::new("test.tick", serde_json::json!({}))).await;
        assert!(matches!(r, Err(ServiceError::Internal(_))), "nothing upgrades without the operator: {r:?}");
        assert_eq!(s.upgrade_legacy_audit_heads(true).await.unwrap(), 1);
        s.record(intact, "test".into(), Event::new("test.tick", serde_json::json!({}))).await.unwrap();
        assert!(s.audit_verify(&testing::admin(intact), intact).await.unwrap().ok);
        let r = s.record(cut, "test".into(), Event::new("test.tick", serde_json::json!({}))).await;
        assert!(matches!(r, Err(ServiceError::Internal(_))), "a head that does not match stays refused: {r:?}");
        assert_eq!(s.upgrade_legacy_audit_heads(true).await.unwrap(), 0, "nothing left to upgrade");
    }
}
