//! DID documents served at `/tenants/{tenant}/did.json` and
//! `/tenants/{tenant}/agents/{agent}/did.json`: every non-compromised key version as a
//! Multikey verification method, only the current one in the verification relationships.
//! A tenant's audit keys are listed under `auditCheckpoint` alone (Sigil's context defines
//! it), never under `assertionMethod` or `authentication`: they sign trail checkpoints,
//! nothing a verifier of credentials or presentations would accept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::codes::ErrorCode;
use crate::crypto::PublicKey;
use crate::ids::{AgentId, TenantId};
use crate::service::model::records::{AgentRecord, AgentState, KeyState, KeyVersion};
use crate::service::{ServiceError, Sigil};
use crate::vc::did::{self, Method, Purpose};

/// Verification methods for `keys`: compromised keys are omitted; `in_relationship` says
/// which of the others are listed under the relationships of `purpose`.
fn methods(
    keys: &[KeyVersion],
    prefix: &str,
    purpose: Purpose,
    in_relationship: impl Fn(&KeyVersion) -> bool,
) -> Result<Vec<Method>, ServiceError> {
    keys.iter()
        .filter(|k| k.state != KeyState::Compromised)
        .map(|k| {
            let raw: [u8; 32] = hex::decode(&k.public_hex)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| ServiceError::Internal("malformed public key".into()))?;
            Ok(Method { fragment: format!("{prefix}-{}", k.version), public: PublicKey(raw), current: in_relationship(k), purpose })
        })
        .collect()
}

/// What was built from a sealed record (a tenant's DID document, an opened agent record),
/// by the record's sealed bytes. Every lookup still reads the record; only an unchanged
/// record skips opening it and building again, so no write path needs to remember to
/// invalidate anything. (A verification resolves the issuer's document for each credential
/// and each status list, up to six times, and the holder's DID once.)
pub struct BuiltFromRecord<V> {
    map: Mutex<HashMap<String, BuiltFrom<V>>>,
}

/// The sealed record bytes and what was built from them.
type BuiltFrom<V> = (Vec<u8>, Arc<V>);

impl<V> Default for BuiltFromRecord<V> {
    fn default() -> Self {
        Self { map: Mutex::new(HashMap::new()) }
    }
}

/// Entries per cache; a full cache starts over (a miss costs one open).
const BUILT_FROM_RECORD_MAX: usize = 10_000;

impl<V> BuiltFromRecord<V> {
    fn get(&self, id: &str, blob: &[u8]) -> Option<Arc<V>> {
        let m = self.map.lock().ok()?;
        m.get(id).filter(|(b, _)| b.as_slice() == blob).map(|(_, d)| d.clone())
    }

    fn put(&self, id: &str, blob: Vec<u8>, built: Arc<V>) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= BUILT_FROM_RECORD_MAX {
                m.clear();
            }
            m.insert(id.to_owned(), (blob, built));
        }
    }
}

/// Tenant DID documents (see [`BuiltFromRecord`]).
pub type TenantDidDocs = BuiltFromRecord<Value>;

/// Opened agent records for DID resolution (see [`BuiltFromRecord`]). The document itself is
/// built per request: which keys are in its relationships depends on the time (rotation
/// grace). The record holds public keys and metadata only; private keys are sealed apart.
pub type AgentDidRecords = BuiltFromRecord<AgentRecord>;

impl Sigil {
    /// The tenant (issuer) DID document.
    pub async fn tenant_did_document(&self, tenant: &TenantId) -> Result<Value, ServiceError> {
        self.tenant_did_document_shared(tenant).await.map(|d| (*d).clone())
    }

    /// [`Self::tenant_did_document`] without copying the cached document.
    pub async fn tenant_did_document_shared(&self, tenant: &TenantId) -> Result<Arc<Value>, ServiceError> {
        let t = tenant;
        // Also the path of DID resolution (`resolver.rs`), which has no other confirmation:
        // cached keys and documents of the tenant are confirmed first (several nodes;
        // shared by concurrent requests, free on one node).
        self.confirm_tenant(t).await?;
        // Fails once the tenant is being crypto-shredded, cached document or not.
        let tk = self.tenant_keys(t).await?;
        let blob = self.fresh_blob(t, &crate::store::keys::tenant_record(t)).await?.ok_or_else(ServiceError::tenant_not_found)?;
        if let Some(doc) = self.tenant_did_docs.get(t.as_str(), &blob) {
            return Ok(doc);
        }
        let rec: crate::service::model::records::TenantRecord =
            self.open_unchecked(&tk, t, crate::service::model::records::kind::TENANT, t.as_str(), &blob)?;
        // Retired issuer keys stay in assertionMethod: credentials they signed remain valid
        // (their private halves are destroyed, so they sign nothing new).
        let mut all = methods(&rec.issuer_keys, "issuer", Purpose::Sign, |k| k.state != KeyState::Compromised)?;
        // The audit key signs trail checkpoints, so offline auditors can check an export
        // with nothing but this document; only under `auditCheckpoint`, so it can sign no
        // credential or presentation. A retired audit key stays there, so the checkpoints
        // it signed still verify (its private half signs nothing new).
        all.extend(methods(&rec.audit_keys, "audit", Purpose::AuditCheckpoint, |k| k.state != KeyState::Compromised)?);
        let context = crate::vc::credential::context_url(self.settings.public_url.base());
        let doc = Arc::new(did::document(&self.tenant_did(t), &all, Some(&context)));
        self.tenant_did_docs.put(t.as_str(), blob, doc.clone());
        Ok(doc)
    }

    /// An agent's DID document.
    pub async fn agent_did_document(&self, tenant: &TenantId, agent: &AgentId) -> Result<Value, ServiceError> {
        let (t, a) = (tenant.as_str(), agent.as_str());
        self.confirm_tenant(tenant).await?;
        let tk = self.tenant_keys(tenant).await?;
        let blob = self.fresh_blob(tenant, &crate::store::keys::agent(t, a)).await?.ok_or_else(ServiceError::agent_not_found)?;
        let cache_id = format!("{t}/{a}");
        let rec = match self.agent_did_records.get(&cache_id, &blob) {
            Some(rec) => rec,
            None => {
                let rec: Arc<AgentRecord> =
                    Arc::new(self.open_unchecked(&tk, tenant, crate::service::model::records::kind::AGENT, a, &blob)?);
                self.agent_did_records.put(&cache_id, blob, rec.clone());
                rec
            }
        };
        if rec.state == AgentState::Retired {
            return Err(ServiceError::Gone {
                code: ErrorCode::DidDeactivated,
                detail: "the agent is retired; its DID is deactivated".into(),
            });
        }
        let now = self.clock.now();
        let in_rel = |k: &KeyVersion| k.state == KeyState::Active || self.agent_key_grace(k, now);
        Ok(did::document(&self.agent_did(tenant, agent), &methods(&rec.keys, "key", Purpose::Sign, in_rel)?, None))
    }
}
