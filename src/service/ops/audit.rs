//! Reading the audit trail: paged queries, verification of the whole chain against its
//! signed checkpoints, and export for offline verification.
//!
//! Must never: write to the trail (the kernel's journal does), or show an entry of one
//! tenant to another.

use crate::audit::Checkpoint;
use crate::audit::{Entry, TrailReport, verify_trail};
use crate::clock::rfc3339;
use crate::ids::TenantId;
use crate::service::kernel::journal::Event;
use crate::service::model::records::kind;
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::keys;

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub after: Option<u64>,
    pub agent: Option<String>,
    pub event: Option<String>,
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
        self.record_over_head(tenant, "system:audit", Event::new("audit.checkpoint", serde_json::Value::Null), move |seq, head| {
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
        if last.first().is_some_and(|e| e.event == "audit.checkpoint") {
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
        let mut after = q.after.unwrap_or(0);
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
                let keep = q.agent.as_deref().is_none_or(|a| e.agent.as_deref() == Some(a))
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

    /// Verifies the stored trail: chain and checkpoint signatures (admins and auditors).
    pub async fn audit_verify(&self, caller: &Caller, tenant: &crate::ids::TenantId) -> Result<TrailReport, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let tk = self.tenant_keys(t).await?;
        let doc = self.tenant_did_document(tenant).await?;
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
        Ok(verify_trail(&entries, &doc))
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
    /// Checkpoints every tenant whose trail grew since its last checkpoint.
    pub async fn checkpoint_all(&self) -> Result<usize, ServiceError> {
        let mut n = 0;
        for (k, _) in self.store.scan(crate::store::keys::TENANT_INDEX_PREFIX, None, 100_000).await? {
            if let Some(t) =
                k.strip_prefix(crate::store::keys::TENANT_INDEX_PREFIX).and_then(|s| TenantId::parse(std::str::from_utf8(s).ok()?).ok())
            {
                if self.checkpoint_if_needed(&t).await? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
