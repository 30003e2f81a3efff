//! Upgrades of stores an older release wrote, run once at start-up before anything is
//! served (`startup::upgrade`, driven by the key-check file's format).
//!
//! Format 1 → 2: every tenant gets a record manifest (`kernel::manifest`), built from the
//! records stored at that moment: the one time Sigil trusts stored bytes without a
//! manifest naming them. And the seals its data keys made before were never counted, so
//! each tenant's current data key is marked as due for a roll-over (housekeeping makes a
//! new, counted key current within one `--rotation-interval`).
//!
//! Must never: run while requests are served (a record written between the scan and the
//! commit would be left out), or rebuild a manifest that exists.

use crate::codes::ErrorCode;
use crate::ids::TenantId;
use crate::service::kernel::mutation::Effects;
use crate::service::kernel::sealed::decode_u32;
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

impl Sigil {
    /// Several nodes: gives every tenant without a cache generation (made by a release
    /// before tenant creation wrote one) its first, at start: an absent generation is never
    /// trusted for a tenant (`kernel::coherence`), so such a tenant's cached entries would
    /// be dropped at every request. Two scans; a write per such tenant, conditional on the
    /// tenant existing. Returns how many were written.
    pub async fn start_missing_cache_generations(&self) -> Result<usize, ServiceError> {
        if !self.store.shared() {
            return Ok(0);
        }
        let have: std::collections::HashSet<Vec<u8>> = self
            .store
            .scan(keys::CACHE_GENERATION_PREFIX, None, usize::MAX)
            .await?
            .into_iter()
            .map(|(k, _)| k.get(keys::CACHE_GENERATION_PREFIX.len()..).unwrap_or_default().to_vec())
            .collect();
        let mut n = 0;
        for (k, _) in self.store.scan(keys::TENANT_INDEX_PREFIX, None, usize::MAX).await? {
            let id = k.get(keys::TENANT_INDEX_PREFIX.len()..).unwrap_or_default();
            if have.contains(id) {
                continue;
            }
            let Some(t) = std::str::from_utf8(id).ok().and_then(|s| TenantId::parse(s).ok()) else { continue };
            if self.start_cache_generation(&t).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Builds the record manifest of every tenant that has none, and marks its current
    /// data key for a roll-over. Returns how many tenants it upgraded.
    pub async fn build_missing_manifests(&self) -> Result<usize, ServiceError> {
        let mut n = 0;
        for (k, _) in self.store.scan(keys::TENANT_INDEX_PREFIX, None, usize::MAX).await? {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else { continue };
            let t = TenantId::parse(t).map_err(|e| ServiceError::Internal(e.to_string()))?;
            // The root is sealed under the current data key: one seal.
            self.ensure_seals(&t, 1, false).await?;
            let Some(mut txn) = self.manifest_of_stored(&t).await? else { continue };
            self.mark_uncounted_key(&t, &mut txn).await?;
            if !self.commit_unaudited(txn, Effects::none()).await? {
                return Err(ServiceError::conflict(ErrorCode::WriteConflict, "the store changed while it was upgraded"));
            }
            n += 1;
        }
        let mut txn = Txn::new();
        txn.put(keys::meta::FORMAT.to_vec(), 2u32.to_be_bytes().to_vec());
        self.commit_unaudited(txn, Effects::none()).await?;
        Ok(n)
    }

    /// Seals made under the current data key before seals were counted are unknown: its
    /// count starts at the roll-over threshold, so housekeeping replaces it with a counted
    /// key. (Reservations made since this start, the manifest root's among them, are on
    /// top of it.)
    async fn mark_uncounted_key(&self, t: &TenantId, txn: &mut Txn) -> Result<(), ServiceError> {
        let cur = self.store.get(&keys::data_key_current(t)).await?.ok_or_else(ServiceError::tenant_not_found)?;
        let cur = decode_u32(&cur)?;
        let key = keys::seal_count(t, cur);
        let reserved = self.seals_reserved(t, cur).await?;
        let stored = self.store.get(&key).await?;
        match stored {
            Some(b) => txn.require_equals(key.clone(), b),
            None => txn.require_absent(key.clone()),
        };
        txn.put(key, reserved.saturating_add(self.settings.seal_limits.rotate_after).to_be_bytes().to_vec());
        Ok(())
    }
}
