//! Signing keys: a new version staged for rotation ([`stage_new_key`]), and opened keys.
//! Private keys are opened from their sealed records on first use and kept in a bounded
//! cache (dropping a `Signer` zeroizes it); rotation and retirement evict.

use std::sync::Arc;

use jiff::Timestamp;

use crate::crypto::{Aad, Signer};
use crate::ids::TenantId;
use crate::service::kernel::cache::GenCache;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::model::records::{KeyState, KeyVersion, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

const MAX_CACHED: usize = 200_000;

/// Opened signers by (tenant, owner, version); owner is an agent id or `issuer`
/// ([`GenCache`], scoped by tenant: a key destroyed by a committed change is never put
/// back by a load that read it before).
pub struct SignerCache(GenCache<(String, String, u32), Arc<Signer>>);

/// Even unchanged, an opened key is dropped (zeroized) and reopened after this long.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

impl Default for SignerCache {
    fn default() -> Self {
        Self(GenCache::new("signer", MAX_CACHED, MAX_AGE, |k: &(String, String, u32)| &k.0))
    }
}

impl SignerCache {
    /// Forgets every cached key of `tenant` (and `owner` when given).
    pub(crate) fn evict(&self, tenant: &TenantId, owner: Option<&str>) {
        self.0.invalidate(tenant.as_str(), |(_, o, _), _| owner.is_none_or(|w| w == o));
    }
}

/// Stages a new key version for `owner` (an agent id or `issuer`) of `tenant`: generates it,
/// retires the active versions in `versions` (as of `now`), adds the new one, and replaces
/// the sealed private key of version `old` with the new one's in `txn`. Returns the new
/// version. Agent and issuer rotation share it, so both retire and seal keys the same way.
pub(crate) fn stage_new_key(
    tk: &TenantKeys,
    txn: &mut Txn,
    tenant: &TenantId,
    owner: &str,
    versions: &mut Vec<KeyVersion>,
    old: u32,
    now: Timestamp,
) -> Result<u32, ServiceError> {
    // Looked up first, so that a failure leaves `versions` as it was.
    let dk = tk.current().ok_or_else(|| ServiceError::Internal("no data key".into()))?;
    let new = versions.iter().map(|k| k.version).max().unwrap_or(0) + 1;
    let signer = Signer::generate();
    for k in versions.iter_mut().filter(|k| k.state == KeyState::Active) {
        k.state = KeyState::Retired;
        k.retired_at = Some(now);
    }
    versions.push(KeyVersion {
        version: new,
        public_hex: hex::encode(signer.public().0),
        state: KeyState::Active,
        created: now,
        retired_at: None,
    });
    let id = format!("{owner}/{new}");
    txn.put(
        keys::private_key(tenant, owner, new),
        dk.seal_signer(&Aad { tenant: tenant.as_str(), kind: kind::PRIVATE_KEY, id: &id }, &signer)?,
    )
    .delete(keys::private_key(tenant, owner, old));
    Ok(new)
}

impl Sigil {
    /// The signer for `owner`'s key `version` in `tenant`.
    pub(crate) async fn signer(&self, tenant: &TenantId, owner: &str, version: u32) -> Result<Arc<Signer>, ServiceError> {
        let k = (tenant.as_str().to_owned(), owner.to_owned(), version);
        if let Some(s) = self.signers.0.get(&k) {
            return Ok(s);
        }
        let ticket = self.signers.0.ticket(tenant.as_str());
        let tk = self.tenant_keys(tenant).await?;
        let blob = self
            .fresh_blob(tenant, &keys::private_key(tenant, owner, version))
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("private key {owner}/{version} is missing")))?;
        let v = crate::crypto::blob_key_version(&blob)?;
        let dk = tk.versions.get(&v).ok_or(crate::crypto::CryptoError)?;
        let id = format!("{owner}/{version}");
        let signer = Arc::new(dk.open_signer(&Aad { tenant: tenant.as_str(), kind: kind::PRIVATE_KEY, id: &id }, &blob)?);
        self.signers.0.fill(ticket, k, signer.clone());
        Ok(signer)
    }
}
