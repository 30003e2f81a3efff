//! Changes to an agent's state and keys that several use cases share: suspension (by an
//! administrator or by the guardrails), key rotation (manual, compromised, scheduled), and
//! restaging the agent's credentials with it. Each goes through [`Sigil::mutate`] under
//! the agent's write lock.
//!
//! Must never: check who the caller is (use cases do that before calling here).

use jiff::Timestamp;
use serde_json::json;

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId};
use crate::service::kernel::issue::{StatusChange, status_change_bits};
use crate::service::kernel::journal::Event;
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::kernel::signers::stage_new_key;
use crate::service::model::records::{AgentRecord, AgentState, CredentialRecord, KeyState, KeyVersion, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};

impl Sigil {
    /// Loads an agent and the records of all its credentials, for a multi-record change.
    pub(crate) async fn agent_with_credentials(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<(AgentRecord, Vec<u8>, Vec<(CredentialRecord, Vec<u8>)>), ServiceError> {
        let (rec, blob) = self.agent_record(tenant, agent).await?;
        let mut creds = Vec::with_capacity(rec.credential_ids.len());
        for id in &rec.credential_ids {
            creds.push(self.credential_record(tenant, id).await?);
        }
        Ok((rec, blob, creds))
    }

    /// Stages an agent record and its changed credentials, CAS-guarded.
    pub(crate) fn stage_agent_and_credentials(
        &self,
        txn: &mut Txn,
        tk: &crate::service::kernel::keyring::TenantKeys,
        tenant: &TenantId,
        rec: &AgentRecord,
        old_blob: Vec<u8>,
        creds: &[(CredentialRecord, Vec<u8>)],
    ) -> Result<(), ServiceError> {
        let akey = keys::agent(tenant, &rec.id);
        txn.require_equals(akey.clone(), old_blob).put(akey, self.seal_record(tk, tenant, kind::AGENT, &rec.id, rec)?);
        for (c, old) in creds {
            let ckey = keys::credential(tenant, &c.id);
            txn.require_equals(ckey.clone(), old.clone()).put(ckey, self.seal_record(tk, tenant, kind::CREDENTIAL, &c.id, c)?);
        }
        Ok(())
    }

    /// [`Sigil::set_agent_suspended`] on behalf of `actor_s` (guardrails act as `system:*`).
    pub(crate) async fn set_agent_suspended_as(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        suspend: bool,
        actor_s: String,
    ) -> Result<AgentRecord, ServiceError> {
        let t = tenant;
        let _lock = self.agent_locks.write(t, agent).await;
        self.mutate(t, &actor_s, || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob, creds) = self.agent_with_credentials(tenant, agent).await?;
            match (rec.state, suspend) {
                (AgentState::Retired, _) => {
                    return Err(ServiceError::Gone { code: ErrorCode::AgentRetired, detail: "the agent is retired".into() });
                }
                (AgentState::Suspended, true) | (AgentState::Active, false) => return Ok(Attempt::Done(rec)),
                _ => {}
            }
            let mut bits = Vec::new();
            let mut changed = Vec::new();
            if suspend {
                rec.suspended_credentials.clear();
                for (mut c, old) in creds {
                    if !c.revoked && !c.suspended {
                        bits.extend(status_change_bits(&mut c, StatusChange::Suspend)?);
                        rec.suspended_credentials.push(c.id.clone());
                        changed.push((c, old));
                    }
                }
                rec.state = AgentState::Suspended;
            } else {
                for (mut c, old) in creds {
                    if rec.suspended_credentials.contains(&c.id) && !c.revoked {
                        bits.extend(status_change_bits(&mut c, StatusChange::Resume)?);
                        changed.push((c, old));
                    }
                }
                rec.suspended_credentials.clear();
                rec.state = AgentState::Active;
            }
            let mut txn = Txn::new();
            self.stage_status_bits(&mut txn, t, &bits).await?;
            self.stage_agent_and_credentials(&mut txn, &tk, t, &rec, blob, &changed)?;
            let event = Event::new(if suspend { "agent.suspended" } else { "agent.resumed" }, json!({"credentials": changed.len()}))
                .agent(agent.as_str());
            let mut effects = Effects::none();
            effects.status_lists(t).wallet(t, agent);
            Ok(Attempt::commit(txn, event, effects, rec))
        })
        .await
    }

    /// Rotates an agent's signing key: a new version becomes current, the previous private
    /// key is destroyed in the same transaction; its public half stays in the DID document.
    /// `only_if_current` makes the rotation conditional (scheduled rotation, idempotent).
    pub(crate) async fn rotate_agent_key_inner(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        actor_s: String,
        reason: &str,
        only_if_current: Option<u32>,
    ) -> Result<Option<AgentRecord>, ServiceError> {
        let t = tenant;
        let a = agent;
        let _lock = self.agent_locks.write(t, a).await;
        self.mutate(t, &actor_s, || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob) = self.agent_record(tenant, agent).await?;
            if rec.state == AgentState::Retired {
                return Err(ServiceError::Gone { code: ErrorCode::AgentRetired, detail: "the agent is retired".into() });
            }
            if only_if_current.is_some_and(|v| v != rec.current_key) {
                return Ok(Attempt::Done(None));
            }
            let old = rec.current_key;
            let mut txn = Txn::new();
            let new = stage_new_key(&tk, &mut txn, t, a.as_str(), &mut rec.keys, old, self.clock.now())?;
            rec.current_key = new;
            let akey = keys::agent(t, a);
            txn.require_equals(akey.clone(), blob).put(akey, self.seal_record(&tk, t, kind::AGENT, a.as_str(), &rec)?);
            let event = Event::new("agent.key_rotated", json!({"from": old, "to": new, "reason": reason})).agent(a.as_str());
            metrics::counter!("sigil_rotations_total", "kind" => "agent_key").increment(1);
            let mut effects = Effects::none();
            effects.signers(t, Some(a.as_str())).wallet(t, a);
            Ok(Attempt::commit(txn, event, effects, Some(rec)))
        })
        .await
    }

    /// Keys listed in an agent's DID document and whether each is in `authentication`:
    /// the current key, plus retired keys during a grace period as long as a presentation
    /// may live, so presentations signed just before a rotation still verify everywhere.
    pub(crate) fn agent_key_grace(&self, k: &KeyVersion, now: Timestamp) -> bool {
        k.state == KeyState::Retired
            && k.retired_at
                .is_some_and(|r| now.duration_since(r) < jiff::SignedDuration::from_secs(self.settings.max_presentation_ttl as i64))
    }
}
