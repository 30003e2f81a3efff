//! `POST /v1/verify` and the VC-API presentation route: the shared presentation verifier
//! plus a durable one-time store of challenges, so a verified presentation cannot be
//! replayed within its lifetime.

use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::resolver::LocalFirst;
use super::{ServiceError, Sigil};
use crate::store::{StoreError, Txn, keys};
use crate::vc::presentation::{PresentationOptions, PresentationReport, verify_presentation};
use crate::vc::verify::Check;

impl Sigil {
    /// Verifies a presentation and consumes its challenge.
    pub async fn verify_presentation(&self, presentation: &Value, opts: PresentationOptions) -> Result<PresentationReport, ServiceError> {
        let now = self.clock.now();
        let mut out = verify_presentation(presentation, &opts, &LocalFirst { sigil: self }, now).await;
        if !out.verified() {
            return Ok(out);
        }
        // One-time use: (holder, challenge) is recorded until the proof expires.
        // Only a verifier that names the challenge it issued consumes it; otherwise anyone
        // holding a presentation could spend its challenge before the intended verifier.
        if opts.challenge.is_none() {
            out.report.push(Check::pass("replay", "not tracked: no expected challenge was given"));
            return Ok(out);
        }
        let (Some(holder), Some(challenge), Some(expires)) = (&out.holder, &out.challenge, out.expires) else {
            return Ok(out);
        };
        let mut h = Sha256::new();
        h.update(holder.as_bytes());
        h.update([0]);
        h.update(challenge.as_bytes());
        let key = keys::replay(&hex::encode(h.finalize()));
        if self.store.insert_new(key, expires.as_second().to_be_bytes().to_vec()).await? {
            out.report.push(Check::pass("replay", "challenge used for the first time"));
        } else {
            out.report.push(Check::fail("replay", "replayed", "this challenge was already used with this holder"));
        }
        Ok(out)
    }

    /// Deletes one-time challenge records whose proofs have expired. Returns how many.
    pub async fn purge_expired_challenges(&self, now: Timestamp) -> Result<usize, ServiceError> {
        let mut purged = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.store.scan(keys::REPLAY_PREFIX, after.as_deref(), 1000).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            let mut txn = Txn::new();
            for (k, v) in &rows {
                let exp = <[u8; 8]>::try_from(v.as_slice()).map(i64::from_be_bytes).unwrap_or(0);
                if exp <= now.as_second() {
                    txn.require_equals(k.clone(), v.clone()).delete(k.clone());
                    purged += 1;
                }
            }
            if !txn.is_empty() {
                // A concurrent identical purge is harmless; skip this batch on conflict.
                match self.store.commit(txn).await {
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            after = Some(last);
        }
        Ok(purged)
    }
}
