//! The service's view of the key hierarchy: the root key (and the next one, when the node
//! was given it ahead of a rotation), the token pepper and a cache of unwrapped tenant
//! data keys. Holds only `crypto` types; never touches their bytes.
//!
//! Must never: make the next root key current unless the caller proved it against the
//! stored key check (`Sigil::adopt_next_root`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::crypto::{DataKey, RootKey, SealMeter, TokenPepper, blob_key_version};
use crate::ids::TenantId;

/// The data keys of one tenant that are currently usable.
#[derive(Debug)]
pub struct TenantKeys {
    /// Version new records are sealed under.
    pub current: u32,
    /// Every version that may still be needed to open records (during a data-key rotation
    /// there are two).
    pub versions: HashMap<u32, DataKey>,
    /// Held while one request reserves the next block of seals for the current key
    /// (`mutation::ensure_seals`), so that a burst reserves once, not once per request.
    /// Shared by every key set of the same key, like its meter ([`Keyring::metered`]).
    pub(crate) reserving: Arc<tokio::sync::Mutex<()>>,
}

impl TenantKeys {
    /// A key set; `reserving` as [`Keyring::metered`] handed it out for the current key.
    pub fn new(current: u32, versions: HashMap<u32, DataKey>, reserving: Arc<tokio::sync::Mutex<()>>) -> Self {
        Self { current, versions, reserving }
    }

    /// The key new records are sealed with.
    pub fn current(&self) -> Option<&DataKey> {
        self.versions.get(&self.current)
    }
}

/// A data key as its seal meter knows it: tenant, version, key fingerprint.
type MeterId = (String, u32, u64);
/// Taken by the one request reserving seals for a key.
type ReserveLock = Arc<tokio::sync::Mutex<()>>;

/// Root key, pepper and the data-key cache.
pub struct Keyring {
    /// The current root key and the one it replaced (if it was rotated in this process),
    /// swapped together by root-key rotation.
    root: RwLock<Roots>,
    /// The root key another node may rotate to (`--next-root-key-file`), as the version
    /// after the current one; made current by [`Keyring::adopt_next`] once the key check
    /// names it and it proved against it.
    next: RwLock<Option<Arc<RootKey>>>,
    /// Held by the one request that checks the key check for the next root (single flight).
    pub(crate) adopting: tokio::sync::Mutex<()>,
    /// Taken shared by whatever wraps a new data key under the root (tenant creation,
    /// data-key rotation) or seals a new operator token under it, until that is committed,
    /// and exclusively by root-key
    /// rotation for its whole run. Without it a wrap made under the old root and committed
    /// after the rotation collected the wraps to re-wrap would stay under the old root, and
    /// the tenant would be unreadable after the next start; two rotations would also
    /// interleave. Readers never take it (see [`Keyring::root_for`]), so a holder may read
    /// tenant keys without deadlock.
    pub(crate) wrapping: tokio::sync::RwLock<()>,
    pub(crate) pepper: TokenPepper,
    tenants: RwLock<HashMap<String, Arc<TenantKeys>>>,
    /// Seal meters by (tenant, version, key fingerprint), with the lock a reservation for
    /// that key takes: every copy of a data key this process unwraps seals on one grant,
    /// so evicting the key cache never wastes a reserved block.
    meters: std::sync::Mutex<HashMap<MeterId, (SealMeter, ReserveLock)>>,
    /// Bumped by every eviction. A loader notes it before reading the store and caches its
    /// result only if no eviction happened meanwhile: a key set read just before a
    /// data-key rotation committed must not be cached after the rotation evicted it (it
    /// would seal under the old key and fail to open records sealed under the new one).
    generation: AtomicU64,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Roots {
    current: Arc<RootKey>,
    previous: Option<Arc<RootKey>>,
}

impl Keyring {
    /// A keyring around an opened root key and pepper.
    pub fn new(root: RootKey, pepper: TokenPepper) -> Self {
        Self {
            root: RwLock::new(Roots { current: Arc::new(root), previous: None }),
            next: RwLock::new(None),
            adopting: tokio::sync::Mutex::new(()),
            wrapping: tokio::sync::RwLock::new(()),
            pepper,
            tenants: RwLock::new(HashMap::new()),
            meters: std::sync::Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn roots(&self) -> Roots {
        match self.root.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The current root key: the one new wraps are made under.
    pub(crate) fn root(&self) -> Arc<RootKey> {
        self.roots().current
    }

    /// The root key that wrapped `blob`. A reader that fetched a wrap just before a root
    /// rotation moved it under the new root opens it after the swap with the old one, by
    /// the key version in the blob, instead of failing. The old root stays in memory until
    /// the next rotation or restart; it was in memory until this rotation anyway.
    pub(crate) fn root_for(&self, blob: &[u8]) -> Arc<RootKey> {
        let roots = self.roots();
        match (roots.previous, blob_key_version(blob)) {
            (Some(prev), Ok(v)) if v == prev.version() && v != roots.current.version() => prev,
            _ => roots.current,
        }
    }

    /// Installs a new root key (after its wraps are durable and the key check names it).
    pub(crate) fn set_root(&self, root: RootKey) {
        self.install(Arc::new(root));
    }

    /// Makes `root` current, the current one previous (it opens what was wrapped before),
    /// and forgets a next key this one reached.
    fn install(&self, root: Arc<RootKey>) {
        let mut guard = match self.root.write() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let previous = guard.current.clone();
        let version = root.version();
        *guard = Roots { current: root, previous: Some(previous) };
        drop(guard);
        let mut next = match self.next.write() {
            Ok(n) => n,
            Err(p) => p.into_inner(),
        };
        if next.as_ref().is_some_and(|n| n.version() <= version) {
            *next = None;
        }
    }

    /// Keeps `next` as the root key the next rotation goes to (the version after the
    /// current one).
    pub(crate) fn set_next(&self, next: RootKey) {
        let mut guard = match self.next.write() {
            Ok(n) => n,
            Err(p) => p.into_inner(),
        };
        *guard = Some(Arc::new(next));
    }

    /// The next root key, if this node holds one.
    pub(crate) fn next_root(&self) -> Option<Arc<RootKey>> {
        match self.next.read() {
            Ok(n) => n.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Makes the next root key current (another node rotated to it; the caller proved it
    /// against the stored key check). The root it replaces stays to open wraps made
    /// before, until the next rotation or restart. False when there was none to adopt.
    pub(crate) fn adopt_next(&self, next: &Arc<RootKey>) -> bool {
        if self.root().version() >= next.version() {
            return false;
        }
        self.install(next.clone());
        true
    }

    /// Forgets every cached tenant data key (root or data-key rotation).
    pub(crate) fn evict_all(&self) {
        if let Ok(mut m) = self.tenants.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            m.clear();
        }
    }

    /// The eviction generation to pass to [`Keyring::insert`]; read it before the store.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn cached(&self, tenant: &TenantId) -> Option<Arc<TenantKeys>> {
        self.tenants.read().ok()?.get(tenant.as_str()).cloned()
    }

    /// Caches `keys`, loaded from the store after [`Keyring::generation`] returned
    /// `generation`, unless an eviction happened since (then the caller uses them for its
    /// own request only and the next one reloads).
    pub(crate) fn insert(&self, tenant: &TenantId, keys: TenantKeys, generation: u64) -> Arc<TenantKeys> {
        let keys = Arc::new(keys);
        if let Ok(mut m) = self.tenants.write() {
            // Evictions bump the generation under this same lock, so the check is exact.
            if self.generation.load(Ordering::SeqCst) == generation {
                m.insert(tenant.to_string(), keys.clone());
            }
        }
        keys
    }

    /// `dk` sealing on the meter every copy of it shares, and that meter's reservation lock.
    pub(crate) fn metered(&self, tenant: &TenantId, dk: DataKey) -> (DataKey, ReserveLock) {
        let id = (tenant.to_string(), dk.version(), dk.fingerprint());
        let mut m = match self.meters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let (meter, lock) = m.entry(id).or_insert_with(|| (SealMeter::default(), Arc::new(tokio::sync::Mutex::new(())))).clone();
        (dk.with_meter(meter), lock)
    }

    /// Forgets the seal meters of a tenant's keys other than version `keep` (all of them
    /// when `None`): the keys are destroyed.
    pub(crate) fn forget_meters(&self, tenant: &TenantId, keep: Option<u32>) {
        let mut m = match self.meters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.retain(|(t, v, _), _| t != tenant.as_str() || Some(*v) == keep);
    }

    /// Drops a tenant's keys from memory (deletion, rotation). Dropping zeroizes them once
    /// the last in-flight request holding the `Arc` finishes.
    pub(crate) fn evict(&self, tenant: &TenantId) {
        if let Ok(mut m) = self.tenants.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            m.remove(tenant.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretBytes;

    fn ring() -> Keyring {
        Keyring::new(RootKey::from_bytes(SecretBytes::random(32), 1).unwrap(), TokenPepper::generate())
    }

    fn keys(current: u32) -> TenantKeys {
        TenantKeys::new(current, [(current, DataKey::generate(current))].into_iter().collect(), Default::default())
    }

    #[test]
    fn a_key_set_loaded_before_an_eviction_is_not_cached_after_it() {
        let k = ring();
        let before = k.generation();
        // A data-key rotation commits and evicts while a request is still loading.
        k.evict(&crate::ids::TenantId::parse("acme").unwrap());
        let stale = k.insert(&crate::ids::TenantId::parse("acme").unwrap(), keys(1), before);
        assert_eq!(stale.current, 1, "the loader still gets its keys for its own request");
        assert!(k.cached(&crate::ids::TenantId::parse("acme").unwrap()).is_none(), "but they are not cached");
        let fresh = k.generation();
        k.insert(&crate::ids::TenantId::parse("acme").unwrap(), keys(2), fresh);
        assert_eq!(k.cached(&crate::ids::TenantId::parse("acme").unwrap()).map(|t| t.current), Some(2));
        k.evict_all();
        k.insert(&crate::ids::TenantId::parse("acme").unwrap(), keys(1), fresh);
        assert!(k.cached(&crate::ids::TenantId::parse("acme").unwrap()).is_none());
    }
}
