//! Typed loads of sealed records: a tenant, an agent, a credential, an agent's wallet.
//! Every loaded record is opened with the tenant's data key and its AAD (tenant, kind, id),
//! once its manifest says these are its current bytes (`manifest.rs`).
//!
//! Must never: cache (callers own their caches and generations), or write.

use crate::codes::ErrorCode;
use crate::ids::{AgentId, CredentialId, TenantId};
use crate::service::model::records::{AgentRecord, CredentialRecord, TenantRecord, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::keys;

impl Sigil {
    pub(crate) async fn tenant_record(&self, t: &TenantId) -> Result<TenantRecord, ServiceError> {
        let tk = self.tenant_keys(t).await?;
        self.load_record(&tk, t, kind::TENANT, t.as_str(), &keys::tenant_record(t)).await?.ok_or_else(ServiceError::tenant_not_found)
    }

    /// Reads an agent record.
    pub(crate) async fn agent_record(&self, tenant: &TenantId, agent: &AgentId) -> Result<(AgentRecord, Vec<u8>), ServiceError> {
        let t = tenant;
        let tk = self.tenant_keys(t).await?;
        let key = keys::agent(t, agent.as_str());
        let blob = self.fresh_blob(t, &key).await?.ok_or_else(ServiceError::agent_not_found)?;
        let rec = self.open_unchecked(&tk, t, kind::AGENT, agent.as_str(), &blob)?;
        Ok((rec, blob))
    }

    /// Loads a credential record of a tenant.
    pub(crate) async fn credential_record(&self, tenant: &TenantId, id: &str) -> Result<(CredentialRecord, Vec<u8>), ServiceError> {
        let nf = || ServiceError::not_found(ErrorCode::CredentialNotFound, "no such credential");
        let id = CredentialId::parse(id).map_err(|_| nf())?;
        let tk = self.tenant_keys(tenant).await?;
        let blob = self.fresh_blob(tenant, &keys::credential(tenant, id.as_str())).await?.ok_or_else(nf)?;
        Ok((self.open_unchecked(&tk, tenant, kind::CREDENTIAL, id.as_str(), &blob)?, blob))
    }

    pub(crate) async fn wallet_records(&self, tenant: &TenantId, rec: &AgentRecord) -> Result<Vec<CredentialRecord>, ServiceError> {
        let mut out = Vec::with_capacity(rec.credential_ids.len());
        for id in &rec.credential_ids {
            out.push(self.credential_record(tenant, id).await?.0);
        }
        Ok(out)
    }
}
