//! Appending to a tenant's audit trail. One writer per tenant at a time assigns `seq` and
//! links the hash; the entry is sealed and applied together with the writes it describes
//! (one transaction), or journaled alone when it describes no other write (a presentation),
//! and the request is answered only after the store made both durable. The per-tenant lock
//! covers the in-memory apply only, never the flush, so concurrent requests share fsyncs
//! (group commit). Checkpoints sign the chain head with the tenant's audit key, and the
//! seq of the latest one is kept beside the head, in the same write, for publication.
//!
//! The stored head is authenticated: `{seq}:{hash}:{mac}`, the mac a keyed hash (under the
//! pepper, which only the root key opens) of tenant, seq and hash. Someone who can write
//! the store but lacks the root key can delete the last entries, but cannot make a head
//! that names the new last one: verification compares the two, and a writer refuses to
//! extend a head that does not authenticate. A keyed hash rather than a sealed head: its
//! bytes are deterministic, so the compare-and-set on the head stays exact, a data-key
//! rotation has nothing to re-seal, and appends spend no extra nonces.
//!
//! Several nodes on one store (`Store::shared`): the head this process holds is only a
//! guess, so every entry, presentations' included, commits as a transaction that requires
//! the stored head to be the one it extends; another node's entry in between fails it, the
//! head is reloaded and the stage re-run (`mutation.rs`). The chain stays one line.
//!
//! Must never: put a secret into an entry, answer before the entry is durable, or extend a
//! chain head that does not authenticate, or append without that precondition to a store
//! another process writes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use serde_json::Value;

use crate::audit::{CHECKPOINT_EVENT, Entry, GENESIS};
use crate::clock::rfc3339;
use crate::ids::TenantId;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::model::records::kind;
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

tokio::task_local! {
    /// The `X-Request-Id` of the request being served (set by the HTTP edge).
    pub static REQUEST_ID: String;
}

/// What the journaled path made of one entry; the parts come back when it could not take it.
enum Fast<P> {
    Appended,
    /// Another writer holds the head for the moment: yield, then try again.
    Busy(P),
    /// The head is not known here (or a transactional writer holds the chain).
    Unknown(P),
}

/// One store write (key, value).
type Put = (Vec<u8>, Vec<u8>);

#[derive(Debug, Clone)]
struct Head {
    seq: u64,
    hash: String,
}

/// How often a journaled entry finds the head taken and yields before it waits 1 ms
/// between tries instead (a holder blocked on the store must not make others spin).
const BUSY_YIELDS: u32 = 64;

/// Per-tenant chain heads.
#[derive(Default)]
pub struct AuditHeads {
    heads: std::sync::Mutex<HashMap<String, Arc<Slot>>>,
}

/// One tenant's chain, as this process holds it.
#[derive(Default)]
struct Slot {
    /// The head the next entry extends: `None` while unknown (never loaded, or a write
    /// failed) and while a writer under `writer` holds the chain. A synchronous lock, held
    /// only for the few microseconds of building, sealing and journaling one entry, never
    /// across an await; the journaled path only ever `try_lock`s it and yields to its
    /// runtime when it is taken, so no worker thread sleeps on it. Why not tokio's lock
    /// there: it is fair, so under load every release handed the chain to the next
    /// waiter, which then sat until its worker thread came round to it while the tenant's
    /// other requests queued behind (3.8 of a presentation's 7.8 ms in the server at 64
    /// connections, with the cores 18 % idle).
    head: std::sync::Mutex<Option<Head>>,
    /// Serialises the writers that must await while they hold the chain: a transaction
    /// with its entry, loading an unknown head, a store without `append_now`.
    writer: Mutex<()>,
}

impl Slot {
    fn head(&self) -> std::sync::MutexGuard<'_, Option<Head>> {
        match self.head.lock() {
            Ok(g) => g,
            Err(p) => self.forget_poisoned(p.into_inner()),
        }
    }

    /// The head lock if it is free at once.
    fn try_head(&self) -> Option<std::sync::MutexGuard<'_, Option<Head>>> {
        match self.head.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::WouldBlock) => None,
            Err(std::sync::TryLockError::Poisoned(p)) => Some(self.forget_poisoned(p.into_inner())),
        }
    }

    /// A panic mid-append leaves the head in doubt: forget it (reloaded from the store).
    fn forget_poisoned<'a>(&self, mut g: std::sync::MutexGuard<'a, Option<Head>>) -> std::sync::MutexGuard<'a, Option<Head>> {
        self.head.clear_poison();
        *g = None;
        g
    }
}

impl AuditHeads {
    fn slot(&self, tenant: &TenantId) -> Arc<Slot> {
        let mut m = match self.heads.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(tenant.to_string()).or_default().clone()
    }

    /// Forgets a deleted tenant's head. Waits for a writer holding it, and clears it for
    /// any request still holding the slot, so that request takes the transactional path,
    /// where looking up the deleted tenant's keys fails.
    pub(crate) async fn forget(&self, tenant: &TenantId) {
        let slot = match self.heads.lock() {
            Ok(mut m) => m.remove(tenant.as_str()),
            Err(p) => p.into_inner().remove(tenant.as_str()),
        };
        if let Some(slot) = slot {
            let _writer = slot.writer.lock().await;
            *slot.head() = None;
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

/// A tenant's chain head as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredHead {
    /// No head: the tenant has no trail (or its head was deleted).
    Absent,
    /// A head whose keyed hash is right: the seq and hash of the last entry.
    Authentic { seq: u64, hash: String },
    /// A head that does not authenticate (rewritten at rest, or malformed).
    NotAuthentic,
}

impl Sigil {
    /// The sequence number of the tenant's last entry, as stored.
    pub(crate) async fn audit_head_seq(&self, tenant: &TenantId) -> Result<u64, ServiceError> {
        Ok(self.load_head(tenant).await?.seq)
    }

    /// The tenant's stored chain head, authenticated.
    pub(crate) async fn audit_head(&self, tenant: &TenantId) -> Result<StoredHead, ServiceError> {
        let Some(b) = self.store.get(&keys::audit_head(tenant)).await? else { return Ok(StoredHead::Absent) };
        let parsed = std::str::from_utf8(&b).ok().and_then(|s| {
            let mut parts = s.splitn(3, ':');
            let (seq, hash, mac) = (parts.next()?.parse::<u64>().ok()?, parts.next()?, parts.next()?);
            let want = self.head_mac(tenant, seq, hash);
            bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), mac.as_bytes())).then(|| (seq, hash.to_owned()))
        });
        Ok(parsed.map_or(StoredHead::NotAuthentic, |(seq, hash)| StoredHead::Authentic { seq, hash }))
    }

    /// The head a writer extends. Every tenant has one from its creation on; a head that is
    /// missing or does not authenticate is refused (fail closed: entries cannot be
    /// appended to a chain that may have been cut).
    async fn load_head(&self, tenant: &TenantId) -> Result<Head, ServiceError> {
        match self.audit_head(tenant).await? {
            StoredHead::Authentic { seq, hash } => Ok(Head { seq, hash }),
            StoredHead::Absent => Err(ServiceError::Internal(format!("the audit chain of {tenant} has no head"))),
            StoredHead::NotAuthentic => {
                Err(ServiceError::Internal(format!("the audit chain head of {tenant} does not authenticate; refusing to extend it")))
            }
        }
    }

    /// The keyed hash that binds a head (seq, hash) to its tenant.
    fn head_mac(&self, tenant: &TenantId, seq: u64, hash: &str) -> String {
        hex::encode(self.keys.pepper.keyed_hash("audit-head", format!("{tenant}:{seq}:{hash}").as_bytes()))
    }

    /// The authenticated stored form of a head (seq, hash) of `tenant`.
    pub(crate) fn authenticated_head(&self, tenant: &TenantId, seq: u64, hash: &str) -> Vec<u8> {
        self.head_bytes(tenant, &Head { seq, hash: hash.to_owned() })
    }

    /// The stored form of `h`.
    fn head_bytes(&self, tenant: &TenantId, h: &Head) -> Vec<u8> {
        format!("{}:{}:{}", h.seq, h.hash, self.head_mac(tenant, h.seq, &h.hash)).into_bytes()
    }

    /// Applies `txn` plus an audit entry for `event` atomically, then waits for durability.
    /// Fails closed: if the entry cannot be written, neither is the change.
    pub(in crate::service::kernel) async fn commit_audited(
        &self,
        tenant: &TenantId,
        actor: String,
        txn: Txn,
        event: Event,
    ) -> Result<(), ServiceError> {
        let details = event.details.clone();
        self.commit_audited_with(tenant, actor, txn, event, move |_, _| Ok(details)).await
    }

    /// One attempt of a read-modify-write: `Ok(true)` when `txn` and its audit entry
    /// committed, `Ok(false)` when a precondition no longer held or the chain head moved
    /// (the caller re-reads and tries again), any other failure as an error.
    pub(in crate::service::kernel) async fn try_commit_audited(
        &self,
        tenant: &TenantId,
        actor: String,
        txn: Txn,
        event: Event,
    ) -> Result<bool, ServiceError> {
        match self.commit_audited(tenant, actor, txn, event).await {
            Ok(()) => Ok(true),
            Err(ServiceError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`Sigil::commit_audited`] with details computed from the chain head the entry
    /// extends (checkpoints sign that head).
    pub(in crate::service::kernel) async fn commit_audited_with(
        &self,
        tenant: &TenantId,
        actor: String,
        mut txn: Txn,
        event: Event,
        details: impl FnOnce(u64, &str) -> Result<Value, ServiceError>,
    ) -> Result<(), ServiceError> {
        let slot = self.audit_heads.slot(tenant);
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        // An entry alone (a presentation, a denial, a checkpoint) extending a head this
        // process already holds needs no precondition: the slot orders the tenant's chain.
        // It is appended (journaled by sled, no transaction), which is most of what a
        // presentation used to cost. Anything else is one transaction with its entry.
        // On a store other processes write too (`Store::shared`), no head held here is
        // known to be the stored one: every entry is a transaction conditional on the head
        // its writer read, and a conflict (another node extended the chain) re-reads it.
        let shared = self.store.shared();
        let audit_only = txn.ops.is_empty() && txn.checks.is_empty();
        let (actor, event, request_id, details) = if audit_only && !shared && self.store.can_append_now() {
            let tk = self.tenant_keys(tenant).await?;
            let mut parts = (actor, event, request_id, details);
            let mut busy = 0u32;
            loop {
                match self.append_to_known_head(&slot, &tk, tenant, parts)? {
                    Fast::Appended => {
                        self.store.sync_appends().await?;
                        return Ok(());
                    }
                    Fast::Busy(p) => {
                        parts = p;
                        busy += 1;
                        if busy <= BUSY_YIELDS {
                            // Held for microseconds by a writer on another thread: let this
                            // worker serve its other requests meanwhile instead of sleeping.
                            tokio::task::yield_now().await;
                        } else {
                            // Held longer: its writer waits on the store (a transaction or
                            // a backup excludes appends while it runs). Poll, do not spin.
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    }
                    Fast::Unknown(p) => break p,
                }
            }
        } else {
            (actor, event, request_id, details)
        };
        {
            let _writer = slot.writer.lock().await;
            // Under the writer lock: a tenant deleted meanwhile fails here.
            let tk = self.tenant_keys(tenant).await?;
            // The chain is this writer's until it puts a head back; on any failure it stays
            // unknown, and the next writer reloads it from the store.
            let taken = slot.head().take();
            let (head, known) = match taken {
                Some(h) => (h, true),
                None => (self.load_head(tenant).await?, false),
            };
            let (puts, next) = self.chain_entry(&tk, tenant, &head, actor, event, request_id, details)?;
            let head_key = keys::audit_head(tenant);
            if audit_only && known && !shared {
                let mut append = Txn::new();
                for (k, v) in puts {
                    append.put(k, v);
                }
                self.store.append(append).await?;
                *slot.head() = Some(next);
                drop(_writer);
                self.store.sync_appends().await?;
                return Ok(());
            }
            txn.require_equals(head_key, self.head_bytes(tenant, &head));
            for (k, v) in puts {
                txn.put(k, v);
            }
            // The record manifest changes of the writes, applied with them.
            let manifest = self.stage_manifest(tenant, &tk, &mut txn, false, false).await?;
            // A conflict means the caller's own precondition failed or another writer moved
            // the head (another process): either way the head is reloaded next time.
            self.store.apply(txn).await?;
            if let Some(m) = manifest {
                m.committed();
            }
            *slot.head() = Some(next);
        }
        self.store.sync().await?;
        Ok(())
    }

    /// The first entry of a new tenant's trail, in `txn` (which stores the tenant's data
    /// key `tk`): the head must not exist yet.
    pub(in crate::service::kernel) async fn commit_first_entry(
        &self,
        tenant: &TenantId,
        tk: &TenantKeys,
        actor: String,
        mut txn: Txn,
        event: Event,
    ) -> Result<(), ServiceError> {
        let slot = self.audit_heads.slot(tenant);
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        {
            let _writer = slot.writer.lock().await;
            slot.head().take();
            let genesis = Head { seq: 0, hash: GENESIS.to_owned() };
            let details = event.details.clone();
            let (puts, next) = self.chain_entry(tk, tenant, &genesis, actor, event, request_id, move |_, _| Ok(details))?;
            txn.require_absent(keys::audit_head(tenant));
            for (k, v) in puts {
                txn.put(k, v);
            }
            // The tenant's record manifest starts here (its root must not exist yet).
            let manifest = self.stage_manifest(tenant, tk, &mut txn, true, true).await?;
            self.store.apply(txn).await?;
            if let Some(m) = manifest {
                m.committed();
            }
            *slot.head() = Some(next);
        }
        self.store.sync().await?;
        Ok(())
    }

    /// Journals the entry for `event` (the parts: actor, event, request id, details) under
    /// the slot's head lock when that is free and this process knows the head; otherwise
    /// hands the parts back.
    #[allow(clippy::type_complexity)]
    fn append_to_known_head<F: FnOnce(u64, &str) -> Result<Value, ServiceError>>(
        &self,
        slot: &Slot,
        tk: &TenantKeys,
        tenant: &TenantId,
        parts: (String, Event, Option<String>, F),
    ) -> Result<Fast<(String, Event, Option<String>, F)>, ServiceError> {
        let Some(mut head) = slot.try_head() else { return Ok(Fast::Busy(parts)) };
        let Some(h) = head.clone() else { return Ok(Fast::Unknown(parts)) };
        let (actor, event, request_id, details) = parts;
        let (puts, next) = self.chain_entry(tk, tenant, &h, actor, event, request_id, details)?;
        let mut append = Txn::new();
        for (k, v) in puts {
            append.put(k, v);
        }
        if let Err(e) = self.store.append_now(append) {
            *head = None;
            return Err(e.into());
        }
        *head = Some(next);
        Ok(Fast::Appended)
    }

    /// The entry for `event` extending `head`: the writes that append it (the sealed entry,
    /// the authenticated head it makes and, for a checkpoint, the pointer to the latest
    /// checkpoint) and that head. Synchronous, so that the fast path in
    /// `commit_audited_with` can run it under the slot's head lock.
    #[allow(clippy::too_many_arguments)]
    fn chain_entry(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        head: &Head,
        actor: String,
        event: Event,
        request_id: Option<String>,
        details: impl FnOnce(u64, &str) -> Result<Value, ServiceError>,
    ) -> Result<(Vec<Put>, Head), ServiceError> {
        let mut entry = Entry {
            seq: head.seq + 1,
            time: rfc3339(self.clock.now()),
            tenant: tenant.to_string(),
            event: event.kind.to_owned(),
            actor,
            agent: event.agent,
            request_id,
            details: details(head.seq, &head.hash)?,
            prev: head.hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        let sealed = self.seal_record(tk, tenant, kind::AUDIT, &entry.seq.to_string(), &entry)?;
        let next = Head { seq: entry.seq, hash: entry.hash };
        let mut puts = vec![(keys::audit_entry(tenant, next.seq), sealed), (keys::audit_head(tenant), self.head_bytes(tenant, &next))];
        if entry.event == CHECKPOINT_EVENT {
            puts.push((keys::audit_latest_checkpoint(tenant), next.seq.to_string().into_bytes()));
        }
        Ok((puts, next))
    }

    /// Reads up to `limit` entries after seq `after` of a tenant, opened.
    pub(crate) async fn audit_entries(&self, tenant: &TenantId, after: u64, limit: usize) -> Result<Vec<Entry>, ServiceError> {
        let tk = self.tenant_keys(tenant).await?;
        let rows = self.store.scan(&keys::audit_prefix(tenant), Some(&keys::audit_entry(tenant, after)), limit).await?;
        rows.iter()
            .map(|(k, blob)| {
                let seq =
                    k.rsplit(|b| *b == b'/').next().and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u64::from_str_radix(h, 16).ok());
                let id = seq.map(|s| s.to_string()).unwrap_or_default();
                self.open_record(&tk, tenant, kind::AUDIT, &id, blob)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::clock::SystemClock;
    use crate::service::agents::NewAgent;
    use crate::service::testing;
    use crate::store::{Entry as Row, Op, SledStore, Store, StoreError};

    /// The real sled store, with audit writes failing on demand (a full or broken disk
    /// under the audit trail), to prove requests fail closed.
    struct AuditFails {
        inner: SledStore,
        fail: AtomicBool,
    }

    #[async_trait]
    impl Store for AuditFails {
        async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key).await
        }
        async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Row>, StoreError> {
            self.inner.scan(prefix, after, limit).await
        }
        async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
            let writes_audit = txn.ops.iter().any(|o| matches!(o, Op::Put(k, _) if k.windows(4).any(|w| w == b"/au/")));
            if writes_audit && self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("no space left on device".into()));
            }
            self.inner.apply(txn).await
        }
        async fn sync(&self) -> Result<(), StoreError> {
            self.inner.sync().await
        }
        fn size_on_disk(&self) -> Result<u64, StoreError> {
            self.inner.size_on_disk()
        }
        fn export(&self) -> Result<Vec<Row>, StoreError> {
            self.inner.export()
        }
    }

    /// Presentations' entries (journaled under the slot's head lock) and admin changes
    /// (transactions under its writer lock) racing on four threads still make one chain:
    /// every entry once, consecutive seqs, each linked to the one before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_and_transactions_make_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let mut tasks = Vec::new();
        for i in 0..240u32 {
            let (s, admin, tenant) = (s.clone(), admin.clone(), t.id.clone());
            tasks.push(tokio::spawn(async move {
                if i % 12 == 0 {
                    s.create_agent(&admin, &tenant, NewAgent { name: format!("bot-{i}"), ..Default::default() }).await.map(|_| ())
                } else {
                    s.record(&tenant, "test".into(), Event::new("test.event", serde_json::json!({ "i": i }))).await
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let entries = s.audit_entries(&t.id, 0, 10_000).await.unwrap();
        crate::audit::verify_chain(&entries, entries[0].seq, &entries[0].prev).unwrap();
        assert!(entries.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        let mut seen: Vec<u64> = entries
            .iter()
            .filter(|e| e.event == "test.event")
            .filter_map(|e| e.details.get("i").and_then(serde_json::Value::as_u64))
            .collect();
        seen.sort_unstable();
        let want: Vec<u64> = (0..240u64).filter(|i| i % 12 != 0).collect();
        assert_eq!(seen, want);
        assert_eq!(entries.iter().filter(|e| e.event == "agent.created").count(), 20);
        assert!(s.audit_verify(&admin, &t.id).await.unwrap().ok);
    }

    /// A head held for long (its writer blocked on the store) makes journaled entries wait
    /// past their yields and poll; they all land, in one chain, once it is released.
    #[tokio::test]
    async fn entries_wait_out_a_long_held_head() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let slot = s.audit_heads.slot(&t.id);
        assert!(slot.head().is_some(), "creating the tenant left its head known");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                let _g = slot.head();
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(150));
            })
        };
        held_rx.recv().unwrap();
        let writes = (0..8).map(|i| s.record(&t.id, "test".into(), Event::new("test.event", serde_json::json!({ "i": i }))));
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
        holder.join().unwrap();
        let entries = s.audit_entries(&t.id, 0, 100).await.unwrap();
        crate::audit::verify_chain(&entries, entries[0].seq, &entries[0].prev).unwrap();
        assert_eq!(entries.iter().filter(|e| e.event == "test.event").count(), 8);
    }

    /// A panic while a writer held the head leaves it in doubt: the next writer finds it
    /// unknown (and reloads it from the store) instead of failing on the poisoned lock.
    #[test]
    fn a_poisoned_head_is_forgotten() {
        let slot = Arc::new(Slot::default());
        *slot.head() = Some(Head { seq: 7, hash: "h".into() });
        let s = slot.clone();
        let _ = std::thread::spawn(move || {
            let _g = s.head();
            panic!("mid-append");
        })
        .join();
        assert!(slot.head.is_poisoned());
        assert!(slot.try_head().is_some_and(|g| g.is_none()));
        assert!(!slot.head.is_poisoned());
        *slot.head() = Some(Head { seq: 8, hash: "i".into() });
        let s = slot.clone();
        let _ = std::thread::spawn(move || {
            let _g = s.head();
            panic!("mid-append");
        })
        .join();
        assert!(slot.head().is_none());
        // Free and healthy: try_head takes it at once; held: it does not wait.
        let held = slot.head();
        assert!(slot.try_head().is_none());
        drop(held);
        assert!(slot.try_head().is_some());
    }

    #[tokio::test]
    async fn a_failing_audit_write_fails_the_request_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(AuditFails { inner: SledStore::open(&dir.path().join("store")).unwrap(), fail: AtomicBool::new(false) });
        let s = testing::sigil_with_store(dir.path(), store.clone(), Arc::new(SystemClock));
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let agent = Caller::Agent { tenant: t.id.clone(), agent: a.id.clone(), token: crate::ids::TokenId::random() };
        store.fail.store(true, Ordering::SeqCst);
        // An admin change whose audit entry cannot be written does not happen.
        let r = s.create_agent(&admin, &t.id, NewAgent { name: "ghost".into(), ..Default::default() }).await;
        assert!(matches!(r, Err(ServiceError::Unavailable(_))), "{r:?}");
        assert_eq!(s.list_agents(&admin, &t.id, None, None).await.unwrap().items.len(), 1);
        // A presentation request whose decision cannot be recorded is refused (no signature out).
        let req = crate::service::presentations::PresentationRequest {
            action: "refunds:create".into(),
            resource: None,
            context: Default::default(),
            challenge: "c".into(),
            domain: "d".into(),
            format: crate::service::presentations::Format::LdpVp,
            expires_in: None,
        };
        assert!(matches!(s.present(&agent, req.clone()).await, Err(ServiceError::Unavailable(_))));
        // A suspension (lifecycle change) too.
        assert!(s.set_agent_suspended(&admin, &t.id, &a.id, true).await.is_err());
        assert_eq!(s.get_agent(&admin, &t.id, &a.id).await.unwrap().record.state, crate::service::model::records::AgentState::Active);
        // Once the trail is writable again, so is everything else, and the chain is intact.
        store.fail.store(false, Ordering::SeqCst);
        s.create_agent(&admin, &t.id, NewAgent { name: "real".into(), ..Default::default() }).await.unwrap();
        let report = s.audit_verify(&admin, &t.id).await.unwrap();
        assert!(report.ok, "{report:?}");
    }
}
