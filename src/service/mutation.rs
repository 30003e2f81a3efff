//! The one mutation path. Every change to a tenant's records goes through
//! [`Sigil::mutate`]: load → stage (build the transaction, the audit event and the
//! effects; no side effects) → commit with the audit entry, compare-and-swap → effects,
//! once, after the commit. A conflict (someone else committed first) re-runs the stage
//! from a fresh load, at most [`MAX_ATTEMPTS`] times.
//!
//! Effects are data ([`Effects`]), not closures: what a change invalidates is declared
//! while staging and applied in one place ([`Sigil::apply`]), after the commit and before
//! the response, so every request that starts after the response sees the change. Each
//! eviction bumps its cache's generation ([`super::cache`]), so a fill that read the store
//! before the commit cannot put the old value back.
//!
//! Must never: run an effect for a change that did not commit, or commit outside
//! [`Sigil::mutate`] (a test searches `src/service` for the commit call and the retry bound).

use super::audit::Event;
use super::{ServiceError, Sigil};
use crate::store::Txn;

/// How many times a stage is re-run after a conflicting commit.
pub const MAX_ATTEMPTS: usize = 16;

/// What a committed change invalidates.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    items: Vec<Effect>,
}

#[derive(Debug)]
enum Effect {
    /// One token (by id) stops authenticating.
    Token(String),
    /// Every token of a tenant stops authenticating.
    TenantTokens(String),
    /// An agent's wallet (`None`: every agent of the tenant).
    Wallet(String, Option<String>),
    /// Opened private keys of an owner (`None`: every owner of the tenant).
    Signers(String, Option<String>),
    /// The tenant's signed status lists: the next fetch reflects the change.
    StatusLists(String),
    /// The tenant's guardrail settings.
    Guardrails(String),
    /// The tenant's data keys (a rotation started or finished).
    DataKeys(String),
}

impl Effects {
    /// No effects.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn token(&mut self, id: &str) -> &mut Self {
        self.items.push(Effect::Token(id.to_owned()));
        self
    }

    pub fn tenant_tokens(&mut self, tenant: &str) -> &mut Self {
        self.items.push(Effect::TenantTokens(tenant.to_owned()));
        self
    }

    pub fn wallet(&mut self, tenant: &str, agent: &str) -> &mut Self {
        self.items.push(Effect::Wallet(tenant.to_owned(), Some(agent.to_owned())));
        self
    }

    pub fn all_wallets(&mut self, tenant: &str) -> &mut Self {
        self.items.push(Effect::Wallet(tenant.to_owned(), None));
        self
    }

    pub fn signers(&mut self, tenant: &str, owner: Option<&str>) -> &mut Self {
        self.items.push(Effect::Signers(tenant.to_owned(), owner.map(str::to_owned)));
        self
    }

    pub fn status_lists(&mut self, tenant: &str) -> &mut Self {
        self.items.push(Effect::StatusLists(tenant.to_owned()));
        self
    }

    pub fn guardrails(&mut self, tenant: &str) -> &mut Self {
        self.items.push(Effect::Guardrails(tenant.to_owned()));
        self
    }

    pub fn data_keys(&mut self, tenant: &str) -> &mut Self {
        self.items.push(Effect::DataKeys(tenant.to_owned()));
        self
    }

    /// Everything cached for `tenant` (its deletion).
    pub fn everything(&mut self, tenant: &str) -> &mut Self {
        self.tenant_tokens(tenant).all_wallets(tenant).signers(tenant, None).status_lists(tenant).guardrails(tenant)
    }
}

/// One staged change: the writes, the audit event recorded with them, what the commit
/// invalidates, and what the caller gets once it committed.
pub(crate) struct Change<T> {
    pub txn: Txn,
    pub event: Event,
    pub effects: Effects,
    pub out: T,
}

/// What a stage decided.
pub(crate) enum Attempt<T> {
    /// Nothing to write (already in the asked-for state): answer `T` as is.
    Done(T),
    /// Commit this change.
    Commit(Change<T>),
}

impl<T> Attempt<T> {
    /// A change to commit.
    pub fn commit(txn: Txn, event: Event, effects: Effects, out: T) -> Self {
        Attempt::Commit(Change { txn, event, effects, out })
    }
}

impl Sigil {
    /// Runs `stage` until its change commits (with its audit entry, in `tenant`'s trail, as
    /// `actor`), then applies its effects. `stage` must be pure apart from reads: it may
    /// run several times.
    ///
    /// `stage` is `|| async move { … }` over references to what it needs, so that each
    /// attempt is a fresh future (and the whole stays `Send` for spawned tasks).
    pub(crate) async fn mutate<T, F>(&self, tenant: &str, actor: &str, mut stage: impl FnMut() -> F) -> Result<T, ServiceError>
    where
        F: std::future::Future<Output = Result<Attempt<T>, ServiceError>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let change = match stage().await? {
                Attempt::Done(out) => return Ok(out),
                Attempt::Commit(change) => change,
            };
            if self.try_commit_audited(tenant, actor.to_owned(), change.txn, change.event).await? {
                self.apply(change.effects);
                return Ok(change.out);
            }
        }
        Err(ServiceError::conflict("write_conflict", "the record is being modified concurrently; retry"))
    }

    /// Applies the effects of a committed change (also used by the few commits outside a
    /// tenant's trail: tenant deletion, root-key rotation).
    pub(crate) fn apply(&self, effects: Effects) {
        for e in effects.items {
            match e {
                Effect::Token(id) => self.auth_cache.evict(|c| c.token_id().as_str() == id),
                Effect::TenantTokens(t) => self.auth_cache.evict(|c| match c {
                    super::Caller::Tenant { tenant, .. } | super::Caller::Agent { tenant, .. } => tenant.as_str() == t,
                    super::Caller::Operator { .. } => false,
                }),
                Effect::Wallet(t, a) => self.wallets.evict(&t, a.as_deref()),
                Effect::Signers(t, owner) => self.signers.evict(&t, owner.as_deref()),
                Effect::StatusLists(t) => self.status_cache.invalidate(&t),
                Effect::Guardrails(t) => self.guardrails.forget_tenant(&t),
                Effect::DataKeys(t) => self.keys.evict(&t),
            }
        }
    }
}
