//! Authentication (bearer token → [`Caller`]) and the authorization rules every use case
//! applies. Tokens are looked up by keyed hash; the stored hash is compared again in
//! constant time; results are cached briefly and evicted on revocation. A token's expiry
//! is checked on every use, cached or not. When a tenant token is read from the store its
//! use is noted in memory ([`TokenUse`]); writing that down is the housekeeping task's job.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

use crate::codes::ErrorCode;
use crate::service::kernel::cache::{GenCache, pause};
use crate::service::kernel::coherence::scope_of;

use crate::crypto::{AccessToken, RootKey, TokenHash};
use crate::ids::{AgentId, TenantId, TokenId};
use crate::service::kernel::mutation::Effects;
use crate::service::model::records::{TokenRecord, TokenRole, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

/// A tenant-scoped role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Auditor,
    /// Decides approval requests (and nothing else); see [`Caller::require_approver`].
    Approver,
}

/// The authenticated principal behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Runs the installation: creates and deletes tenants.
    Operator { token: TokenId },
    /// Administers or audits one tenant.
    Tenant { tenant: TenantId, role: Role, token: TokenId },
    /// One agent, acting only as itself.
    Agent { tenant: TenantId, agent: AgentId, token: TokenId },
}

impl Caller {
    /// The token id, for audit records (never the token).
    pub fn token_id(&self) -> &TokenId {
        match self {
            Caller::Operator { token } | Caller::Tenant { token, .. } | Caller::Agent { token, .. } => token,
        }
    }

    /// Only the operator.
    pub fn require_operator(&self) -> Result<(), ServiceError> {
        match self {
            Caller::Operator { .. } => Ok(()),
            _ => Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "this operation needs the operator token")),
        }
    }

    /// Admin or auditor of `tenant` (reads). Callers from another tenant learn nothing.
    pub fn require_tenant_read(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        match self {
            // An approver sees the approvals it decides, never the rest of the tenant.
            Caller::Tenant { tenant: t, role: Role::Approver, .. } if t == tenant => {
                Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "approver tokens only list and decide approvals"))
            }
            Caller::Tenant { tenant: t, .. } if t == tenant => Ok(()),
            Caller::Agent { tenant: t, .. } if t == tenant => {
                Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "agent tokens cannot use administration routes"))
            }
            Caller::Operator { .. } => {
                Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "the operator token does not grant access to tenant data"))
            }
            _ => Err(ServiceError::tenant_not_found()),
        }
    }

    /// Admin of `tenant` (changes).
    pub fn require_tenant_admin(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        self.require_tenant_read(tenant)?;
        match self {
            Caller::Tenant { role: Role::Admin, .. } => Ok(()),
            _ => Err(ServiceError::forbidden(ErrorCode::ReadOnly, "auditor tokens can only read")),
        }
    }

    /// An approver or admin of `tenant` (approval decisions). An agent, above all the one
    /// that asked, never decides; callers from another tenant learn nothing (404).
    pub fn require_approver(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        match self {
            Caller::Tenant { tenant: t, role: Role::Admin | Role::Approver, .. } if t == tenant => Ok(()),
            Caller::Tenant { tenant: t, .. } | Caller::Agent { tenant: t, .. } if t == tenant => {
                Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "approvals are decided with an approver or admin token"))
            }
            Caller::Operator { .. } => {
                Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "the operator token does not grant access to tenant data"))
            }
            _ => Err(ServiceError::tenant_not_found()),
        }
    }
}

#[derive(Clone)]
struct Cached {
    caller: Caller,
    hash: TokenHash,
    expires: Option<Timestamp>,
}

/// Recently authenticated tokens, by keyed hash ([`GenCache`]: one scope for all tokens,
/// since a lookup does not know its tenant before it reads). Every token change bumps it.
pub struct AuthCache(GenCache<TokenHash, Cached>);

const AUTH_CACHE_MAX: usize = 100_000;
/// Even without a change, a cached token is looked up again after this long.
const AUTH_CACHE_AGE: Duration = Duration::from_secs(300);
const TOKENS: &str = "tokens";

impl Default for AuthCache {
    fn default() -> Self {
        Self(GenCache::new("auth", AUTH_CACHE_MAX, AUTH_CACHE_AGE, |_| TOKENS))
    }
}

impl AuthCache {
    /// Forgets every cached entry matching `pred`, and refuses fills that started before.
    pub(crate) fn evict(&self, pred: impl Fn(&Caller) -> bool) {
        self.0.invalidate(TOKENS, |_, c| pred(&c.caller));
    }
}

/// When tenant tokens were last used. A use is noted here when authentication reads the
/// token from the store, which happens at most once per [`AUTH_CACHE_AGE`] per token while
/// it stays cached: so `last_used` is exact to within that age, and the note costs a
/// presentation nothing on a cache hit and an in-memory insert on a miss. The housekeeping
/// task writes the notes into the token records (`Sigil::record_token_use`), never a
/// request; listing tokens shows notes not yet written.
#[derive(Default)]
pub struct TokenUse(Mutex<HashMap<(TenantId, TokenId), Timestamp>>);

/// Notes held at most between two writes; beyond, new ones are dropped (each token is
/// noted again at its next cache fill).
const TOKEN_USE_MAX: usize = 100_000;

impl TokenUse {
    fn note(&self, tenant: &TenantId, token: &TokenId, at: Timestamp) {
        let Ok(mut m) = self.0.lock() else { return };
        if m.len() >= TOKEN_USE_MAX && !m.contains_key(&(tenant.clone(), token.clone())) {
            return;
        }
        let e = m.entry((tenant.clone(), token.clone())).or_insert(at);
        *e = (*e).max(at);
    }

    /// Every note, leaving none.
    pub(crate) fn take(&self) -> HashMap<(TenantId, TokenId), Timestamp> {
        self.0.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }

    /// Puts back notes that could not be written yet (a newer note for a token wins).
    pub(crate) fn restore(&self, notes: impl IntoIterator<Item = ((TenantId, TokenId), Timestamp)>) {
        for ((t, id), at) in notes {
            self.note(&t, &id, at);
        }
    }

    /// The note for one token not yet written, if any.
    pub(crate) fn pending(&self, tenant: &TenantId, token: &TokenId) -> Option<Timestamp> {
        self.0.lock().ok()?.get(&(tenant.clone(), token.clone())).copied()
    }
}

/// A freshly minted token: the secret for the one response, and what to store.
pub(crate) struct MintedToken {
    pub token: AccessToken,
    pub id: TokenId,
    pub record: TokenRecord,
}

impl Sigil {
    /// Resolves a bearer token to its caller.
    pub async fn authenticate(&self, bearer: &str) -> Result<Caller, ServiceError> {
        let token = AccessToken::from_presented(bearer).ok_or(ServiceError::Unauthenticated)?;
        let hash = self.keys.pepper.hash(&token);
        let now = self.clock.now();
        let usable = |c: &Cached| c.hash.ct_eq(&hash) && c.expires.is_none_or(|e| now < e);
        if let Some(c) = self.auth_cache.0.get(&hash).filter(usable) {
            // One process: its own changes evict the entry before they answer; the hit
            // stands (the hot path: one lookup).
            if !self.store.shared() {
                return Ok(c.caller);
            }
            // Several nodes: the entry (and every other cached entry of its tenant this
            // request relies on) stands only once the tenant's cache generation is
            // confirmed; if it moved, the entries were dropped and the token is read again.
            let scope = scope_of(&c.caller).to_owned();
            pause::point("auth.cached", &scope).await;
            // The entry is looked up again once confirmed: another request's confirmation
            // may have dropped the scope after the lookup above and before this one's
            // (whose read then finds nothing new), and the copy read before that drop must
            // not be used.
            if !self.confirm_scope(&scope).await? {
                if let Some(c) = self.auth_cache.0.get(&hash).filter(usable) {
                    return Ok(c.caller);
                }
            }
        }
        // Taken before anything is read: a token removed while this runs is not cached.
        let ticket = self.auth_cache.0.ticket(TOKENS);
        let Some(index) = self.store.get(&keys::token_hash(&hash.to_hex())).await? else {
            return Err(ServiceError::Unauthenticated);
        };
        let index = String::from_utf8(index).map_err(|_| ServiceError::Internal("bad token index".into()))?;
        let (scope, token_id) = index.split_once('/').ok_or_else(|| ServiceError::Internal("bad token index".into()))?;
        let token_id = TokenId::parse(token_id).map_err(|_| ServiceError::Internal("bad token index".into()))?;
        // Several nodes: the scope is confirmed before anything cached of it (the tenant's
        // data keys, opening the token record) is used: a data-key rotation on another
        // node re-sealed the token under a key this node may not have cached. The read
        // began after this request did, so it also covers the request's other cached
        // entries; if it moved, the fill below is refused (free on one node).
        self.confirm_scope(scope).await?;
        let (rec, tenant) = if scope == "_op" {
            let Some(blob) = self.store.get(&keys::operator_token(token_id.as_str())).await? else {
                return Err(ServiceError::Unauthenticated);
            };
            let pt = self.root_opening(&blob).await?.open_system(kind::OPERATOR_TOKEN, token_id.as_str(), &blob)?;
            let rec: TokenRecord = serde_json::from_slice(pt.expose()).map_err(|_| ServiceError::Internal("bad operator token".into()))?;
            (rec, None)
        } else {
            let tenant = TenantId::parse(scope).map_err(|_| ServiceError::Internal("bad token index".into()))?;
            let tk = match self.tenant_keys(&tenant).await {
                Ok(tk) => tk,
                Err(ServiceError::NotFound { .. }) => return Err(ServiceError::Unauthenticated),
                Err(e) => return Err(e),
            };
            let key = keys::token(tenant.as_str(), token_id.as_str());
            let Some(rec) = self.load_record::<TokenRecord>(&tk, &tenant, kind::TOKEN, token_id.as_str(), &key).await? else {
                return Err(ServiceError::Unauthenticated);
            };
            (rec, Some(tenant))
        };
        let stored = TokenHash(
            hex::decode(&rec.hash_hex)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| ServiceError::Internal("bad token hash".into()))?,
        );
        if !stored.ct_eq(&hash) || rec.expires.is_some_and(|e| now >= e) {
            return Err(ServiceError::Unauthenticated);
        }
        let caller = match (rec.role, tenant) {
            (TokenRole::Operator, None) => Caller::Operator { token: token_id },
            (TokenRole::Admin, Some(tenant)) => Caller::Tenant { tenant, role: Role::Admin, token: token_id },
            (TokenRole::Auditor, Some(tenant)) => Caller::Tenant { tenant, role: Role::Auditor, token: token_id },
            (TokenRole::Approver, Some(tenant)) => Caller::Tenant { tenant, role: Role::Approver, token: token_id },
            (TokenRole::Agent, Some(tenant)) => {
                let agent = rec
                    .agent
                    .as_deref()
                    .and_then(|a| AgentId::parse(a).ok())
                    .ok_or_else(|| ServiceError::Internal("agent token without agent".into()))?;
                Caller::Agent { tenant, agent, token: token_id }
            }
            _ => {
                return Err(ServiceError::Internal("token role does not match its scope".into()));
            }
        };
        let scope = scope_of(&caller);
        if let Caller::Tenant { tenant, .. } | Caller::Agent { tenant, .. } = &caller {
            self.token_use.note(tenant, caller.token_id(), now);
        }
        pause::point("auth.fill", scope).await;
        self.auth_cache.0.fill(ticket, hash, Cached { caller: caller.clone(), hash, expires: rec.expires });
        Ok(caller)
    }

    /// Mints a token of `role` (its record is not yet stored).
    pub(crate) fn mint_token(&self, role: TokenRole, agent: Option<&AgentId>, expires: Option<Timestamp>) -> MintedToken {
        self.mint_token_from(AccessToken::generate(), role, agent, expires)
    }

    pub(crate) fn mint_token_from(
        &self,
        token: AccessToken,
        role: TokenRole,
        agent: Option<&AgentId>,
        expires: Option<Timestamp>,
    ) -> MintedToken {
        let id = TokenId::random();
        let record = TokenRecord {
            v: 1,
            id: id.to_string(),
            role,
            agent: agent.map(|a| a.to_string()),
            created: self.clock.now(),
            expires,
            hash_hex: self.keys.pepper.hash(&token).to_hex(),
            last_used: None,
            principals: Vec::new(),
        };
        MintedToken { token, id, record }
    }

    /// Adds the writes that store a tenant-scoped token to `txn`.
    pub(crate) fn stage_tenant_token(
        &self,
        txn: &mut Txn,
        tk: &crate::service::kernel::keyring::TenantKeys,
        tenant: &TenantId,
        minted: &MintedToken,
    ) -> Result<(), ServiceError> {
        let t = tenant;
        let id = minted.id.as_str();
        let blob = self.seal_record(tk, t, kind::TOKEN, id, &minted.record)?;
        txn.require_absent(keys::token_hash(&minted.record.hash_hex))
            .put(keys::token(t, id), blob)
            .put(keys::token_hash(&minted.record.hash_hex), format!("{t}/{id}"))
            .put(keys::tenant_token_hash(t, &minted.record.hash_hex), Vec::new());
        Ok(())
    }

    /// Adds the writes that store an operator token (sealed under `root`, outside every
    /// tenant; the one [`Sigil::stage_wrap_guard`] answered) to `txn`. The caller holds
    /// `Keyring::wrapping` shared until the commit, so that a root-key rotation re-wraps
    /// the record or runs before it is sealed.
    pub(crate) fn stage_operator_token(&self, txn: &mut Txn, minted: &MintedToken, root: &RootKey) -> Result<(), ServiceError> {
        let id = minted.id.as_str();
        let bytes = serde_json::to_vec(&minted.record).map_err(|e| ServiceError::Internal(format!("operator token record: {e}")))?;
        txn.require_absent(keys::token_hash(&minted.record.hash_hex))
            .require_absent(keys::operator_token(id))
            .put(keys::operator_token(id), root.seal_system(kind::OPERATOR_TOKEN, id, &bytes))
            .put(keys::token_hash(&minted.record.hash_hex), format!("_op/{id}"));
        Ok(())
    }

    /// Adds the writes that delete a tenant-scoped token to `txn`, and the eviction to run
    /// once they are committed.
    pub(crate) fn stage_token_removal(&self, txn: &mut Txn, effects: &mut Effects, tenant: &TenantId, rec: &TokenRecord) {
        let t = tenant;
        txn.delete(keys::token(t, &rec.id)).delete(keys::token_hash(&rec.hash_hex)).delete(keys::tenant_token_hash(t, &rec.hash_hex));
        effects.token(&rec.id);
    }
}
