//! Status changes of one credential that several use cases share: Sigil's credential
//! routes (`…/credentials/{id}/revoke | suspend | resume`) and the VC-API status route,
//! which names a credential by its own `id`. Each change goes through [`Sigil::mutate`].
//!
//! Must never: check who the caller is (use cases do that before calling here).

use crate::codes::ErrorCode;
use crate::ids::TenantId;
use crate::service::kernel::issue::StatusChange;
use crate::service::kernel::journal::Event;
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{CredentialRecord, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

impl Sigil {
    /// Revokes, suspends or resumes credential `id` (its record id) as `actor`: flips its
    /// status-list bits and records the change; effective for the next request.
    pub(crate) async fn change_status(
        &self,
        actor: &str,
        tenant: &TenantId,
        id: &str,
        change: StatusChange,
    ) -> Result<CredentialRecord, ServiceError> {
        let t = tenant;
        self.mutate(t, actor, || async move {
            let (mut rec, old) = self.credential_record(t, id).await?;
            let mut txn = Txn::new();
            let mut effects = Effects::none();
            let mut bits = crate::service::kernel::issue::status_change_bits(&mut rec, change)?;
            // Revoking a delegation revokes its sub-delegations too, in this transaction.
            if change == StatusChange::Revoke {
                let (more, agents) = self.stage_descendant_revocations(&mut txn, t, &rec.id).await?;
                bits.extend(more);
                for a in &agents {
                    effects.wallet_of_record(t, a);
                }
            }
            self.stage_status_bits(&mut txn, t, &bits).await?;
            let tk = self.tenant_keys(t).await?;
            let key = keys::credential(t, &rec.id);
            txn.require_equals(key.clone(), old).put(key, self.seal_record(&tk, t, kind::CREDENTIAL, &rec.id, &rec)?);
            let kind_ = match change {
                StatusChange::Revoke => "credential.revoked",
                StatusChange::Suspend => "credential.suspended",
                StatusChange::Resume => "credential.resumed",
            };
            let mut event = Event::new(kind_, serde_json::json!({"credential_id": rec.id}));
            event.agent = rec.agent.clone();
            effects.status_lists(t);
            if let Some(a) = &rec.agent {
                effects.wallet_of_record(t, a);
            }
            Ok(Attempt::commit(txn, event, effects, rec))
        })
        .await
    }

    /// The record of a credential issued with status through the VC-API, found by the
    /// credential's own `id` (`404 credential_not_found` when no such credential was issued
    /// with status by this tenant).
    pub(crate) async fn issued_credential(&self, tenant: &TenantId, credential_id: &str) -> Result<CredentialRecord, ServiceError> {
        let nf = || ServiceError::not_found(ErrorCode::CredentialNotFound, "no credential with this id was issued with status");
        let index = self.store.get(&self.issued_credential_key(tenant, credential_id)).await?.ok_or_else(nf)?;
        let record_id = String::from_utf8(index).map_err(|_| ServiceError::Internal("a credential index row is not UTF-8".into()))?;
        let (rec, _) = self.credential_record(tenant, &record_id).await?;
        // The index is a keyed hash of the id: the record must carry that very id.
        if rec.vc.get("id").and_then(serde_json::Value::as_str) != Some(credential_id) {
            return Err(nf());
        }
        Ok(rec)
    }
}
