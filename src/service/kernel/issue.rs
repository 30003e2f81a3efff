//! Staging credentials: the identity credential issued with every agent, delegations,
//! credentials issued with status through the VC-API, and status changes (revoke / suspend
//! / resume) as bits of the tenant's status lists. Staging is pure with respect to the
//! outside world: it signs and adds writes to a [`Txn`]; the caller commits through
//! [`Sigil::mutate`].
//!
//! Must never: commit, or run effects (cache evictions) itself.

use jiff::Timestamp;
use serde_json::{Map, Value};

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
use crate::vc::jsonld::JsonLdError;
use crate::vc::proof::{self, Cryptosuite, ProofError, ProofOptions};
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

/// The bit changes that `change` implies for `rec`, applied to `rec`'s flags. A credential
/// without an entry of the purpose a change needs (a VC-API credential issued with only the
/// other one) cannot take that change.
pub(crate) fn status_change_bits(rec: &mut CredentialRecord, change: StatusChange) -> Result<Vec<BitChange>, ServiceError> {
    let no_entry = |purpose: &str| ServiceError::Invalid {
        code: ErrorCode::NoStatusEntry,
        detail: format!("the credential has no {purpose} status entry; it was issued without one"),
    };
    let mut out = Vec::new();
    match change {
        StatusChange::Revoke => {
            if !rec.revoked {
                let at = rec.revocation.ok_or_else(|| no_entry("revocation"))?;
                out.push(BitChange { purpose: Purpose::Revocation, list: at.list, index: at.index, value: true });
                rec.revoked = true;
            }
        }
        StatusChange::Suspend => {
            if rec.revoked {
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "a revoked credential cannot be suspended"));
            }
            let at = rec.suspension.ok_or_else(|| no_entry("suspension"))?;
            if !rec.suspended {
                out.push(BitChange { purpose: Purpose::Suspension, list: at.list, index: at.index, value: true });
                rec.suspended = true;
            }
        }
        StatusChange::Resume => {
            if rec.revoked {
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "revocation is permanent; issue a new credential"));
            }
            let at = rec.suspension.ok_or_else(|| no_entry("suspension"))?;
            if rec.suspended {
                out.push(BitChange { purpose: Purpose::Suspension, list: at.list, index: at.index, value: false });
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
        let (vc, issuer_key_version) = self.sign_as_issuer(tenant, doc, None).await?;
        let rec = CredentialRecord {
            v: 1,
            id: id.to_string(),
            kind: kind_,
            agent: agent.map(|a| a.as_str().to_owned()),
            issued: self.clock.now(),
            valid_from,
            valid_until,
            issuer_key_version,
            revocation: Some(StatusRef { list: rl, index: ri }),
            suspension: Some(StatusRef { list: sl, index: si }),
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

    /// Signs `doc` with the tenant's current issuer key (`assertionMethod`) under `suite`,
    /// or the tenant's default cryptosuite; answers the credential and the key version. A
    /// document JCS cannot canonicalize (RFC 8785: say, a number beyond what it can write
    /// exactly) or JSON-LD cannot process (an unknown context, over a limit) is the
    /// caller's to fix.
    pub(crate) async fn sign_as_issuer(
        &self,
        tenant: &TenantId,
        doc: Map<String, Value>,
        suite: Option<Cryptosuite>,
    ) -> Result<(Value, u32), ServiceError> {
        let rec_t = self.tenant_record(tenant).await?;
        let signer = self.signer(tenant, "issuer", rec_t.issuer_current).await?;
        let opts = ProofOptions {
            cryptosuite: suite.or(rec_t.cryptosuite).unwrap_or_default(),
            verification_method: format!("{}#issuer-{}", self.tenant_did(tenant), rec_t.issuer_current),
            proof_purpose: "assertionMethod",
            created: rfc3339(self.clock.now()),
            expires: None,
            challenge: None,
            domain: None,
        };
        match proof::sign(doc, &opts, &signer) {
            Ok(vc) => Ok((vc, rec_t.issuer_current)),
            Err(ProofError::Canonicalization) => {
                Err(ServiceError::invalid("the credential cannot be canonicalized (RFC 8785 JSON Canonicalization Scheme)"))
            }
            Err(ProofError::JsonLd(e)) => Err(jsonld_error(e)),
            Err(e) => Err(ServiceError::Internal(e.to_string())),
        }
    }

    /// The store key that finds a credential issued with status through the VC-API by its
    /// own `id`: a keyed hash, so the key space never holds the issuer's chosen id.
    pub(crate) fn issued_credential_key(&self, tenant: &TenantId, credential_id: &str) -> Vec<u8> {
        keys::issued_credential_id(tenant, &hex::encode(self.keys.pepper.keyed_hash("vc-api-credential-id", credential_id.as_bytes())))
    }

    /// Stages a credential issued through the VC-API with Sigil's own Bitstring Status List
    /// entries for `purposes`: allocates the entries, adds them as `credentialStatus`,
    /// signs, stores the record (no agent) and indexes it by the credential's `id`
    /// (`credential_id`), which must not name an earlier one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn stage_issued_credential(
        &self,
        issuing: &Issuing<'_>,
        txn: &mut Txn,
        tk: &TenantKeys,
        tenant: &TenantId,
        mut doc: Map<String, Value>,
        credential_id: &str,
        purposes: &[Purpose],
        valid_from: Timestamp,
        valid_until: Option<Timestamp>,
        suite: Option<Cryptosuite>,
    ) -> Result<CredentialRecord, ServiceError> {
        let index_key = self.issued_credential_key(tenant, credential_id);
        if self.store.get(&index_key).await?.is_some() {
            return Err(ServiceError::conflict(
                ErrorCode::CredentialExists,
                "a credential with this id was already issued with status; give each credential its own id",
            ));
        }
        let id = CredentialId::uuid();
        let (mut revocation, mut suspension) = (None, None);
        let mut entries = Vec::with_capacity(purposes.len());
        for p in purposes {
            let (list, index) = self.stage_status_index(issuing, txn, tenant, *p, id.as_str()).await?;
            entries.push(status_list::entry(&self.status_list_url(tenant, *p, list), p.as_str(), index));
            let at = Some(StatusRef { list, index });
            match p {
                Purpose::Revocation => revocation = at,
                Purpose::Suspension => suspension = at,
            }
        }
        doc.insert("credentialStatus".into(), Value::Array(entries));
        let (vc, issuer_key_version) = self.sign_as_issuer(tenant, doc, suite).await?;
        let rec = CredentialRecord {
            v: 1,
            id: id.to_string(),
            kind: CredentialKind::Issued,
            agent: None,
            issued: self.clock.now(),
            valid_from,
            valid_until,
            issuer_key_version,
            revocation,
            suspension,
            revoked: false,
            suspended: false,
            principal: None,
            authority: None,
            vc,
        };
        let key = keys::credential(tenant, id.as_str());
        txn.require_absent(key.clone()).put(key, self.seal_record(tk, tenant, kind::CREDENTIAL, id.as_str(), &rec)?);
        txn.require_absent(index_key.clone()).put(index_key, id.as_str().as_bytes().to_vec());
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
}

/// The answer for a document the JSON-LD pipeline refused: always the caller's input.
pub(crate) fn jsonld_error(e: JsonLdError) -> ServiceError {
    let code = match e {
        JsonLdError::UnknownContext(_) => ErrorCode::UnknownContext,
        JsonLdError::TooComplex(_) => ErrorCode::JsonLdTooComplex,
        JsonLdError::ProtectedTermRedefinition => ErrorCode::InvalidRequest,
        JsonLdError::Invalid(_) => ErrorCode::InvalidJsonLd,
    };
    let detail = match e {
        // VC Data Model 2.0 §4.3 restates JSON-LD 1.1's protected terms for credentials.
        JsonLdError::ProtectedTermRedefinition => format!("{e} (VC Data Model 2.0 §4.3 Contexts)"),
        _ => e.to_string(),
    };
    ServiceError::Invalid { code, detail }
}
