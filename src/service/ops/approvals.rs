//! Human approval (step-up), the decision side: approver tokens (optionally scoped to
//! named principals), listing and reading approval requests, approving (which signs the
//! `SigilApprovalCredential`) or denying them, the agent's view of its own requests, and
//! the tenant's approval settings (webhook URL, lifetime). The request side lives on the
//! presentation path (`ops::presentations`, `kernel::approval`).
//!
//! Must never: let an agent decide (its own request above all), let a token of another
//! tenant learn that an approval exists (404), let a principal-scoped approver decide for
//! another principal, decide twice, or decide after expiry.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::codes::ErrorCode;
use crate::crypto::AccessToken;
use crate::ids::{TenantId, TokenId};
pub use crate::service::kernel::approval::effective_status;
use crate::service::kernel::approval::{RETENTION_SECS, TTL_RANGE};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::kernel::webhook::url_host;
use crate::service::model::records::{ApprovalRecord, ApprovalSettings, ApprovalStatus, TokenRecord, TokenRole, kind};
use crate::service::{Caller, Role, ServiceError, Sigil};
use crate::store::{Txn, keys};

/// A new approver token (shown once).
pub struct ApproverTokenCreated {
    pub id: TokenId,
    pub token: AccessToken,
    pub expires: Option<Timestamp>,
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// The most approvals one listing answers.
pub const MAX_LISTED: usize = 500;

fn not_found() -> ServiceError {
    ServiceError::not_found(ErrorCode::ApprovalNotFound, "no such approval")
}

/// Whether housekeeping may delete an approval record now: [`RETENTION_SECS`] after its
/// expiry, whatever its status (a pending or approved one is expired by then, a decided
/// or used one is history the trail keeps).
fn purge_due(rec: &ApprovalRecord, now: Timestamp) -> bool {
    now.as_second() >= rec.expires.as_second().saturating_add(RETENTION_SECS)
}

fn principal_ok(p: &str) -> bool {
    !p.trim().is_empty() && p.chars().count() <= 200 && !p.chars().any(char::is_control)
}

impl Sigil {
    /// Creates an approver token for a tenant (admin only), deciding approvals under the
    /// delegations of `principals` (their identifiers; `None`: every principal). An empty
    /// list is refused: it must never silently mean "every principal".
    pub async fn create_approver_token(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        principals: Option<Vec<String>>,
        expires_in: Option<u64>,
    ) -> Result<ApproverTokenCreated, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        if principals.as_ref().is_some_and(|p| p.is_empty() || p.len() > 64 || !p.iter().all(|p| principal_ok(p))) {
            return Err(ServiceError::invalid(
                "principals, when given, must list 1–64 identifiers of 1–200 printable characters (omit it for every principal)",
            ));
        }
        let principals = principals.unwrap_or_default();
        let expires = match expires_in {
            None => None,
            Some(s) if (60..=31_536_000).contains(&s) => {
                Some(self.clock.now().checked_add(SignedDuration::from_secs(s as i64)).map_err(|e| ServiceError::Internal(e.to_string()))?)
            }
            Some(_) => return Err(ServiceError::invalid("expires_in must be between 60 seconds and 1 year")),
        };
        let mut minted = self.mint_token(TokenRole::Approver, None, expires);
        minted.record.principals = principals;
        let minted_ref = &minted;
        self.mutate(tenant, &actor(caller), || async move {
            let tk = self.tenant_keys(tenant).await?;
            let mut txn = Txn::new();
            self.stage_tenant_token(&mut txn, &tk, tenant, minted_ref)?;
            let event = Event::new(
                "token.created",
                json!({"token_id": minted_ref.id.to_string(), "role": TokenRole::Approver, "expires": expires,
                       "principals": minted_ref.record.principals}),
            );
            Ok(Attempt::commit(txn, event, Effects::none(), ()))
        })
        .await?;
        Ok(ApproverTokenCreated { id: minted.id, token: minted.token, expires })
    }

    /// The principals a deciding caller is limited to (`None`: all of them).
    async fn approver_scope(&self, caller: &Caller, tenant: &TenantId) -> Result<Option<Vec<String>>, ServiceError> {
        caller.require_approver(tenant)?;
        let Caller::Tenant { role: Role::Approver, token, .. } = caller else { return Ok(None) };
        let tk = self.tenant_keys(tenant).await?;
        let key = keys::token(tenant, token.as_str());
        let rec: Option<TokenRecord> = self.load_record(&tk, tenant, kind::TOKEN, token.as_str(), &key).await?;
        // A token deleted since it authenticated decides nothing.
        let rec = rec.ok_or(ServiceError::Unauthenticated)?;
        Ok(if rec.principals.is_empty() { None } else { Some(rec.principals) })
    }

    /// Lists the tenant's approval requests (newest first), optionally only those whose
    /// status (`pending`, `approved`, `denied`, `used`, `expired`) is `status`. An approver
    /// scoped to principals sees theirs only.
    pub async fn list_approvals(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        status: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<ApprovalRecord>, ServiceError> {
        const STATUSES: [&str; 5] = ["pending", "approved", "denied", "used", "expired"];
        if status.is_some_and(|s| !STATUSES.contains(&s)) {
            return Err(ServiceError::invalid("status must be one of pending, approved, denied, used, expired"));
        }
        let scope = self.approver_scope(caller, tenant).await?;
        let tk = self.tenant_keys(tenant).await?;
        let prefix = keys::approval(tenant, "");
        let now = self.clock.now();
        let mut out = Vec::new();
        let rows = self.store.scan(&prefix, None, 10 * MAX_LISTED).await?;
        crate::service::kernel::cache::pause::point("approvals.list", tenant.as_str()).await;
        for (k, blob) in rows {
            let id = k.strip_prefix(prefix.as_slice()).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or_default().to_owned();
            let rec: ApprovalRecord = match self.open_fresh(&tk, tenant, kind::APPROVAL, &id, &k, &blob).await {
                Ok(r) => r,
                // Decided, used or purged since the scan read it: read again (gone: skipped),
                // never a failure of the whole list.
                Err(ServiceError::Conflict { .. }) => match self.load_approval(tenant, &id).await {
                    Ok(Some(a)) => a.rec,
                    Ok(None) | Err(ServiceError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            };
            if status.is_some_and(|s| s != effective_status(&rec, now)) || scope.as_ref().is_some_and(|p| !p.contains(&rec.principal)) {
                continue;
            }
            out.push(rec);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        out.truncate(limit.map_or(50, |l| l.clamp(1, MAX_LISTED as u32) as usize));
        Ok(out)
    }

    /// One approval request, for a caller who may decide it.
    pub async fn get_approval(&self, caller: &Caller, tenant: &TenantId, id: &str) -> Result<ApprovalRecord, ServiceError> {
        let scope = self.approver_scope(caller, tenant).await?;
        let a = self.load_approval(tenant, id).await?.ok_or_else(not_found)?;
        if scope.as_ref().is_some_and(|p| !p.contains(&a.rec.principal)) {
            return Err(ServiceError::forbidden(ErrorCode::ApprovalOutOfScope, "this approver decides for other principals only"));
        }
        Ok(a.rec)
    }

    /// Approves or denies a pending approval request. Approving signs the approval
    /// credential (approver, time, request hash) with the tenant's issuer key.
    pub async fn decide_approval(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        decision: Decision,
    ) -> Result<ApprovalRecord, ServiceError> {
        let scope = self.approver_scope(caller, tenant).await?;
        let t = tenant;
        let scope = &scope;
        let approver = actor(caller);
        let approver_ref = &approver;
        let outcome = self
            .mutate(t, &approver, || async move {
                let a = self.load_approval(t, id).await?.ok_or_else(not_found)?;
                if scope.as_ref().is_some_and(|p| !p.contains(&a.rec.principal)) {
                    return Err(ServiceError::forbidden(ErrorCode::ApprovalOutOfScope, "this approver decides for other principals only"));
                }
                let now = self.clock.now();
                if a.rec.status != ApprovalStatus::Pending {
                    return Err(ServiceError::conflict(
                        ErrorCode::ApprovalDecided,
                        format!("the approval is already {}", effective_status(&a.rec, now)),
                    ));
                }
                if now >= a.rec.expires {
                    // Recorded, and answered 410 below: the trail shows who tried.
                    let event = Event::new("approval.expired", json!({"approval_id": a.rec.id, "expired": a.rec.expires}))
                        .agent(a.rec.agent.as_str());
                    return Ok(Attempt::commit(Txn::new(), event, Effects::none(), Err(a.rec)));
                }
                let mut rec = a.rec;
                rec.decided_by = Some(approver_ref.clone());
                rec.decided_at = Some(now);
                let kind_ = match decision {
                    Decision::Approve => {
                        rec.status = ApprovalStatus::Approved;
                        rec.vc = Some(self.sign_approval(t, &rec, approver_ref, now).await?);
                        "approval.approved"
                    }
                    Decision::Deny => {
                        rec.status = ApprovalStatus::Denied;
                        "approval.denied"
                    }
                };
                let tk = self.tenant_keys(t).await?;
                let key = keys::approval(t, &rec.id);
                let mut txn = Txn::new();
                txn.require_equals(key.clone(), a.stored)
                    .put(key, self.seal_record(&tk, t, kind::APPROVAL, &rec.id, &rec)?)
                    // Decided: no longer counted against the agent's open requests.
                    .delete(keys::approval_open(t, &rec.agent, &rec.id));
                let event = Event::new(
                    kind_,
                    json!({"approval_id": rec.id, "action": rec.action, "resource": rec.resource, "delegation": rec.delegation,
                           "principal": rec.principal, "request_hash": rec.request_hash}),
                )
                .agent(rec.agent.as_str());
                Ok(Attempt::commit(txn, event, Effects::none(), Ok(rec)))
            })
            .await?;
        outcome.map_err(|rec| ServiceError::Gone {
            code: ErrorCode::ApprovalExpired,
            detail: format!("approval {} expired at {}", rec.id, crate::clock::rfc3339(rec.expires)),
        })
    }

    /// The agent's view of one of its own approval requests (another agent's, or another
    /// tenant's, is not found).
    pub async fn approval_status(&self, caller: &Caller, id: &str) -> Result<ApprovalRecord, ServiceError> {
        let Caller::Agent { tenant, agent, .. } = caller else {
            return Err(ServiceError::forbidden(ErrorCode::NotAuthorized, "an agent asks about its own approvals with its token"));
        };
        let a = self.load_approval(tenant, id).await?.ok_or_else(not_found)?;
        if a.rec.agent != agent.as_str() {
            return Err(not_found());
        }
        Ok(a.rec)
    }

    /// Sets the tenant's approval settings (admin).
    pub async fn set_approval_settings(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        settings: ApprovalSettings,
    ) -> Result<ApprovalSettings, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        if let Some(url) = &settings.webhook_url {
            let (_, egress) = self.http.client();
            // Checked now for a clear answer (scheme, port, IP literal); names are checked
            // again at every delivery, when they resolve.
            // Quoting the host only: the answer must not echo a credential in the path.
            egress
                .check_url(url)
                .map_err(|e| ServiceError::invalid(format!("webhook_url: {}", e.to_string().replace(url.as_str(), &url_host(url)))))?;
        }
        if settings.ttl_secs.is_some_and(|s| !TTL_RANGE.contains(&s)) {
            return Err(ServiceError::invalid(format!("ttl_secs must be between {} and {}", TTL_RANGE.start(), TTL_RANGE.end())));
        }
        let t = tenant;
        let settings = &settings;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let k = keys::tenant_record(t);
            let blob = self.store.get(&k).await?.ok_or_else(ServiceError::tenant_not_found)?;
            let mut rec: crate::service::model::records::TenantRecord =
                self.open_fresh(&tk, t, kind::TENANT, t.as_str(), &k, &blob).await?;
            rec.approvals = Some(settings.clone()).filter(|s| *s != ApprovalSettings::default());
            let mut txn = Txn::new();
            txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::TENANT, t.as_str(), &rec)?);
            // The URL may carry the receiver's credential (path, query): the trail names its
            // host, and a keyed hash that shows whether it changed without revealing it.
            let webhook = settings.webhook_url.as_deref().map(|u| {
                json!({"host": url_host(u), "hash": format!("hmac-sha256:{}", hex::encode(self.keys.pepper.keyed_hash("webhook-url", u.as_bytes())))})
            });
            let event = Event::new("tenant.approval_settings_set", json!({"webhook": webhook, "ttl_secs": settings.ttl_secs}));
            Ok(Attempt::commit(txn, event, Effects::none(), settings.clone()))
        })
        .await
    }

    /// Housekeeping, one pass over every tenant: forgets the open-request entries of
    /// approvals past their expiry (bookkeeping, unaudited), and deletes approval records
    /// (with their index entry when it still names them) [`RETENTION_SECS`] after their
    /// expiry, whatever their status, in audited batches (`approval.purged`, through the
    /// mutation path). A record changed meanwhile is re-read by the batch's stage; one not
    /// yet due is kept. Returns how many records were deleted.
    pub async fn purge_old_approvals(&self) -> Result<usize, ServiceError> {
        const BATCH: usize = 200;
        let mut purged = 0;
        for (k, _) in self.store.scan(keys::TENANT_INDEX_PREFIX, None, 100_000).await? {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else { continue };
            let Ok(tenant) = TenantId::parse(t) else { continue };
            let t = &tenant;
            let now = self.clock.now();
            // Open-request entries past their expiry no longer count: gone now.
            let open = keys::approval_open_prefix(t, None);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = self.store.scan(&open, after.as_deref(), 1000).await?;
                let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
                let mut txn = Txn::new();
                for (k, v) in &rows {
                    if <[u8; 8]>::try_from(v.as_slice()).map(i64::from_be_bytes).unwrap_or(0) <= now.as_second() {
                        txn.require_equals(k.clone(), v.clone()).delete(k.clone());
                    }
                }
                if !txn.is_empty() {
                    // Skipped on conflict: a decision removed it meanwhile.
                    self.commit_unaudited(txn, Effects::none()).await?;
                }
                after = Some(last);
            }
            let tk = match self.tenant_keys(t).await {
                Ok(tk) => tk,
                Err(ServiceError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let prefix = keys::approval(t, "");
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = self.store.scan(&prefix, after.as_deref(), BATCH).await?;
                let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
                let mut due = Vec::new();
                for (k, blob) in &rows {
                    let id = k.strip_prefix(prefix.as_slice()).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or_default();
                    match self.open_fresh::<ApprovalRecord>(&tk, t, kind::APPROVAL, id, k, blob).await {
                        Ok(rec) if purge_due(&rec, now) => due.push(rec.id),
                        Ok(_) | Err(ServiceError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                after = Some(last);
                if due.is_empty() {
                    continue;
                }
                let due = &due;
                purged += self
                    .mutate(t, "system:housekeeping", || async move {
                        let now = self.clock.now();
                        let mut txn = Txn::new();
                        let mut ids = Vec::new();
                        for id in due {
                            // Read again on every attempt: a record changed meanwhile is
                            // judged as it is now.
                            let Some(a) = self.load_approval(t, id).await? else { continue };
                            if !purge_due(&a.rec, now) {
                                continue;
                            }
                            let key = keys::approval(t, id);
                            txn.require_equals(key.clone(), a.stored).delete(key).delete(keys::approval_open(t, &a.rec.agent, id));
                            let index = self.approval_index_key(t, &a.rec.request_hash);
                            // The index entry goes only while it still names this approval.
                            if let Some(named) = self.store.get(&index).await? {
                                if named == id.as_bytes() {
                                    txn.require_equals(index.clone(), named).delete(index);
                                }
                            }
                            ids.push(id.clone());
                        }
                        if ids.is_empty() {
                            return Ok(Attempt::Done(0));
                        }
                        let n = ids.len();
                        let event = Event::new("approval.purged", json!({"approval_ids": ids, "retention_secs": RETENTION_SECS}));
                        Ok(Attempt::commit(txn, event, Effects::none(), n))
                    })
                    .await?;
            }
        }
        Ok(purged)
    }

    /// The tenant's approval settings (admin or auditor). The webhook URL may embed the
    /// receiver's credential: only the tenant's admins read it whole, others its host.
    pub async fn approval_settings(&self, caller: &Caller, tenant: &TenantId) -> Result<ApprovalSettings, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let mut s = self.tenant_record(tenant).await?.approvals.unwrap_or_default();
        if !matches!(caller, Caller::Tenant { role: Role::Admin, .. }) {
            s.webhook_url = s.webhook_url.as_deref().map(url_host);
        }
        Ok(s)
    }
}
