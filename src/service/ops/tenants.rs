//! Tenants: creation (data key, issuer key, first admin token), listing, and deletion by
//! crypto-shredding (the data keys are destroyed first, durably, so that nothing of the
//! tenant can be opened again even if the bulk removal is interrupted). Tenant tokens are
//! in `tokens`.

use jiff::Timestamp;

use crate::codes::ErrorCode;
use crate::crypto::{Aad, AccessToken, DataKey, Signer};
use crate::ids::{TenantId, TokenId};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::mutation::Effects;
use crate::service::model::records::{KeyState, KeyVersion, TenantRecord, TokenRole, kind};
use crate::service::model::validate::validate_text;
use crate::service::{Caller, Page, ServiceError, Sigil, page_limit};
use crate::store::{Txn, keys};

/// A tenant as listed.
#[derive(Debug, Clone)]
pub struct TenantSummary {
    pub id: TenantId,
    pub did: String,
    pub name: String,
    pub created: Timestamp,
}

/// The result of creating a tenant: the admin token is shown once.
#[derive(Debug)]
pub struct TenantCreated {
    pub id: TenantId,
    pub did: String,
    pub admin_token: AccessToken,
    pub admin_token_id: TokenId,
}

impl Sigil {
    /// Creates a tenant with its first data key, issuer key and admin token.
    pub async fn create_tenant(&self, caller: &Caller, id: Option<&str>, name: &str) -> Result<TenantCreated, ServiceError> {
        caller.require_operator()?;
        validate_text("name", name, 200)?;
        let id = match id {
            Some(s) => TenantId::parse(s).map_err(|e| ServiceError::invalid(e.to_string()))?,
            None => TenantId::random(),
        };
        let t = &id;
        let now = self.clock.now();
        let dk = DataKey::generate(1);
        let issuer = Signer::generate();
        let audit = Signer::generate();
        let record = TenantRecord {
            v: 1,
            id: t.to_string(),
            name: name.to_owned(),
            created: now,
            issuer_keys: vec![KeyVersion {
                version: 1,
                public_hex: hex::encode(issuer.public().0),
                state: KeyState::Active,
                created: now,
                retired_at: None,
            }],
            issuer_current: 1,
            key_policy: None,
            cryptosuite: None,
            audit_keys: vec![KeyVersion {
                version: 1,
                public_hex: hex::encode(audit.public().0),
                state: KeyState::Active,
                created: now,
                retired_at: None,
            }],
            sensitive_context_keys: Vec::new(),
            guardrails: None,
            approvals: None,
        };
        let (dk, reserving) = self.keys.metered(t, dk);
        let tk = TenantKeys::new(1, [(1, dk)].into_iter().collect(), reserving);
        let dk = tk.current().ok_or_else(|| ServiceError::Internal("no data key".into()))?;
        // Held until the wrap is committed, so that a root rotation re-wraps it (Keyring::wrapping).
        let wrapping = self.keys.wrapping.read().await;
        // Several nodes: a root rotation another node stages between the wrap guard and
        // the commit fails the commit; the wrap is made again under the root it moved to.
        let mut attempts = 0;
        let (minted, generation) = loop {
            attempts += 1;
            let mut txn = Txn::new();
            let root = self.stage_wrap_guard(&mut txn).await?;
            self.stage_first_seals(t, &tk, &mut txn);
            txn.require_absent(keys::tenant_index(t))
                .require_absent(keys::tenant_tombstone(t))
                .put(keys::tenant_index(t), Vec::new())
                .put(keys::data_key(t, 1), root.wrap_data_key(t.as_str(), dk))
                .put(keys::data_key_current(t), 1u32.to_be_bytes().to_vec())
                .put(keys::tenant_record(t), self.seal_record(&tk, t, kind::TENANT, t.as_str(), &record)?)
                .put(
                    keys::private_key(t, "issuer", 1),
                    dk.seal_signer(&Aad { tenant: t.as_str(), kind: kind::PRIVATE_KEY, id: "issuer/1" }, &issuer)?,
                )
                .put(
                    keys::private_key(t, "audit", 1),
                    dk.seal_signer(&Aad { tenant: t.as_str(), kind: kind::PRIVATE_KEY, id: "audit/1" }, &audit)?,
                );
            let minted = self.mint_token(TokenRole::Admin, None, None);
            self.stage_tenant_token(&mut txn, &tk, &id, &minted)?;
            let generation = self.keys.generation();
            // Several nodes: a new tenant starts with a cache generation (its deletion
            // removes it, and an absent one is never trusted; `confirm_scope`).
            let mut fresh = Effects::none();
            fresh.tenant_tokens(t);
            // The first entry of the tenant's trail is written in the same transaction, sealed
            // under the data key it stores: a tenant never exists unaudited.
            let event = Event::new("tenant.created", serde_json::json!({"admin_token_id": minted.id.to_string()}));
            if self.commit_creation(t, &tk, &actor(caller), txn, event, fresh).await? {
                break (minted, generation);
            }
            let taken =
                self.store.get(&keys::tenant_index(t)).await?.is_some() || self.store.get(&keys::tenant_tombstone(t)).await?.is_some();
            if taken || !self.store.shared() || attempts >= 4 {
                return Err(ServiceError::conflict(ErrorCode::TenantExists, "a tenant with this id already exists"));
            }
        };
        drop(wrapping);
        self.keys.insert(t, tk, generation);
        Ok(TenantCreated { did: self.tenant_did(t), id, admin_token: minted.token, admin_token_id: minted.id })
    }

    /// Lists tenants (operator only).
    pub async fn list_tenants(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<TenantSummary>, ServiceError> {
        caller.require_operator()?;
        let limit = page_limit(limit);
        let after = cursor.map(keys::tenant_index);
        let rows = self.store.scan(keys::TENANT_INDEX_PREFIX, after.as_deref(), limit + 1).await?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        for (k, _) in rows.into_iter().take(limit) {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else {
                continue;
            };
            let id = TenantId::parse(t).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let rec = self.tenant_record(&id).await?;
            items.push(TenantSummary { did: self.tenant_did(&id), id, name: rec.name, created: rec.created });
        }
        let next_cursor = if more { items.last().map(|i| i.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Deletes a tenant: destroys its data keys first (crypto-shredding), then its records.
    pub async fn delete_tenant(&self, caller: &Caller, tenant: &TenantId) -> Result<(), ServiceError> {
        caller.require_operator()?;
        let t = tenant;
        if self.store.get(&keys::tenant_index(t)).await?.is_none() {
            return Err(ServiceError::tenant_not_found());
        }
        // Step 1 (durable before anything else): tombstone + every data key version gone.
        let mut txn = Txn::new();
        txn.require_absent(keys::tenant_tombstone(t))
            .put(keys::tenant_tombstone(t), Vec::new())
            .delete(keys::tenant_index(t))
            // A rotation marker outside the tenant's prefix: left behind, it made every
            // data-key rotation of a tenant re-created with this id answer 409.
            .delete(keys::data_key_rotation(t));
        for (k, _) in self.store.scan(&keys::data_key_prefix(t), None, 4096).await? {
            txn.delete(k);
        }
        // Unaudited: the tenant's trail is destroyed with it (the operator's request is
        // logged). Every cache of the tenant and its data keys are dropped after the commit.
        let mut gone = Effects::none();
        gone.everything(t).data_keys(t);
        if !self.commit_unaudited(txn, gone).await? {
            return Err(ServiceError::conflict(ErrorCode::WriteConflict, "the tenant is being deleted concurrently"));
        }
        self.audit_heads.forget(t).await;
        self.keys.forget_meters(t, None);
        self.manifests.forget(t);
        crate::faults::crash_point("tenant_delete.shredded");
        // Step 2: remove the now-unreadable records (resumed at start-up if interrupted).
        self.purge_tenant_records(t).await
    }

    /// Removes every record of a crypto-shredded tenant, in batches.
    pub(crate) async fn purge_tenant_records(&self, t: &TenantId) -> Result<(), ServiceError> {
        loop {
            let hashes = self.store.scan(&keys::tenant_token_hash_prefix(t), None, 500).await?;
            if hashes.is_empty() {
                break;
            }
            let mut txn = Txn::new();
            for (k, _) in hashes {
                if let Some(h) = k.rsplit(|b| *b == b'/').next().and_then(|h| std::str::from_utf8(h).ok()) {
                    txn.delete(keys::token_hash(h));
                }
                txn.delete(k);
            }
            self.commit_unaudited(txn, Effects::none()).await?;
        }
        crate::faults::crash_point("tenant_delete.purging");
        loop {
            let rows = self.store.scan(&keys::tenant_prefix(t), None, 1000).await?;
            if rows.is_empty() {
                break;
            }
            let mut txn = Txn::new();
            for (k, _) in rows {
                txn.delete(k);
            }
            self.commit_unaudited(txn, Effects::none()).await?;
        }
        // Last, the rows outside the tenant's prefix that name it: its cache generation (an
        // absent one is never trusted, `confirm_scope`) and its agents' denial counts.
        let mut txn = Txn::new();
        for (k, _) in self.store.scan(&keys::denials_prefix(t), None, usize::MAX).await? {
            txn.delete(k);
        }
        txn.delete(keys::cache_generation(t)).delete(keys::data_key_rotation(t)).delete(keys::tenant_tombstone(t));
        self.commit_unaudited(txn, Effects::none()).await?;
        Ok(())
    }

    /// Finishes deletions interrupted by a crash (called at start-up).
    pub async fn resume_tenant_deletions(&self) -> Result<usize, ServiceError> {
        let rows = self.store.scan(keys::TENANT_TOMBSTONE_PREFIX, None, 10_000).await?;
        let n = rows.len();
        for (k, _) in rows {
            if let Some(t) = k.strip_prefix(keys::TENANT_TOMBSTONE_PREFIX).and_then(|s| TenantId::parse(std::str::from_utf8(s).ok()?).ok())
            {
                self.purge_tenant_records(&t).await?;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::agents::NewAgent;
    use crate::service::testing;

    #[tokio::test]
    async fn deletion_shreds_keys_first_and_leaves_nothing_openable() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let op = testing::operator();
        let t = s.create_tenant(&op, Some("doomed"), "Doomed").await.unwrap();
        let a = s.create_agent(&testing::admin(&t.id), &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        // A copy of every sealed record, as an attacker with an old backup would have.
        let copied = s.store.scan(b"t/doomed/", None, 10_000).await.unwrap();
        assert!(copied.len() >= 4);
        s.delete_tenant(&op, &t.id).await.unwrap();
        assert!(s.store.scan(b"t/doomed/", None, 10).await.unwrap().is_empty());
        assert!(s.store.scan(&keys::data_key_prefix("doomed"), None, 10).await.unwrap().is_empty());
        assert!(s.store.scan(keys::TENANT_TOMBSTONE_PREFIX, None, 10).await.unwrap().is_empty());
        assert!(s.authenticate(&t.admin_token.reveal_once()).await.is_err());
        assert!(s.authenticate(&a.access_token.reveal_once()).await.is_err());
        // Every wrapped data key is gone and none was ever inside the tenant's prefix, so the
        // copied records cannot be opened by anyone holding the root key.
        assert!(matches!(s.tenant_keys(&crate::ids::TenantId::parse("doomed").unwrap()).await, Err(ServiceError::NotFound { .. })));
        assert!(copied.iter().all(|(k, _)| !k.starts_with(b"dk/")));
        let restored_dk = s.store.get(&keys::data_key("doomed", 1)).await.unwrap();
        assert!(restored_dk.is_none());
        // The id can be reused by a new tenant with fresh keys.
        s.create_tenant(&op, Some("doomed"), "Reborn").await.unwrap();
    }

    #[tokio::test]
    async fn interrupted_deletion_is_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let op = testing::operator();
        s.create_tenant(&op, Some("half"), "Half").await.unwrap();
        // Simulate a crash after step 1 (keys destroyed, tombstone written).
        let mut txn = Txn::new();
        txn.put(keys::tenant_tombstone("half"), Vec::new()).delete(keys::tenant_index("half")).delete(keys::data_key("half", 1));
        s.store.commit(txn).await.unwrap();
        s.keys.evict(&crate::ids::TenantId::parse("half").unwrap());
        assert!(!s.store.scan(b"t/half/", None, 10).await.unwrap().is_empty());
        assert_eq!(s.resume_tenant_deletions().await.unwrap(), 1);
        assert!(s.store.scan(b"t/half/", None, 10).await.unwrap().is_empty());
    }
}
