//! The wallet cache of the hot path: an agent's opened signing key and its credentials with
//! their canonical form precomputed. Filled under a generation ticket (see
//! [`crate::service::kernel::cache`]): a fill that read before a commit that changed the
//! wallet is refused, and entries expire after five minutes.
//!
//! Must never: outlive a revocation, suspension or key change (the commit's effects evict).

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use crate::crypto::Signer;
use crate::ids::{AgentId, TenantId};
use crate::policy::Authority;
use crate::service::kernel::cache::GenCache;
use crate::service::model::records::{AgentState, CredentialKind, CredentialRecord};
use crate::service::{ServiceError, Sigil};
use crate::vc::jcs::{self};

/// A credential as held in the cached wallet.
pub(crate) struct Held {
    pub id: String,
    pub vc: Value,
    /// RFC 8785 form of `vc`, computed once per wallet load.
    pub canonical: Vec<u8>,
    pub authority: Option<Authority>,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub revoked: bool,
    pub suspended: bool,
    /// `vc+jwt` form (issuer-signed), made on first use.
    pub jwt: std::sync::OnceLock<String>,
    /// A sub-delegation's ancestors, nearest first (presented with it, and charged with
    /// its spending); empty for a root delegation. An ancestor revoked or suspended, or
    /// held by an agent that is not active, makes this one `revoked` / `suspended` too.
    pub chain: Vec<Arc<Held>>,
}

/// What the hot path needs about one agent, opened once and cached.
pub(crate) struct Wallet {
    pub state: AgentState,
    pub did: String,
    pub key_version: u32,
    pub signer: Arc<Signer>,
    pub identity: Option<Arc<Held>>,
    pub delegations: Vec<Arc<Held>>,
    /// The agents holding an ancestor of one of these delegations: a change to any of
    /// them evicts this wallet too (see [`WalletCache::evict`]).
    pub upstream: Vec<String>,
}

/// Wallets by (tenant, agent) ([`GenCache`], scoped by tenant); evicted, with the tenant's
/// generation bumped, whenever the agent or its credentials change.
pub struct WalletCache(GenCache<(String, String), Arc<Wallet>>);

const WALLET_CACHE_MAX: usize = 100_000;

/// Even without a change, a wallet is loaded again after this long.
const WALLET_CACHE_AGE: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for WalletCache {
    fn default() -> Self {
        Self(GenCache::new("wallet", WALLET_CACHE_MAX, WALLET_CACHE_AGE, |k: &(String, String)| &k.0))
    }
}

impl WalletCache {
    /// Evicts `a`'s wallet (every wallet of the tenant for `None`), and the wallets of the
    /// agents whose sub-delegations descend from one `a` holds: a parent's revocation,
    /// suspension or agent state reaches every descendant's next request.
    pub(crate) fn evict(&self, t: &TenantId, a: Option<&AgentId>) {
        self.0.invalidate(t.as_str(), |(_, aa), w| a.is_none_or(|x| x.as_str() == aa || w.upstream.iter().any(|u| u == x.as_str())));
    }
}

fn held(r: CredentialRecord) -> Result<Held, ServiceError> {
    let canonical = jcs::canonicalize(&r.vc).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Held {
        id: r.id,
        vc: r.vc,
        canonical,
        authority: r.authority,
        valid_from: r.valid_from,
        valid_until: r.valid_until,
        revoked: r.revoked,
        suspended: r.suspended,
        jwt: std::sync::OnceLock::new(),
        chain: Vec::new(),
    })
}

impl Sigil {
    /// The cached wallet of an agent, loading and opening it on a miss.
    pub(crate) async fn wallet(&self, tenant: &TenantId, agent: &AgentId) -> Result<Arc<Wallet>, ServiceError> {
        let (t, a) = (tenant.as_str(), agent.as_str());
        let key = (t.to_owned(), a.to_owned());
        if let Some(w) = self.wallets.0.get(&key) {
            return Ok(w);
        }
        // Taken before anything is read: a change committed meanwhile refuses this fill.
        let ticket = self.wallets.0.ticket(t);
        let (rec, _) = self.agent_record(tenant, agent).await?;
        let signer = self.signer(tenant, a, rec.current_key).await?;
        let mut identity = None;
        let mut delegations = Vec::new();
        let mut upstream = Vec::new();
        for r in self.wallet_records(tenant, &rec).await? {
            match r.kind {
                CredentialKind::Identity if !r.revoked => identity = Some(Arc::new(held(r)?)),
                CredentialKind::Delegation => {
                    let ancestors = self.ancestors(tenant, &r).await?;
                    let mut h = held(r)?;
                    for a in ancestors {
                        h.revoked |= a.record.revoked;
                        h.suspended |= a.record.suspended || !a.agent_active;
                        if let Some(agent) = &a.record.agent {
                            upstream.push(agent.clone());
                        }
                        h.chain.push(Arc::new(held(a.record)?));
                    }
                    delegations.push(Arc::new(h))
                }
                _ => {}
            }
        }
        let w = Arc::new(Wallet {
            state: rec.state,
            did: self.agent_did(tenant, agent),
            key_version: rec.current_key,
            signer,
            identity,
            delegations,
            upstream,
        });
        crate::service::kernel::cache::pause::point("wallet.fill", t).await;
        self.wallets.0.fill(ticket, key, w.clone());
        Ok(w)
    }
}
