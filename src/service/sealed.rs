//! Reading and writing sealed records: one place that turns a record struct into a blob
//! bound to (tenant, kind, id, data key version) and back.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keyring::TenantKeys;
use super::{ServiceError, Sigil};
use crate::crypto::{Aad, DataKey, blob_key_version};
use crate::store::keys;

impl Sigil {
    /// The tenant's data keys, from cache or unwrapped from the store.
    pub(crate) async fn tenant_keys(&self, tenant: &str) -> Result<Arc<TenantKeys>, ServiceError> {
        if let Some(k) = self.keys.cached(tenant) {
            return Ok(k);
        }
        let Some(cur) = self.store.get(&keys::data_key_current(tenant)).await? else {
            return Err(ServiceError::tenant_not_found());
        };
        let current = decode_u32(&cur)?;
        let mut versions = HashMap::new();
        for (k, blob) in self.store.scan(&keys::data_key_prefix(tenant), None, 16).await? {
            let v = k
                .rsplit(|b| *b == b'/')
                .next()
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| ServiceError::Internal("malformed data key entry".into()))?;
            versions.insert(v, self.keys.root().unwrap_data_key(tenant, v, &blob)?);
        }
        if !versions.contains_key(&current) {
            // Data keys already destroyed: the tenant is being crypto-shredded.
            return Err(ServiceError::tenant_not_found());
        }
        Ok(self.keys.insert(tenant, TenantKeys { current, versions }))
    }

    /// Seals `record` under the tenant's current data key.
    pub(crate) fn seal_record<T: Serialize>(
        &self,
        tk: &TenantKeys,
        tenant: &str,
        kind: &str,
        id: &str,
        record: &T,
    ) -> Result<Vec<u8>, ServiceError> {
        let dk = tk.current().ok_or_else(|| ServiceError::Internal("no current data key".into()))?;
        seal_with(dk, tenant, kind, id, record)
    }

    /// Opens a sealed record with whichever of the tenant's data keys sealed it.
    pub(crate) fn open_record<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &str,
        kind: &str,
        id: &str,
        blob: &[u8],
    ) -> Result<T, ServiceError> {
        let v = blob_key_version(blob)?;
        let dk = tk.versions.get(&v).ok_or(crate::crypto::CryptoError)?;
        let pt = dk.open(&Aad { tenant, kind, id }, blob)?;
        serde_json::from_slice(pt.expose()).map_err(|e| ServiceError::Internal(format!("undecodable {kind} record: {e}")))
    }

    /// Loads and opens a record by store key; `None` when absent.
    pub(crate) async fn load_record<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &str,
        kind: &str,
        id: &str,
        key: &[u8],
    ) -> Result<Option<T>, ServiceError> {
        match self.store.get(key).await? {
            Some(blob) => Ok(Some(self.open_record(tk, tenant, kind, id, &blob)?)),
            None => Ok(None),
        }
    }
}

pub(crate) fn seal_with<T: Serialize>(dk: &DataKey, tenant: &str, kind: &str, id: &str, record: &T) -> Result<Vec<u8>, ServiceError> {
    let pt = zeroize::Zeroizing::new(serde_json::to_vec(record).map_err(|e| ServiceError::Internal(format!("cannot encode {kind}: {e}")))?);
    Ok(dk.seal(&Aad { tenant, kind, id }, &pt))
}

pub(crate) fn decode_u32(b: &[u8]) -> Result<u32, ServiceError> {
    let arr: [u8; 4] = b.try_into().map_err(|_| ServiceError::Internal("malformed counter".into()))?;
    Ok(u32::from_be_bytes(arr))
}
