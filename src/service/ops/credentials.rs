//! Credentials in agents' wallets: the identity credential issued with every agent,
//! delegated-authority credentials, wallet listing, and revoke / suspend / resume through
//! the tenant's status lists.

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{AgentState, CredentialRecord, kind};
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

pub use crate::service::kernel::issue::{NewDelegation, StatusChange, effective_status};

impl Sigil {
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
        let t = tenant;
        // Held from reading the issuer key to the commit (see `create_agent`).
        let _lock = self.agent_locks.read(t, agent).await;
        let new = &new;
        // Held from status-index allocation to the commit (not only while staging), so
        // issuances in this tenant take turns instead of failing on the list counters.
        let issuing = &self.issuing(t).await;
        self.mutate(t, &crate::service::kernel::journal::actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, old) = self.agent_record(tenant, agent).await?;
            if rec.state == AgentState::Retired {
                return Err(ServiceError::Gone { code: ErrorCode::AgentRetired, detail: "the agent is retired".into() });
            }
            let mut txn = Txn::new();
            let cred = self.stage_delegation(issuing, &mut txn, &tk, t, agent, valid_from, new).await?;
            rec.credential_ids.push(cred.id.clone());
            let key = keys::agent(t, agent.as_str());
            txn.require_equals(key.clone(), old).put(key, self.seal_record(&tk, t, kind::AGENT, agent.as_str(), &rec)?);
            let event = crate::service::kernel::journal::Event::new(
                "delegation.issued",
                serde_json::json!({"credential_id": cred.id, "actions": cred.authority.as_ref().map(|a| a.actions.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>()),
                    "principal_hash": cred.principal.as_ref().map(|p| hex::encode(self.keys.pepper.keyed_hash("principal", p.identifier.as_bytes())))}),
            )
            .agent(agent.as_str());
            let mut effects = Effects::none();
            effects.wallet(t, agent);
            Ok(Attempt::commit(txn, event, effects, cred))
        })
        .await
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
        self.wallet_records(tenant, &rec).await
    }

    /// One credential (the full VC), for admins and auditors.
    pub async fn get_credential(&self, caller: &Caller, tenant: &TenantId, id: &str) -> Result<CredentialRecord, ServiceError> {
        caller.require_tenant_read(tenant)?;
        Ok(self.credential_record(tenant, id).await?.0)
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
        self.change_status(&crate::service::kernel::journal::actor(caller), tenant, id, change).await
    }
}

/// The calling agent and each delegation in its wallet with today's budget; `now` is the
/// instant the effective statuses (`effective_status`) are to be read at.
#[derive(Debug, Clone)]
pub struct MyAuthority {
    pub agent: crate::service::model::records::AgentRecord,
    pub did: String,
    pub now: jiff::Timestamp,
    pub delegations: Vec<(CredentialRecord, BudgetView)>,
}

/// What a delegation spent on one day of its time zone, against its daily limit.
#[derive(Debug, Clone)]
pub struct BudgetView {
    /// The day, `YYYY-MM-DD`, in `time_zone`.
    pub day: String,
    /// The delegation's schedule time zone (UTC without a schedule).
    pub time_zone: String,
    /// The currency of the amount limit, if it has one.
    pub currency: Option<String>,
    /// `limits.amount.per_day`, if set.
    pub per_day: Option<rust_decimal::Decimal>,
    pub spent: rust_decimal::Decimal,
    /// `per_day - spent`, never below zero; `None` without a daily limit.
    pub remaining: Option<rust_decimal::Decimal>,
}

impl Sigil {
    /// A delegation's spend on `day` (default: today in its time zone) and what remains of
    /// its daily limit (admins and auditors).
    pub async fn delegation_budget(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        credential: &str,
        day: Option<jiff::civil::Date>,
    ) -> Result<BudgetView, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let (rec, _) = self.credential_record(tenant, credential).await?;
        self.budget_of(tenant, &rec, day).await
    }

    /// What the calling agent may do now: its own state and every delegation in its wallet
    /// (authority, validity, status, today's budget). Only an agent token, and only about
    /// itself: the same reads as the admin routes, without their tenant-read requirement.
    pub async fn my_authority(&self, caller: &Caller) -> Result<MyAuthority, ServiceError> {
        let Caller::Agent { tenant, agent, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "this needs an agent token"));
        };
        let (record, _) = self.agent_record(tenant, agent).await?;
        let now = self.clock.now();
        let mut delegations = Vec::new();
        for rec in self.wallet_records(tenant, &record).await? {
            if rec.kind != crate::service::model::records::CredentialKind::Delegation {
                continue;
            }
            let mut budget = self.budget_of(tenant, &rec, None).await?;
            // A sub-delegation's spending also counts against each ancestor's daily limit
            // (`kernel/chain_budget.rs`): what remains is the least any of them has left.
            for a in self.ancestors(tenant, &rec).await? {
                if let Some(left) = self.budget_of(tenant, &a.record, None).await?.remaining {
                    budget.remaining = Some(budget.remaining.map_or(left, |r| r.min(left)));
                }
            }
            delegations.push((rec, budget));
        }
        Ok(MyAuthority { did: self.agent_did(tenant, agent), agent: record, now, delegations })
    }

    /// [`Self::delegation_budget`] of a loaded credential, with no access check.
    async fn budget_of(
        &self,
        tenant: &TenantId,
        rec: &CredentialRecord,
        day: Option<jiff::civil::Date>,
    ) -> Result<BudgetView, ServiceError> {
        let credential = rec.id.as_str();
        // A credential without delegated authority (an identity credential) has no limit:
        // it answers with nothing spent and no daily limit.
        let authority = rec.authority.as_ref();
        let (tz_name, tz) = match authority.and_then(|a| a.schedule.as_ref()) {
            Some(s) => (s.timezone.clone(), s.tz.clone()),
            None => ("UTC".to_owned(), jiff::tz::TimeZone::UTC),
        };
        let day = day.unwrap_or_else(|| self.clock.now().to_zoned(tz).date()).to_string();
        let tk = self.tenant_keys(tenant).await?;
        let spent = self.budget_spent(&tk, tenant, credential, &day).await?.amount;
        let limit = authority.and_then(|a| a.limits.amount.as_ref());
        let per_day = limit.and_then(|l| l.per_day);
        Ok(BudgetView {
            day,
            time_zone: tz_name,
            currency: limit.map(|l| l.currency.clone()),
            per_day,
            spent,
            remaining: per_day.map(|p| (p - spent).max(rust_decimal::Decimal::ZERO)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Authority, Principal};
    use jiff::Timestamp;

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
        assert!(s.verify_credential(&t.id, &rec.vc, true).await.verified());
        clock.set("2026-06-01T12:00:00Z".parse().unwrap());
        let r = s.verify_credential(&t.id, &rec.vc, true).await;
        assert_eq!(r.codes(), vec!["expired"]);
        assert_eq!(effective_status(&rec, s.now()), "expired");
        // Moving the clock backwards would also make the cached status list "not yet
        // valid"; only the credential's own window is under test here.
        clock.set("2026-06-01T09:59:59Z".parse().unwrap());
        assert_eq!(s.verify_credential(&t.id, &rec.vc, false).await.codes(), vec!["not_yet_valid"]);
    }
}

#[cfg(test)]
mod skew_tests {
    use crate::clock::FixedClock;
    use crate::service::agents::NewAgent;
    use crate::service::testing;
    use crate::vc::verify::{CredentialOptions, verify_credential};
    use jiff::Timestamp;

    #[tokio::test]
    async fn a_status_list_signed_a_moment_after_verification_started_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-06-01T10:00:00.900Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let a = s.create_agent(&testing::admin(&t.id), &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let vc = s
            .credential_record(&crate::ids::TenantId::parse("acme").unwrap(), a.identity_credential_id.as_deref().unwrap())
            .await
            .unwrap()
            .0
            .vc;
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
        s.status_cache.invalidate(&crate::ids::TenantId::parse("acme").unwrap());
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
