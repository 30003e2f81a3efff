//! DID documents served at `/tenants/{tenant}/did.json` and
//! `/tenants/{tenant}/agents/{agent}/did.json`: every non-compromised key version as a
//! Multikey verification method, only the current one in the verification relationships.

use serde_json::Value;

use super::records::{KeyState, KeyVersion};
use super::{ServiceError, Sigil};
use crate::crypto::PublicKey;
use crate::ids::{AgentId, TenantId};
use crate::vc::did::{self, Method};

fn methods(keys: &[KeyVersion], prefix: &str) -> Result<Vec<Method>, ServiceError> {
    keys.iter()
        .filter(|k| k.state != KeyState::Compromised)
        .map(|k| {
            let raw: [u8; 32] = hex::decode(&k.public_hex)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| ServiceError::Internal("malformed public key".into()))?;
            Ok(Method { fragment: format!("{prefix}-{}", k.version), public: PublicKey(raw), current: k.state == KeyState::Active })
        })
        .collect()
}

impl Sigil {
    /// The tenant (issuer) DID document.
    pub async fn tenant_did_document(&self, tenant: &TenantId) -> Result<Value, ServiceError> {
        let t = tenant.as_str();
        let rec = self.tenant_record(t).await?;
        Ok(did::document(&self.tenant_did(t), &methods(&rec.issuer_keys, "issuer")?))
    }

    /// An agent's DID document.
    pub async fn agent_did_document(&self, tenant: &TenantId, agent: &AgentId) -> Result<Value, ServiceError> {
        let (rec, _) = self.agent_record(tenant, agent).await?;
        Ok(did::document(&self.agent_did(tenant.as_str(), agent.as_str()), &methods(&rec.keys, "key")?))
    }
}
