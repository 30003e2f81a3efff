//! DID documents served at `/tenants/{tenant}/did.json` and
//! `/tenants/{tenant}/agents/{agent}/did.json`: every non-compromised key version as a
//! Multikey verification method, only the current one in the verification relationships.

use serde_json::Value;

use super::records::{AgentState, KeyState, KeyVersion};
use super::{ServiceError, Sigil};
use crate::crypto::PublicKey;
use crate::ids::{AgentId, TenantId};
use crate::vc::did::{self, Method};

/// Verification methods for `keys`: compromised keys are omitted; `in_relationship` says
/// which of the others are listed under `authentication`/`assertionMethod`.
fn methods(keys: &[KeyVersion], prefix: &str, in_relationship: impl Fn(&KeyVersion) -> bool) -> Result<Vec<Method>, ServiceError> {
    keys.iter()
        .filter(|k| k.state != KeyState::Compromised)
        .map(|k| {
            let raw: [u8; 32] = hex::decode(&k.public_hex)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| ServiceError::Internal("malformed public key".into()))?;
            Ok(Method { fragment: format!("{prefix}-{}", k.version), public: PublicKey(raw), current: in_relationship(k) })
        })
        .collect()
}

impl Sigil {
    /// The tenant (issuer) DID document.
    pub async fn tenant_did_document(&self, tenant: &TenantId) -> Result<Value, ServiceError> {
        let t = tenant.as_str();
        let rec = self.tenant_record(t).await?;
        // Retired issuer keys stay in assertionMethod: credentials they signed remain valid
        // (their private halves are destroyed, so they sign nothing new).
        let mut all = methods(&rec.issuer_keys, "issuer", |k| k.state != KeyState::Compromised)?;
        // The audit key signs trail checkpoints, so offline auditors can check an export
        // with nothing but this document.
        all.extend(methods(&rec.audit_keys, "audit", |k| k.state == KeyState::Active)?);
        Ok(did::document(&self.tenant_did(t), &all))
    }

    /// An agent's DID document.
    pub async fn agent_did_document(&self, tenant: &TenantId, agent: &AgentId) -> Result<Value, ServiceError> {
        let (rec, _) = self.agent_record(tenant, agent).await?;
        if rec.state == AgentState::Retired {
            return Err(ServiceError::Gone { code: "did_deactivated", detail: "the agent is retired; its DID is deactivated".into() });
        }
        let now = self.clock.now();
        let in_rel = |k: &KeyVersion| k.state == KeyState::Active || self.agent_key_grace(k, now);
        Ok(did::document(&self.agent_did(tenant.as_str(), agent.as_str()), &methods(&rec.keys, "key", in_rel)?))
    }
}
