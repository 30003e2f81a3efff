//! The one mutation path. Every change to a tenant's records goes through
//! [`Sigil::mutate`]: load → stage (build the transaction, the audit event and the
//! effects; no side effects) → commit with the audit entry, compare-and-swap → effects,
//! once, after the commit. A conflict (someone else committed first) re-runs the stage
//! from a fresh load, at most [`MAX_ATTEMPTS`] times.
//!
//! Effects are data ([`Effects`]), not closures: what a change invalidates is declared
//! while staging and applied in one place ([`Sigil::apply_effects`]), after the commit and before
//! the response, so every request that starts after the response sees the change. Each
//! eviction bumps its cache's generation ([`crate::service::kernel::cache`]), so a fill that read the store
//! before the commit cannot put the old value back.
//!
//! A few writes are not a change to a tenant's records and have no entry in its trail:
//! the bulk steps of a tenant's deletion (its trail is destroyed with it), root-key and
//! data-key rewrapping and resealing (the rotation's own entry covers them), re-signing
//! after an issuer rotation, expired-challenge purges, and token last-use bookkeeping. They commit through
//! [`Sigil::mutate_unaudited`] (retried) or [`Sigil::commit_unaudited`] (one batch of a
//! pass, skipped on conflict), here too, with effects applied the same way. A tenant's
//! creation commits its first trail entry in the same transaction
//! ([`Sigil::commit_creation`]).
//!
//! Must never: run an effect for a change that did not commit, or let anything else in
//! `src/service` call the store's commit or the journal (`tests/architecture.rs` searches
//! for both and for the retry bound).

use serde_json::Value;

use crate::codes::ErrorCode;
use crate::ids::AgentId;
use crate::ids::TenantId;
use crate::service::kernel::journal::Event;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::{ServiceError, Sigil};
use crate::store::{StoreError, Txn};

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
    TenantTokens(TenantId),
    /// An agent's wallet (`None`: every agent of the tenant).
    Wallet(TenantId, Option<AgentId>),
    /// Opened private keys of an owner (`None`: every owner of the tenant).
    Signers(TenantId, Option<String>),
    /// The tenant's signed status lists: the next fetch reflects the change.
    StatusLists(TenantId),
    /// The tenant's guardrail settings.
    Guardrails(TenantId),
    /// The tenant's data keys (a rotation started or finished).
    DataKeys(TenantId),
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

    pub fn tenant_tokens(&mut self, tenant: &TenantId) -> &mut Self {
        self.items.push(Effect::TenantTokens(tenant.to_owned()));
        self
    }

    pub fn wallet(&mut self, tenant: &TenantId, agent: &AgentId) -> &mut Self {
        self.items.push(Effect::Wallet(tenant.to_owned(), Some(agent.to_owned())));
        self
    }

    /// The wallet of the agent a stored record names (`CredentialRecord::agent`); every
    /// wallet of the tenant if the stored id does not parse, so an eviction is never lost.
    pub fn wallet_of_record(&mut self, tenant: &TenantId, stored_agent: &str) -> &mut Self {
        match AgentId::parse(stored_agent) {
            Ok(a) => self.wallet(tenant, &a),
            Err(_) => self.all_wallets(tenant),
        }
    }

    pub fn all_wallets(&mut self, tenant: &TenantId) -> &mut Self {
        self.items.push(Effect::Wallet(tenant.to_owned(), None));
        self
    }

    pub fn signers(&mut self, tenant: &TenantId, owner: Option<&str>) -> &mut Self {
        self.items.push(Effect::Signers(tenant.to_owned(), owner.map(str::to_owned)));
        self
    }

    pub fn status_lists(&mut self, tenant: &TenantId) -> &mut Self {
        self.items.push(Effect::StatusLists(tenant.to_owned()));
        self
    }

    pub fn guardrails(&mut self, tenant: &TenantId) -> &mut Self {
        self.items.push(Effect::Guardrails(tenant.to_owned()));
        self
    }

    pub fn data_keys(&mut self, tenant: &TenantId) -> &mut Self {
        self.items.push(Effect::DataKeys(tenant.to_owned()));
        self
    }

    /// Everything cached for `tenant` (its deletion).
    pub fn everything(&mut self, tenant: &TenantId) -> &mut Self {
        self.tenant_tokens(tenant).all_wallets(tenant).signers(tenant, None).status_lists(tenant).guardrails(tenant)
    }
}

/// One staged change: the writes, the audit event recorded with them, what the commit
/// invalidates, and what the caller gets once it committed.
pub(crate) struct Change<T> {
    pub txn: Txn,
    /// `None` for a write outside every trail ([`Attempt::unaudited`]).
    pub event: Option<Event>,
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
        Attempt::Commit(Change { txn, event: Some(event), effects, out })
    }

    /// A change with no trail entry, for [`Sigil::mutate_unaudited`].
    pub fn unaudited(txn: Txn, effects: Effects, out: T) -> Self {
        Attempt::Commit(Change { txn, event: None, effects, out })
    }
}

impl Sigil {
    /// Runs `stage` until its change commits (with its audit entry, in `tenant`'s trail, as
    /// `actor`), then applies its effects. `stage` must be pure apart from reads: it may
    /// run several times.
    ///
    /// `stage` is `|| async move { … }` over references to what it needs, so that each
    /// attempt is a fresh future (and the whole stays `Send` for spawned tasks).
    pub(crate) async fn mutate<T, F>(&self, tenant: &TenantId, actor: &str, mut stage: impl FnMut() -> F) -> Result<T, ServiceError>
    where
        F: std::future::Future<Output = Result<Attempt<T>, ServiceError>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let change = match stage().await? {
                Attempt::Done(out) => return Ok(out),
                Attempt::Commit(change) => change,
            };
            let event = change.event.ok_or_else(|| ServiceError::Internal("an audited change without an event".into()))?;
            if self.try_commit_audited(tenant, actor.to_owned(), change.txn, event).await? {
                self.apply_effects(change.effects);
                return Ok(change.out);
            }
        }
        Err(contended())
    }

    /// [`Sigil::mutate`] for a change outside every tenant's trail (see the module docs).
    pub(crate) async fn mutate_unaudited<T, F>(&self, mut stage: impl FnMut() -> F) -> Result<T, ServiceError>
    where
        F: std::future::Future<Output = Result<Attempt<T>, ServiceError>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let change = match stage().await? {
                Attempt::Done(out) => return Ok(out),
                Attempt::Commit(change) => change,
            };
            if change.event.is_some() {
                return Err(ServiceError::Internal("an audited change staged for an unaudited commit".into()));
            }
            if self.commit_unaudited(change.txn, change.effects).await? {
                return Ok(change.out);
            }
        }
        Err(contended())
    }

    /// One batch of a maintenance pass outside every trail: `Ok(false)` when a precondition
    /// no longer held (the pass skips the batch: its records were rewritten meanwhile by
    /// writers that did their own part), effects applied only after a commit.
    pub(crate) async fn commit_unaudited(&self, txn: Txn, effects: Effects) -> Result<bool, ServiceError> {
        match self.store.commit(txn).await {
            Ok(()) => {
                self.apply_effects(effects);
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Commits a new tenant's records together with the first entry of its trail, sealed
    /// under the data key `tk` the same transaction stores. `Ok(false)`: a precondition
    /// failed (the tenant exists).
    pub(crate) async fn commit_creation(
        &self,
        tenant: &TenantId,
        tk: &TenantKeys,
        actor: &str,
        txn: Txn,
        event: Event,
        effects: Effects,
    ) -> Result<bool, ServiceError> {
        match self.commit_first_entry(tenant, tk, actor.to_owned(), txn, event).await {
            Ok(()) => {
                self.apply_effects(effects);
                Ok(true)
            }
            Err(ServiceError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records an event that comes with no other write (presentations, denials).
    pub(crate) async fn record(&self, tenant: &TenantId, actor: String, event: Event) -> Result<(), ServiceError> {
        let event = &event;
        self.mutate(tenant, &actor, || async move { Ok(Attempt::commit(Txn::new(), event.clone(), Effects::none(), ())) }).await
    }

    /// Records an event whose details are computed from the chain head it extends (an
    /// audit checkpoint signs that head), retried like [`Sigil::mutate`].
    pub(crate) async fn record_over_head(
        &self,
        tenant: &TenantId,
        actor: &str,
        event: Event,
        details: impl Fn(u64, &str) -> Result<Value, ServiceError> + Clone + Send,
    ) -> Result<(), ServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            match self.commit_audited_with(tenant, actor.to_owned(), Txn::new(), event.clone(), details.clone()).await {
                Err(ServiceError::Conflict { .. }) => continue,
                other => return other,
            }
        }
        Err(contended())
    }

    /// Applies the effects of a committed change.
    fn apply_effects(&self, effects: Effects) {
        for e in effects.items {
            match e {
                Effect::Token(id) => self.auth_cache.evict(|c| c.token_id().as_str() == id),
                Effect::TenantTokens(t) => self.auth_cache.evict(|c| match c {
                    crate::service::Caller::Tenant { tenant, .. } | crate::service::Caller::Agent { tenant, .. } => tenant == &t,
                    crate::service::Caller::Operator { .. } => false,
                }),
                Effect::Wallet(t, a) => self.wallets.evict(&t, a.as_ref()),
                Effect::Signers(t, owner) => self.signers.evict(&t, owner.as_deref()),
                Effect::StatusLists(t) => self.status_cache.invalidate(&t),
                Effect::Guardrails(t) => self.guardrails.forget_tenant(&t),
                Effect::DataKeys(t) => self.keys.evict(&t),
            }
        }
    }
}

fn contended() -> ServiceError {
    ServiceError::conflict(ErrorCode::WriteConflict, "the record is being modified concurrently; retry")
}
