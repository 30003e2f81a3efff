//! Agent lifecycle and agent keys: suspend / resume / retire, key rotation, compromised
//! keys, replacing a delegation, and revoking everything a principal delegated.
//!
//! Every change that affects what an agent may sign takes the agent's write lock, so it
//! waits for presentations being signed right now and no presentation starts with the old
//! state after the change commits (see [`crate::service::kernel::locks::AgentLocks`]).

use serde_json::json;

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId};
use crate::service::kernel::issue::{NewDelegation, StatusChange, status_change_bits};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{AgentRecord, AgentState, CredentialKind, CredentialRecord, KeyState, KeyVersion, TokenRecord, kind};
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

/// Public view of a key version.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub key: KeyVersion,
    pub age_seconds: i64,
}

impl Sigil {
    /// Suspends (true) or resumes (false) an agent and the credentials suspended with it.
    pub async fn set_agent_suspended(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        agent: &AgentId,
        suspend: bool,
    ) -> Result<AgentRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        self.set_agent_suspended_as(tenant, agent, suspend, actor(caller)).await
    }

    /// Retires an agent for good: every credential revoked, every token deleted, every
    /// private key destroyed; the DID document answers as deactivated; the audit stays.
    pub async fn retire_agent(&self, caller: &Caller, tenant: &TenantId, agent: &AgentId) -> Result<AgentRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let a = agent;
        let _lock = self.agent_locks.write(t, a).await;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob, creds) = self.agent_with_credentials(tenant, agent).await?;
            if rec.state == AgentState::Retired {
                return Ok(Attempt::Done(rec));
            }
            let mut bits = Vec::new();
            let mut changed = Vec::new();
            for (mut c, old) in creds {
                if !c.revoked {
                    bits.extend(status_change_bits(&mut c, StatusChange::Revoke)?);
                    changed.push((c, old));
                }
            }
            let mut txn = Txn::new();
            let mut effects = Effects::none();
            for id in &rec.token_ids {
                if let Some(tok) = self.load_record::<TokenRecord>(&tk, t, kind::TOKEN, id, &keys::token(t, id)).await? {
                    self.stage_token_removal(&mut txn, &mut effects, tenant, &tok);
                }
            }
            let now = self.clock.now();
            for k in rec.keys.iter_mut() {
                txn.delete(keys::private_key(t, a.as_str(), k.version));
                if k.state == KeyState::Active {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(now);
                }
            }
            rec.token_ids.clear();
            rec.suspended_credentials.clear();
            rec.state = AgentState::Retired;
            self.stage_status_bits(&mut txn, t, &bits).await?;
            self.stage_agent_and_credentials(&mut txn, &tk, t, &rec, blob, &changed)?;
            let event = Event::new("agent.retired", json!({"credentials_revoked": changed.len()})).agent(a.as_str());
            effects.status_lists(t).signers(t, Some(a.as_str())).wallet(t, a);
            Ok(Attempt::commit(txn, event, effects, rec))
        })
        .await
    }

    /// `POST …/keys/rotate`.
    pub async fn rotate_agent_key(&self, caller: &Caller, tenant: &TenantId, agent: &AgentId) -> Result<AgentRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        self.rotate_agent_key_inner(tenant, agent, actor(caller), "manual", None)
            .await?
            .ok_or_else(|| ServiceError::Internal("unconditional rotation skipped".into()))
    }

    /// `POST …/keys/{version}/compromised`: removes the key from the DID document entirely
    /// (proofs it made stop verifying); if it is the current key, a new one replaces it.
    pub async fn mark_key_compromised(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        agent: &AgentId,
        version: u32,
    ) -> Result<AgentRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let a = agent;
        let (rec, _) = self.agent_record(tenant, agent).await?;
        if !rec.keys.iter().any(|k| k.version == version) {
            return Err(ServiceError::not_found(ErrorCode::KeyNotFound, "no such key version"));
        }
        if rec.current_key == version && rec.state != AgentState::Retired {
            self.rotate_agent_key_inner(tenant, agent, actor(caller), "compromised", Some(version)).await?;
        }
        let _lock = self.agent_locks.write(t, a).await;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob) = self.agent_record(tenant, agent).await?;
            let now = self.clock.now();
            for k in rec.keys.iter_mut().filter(|k| k.version == version) {
                k.state = KeyState::Compromised;
                k.retired_at.get_or_insert(now);
            }
            let mut txn = Txn::new();
            txn.delete(keys::private_key(t, a.as_str(), version));
            let akey = keys::agent(t, a);
            txn.require_equals(akey.clone(), blob).put(akey, self.seal_record(&tk, t, kind::AGENT, a.as_str(), &rec)?);
            let event = Event::new("agent.key_compromised", json!({"version": version})).agent(a.as_str());
            let mut effects = Effects::none();
            effects.signers(t, Some(a.as_str())).wallet(t, a);
            Ok(Attempt::commit(txn, event, effects, rec))
        })
        .await
    }

    /// `GET …/keys`.
    pub async fn agent_keys(&self, caller: &Caller, tenant: &TenantId, agent: &AgentId) -> Result<Vec<KeyView>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let (rec, _) = self.agent_record(tenant, agent).await?;
        let now = self.clock.now();
        Ok(rec.keys.into_iter().map(|k| KeyView { age_seconds: now.duration_since(k.created).as_secs(), key: k }).collect())
    }

    /// Replaces a delegation: the new one is issued and the old one revoked in one
    /// transaction; the next presentation uses the new authority.
    pub async fn replace_credential(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        new: NewDelegation,
    ) -> Result<CredentialRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let now = self.clock.now();
        let valid_from = new.valid_from.unwrap_or(now);
        if new.valid_until <= valid_from || new.valid_until <= now {
            return Err(ServiceError::invalid("valid_until must be in the future and after valid_from"));
        }
        // A credential's agent never changes: found once, its lock held through every attempt.
        let agent = AgentId::parse(self.credential_record(t, id).await?.0.agent.as_deref().unwrap_or_default())
            .map_err(|_| ServiceError::invalid("only delegations can be replaced"))?;
        let _lock = self.agent_locks.write(t, &agent).await;
        let (agent, new) = (&agent, &new);
        // Held from status-index allocation to the commit (not only while staging), so
        // issuances in this tenant take turns instead of failing on the list counters.
        let issuing = &self.issuing(t).await;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut old, old_blob) = self.credential_record(t, id).await?;
            if old.kind != CredentialKind::Delegation {
                return Err(ServiceError::invalid("only delegations can be replaced"));
            }
            if old.revoked {
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "the credential is already revoked"));
            }
            let (mut rec, blob) = self.agent_record(tenant, agent).await?;
            let mut txn = Txn::new();
            let cred = self.stage_delegation(issuing, &mut txn, &tk, t, agent, valid_from, new).await?;
            let bits = status_change_bits(&mut old, StatusChange::Revoke)?;
            self.stage_status_bits(&mut txn, t, &bits).await?;
            rec.credential_ids.push(cred.id.clone());
            self.stage_agent_and_credentials(&mut txn, &tk, t, &rec, blob, &[(old, old_blob)])?;
            let event = Event::new("credential.replaced", json!({"old": id, "new": cred.id})).agent(agent.as_str());
            let mut effects = Effects::none();
            effects.status_lists(t).wallet(t, agent);
            Ok(Attempt::commit(txn, event, effects, cred))
        })
        .await
    }

    /// Revokes every delegation naming `principal`, across all agents of the tenant.
    pub async fn revoke_principal(&self, caller: &Caller, tenant: &TenantId, principal: &str) -> Result<Vec<String>, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        if principal.is_empty() || principal.len() > 200 {
            return Err(ServiceError::invalid("principal must be 1–200 characters"));
        }
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let mut hits = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            let prefix = format!("t/{t}/c/").into_bytes();
            loop {
                let rows = self.store.scan(&prefix, after.as_deref(), 1000).await?;
                let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
                for (k, blob) in rows {
                    let id = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
                    let c: CredentialRecord = self.open_fresh(&tk, t, kind::CREDENTIAL, &id, &k, &blob).await?;
                    if c.kind == CredentialKind::Delegation && !c.revoked && c.principal.as_ref().is_some_and(|p| p.identifier == principal)
                    {
                        hits.push((c, blob));
                    }
                }
                after = Some(last);
            }
            let mut bits = Vec::new();
            let mut txn = Txn::new();
            let mut ids = Vec::new();
            for (c, old) in hits.iter_mut() {
                bits.extend(status_change_bits(c, StatusChange::Revoke)?);
                let ckey = keys::credential(t, &c.id);
                txn.require_equals(ckey.clone(), old.clone()).put(ckey, self.seal_record(&tk, t, kind::CREDENTIAL, &c.id, c)?);
                ids.push(c.id.clone());
            }
            self.stage_status_bits(&mut txn, t, &bits).await?;
            let event = Event::new(
                "principal.revoked",
                json!({"principal_hash": hex::encode(self.keys.pepper.keyed_hash("principal", principal.as_bytes())), "credentials": ids}),
            );
            let mut effects = Effects::none();
            effects.status_lists(t);
            for a in hits.iter().filter_map(|(c, _)| c.agent.as_deref()) {
                effects.wallet_of_record(t, a);
            }
            Ok(Attempt::commit(txn, event, effects, ids))
        })
        .await
    }
}
