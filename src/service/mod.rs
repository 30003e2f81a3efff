//! Use cases. Every operation an API caller can trigger is one function here; this layer
//! owns transactions and invariants (who may do what, which records change together).
//!
//! Must never: speak HTTP, hold key bytes (those stay in `crypto`), or write to the store
//! outside a [`crate::store::Txn`].

pub mod agents;
pub mod auth;
mod error;
mod keyring;
pub mod records;
mod sealed;
pub mod tenants;

use std::sync::Arc;

pub use auth::{Caller, Role};
pub use error::ServiceError;
pub use keyring::Keyring;

use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::store::Store;

/// Settings the service layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public base URL (did:web host, status list URLs, context URL).
    pub public_url: PublicUrl,
    /// Upper bound for presentation lifetimes, seconds.
    pub max_presentation_ttl: u64,
}

/// The application: store, keys, clock and caches. Cheap to share (`Arc`).
pub struct Sigil {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Keyring,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) auth_cache: auth::AuthCache,
}

impl Sigil {
    /// Assembles the service from its parts (see `startup` for the real wiring).
    pub fn new(
        store: Arc<dyn Store>,
        keys: Keyring,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            keys,
            clock,
            settings,
            auth_cache: auth::AuthCache::default(),
        })
    }

    /// The configured settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `did:web` of a tenant.
    pub fn tenant_did(&self, tenant: &str) -> String {
        format!(
            "did:web:{}:tenants:{tenant}",
            self.settings.public_url.did_host()
        )
    }

    /// `did:web` of an agent.
    pub fn agent_did(&self, tenant: &str, agent: &str) -> String {
        format!(
            "did:web:{}:tenants:{tenant}:agents:{agent}",
            self.settings.public_url.did_host()
        )
    }

    /// Readiness: the store answers a read.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store.get(crate::store::keys::meta::FORMAT).await?;
        Ok(())
    }
}

/// A page of results with an opaque cursor for the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Clamps a caller-provided page size.
pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(50).clamp(1, 500) as usize
}
