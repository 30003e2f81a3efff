//! Sub-delegation: an agent holding a delegation that allows it (`delegable`) delegates a
//! subset to another agent of its tenant. The tenant's issuer key signs the child (agents
//! never issue credentials); the child names its parent (id and digest) and its depth, and
//! must narrow the parent by [`crate::policy::narrows`], the same rule every verifier
//! applies to every link. Admins list a delegation's children.
//!
//! Must never: issue a child under a parent that is not the caller's, not active, or whose
//! own chain is not active; or issue one that does not narrow.

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId};
use crate::policy::{Authority, Link, narrows};
use crate::service::kernel::issue::effective_status;
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{AgentState, CredentialKind, CredentialRecord, kind};
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};
use crate::vc::chain::{ParentRef, depth_of, digest, link_subject};
use crate::vc::credential;

/// A sub-delegation an agent asks for.
#[derive(Debug, Clone)]
pub struct NewSubDelegation {
    /// The agent receiving it (same tenant, active, not the caller).
    pub to: AgentId,
    /// The record id of the caller's delegation to narrow.
    pub parent: String,
    pub authority: Authority,
    /// Default: now.
    pub valid_from: Option<jiff::Timestamp>,
    /// Default: the parent's end.
    pub valid_until: Option<jiff::Timestamp>,
}

fn not_narrower(e: crate::policy::NotNarrower) -> ServiceError {
    ServiceError::Invalid {
        code: ErrorCode::DelegationNotNarrower,
        detail: format!("the sub-delegation is not narrower than its parent ({e})"),
    }
}

impl Sigil {
    /// `POST /v1/agent/delegations`: issues a child of the caller's delegation `parent` into
    /// the wallet of agent `to`.
    pub async fn subdelegate(&self, caller: &Caller, new: NewSubDelegation) -> Result<CredentialRecord, ServiceError> {
        let Caller::Agent { tenant, agent: from, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "sub-delegations are requested with an agent token"));
        };
        let t = tenant;
        if new.to == *from {
            return Err(ServiceError::invalid("a sub-delegation goes to another agent"));
        }
        let not_found = || ServiceError::not_found(ErrorCode::CredentialNotFound, "no such delegation in the calling agent's wallet");
        let now = self.clock.now();
        // Held from reading the issuer key to the commit (as `issue_delegation`); the
        // receiving agent's lock, so its retirement or key change waits.
        let _lock = self.agent_locks.read(t, &new.to).await;
        let new = &new;
        let issuing = &self.issuing(t).await;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (caller_rec, _) = self.agent_record(t, from).await?;
            if caller_rec.state != AgentState::Active {
                return Err(ServiceError::forbidden(ErrorCode::AgentSuspended, "the calling agent is not active"));
            }
            let (parent, _) = self.credential_record(t, &new.parent).await.map_err(|_| not_found())?;
            if parent.kind != CredentialKind::Delegation || parent.agent.as_deref() != Some(from.as_str()) {
                return Err(not_found());
            }
            let refuse = |status: &str| {
                let code = match status {
                    "revoked" => ErrorCode::CredentialRevoked,
                    "suspended" => ErrorCode::CredentialSuspended,
                    "expired" => ErrorCode::CredentialExpired,
                    _ => ErrorCode::CredentialNotYetValid,
                };
                Err(ServiceError::conflict(code, format!("the parent delegation (or one of its ancestors) is {status}")))
            };
            match effective_status(&parent, now) {
                "active" => {}
                s => return refuse(s),
            }
            for a in self.ancestors(t, &parent).await? {
                match effective_status(&a.record, now) {
                    "active" if a.agent_active => {}
                    "active" => return refuse("suspended"),
                    s => return refuse(s),
                }
            }
            let (Some(p_principal), Some(p_authority)) = (&parent.principal, &parent.authority) else {
                return Err(not_found());
            };
            let p_depth = depth_of(&parent.vc).ok_or_else(|| ServiceError::Internal("a stored delegation has a bad depth".into()))?;
            let valid_from = new.valid_from.unwrap_or(now).max(now);
            let valid_until = new.valid_until.or(parent.valid_until);
            if valid_until.is_some_and(|u| u <= valid_from) {
                return Err(ServiceError::invalid("valid_until must be later than valid_from and than now"));
            }
            let p_link = Link {
                principal: p_principal,
                authority: p_authority,
                valid_from: parent.valid_from,
                valid_until: parent.valid_until,
                depth: p_depth,
            };
            // A child asks for approval wherever its parent does: absent a rule of its own,
            // it inherits the parent's (a stricter one is checked by `narrows`).
            let authority = match &new.authority.approval {
                Some(_) => new.authority.clone(),
                None => new.authority.clone().with_approval(p_authority.approval.clone()),
            };
            let c_link = Link { authority: &authority, valid_from, valid_until, depth: p_depth.saturating_add(1), ..p_link };
            narrows(&p_link, &c_link).map_err(not_narrower)?;
            let (mut to_rec, to_old) = self
                .agent_record(t, &new.to)
                .await
                .map_err(|_| ServiceError::not_found(ErrorCode::AgentNotFound, "no such agent in the calling agent's tenant"))?;
            match to_rec.state {
                AgentState::Active => {}
                AgentState::Retired => {
                    return Err(ServiceError::Gone { code: ErrorCode::AgentRetired, detail: "the receiving agent is retired".into() });
                }
                _ => return Err(ServiceError::conflict(ErrorCode::AgentSuspended, "the receiving agent is suspended")),
            }
            let link = ParentRef {
                id: parent.vc.get("id").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned(),
                digest: digest(&parent.vc).ok_or_else(|| ServiceError::Internal("a stored delegation cannot be digested".into()))?,
            };
            let did = self.agent_did(t, &new.to);
            let depth = c_link.depth;
            let mut txn = Txn::new();
            let cred = self
                .stage_credential(
                    issuing,
                    &mut txn,
                    &tk,
                    t,
                    Some(&new.to),
                    CredentialKind::Delegation,
                    valid_from,
                    valid_until,
                    |env| {
                        let mut doc = credential::delegation(env, &did, p_principal, &authority)
                            .map_err(|e| ServiceError::Internal(e.to_string()))?;
                        link_subject(&mut doc, &link, depth);
                        Ok(doc)
                    },
                    Some(p_principal.clone()),
                    Some(authority.clone()),
                )
                .await?;
            to_rec.credential_ids.push(cred.id.clone());
            let key = keys::agent(t, new.to.as_str());
            txn.require_equals(key.clone(), to_old).put(key, self.seal_record(&tk, t, kind::AGENT, new.to.as_str(), &to_rec)?);
            let index = keys::delegation_child(t, &parent.id, &cred.id);
            txn.require_absent(index.clone()).put(index, Vec::new());
            let event = Event::new(
                "delegation.subdelegated",
                serde_json::json!({"parent": parent.id, "child": cred.id, "from_agent": from.as_str(), "to_agent": new.to.as_str(),
                    "depth": depth, "actions": authority.actions.iter().map(|a| a.as_str().to_owned()).collect::<Vec<_>>()}),
            )
            .agent(from.as_str());
            let mut effects = Effects::none();
            effects.wallet(t, &new.to);
            Ok(Attempt::commit(txn, event, effects, cred))
        })
        .await
    }

    /// The direct children of a delegation (tenant admins and auditors).
    pub async fn delegation_children(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        credential: &str,
    ) -> Result<Vec<CredentialRecord>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let (parent, _) = self.credential_record(tenant, credential).await?;
        let mut out = Vec::new();
        for id in self.child_ids(tenant, &parent.id).await? {
            out.push(self.credential_record(tenant, &id).await?.0);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::ids::TokenId;
    use crate::policy::{Delegable, Principal, PrincipalKind};
    use crate::service::agents::NewAgent;
    use crate::service::credentials::NewDelegation;
    use crate::service::presentations::{Format, PresentationRequest};
    use crate::service::testing;
    use crate::vc::proof::{self, ProofOptions};

    fn authority(resources: &[&str], delegable: Option<u8>) -> Authority {
        Authority::new(
            &["refunds:create".to_owned()],
            &resources.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            Default::default(),
            None,
        )
        .unwrap()
        .with_delegable(delegable.map(|d| Delegable::new(d).unwrap()))
    }

    /// A presentation whose action only an ancestor covers does not verify, even signed by
    /// the holder's own key: ancestors are checked, never granting.
    #[tokio::test]
    async fn an_ancestors_authority_never_grants_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-06-10T10:00:00Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "a".into(), ..Default::default() }).await.unwrap();
        let b = s.create_agent(&admin, &t.id, NewAgent { name: "b".into(), ..Default::default() }).await.unwrap();
        let root = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority: authority(&["orders/**"], Some(1)),
            valid_from: None,
            valid_until: "2027-01-01T00:00:00Z".parse().unwrap(),
        };
        let root = s.issue_delegation(&admin, &t.id, &a.id, root).await.unwrap();
        let as_agent = |id: &AgentId| Caller::Agent { tenant: t.id.clone(), agent: id.clone(), token: TokenId::random() };
        let new = NewSubDelegation {
            to: b.id.clone(),
            parent: root.id.clone(),
            authority: authority(&["orders/123"], None),
            valid_from: None,
            valid_until: None,
        };
        s.subdelegate(&as_agent(&a.id), new).await.unwrap();
        let req = PresentationRequest {
            action: "refunds:create".into(),
            resource: Some("orders/123".into()),
            context: Default::default(),
            challenge: "c1".into(),
            domain: "shop.example".into(),
            format: Format::LdpVp,
            expires_in: Some(60),
        };
        let p = s.present(&as_agent(&b.id), req).await.unwrap();
        let expect =
            |c: &str| crate::service::Expectation { challenge: Some(c.into()), domain: Some("shop.example".into()), ..Default::default() };
        // The same presentation bound to `orders/999` (the root covers it, the leaf does
        // not), re-signed with the holder's own key.
        let mut doc = p.document();
        doc["action"]["resource"] = "orders/999".into();
        doc["proof"]["challenge"] = "c2".into();
        let old = doc["proof"].clone();
        let wallet = s.wallet(&t.id, &b.id).await.unwrap();
        let opts = ProofOptions {
            cryptosuite: Default::default(),
            verification_method: old["verificationMethod"].as_str().unwrap().to_owned(),
            proof_purpose: "authentication",
            created: old["created"].as_str().unwrap().to_owned(),
            expires: old["expires"].as_str().map(str::to_owned),
            challenge: Some("c2".into()),
            domain: Some("shop.example".into()),
        };
        let forged = proof::sign(doc.as_object().unwrap().clone(), &opts, &wallet.signer).unwrap();
        let r = s.verify_presentation(&forged, expect("c2")).await.unwrap();
        assert_eq!(r.report.codes(), vec!["resource_not_allowed"], "{:?}", r.report.errors());
        // The genuine one verifies.
        assert!(s.verify_presentation(&p.document(), expect("c1")).await.unwrap().verified());
    }
}
