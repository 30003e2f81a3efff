//! Sub-delegation chains as stored: the ancestors of a delegation (each one's record,
//! found through the parent its credential names), the index of a delegation's children,
//! and the revocation of every descendant staged in the same transaction as the revocation
//! of their ancestor, so that verifiers that only read status lists see it too.
//!
//! Must never: commit, or decide who may act (use cases do; the wallet fill and the
//! presentation path read chains through here).

use crate::ids::{AgentId, TenantId};
use crate::policy::MAX_DELEGATION_DEPTH;
use crate::service::kernel::issue::{StatusChange, status_change_bits};
use crate::service::kernel::status::BitChange;
use crate::service::model::records::{AgentState, CredentialRecord, kind};
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};
use crate::vc::chain::{parent_of, record_id};

/// The most children listed or revoked per delegation in one pass; far above any real
/// fan-out, it bounds a scan.
const MAX_CHILDREN: usize = 10_000;

/// One ancestor of a delegation and the state of the agent holding it.
#[derive(Debug, Clone)]
pub(crate) struct Ancestor {
    pub record: CredentialRecord,
    /// Whether the holding agent is active (not suspended or retired).
    pub agent_active: bool,
}

impl Sigil {
    /// The ancestors of `rec`, nearest first (empty for a root delegation). A missing
    /// ancestor is an error: a chain with a hole never grants.
    pub(crate) async fn ancestors(&self, t: &TenantId, rec: &CredentialRecord) -> Result<Vec<Ancestor>, ServiceError> {
        let mut out = Vec::new();
        let mut next = parent_of(&rec.vc);
        while let Some(p) = next {
            if out.len() >= usize::from(MAX_DELEGATION_DEPTH) {
                return Err(ServiceError::Internal("a delegation chain is deeper than the limit".into()));
            }
            let (record, _) = self.credential_record(t, record_id(&p.id)).await?;
            let agent_active = match record.agent.as_deref().map(AgentId::parse) {
                Some(Ok(a)) => self.agent_record(t, &a).await.map(|(r, _)| r.state == AgentState::Active).unwrap_or(false),
                _ => false,
            };
            next = parent_of(&record.vc);
            out.push(Ancestor { record, agent_active });
        }
        Ok(out)
    }

    /// The record ids of `parent`'s direct children.
    pub(crate) async fn child_ids(&self, t: &TenantId, parent: &str) -> Result<Vec<String>, ServiceError> {
        let prefix = keys::delegation_children(t, parent);
        let rows = self.store.scan(&prefix, None, MAX_CHILDREN).await?;
        Ok(rows.into_iter().filter_map(|(k, _)| k.get(prefix.len()..).and_then(|id| String::from_utf8(id.to_vec()).ok())).collect())
    }

    /// Stages the revocation of every descendant of `root` (not `root` itself): their
    /// records, compare-and-set on the bytes read. Answers the status bits to set, for the
    /// caller to stage with its own in one pass (bits of one page staged separately would
    /// overwrite each other), and the agents whose wallets the commit must evict.
    pub(crate) async fn stage_descendant_revocations(
        &self,
        txn: &mut Txn,
        t: &TenantId,
        root: &str,
    ) -> Result<(Vec<BitChange>, Vec<String>), ServiceError> {
        let tk = self.tenant_keys(t).await?;
        let mut frontier = vec![root.to_owned()];
        let mut out = Vec::new();
        let mut agents = Vec::new();
        // Depth-bounded: a chain is at most MAX_DELEGATION_DEPTH below its root.
        for _ in 0..=MAX_DELEGATION_DEPTH {
            let mut next = Vec::new();
            for parent in &frontier {
                for child in self.child_ids(t, parent).await? {
                    let (mut rec, old) = self.credential_record(t, &child).await?;
                    let bits = status_change_bits(&mut rec, StatusChange::Revoke)?;
                    if !bits.is_empty() {
                        out.extend(bits);
                        let key = keys::credential(t, &rec.id);
                        txn.require_equals(key.clone(), old).put(key, self.seal_record(&tk, t, kind::CREDENTIAL, &rec.id, &rec)?);
                        agents.extend(rec.agent.clone());
                    }
                    next.push(rec.id);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok((out, agents))
    }
}
