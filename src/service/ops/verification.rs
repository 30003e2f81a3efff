//! `POST /v1/verify` and the VC-API presentation route: the shared presentation verifier
//! plus a one-time store of challenges, so a verified presentation cannot be replayed
//! within its lifetime, not even across a crash.
//!
//! Why a lease: waiting for each challenge's `fdatasync` cost about a third of verify
//! throughput (0.36 × against 0.50–0.53 × of the three-signature ceiling without the
//! wait). Yet the claim only has to outlive a crash in its *effect*: that presentation
//! must never verify again. So the server keeps a durable lease, an instant a little
//! ahead of the clock (`meta/challenge-lease`, renewed every second or so by a request
//! that waits for it). A presentation created before the durable lease end has its
//! challenge claimed without waiting; the claim is visible at once and reaches the disk
//! with the next group commit. A clean stop makes everything durable and closes the
//! lease. If the lease is still open at the next start, the stop was unclean and some
//! claims may be lost, but every one of them belongs to a presentation created before the
//! lease end. That end becomes the *floor*: presentations created before it are refused,
//! and the floor stays in the record for good (later clean stops keep it), since those
//! presentations may live longer than one run. Start-up waits until the floor has passed
//! (at most [`FLOOR_REACH`]), so presentations made after a restart verify as usual.
//! A presentation without `created`, or created after the lease end (a clock ahead of
//! ours), waits for its claim as before. A restore from a backup sets the floor to the
//! time of the restore: challenges spent after the backup was taken are not in it. (A
//! presentation without `created` cannot be placed against a floor; after a restore it
//! is the one case left uncovered, see docs/ARCHITECTURE.md.)

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::TenantId;
use crate::service::kernel::resolver::LocalFirst;
use crate::service::{ServiceError, Sigil};
use crate::store::{Txn, keys};
use crate::vc::presentation::{PresentationOptions, PresentationReport, Profile, verify_presentation_in};
use crate::vc::trust::TrustPolicy;
use crate::vc::verify::{Check, TrustMode};

/// How far past the clock a renewed lease reaches, in milliseconds.
const LEASE_MS: i64 = 2_000;
/// A lease is renewed once less than this remains.
const RENEW_MS: i64 = 1_000;
/// How far ahead of the clock a floor can be right after an unclean stop: the lease plus
/// the rounding up to a whole second. A floor further ahead means the clock stepped back.
pub const FLOOR_REACH: jiff::SignedDuration = jiff::SignedDuration::from_millis(LEASE_MS + 1_000);

/// The challenge lease (see the module docs). Times are milliseconds since the epoch.
/// Stored as `floor | lease end` (two i64, big-endian), the end `i64::MIN` once closed.
#[derive(Debug)]
pub(crate) struct ChallengeLease {
    /// Presentations created before this are refused: an unclean stop may have lost their
    /// claims. `i64::MIN` if no run ever stopped uncleanly.
    floor: AtomicI64,
    /// The durable lease end: a presentation created before it is claimed without waiting.
    until: AtomicI64,
    renewing: AtomicBool,
}

impl Default for ChallengeLease {
    fn default() -> Self {
        Self { floor: AtomicI64::new(i64::MIN), until: AtomicI64::new(i64::MIN), renewing: AtomicBool::new(false) }
    }
}

/// `ms` rounded up to a whole second. Lease ends and floors fall on whole seconds because
/// `created` is usually given to the second: a floor between two seconds would refuse
/// presentations made in the second that follows it, even after start-up waited for it.
fn whole_second(ms: i64) -> i64 {
    ms.saturating_add(999).div_euclid(1000).saturating_mul(1000)
}

/// The stored lease record: `floor | end`.
fn lease_record(floor: i64, end: i64) -> Vec<u8> {
    [floor.to_be_bytes(), end.to_be_bytes()].concat()
}

/// The floor a stored lease record sets: its own, or its end if it was left open.
fn lease_floor(record: &[u8]) -> Option<i64> {
    let half = |r: std::ops::Range<usize>| record.get(r).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes);
    match (half(0..8), half(8..16), record.len()) {
        (Some(floor), Some(end), 16) => Some(floor.max(end)),
        _ => None,
    }
}

/// The lease record for a store restored from a backup at `now`. Challenges used after the
/// backup was taken are not in it, so every presentation created before the restore is
/// refused, as after an unclean stop.
pub fn restored_lease_record(backup: Option<&[u8]>, now: Timestamp) -> Vec<u8> {
    let floor = backup.and_then(lease_floor).unwrap_or(i64::MIN).max(whole_second(now.as_millisecond()));
    lease_record(floor, i64::MIN)
}

/// The one-time key of a verified proof: its holder, domain and challenge, each length-
/// prefixed (a proof's domain and challenge are untrusted text), under a version label.
/// The domain is part of it so that two verifiers that happen to issue the same challenge
/// to one holder do not spend each other's presentations (a presentation made for one
/// domain and verified there could otherwise burn another verifier's challenge).
fn replay_hash(holder: &str, domain: Option<&str>, challenge: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sigil/replay/v2");
    for field in [Some(holder), domain, Some(challenge)] {
        match field {
            Some(f) => {
                h.update([1]);
                h.update((f.len() as u64).to_be_bytes());
                h.update(f.as_bytes());
            }
            None => h.update([0]),
        }
    }
    hex::encode(h.finalize())
}

/// The key claims had before the domain was part of it: (holder, challenge). Still
/// consulted, so a presentation verified just before an upgrade is not verified again
/// after it; such claims expire with their proofs (at most `--max-presentation-ttl`), so
/// this lookup can go a release later.
fn legacy_replay_hash(holder: &str, challenge: &str) -> String {
    let mut h = Sha256::new();
    h.update(holder.as_bytes());
    h.update([0]);
    h.update(challenge.as_bytes());
    hex::encode(h.finalize())
}

/// A renewal in progress; at most one at a time. Dropping it without [`Renewal::done`]
/// (an error, a dropped request) lets the next request try again.
struct Renewal<'a> {
    lease: &'a ChallengeLease,
    until: i64,
}

impl ChallengeLease {
    fn begin_renewal(&self, now: i64) -> Option<Renewal<'_>> {
        let until = self.until.load(Ordering::Acquire);
        if until.saturating_sub(now) >= RENEW_MS || self.renewing.swap(true, Ordering::AcqRel) {
            return None;
        }
        // Never below what was already promised (a clock stepped back) or the floor.
        let end = whole_second(now.saturating_add(LEASE_MS));
        let new = end.max(until).max(self.floor.load(Ordering::Acquire));
        Some(Renewal { lease: self, until: new })
    }
}

impl Renewal<'_> {
    /// The new end is durable: later claims may rely on it.
    fn done(self) {
        self.lease.until.fetch_max(self.until, Ordering::AcqRel);
    }
}

impl Drop for Renewal<'_> {
    fn drop(&mut self) {
        self.lease.renewing.store(false, Ordering::Release);
    }
}

/// What a verifier expects of a presentation on Sigil's own verify route.
#[derive(Debug, Clone, Default)]
pub struct Expectation {
    /// The challenge the verifier issued (spent once verified).
    pub challenge: Option<String>,
    pub domain: Option<String>,
    /// `{action, resource?, context?}` the verifier is about to allow.
    pub action: Option<Value>,
    /// Narrows whom to trust to these issuers; never widens the deployment's policy.
    pub trusted_issuers: Option<Vec<String>>,
}

impl Sigil {
    /// The trust policy of `/v1/verify`: this deployment's tenants and the configured
    /// issuers, narrowed by the request when it asks.
    pub fn verify_trust(&self, narrowed_to: Option<&[String]>) -> TrustPolicy {
        match narrowed_to {
            Some(issuers) => self.verify_trust.narrowed_to(issuers),
            None => self.verify_trust.clone(),
        }
    }

    /// The longest proof lifetime Sigil issues and accepts: a verified challenge is
    /// remembered until its proof expires, so this bounds how long that record lives.
    fn max_presentation_ttl(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(i64::try_from(self.settings.max_presentation_ttl).unwrap_or(i64::MAX))
    }

    /// `POST /v1/verify`: verifies a presentation under the deployment's trust policy,
    /// refuses lifetimes beyond `--max-presentation-ttl` (the replay row lives that long),
    /// and consumes its challenge.
    pub async fn verify_presentation(&self, presentation: &Value, expect: Expectation) -> Result<PresentationReport, ServiceError> {
        let opts = PresentationOptions {
            challenge: expect.challenge,
            domain: expect.domain,
            action: expect.action,
            skip_status: false,
            trust: self.verify_trust(expect.trusted_issuers.as_deref()),
            max_ttl: Some(self.max_presentation_ttl()),
        };
        self.verify_and_spend(presentation, opts, TrustMode::Enforce, Profile::ActionBound).await
    }

    /// The W3C VC-API presentation route: any VC 2.0 presentation ([`Profile::Generic`]:
    /// holder binding as VC Data Model 2.0 §4.13 states it, challenge and domain checked
    /// when asked, no action); proofs, status, validity and (unless `--vc-api-trust
    /// advisory`) a trusted issuer decide `verified`.
    pub async fn vc_api_verify_presentation(
        &self,
        tenant: &TenantId,
        presentation: &Value,
        challenge: Option<String>,
        domain: Option<String>,
    ) -> Result<PresentationReport, ServiceError> {
        let opts = PresentationOptions {
            challenge,
            domain,
            max_ttl: Some(self.max_presentation_ttl()),
            ..PresentationOptions::new(self.vc_api_trust(tenant))
        };
        self.verify_and_spend(presentation, opts, self.vc_api_trust_mode(), Profile::Generic).await
    }

    /// Verifies a presentation and consumes its challenge.
    async fn verify_and_spend(
        &self,
        presentation: &Value,
        opts: PresentationOptions,
        mode: TrustMode,
        profile: Profile,
    ) -> Result<PresentationReport, ServiceError> {
        let now = self.clock.now();
        let mut out = verify_presentation_in(presentation, &opts, &LocalFirst { sigil: self }, now, mode, profile).await;
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
        // A proof without an expiry (allowed on the VC-API route) is remembered as long as
        // the longest one accepted would be.
        let expires = out.expires.unwrap_or_else(|| now.saturating_add(self.max_presentation_ttl()).unwrap_or(now));
        let (Some(holder), Some(challenge)) = (&out.holder, &out.challenge) else {
            return Ok(out);
        };
        let key = keys::replay(&replay_hash(holder, out.domain.as_deref(), challenge));
        let lease = &self.challenge_lease;
        let created = out.created.map(|c| c.as_millisecond());
        if created.is_some_and(|c| c < lease.floor.load(Ordering::Acquire)) {
            metrics::counter!("sigil_challenges_total", "outcome" => "below_floor").increment(1);
            out.report.push(Check::fail(
                "replay",
                "replayed",
                "created before this verifier last stopped uncleanly or was restored from a backup, so its challenge may have been used unrecorded; request a new presentation",
            ));
            return Ok(out);
        }
        // Several nodes on one store (`Store::shared`): a claim is durable before it is
        // answered (the database commits it), so no lease is needed, and none is kept: the
        // nodes would overwrite one another's.
        let shared = self.store.shared();
        let renewal = if shared { None } else { lease.begin_renewal(now.as_millisecond()) };
        if let Some(r) = &renewal {
            self.write_challenge_lease(r.until).await?;
        }
        let covered = !shared && created.is_some_and(|c| c < lease.until.load(Ordering::Acquire));
        // A claim made before the domain was part of the key spends the pair for every
        // domain, as it did when it was made (it lives no longer than its proof).
        let legacy = self.store.get(&keys::replay(&legacy_replay_hash(holder, challenge))).await?.is_some();
        let value = expires.as_second().to_be_bytes().to_vec();
        let fresh =
            !legacy && if shared { self.store.insert_new(key, value).await? } else { self.store.insert_new_pending(key, value).await? };
        // One wait covers both the lease and this claim; a refusal needs none.
        let wait = renewal.is_some() || (fresh && !covered);
        if wait {
            self.store.sync_appends().await?;
        }
        if let Some(r) = renewal {
            r.done();
        }
        let outcome = match (fresh, wait) {
            (false, _) => "replayed",
            (true, false) => "claimed_under_lease",
            (true, true) => "claimed_durably",
        };
        metrics::counter!("sigil_challenges_total", "outcome" => outcome).increment(1);
        if fresh {
            out.report.push(Check::pass("replay", "challenge used for the first time"));
        } else {
            out.report.push(Check::fail("replay", "replayed", "this challenge was already used with this holder and domain"));
        }
        Ok(out)
    }

    /// Appends the lease record with end `until` (durable after the next `sync_appends`).
    async fn write_challenge_lease(&self, until: i64) -> Result<(), ServiceError> {
        let mut t = Txn::new();
        t.put(keys::meta::CHALLENGE_LEASE.to_vec(), lease_record(self.challenge_lease.floor.load(Ordering::Acquire), until));
        self.store.append(t).await?;
        Ok(())
    }

    /// Reads the lease record a previous run left: the floor it kept and, if that run
    /// stopped uncleanly, its open lease end, the new floor (see the module docs). Returns
    /// the floor when a presentation could be below it, that is when some run stopped
    /// uncleanly.
    pub async fn open_challenge_lease(&self) -> Result<Option<Timestamp>, ServiceError> {
        let Some(v) = self.store.get(keys::meta::CHALLENGE_LEASE).await? else {
            return Ok(None);
        };
        let floor = lease_floor(&v).ok_or_else(|| ServiceError::Internal("the challenge lease record is malformed".into()))?;
        self.challenge_lease.floor.fetch_max(floor, Ordering::AcqRel);
        Ok((floor > i64::MIN).then(|| Timestamp::from_millisecond(floor).unwrap_or(Timestamp::MAX)))
    }

    /// Closes the lease at a clean stop, after the server stopped taking requests: every
    /// claim made so far becomes durable in the same group commit that closes it.
    pub async fn close_challenge_lease(&self) -> Result<(), ServiceError> {
        self.challenge_lease.until.store(i64::MIN, Ordering::Release);
        if self.store.shared() {
            // No lease on a shared store (see `verify`): nothing to close, and closing one
            // a previous single-node run left open would erase its floor.
            return Ok(());
        }
        self.write_challenge_lease(i64::MIN).await?;
        self.store.sync_appends().await?;
        Ok(())
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
                self.commit_unaudited(txn, crate::service::kernel::mutation::Effects::none()).await?;
            }
            after = Some(last);
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_floors_and_restores() {
        assert_eq!(lease_floor(&lease_record(5_000, i64::MIN)), Some(5_000), "closed: the floor it kept");
        assert_eq!(lease_floor(&lease_record(5_000, 9_000)), Some(9_000), "left open: its end");
        assert_eq!(lease_floor(&[0u8; 15]), None);
        assert_eq!(lease_floor(&[0u8; 17]), None);
        assert_eq!((whole_second(1_001), whole_second(2_000), whole_second(-1)), (2_000, 2_000, 0));
        let now = Timestamp::from_millisecond(10_500).unwrap();
        assert_eq!(lease_floor(&restored_lease_record(None, now)), Some(11_000));
        let ahead = lease_record(1, 20_000);
        assert_eq!(lease_floor(&restored_lease_record(Some(&ahead), now)), Some(20_000));
    }

    /// An agent's key is in its own DID document, so a credential it signs naming itself
    /// as issuer has a valid signature; it must still never count as authority.
    #[tokio::test]
    async fn a_credential_an_agent_signs_as_its_own_issuer_is_not_trusted() {
        use serde_json::json;

        use crate::service::agents::NewAgent;
        use crate::service::testing;
        use crate::vc::proof::{self, ProofOptions};

        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let a = s.create_agent(&testing::admin(&t.id), &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        let signer = s.signer(&crate::ids::TenantId::parse("acme").unwrap(), a.id.as_str(), 1).await.unwrap();
        let vm = format!("{}#key-1", a.did);
        let now = s.now();
        let authority = crate::policy::Authority::new(&["refunds:create".into()], &["**".into()], Default::default(), None).unwrap();
        let vc = json!({
            "@context": [crate::vc::credential::VC_V2, crate::vc::credential::context_url(s.settings.public_url.base())],
            "type": ["VerifiableCredential", "DelegatedAuthorityCredential"],
            "issuer": a.did,
            "validFrom": crate::clock::rfc3339(now),
            "credentialSubject": {"id": a.did, "authority": authority},
        });
        let opts = |purpose, challenge: Option<&str>| ProofOptions {
            cryptosuite: Default::default(),
            verification_method: vm.clone(),
            proof_purpose: purpose,
            created: crate::clock::rfc3339(now),
            expires: challenge.map(|_| crate::clock::rfc3339(now + jiff::SignedDuration::from_secs(120))),
            challenge: challenge.map(str::to_owned),
            domain: challenge.map(|_| "shop.example".to_owned()),
        };
        let vc = proof::sign(vc.as_object().cloned().unwrap(), &opts("assertionMethod", None), &signer).unwrap();
        let vp = json!({
            "@context": [crate::vc::credential::VC_V2, crate::vc::credential::context_url(s.settings.public_url.base())],
            "type": ["VerifiablePresentation"],
            "holder": a.did,
            "action": {"name": "refunds:create", "resource": "orders/1"},
            "verifiableCredential": [vc],
        });
        let vp = proof::sign(vp.as_object().cloned().unwrap(), &opts("authentication", Some("c-1")), &signer).unwrap();
        let expect = Expectation { challenge: Some("c-1".into()), domain: Some("shop.example".into()), ..Default::default() };
        let r = s.verify_presentation(&vp, expect).await.unwrap();
        assert!(!r.verified() && !r.issuer_trusted());
        assert_eq!(r.report.codes(), vec!["issuer_not_trusted", "proof_not_checked"], "{:?}", r.report.errors());
        // The VC-API route requires a trusted issuer too.
        let r = s.vc_api_verify_presentation(&t.id, &vp, Some("c-1".into()), Some("shop.example".into())).await.unwrap();
        assert!(!r.verified() && !r.issuer_trusted(), "{:?}", r.report.errors());
    }
}
