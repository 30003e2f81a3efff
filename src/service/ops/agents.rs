//! Agents: creation (signing key, access token, identity credential), listing, reading,
//! and access-token rotation. An agent's private keys are sealed records of their own;
//! the agent record holds only public halves and ids.

use jiff::Timestamp;

use crate::codes::ErrorCode;
use crate::crypto::{Aad, AccessToken, Signer};
use crate::ids::{AgentId, TenantId, TokenId};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{AgentRecord, AgentState, KeyState, KeyVersion, TokenRecord, TokenRole, kind};
use crate::service::model::validate::validate_text;
use crate::service::{Caller, Page, ServiceError, Sigil, page_limit};
use crate::store::{Txn, keys};

/// What an admin supplies to create an agent.
#[derive(Debug, Clone, Default)]
pub struct NewAgent {
    pub name: String,
    pub operator: Option<String>,
    pub software: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The result of creating an agent; the access token is shown once.
#[derive(Debug)]
pub struct AgentCreated {
    pub id: AgentId,
    pub did: String,
    pub access_token: AccessToken,
    pub token_id: TokenId,
    pub identity_credential_id: Option<String>,
}

/// An agent as the API shows it (no secrets).
#[derive(Debug, Clone)]
pub struct AgentView {
    pub record: AgentRecord,
    pub did: String,
}

/// A new agent access token, shown once.
#[derive(Debug)]
pub struct AgentTokenIssued {
    pub token_id: TokenId,
    pub access_token: AccessToken,
    pub expires: Option<Timestamp>,
}

const METADATA_MAX_BYTES: usize = 8 * 1024;

fn validate_metadata(m: &serde_json::Map<String, serde_json::Value>) -> Result<(), ServiceError> {
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if m.len() > 64 || size > METADATA_MAX_BYTES {
        return Err(ServiceError::invalid(format!("metadata must have at most 64 keys and {METADATA_MAX_BYTES} bytes")));
    }
    Ok(())
}

impl Sigil {
    /// Creates an agent: signing key v1, access token, identity credential.
    pub async fn create_agent(&self, caller: &Caller, tenant: &TenantId, new: NewAgent) -> Result<AgentCreated, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        validate_text("name", &new.name, 200)?;
        for (f, v) in [("operator", &new.operator), ("software", &new.software)] {
            if let Some(v) = v {
                validate_text(f, v, 200)?;
            }
        }
        validate_metadata(&new.metadata)?;
        let t = tenant;
        let id = AgentId::random();
        let a = id.as_str();
        let now = self.clock.now();
        let signer = Signer::generate();
        let minted = self.mint_token(TokenRole::Agent, Some(&id), None);
        let key_id = format!("{a}/1");
        // Held from reading the issuer key to the commit: an issuer-key rotation (which
        // takes every shard) cannot destroy the key this agent's identity credential is
        // being signed with, and nothing is signed with a key retired before it commits.
        let _lock = self.agent_locks.read(t, &id).await;
        let fresh = AgentRecord {
            v: 1,
            id: a.to_owned(),
            name: new.name,
            operator: new.operator,
            software: new.software,
            metadata: new.metadata,
            state: AgentState::Active,
            created: now,
            keys: vec![KeyVersion {
                version: 1,
                public_hex: hex::encode(signer.public().0),
                state: KeyState::Active,
                created: now,
                retired_at: None,
            }],
            current_key: 1,
            token_ids: vec![minted.id.to_string()],
            identity_credential_id: None,
            credential_ids: Vec::new(),
            suspended_credentials: Vec::new(),
        };
        let actor = crate::service::kernel::journal::actor(caller);
        let (fresh, key_id, signer, minted_ref) = (&fresh, &key_id, &signer, &minted);
        // Retried like every read-modify-write here (the issuance lock orders issuances,
        // but another writer may still move what this one read).
        // Held from status-index allocation to the commit (not only while staging), so
        // issuances in this tenant take turns instead of failing on the list counters.
        let issuing = &self.issuing(t).await;
        let record = self
            .mutate(t, &actor, || async move {
            let tk = self.tenant_keys(t).await?;
            let mut record = fresh.clone();
            let dk = tk.current().ok_or_else(|| ServiceError::Internal("no data key".into()))?;
            let mut txn = Txn::new();
            txn.put(keys::private_key(t, a, 1), dk.seal_signer(&Aad { tenant: t.as_str(), kind: kind::PRIVATE_KEY, id: key_id }, signer)?);
            self.stage_tenant_token(&mut txn, &tk, tenant, minted_ref)?;
            self.stage_identity_credential(issuing, &mut txn, &tk, tenant, &mut record).await?;
            txn.require_absent(keys::agent(t, a)).put(keys::agent(t, a), self.seal_record(&tk, t, kind::AGENT, a, &record)?);
            let event = crate::service::kernel::journal::Event::new(
                "agent.created",
                serde_json::json!({"token_id": minted_ref.id.to_string(), "identity_credential_id": record.identity_credential_id, "key_version": 1}),
            )
            .agent(a);
            Ok(Attempt::commit(txn, event, Effects::none(), record))
        })
            .await?;
        Ok(AgentCreated {
            did: self.agent_did(t, &id),
            id,
            access_token: minted.token,
            token_id: minted.id,
            identity_credential_id: record.identity_credential_id,
        })
    }

    /// One agent, for admins and auditors of its tenant.
    pub async fn get_agent(&self, caller: &Caller, tenant: &TenantId, agent: &AgentId) -> Result<AgentView, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let (record, _) = self.agent_record(tenant, agent).await?;
        Ok(AgentView { did: self.agent_did(tenant, agent), record })
    }

    /// The calling agent itself.
    pub async fn whoami(&self, caller: &Caller) -> Result<AgentView, ServiceError> {
        let Caller::Agent { tenant, agent, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "this route needs an agent token"));
        };
        let (record, _) = self.agent_record(tenant, agent).await?;
        Ok(AgentView { did: self.agent_did(tenant, agent), record })
    }

    /// Agents of a tenant, by id, cursor-paginated.
    pub async fn list_agents(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AgentView>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let tk = self.tenant_keys(t).await?;
        let limit = page_limit(limit);
        let after = match cursor {
            Some(c) => Some(keys::agent(t, AgentId::parse(c).map_err(|_| ServiceError::invalid("invalid cursor"))?.as_str())),
            None => None,
        };
        let prefix = keys::agent_prefix(t);
        let rows = self.store.scan(&prefix, after.as_deref(), limit + 1).await?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        for (k, blob) in rows.into_iter().take(limit) {
            let a = k.strip_prefix(prefix.as_slice()).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or_default();
            let record: AgentRecord = self.open_fresh(&tk, t, kind::AGENT, a, &k, &blob).await?;
            let a = AgentId::parse(a).map_err(|e| ServiceError::Internal(e.to_string()))?;
            items.push(AgentView { did: self.agent_did(t, &a), record });
        }
        let next_cursor = if more { items.last().map(|i| i.record.id.clone()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Issues a new access token for an agent. Previous tokens stop working at once, or
    /// after `grace_secs` (so a fleet can roll the new token out); the new token may expire.
    pub async fn rotate_agent_token(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        agent: &AgentId,
        expires_in: Option<u64>,
        grace_secs: Option<u64>,
    ) -> Result<AgentTokenIssued, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let now = self.clock.now();
        let secs =
            |s: u64| now.checked_add(jiff::SignedDuration::from_secs(s as i64)).map_err(|_| ServiceError::invalid("duration out of range"));
        let expires = crate::service::model::validate::token_expiry(now, expires_in)?;
        let grace_until = match grace_secs {
            None | Some(0) => None,
            Some(s) if s <= 86_400 => Some(secs(s)?),
            Some(_) => return Err(ServiceError::invalid("grace_seconds must be at most 86400")),
        };
        let actor = crate::service::kernel::journal::actor(caller);
        self.mutate(t, &actor, || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob) = self.agent_record(tenant, agent).await?;
            if rec.state == AgentState::Retired {
                return Err(ServiceError::Gone { code: ErrorCode::AgentRetired, detail: "the agent is retired".into() });
            }
            let minted = self.mint_token(TokenRole::Agent, Some(agent), expires);
            let mut txn = Txn::new();
            let mut effects = Effects::none();
            let mut keep = Vec::new();
            for id in &rec.token_ids {
                let Some(mut old) = self.load_record::<TokenRecord>(&tk, t, kind::TOKEN, id, &keys::token(t, id)).await? else { continue };
                match grace_until {
                    Some(g) if old.expires.is_none_or(|e| e > now) => {
                        old.expires = Some(old.expires.map_or(g, |e| e.min(g)));
                        txn.put(keys::token(t, id), self.seal_record(&tk, t, kind::TOKEN, id, &old)?);
                        effects.token(id);
                        keep.push(id.clone());
                    }
                    _ => self.stage_token_removal(&mut txn, &mut effects, tenant, &old),
                }
            }
            self.stage_tenant_token(&mut txn, &tk, tenant, &minted)?;
            keep.push(minted.id.to_string());
            rec.token_ids = keep;
            let key = keys::agent(t, agent.as_str());
            txn.require_equals(key.clone(), blob).put(key, self.seal_record(&tk, t, kind::AGENT, agent.as_str(), &rec)?);
            let event = crate::service::kernel::journal::Event::new(
                "agent.token_rotated",
                serde_json::json!({"token_id": minted.id.to_string(), "grace_seconds": grace_secs}),
            )
            .agent(agent.as_str());
            let out = AgentTokenIssued { token_id: minted.id, access_token: minted.token, expires };
            Ok(Attempt::commit(txn, event, effects, out))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Aad;
    use crate::service::testing;

    #[tokio::test]
    async fn private_keys_never_appear_in_store_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let a = s.create_agent(&testing::admin(&t.id), &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let tk = s.tenant_keys(&crate::ids::TenantId::parse("acme").unwrap()).await.unwrap();
        let dk = tk.current().unwrap();
        let mut seeds = Vec::new();
        for (owner, id) in [(a.id.as_str(), format!("{}/1", a.id)), ("issuer", "issuer/1".to_owned())] {
            let blob = s.store.get(&keys::private_key("acme", owner, 1)).await.unwrap().unwrap();
            let seed = dk.open(&Aad { tenant: "acme", kind: kind::PRIVATE_KEY, id: &id }, &blob).unwrap();
            assert_eq!(seed.len(), 32);
            seeds.push(seed.expose().to_vec());
        }
        drop(tk);
        drop(s);
        let mut stack = vec![dir.path().to_owned()];
        let mut files = 0;
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                for seed in &seeds {
                    assert!(!bytes.windows(32).any(|w| w == seed.as_slice()), "private key bytes in {}", p.display());
                }
            }
        }
        assert!(files > 0);
    }
}
