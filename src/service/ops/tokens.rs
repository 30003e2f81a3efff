//! Tokens: tenant admin and auditor tokens (created with an optional expiry, deleted), the
//! list of every token of a tenant (agent tokens included) with its creation, expiry and
//! last use, writing down when tokens were last used (the housekeeping task's part of
//! `kernel::auth::TokenUse`), and the operator token's rotation and revocation (over the
//! API, or by `sigil operator-token` on a stopped data directory).
//!
//! Operator tokens belong to no tenant, so their changes are in no tenant's trail: they are
//! logged (token ids only), and written through `mutate_unaudited`.
//!
//! Must never: return a token or its hash once the creating response is gone, write on a
//! request path what the housekeeping task writes (a presentation never waits for
//! last-use bookkeeping), or leave an earlier operator token working after a rotation's
//! response.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::json;

use crate::codes::ErrorCode;
use crate::crypto::AccessToken;
use crate::ids::{AgentId, TenantId, TokenId};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{TokenRecord, TokenRole, kind};
use crate::service::model::validate::token_expiry;
use crate::service::{Caller, Page, ServiceError, Sigil, page_limit};
use crate::store::{Txn, keys};

/// A newly created tenant token, shown once.
#[derive(Debug)]
pub struct TokenCreated {
    pub id: TokenId,
    pub role: TokenRole,
    pub token: AccessToken,
    pub expires: Option<Timestamp>,
}

/// A token as listed: never the token, never its hash.
#[derive(Debug, Clone)]
pub struct TokenView {
    pub id: TokenId,
    pub role: TokenRole,
    /// The agent an agent token belongs to.
    pub agent: Option<AgentId>,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    /// Exact to within the auth cache's age (5 minutes); `None` if never used since it
    /// was created (or since last use began to be recorded).
    pub last_used: Option<Timestamp>,
    /// An approver token's principals (empty: all, or not an approver).
    pub principals: Vec<String>,
}

/// A new operator token, shown once.
#[derive(Debug)]
pub struct OperatorTokenIssued {
    pub id: TokenId,
    pub token: AccessToken,
    /// How many earlier operator tokens it replaced (all of them).
    pub revoked: usize,
}

/// Token records rewritten per transaction when last uses are written down.
const USE_BATCH: usize = 500;

impl Sigil {
    /// Creates an admin or auditor token for a tenant, optionally expiring `expires_in`
    /// seconds from now (60 s to 1 year).
    pub async fn create_tenant_token(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        role: TokenRole,
        expires_in: Option<u64>,
    ) -> Result<TokenCreated, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        if !matches!(role, TokenRole::Admin | TokenRole::Auditor) {
            return Err(ServiceError::invalid("role must be admin or auditor"));
        }
        let expires = token_expiry(self.clock.now(), expires_in)?;
        let tk = self.tenant_keys(tenant).await?;
        let minted = self.mint_token(role, None, expires);
        let (tk, minted_ref) = (&tk, &minted);
        self.mutate(tenant, &actor(caller), || async move {
            let mut txn = Txn::new();
            self.stage_tenant_token(&mut txn, tk, tenant, minted_ref)?;
            let event = Event::new("token.created", json!({"token_id": minted_ref.id.to_string(), "role": role, "expires": expires}));
            Ok(Attempt::commit(txn, event, Effects::none(), ()))
        })
        .await?;
        Ok(TokenCreated { id: minted.id, role, token: minted.token, expires })
    }

    /// Deletes an admin or auditor token. Agent tokens are managed through their agent.
    pub async fn delete_tenant_token(&self, caller: &Caller, tenant: &TenantId, token: &TokenId) -> Result<(), ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        if caller.token_id() == token {
            return Err(ServiceError::conflict(ErrorCode::TokenInUse, "a token cannot delete itself"));
        }
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let key = keys::token(t, token.as_str());
            let rec: Option<TokenRecord> = self.load_record(&tk, t, kind::TOKEN, token.as_str(), &key).await?;
            let Some(rec) = rec.filter(|r| matches!(r.role, TokenRole::Admin | TokenRole::Auditor | TokenRole::Approver)) else {
                return Err(ServiceError::not_found(ErrorCode::TokenNotFound, "no such token"));
            };
            let mut txn = Txn::new();
            let mut effects = Effects::none();
            self.stage_token_removal(&mut txn, &mut effects, tenant, &rec);
            let event = Event::new("token.deleted", json!({"token_id": rec.id, "role": rec.role}));
            Ok(Attempt::commit(txn, event, effects, ()))
        })
        .await
    }

    /// Lists every token of the tenant (admin, auditor and agent tokens; expired ones too,
    /// until they are deleted), in token id order.
    pub async fn list_tenant_tokens(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<TokenView>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let tk = self.tenant_keys(t).await?;
        let limit = page_limit(limit);
        let prefix = keys::token(t, "");
        let after = match cursor {
            Some(c) => Some(keys::token(t, TokenId::parse(c).map_err(|_| ServiceError::invalid("cursor is not a token id"))?.as_str())),
            None => None,
        };
        let rows = self.store.scan(&prefix, after.as_deref(), limit + 1).await?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        for (k, blob) in rows.into_iter().take(limit) {
            let id = k.strip_prefix(prefix.as_slice()).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or_default();
            let rec: TokenRecord = self.open_fresh(&tk, t, kind::TOKEN, id, &k, &blob).await?;
            let id = TokenId::parse(id).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let agent = rec.agent.as_deref().map(AgentId::parse).transpose().map_err(|e| ServiceError::Internal(e.to_string()))?;
            let last_used = rec.last_used.max(self.token_use.pending(t, &id));
            items.push(TokenView {
                id,
                role: rec.role,
                agent,
                created: rec.created,
                expires: rec.expires,
                last_used,
                principals: rec.principals,
            });
        }
        let next_cursor = if more { items.last().map(|i| i.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Housekeeping (and a clean stop): writes the noted token uses into the token
    /// records. A record changed meanwhile (a rotation, a deletion) fails its batch's
    /// precondition; those notes are kept for the next run, which finds a deleted token gone.
    /// Returns how many records were written.
    pub async fn record_token_use(&self) -> Result<usize, ServiceError> {
        let mut by_tenant: BTreeMap<TenantId, Vec<(TokenId, Timestamp)>> = BTreeMap::new();
        for ((t, id), at) in self.token_use.take() {
            by_tenant.entry(t).or_default().push((id, at));
        }
        let mut written = 0;
        for (t, notes) in by_tenant {
            // Seals for every note of the tenant, and its manifest root per batch.
            let need = notes.len() as u64 + notes.len().div_ceil(USE_BATCH) as u64;
            let tk = match self.ensure_seals(&t, need, false).await {
                Ok(tk) => tk,
                Err(ServiceError::NotFound { .. }) => continue,
                Err(e) => {
                    self.token_use.restore(notes.into_iter().map(|(id, at)| ((t.clone(), id), at)));
                    return Err(e);
                }
            };
            for batch in notes.chunks(USE_BATCH) {
                let mut txn = Txn::new();
                let mut n = 0;
                for (id, at) in batch {
                    let key = keys::token(&t, id.as_str());
                    let Some(blob) = self.store.get(&key).await? else { continue };
                    let mut rec: TokenRecord = match self.open_fresh(&tk, &t, kind::TOKEN, id.as_str(), &key, &blob).await {
                        Ok(rec) => rec,
                        // Changed since it was read: this use is not noted; the next one is.
                        Err(ServiceError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    if rec.last_used.is_some_and(|u| u >= *at) {
                        continue;
                    }
                    rec.last_used = Some(*at);
                    txn.require_equals(key.clone(), blob).put(key, self.seal_record(&tk, &t, kind::TOKEN, id.as_str(), &rec)?);
                    n += 1;
                }
                if n == 0 {
                    continue;
                }
                // Bookkeeping, in no trail: auditing it would add an entry per token every
                // few minutes. Nothing cached depends on it.
                if self.commit_unaudited(txn, Effects::none()).await? {
                    written += n;
                } else {
                    self.token_use.restore(batch.iter().map(|(id, at)| ((t.clone(), id.clone()), *at)));
                }
            }
        }
        Ok(written)
    }
}

impl Sigil {
    /// Replaces every operator token with a new one, shown once: an earlier operator token
    /// fails for every request that starts after this returns. The generated token file in
    /// the data directory, if still there, held a token revoked now and is removed.
    pub async fn rotate_operator_token(&self, caller: &Caller) -> Result<OperatorTokenIssued, ServiceError> {
        caller.require_operator()?;
        // Sealed under the root key: a root-key rotation must re-wrap it or come first.
        let wrapping = self.keys.wrapping.read().await;
        let minted = self.mint_token(TokenRole::Operator, None, None);
        let minted_ref = &minted;
        let revoked = self
            .mutate_unaudited(|| async move {
                let mut txn = Txn::new();
                let mut effects = Effects::none();
                let revoked = self.stage_operator_tokens_removal(&mut txn, &mut effects).await?;
                let root = self.stage_wrap_guard(&mut txn).await?;
                self.stage_operator_token(&mut txn, minted_ref, &root)?;
                Ok(Attempt::unaudited(txn, effects, revoked))
            })
            .await?;
        drop(wrapping);
        tracing::warn!(token_id = %minted.id, revoked = ?revoked, by = %caller.token_id(), "operator token rotated: every earlier operator token is revoked");
        self.remove_generated_operator_token().await;
        Ok(OperatorTokenIssued { id: minted.id, token: minted.token, revoked: revoked.len() })
    }

    /// Revokes every operator token, the caller's included: nothing can create, list or
    /// delete tenants, back up or rotate the root key over the API until
    /// `sigil operator-token rotate` issues a new one on the stopped data directory.
    /// Returns how many were revoked.
    pub async fn revoke_operator_tokens(&self, caller: &Caller) -> Result<usize, ServiceError> {
        caller.require_operator()?;
        let revoked = self
            .mutate_unaudited(|| async move {
                let mut txn = Txn::new();
                let mut effects = Effects::none();
                let revoked = self.stage_operator_tokens_removal(&mut txn, &mut effects).await?;
                Ok(Attempt::unaudited(txn, effects, revoked))
            })
            .await?;
        tracing::warn!(revoked = ?revoked, by = %caller.token_id(), "every operator token revoked; `sigil operator-token rotate` on the stopped data directory issues a new one");
        self.remove_generated_operator_token().await;
        Ok(revoked.len())
    }

    /// Stages the deletion of every operator token (record and hash index, each only as
    /// read) and the eviction of each from the auth cache; returns their ids.
    async fn stage_operator_tokens_removal(&self, txn: &mut Txn, effects: &mut Effects) -> Result<Vec<String>, ServiceError> {
        let mut ids = Vec::new();
        for (k, blob) in self.store.scan(keys::OPERATOR_TOKEN_PREFIX, None, usize::MAX).await? {
            let id = String::from_utf8_lossy(k.get(keys::OPERATOR_TOKEN_PREFIX.len()..).unwrap_or_default()).into_owned();
            let pt = self.root_opening(&blob).await?.open_system(kind::OPERATOR_TOKEN, &id, &blob)?;
            let rec: TokenRecord =
                serde_json::from_slice(pt.expose()).map_err(|e| ServiceError::Internal(format!("undecodable operator token: {e}")))?;
            txn.require_equals(k.clone(), blob).delete(k).delete(keys::token_hash(&rec.hash_hex));
            effects.token(&id);
            ids.push(id);
        }
        Ok(ids)
    }

    /// Removes `DATA/operator.token` once every operator token is revoked (what it holds is
    /// dead; leaving it would only mislead, and keep the start-up warning about it).
    async fn remove_generated_operator_token(&self) {
        let Some(data) = self.settings.data_dir.clone() else { return };
        match crate::datadir::remove_generated_operator_token(data).await {
            Ok(true) => tracing::warn!(
                file = crate::datadir::OPERATOR_TOKEN_FILE,
                "removed the generated operator token file: its token is revoked"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove the generated operator token file (its token is revoked)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::service::testing;

    #[tokio::test]
    async fn an_expired_token_is_refused_also_when_cached() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = s.authenticate(&t.admin_token.reveal_once()).await.unwrap();
        assert!(s.create_tenant_token(&admin, &t.id, TokenRole::Auditor, Some(59)).await.is_err());
        assert!(s.create_tenant_token(&admin, &t.id, TokenRole::Auditor, Some(31_536_001)).await.is_err());
        let created = s.create_tenant_token(&admin, &t.id, TokenRole::Auditor, Some(120)).await.unwrap();
        assert_eq!(created.expires, Some("2026-01-01T00:02:00Z".parse().unwrap()));
        let token = created.token.reveal_once();
        // The first use fills the auth cache; the second is a cache hit.
        assert!(matches!(s.authenticate(&token).await.unwrap(), Caller::Tenant { .. }));
        clock.advance_secs(119);
        assert!(s.authenticate(&token).await.is_ok());
        clock.advance_secs(1);
        assert!(matches!(s.authenticate(&token).await, Err(ServiceError::Unauthenticated)), "expired, and cached");
        s.auth_cache.evict(|_| true);
        assert!(matches!(s.authenticate(&token).await, Err(ServiceError::Unauthenticated)), "expired, from the store");
    }

    #[tokio::test]
    async fn last_use_is_written_off_the_request_path() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin_token = t.admin_token.reveal_once();
        let admin = s.authenticate(&admin_token).await.unwrap();
        let aud = s.create_tenant_token(&admin, &t.id, TokenRole::Auditor, None).await.unwrap();
        let stored = |id: TokenId| {
            let s = s.clone();
            async move {
                let tk = s.tenant_keys(&TenantId::parse("acme").unwrap()).await.unwrap();
                let key = keys::token("acme", id.as_str());
                s.load_record::<TokenRecord>(&tk, &TenantId::parse("acme").unwrap(), kind::TOKEN, id.as_str(), &key).await.unwrap().unwrap()
            }
        };
        clock.advance_secs(60);
        s.authenticate(&aud.token.reveal_once()).await.unwrap();
        // Noted, shown in the list, not yet written.
        assert_eq!(stored(aud.id.clone()).await.last_used, None);
        let page = s.list_tenant_tokens(&admin, &t.id, None, None).await.unwrap();
        let listed = page.items.iter().find(|i| i.id == aud.id).unwrap();
        assert_eq!(listed.last_used, Some("2026-01-01T00:01:00Z".parse().unwrap()));
        assert_eq!(listed.role, TokenRole::Auditor);
        assert_eq!(page.items.len(), 2, "the admin and the auditor token");
        // The housekeeping task writes it down.
        assert_eq!(s.record_token_use().await.unwrap(), 2, "both tokens were read from the store once");
        assert_eq!(stored(aud.id.clone()).await.last_used, Some("2026-01-01T00:01:00Z".parse().unwrap()));
        assert_eq!(s.record_token_use().await.unwrap(), 0, "nothing new");
        // A note for a token deleted meanwhile is dropped.
        let gone = s.create_tenant_token(&admin, &t.id, TokenRole::Auditor, None).await.unwrap();
        s.authenticate(&gone.token.reveal_once()).await.unwrap();
        s.delete_tenant_token(&admin, &t.id, &gone.id).await.unwrap();
        assert_eq!(s.record_token_use().await.unwrap(), 0);
        assert!(s.token_use.take().is_empty());
    }

    #[tokio::test]
    async fn operator_token_rotation_revokes_every_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        std::fs::write(dir.path().join(crate::datadir::OPERATOR_TOKEN_FILE), "sgl_old").unwrap();
        assert!(matches!(
            s.rotate_operator_token(&testing::admin(&TenantId::parse("acme").unwrap())).await,
            Err(ServiceError::Forbidden { .. })
        ));
        let first = s.rotate_operator_token(&testing::operator()).await.unwrap();
        assert_eq!(first.revoked, 0);
        assert!(!dir.path().join(crate::datadir::OPERATOR_TOKEN_FILE).exists(), "the generated file held a revoked token");
        let first = first.token.reveal_once();
        let op = s.authenticate(&first).await.unwrap();
        assert!(matches!(op, Caller::Operator { .. }));
        // Cached now; the rotation must evict it.
        let second = s.rotate_operator_token(&op).await.unwrap();
        assert_eq!(second.revoked, 1);
        assert!(matches!(s.authenticate(&first).await, Err(ServiceError::Unauthenticated)));
        let second = second.token.reveal_once();
        let op = s.authenticate(&second).await.unwrap();
        assert_eq!(s.store.scan(keys::OPERATOR_TOKEN_PREFIX, None, 10).await.unwrap().len(), 1);
        assert_eq!(s.revoke_operator_tokens(&op).await.unwrap(), 1);
        assert!(matches!(s.authenticate(&second).await, Err(ServiceError::Unauthenticated)));
        assert!(s.store.scan(keys::OPERATOR_TOKEN_PREFIX, None, 10).await.unwrap().is_empty());
        assert!(s.store.scan(b"th/", None, 10).await.unwrap().is_empty(), "no hash index row left");
    }
}
