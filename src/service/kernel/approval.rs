//! Human approval records: one sealed `approval` record per request for approval, found
//! by id or, for the request it covers, through a keyed-hash index (the latest approval
//! for that request). The presentation path asks [`Sigil::approval_gate`] whether a
//! request may be signed now; deciding signs the `SigilApprovalCredential`; using it is a
//! compare-and-set on the record's stored bytes in the same transaction as the grant's
//! audit entry ([`Sigil::stage_approval_use`]), so an approval is spent exactly once.
//!
//! Must never: let an approval cover another request than the one it names (the hash is
//! compared, not the action alone), be used after its expiry, or be used twice.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::ids::{AgentId, CredentialId, TenantId};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::model::records::{ApprovalRecord, ApprovalStatus, kind};
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};

/// How long an approval request stays open (and an approval usable) by default.
pub const DEFAULT_TTL_SECS: u64 = 900;
/// The shortest and longest lifetime a tenant may configure.
pub const TTL_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;
/// Open (pending, unexpired) approval requests one agent may have at once: an agent
/// varying its context cannot flood the store, the approvers' list or the webhook.
pub const MAX_OPEN_PER_AGENT: usize = 100;
/// How long a decided, used or expired approval record is kept after its expiry before
/// housekeeping deletes it (the trail keeps its history).
pub const RETENTION_SECS: i64 = 7 * 86_400;

/// An approval record as read, with its stored bytes (for the compare-and-set).
#[derive(Debug, Clone)]
pub(crate) struct StoredApproval {
    pub rec: ApprovalRecord,
    pub stored: Vec<u8>,
}

/// What the presentation path may do about a request that needs approval.
pub(crate) enum Gate {
    /// An approval for this exact request, approved and unexpired: sign, carrying it.
    Approved(StoredApproval),
    /// Waiting for a decision (an existing request, or one just made).
    Pending(ApprovalRecord),
    /// A human said no; it stands until the approval expires.
    Denied(ApprovalRecord),
}

/// What an approval asks, before it is stored.
pub(crate) struct Asked<'a> {
    pub agent: &'a AgentId,
    /// The delegation credential's record id.
    pub delegation: &'a str,
    pub principal: &'a str,
    pub request_hash: &'a str,
    pub action: &'a str,
    pub resource: Option<&'a str>,
    pub context: &'a Map<String, Value>,
}

/// Whether an approval id is well formed (a UUID as Sigil makes them): checked before any
/// store key is built from it.
pub fn valid_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().enumerate().all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// The effective status for callers: a pending or approved approval past its expiry is
/// `expired`.
pub fn effective_status(rec: &ApprovalRecord, now: Timestamp) -> &'static str {
    match rec.status {
        ApprovalStatus::Pending | ApprovalStatus::Approved if now >= rec.expires => "expired",
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Denied => "denied",
        ApprovalStatus::Used => "used",
    }
}

impl Sigil {
    /// The index key of the latest approval for `request_hash`: keyed, so the store's key
    /// space does not reveal (or let anyone test) what was asked.
    pub(crate) fn approval_index_key(&self, tenant: &TenantId, request_hash: &str) -> Vec<u8> {
        keys::approval_index(tenant, &hex::encode(self.keys.pepper.keyed_hash("approval-request", request_hash.as_bytes())))
    }

    /// An approval by id (`None`: no such approval in this tenant).
    pub(crate) async fn load_approval(&self, tenant: &TenantId, id: &str) -> Result<Option<StoredApproval>, ServiceError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let tk = self.tenant_keys(tenant).await?;
        let key = keys::approval(tenant, id);
        let Some(stored) = self.fresh_blob(tenant, &key).await? else { return Ok(None) };
        let rec: ApprovalRecord = self.open_fresh(&tk, tenant, kind::APPROVAL, id, &key, &stored).await?;
        Ok(Some(StoredApproval { rec, stored }))
    }

    /// The tenant's approval lifetime, seconds.
    pub(crate) async fn approval_ttl(&self, tenant: &TenantId) -> Result<u64, ServiceError> {
        Ok(self.tenant_record(tenant).await?.approvals.and_then(|a| a.ttl_secs).unwrap_or(DEFAULT_TTL_SECS))
    }

    /// Where a request that needs approval stands: approved (sign it), pending (an open
    /// request, or a new one made now and announced) or denied. Called without the
    /// agent's lock held (making a request commits).
    pub(crate) async fn approval_gate(&self, caller: &Caller, tenant: &TenantId, asked: Asked<'_>) -> Result<Gate, ServiceError> {
        let t = tenant;
        let now = self.clock.now();
        let latest = match self.store.get(&self.approval_index_key(t, asked.request_hash)).await? {
            Some(id) => self.load_approval(t, std::str::from_utf8(&id).unwrap_or_default()).await?,
            None => None,
        };
        // The hash is what the index is keyed by; checked again so that an index entry
        // can never lend one request's approval to another.
        let latest = latest.filter(|a| a.rec.request_hash == asked.request_hash && a.rec.agent == asked.agent.as_str());
        match latest {
            Some(a) if now < a.rec.expires => match a.rec.status {
                ApprovalStatus::Approved => return Ok(Gate::Approved(a)),
                ApprovalStatus::Pending => return Ok(Gate::Pending(a.rec)),
                ApprovalStatus::Denied => return Ok(Gate::Denied(a.rec)),
                // Used: the next identical request needs a new approval.
                ApprovalStatus::Used => {}
            },
            _ => {}
        }
        let ttl = self.approval_ttl(t).await?;
        let expires = now.checked_add(SignedDuration::from_secs(ttl as i64)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let rec = ApprovalRecord {
            v: 1,
            id: CredentialId::uuid().to_string(),
            agent: asked.agent.to_string(),
            delegation: asked.delegation.to_owned(),
            principal: asked.principal.to_owned(),
            request_hash: asked.request_hash.to_owned(),
            action: asked.action.to_owned(),
            resource: asked.resource.map(str::to_owned),
            context: asked.context.clone(),
            status: ApprovalStatus::Pending,
            created: now,
            expires,
            decided_by: None,
            decided_at: None,
            used_at: None,
            vc: None,
        };
        let index = self.approval_index_key(t, asked.request_hash);
        let open_prefix = keys::approval_open_prefix(t, Some(asked.agent.as_str()));
        let open_key = keys::approval_open(t, asked.agent.as_str(), &rec.id);
        let (rec_ref, index_ref, open_prefix, open_key) = (&rec, &index, &open_prefix, &open_key);
        let replaced = &latest_id(&self.store.get(&index).await?);
        let made = self
            .mutate(t, &actor(caller), || async move {
                let tk = self.tenant_keys(t).await?;
                let key = keys::approval(t, &rec_ref.id);
                // Two identical requests at once: the second finds the first's index
                // entry changed and answers the first's approval on its next attempt.
                let current = self.store.get(index_ref).await?;
                if latest_id(&current) != *replaced {
                    return Ok(Attempt::Done(false));
                }
                // The cap on open requests: entries whose expiry passed do not count (they
                // wait for housekeeping). Two requests at once may both pass it by one: the
                // bound is on flooding, not an exact count.
                let open = self.store.scan(open_prefix, None, MAX_OPEN_PER_AGENT * 4).await?;
                let now_s = now.as_second();
                let live =
                    open.iter().filter(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).map(i64::from_be_bytes).unwrap_or(0) > now_s).count();
                if live >= MAX_OPEN_PER_AGENT {
                    return Err(ServiceError::TooManyRequests {
                        code: ErrorCode::TooManyOpenApprovals,
                        detail: format!(
                            "the agent has {MAX_OPEN_PER_AGENT} approval requests open (pending, unexpired): wait for decisions or expiry"
                        ),
                    });
                }
                let mut txn = Txn::new();
                match current {
                    Some(b) => txn.require_equals(index_ref.clone(), b),
                    None => txn.require_absent(index_ref.clone()),
                };
                txn.require_absent(key.clone())
                    .put(key, self.seal_record(&tk, t, kind::APPROVAL, &rec_ref.id, rec_ref)?)
                    .put(index_ref.clone(), rec_ref.id.clone().into_bytes())
                    .put(open_key.clone(), rec_ref.expires.as_second().to_be_bytes().to_vec());
                let event = Event::new(
                    "approval.requested",
                    json!({"approval_id": rec_ref.id, "action": rec_ref.action, "resource": rec_ref.resource,
                           "delegation": rec_ref.delegation, "expires": rec_ref.expires, "replaces": replaced}),
                )
                .agent(rec_ref.agent.as_str());
                Ok(Attempt::commit(txn, event, Effects::none(), true))
            })
            .await?;
        if !made {
            let id = latest_id(&self.store.get(&index).await?).unwrap_or_default();
            return match self.load_approval(t, &id).await? {
                Some(a) if a.rec.status == ApprovalStatus::Approved => Ok(Gate::Approved(a)),
                Some(a) if a.rec.status == ApprovalStatus::Denied => Ok(Gate::Denied(a.rec)),
                Some(a) => Ok(Gate::Pending(a.rec)),
                None => Err(ServiceError::conflict(ErrorCode::WriteConflict, "the approval request changed meanwhile; retry")),
            };
        }
        self.announce_approval(t, &rec).await;
        Ok(Gate::Pending(rec))
    }

    /// Adds to `txn` the use of approval `id`: read again, still approved, unexpired and
    /// carrying `vc`, then rewritten as used, compare-and-set on its stored bytes.
    pub(crate) async fn stage_approval_use(
        &self,
        tk: &TenantKeys,
        txn: &mut Txn,
        tenant: &TenantId,
        id: &str,
        vc: &Value,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let Some(a) = self.load_approval(tenant, id).await? else {
            return Err(ServiceError::not_found(ErrorCode::ApprovalNotFound, "the approval is gone"));
        };
        if a.rec.status != ApprovalStatus::Approved || a.rec.vc.as_ref() != Some(vc) {
            return Err(ServiceError::conflict(ErrorCode::ApprovalDecided, "the approval was already used"));
        }
        if now >= a.rec.expires {
            return Err(ServiceError::Gone { code: ErrorCode::ApprovalExpired, detail: "the approval expired before it was used".into() });
        }
        let mut rec = a.rec;
        rec.status = ApprovalStatus::Used;
        rec.used_at = Some(now);
        let key = keys::approval(tenant, id);
        txn.require_equals(key.clone(), a.stored).put(key, self.seal_record(tk, tenant, kind::APPROVAL, id, &rec)?);
        Ok(())
    }

    /// Signs the approval credential for `rec`, approved by `approver` (a token id) now.
    pub(crate) async fn sign_approval(
        &self,
        tenant: &TenantId,
        rec: &ApprovalRecord,
        approver: &str,
        now: Timestamp,
    ) -> Result<Value, ServiceError> {
        let agent = AgentId::parse(&rec.agent).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let holder = self.agent_did(tenant, &agent);
        let issuer = self.tenant_did(tenant);
        let ctx = crate::vc::credential::context_url(self.settings.public_url.base());
        let delegation = format!("urn:uuid:{}", rec.delegation);
        // Usable until the approval expires; a presentation made at the last moment still
        // verifies for its own lifetime.
        let until = rec
            .expires
            .checked_add(SignedDuration::from_secs(self.settings.max_presentation_ttl as i64))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (approved_at, valid_until) = (rfc3339(now), rfc3339(until));
        let doc = crate::vc::approval::NewApproval {
            id: &rec.id,
            issuer: &issuer,
            context_url: &ctx,
            holder: &holder,
            delegation: &delegation,
            request_hash: &rec.request_hash,
            approver,
            approved_at: &approved_at,
            valid_until: &valid_until,
        }
        .document();
        Ok(self.sign_as_issuer(tenant, doc, None).await?.0)
    }
}

fn latest_id(stored: &Option<Vec<u8>>) -> Option<String> {
    stored.as_ref().and_then(|b| String::from_utf8(b.clone()).ok())
}
