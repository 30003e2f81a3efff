//! Staging credentials: the identity credential issued with every agent, delegations, and
//! status changes (revoke / suspend / resume) as bits of the tenant's status lists. Staging
//! is pure with respect to the outside world: it signs and adds writes to a [`Txn`]; the
//! caller commits through [`Sigil::mutate`].
//!
//! Must never: commit, or run effects (cache evictions) itself.

use jiff::Timestamp;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::ids::AgentId;
use crate::ids::{CredentialId, TenantId};
use crate::policy::{Authority, Principal};
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::locks::Issuing;
use crate::service::kernel::status::{BitChange, Purpose};
use crate::service::model::records::{AgentRecord, CredentialKind, CredentialRecord, StatusRef, kind};
use crate::service::{ServiceError, Sigil};
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
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "a revoked credential cannot be suspended"));
            }
            if !rec.suspended {
                out.push(BitChange { purpose: Purpose::Suspension, list: rec.suspension.list, index: rec.suspension.index, value: true });
                rec.suspended = true;
            }
        }
        StatusChange::Resume => {
            if rec.revoked {
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "revocation is permanent; issue a new credential"));
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
        tenant: &TenantId,
        agent: &AgentId,
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
        tenant: &TenantId,
        agent: Option<&AgentId>,
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
            agent: agent.map(|a| a.as_str().to_owned()),
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
        let t = tenant;
        let agent_id = AgentId::parse(&agent.id).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let did = self.agent_did(t, &agent_id);
        let created = rfc3339(agent.created);
        let a = agent.clone();
        let rec = self
            .stage_credential(
                issuing,
                txn,
                tk,
                t,
                Some(&agent_id),
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

    /// Stages the bit flip(s) for `change` and updates `rec` (not its storage).
    pub(crate) async fn stage_status_change(
        &self,
        txn: &mut Txn,
        t: &TenantId,
        rec: &mut CredentialRecord,
        change: StatusChange,
    ) -> Result<(), ServiceError> {
        let bits = status_change_bits(rec, change)?;
        self.stage_status_bits(txn, t, &bits).await
    }
}
