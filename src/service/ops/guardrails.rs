//! Guardrails against runaway or compromised agents: per-agent rate limits (per-tenant
//! settings, default sustained 50/s with bursts of 100), throttling of repeated
//! authentication failures per client address, and automatic suspension of an agent after
//! too many denials in a window (default 20 in 5 minutes). Counters live in memory: they
//! protect one process; limits are per node when several run.

use crate::ids::TenantId;
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::{Caller, ServiceError, Sigil};

pub use crate::service::model::settings::GuardrailSettings;

impl Sigil {
    /// Sets a tenant's guardrails.
    pub async fn set_guardrails(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        settings: GuardrailSettings,
    ) -> Result<GuardrailSettings, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        settings.validate()?;
        let t = tenant;
        let settings = &settings;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let k = crate::store::keys::tenant_record(t);
            let blob = self.store.get(&k).await?.ok_or_else(ServiceError::tenant_not_found)?;
            let mut rec: crate::service::model::records::TenantRecord =
                self.open_fresh(&tk, t, crate::service::model::records::kind::TENANT, t.as_str(), &k, &blob).await?;
            rec.guardrails = Some(settings.clone());
            let mut txn = crate::store::Txn::new();
            let k = crate::store::keys::tenant_record(t);
            txn.require_equals(k.clone(), blob)
                .put(k, self.seal_record(&tk, t, crate::service::model::records::kind::TENANT, t.as_str(), &rec)?);
            let event = Event::new("tenant.guardrails_set", serde_json::to_value(settings).unwrap_or_default());
            let mut effects = Effects::none();
            effects.guardrails(t);
            Ok(Attempt::commit(txn, event, effects, settings.clone()))
        })
        .await
    }

    /// Reads a tenant's guardrails.
    pub async fn guardrails_of(&self, caller: &Caller, tenant: &TenantId) -> Result<GuardrailSettings, ServiceError> {
        caller.require_tenant_read(tenant)?;
        Ok(self.tenant_record(tenant).await?.guardrails.unwrap_or_default())
    }
}
