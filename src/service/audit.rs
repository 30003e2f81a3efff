//! Appending to a tenant's audit trail. One writer per tenant at a time assigns `seq` and
//! links the hash; the entry is sealed and applied together with the writes it describes
//! (one transaction), and the request is answered only after [`crate::store::Store::sync`]
//! made both durable. The lock covers the in-memory apply only, never the flush, so
//! concurrent requests share fsyncs (group commit).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;

use super::{Caller, ServiceError, Sigil};
use crate::audit::{Entry, GENESIS};
use crate::clock::rfc3339;
use crate::store::{StoreError, Txn, keys};

tokio::task_local! {
    /// The `X-Request-Id` of the request being served (set by the HTTP edge).
    pub static REQUEST_ID: String;
}

const KIND: &str = "audit";

#[derive(Debug, Clone)]
struct Head {
    seq: u64,
    hash: String,
}

/// Per-tenant chain heads.
#[derive(Default)]
pub struct AuditHeads {
    heads: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Head>>>>>,
}

impl AuditHeads {
    fn slot(&self, tenant: &str) -> Arc<Mutex<Option<Head>>> {
        let mut m = match self.heads.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(tenant.to_owned()).or_default().clone()
    }

    pub(crate) fn forget(&self, tenant: &str) {
        if let Ok(mut m) = self.heads.lock() {
            m.remove(tenant);
        }
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub agent: Option<String>,
    pub details: Value,
}

impl Event {
    pub fn new(kind: &'static str, details: Value) -> Self {
        Self { kind, agent: None, details }
    }
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }
}

/// The audit actor string of a caller (ids only, never tokens).
pub fn actor(caller: &Caller) -> String {
    match caller {
        Caller::Agent { agent, .. } => format!("agent:{agent}"),
        other => format!("token:{}", other.token_id()),
    }
}

fn head_bytes(h: &Head) -> Vec<u8> {
    format!("{}:{}", h.seq, h.hash).into_bytes()
}

impl Sigil {
    async fn load_head(&self, tenant: &str) -> Result<Head, ServiceError> {
        match self.store.get(&keys::audit_head(tenant)).await? {
            None => Ok(Head { seq: 0, hash: GENESIS.to_owned() }),
            Some(b) => {
                let s = String::from_utf8(b).map_err(|_| ServiceError::Internal("bad audit head".into()))?;
                let (seq, hash) = s.split_once(':').ok_or_else(|| ServiceError::Internal("bad audit head".into()))?;
                Ok(Head { seq: seq.parse().map_err(|_| ServiceError::Internal("bad audit head".into()))?, hash: hash.to_owned() })
            }
        }
    }

    /// Applies `txn` plus an audit entry for `event` atomically, then waits for durability.
    /// Fails closed: if the entry cannot be written, neither is the change.
    pub(crate) async fn commit_audited(&self, tenant: &str, actor: String, mut txn: Txn, event: Event) -> Result<(), ServiceError> {
        let slot = self.audit_heads.slot(tenant);
        {
            let mut guard = slot.lock().await;
            let head = match guard.clone() {
                Some(h) => h,
                None => self.load_head(tenant).await?,
            };
            let tk = self.tenant_keys(tenant).await?;
            let mut entry = Entry {
                seq: head.seq + 1,
                time: rfc3339(self.clock.now()),
                tenant: tenant.to_owned(),
                event: event.kind.to_owned(),
                actor,
                agent: event.agent,
                request_id: REQUEST_ID.try_with(Clone::clone).ok(),
                details: event.details,
                prev: head.hash.clone(),
                hash: String::new(),
            };
            entry.hash = entry.compute_hash();
            let next = Head { seq: entry.seq, hash: entry.hash.clone() };
            let id = entry.seq.to_string();
            let head_key = keys::audit_head(tenant);
            if head.seq == 0 {
                txn.require_absent(head_key.clone());
            } else {
                txn.require_equals(head_key.clone(), head_bytes(&head));
            }
            txn.put(keys::audit_entry(tenant, entry.seq), self.seal_record(&tk, tenant, KIND, &id, &entry)?)
                .put(head_key, head_bytes(&next));
            match self.store.apply(txn).await {
                Ok(()) => *guard = Some(next),
                Err(StoreError::Conflict) => {
                    // Either the caller's own precondition failed or another writer moved
                    // the head (another process): reload the head next time.
                    *guard = None;
                    return Err(StoreError::Conflict.into());
                }
                Err(e) => {
                    *guard = None;
                    return Err(e.into());
                }
            }
        }
        self.store.sync().await?;
        Ok(())
    }

    /// Records an event that comes with no other write (presentations, denials).
    pub(crate) async fn record(&self, tenant: &str, actor: String, event: Event) -> Result<(), ServiceError> {
        for _ in 0..8 {
            match self.commit_audited(tenant, actor.clone(), Txn::new(), event.clone()).await {
                Err(ServiceError::Conflict { .. }) => continue,
                other => return other,
            }
        }
        Err(ServiceError::Unavailable("audit chain contended".into()))
    }

    /// Reads up to `limit` entries after seq `after` of a tenant, opened.
    #[cfg(test)]
    pub(crate) async fn audit_entries(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<Entry>, ServiceError> {
        let tk = self.tenant_keys(tenant).await?;
        let rows = self.store.scan(&keys::audit_prefix(tenant), Some(&keys::audit_entry(tenant, after)), limit).await?;
        rows.iter()
            .map(|(k, blob)| {
                let seq =
                    k.rsplit(|b| *b == b'/').next().and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u64::from_str_radix(h, 16).ok());
                let id = seq.map(|s| s.to_string()).unwrap_or_default();
                self.open_record(&tk, tenant, KIND, &id, blob)
            })
            .collect()
    }
}
