//! Signing keys: a new version staged for rotation ([`stage_new_key`]), and opened keys.
//! Private keys are opened from their sealed records on first use and kept in a bounded
//! cache (dropping a `Signer` zeroizes it); rotation and retirement evict.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jiff::Timestamp;

use super::keyring::TenantKeys;
use super::records::{KeyState, KeyVersion, kind};
use super::{ServiceError, Sigil};
use crate::crypto::{Aad, Signer};
use crate::store::{Txn, keys};

const MAX_CACHED: usize = 200_000;

/// Cache of opened signers by (tenant, owner, version); owner is an agent id or `issuer`.
#[derive(Default)]
pub struct SignerCache {
    map: RwLock<HashMap<(String, String, u32), Arc<Signer>>>,
}

impl SignerCache {
    fn get(&self, k: &(String, String, u32)) -> Option<Arc<Signer>> {
        self.map.read().ok()?.get(k).cloned()
    }

    fn put(&self, k: (String, String, u32), s: Arc<Signer>) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= MAX_CACHED {
                m.clear();
            }
            m.insert(k, s);
        }
    }

    /// Forgets every cached key of `tenant` (and `owner` when given).
    pub(crate) fn evict(&self, tenant: &str, owner: Option<&str>) {
        if let Ok(mut m) = self.map.write() {
            m.retain(|(t, o, _), _| !(t == tenant && owner.is_none_or(|w| w == o)));
        }
    }
}

/// Stages a new key version for `owner` (an agent id or `issuer`) of `tenant`: generates it,
/// retires the active versions in `versions` (as of `now`), adds the new one, and replaces
/// the sealed private key of version `old` with the new one's in `txn`. Returns the new
/// version. Agent and issuer rotation share it, so both retire and seal keys the same way.
pub(crate) fn stage_new_key(
    tk: &TenantKeys,
    txn: &mut Txn,
    tenant: &str,
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
    txn.put(keys::private_key(tenant, owner, new), dk.seal_signer(&Aad { tenant, kind: kind::PRIVATE_KEY, id: &id }, &signer))
        .delete(keys::private_key(tenant, owner, old));
    Ok(new)
}

impl Sigil {
    /// The signer for `owner`'s key `version` in `tenant`.
    pub(crate) async fn signer(&self, tenant: &str, owner: &str, version: u32) -> Result<Arc<Signer>, ServiceError> {
        let k = (tenant.to_owned(), owner.to_owned(), version);
        if let Some(s) = self.signers.get(&k) {
            return Ok(s);
        }
        let tk = self.tenant_keys(tenant).await?;
        let blob = self
            .store
            .get(&keys::private_key(tenant, owner, version))
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("private key {owner}/{version} is missing")))?;
        let v = crate::crypto::blob_key_version(&blob)?;
        let dk = tk.versions.get(&v).ok_or(crate::crypto::CryptoError)?;
        let id = format!("{owner}/{version}");
        let signer = Arc::new(dk.open_signer(&Aad { tenant, kind: kind::PRIVATE_KEY, id: &id }, &blob)?);
        self.signers.put(k, signer.clone());
        Ok(signer)
    }
}
