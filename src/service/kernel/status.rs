//! Bitstring Status Lists per tenant: random, never-reused index allocation, bit flips, and
//! the signed `BitstringStatusListCredential` served publicly.
//!
//! Layout: lists `r1, r2, …` (revocation) and `s1, s2, …` (suspension) of 131,072 entries.
//! Allocation picks a random free index (herd privacy: position says nothing about issue
//! order) and records it forever; a list rolls over to the next when 3/4 full, so random
//! probing stays cheap. Bits live in sealed 1 KiB pages.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::crypto::Aad;
use crate::ids::TenantId;
use crate::service::kernel::cache::GenCache;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::sealed::decode_u32;
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};
use crate::vc::proof::{self, ProofOptions};
use crate::vc::status_list::{self, Bitstring, LIST_SIZE};

const PAGE_BITS: usize = 8192;
const PAGES: u32 = (LIST_SIZE / PAGE_BITS) as u32;
const ROLLOVER: u32 = (LIST_SIZE as u32 / 4) * 3;
const PAGE_KIND: &str = "status-page";
/// How long a served status list credential is valid: outside verifiers must refetch after
/// it, so a revocation or suspension reaches every conformant verifier within this bound.
pub const LIST_VALIDITY: i64 = 300;
/// How long a signed list may be served from memory when nothing changed.
const CACHE_SECS: i64 = 60;

/// Revocation or suspension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Revocation,
    Suspension,
}

impl Purpose {
    fn letter(self) -> char {
        match self {
            Purpose::Revocation => 'r',
            Purpose::Suspension => 's',
        }
    }

    /// The `statusPurpose` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Revocation => "revocation",
            Purpose::Suspension => "suspension",
        }
    }

    /// Parses a list name like `r3` into (purpose, list number).
    pub fn parse_list(name: &str) -> Option<(Purpose, u32)> {
        let (p, n) = name.split_at_checked(1)?;
        let purpose = match p {
            "r" => Purpose::Revocation,
            "s" => Purpose::Suspension,
            _ => return None,
        };
        let n: u32 = n.parse().ok().filter(|n| *n >= 1 && !name.starts_with("r0") && !name.starts_with("s0"))?;
        Some((purpose, n))
    }
}

/// One status bit to set or clear.
#[derive(Debug, Clone, Copy)]
pub struct BitChange {
    pub purpose: Purpose,
    pub list: u32,
    pub index: u32,
    pub value: bool,
}

/// (tenant, purpose letter, list number).
type ListKey = (String, char, u32);

/// Signed lists served recently, with the time they were signed ([`GenCache`], scoped by
/// tenant: a list signed from bits read before a status change is never served after it).
pub struct StatusCache(GenCache<ListKey, (Timestamp, Arc<Value>)>);

impl Default for StatusCache {
    fn default() -> Self {
        let age = std::time::Duration::from_secs(CACHE_SECS.unsigned_abs());
        Self(GenCache::new("status_list", 10_000, age, |k: &ListKey| &k.0))
    }
}

impl StatusCache {
    pub(crate) fn invalidate(&self, tenant: &TenantId) {
        self.0.invalidate(tenant.as_str(), |_, _| true);
    }
}

impl Sigil {
    /// Public URL of a status list.
    pub fn status_list_url(&self, tenant: &TenantId, purpose: Purpose, list: u32) -> String {
        format!("{}/tenants/{tenant}/status/{}{list}", self.settings.public_url.base(), purpose.letter())
    }

    /// Allocates a random, never-used index for `credential` and stages the writes.
    /// Callers hold the tenant's issuance lock until they commit, so allocations in this
    /// process take turns; anything else that moved the counters surfaces as a conflict at
    /// commit, and callers retry.
    pub(crate) async fn stage_status_index(
        &self,
        _issuing: &crate::service::kernel::locks::Issuing<'_>,
        txn: &mut Txn,
        tenant: &TenantId,
        purpose: Purpose,
        credential: &str,
    ) -> Result<(u32, u32), ServiceError> {
        let p = purpose.letter();
        let cur_key = keys::status_current(tenant, p);
        let cur_raw = self.store.get(&cur_key).await?;
        let mut list = match &cur_raw {
            Some(b) => decode_u32(b)?,
            None => 1,
        };
        let mut count_key = keys::status_count(tenant, p, list);
        let mut count_raw = self.store.get(&count_key).await?;
        let mut count = count_raw.as_deref().map(decode_u32).transpose()?.unwrap_or(0);
        if count >= ROLLOVER {
            list += 1;
            match &cur_raw {
                Some(b) => txn.require_equals(cur_key.clone(), b.clone()),
                None => txn.require_absent(cur_key.clone()),
            };
            txn.put(cur_key, list.to_be_bytes().to_vec());
            count_key = keys::status_count(tenant, p, list);
            count_raw = self.store.get(&count_key).await?;
            count = count_raw.as_deref().map(decode_u32).transpose()?.unwrap_or(0);
        }
        let mut index = None;
        for _ in 0..64 {
            let candidate = rand::thread_rng().gen_range(0..LIST_SIZE as u32);
            if self.store.get(&keys::status_index(tenant, p, list, candidate)).await?.is_none() {
                index = Some(candidate);
                break;
            }
        }
        let index = index.ok_or_else(|| ServiceError::conflict(ErrorCode::StatusListFull, "could not allocate a status index; retry"))?;
        let idx_key = keys::status_index(tenant, p, list, index);
        txn.require_absent(idx_key.clone()).put(idx_key, credential.as_bytes().to_vec());
        match count_raw {
            Some(b) => txn.require_equals(count_key.clone(), b),
            None => txn.require_absent(count_key.clone()),
        };
        txn.put(count_key, (count + 1).to_be_bytes().to_vec());
        Ok((list, index))
    }

    async fn load_page(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        purpose: Purpose,
        list: u32,
        page: u32,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), ServiceError> {
        let key = keys::status_page(tenant, purpose.letter(), list, page);
        match self.fresh_blob(tenant, &key).await? {
            Some(blob) => {
                let id = format!("{}/{list}/{page}", purpose.letter());
                let v = crate::crypto::blob_key_version(&blob)?;
                let dk = tk.versions.get(&v).ok_or(crate::crypto::CryptoError)?;
                let bits = dk.open(&Aad { tenant: tenant.as_str(), kind: PAGE_KIND, id: &id }, &blob)?;
                Ok((bits.expose().to_vec(), Some(blob)))
            }
            None => Ok((vec![0u8; PAGE_BITS / 8], None)),
        }
    }

    /// Stages a set of bit changes, one CAS-guarded write per touched page (several bits of
    /// one page in one transaction must not be staged separately, or the last would win).
    pub(crate) async fn stage_status_bits(&self, txn: &mut Txn, tenant: &TenantId, changes: &[BitChange]) -> Result<(), ServiceError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tk = self.tenant_keys(tenant).await?;
        let mut pages: std::collections::BTreeMap<(char, u32, u32), Vec<(usize, bool)>> = std::collections::BTreeMap::new();
        for c in changes {
            let page = c.index / PAGE_BITS as u32;
            pages.entry((c.purpose.letter(), c.list, page)).or_default().push((c.index as usize % PAGE_BITS, c.value));
        }
        let dk = tk.current().ok_or_else(|| ServiceError::Internal("no data key".into()))?;
        for ((letter, list, page), bits_to_set) in pages {
            let purpose = if letter == 'r' { Purpose::Revocation } else { Purpose::Suspension };
            let (bytes, old) = self.load_page(&tk, tenant, purpose, list, page).await?;
            let mut bits = Bitstring::from_bytes(bytes);
            for (i, v) in bits_to_set {
                bits.set(i, v);
            }
            let key = keys::status_page(tenant, letter, list, page);
            match old {
                Some(b) => txn.require_equals(key.clone(), b),
                None => txn.require_absent(key.clone()),
            };
            let id = format!("{letter}/{list}/{page}");
            txn.put(key, dk.seal(&Aad { tenant: tenant.as_str(), kind: PAGE_KIND, id: &id }, bits.as_bytes())?);
        }
        Ok(())
    }

    /// The signed status list credential for `GET /tenants/{tenant}/status/{list}`.
    pub async fn status_list_credential(&self, tenant: &TenantId, name: &str) -> Result<Arc<Value>, ServiceError> {
        let not_found = || ServiceError::not_found(ErrorCode::StatusListNotFound, "no such status list");
        let (purpose, list) = Purpose::parse_list(name).ok_or_else(not_found)?;
        // Public, and read by verifiers of every node: a revocation committed by another
        // node must show at once.
        self.confirm_tenant(tenant).await?;
        let now = self.clock.now();
        let ck = (tenant.as_str().to_owned(), purpose.letter(), list);
        if let Some((at, v)) = self.status_cache.0.get(&ck) {
            if now.duration_since(at) < SignedDuration::from_secs(CACHE_SECS) {
                return Ok(v);
            }
        }
        let ticket = self.status_cache.0.ticket(tenant.as_str());
        let cur = match self.store.get(&keys::status_current(tenant, purpose.letter())).await? {
            Some(b) => decode_u32(&b)?,
            None => 1,
        };
        if list > cur {
            return Err(not_found());
        }
        let tk = self.tenant_keys(tenant).await?;
        let mut all = Vec::with_capacity(LIST_SIZE / 8);
        for page in 0..PAGES {
            all.extend_from_slice(&self.load_page(&tk, tenant, purpose, list, page).await?.0);
        }
        let rec = self.tenant_record(tenant).await?;
        let url = self.status_list_url(tenant, purpose, list);
        let issuer = self.tenant_did(tenant);
        let until = now.checked_add(SignedDuration::from_secs(LIST_VALIDITY)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let doc = status_list::credential(&url, &issuer, purpose.as_str(), &Bitstring::from_bytes(all), &rfc3339(now), &rfc3339(until));
        let signer = self.signer(tenant, "issuer", rec.issuer_current).await?;
        let opts = ProofOptions {
            cryptosuite: Default::default(),
            verification_method: format!("{issuer}#issuer-{}", rec.issuer_current),
            proof_purpose: "assertionMethod",
            created: rfc3339(now),
            expires: None,
            challenge: None,
            domain: None,
        };
        let Value::Object(map) = doc else {
            return Err(ServiceError::Internal("status list is not an object".into()));
        };
        let signed = Arc::new(proof::sign(map, &opts, &signer).map_err(|e| ServiceError::Internal(e.to_string()))?);
        crate::service::kernel::cache::pause::point("status.fill", tenant.as_str()).await;
        self.status_cache.0.fill(ticket, ck, (now, signed.clone()));
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names() {
        assert_eq!(Purpose::parse_list("r1"), Some((Purpose::Revocation, 1)));
        assert_eq!(Purpose::parse_list("s12"), Some((Purpose::Suspension, 12)));
        for bad in ["r0", "r01", "x1", "r", "", "r-1", "r1a"] {
            assert_eq!(Purpose::parse_list(bad), None, "{bad}");
        }
    }
}
