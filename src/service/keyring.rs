//! The service's view of the key hierarchy: the root key, the token pepper and a cache of
//! unwrapped tenant data keys. Holds only `crypto` types; never touches their bytes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::crypto::{DataKey, RootKey, TokenPepper};

/// The data keys of one tenant that are currently usable.
#[derive(Debug)]
pub struct TenantKeys {
    /// Version new records are sealed under.
    pub current: u32,
    /// Every version that may still be needed to open records (during a data-key rotation
    /// there are two).
    pub versions: HashMap<u32, DataKey>,
}

impl TenantKeys {
    /// The key new records are sealed with.
    pub fn current(&self) -> Option<&DataKey> {
        self.versions.get(&self.current)
    }
}

/// Root key, pepper and the data-key cache.
pub struct Keyring {
    /// Swapped atomically by root-key rotation.
    root: RwLock<Arc<RootKey>>,
    pub(crate) pepper: TokenPepper,
    tenants: RwLock<HashMap<String, Arc<TenantKeys>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring around an opened root key and pepper.
    pub fn new(root: RootKey, pepper: TokenPepper) -> Self {
        Self { root: RwLock::new(Arc::new(root)), pepper, tenants: RwLock::new(HashMap::new()) }
    }

    /// The current root key.
    pub(crate) fn root(&self) -> Arc<RootKey> {
        match self.root.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Installs a new root key (after its wraps are durable and the key check names it).
    pub(crate) fn set_root(&self, root: RootKey) {
        match self.root.write() {
            Ok(mut r) => *r = Arc::new(root),
            Err(p) => *p.into_inner() = Arc::new(root),
        }
    }

    /// Forgets every cached tenant data key (root or data-key rotation).
    pub(crate) fn evict_all(&self) {
        if let Ok(mut m) = self.tenants.write() {
            m.clear();
        }
    }

    pub(crate) fn cached(&self, tenant: &str) -> Option<Arc<TenantKeys>> {
        self.tenants.read().ok()?.get(tenant).cloned()
    }

    pub(crate) fn insert(&self, tenant: &str, keys: TenantKeys) -> Arc<TenantKeys> {
        let keys = Arc::new(keys);
        if let Ok(mut m) = self.tenants.write() {
            m.insert(tenant.to_owned(), keys.clone());
        }
        keys
    }

    /// Drops a tenant's keys from memory (deletion, rotation). Dropping zeroizes them once
    /// the last in-flight request holding the `Arc` finishes.
    pub(crate) fn evict(&self, tenant: &str) {
        if let Ok(mut m) = self.tenants.write() {
            m.remove(tenant);
        }
    }
}
