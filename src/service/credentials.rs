//! Credentials in agents' wallets: the identity credential issued with every agent,
//! delegated-authority credentials, wallet listing, and revoke / suspend / resume through
//! the tenant's status lists.

use jiff::Timestamp;
use serde_json::Value;

use super::keyring::TenantKeys;
use super::lifecycle::Issuing;
use super::mutation::{Attempt, Effects};
use super::records::{AgentRecord, AgentState, CredentialKind, CredentialRecord, StatusRef, kind};
use super::status::{BitChange, Purpose};
use super::{Caller, ServiceError, Sigil};
use crate::clock::rfc3339;
use crate::ids::{AgentId, CredentialId, TenantId};
use crate::policy::{Authority, Principal};
use crate::store::{Txn, keys};
use crate::vc::credential::{self, AgentIdentity, Envelope, StatusEntries};
use crate::vc::proof::{self, ProofOptions};
use crate::vc::status_list;

/// A delegation to issue.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub principal: Principal,
    pub authority: Authority,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Timestamp,
}

/// Status change requested by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Revoke,
    Suspend,
    Resume,
}

/// The bit changes that `change` implies for `rec`, applied to `rec`'s flags.
pub(crate) fn status_change_bits(rec: &mut CredentialRecord, change: StatusChange) -> Result<Vec<BitChange>, ServiceError> {
    let mut out = Vec::new();
    match change {
        StatusChange::Revoke => {
            if !rec.revoked {
                out.push(BitChange { purpose: Purpose::Revocation, list: rec.revocation.list, index: rec.revocation.index, value: true });
                rec.revoked = true;
            }
        }
        StatusChange::Suspend => {
            if rec.revoked {
                return Err(ServiceError::conflict("credential_revoked", "a revoked credential cannot be suspended"));
            }
            if !rec.suspended {
                out.push(BitChange { purpose: Purpose::Suspension, list: rec.suspension.list, index: rec.suspension.index, value: true });
                rec.suspended = true;
            }
        }
        StatusChange::Resume => {
            if rec.revoked {
                return Err(ServiceError::conflict("credential_revoked", "revocation is permanent; issue a new credential"));
            }
            if rec.suspended {
                out.push(BitChange { purpose: Purpose::Suspension, list: rec.suspension.list, index: rec.suspension.index, value: false });
                rec.suspended = false;
            }
        }
    }
    Ok(out)
}

/// Current status of a credential as the API reports it.
pub fn effective_status(rec: &CredentialRecord, now: Timestamp) -> &'static str {
    if rec.revoked {
        "revoked"
    } else if rec.suspended {
        "suspended"
    } else if rec.valid_until.is_some_and(|u| now >= u) {
        "expired"
    } else if now < rec.valid_from {
        "not_yet_valid"
    } else {
        "active"
    }
}

impl Sigil {
    /// Stages the delegation credential `new` describes for `agent` (issuing one, or the
    /// successor of a replaced one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn stage_delegation(
        &self,
        issuing: &Issuing<'_>,
        txn: &mut Txn,
        tk: &TenantKeys,
        tenant: &str,
        agent: &str,
        valid_from: Timestamp,
        new: &NewDelegation,
    ) -> Result<CredentialRecord, ServiceError> {
        let did = self.agent_did(tenant, agent);
        self.stage_credential(
            issuing,
            txn,
            tk,
            tenant,
            Some(agent),
            CredentialKind::Delegation,
            valid_from,
            Some(new.valid_until),
            |env| credential::delegation(env, &did, &new.principal, &new.authority).map_err(|e| ServiceError::Internal(e.to_string())),
            Some(new.principal.clone()),
            Some(new.authority.clone()),
        )
        .await
    }

    /// Builds, signs and stages one credential with fresh status entries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn stage_credential(
        &self,
        issuing: &Issuing<'_>,
        txn: &mut Txn,
        tk: &TenantKeys,
        tenant: &str,
        agent: Option<&str>,
        kind_: CredentialKind,
        valid_from: Timestamp,
        valid_until: Option<Timestamp>,
        build: impl FnOnce(&Envelope<'_>) -> Result<serde_json::Map<String, Value>, ServiceError>,
        principal: Option<Principal>,
        authority: Option<Authority>,
    ) -> Result<CredentialRecord, ServiceError> {
        let id = CredentialId::uuid();
        let (rl, ri) = self.stage_status_index(issuing, txn, tenant, Purpose::Revocation, id.as_str()).await?;
        let (sl, si) = self.stage_status_index(issuing, txn, tenant, Purpose::Suspension, id.as_str()).await?;
        let issuer = self.tenant_did(tenant);
        let ctx = credential::context_url(self.settings.public_url.base());
        let urn = format!("urn:uuid:{id}");
        let (vf, vu) = (rfc3339(valid_from), valid_until.map(rfc3339));
        let env = Envelope {
            id: &urn,
            issuer: &issuer,
            context_url: &ctx,
            valid_from: &vf,
            valid_until: vu.as_deref(),
            status: StatusEntries {
                revocation: status_list::entry(&self.status_list_url(tenant, Purpose::Revocation, rl), "revocation", ri),
                suspension: status_list::entry(&self.status_list_url(tenant, Purpose::Suspension, sl), "suspension", si),
            },
        };
        let doc = build(&env)?;
        let rec_t = self.tenant_record(tenant).await?;
        let signer = self.signer(tenant, "issuer", rec_t.issuer_current).await?;
        let now = self.clock.now();
        let opts = ProofOptions {
            verification_method: format!("{issuer}#issuer-{}", rec_t.issuer_current),
            proof_purpose: "assertionMethod",
            created: rfc3339(now),
            expires: None,
            challenge: None,
            domain: None,
        };
        let vc = proof::sign(doc, &opts, &signer).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let rec = CredentialRecord {
            v: 1,
            id: id.to_string(),
            kind: kind_,
            agent: agent.map(str::to_owned),
            issued: now,
            valid_from,
            valid_until,
            issuer_key_version: rec_t.issuer_current,
            revocation: StatusRef { list: rl, index: ri },
            suspension: StatusRef { list: sl, index: si },
            revoked: false,
            suspended: false,
            principal,
            authority,
            vc,
        };
        let key = keys::credential(tenant, id.as_str());
        txn.require_absent(key.clone()).put(key, self.seal_record(tk, tenant, kind::CREDENTIAL, id.as_str(), &rec)?);
        Ok(rec)
    }

    /// Stages the `AgentIdentityCredential` of a new agent and links it in the record.
    pub(crate) async fn stage_identity_credential(
        &self,
        issuing: &Issuing<'_>,
        txn: &mut Txn,
        tk: &TenantKeys,
        tenant: &TenantId,
        agent: &mut AgentRecord,
    ) -> Result<(), ServiceError> {
        let t = tenant.as_str();
        let did = self.agent_did(t, &agent.id);
        let created = rfc3339(agent.created);
        let a = agent.clone();
        let rec = self
            .stage_credential(
                issuing,
                txn,
                tk,
                t,
                Some(&agent.id),
                CredentialKind::Identity,
                agent.created,
                None,
                |env| {
                    Ok(credential::identity(
                        env,
                        &AgentIdentity {
                            agent_did: &did,
                            name: &a.name,
                            operator: a.operator.as_deref(),
                            software: a.software.as_deref(),
                            created: &created,
                        },
                    ))
                },
                None,
                None,
            )
            .await?;
        agent.identity_credential_id = Some(rec.id.clone());
        agent.credential_ids.push(rec.id);
        Ok(())
    }

    /// Issues a `DelegatedAuthorityCredential` into an agent's wallet.
    pub async fn issue_delegation(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        agent: &AgentId,
        new: NewDelegation,
    ) -> Result<CredentialRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let now = self.clock.now();
        let valid_from = new.valid_from.unwrap_or(now);
        if new.valid_until <= valid_from {
            return Err(ServiceError::invalid("valid_until must be later than valid_from"));
        }
        if new.valid_until <= now {
            return Err(ServiceError::invalid("valid_until must be in the future"));
        }
        let t = tenant.as_str();
        // Held from reading the issuer key to the commit (see `create_agent`).
        let _lock = self.agent_locks.read(t, agent.as_str()).await;
        let new = &new;
        self.mutate(t, &super::audit::actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, old) = self.agent_record(tenant, agent).await?;
            if rec.state == AgentState::Retired {
                return Err(ServiceError::Gone { code: "agent_retired", detail: "the agent is retired".into() });
            }
            let issuing = self.issuing(t).await;
            let mut txn = Txn::new();
            let cred = self.stage_delegation(&issuing, &mut txn, &tk, t, agent.as_str(), valid_from, new).await?;
            rec.credential_ids.push(cred.id.clone());
            let key = keys::agent(t, agent.as_str());
            txn.require_equals(key.clone(), old).put(key, self.seal_record(&tk, t, kind::AGENT, agent.as_str(), &rec)?);
            let event = super::audit::Event::new(
                "delegation.issued",
                serde_json::json!({"credential_id": cred.id, "actions": cred.authority.as_ref().map(|a| a.actions.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>()),
                    "principal_hash": cred.principal.as_ref().map(|p| hex::encode(self.keys.pepper.keyed_hash("principal", p.identifier.as_bytes())))}),
            )
            .agent(agent.as_str());
            let mut effects = Effects::none();
            effects.wallet(t, agent.as_str());
            Ok(Attempt::commit(txn, event, effects, cred))
        })
        .await
    }

    /// Loads a credential record of a tenant.
    pub(crate) async fn credential_record(&self, tenant: &str, id: &str) -> Result<(CredentialRecord, Vec<u8>), ServiceError> {
        let nf = || ServiceError::not_found("credential_not_found", "no such credential");
        let id = CredentialId::parse(id).map_err(|_| nf())?;
        let tk = self.tenant_keys(tenant).await?;
        let blob = self.store.get(&keys::credential(tenant, id.as_str())).await?.ok_or_else(nf)?;
        Ok((self.open_record(&tk, tenant, kind::CREDENTIAL, id.as_str(), &blob)?, blob))
    }

    /// The credentials of an agent (for admins and auditors).
    pub async fn agent_credentials(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Vec<CredentialRecord>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let (rec, _) = self.agent_record(tenant, agent).await?;
        self.wallet_records(tenant.as_str(), &rec).await
    }

    pub(crate) async fn wallet_records(&self, tenant: &str, rec: &AgentRecord) -> Result<Vec<CredentialRecord>, ServiceError> {
        let mut out = Vec::with_capacity(rec.credential_ids.len());
        for id in &rec.credential_ids {
            out.push(self.credential_record(tenant, id).await?.0);
        }
        Ok(out)
    }

    /// One credential (the full VC), for admins and auditors.
    pub async fn get_credential(&self, caller: &Caller, tenant: &TenantId, id: &str) -> Result<CredentialRecord, ServiceError> {
        caller.require_tenant_read(tenant)?;
        Ok(self.credential_record(tenant.as_str(), id).await?.0)
    }

    /// Revokes, suspends or resumes a credential by flipping its status-list bits.
    pub async fn change_credential_status(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        change: StatusChange,
    ) -> Result<CredentialRecord, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant.as_str();
        self.mutate(t, &super::audit::actor(caller), || async move {
            let (mut rec, old) = self.credential_record(t, id).await?;
            let mut txn = Txn::new();
            self.stage_status_change(&mut txn, t, &mut rec, change).await?;
            let tk = self.tenant_keys(t).await?;
            let key = keys::credential(t, &rec.id);
            txn.require_equals(key.clone(), old).put(key, self.seal_record(&tk, t, kind::CREDENTIAL, &rec.id, &rec)?);
            let kind_ = match change {
                StatusChange::Revoke => "credential.revoked",
                StatusChange::Suspend => "credential.suspended",
                StatusChange::Resume => "credential.resumed",
            };
            let mut event = super::audit::Event::new(kind_, serde_json::json!({"credential_id": rec.id}));
            event.agent = rec.agent.clone();
            let mut effects = Effects::none();
            effects.status_lists(t);
            if let Some(a) = &rec.agent {
                effects.wallet(t, a);
            }
            Ok(Attempt::commit(txn, event, effects, rec))
        })
        .await
    }

    /// Stages the bit flip(s) for `change` and updates `rec` (not its storage).
    pub(crate) async fn stage_status_change(
        &self,
        txn: &mut Txn,
        t: &str,
        rec: &mut CredentialRecord,
        change: StatusChange,
    ) -> Result<(), ServiceError> {
        let bits = status_change_bits(rec, change)?;
        self.stage_status_bits(txn, t, &bits).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::policy::{Limits, PrincipalKind};
    use crate::service::agents::NewAgent;
    use crate::service::testing;

    #[tokio::test]
    async fn validity_windows_follow_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let t0: Timestamp = "2026-06-01T10:00:00Z".parse().unwrap();
        let clock = FixedClock::new(t0);
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let new = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority: Authority::new(&["refunds:create".into()], &["orders/*".into()], Limits::default(), None).unwrap(),
            valid_from: None,
            valid_until: "2026-06-01T12:00:00Z".parse().unwrap(),
        };
        let rec = s.issue_delegation(&admin, &t.id, &a.id, new).await.unwrap();
        assert!(s.verify_credential(&rec.vc, true).await.verified());
        clock.set("2026-06-01T12:00:00Z".parse().unwrap());
        let r = s.verify_credential(&rec.vc, true).await;
        assert_eq!(r.codes(), vec!["expired"]);
        assert_eq!(effective_status(&rec, s.now()), "expired");
        // Moving the clock backwards would also make the cached status list "not yet
        // valid"; only the credential's own window is under test here.
        clock.set("2026-06-01T09:59:59Z".parse().unwrap());
        assert_eq!(s.verify_credential(&rec.vc, false).await.codes(), vec!["not_yet_valid"]);
    }
}

#[cfg(test)]
mod skew_tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::service::agents::NewAgent;
    use crate::service::testing;
    use crate::vc::verify::{CredentialOptions, verify_credential};

    #[tokio::test]
    async fn a_status_list_signed_a_moment_after_verification_started_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-06-01T10:00:00.900Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let a = s.create_agent(&testing::admin(&t.id), &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let vc = s.credential_record("acme", a.identity_credential_id.as_deref().unwrap()).await.unwrap().0.vc;
        // The verifier's "now" is taken before the list is (re-)signed one second later.
        let started: Timestamp = "2026-06-01T10:00:00.900Z".parse().unwrap();
        clock.set("2026-06-01T10:00:01.100Z".parse().unwrap());
        let r = verify_credential(
            &vc,
            &crate::service::resolver::LocalFirst { sigil: &s },
            started,
            CredentialOptions::default(),
            &s.verify_trust,
        )
        .await;
        assert!(r.verified(), "{:?}", r.errors());
        // A list signed an hour from now is still refused.
        s.status_cache.invalidate("acme");
        clock.set("2026-06-01T11:30:00Z".parse().unwrap());
        let r = verify_credential(
            &vc,
            &crate::service::resolver::LocalFirst { sigil: &s },
            started,
            CredentialOptions::default(),
            &s.verify_trust,
        )
        .await;
        assert_eq!(r.codes(), vec!["status_unavailable", "status_unavailable"]);
    }
}
