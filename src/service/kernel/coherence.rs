//! Cache coherence across nodes that share one store. Each process caches tokens,
//! wallets, opened keys, status lists, guardrail settings and data keys
//! ([`crate::service::kernel::cache`]); within one process the mutation path evicts them
//! after every commit. Another node's commit evicts nothing here, so on a shared store
//! ([`crate::store::Store::shared`]) every cache scope (a tenant, or `_op` for operator
//! tokens) has a generation record in the store (`keys::cache_generation`): the mutation
//! path rewrites it, with fresh random bytes, in the same transaction as every change whose
//! effects invalidate something of that scope (`mutation.rs`), and a node confirms it
//! ([`Sigil::confirm_scope`]) before a request relies on a cached entry of the scope. If it
//! moved, the node drops every cached entry of the scope first (which also bumps the
//! in-process generations, so a fill that started before is refused).
//!
//! The confirmation is one indexed read, shared by concurrent requests of the scope
//! (single flight), but only by requests that began before that read did: a read that
//! started earlier may have missed a commit whose response preceded a later request. So a
//! request waits for a read that starts after it does, and every request that started
//! after a change's response sees the change, on any node, with no time window.
//!
//! Notices ([`crate::store::Store::generation_notices`], PostgreSQL `LISTEN`/`NOTIFY`)
//! only drop entries early; they are never relied on.
//!
//! On a store one process owns (sled) none of this runs: the in-process evictions are
//! exact and the hot path pays nothing.
//!
//! Must never: update a scope's known generation without dropping the scope's entries, or
//! let a request join a confirmation that started before it did.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::crypto::RootKey;
use crate::ids::TenantId;
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

/// How long a wrap waits for a root-key rotation another node staged to commit, when
/// this node holds the key it rotates to, and how often it looks.
const ADOPT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const ADOPT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// `503` for a node whose root key another node rotated away.
fn outdated_root(mine: u32) -> ServiceError {
    tracing::error!(
        root_version = mine,
        "another node rotated the root key: restart this one with the new root key (or give it --next-root-key-file ahead of the next rotation)"
    );
    ServiceError::RootKeyOutdated
}

/// The scope of operator tokens.
pub(crate) const OPERATOR_SCOPE: &str = "_op";

/// Scopes a process keeps confirmation state for; beyond, it starts over (a forgotten
/// scope costs one eviction of its entries at its next confirmation).
const MAX_SCOPES: usize = 100_000;

/// What this process knows of each scope's generation.
#[derive(Default)]
pub struct Coherence {
    scopes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Known>>>>,
    /// Orders request arrivals and read starts: strictly increasing.
    ticks: AtomicU64,
}

#[derive(Default)]
struct Known {
    /// The stored generation as last read (`None`: never read; `Some(None)`: no record).
    generation: Option<Option<Vec<u8>>>,
    /// The tick at which the last completed read began.
    read_at: u64,
    /// The tick at which the scope's entries were last dropped because the read moved.
    dropped_at: u64,
}

impl Coherence {
    fn scope(&self, scope: &str) -> Arc<tokio::sync::Mutex<Known>> {
        let mut m = match self.scopes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if m.len() >= MAX_SCOPES && !m.contains_key(scope) {
            m.clear();
        }
        m.entry(scope.to_owned()).or_default().clone()
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The cache scope of an authenticated caller.
pub(crate) fn scope_of(caller: &Caller) -> &str {
    match caller {
        Caller::Tenant { tenant, .. } | Caller::Agent { tenant, .. } => tenant.as_str(),
        Caller::Operator { .. } => OPERATOR_SCOPE,
    }
}

impl Sigil {
    /// Before a request relies on cached entries of `scope`: confirms the scope's stored
    /// generation with a read that began after this call did, dropping the scope's cached
    /// entries if it moved. Returns whether it moved after this call began (the caller's
    /// cached value, if it read one, may be stale). A value read before this call may have
    /// been dropped by another request's confirmation before it began: a caller that read
    /// one looks it up again once this returns. Free when the store is not shared.
    pub(crate) async fn confirm_scope(&self, scope: &str) -> Result<bool, ServiceError> {
        if !self.store.shared() {
            return Ok(false);
        }
        let c = &self.coherence;
        let arrived = c.tick();
        let slot = c.scope(scope);
        let mut known = slot.lock().await;
        if known.read_at > arrived {
            // A read that began after this request arrived completed meanwhile.
            metrics::counter!("sigil_cache_confirmations_total", "result" => "shared").increment(1);
            // Moved if that read dropped the scope: a value the caller read before it
            // may be stale.
            return Ok(known.dropped_at > arrived);
        }
        let began = c.tick();
        let stored = self.store.get(&keys::cache_generation(scope)).await?;
        // A tenant's generation record is removed with the tenant: an absent one is never
        // trusted (a node that read "absent" before a tenant of that id was made and
        // deleted again would otherwise keep what it cached of it).
        let moved = known.generation.as_ref() != Some(&stored) || (stored.is_none() && scope != OPERATOR_SCOPE);
        if moved {
            self.drop_scope(scope);
            known.generation = Some(stored);
            known.dropped_at = c.tick();
        }
        known.read_at = began;
        let result = if moved { "moved" } else { "read" };
        metrics::counter!("sigil_cache_confirmations_total", "result" => result).increment(1);
        Ok(moved)
    }

    /// Before a wrap under this node's root key (a tenant's first data key, a data-key
    /// rotation, an operator token) on a shared store: answers the root to wrap under and
    /// makes `txn` conditional on its version, so that a rotation staged meanwhile fails
    /// the commit (a wrap under a root the key check no longer names would be lost at this
    /// node's next start). When another node rotated the root, this node adopts its next
    /// root key if it holds the one rotated to ([`Sigil::adopt_next_root`]), waiting a
    /// little for a rotation staged but not yet committed; otherwise `503`, until it runs
    /// with the new key. On one node: the current root, nothing to check.
    pub(crate) async fn stage_wrap_guard(&self, txn: &mut Txn) -> Result<Arc<RootKey>, ServiceError> {
        if !self.store.shared() {
            return Ok(self.keys.root());
        }
        let key = keys::meta::WRAP_ROOT_VERSION;
        let deadline = std::time::Instant::now() + ADOPT_WAIT;
        loop {
            let root = self.keys.root();
            let mine = root.version();
            let stored = self.store.get(key).await?;
            match stored {
                None => {
                    txn.require_absent(key.to_vec());
                    return Ok(root);
                }
                Some(v) if v.as_slice() == mine.to_be_bytes() => {
                    txn.require_equals(key.to_vec(), v);
                    return Ok(root);
                }
                // A concurrent request adopted the next root meanwhile: check again.
                Some(_) if self.keys.root().version() != mine => continue,
                Some(v) => {
                    let version = v.as_slice().try_into().map(u32::from_be_bytes).ok();
                    let ours = self.keys.next_root().is_some_and(|n| Some(n.version()) == version);
                    if ours && self.adopt_next_root().await? {
                        continue;
                    }
                    // Staged on another node, not yet committed: its key check follows.
                    if ours && std::time::Instant::now() < deadline {
                        tokio::time::sleep(ADOPT_POLL).await;
                        continue;
                    }
                    return Err(outdated_root(mine));
                }
            }
        }
    }

    /// The root key that opens `blob` (a wrap or an operator token). A wrap under a root
    /// newer than this node's was made after another node rotated the root: this node
    /// adopts its next root key if it holds that one, else answers `503` (never an
    /// internal error) until it is restarted with the new key.
    pub(crate) async fn root_opening(&self, blob: &[u8]) -> Result<Arc<RootKey>, ServiceError> {
        let newer = |s: &Self| crate::crypto::blob_key_version(blob).is_ok_and(|v| v > s.keys.root().version());
        if newer(self) {
            // Adopted here or by a concurrent request, or not at all.
            self.adopt_next_root().await?;
            if newer(self) {
                return Err(outdated_root(self.keys.root().version()));
            }
        }
        Ok(self.keys.root_for(blob))
    }

    /// Several nodes: makes this node's next root key (`--next-root-key-file`) current
    /// once the stored key check names its version and it proves against it, i.e. once
    /// another node's rotation to it committed. Without restart: from then on this node
    /// opens and makes wraps under the new root, and its previous root still opens the
    /// wraps made before. True when this node's root is now the next one (adopted here or
    /// by a concurrent request); false when it holds none, the rotation is not committed,
    /// or the key is not the one rotated to. One key-check read; concurrent callers wait
    /// for one another.
    pub(crate) async fn adopt_next_root(&self) -> Result<bool, ServiceError> {
        let Some(next) = self.keys.next_root() else {
            return Ok(false);
        };
        if !self.store.shared() {
            return Ok(false);
        }
        let _one = self.keys.adopting.lock().await;
        if self.keys.root().version() >= next.version() {
            return Ok(true);
        }
        let data = self.settings.data_dir.clone().unwrap_or_default();
        let Some(kc) =
            crate::datadir::read_key_check_async(self.store.as_ref(), data).await.map_err(|e| ServiceError::Internal(e.to_string()))?
        else {
            return Ok(false);
        };
        if kc.root_version != next.version() {
            return Ok(false);
        }
        if !kc.proves(&next) {
            tracing::error!(
                root_version = next.version(),
                "the root key was rotated on another node, but this node's next root key is not the new one: restart it with the new key"
            );
            return Ok(false);
        }
        if self.keys.adopt_next(&next) {
            metrics::counter!("sigil_root_key_adoptions_total").increment(1);
            tracing::warn!(
                root_version = next.version(),
                "another node rotated the root key to this node's next root key, now in use; restart this node with it as --root-key-file"
            );
        }
        Ok(true)
    }

    /// [`Sigil::confirm_scope`] for a tenant.
    pub(crate) async fn confirm_tenant(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        self.confirm_scope(tenant.as_str()).await.map(|_| ())
    }

    /// Drops every cached entry of `scope` in this process.
    fn drop_scope(&self, scope: &str) {
        if scope == OPERATOR_SCOPE {
            self.auth_cache.evict(|c| matches!(c, Caller::Operator { .. }));
            return;
        }
        let Ok(t) = TenantId::parse(scope) else { return };
        self.auth_cache.evict(|c| match c {
            Caller::Tenant { tenant, .. } | Caller::Agent { tenant, .. } => tenant == &t,
            Caller::Operator { .. } => false,
        });
        self.wallets.evict(&t, None);
        self.signers.evict(&t, None);
        self.status_cache.invalidate(&t);
        self.guardrails.forget_tenant(&t);
        self.keys.evict(&t);
    }

    /// Follows the store's generation notices, if it sends any, until it stops: each
    /// drops the named scope's entries at once instead of at its next confirmation.
    pub async fn follow_generation_notices(&self) {
        let Some(mut rx) = self.store.generation_notices() else { return };
        loop {
            match rx.recv().await {
                Ok(key) => {
                    let Some(scope) = key.strip_prefix(keys::CACHE_GENERATION_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else {
                        continue;
                    };
                    let slot = self.coherence.scope(scope);
                    let mut known = slot.lock().await;
                    self.drop_scope(scope);
                    // Unknown again: the next confirmation reads (and drops once more).
                    known.generation = None;
                }
                // Notices were lost: harmless (confirmations read anyway), keep following.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Two services ("nodes") over one store that says it is shared: each has its own
    //! caches, locks and chain heads, as two processes on one database do. The store is
    //! real sled; only `shared()` differs (the PostgreSQL backend's two-process tests are
    //! in tests/api/cluster.rs).
    use std::sync::Arc;

    use async_trait::async_trait;
    use serde_json::Map;

    use super::*;
    use crate::clock::FixedClock;
    use crate::codes::ErrorCode;
    use crate::ids::AgentId;
    use crate::policy::{AmountLimit, Authority, Limits, Principal, PrincipalKind};
    use crate::service::agents::NewAgent;
    use crate::service::credentials::NewDelegation;
    use crate::service::kernel::journal::Event;
    use crate::service::presentations::{Format, PresentationRequest};
    use crate::service::testing;
    use crate::store::{Entry, SledStore, Store, StoreError, Txn};

    /// A store declared shared (no append journal, no in-process ordering trusted): sled
    /// standing in for a database several nodes write, or PostgreSQL. One wrapper for the
    /// tests' variations: failure counters that always lose their compare-and-set, and a
    /// count of the cache-generation reads.
    struct Shared {
        inner: Arc<dyn Store>,
        /// Every write of an auth-failure counter conflicts (other writers always win).
        contended_counters: bool,
        generation_reads: std::sync::atomic::AtomicU64,
        /// Every commit takes 20 ms and conflicts (another node always wins).
        losing: std::sync::atomic::AtomicBool,
        /// Run once right after a scan of every data key returns (before its caller sees
        /// the rows): another node's write landing just then.
        after_data_key_scan: std::sync::Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
    }

    impl Shared {
        fn over(inner: Arc<dyn Store>) -> Self {
            Self {
                inner,
                contended_counters: false,
                generation_reads: Default::default(),
                losing: Default::default(),
                after_data_key_scan: Default::default(),
            }
        }

        fn sled(dir: &std::path::Path) -> Self {
            Self::over(Arc::new(SledStore::open(&dir.join("store")).unwrap()))
        }
    }

    #[async_trait]
    impl Store for Shared {
        async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            if key.starts_with(crate::store::keys::CACHE_GENERATION_PREFIX) {
                self.generation_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.inner.get(key).await
        }
        async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
            let rows = self.inner.scan(prefix, after, limit).await;
            if prefix == keys::DATA_KEY_PREFIX {
                let hook = self.after_data_key_scan.lock().unwrap().take();
                if let Some(hook) = hook {
                    hook.await;
                }
            }
            rows
        }
        async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
            let counter = txn.ops.iter().any(|op| match op {
                crate::store::Op::Put(k, _) | crate::store::Op::Delete(k) => k.starts_with(keys::AUTH_FAILURES_PREFIX),
            });
            if self.contended_counters && counter {
                return Err(StoreError::Conflict);
            }
            if self.losing.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                return Err(StoreError::Conflict);
            }
            self.inner.apply(txn).await
        }
        async fn sync(&self) -> Result<(), StoreError> {
            self.inner.sync().await
        }
        fn shared(&self) -> bool {
            true
        }
        fn size_on_disk(&self) -> Result<u64, StoreError> {
            self.inner.size_on_disk()
        }
        fn export(&self) -> Result<Vec<Entry>, StoreError> {
            self.inner.export()
        }
    }

    struct Cluster {
        a: Arc<Sigil>,
        b: Arc<Sigil>,
        tenant: TenantId,
        agent: AgentId,
        /// The agent's token.
        token: String,
        _dir: tempfile::TempDir,
    }

    /// Two nodes; tenant `acme` made on `a` with agent `bot` holding a refund delegation
    /// of at most 500.00 EUR, `per_day` a day.
    async fn cluster(per_day: &str) -> Cluster {
        cluster_of("acme", per_day).await
    }

    /// [`cluster`] with tenant `id`: pause points are per tenant, and tests run side by side.
    async fn cluster_of(id: &str, per_day: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Shared::sled(dir.path()));
        let clock = FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap());
        let a = testing::sigil_with_store(dir.path(), store.clone(), clock.clone());
        let b = testing::sigil_with_store(dir.path(), store, clock);
        let t = a.create_tenant(&testing::operator(), Some(id), "Acme").await.unwrap().id;
        let admin = testing::admin(&t);
        let bot = a.create_agent(&admin, &t, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let authority = Authority::new(
            &["refunds:create".to_owned()],
            &["orders/*".to_owned()],
            Limits { amount: Some(AmountLimit::parse("500.00", "EUR", Some(per_day)).unwrap()) },
            None,
        )
        .unwrap();
        let new = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority,
            valid_from: None,
            valid_until: "2027-01-01T00:00:00Z".parse().unwrap(),
        };
        a.issue_delegation(&admin, &t, &bot.id, new).await.unwrap();
        let relaxed = crate::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 0,
            ..Default::default()
        };
        a.set_guardrails(&admin, &t, relaxed).await.unwrap();
        Cluster { a, b, tenant: t, agent: bot.id, token: bot.access_token.reveal_once(), _dir: dir }
    }

    fn refund(amount: &str, challenge: &str) -> PresentationRequest {
        let mut context = Map::new();
        context.insert("amount".into(), amount.into());
        context.insert("currency".into(), "EUR".into());
        PresentationRequest {
            action: "refunds:create".into(),
            resource: Some("orders/1".into()),
            context,
            challenge: challenge.into(),
            domain: "shop.example".into(),
            format: Format::LdpVp,
            expires_in: Some(60),
        }
    }

    /// As the HTTP edge does: authenticate, then present.
    async fn present(node: &Sigil, token: &str, amount: &str, challenge: &str) -> Result<Value, ServiceError> {
        let caller = node.authenticate(token).await?;
        Ok(node.present(&caller, refund(amount, challenge)).await?.document())
    }

    use serde_json::Value;

    /// Suspension, token replacement, token deletion and tenant deletion on node `a` are
    /// effective on node `b` for the next request, although `b` had everything cached.
    #[tokio::test]
    async fn a_change_on_one_node_is_effective_on_the_other_at_once() {
        let c = cluster("1000.00").await;
        let admin = testing::admin(&c.tenant);
        // `b` caches the token, the wallet and the signer.
        present(&c.b, &c.token, "1.00", "warm").await.unwrap();
        // Suspension on `a`.
        c.a.set_agent_suspended(&admin, &c.tenant, &c.agent, true).await.unwrap();
        let r = present(&c.b, &c.token, "1.00", "s1").await;
        assert!(r.is_err(), "node b signed for an agent node a suspended");
        c.a.set_agent_suspended(&admin, &c.tenant, &c.agent, false).await.unwrap();
        present(&c.b, &c.token, "1.00", "s2").await.unwrap();
        // Token replacement on `a` (no grace): the old token stops on `b`.
        let new = c.a.rotate_agent_token(&admin, &c.tenant, &c.agent, None, None).await.unwrap();
        let r = c.b.authenticate(&c.token).await;
        assert!(matches!(r, Err(ServiceError::Unauthenticated)), "node b accepted a replaced token: {r:?}");
        let new = new.access_token.reveal_once();
        present(&c.b, &new, "1.00", "s3").await.unwrap();
        // An admin token deleted on `a`.
        let issued = c.a.create_tenant_token(&admin, &c.tenant, crate::service::model::records::TokenRole::Admin, None).await.unwrap();
        let admin_token = issued.token.reveal_once();
        let on_b = c.b.authenticate(&admin_token).await.unwrap();
        c.a.delete_tenant_token(&admin, &c.tenant, on_b.token_id()).await.unwrap();
        assert!(matches!(c.b.authenticate(&admin_token).await, Err(ServiceError::Unauthenticated)));
        // The tenant deleted on `a`.
        present(&c.b, &new, "1.00", "s4").await.unwrap();
        c.a.delete_tenant(&testing::operator(), &c.tenant).await.unwrap();
        let r = present(&c.b, &new, "1.00", "s5").await;
        assert!(r.is_err(), "node b served a tenant node a deleted");
    }

    /// A token deleted on `a` while a request on `b` holds its cached entry, and another
    /// request on `b` confirms (and drops) the tenant's entries before that one confirms:
    /// the copy read before the drop is not used.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cached_token_read_before_another_requests_drop_is_not_used() {
        let c = cluster_of("dropped", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        let issued = c.a.create_tenant_token(&admin, &c.tenant, crate::service::model::records::TokenRole::Admin, None).await.unwrap();
        let doomed = issued.token.reveal_once();
        // Twice: the first read of the scope on `b` refuses its own fill.
        c.b.authenticate(&doomed).await.unwrap();
        let on_b = c.b.authenticate(&doomed).await.unwrap();
        let armed = crate::service::kernel::cache::pause::arm("auth.cached", c.tenant.as_str());
        let (b, token) = (c.b.clone(), doomed.clone());
        let late = tokio::spawn(async move { b.authenticate(&token).await });
        armed.arrived.notified().await;
        c.a.delete_tenant_token(&admin, &c.tenant, on_b.token_id()).await.unwrap();
        // Another request on `b` confirms first: it finds the move and drops the scope.
        c.b.authenticate(&c.token).await.unwrap();
        armed.release.notify_one();
        let r = late.await.unwrap();
        assert!(matches!(r, Err(ServiceError::Unauthenticated)), "node b accepted a token node a deleted: {r:?}");
    }

    /// A data-key rotation on `a`: `b`, holding the tenant's previous key set, opens what
    /// `a` sealed under the new key (a token, the tenant record) without an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_data_key_rotation_on_one_node_does_not_fail_the_other() {
        let c = cluster_of("rotated", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        present(&c.b, &c.token, "1.00", "warm").await.unwrap();
        c.b.tenant_did_document_shared(&c.tenant).await.unwrap();
        c.a.rotate_data_key(&admin, &c.tenant).await.unwrap();
        // A token sealed under the new key, never seen by `b`.
        let issued = c.a.create_tenant_token(&admin, &c.tenant, crate::service::model::records::TokenRole::Admin, None).await.unwrap();
        let r = c.b.authenticate(&issued.token.reveal_once()).await;
        assert!(r.is_ok(), "node b failed a token sealed under a key node a rotated to: {r:?}");
        // While and after the rotation re-seals everything (the tenant record too, after
        // its 2 s settling time).
        for _ in 0..40 {
            let r = c.b.tenant_did_document_shared(&c.tenant).await;
            assert!(r.is_ok(), "node b failed the DID document while node a rotated the data key: {r:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        present(&c.b, &c.token, "1.00", "after").await.unwrap();
    }

    /// A data-key rotation on `a`, then a spend on `a` sealed under the new key: `b`, still
    /// holding the older key set, reads the day's counter (its keys loaded once more) and
    /// its own spend retries with the fresh set, never a `503` (CI saw one presentation of
    /// 253 fail so during `key_rotations_while_both_nodes_serve`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_counter_sealed_under_a_key_another_node_rotated_to_is_read_and_spent() {
        let c = cluster_of("counter", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        let caller = c.b.authenticate(&c.token).await.unwrap();
        let made = c.b.present(&caller, refund("1.00", "warm")).await.unwrap();
        let delegation = made.credential_ids[1].to_string();
        let stale = c.b.tenant_keys(&c.tenant).await.unwrap();
        c.a.rotate_data_key(&admin, &c.tenant).await.unwrap();
        present(&c.a, &c.token, "2.00", "on-a").await.unwrap();
        let day = "2026-06-10";
        let stored = c.a.store.get(&crate::store::keys::budget(&c.tenant, &delegation, day)).await.unwrap().unwrap();
        let version = crate::crypto::blob_key_version(&stored).unwrap();
        assert!(!stale.versions.contains_key(&version), "the counter is not sealed under the new key: the test shows nothing");
        let spent = c.b.budget_spent(&stale, &c.tenant, &delegation, day).await;
        assert!(spent.as_ref().is_ok_and(|s| s.stale_keys && s.amount == "3.00".parse().unwrap()), "{:?}", spent.map(|s| s.amount));
        // Staged with the stale set: a conflict the mutation retries, never a 503.
        let line = crate::service::kernel::chain_budget::BudgetLine {
            id: delegation.clone(),
            limit: "1000.00".parse().unwrap(),
            amount: "4.00".parse().unwrap(),
            day: day.to_owned(),
        };
        let staged = c.b.stage_spends(&stale, &c.tenant, &[line], &mut crate::store::Txn::new()).await;
        assert!(matches!(staged, Err(ServiceError::Conflict { .. })), "{staged:?}");
        present(&c.b, &c.token, "4.00", "on-b").await.unwrap();
    }

    /// A data-key rotation on `a` runs to its end (the older key destroyed) while `b`
    /// still holds the older key set: `b`'s next write must not be sealed under it (it
    /// would be unreadable for good). It conflicts, `b` confirms the tenant and reloads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_with_a_key_set_a_rotation_replaced_is_not_committed() {
        let c = cluster_of("resealed", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        present(&c.b, &c.token, "1.00", "warm").await.unwrap();
        c.a.rotate_data_key(&admin, &c.tenant).await.unwrap();
        let marker = crate::store::keys::data_key_rotation(&c.tenant);
        for _ in 0..200 {
            if c.a.store.get(&marker).await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(c.a.store.get(&marker).await.unwrap().is_none(), "the rotation did not finish");
        // No confirmation on `b` first: its cached key set is the older one.
        c.b.record(&c.tenant, "test".into(), Event::new("test.late", serde_json::json!({}))).await.unwrap();
        let report = c.a.audit_verify(&admin, &c.tenant).await;
        assert!(
            report.as_ref().is_ok_and(|r| r.ok),
            "the trail no longer opens after a write under a destroyed key: {:?}",
            report.map(|r| r.ok)
        );
    }

    /// Guardrail settings read on `b` before a change on `a`, cached after `b` dropped the
    /// tenant's entries: refused, so `b` applies the new settings.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guardrail_settings_read_before_a_change_are_not_cached_after_it() {
        let c = cluster_of("guarded", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        c.b.confirm_tenant(&c.tenant).await.unwrap();
        let armed = crate::service::kernel::cache::pause::arm("guards.fill", c.tenant.as_str());
        let (b, t) = (c.b.clone(), c.tenant.clone());
        let old = tokio::spawn(async move { b.guardrail_settings(&t).await });
        armed.arrived.notified().await;
        let strict = crate::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 3,
            ..Default::default()
        };
        c.a.set_guardrails(&admin, &c.tenant, strict).await.unwrap();
        // The next request on `b` confirms: the tenant's entries are dropped.
        c.b.confirm_tenant(&c.tenant).await.unwrap();
        armed.release.notify_one();
        assert_eq!(old.await.unwrap().unwrap().denial_threshold, 0, "the paused read began before the change");
        c.b.confirm_tenant(&c.tenant).await.unwrap();
        let now = c.b.guardrail_settings(&c.tenant).await.unwrap();
        assert_eq!(now.denial_threshold, 3, "node b kept guardrail settings node a changed");
    }

    /// Both nodes write one tenant's trail at once: one linear chain, every entry once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn both_nodes_extend_one_chain() {
        let c = cluster("1000.00").await;
        // Taking turns first: each node then holds a head the other has moved.
        for i in 1000..1010u64 {
            let node = if i % 2 == 0 { &c.a } else { &c.b };
            node.record(&c.tenant, "test".into(), Event::new("test.turn", serde_json::json!({ "i": i }))).await.unwrap();
        }
        let mut tasks = Vec::new();
        for i in 0..120u64 {
            let node = if i % 2 == 0 { c.a.clone() } else { c.b.clone() };
            let t = c.tenant.clone();
            tasks.push(tokio::spawn(async move {
                node.record(&t, "test".into(), Event::new("test.event", serde_json::json!({ "i": i }))).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let entries = c.a.audit_entries(&c.tenant, 0, 10_000).await.unwrap();
        crate::audit::verify_chain(&entries, entries[0].seq, &entries[0].prev).unwrap();
        let mut seen: Vec<u64> =
            entries.iter().filter(|e| e.event == "test.event").filter_map(|e| e.details.get("i").and_then(Value::as_u64)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..120).collect::<Vec<_>>(), "an entry was lost or written twice");
        assert_eq!(entries.iter().filter(|e| e.event == "test.turn").count(), 10, "an entry was lost");
        assert!(c.b.audit_verify(&testing::admin(&c.tenant), &c.tenant).await.unwrap().ok);
    }

    /// 60 concurrent 30.00 EUR refunds against 1,000.00 EUR a day, half on each node:
    /// exactly 33 granted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_daily_budget_is_exact_across_nodes() {
        let c = cluster("1000.00").await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let node = if i % 2 == 0 { c.a.clone() } else { c.b.clone() };
            let token = c.token.clone();
            tasks.push(tokio::spawn(async move { present(&node, &token, "30.00", &format!("b{i}")).await }));
        }
        let mut granted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => granted += 1,
                Err(ServiceError::Forbidden { code: ErrorCode::DailyLimitExceeded, .. }) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(granted, 33, "1000.00 / 30.00 → exactly 33 grants");
    }

    /// A spend on one node between another node's read of the day's total and its write
    /// is not lost: the write is conditional on the bytes read, and re-read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spend_between_another_nodes_read_and_write_counts() {
        let c = cluster_of("paused", "700.00").await;
        let armed = crate::service::kernel::cache::pause::arm("budget.read", c.tenant.as_str());
        let (b, token) = (c.b.clone(), c.token.clone());
        let late = tokio::spawn(async move { present(&b, &token, "400.00", "late").await });
        armed.arrived.notified().await;
        present(&c.a, &c.token, "400.00", "first").await.unwrap();
        armed.release.notify_one();
        let r = late.await.unwrap();
        assert!(
            matches!(r, Err(ServiceError::Forbidden { code: ErrorCode::DailyLimitExceeded, .. })),
            "800.00 granted against 700.00 a day: {:?}",
            r.map(|_| "granted")
        );
    }

    /// One presentation offered to both nodes at once, many times: each verifies once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_challenge_verifies_once_across_nodes() {
        let c = cluster("1000.00").await;
        for i in 0..20 {
            let challenge = format!("once-{i}");
            let doc = present(&c.a, &c.token, "1.00", &challenge).await.unwrap();
            let expect = || crate::service::Expectation {
                challenge: Some(challenge.clone()),
                domain: Some("shop.example".into()),
                ..Default::default()
            };
            let (ra, rb) = tokio::join!(c.a.verify_presentation(&doc, expect()), c.b.verify_presentation(&doc, expect()));
            let ok = [ra.unwrap().verified(), rb.unwrap().verified()];
            assert_eq!(ok.iter().filter(|v| **v).count(), 1, "challenge {challenge}: {ok:?}");
        }
    }

    /// Failed authentications from one address count across nodes; so do the denials that
    /// suspend an agent.
    #[tokio::test]
    async fn security_counters_hold_across_nodes() {
        let c = cluster("1000.00").await;
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let limit = c.a.guardrails.auth_window_limit;
        let mut throttled_at = None;
        for i in 0..2 * limit + 2 {
            let node = if i % 2 == 0 { &c.a } else { &c.b };
            if node.note_auth_failure(ip, None, "/v1/x").await {
                throttled_at = Some(i);
                break;
            }
        }
        assert_eq!(
            throttled_at,
            Some(limit),
            "the nodes' failures were not counted together (throttled after {throttled_at:?} of {limit} allowed)"
        );
        // The address is not in the store in any plain form (only its keyed hash).
        for prefix in [keys::AUTH_FAILURES_PREFIX, keys::AUTH_BLOCK_PREFIX] {
            for (k, _) in c.a.store.scan(prefix, None, 100).await.unwrap() {
                let k = String::from_utf8_lossy(&k).to_string();
                assert!(!k.contains("c0000207") && !k.contains("192.0.2.7"), "a client address in plain in the store: {k}");
            }
        }
        assert!(c.a.auth_blocked(ip) || c.a.note_auth_failure(ip, None, "/v1/x").await);
        assert!(c.b.auth_blocked(ip) || c.b.note_auth_failure(ip, None, "/v1/x").await);

        // Four denials in the window suspend; two on each node.
        let admin = testing::admin(&c.tenant);
        let strict = crate::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 4,
            denial_window_secs: 600,
            ..Default::default()
        };
        c.a.set_guardrails(&admin, &c.tenant, strict).await.unwrap();
        for i in 0..4 {
            let node = if i % 2 == 0 { &c.a } else { &c.b };
            let r = present(node, &c.token, "900.00", &format!("d{i}")).await;
            assert!(matches!(r, Err(ServiceError::Forbidden { .. })), "{r:?}");
        }
        let state = c.b.get_agent(&admin, &c.tenant, &c.agent).await.unwrap().record.state;
        assert_eq!(state, crate::service::model::records::AgentState::Suspended, "denials split across nodes did not suspend");
    }

    /// Failed authentications whose shared count keeps losing its compare-and-set are
    /// throttled, not let through uncounted.
    #[tokio::test]
    async fn auth_failure_counting_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Shared { contended_counters: true, ..Shared::sled(dir.path()) });
        let s = testing::sigil_with_store(dir.path(), store, FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap()));
        let ip: std::net::IpAddr = "192.0.2.9".parse().unwrap();
        let mut throttled = false;
        for _ in 0..3 * s.guardrails.auth_window_limit + 3 {
            throttled |= s.note_auth_failure(ip, None, "/v1/x").await;
        }
        assert!(throttled, "failures the store could not count were never throttled");
    }

    /// A root-key rotation on one node: the other, still holding the previous root,
    /// refuses to wrap under it (a wrap the key check no longer names would be lost at its
    /// next start) and keeps serving what it has; the rotating node wraps on.
    #[tokio::test]
    async fn a_node_with_an_outdated_root_does_not_wrap_under_it() {
        let c = cluster("1000.00").await;
        let op = testing::operator();
        present(&c.b, &c.token, "1.00", "before").await.unwrap();
        let key_file = c._dir.path().join("next.key");
        crate::datadir::write_new_key_file(&key_file, &crate::crypto::SecretBytes::random(32)).unwrap();
        assert_eq!(c.a.rotate_root_key(&op, &key_file).await.unwrap(), 2);
        let r = c.b.create_tenant(&op, Some("late"), "Late").await;
        assert!(matches!(r, Err(ServiceError::RootKeyOutdated)), "node b wrapped under a rotated root: {:?}", r.map(|t| t.id));
        let r = c.b.rotate_data_key(&testing::admin(&c.tenant), &c.tenant).await;
        assert!(matches!(r, Err(ServiceError::RootKeyOutdated)), "node b wrapped a data key under a rotated root: {r:?}");
        present(&c.b, &c.token, "1.00", "after").await.unwrap();
        c.a.create_tenant(&op, Some("late"), "Late").await.unwrap();
    }

    /// A node given the next root key ahead of a rotation on another node adopts it once
    /// the key check names it, without restart: it wraps under the new root, opens wraps
    /// made under it (a tenant it never opened), and still opens those made before. A
    /// next key that is not the one rotated to is never adopted.
    #[tokio::test]
    async fn a_node_holding_the_next_root_adopts_it() {
        let c = cluster("1000.00").await;
        let op = testing::operator();
        let cold = c.a.create_tenant(&op, Some("cold"), "Cold").await.unwrap().id;
        present(&c.b, &c.token, "1.00", "before").await.unwrap();
        let bytes = crate::crypto::SecretBytes::random(32);
        let key_file = c._dir.path().join("next.key");
        crate::datadir::write_new_key_file(&key_file, &bytes).unwrap();
        c.b.keys.set_next(RootKey::from_bytes(crate::crypto::SecretBytes::random(32), 2).unwrap());
        assert!(!c.b.adopt_next_root().await.unwrap(), "nothing to adopt before the rotation");
        assert_eq!(c.a.rotate_root_key(&op, &key_file).await.unwrap(), 2);
        // Another key than the one rotated to: refused, never made current.
        assert!(!c.b.adopt_next_root().await.unwrap());
        let r = c.b.create_tenant(&op, Some("late"), "Late").await;
        assert!(matches!(r, Err(ServiceError::RootKeyOutdated)), "{:?}", r.map(|t| t.id));
        assert_eq!(c.b.keys.root().version(), 1);
        // The right one: adopted at the first wrap that needs it.
        c.b.keys.set_next(RootKey::from_bytes(crate::crypto::SecretBytes::new(bytes.expose().to_vec()), 2).unwrap());
        let late = c.b.create_tenant(&op, Some("late"), "Late").await.unwrap().id;
        assert_eq!(c.b.keys.root().version(), 2, "node b did not adopt the next root");
        assert!(c.b.keys.next_root().is_none());
        c.b.rotate_data_key(&testing::admin(&c.tenant), &c.tenant).await.unwrap();
        c.b.tenant_keys(&cold).await.unwrap();
        present(&c.b, &c.token, "1.00", "after").await.unwrap();
        // Node a opens what node b wrapped; both under the new root alone.
        c.a.keys.evict_all();
        c.a.tenant_keys(&late).await.unwrap();
        for (k, blob) in c.a.store.scan(keys::DATA_KEY_PREFIX, None, usize::MAX).await.unwrap() {
            assert_eq!(crate::crypto::blob_key_version(&blob).unwrap(), 2, "{} is not under the new root", String::from_utf8_lossy(&k));
        }
    }

    /// A tenant deleted on one node leaves no row that names it, its cache generation and
    /// its agents' denial counts (kept outside its prefix on a shared store) included; the
    /// other node, which had it cached, stops serving it; and a tenant made again with the
    /// same id starts afresh on both.
    #[tokio::test]
    async fn a_deleted_tenant_leaves_no_row_naming_it() {
        let c = cluster_of("doomed", "1000.00").await;
        let admin = testing::admin(&c.tenant);
        let strict = crate::service::guardrails::GuardrailSettings {
            rate_per_second: 100_000,
            burst: 100_000,
            denial_threshold: 10,
            denial_window_secs: 600,
            ..Default::default()
        };
        c.a.set_guardrails(&admin, &c.tenant, strict).await.unwrap();
        assert!(matches!(present(&c.b, &c.token, "900.00", "deny").await, Err(ServiceError::Forbidden { .. })));
        let named = |rows: &[(Vec<u8>, Vec<u8>)]| {
            rows.iter()
                .filter(|(k, v)| [k, v].iter().any(|b| b.windows(6).any(|w| w == b"doomed")))
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        };
        // A tenant an earlier release made without a generation gets one at the next start.
        let mut txn = Txn::new();
        txn.delete(keys::cache_generation("doomed"));
        c.a.store.commit(txn).await.unwrap();
        assert_eq!(c.a.start_missing_cache_generations().await.unwrap(), 1);
        assert_eq!(c.a.start_missing_cache_generations().await.unwrap(), 0, "once");
        let before = named(&c.a.store.scan(b"", None, usize::MAX).await.unwrap());
        for prefix in ["cg/doomed", "dn/doomed/"] {
            assert!(before.iter().any(|k| k.starts_with(prefix)), "no {prefix} row to begin with: {before:?}");
        }
        c.a.delete_tenant(&testing::operator(), &c.tenant).await.unwrap();
        let left = named(&c.a.store.scan(b"", None, usize::MAX).await.unwrap());
        assert!(left.is_empty(), "rows naming the deleted tenant: {left:?}");
        assert!(c.b.authenticate(&c.token).await.is_err(), "node b served a deleted tenant");
        // Made again: a new generation, and node b serves the new tenant only.
        c.b.create_tenant(&testing::operator(), Some("doomed"), "Again").await.unwrap();
        assert!(c.a.store.get(&keys::cache_generation("doomed")).await.unwrap().is_some());
        assert!(c.a.authenticate(&c.token).await.is_err());
    }

    /// A wrap another node commits after the rotating node collected the wraps to re-wrap
    /// (and before it staged them) is never left under the old root: the wrap version moved
    /// first, so that wrap is refused (`503` on a node without the next key) instead of
    /// landing unseen, which would lose the tenant at the next start.
    #[tokio::test]
    async fn a_wrap_committed_while_a_rotation_collects_is_not_left_under_the_old_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Shared::sled(dir.path()));
        let clock = FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap());
        let a = testing::sigil_with_store(dir.path(), store.clone(), clock.clone());
        let b = testing::sigil_with_store(dir.path(), store.clone(), clock);
        let op = testing::operator();
        a.create_tenant(&op, Some("acme"), "Acme").await.unwrap();
        let made = Arc::new(std::sync::Mutex::new(None));
        let (b2, made2) = (b.clone(), made.clone());
        *store.after_data_key_scan.lock().unwrap() = Some(Box::pin(async move {
            let r = b2.create_tenant(&testing::operator(), Some("late"), "Late").await.map(|t| t.id);
            *made2.lock().unwrap() = Some(r);
        }));
        let key_file = dir.path().join("next.key");
        crate::datadir::write_new_key_file(&key_file, &crate::crypto::SecretBytes::random(32)).unwrap();
        assert_eq!(a.rotate_root_key(&op, &key_file).await.unwrap(), 2);
        let late = made.lock().unwrap().take().expect("node b's creation did not run during the rotation");
        assert!(matches!(late, Err(ServiceError::RootKeyOutdated)), "{late:?}");
        for (k, blob) in store.scan(keys::DATA_KEY_PREFIX, None, usize::MAX).await.unwrap() {
            assert_eq!(crate::crypto::blob_key_version(&blob).unwrap(), 2, "{} stayed under the old root", String::from_utf8_lossy(&k));
        }
    }

    /// A request whose commits keep losing to other nodes stops retrying at its deadline
    /// (`503`) instead of spending every one of its attempts (64 on a shared store).
    #[tokio::test]
    async fn a_request_stops_retrying_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Shared::sled(dir.path()));
        let s = testing::sigil_with_store(dir.path(), store.clone(), FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap()));
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap().id;
        store.losing.store(true, std::sync::atomic::Ordering::SeqCst);
        let started = std::time::Instant::now();
        let budget = std::time::Duration::from_millis(150);
        let r = crate::service::kernel::deadline::with_request_deadline(
            budget,
            s.record(&t, "test".into(), Event::new("test.event", serde_json::json!({}))),
        )
        .await;
        let took = started.elapsed();
        assert!(matches!(r, Err(ServiceError::Unavailable(_))), "{r:?}");
        assert!(took < std::time::Duration::from_millis(600), "the request retried for {took:?} past its {budget:?} deadline");
    }

    /// What confirming a generation costs, against the bare signature in the same run:
    /// `SIGIL_TEST_PG_URL=… cargo test --lib confirmation_cost -- --ignored --nocapture`.
    /// A measurement, not a check (debug build of Sigil; its dependencies, the signature
    /// and the driver included, are optimised: `profile.dev.package."*"`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement; needs SIGIL_TEST_PG_URL"]
    async fn confirmation_cost() {
        use std::time::Instant;
        let Some(url) = crate::store::test_database("confirmation_cost").await else { return };
        let pg = crate::store::PgStore::open(&crate::store::PgOptions::new(url)).await.unwrap();
        let store = Arc::new(Shared::over(Arc::new(pg)));
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil_with_store(dir.path(), store.clone(), Arc::new(crate::clock::SystemClock));
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap().id;
        let bot = s.create_agent(&testing::admin(&t), &t, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let token = bot.access_token.reveal_once();
        s.authenticate(&token).await.unwrap();
        let n = 2000u32;
        // The bare signature: JCS + SHA-256 + Ed25519 over a 3.5 KB presentation.
        let vp: Value = serde_json::json!({"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiablePresentation"],
            "holder": "did:web:x", "verifiableCredential": (0..2).map(|i| serde_json::json!({"id": i, "pad": "x".repeat(1600)})).collect::<Vec<_>>()});
        let unsigned = vp.as_object().unwrap().clone();
        let signer = crate::crypto::Signer::generate();
        let opts = crate::vc::proof::ProofOptions {
            cryptosuite: crate::vc::proof::Cryptosuite::EddsaJcs2022,
            verification_method: "did:web:x#key-1".into(),
            proof_purpose: "authentication",
            created: "2026-11-28T20:00:00Z".into(),
            expires: None,
            challenge: Some("c".into()),
            domain: Some("d".into()),
        };
        let started = Instant::now();
        for _ in 0..n {
            let canon = crate::vc::jcs::canonicalize_object(&unsigned, None).unwrap();
            crate::vc::proof::sign_canonical(&canon, None, &opts, &signer).unwrap();
        }
        let sign = started.elapsed() / n;
        // One request at a time: every authentication confirms with its own read.
        let started = Instant::now();
        for _ in 0..n {
            s.authenticate(&token).await.unwrap();
        }
        let sequential = started.elapsed() / n;
        // The same on sled (not shared: no confirmation).
        let sled = testing::sigil(dir.path().join("sled").as_path());
        std::fs::create_dir_all(dir.path().join("sled")).ok();
        let t2 = sled.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap().id;
        let bot2 = sled.create_agent(&testing::admin(&t2), &t2, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let token2 = bot2.access_token.reveal_once();
        sled.authenticate(&token2).await.unwrap();
        let started = Instant::now();
        for _ in 0..n {
            sled.authenticate(&token2).await.unwrap();
        }
        let bare = started.elapsed() / n;
        // 64 concurrent requests of one tenant: reads shared.
        let before = store.generation_reads.load(std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (s, token) = (s.clone(), token.clone());
                tokio::spawn(async move {
                    for _ in 0..100 {
                        s.authenticate(&token).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let wall = started.elapsed();
        let reads = store.generation_reads.load(std::sync::atomic::Ordering::Relaxed) - before;
        eprintln!("bare signature (JCS + SHA-256 + Ed25519, 3.5 KB): {sign:?}");
        eprintln!("authentication, cache hit, sled (no confirmation): {bare:?}");
        eprintln!(
            "authentication, cache hit, PostgreSQL, one at a time (one confirmation read each): {sequential:?} = {:.2} x the signature",
            sequential.as_secs_f64() / sign.as_secs_f64()
        );
        eprintln!(
            "64 concurrent: 6400 authentications in {wall:?} ({:?} each), {reads} confirmation reads ({:.3} per request)",
            wall / 6400,
            reads as f64 / 6400.0
        );
    }
}
