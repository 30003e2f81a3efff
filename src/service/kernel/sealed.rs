//! Reading and writing sealed records: one place that turns a record struct into a blob
//! bound to (tenant, kind, id, data key version) and back.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::{Aad, DataKey, blob_key_version};
use crate::ids::TenantId;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::{ServiceError, Sigil};
use crate::store::keys;

impl Sigil {
    /// The tenant's data keys, from cache or unwrapped from the store.
    pub(crate) async fn tenant_keys(&self, tenant: &TenantId) -> Result<Arc<TenantKeys>, ServiceError> {
        if let Some(k) = self.keys.cached(tenant) {
            return Ok(k);
        }
        let generation = self.keys.generation();
        let Some(cur) = self.store.get(&keys::data_key_current(tenant)).await? else {
            return Err(ServiceError::tenant_not_found());
        };
        let current = decode_u32(&cur)?;
        let mut versions = HashMap::new();
        let mut reserving = None;
        // Versions rolled over by use stay until a full rotation (one per 2^30 seals).
        for (k, blob) in self.store.scan(&keys::data_key_prefix(tenant), None, 4096).await? {
            let v = k
                .rsplit(|b| *b == b'/')
                .next()
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| ServiceError::Internal("malformed data key entry".into()))?;
            let (dk, lock) = self.keys.metered(tenant, self.root_opening(&blob).await?.unwrap_data_key(tenant.as_str(), v, &blob)?);
            if v == current {
                reserving = Some(lock);
            }
            versions.insert(v, dk);
        }
        let Some(reserving) = reserving else {
            // Data keys already destroyed: the tenant is being crypto-shredded.
            return Err(ServiceError::tenant_not_found());
        };
        Ok(self.keys.insert(tenant, TenantKeys::new(current, versions, reserving), generation))
    }

    /// The tenant's data keys, holding the version that sealed `blob`: a cached set that
    /// lacks it (another node rotated the data key since it was loaded) is dropped and
    /// loaded once more; still lacking it, `503`.
    pub(crate) async fn tenant_keys_opening(&self, tenant: &TenantId, blob: &[u8]) -> Result<Arc<TenantKeys>, ServiceError> {
        let v = blob_key_version(blob)?;
        let tk = self.tenant_keys(tenant).await?;
        if tk.versions.contains_key(&v) {
            return Ok(tk);
        }
        self.keys.evict(tenant);
        let tk = self.tenant_keys(tenant).await?;
        if tk.versions.contains_key(&v) {
            return Ok(tk);
        }
        Err(self.missing_data_key(tenant, v))
    }

    /// Seals `record` under the tenant's current data key.
    pub(crate) fn seal_record<T: Serialize>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        record: &T,
    ) -> Result<Vec<u8>, ServiceError> {
        let dk = tk.current().ok_or_else(|| ServiceError::Internal("no current data key".into()))?;
        seal_with(dk, tenant, kind, id, record)
    }

    /// Opens a sealed record of a kind no manifest covers (an audit entry, whose hash
    /// chain covers it). Every other kind opens through `manifest::open_fresh` or
    /// `manifest::load_record`, which check that the bytes are the record's current ones:
    /// asked for one here, this refuses.
    pub(crate) fn open_record<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        blob: &[u8],
    ) -> Result<T, ServiceError> {
        if crate::service::model::records::kind::in_manifest(kind) {
            return Err(ServiceError::Internal(format!("a {kind} record was opened without its manifest check")));
        }
        self.open_unchecked(tk, tenant, kind, id, blob)
    }

    /// [`Self::open_unchecked`], loading the tenant's keys once more if `tk` lacks the
    /// version that sealed `blob` ([`Self::tenant_keys_opening`]).
    pub(in crate::service::kernel) async fn open_reloading<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        blob: &[u8],
    ) -> Result<T, ServiceError> {
        if tk.versions.contains_key(&blob_key_version(blob)?) {
            return self.open_unchecked(tk, tenant, kind, id, blob);
        }
        let fresh = self.tenant_keys_opening(tenant, blob).await?;
        self.open_unchecked(&fresh, tenant, kind, id, blob)
    }

    /// Opens a sealed record with whichever of the tenant's data keys sealed it, without
    /// asking the manifest whether these are its current bytes (the manifest's callers do).
    pub(in crate::service::kernel) fn open_unchecked<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        blob: &[u8],
    ) -> Result<T, ServiceError> {
        let v = blob_key_version(blob)?;
        let Some(dk) = tk.versions.get(&v) else {
            return Err(self.missing_data_key(tenant, v));
        };
        let pt = dk.open(&Aad { tenant: tenant.as_str(), kind, id }, blob)?;
        let json = decompress(pt.expose()).map_err(|e| ServiceError::Internal(format!("undecodable {kind} record: {e}")))?;
        serde_json::from_slice(json.as_ref().map_or(pt.expose(), |j| j.as_slice()))
            .map_err(|e| ServiceError::Internal(format!("undecodable {kind} record: {e}")))
    }
}

impl Sigil {
    /// A record sealed under a data-key version the key set in hand lacks: another node
    /// rotated the tenant's data key after this one cached its keys (a stale set). Drops
    /// the cached set, so the next request loads the current one, and answers `503`
    /// (retry), never an internal error.
    pub(in crate::service::kernel) fn missing_data_key(&self, tenant: &TenantId, version: u32) -> ServiceError {
        tracing::warn!(tenant = %tenant, version, "a record sealed under a data key this node has not loaded; reloading the tenant's keys");
        self.keys.evict(tenant);
        ServiceError::Unavailable("the tenant's data key changed on another node; retry".into())
    }
}

pub(crate) fn seal_with<T: Serialize>(dk: &DataKey, tenant: &TenantId, kind: &str, id: &str, record: &T) -> Result<Vec<u8>, ServiceError> {
    let pt = zeroize::Zeroizing::new(serde_json::to_vec(record).map_err(|e| ServiceError::Internal(format!("cannot encode {kind}: {e}")))?);
    // Audit entries are written by every presentation: resetting a deflate state costs
    // more there (~8% of a request, measured) than the ~30% of a small entry it saves.
    let compressed = if kind == UNCOMPRESSED_KIND { None } else { compress(&pt) };
    Ok(dk.seal(&Aad { tenant: tenant.as_str(), kind, id }, compressed.as_ref().map_or(pt.as_slice(), |c| c.as_slice()))?)
}

/// Marks a compressed record plaintext. JSON records always start with `{`, so records
/// written before compression existed (or too small to compress) still open as they are.
const DEFLATED: u8 = 0;
/// The record kind sealed without compression (see `seal_with`).
const UNCOMPRESSED_KIND: &str = crate::service::model::records::kind::AUDIT;
/// Below this a record is stored as plain JSON: deflate would not pay for its own header.
const COMPRESS_FROM: usize = 200;

/// Records are mostly JSON with repeated DIDs, URLs and contexts: deflating before sealing
/// roughly halves what a wallet and its audit trail occupy at rest. Only record JSON goes
/// through here, never key material (private keys and data keys are sealed directly), so
/// compressed lengths cannot reveal a secret mixed with caller-chosen text. Level 1, and a
/// reused deflate state per thread: wallets are sealed on every change to them.
fn compress(json: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    if json.len() < COMPRESS_FROM {
        return None;
    }
    thread_local! {
        // A deflate state is ~300 KB to set up; one per thread, reset per record, keeps
        // that allocation and its zeroing off the hot path.
        static DEFLATE: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), false));
    }
    DEFLATE.with(|d| {
        let mut d = d.try_borrow_mut().ok()?;
        d.reset();
        // Deflate never grows data by more than a few bytes per 16 KiB block.
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(json.len() + json.len() / 64 + 64));
        out.push(DEFLATED);
        match d.compress_vec(json, &mut out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) if out.len() < json.len() => Some(out),
            _ => None,
        }
    })
}

/// Limit on an inflated record: far above any record Sigil writes (status pages are not
/// records), so a corrupted or hostile blob cannot inflate without bound.
const MAX_RECORD: u64 = 16 * 1024 * 1024;

fn decompress(pt: &[u8]) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, std::io::Error> {
    use std::io::Read;
    match pt.split_first() {
        Some((&DEFLATED, body)) => {
            let mut out = zeroize::Zeroizing::new(Vec::with_capacity(body.len() * 3));
            flate2::read::DeflateDecoder::new(body).take(MAX_RECORD).read_to_end(&mut out)?;
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

pub(crate) fn decode_u32(b: &[u8]) -> Result<u32, ServiceError> {
    let arr: [u8; 4] = b.try_into().map_err(|_| ServiceError::Internal("malformed counter".into()))?;
    Ok(u32::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_records_are_deflated_small_ones_are_not_and_both_open() {
        let dk = DataKey::generate(1);
        dk.grant(3);
        let aad = Aad { tenant: "acme", kind: "credential", id: "c1" };
        let big = serde_json::json!({"vc": "did:web:example.com:tenants:acme ".repeat(40)});
        let small = serde_json::json!({"v": 1});
        for (record, deflated) in [(&big, true), (&small, false)] {
            let blob = seal_with(&dk, &crate::ids::TenantId::parse("acme").unwrap(), "credential", "c1", record).unwrap();
            let pt = dk.open(&aad, &blob).unwrap();
            assert_eq!(pt.expose().first() == Some(&DEFLATED), deflated);
            let json = decompress(pt.expose()).unwrap();
            let back: serde_json::Value = serde_json::from_slice(json.as_ref().map_or(pt.expose(), |j| j.as_slice())).unwrap();
            assert_eq!(&back, record);
        }
        // Deflated at least by half: the repeated DID compresses.
        let blob = seal_with(&dk, &crate::ids::TenantId::parse("acme").unwrap(), "credential", "c1", &big).unwrap();
        assert!(blob.len() * 2 < serde_json::to_vec(&big).unwrap().len());
    }

    #[test]
    fn a_record_sealed_as_plain_json_still_opens() {
        assert!(decompress(br#"{"v":1}"#).unwrap().is_none());
    }

    #[test]
    fn inflation_is_bounded() {
        // 64 MiB of zeros deflates to ~64 KiB; opening stops at the record limit.
        let mut e = flate2::write::DeflateEncoder::new(vec![DEFLATED], flate2::Compression::best());
        std::io::Write::write_all(&mut e, &vec![0u8; 64 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        assert_eq!(decompress(&bomb).unwrap().unwrap().len() as u64, MAX_RECORD);
    }
}
