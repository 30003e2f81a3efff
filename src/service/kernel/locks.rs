//! Locks that order changes against signing. [`AgentLocks`] (sharded read/write locks per
//! agent): every change that affects what an agent may sign takes the agent's write lock,
//! so it waits for presentations being signed right now and no presentation starts with
//! the old state after the change commits. [`KeyedLocks`] serialize one named job per
//! tenant (a budget, a checkpoint); [`Issuing`] is the tenant's issuance lock, held from
//! status-index allocation to commit.
//!
//! Must never: know what the locks protect beyond their keys (callers decide what to lock).

use std::hash::{Hash, Hasher};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::ids::AgentId;
use crate::ids::TenantId;
use crate::service::Sigil;

const SHARDS: usize = 256;

/// Sharded per-agent locks: presentations hold a read guard from loading the wallet to
/// signing; key and state changes hold the write guard across their commit and the cache
/// eviction.
pub struct AgentLocks {
    shards: Vec<RwLock<()>>,
}

impl Default for AgentLocks {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| RwLock::new(())).collect() }
    }
}

impl AgentLocks {
    fn shard(&self, tenant: &TenantId, agent: &AgentId) -> &RwLock<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (tenant, agent).hash(&mut h);
        let i = (h.finish() as usize) % SHARDS;
        // `i < SHARDS == shards.len()`; `first()` is only a non-panicking fallback.
        self.shards.get(i).or_else(|| self.shards.first()).unwrap_or_else(|| unreachable_lock())
    }

    pub(crate) async fn read(&self, tenant: &TenantId, agent: &AgentId) -> RwLockReadGuard<'_, ()> {
        self.shard(tenant, agent).read().await
    }

    pub(crate) async fn write(&self, tenant: &TenantId, agent: &AgentId) -> RwLockWriteGuard<'_, ()> {
        self.shard(tenant, agent).write().await
    }

    /// Every shard (issuer-key rotation affects all agents of a tenant).
    pub(crate) async fn write_all(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        let mut v = Vec::with_capacity(SHARDS);
        for s in &self.shards {
            v.push(s.write().await);
        }
        v
    }
}

fn unreachable_lock() -> &'static RwLock<()> {
    static FALLBACK: RwLock<()> = RwLock::const_new(());
    &FALLBACK
}

/// Sharded mutexes keyed by `(tenant, name)`: budget reservations per delegation, and
/// status-list allocation per tenant (see [`Issuing`]).
pub struct KeyedLocks {
    shards: Vec<tokio::sync::Mutex<()>>,
}

impl Default for KeyedLocks {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect() }
    }
}

impl KeyedLocks {
    pub(crate) async fn lock(&self, tenant: &TenantId, name: &str) -> tokio::sync::MutexGuard<'_, ()> {
        static FALLBACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (tenant, name).hash(&mut h);
        // `i < SHARDS == shards.len()`; the fallback only avoids a panic path.
        self.shards.get((h.finish() as usize) % SHARDS).unwrap_or(&FALLBACK).lock().await
    }
}

/// Proof that the caller holds its tenant's issuance lock, which status-index allocation
/// requires. Held from allocation to commit, it makes concurrent issuances in a tenant
/// take turns instead of all but one failing on the status-list counters and retrying
/// (which, under a burst of creations, exhausted the retries and answered 409).
pub(crate) struct Issuing<'a> {
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl Sigil {
    /// Takes tenant `t`'s issuance lock; hold it until the issuing transaction commits.
    pub(crate) async fn issuing(&self, t: &TenantId) -> Issuing<'_> {
        Issuing { _guard: self.issuance_locks.lock(t, "issuance").await }
    }
}
