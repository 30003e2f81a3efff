//! The service: every operation an API caller can trigger, as methods of [`Sigil`]. It
//! owns transactions and invariants (who may do what, which records change together).
//! Three tiers, dependencies pointing down: [`ops`] (use cases) → [`kernel`] (mechanisms,
//! including the one mutation path) → [`model`] (records, settings, errors). See
//! `docs/ARCHITECTURE.md`, "Layers"; `tests/architecture.rs` enforces the rules.
//!
//! Must never: speak HTTP, hold key bytes (those stay in `crypto`), do file I/O itself
//! (`crate::datadir` does), or write to the store except through
//! `kernel::mutation`.

pub(crate) mod kernel;
pub(crate) mod model;
pub(crate) mod ops;

// The public paths the HTTP layer, the CLI and the tests use; the tiers stay an internal
// arrangement.
pub use kernel::{auth, egress, resolver, status};
pub use model::{records, settings};
pub use ops::{
    agents, approvals, audit, credentials, guardrails, lifecycle, presentations, rotation, subdelegation, tenants, tokens, vc_api,
};

use std::sync::Arc;

pub use kernel::auth::{Caller, Role};
pub use kernel::keyring::Keyring;
pub use model::error::ServiceError;
pub use ops::verification::{Expectation, FLOOR_REACH, restored_lease_record};

use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::ids::AgentId;
use crate::ids::TenantId;
use crate::store::Store;

/// Settings the service layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public base URL (did:web host, status list URLs, context URL).
    pub public_url: PublicUrl,
    /// Upper bound for presentation lifetimes, seconds.
    pub max_presentation_ttl: u64,
    /// The data directory (key-check file), when the service owns one.
    pub data_dir: Option<std::path::PathBuf>,
    /// Failed authentications allowed per client address (0 disables throttling).
    pub auth_failure_burst: u32,
    /// Issuers `/v1/verify` trusts beside this deployment's own tenants (`--trust-issuer`).
    pub trusted_issuers: Vec<crate::vc::trust::TrustRule>,
    /// `/v1/verify` requests per second per client address (0 disables the limit).
    pub verify_rate: u32,
    /// The W3C VC-API verify routes only report issuer trust instead of requiring it
    /// (`--vc-api-trust advisory`; default: required, as everywhere else).
    pub vc_api_trust_advisory: bool,
    /// Seal reservation and automatic data-key rotation (see [`settings::SealLimits`]).
    pub seal_limits: settings::SealLimits,
}

impl Settings {
    /// Settings for `public_url` with every other value at its default.
    pub fn new(public_url: PublicUrl) -> Self {
        Self {
            public_url,
            max_presentation_ttl: 300,
            data_dir: None,
            auth_failure_burst: 20,
            trusted_issuers: Vec::new(),
            verify_rate: 100,
            vc_api_trust_advisory: false,
            seal_limits: settings::SealLimits::default(),
        }
    }

    /// Whom `/v1/verify` trusts: every tenant of this deployment (each for its own agents
    /// only), plus the issuers the operator configured. Never anyone else.
    pub fn verify_trust(&self) -> crate::vc::trust::TrustPolicy {
        let base = crate::vc::trust::TrustPolicy::none().trust_tenants_of(self.public_url.did_host());
        self.trusted_issuers.iter().cloned().fold(base, |p, r| p.with_rule(r))
    }
}

/// The application: store, keys, clock and caches. Cheap to share (`Arc`).
pub struct Sigil {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Keyring,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) auth_cache: auth::AuthCache,
    /// Token uses not yet written into their records.
    pub(crate) token_use: auth::TokenUse,
    pub(crate) signers: kernel::signers::SignerCache,
    pub(crate) status_cache: kernel::status::StatusCache,
    pub(crate) http: resolver::HttpResolver,
    pub(crate) audit_heads: kernel::journal::AuditHeads,
    /// What this process knows of each tenant's record manifest (stale copies refused).
    pub(crate) manifests: kernel::manifest::Manifests,
    pub(crate) wallets: kernel::wallet::WalletCache,
    /// Cache generations confirmed against a shared store (several nodes).
    pub(crate) coherence: kernel::coherence::Coherence,
    pub(crate) tenant_did_docs: kernel::dids::TenantDidDocs,
    pub(crate) agent_did_records: kernel::dids::AgentDidRecords,
    pub(crate) agent_locks: kernel::locks::AgentLocks,
    pub(crate) budget_locks: kernel::locks::KeyedLocks,
    /// Per-tenant issuance (status-list allocation) locks; see [`kernel::locks::Issuing`].
    pub(crate) issuance_locks: kernel::locks::KeyedLocks,
    pub(crate) guardrails: kernel::guards::Guardrails,
    /// The bound on approval webhook deliveries in flight.
    pub(crate) webhook_slots: kernel::webhook::WebhookSlots,
    pub(crate) challenge_lease: ops::verification::ChallengeLease,
    /// [`Settings::verify_trust`], built once.
    pub(crate) verify_trust: crate::vc::trust::TrustPolicy,
}

impl Sigil {
    /// Assembles the service from its parts (see `startup` for the real wiring).
    pub fn new(store: Arc<dyn Store>, keys: Keyring, clock: Arc<dyn Clock>, settings: Settings, http: resolver::HttpResolver) -> Arc<Self> {
        let guard = kernel::guards::Guardrails::new(settings.auth_failure_burst, settings.verify_rate);
        let verify_trust = settings.verify_trust();
        Arc::new(Self {
            verify_trust,
            store,
            keys,
            clock,
            settings,
            auth_cache: auth::AuthCache::default(),
            token_use: auth::TokenUse::default(),
            signers: kernel::signers::SignerCache::default(),
            status_cache: kernel::status::StatusCache::default(),
            http,
            audit_heads: kernel::journal::AuditHeads::default(),
            manifests: kernel::manifest::Manifests::default(),
            wallets: kernel::wallet::WalletCache::default(),
            coherence: kernel::coherence::Coherence::default(),
            tenant_did_docs: kernel::dids::TenantDidDocs::default(),
            agent_did_records: kernel::dids::AgentDidRecords::default(),
            agent_locks: kernel::locks::AgentLocks::default(),
            budget_locks: kernel::locks::KeyedLocks::default(),
            issuance_locks: kernel::locks::KeyedLocks::default(),
            guardrails: guard,
            webhook_slots: kernel::webhook::WebhookSlots::default(),
            challenge_lease: ops::verification::ChallengeLease::default(),
        })
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// The configured settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whom a tenant's VC-API verify routes trust: whom `/v1/verify` trusts, and the
    /// tenant's own issuer for any subject (what it issued through its VC-API is about
    /// anyone, not only its agents).
    pub(crate) fn vc_api_trust(&self, tenant: &TenantId) -> crate::vc::trust::TrustPolicy {
        self.verify_trust.clone().trust_issuer(self.tenant_did(tenant))
    }

    /// How the VC-API verify routes treat issuer trust (`--vc-api-trust`).
    pub(crate) fn vc_api_trust_mode(&self) -> crate::vc::verify::TrustMode {
        if self.settings.vc_api_trust_advisory { crate::vc::verify::TrustMode::Advisory } else { crate::vc::verify::TrustMode::Enforce }
    }

    /// `did:web` of a tenant.
    pub fn tenant_did(&self, tenant: &TenantId) -> String {
        format!("did:web:{}:tenants:{tenant}", self.settings.public_url.did_host())
    }

    /// `did:web` of an agent.
    pub fn agent_did(&self, tenant: &TenantId, agent: &AgentId) -> String {
        format!("did:web:{}:tenants:{tenant}:agents:{agent}", self.settings.public_url.did_host())
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

#[cfg(test)]
pub(crate) mod testing {
    //! A real service over a real sled store in a temporary directory (no mocks).
    use super::*;
    use crate::clock::SystemClock;
    use crate::crypto::{RootKey, SecretBytes, TokenPepper};
    use crate::ids::TokenId;
    use crate::store::SledStore;

    pub fn sigil_in(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Arc<Sigil> {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
        sigil_with_store(dir, store, clock)
    }

    pub fn sigil_with_store(dir: &std::path::Path, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Arc<Sigil> {
        sigil_with_settings(dir, store, clock, |_| {})
    }

    /// A service over `store` whose settings `edit` changes first.
    pub fn sigil_with_settings(
        dir: &std::path::Path,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        edit: impl FnOnce(&mut Settings),
    ) -> Arc<Sigil> {
        let root = RootKey::from_bytes(SecretBytes::new(vec![42u8; 32]), 1).unwrap();
        let keys = Keyring::new(root, TokenPepper::fixed_for_tests());
        let mut settings =
            Settings { data_dir: Some(dir.to_owned()), ..Settings::new(PublicUrl::parse("https://sigil.test:8443").unwrap()) };
        edit(&mut settings);
        Sigil::new(store, keys, clock, settings, resolver::HttpResolver::public().unwrap())
    }

    pub fn sigil(dir: &std::path::Path) -> Arc<Sigil> {
        sigil_in(dir, Arc::new(SystemClock))
    }

    pub fn operator() -> Caller {
        Caller::Operator { token: TokenId::random() }
    }

    pub fn admin(tenant: &crate::ids::TenantId) -> Caller {
        Caller::Tenant { tenant: tenant.clone(), role: Role::Admin, token: TokenId::random() }
    }
}
