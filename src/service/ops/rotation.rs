//! Key rotation beyond agent keys: the tenant issuer key (optionally re-signing every
//! active credential), scheduled rotation by key age, tenant data keys (records re-sealed
//! in resumable batches while serving continues), and the root key (every data key,
//! the pepper and operator tokens re-wrapped in one transaction, committed by rewriting
//! the key-check file).

use std::time::Duration;

use jiff::SignedDuration;

use serde_json::json;

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::crypto::{Aad, DataKey, RootKey, SecretBytes, blob_key_version};
use crate::ids::{AgentId, TenantId};
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::keyring::TenantKeys;
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::kernel::sealed::decode_u32;
use crate::service::kernel::signers::stage_new_key;
use crate::service::model::records::{AgentRecord, CredentialRecord, KeyState, KeyVersion, TenantRecord, kind};
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::{Txn, keys};
use crate::vc::proof::{self, Cryptosuite, ProofOptions};

pub use crate::service::model::settings::KeyPolicy;

const BATCH: usize = 500;

/// A tenant's data-key rotation marker (`keys::data_key_rotation`).
enum Marker {
    Absent,
    /// A rotation to this version is re-sealing records.
    Live(u32),
    /// Left behind by a deleted tenant of the same id (its stored bytes).
    Stale(Vec<u8>),
}

/// The outcome of [`Sigil::mark_issuer_key_compromised`].
#[derive(Debug, Clone)]
pub struct IssuerKeyCompromise {
    /// The compromised version.
    pub version: u32,
    /// The issuer key now current.
    pub current: u32,
    /// Credentials the compromised key signed, to re-issue.
    pub to_reissue: Vec<String>,
}

/// Replaces `c`'s proof with one by issuer key `version` (`vm`): same id, content and
/// status entries. Shared by re-issue after a rotation and after a compromise.
fn resign(
    c: &mut CredentialRecord,
    signer: &crate::crypto::Signer,
    vm: String,
    version: u32,
    now: jiff::Timestamp,
) -> Result<(), ServiceError> {
    let mut doc = c.vc.as_object().cloned().unwrap_or_default();
    // Re-signed under the cryptosuite it was issued with: its holders' verifiers chose it.
    let suite = doc.get("proof").and_then(|p| p.get("cryptosuite")).and_then(serde_json::Value::as_str).and_then(Cryptosuite::parse);
    doc.remove("proof");
    let opts = ProofOptions {
        cryptosuite: suite.unwrap_or_default(),
        verification_method: vm,
        proof_purpose: "assertionMethod",
        created: rfc3339(now),
        expires: None,
        challenge: None,
        domain: None,
    };
    c.vc = proof::sign(doc, &opts, signer).map_err(|e| ServiceError::Internal(e.to_string()))?;
    c.issuer_key_version = version;
    Ok(())
}

fn age_exceeded(k: &KeyVersion, days: Option<u32>, now: jiff::Timestamp) -> bool {
    days.is_some_and(|d| now.duration_since(k.created) >= SignedDuration::from_hours(24 * i64::from(d)))
}

impl Sigil {
    async fn tenant_record_blob(&self, t: &TenantId) -> Result<(TenantRecord, Vec<u8>), ServiceError> {
        let tk = self.tenant_keys(t).await?;
        let k = keys::tenant_record(t);
        let blob = self.store.get(&k).await?.ok_or_else(ServiceError::tenant_not_found)?;
        Ok((self.open_fresh(&tk, t, kind::TENANT, t.as_str(), &k, &blob).await?, blob))
    }

    /// Sets the tenant's key-age policy.
    pub async fn set_key_policy(&self, caller: &Caller, tenant: &TenantId, policy: KeyPolicy) -> Result<KeyPolicy, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        for d in [policy.agent_key_max_age_days, policy.issuer_key_max_age_days].into_iter().flatten() {
            if !(1..=3650).contains(&d) {
                return Err(ServiceError::invalid("maximum key ages must be 1–3650 days"));
            }
        }
        let t = tenant;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob) = self.tenant_record_blob(t).await?;
            rec.key_policy = Some(policy);
            let mut txn = Txn::new();
            let k = keys::tenant_record(t);
            txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::TENANT, t.as_str(), &rec)?);
            let event = Event::new("tenant.key_policy_set", serde_json::to_value(policy).unwrap_or_default());
            Ok(Attempt::commit(txn, event, Effects::none(), policy))
        })
        .await
    }

    /// Sets the cryptosuite the tenant issues with when a request names none (its issuer
    /// key signs both; the choice is what the tenant's verifiers accept).
    pub async fn set_cryptosuite(&self, caller: &Caller, tenant: &TenantId, suite: Cryptosuite) -> Result<Cryptosuite, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        self.mutate(t, &actor(caller), || async move {
            let tk = self.tenant_keys(t).await?;
            let (mut rec, blob) = self.tenant_record_blob(t).await?;
            rec.cryptosuite = Some(suite);
            let mut txn = Txn::new();
            let k = keys::tenant_record(t);
            txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::TENANT, t.as_str(), &rec)?);
            let event = Event::new("tenant.cryptosuite_set", json!({"cryptosuite": suite.as_str()}));
            Ok(Attempt::commit(txn, event, Effects::none(), suite))
        })
        .await
    }

    /// The cryptosuite the tenant issues with by default.
    pub async fn cryptosuite(&self, caller: &Caller, tenant: &TenantId) -> Result<Cryptosuite, ServiceError> {
        caller.require_tenant_read(tenant)?;
        Ok(self.tenant_record(tenant).await?.cryptosuite.unwrap_or_default())
    }

    /// Reads the tenant's key-age policy.
    pub async fn key_policy(&self, caller: &Caller, tenant: &TenantId) -> Result<KeyPolicy, ServiceError> {
        caller.require_tenant_read(tenant)?;
        Ok(self.tenant_record(tenant).await?.key_policy.unwrap_or_default())
    }

    /// Rotates the issuer key; `only_if_current` makes it conditional (scheduled runs).
    /// With `reissue`, every active credential is re-signed under the new key.
    pub(crate) async fn rotate_issuer_key_inner(
        &self,
        tenant: &TenantId,
        actor_s: String,
        reissue: bool,
        only_if_current: Option<u32>,
    ) -> Result<Option<(u32, usize)>, ServiceError> {
        let t = tenant;
        // No presentation may sign a vc+jwt with the old issuer key after this commits.
        let locks = self.agent_locks.write_all().await;
        let rotated = self
            .mutate(t, &actor_s, || async move {
                let tk = self.tenant_keys(t).await?;
                let (mut rec, blob) = self.tenant_record_blob(t).await?;
                if only_if_current.is_some_and(|v| v != rec.issuer_current) {
                    return Ok(Attempt::Done(None));
                }
                let old = rec.issuer_current;
                let mut txn = Txn::new();
                let new = stage_new_key(&tk, &mut txn, t, "issuer", &mut rec.issuer_keys, old, self.clock.now())?;
                rec.issuer_current = new;
                let k = keys::tenant_record(t);
                txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::TENANT, t.as_str(), &rec)?);
                let event = Event::new("issuer.key_rotated", json!({"from": old, "to": new, "reissue": reissue}));
                let mut effects = Effects::none();
                effects.signers(t, Some("issuer")).status_lists(t).all_wallets(t);
                Ok(Attempt::commit(txn, event, effects, Some(new)))
            })
            .await?;
        drop(locks);
        let Some(new) = rotated else { return Ok(None) };
        metrics::counter!("sigil_rotations_total", "kind" => "issuer_key").increment(1);
        let reissued = if reissue { self.reissue_credentials(t, new).await? } else { 0 };
        Ok(Some((new, reissued)))
    }

    /// `POST /v1/tenants/{tenant}/issuer-key/rotate`.
    pub async fn rotate_issuer_key(&self, caller: &Caller, tenant: &TenantId, reissue: bool) -> Result<(u32, usize), ServiceError> {
        caller.require_tenant_admin(tenant)?;
        self.rotate_issuer_key_inner(tenant, actor(caller), reissue, None)
            .await?
            .ok_or_else(|| ServiceError::Internal("unconditional rotation skipped".into()))
    }

    /// Takes issuer key `version` out of service because it leaked: replaced first if it is
    /// the current key, then marked compromised (it leaves the DID document, so nothing it
    /// signed verifies any more) and its private half destroyed. Answers the key now current
    /// and the credentials it signed, which the administrator re-issues with
    /// [`Sigil::reissue_issuer_key_credentials`].
    pub async fn mark_issuer_key_compromised(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        version: u32,
    ) -> Result<IssuerKeyCompromise, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let rec = self.tenant_record(t).await?;
        if !rec.issuer_keys.iter().any(|k| k.version == version) {
            return Err(ServiceError::not_found(ErrorCode::KeyNotFound, "no such issuer key version"));
        }
        if rec.issuer_current == version {
            // Conditional on the version seen: a rotation that won meanwhile already replaced it.
            self.rotate_issuer_key_inner(t, actor(caller), false, Some(version)).await?;
        }
        // No presentation may sign a vc+jwt with the key after this commits.
        let locks = self.agent_locks.write_all().await;
        let current = self
            .mutate(t, &actor(caller), || async move {
                let tk = self.tenant_keys(t).await?;
                let (mut rec, blob) = self.tenant_record_blob(t).await?;
                if rec.issuer_current == version {
                    return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "the issuer key is being rotated; retry"));
                }
                let now = self.clock.now();
                let mut changed = false;
                for k in rec.issuer_keys.iter_mut().filter(|k| k.version == version && k.state != KeyState::Compromised) {
                    k.state = KeyState::Compromised;
                    k.retired_at.get_or_insert(now);
                    changed = true;
                }
                if !changed {
                    return Ok(Attempt::Done(rec.issuer_current));
                }
                let mut txn = Txn::new();
                txn.delete(keys::private_key(t, "issuer", version));
                let k = keys::tenant_record(t);
                txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::TENANT, t.as_str(), &rec)?);
                let event = Event::new("issuer.key_compromised", json!({"version": version, "current": rec.issuer_current}));
                let mut effects = Effects::none();
                effects.signers(t, Some("issuer")).status_lists(t).all_wallets(t);
                Ok(Attempt::commit(txn, event, effects, rec.issuer_current))
            })
            .await?;
        drop(locks);
        metrics::counter!("sigil_rotations_total", "kind" => "issuer_key_compromised").increment(1);
        let to_reissue = self.credentials_signed_by(t, version).await?;
        Ok(IssuerKeyCompromise { version, current, to_reissue })
    }

    /// The ids of the tenant's non-revoked credentials whose proof issuer key `version` made.
    pub async fn issuer_key_credentials(&self, caller: &Caller, tenant: &TenantId, version: u32) -> Result<Vec<String>, ServiceError> {
        caller.require_tenant_read(tenant)?;
        let rec = self.tenant_record(tenant).await?;
        if !rec.issuer_keys.iter().any(|k| k.version == version) {
            return Err(ServiceError::not_found(ErrorCode::KeyNotFound, "no such issuer key version"));
        }
        self.credentials_signed_by(tenant, version).await
    }

    /// Re-signs, under the current issuer key, every non-revoked credential issuer key
    /// `version` signed (same id, content and status entries; a new proof), each as its own
    /// audited change (`credential.reissued`). Answers the ids re-signed.
    pub async fn reissue_issuer_key_credentials(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        version: u32,
    ) -> Result<Vec<String>, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        let rec = self.tenant_record(t).await?;
        if !rec.issuer_keys.iter().any(|k| k.version == version) {
            return Err(ServiceError::not_found(ErrorCode::KeyNotFound, "no such issuer key version"));
        }
        if rec.issuer_current == version {
            return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "this is the current issuer key; rotate it first"));
        }
        let mut done = Vec::new();
        for id in self.credentials_signed_by(t, version).await? {
            let id = &id;
            let reissued = self
                .mutate(t, &actor(caller), || async move {
                    let (mut c, blob) = self.credential_record(t, id).await?;
                    if c.revoked || c.issuer_key_version != version {
                        return Ok(Attempt::Done(false));
                    }
                    // A rotation committing between this read and the commit leaves the
                    // credential signed by a retired key, which still verifies; compromising
                    // that key lists it again.
                    let current = self.tenant_record(t).await?.issuer_current;
                    let signer = self.signer(t, "issuer", current).await?;
                    let vm = format!("{}#issuer-{current}", self.tenant_did(t));
                    resign(&mut c, &signer, vm, current, self.clock.now())?;
                    let tk = self.tenant_keys(t).await?;
                    let k = keys::credential(t, id);
                    let mut txn = Txn::new();
                    txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::CREDENTIAL, id, &c)?);
                    let mut event = Event::new("credential.reissued", json!({"credential_id": id, "from": version, "to": current}));
                    let mut effects = Effects::none();
                    if let Some(a) = &c.agent {
                        event = event.agent(a.as_str());
                        effects.wallet_of_record(t, a);
                    }
                    Ok(Attempt::commit(txn, event, effects, true))
                })
                .await?;
            if reissued {
                done.push(id.clone());
            }
        }
        Ok(done)
    }

    async fn credentials_signed_by(&self, t: &TenantId, version: u32) -> Result<Vec<String>, ServiceError> {
        let prefix = format!("t/{t}/c/").into_bytes();
        let mut after: Option<Vec<u8>> = None;
        let mut out = Vec::new();
        loop {
            let tk = self.tenant_keys(t).await?;
            let rows = self.store.scan(&prefix, after.as_deref(), BATCH).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            for (k, blob) in rows {
                let id = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
                let c: CredentialRecord = match self.open_fresh(&tk, t, kind::CREDENTIAL, &id, &k, &blob).await {
                    Ok(c) => c,
                    // Rewritten since the scan: read again below, as it is now.
                    Err(ServiceError::Conflict { .. }) => match self.credential_record(t, &id).await {
                        Ok((c, _)) => c,
                        Err(ServiceError::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(e),
                };
                if !c.revoked && c.issuer_key_version == version {
                    out.push(id);
                }
            }
            after = Some(last);
        }
        Ok(out)
    }

    /// Re-signs every non-revoked credential of the tenant under issuer key `version`
    /// (same id, content and status entries; a new proof).
    async fn reissue_credentials(&self, t: &TenantId, version: u32) -> Result<usize, ServiceError> {
        let signer = self.signer(t, "issuer", version).await?;
        let vm = format!("{}#issuer-{version}", self.tenant_did(t));
        let prefix = format!("t/{t}/c/").into_bytes();
        let mut after: Option<Vec<u8>> = None;
        let mut n = 0;
        loop {
            let tk = self.ensure_seals(t, BATCH as u64 + 1, false).await?;
            let rows = self.store.scan(&prefix, after.as_deref(), BATCH).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            let mut txn = Txn::new();
            let mut effects = Effects::none();
            for (k, blob) in rows {
                let id = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
                let mut c: CredentialRecord = match self.open_fresh(&tk, t, kind::CREDENTIAL, &id, &k, &blob).await {
                    Ok(c) => c,
                    // Rewritten since the scan read it: by a writer that did its own part.
                    Err(ServiceError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if c.revoked || c.issuer_key_version == version {
                    continue;
                }
                resign(&mut c, &signer, vm.clone(), version, self.clock.now())?;
                txn.require_equals(k.clone(), blob).put(k, self.seal_record(&tk, t, kind::CREDENTIAL, &id, &c)?);
                if let Some(a) = &c.agent {
                    effects.wallet_of_record(t, a);
                }
                n += 1;
            }
            if !txn.is_empty() {
                // A credential changed meanwhile (revoked, replaced) keeps its old proof,
                // which stays valid; the next rotation re-signs it.
                // Not an audited change of its own: the rotation's entry covers it.
                self.commit_unaudited(txn, effects).await?;
            }
            after = Some(last);
        }
        Ok(n)
    }

    /// One pass of scheduled rotation over every tenant with a key policy. Idempotent and
    /// safe to run concurrently in several processes: each rotation is conditional on the
    /// key version it observed (compare-and-set), so a key is rotated at most once.
    pub async fn run_scheduled_rotation(&self) -> Result<usize, ServiceError> {
        let mut rotated = 0;
        let tenants = self.store.scan(keys::TENANT_INDEX_PREFIX, None, 100_000).await?;
        for (k, _) in tenants {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else { continue };
            let Ok(tenant) = TenantId::parse(t) else { continue };
            let t = &tenant;
            let rec = match self.tenant_record(t).await {
                Ok(r) => r,
                Err(ServiceError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Some(policy) = rec.key_policy else { continue };
            let now = self.clock.now();
            if let Some(cur) = rec.issuer_keys.iter().find(|k| k.version == rec.issuer_current) {
                if age_exceeded(cur, policy.issuer_key_max_age_days, now)
                    && self
                        .rotate_issuer_key_inner(&tenant, "system:scheduled-rotation".into(), false, Some(rec.issuer_current))
                        .await?
                        .is_some()
                {
                    rotated += 1;
                }
            }
            if policy.agent_key_max_age_days.is_none() {
                continue;
            }
            let tk = self.tenant_keys(t).await?;
            let prefix = keys::agent_prefix(t);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = self.store.scan(&prefix, after.as_deref(), BATCH).await?;
                let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
                for (k, blob) in rows {
                    let a = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned();
                    let agent: AgentRecord = match self.open_fresh(&tk, t, kind::AGENT, &a, &k, &blob).await {
                        Ok(a) => a,
                        Err(ServiceError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    let due = agent.state != crate::service::model::records::AgentState::Retired
                        && agent
                            .keys
                            .iter()
                            .find(|k| k.version == agent.current_key)
                            .is_some_and(|k| age_exceeded(k, policy.agent_key_max_age_days, now));
                    if due {
                        let Ok(agent_id) = AgentId::parse(&a) else { continue };
                        if self
                            .rotate_agent_key_inner(
                                &tenant,
                                &agent_id,
                                "system:scheduled-rotation".into(),
                                "scheduled",
                                Some(agent.current_key),
                            )
                            .await?
                            .is_some()
                        {
                            rotated += 1;
                        }
                    }
                }
                after = Some(last);
            }
        }
        Ok(rotated)
    }

    /// Starts a data-key rotation: new records are sealed under the new key at once; the
    /// tenant's existing records are re-sealed in the background (resumable), then the old
    /// key is destroyed. Returns the new version.
    pub async fn rotate_data_key(self: &std::sync::Arc<Self>, caller: &Caller, tenant: &TenantId) -> Result<u32, ServiceError> {
        caller.require_tenant_admin(tenant)?;
        let t = tenant;
        if matches!(self.rotation_marker(t).await?, Marker::Live(_)) {
            return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "a data-key rotation is already running for this tenant"));
        }
        let new = self
            .new_data_key(t, &actor(caller), None, true)
            .await?
            .ok_or_else(|| ServiceError::Internal("unconditional rotation skipped".into()))?;
        let me = self.clone();
        let tenant = t.to_owned();
        tokio::spawn(async move {
            if let Err(e) = me.finish_data_key_rotation(&tenant, Duration::from_secs(2)).await {
                tracing::error!(tenant = %tenant, error = %e, "data-key rotation failed; it resumes at the next start");
            }
        });
        Ok(new)
    }

    /// Makes a new data key current. With `reseal` (a rotation), the rotation marker is set
    /// and [`Sigil::finish_data_key_rotation`] re-seals every record and destroys the older
    /// keys; without (a roll-over by use), the older keys stay to open what they sealed.
    /// With `only_if_current`, only while that version is current (`None` when it is not).
    async fn new_data_key(
        &self,
        t: &TenantId,
        actor: &str,
        only_if_current: Option<u32>,
        reseal: bool,
    ) -> Result<Option<u32>, ServiceError> {
        let cur_raw = self.store.get(&keys::data_key_current(t)).await?.ok_or_else(ServiceError::tenant_not_found)?;
        let cur = decode_u32(&cur_raw)?;
        if only_if_current.is_some_and(|v| v != cur) {
            return Ok(None);
        }
        let new = cur + 1;
        let dk = DataKey::generate(new);
        // The entry recording this is sealed under the old key: it may use the last block,
        // kept for this, so that a key at its seal limit can still be replaced.
        self.ensure_seals(t, 4, true).await?;
        // Held until the wrap is committed, so that a root rotation re-wraps it (Keyring::wrapping).
        let _wrapping = self.keys.wrapping.read().await;
        let (cur_raw, dk) = (&cur_raw, &dk);
        self.mutate(t, actor, || async move {
            // A second attempt finds the current version moved or the rotation marker set.
            let mut txn = Txn::new();
            match self.rotation_marker(t).await? {
                Marker::Live(_) if reseal => {
                    return Err(ServiceError::conflict(
                        ErrorCode::RotationInProgress,
                        "a data-key rotation is already running for this tenant",
                    ));
                }
                // A rotation re-seals under a key of its own, new and current: nothing to do.
                Marker::Live(_) => return Ok(Attempt::Done(None)),
                // Left by a deleted tenant of the same id (before deletions removed it).
                Marker::Stale(raw) => txn.require_equals(keys::data_key_rotation(t), raw.clone()).delete(keys::data_key_rotation(t)),
                Marker::Absent => txn.require_absent(keys::data_key_rotation(t)),
            };
            let root = self.stage_wrap_guard(&mut txn).await?;
            txn.require_equals(keys::data_key_current(t), cur_raw.clone())
                .put(keys::data_key(t, new), root.wrap_data_key(t.as_str(), dk))
                .put(keys::data_key_current(t), new.to_be_bytes().to_vec());
            let event = if reseal {
                txn.put(keys::data_key_rotation(t), new.to_be_bytes().to_vec());
                Event::new("data_key.rotation_started", json!({"from": cur, "to": new}))
            } else {
                Event::new("data_key.rolled_over", json!({"from": cur, "to": new, "reason": "seal_limit"}))
            };
            let mut effects = Effects::none();
            effects.data_keys(t);
            Ok(Attempt::commit(txn, event, effects, Some(new)))
        })
        .await
    }

    /// Rolls every tenant's data key over to a new one once `SealLimits::rotate_after`
    /// seals were reserved under it (housekeeping): new records are sealed under the new
    /// key, and the old one stays to open what it sealed (the next full rotation re-seals
    /// and destroys it). No bulk re-sealing, which on a busy tenant would itself seal as
    /// often as the trail has entries. Conditional on the version it read, so with several
    /// processes a key rolls over once. Returns how many keys rolled over.
    pub async fn rotate_worn_data_keys(&self) -> Result<usize, ServiceError> {
        let mut rolled = 0;
        let tenants = self.store.scan(keys::TENANT_INDEX_PREFIX, None, 100_000).await?;
        for (k, _) in tenants {
            let Some(t) = k.strip_prefix(keys::TENANT_INDEX_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) else { continue };
            let Ok(t) = TenantId::parse(t) else { continue };
            let Some(cur) = self.store.get(&keys::data_key_current(&t)).await? else { continue };
            let cur = decode_u32(&cur)?;
            if self.seals_reserved(&t, cur).await? < self.settings.seal_limits.rotate_after {
                continue;
            }
            match self.new_data_key(&t, "system:seal-limit", Some(cur), false).await {
                Ok(Some(v)) => {
                    metrics::counter!("sigil_rotations_total", "kind" => "data_key_by_use").increment(1);
                    tracing::info!(tenant = %t, from = cur, to = v, "data key rolled over: it passed its seal threshold");
                    rolled += 1;
                }
                Ok(None) | Err(ServiceError::Conflict { .. }) | Err(ServiceError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rolled)
    }

    /// The tenant's current data key version and whether re-sealing is still running.
    pub async fn data_key_status(&self, caller: &Caller, tenant: &TenantId) -> Result<(u32, bool), ServiceError> {
        caller.require_tenant_read(tenant)?;
        let t = tenant;
        let cur = self.store.get(&keys::data_key_current(t)).await?.ok_or_else(ServiceError::tenant_not_found)?;
        Ok((decode_u32(&cur)?, matches!(self.rotation_marker(t).await?, Marker::Live(_))))
    }

    /// The tenant's data-key rotation marker. A running rotation's target is the current
    /// version (both are set in one transaction, and no rotation starts while one runs);
    /// a marker naming another version, or a tenant that does not exist, was left behind
    /// by a deleted tenant of the same id: deletions did not remove it before.
    async fn rotation_marker(&self, t: &TenantId) -> Result<Marker, ServiceError> {
        let Some(raw) = self.store.get(&keys::data_key_rotation(t)).await? else { return Ok(Marker::Absent) };
        let current = match self.store.get(&keys::data_key_current(t)).await? {
            Some(c) => Some(decode_u32(&c)?),
            None => None,
        };
        match decode_u32(&raw) {
            Ok(target) if Some(target) == current && self.store.get(&keys::tenant_index(t)).await?.is_some() => Ok(Marker::Live(target)),
            _ => Ok(Marker::Stale(raw)),
        }
    }

    /// Removes a marker [`Sigil::rotation_marker`] found stale (unless it changed since).
    async fn drop_stale_marker(&self, t: &TenantId, raw: Vec<u8>) -> Result<(), ServiceError> {
        let mut txn = Txn::new();
        txn.require_equals(keys::data_key_rotation(t), raw).delete(keys::data_key_rotation(t));
        self.commit_unaudited(txn, Effects::none()).await?;
        Ok(())
    }

    /// Re-seals every record of `t` still under an older data key, then destroys the older
    /// keys. `settle` lets requests that loaded the previous key set finish first.
    pub async fn finish_data_key_rotation(&self, t: &TenantId, settle: Duration) -> Result<usize, ServiceError> {
        let target = match self.rotation_marker(t).await? {
            Marker::Live(target) => target,
            Marker::Absent => return Ok(0),
            Marker::Stale(raw) => {
                self.drop_stale_marker(t, raw).await?;
                return Ok(0);
            }
        };
        tokio::time::sleep(settle).await;
        let mut total = 0;
        // Passes until one finds nothing left to re-seal (a request that still held the
        // previous key set may have written during the first pass).
        loop {
            let n = self.reseal_pass(t, target).await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        self.mutate(t, "system:data-key-rotation", || async move {
            let mut txn = Txn::new();
            for (k, _) in self.store.scan(&keys::data_key_prefix(t), None, 4096).await? {
                let v =
                    k.rsplit(|b| *b == b'/').next().and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u32::from_str_radix(h, 16).ok());
                if let Some(v) = v.filter(|v| *v < target) {
                    txn.delete(k).delete(keys::seal_count(t, v));
                }
            }
            txn.delete(keys::data_key_rotation(t));
            let mut effects = Effects::none();
            effects.data_keys(t).signers(t, None);
            Ok(Attempt::commit(txn, Event::new("data_key.rotated", json!({"version": target, "resealed": total})), effects, total))
        })
        .await?;
        self.keys.forget_meters(t, Some(target));
        Ok(total)
    }

    async fn reseal_pass(&self, t: &TenantId, target: u32) -> Result<usize, ServiceError> {
        self.keys.evict(t);
        let prefix = keys::tenant_prefix(t);
        let mut after: Option<Vec<u8>> = None;
        let mut n = 0;
        loop {
            // Seals for a whole batch, granted to the key set this batch uses.
            let tk: std::sync::Arc<TenantKeys> = self.ensure_seals(t, BATCH as u64 + 1, false).await?;
            let new = tk.versions.get(&target).ok_or_else(|| ServiceError::Internal("target data key missing".into()))?;
            let rows = self.store.scan(&prefix, after.as_deref(), BATCH).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            let mut txn = Txn::new();
            for (k, blob) in rows {
                let Some((kind_, id)) = keys::sealed_identity(t, &k) else { continue };
                let v = blob_key_version(&blob)?;
                if v == target {
                    continue;
                }
                // Only a record's current bytes are re-sealed: re-sealing a stale copy
                // would make it current. One rewritten since the scan is skipped.
                match self.check_fresh(t, &k, &blob).await {
                    Ok(()) => {}
                    Err(ServiceError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
                let old = tk.versions.get(&v).ok_or(crate::crypto::CryptoError)?;
                let aad = Aad { tenant: t.as_str(), kind: kind_, id: &id };
                let pt: SecretBytes = old.open(&aad, &blob)?;
                txn.require_equals(k.clone(), blob).put(k, new.seal(&aad, pt.expose())?);
                n += 1;
            }
            if !txn.is_empty() {
                // A record rewritten meanwhile was sealed under the new key by its writer.
                self.commit_unaudited(txn, Effects::none()).await?;
            }
            after = Some(last);
        }
        // The manifest root is rewritten (under the current key) with every record write;
        // when none happened since the rotation started it is still under the old key.
        if self.manifest_root_version(t).await? != Some(target) {
            self.commit_manifest_touch(t).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Finishes data-key rotations interrupted by a restart (called at start-up).
    pub async fn resume_data_key_rotations(&self) -> Result<usize, ServiceError> {
        let rows = self.store.scan(keys::DATA_KEY_ROTATION_PREFIX, None, 100_000).await?;
        let mut n = 0;
        for (k, _) in rows {
            if let Some(t) = k.strip_prefix(keys::DATA_KEY_ROTATION_PREFIX).and_then(|s| std::str::from_utf8(s).ok()) {
                let t = TenantId::parse(t).map_err(|e| ServiceError::Internal(e.to_string()))?;
                match self.rotation_marker(&t).await? {
                    Marker::Live(_) => {
                        // Several nodes: the others are serving; their requests that hold
                        // the previous key set end (their writes are conditional on the
                        // current key version, so none lands after the last pass anyway).
                        let settle = if self.store.shared() { Duration::from_secs(2) } else { Duration::ZERO };
                        self.finish_data_key_rotation(&t, settle).await?;
                        n += 1;
                    }
                    Marker::Stale(raw) => self.drop_stale_marker(&t, raw).await?,
                    Marker::Absent => {}
                }
            }
        }
        Ok(n)
    }

    /// Re-wraps every tenant data key, the pepper and operator tokens under `new_root`.
    /// Step 1 writes the new wraps beside the old ones in one transaction; step 2 rewrites
    /// the key-check file (the commit point); step 3 replaces the old wraps. A crash
    /// between steps is repaired at start by [`Sigil::recover_root_rotation`]. Several
    /// nodes: the store's root-rotation lock is held throughout (one rotation at a time
    /// across nodes; no node's start settles this one meanwhile), and before step 1 the
    /// wrap version moves to the new root, so that every wrap another node commits is
    /// either collected by step 1 or refused (and made again under the new root).
    pub async fn rotate_root_key(&self, caller: &Caller, new_root_file: &std::path::Path) -> Result<u32, ServiceError> {
        caller.require_operator()?;
        // The key bytes are read here, never by the handler: only the path crosses the API.
        let new_root = crate::datadir::read_root_key_file_async(new_root_file.to_path_buf()).await.map_err(ServiceError::invalid)?;
        // One rotation at a time, and no new wrap under the old root while this one runs.
        let _exclusive = self.keys.wrapping.write().await;
        let Some(_rotating) = self.store.try_root_rotation_lock().await? else {
            return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "another node is rotating the root key"));
        };
        let data = self.settings.data_dir.clone().ok_or_else(|| ServiceError::Internal("no data directory".into()))?;
        let old = self.keys.root();
        let next =
            RootKey::from_bytes(new_root, old.version() + 1).map_err(|_| ServiceError::invalid("the new root key must be 32 bytes"))?;
        if crate::datadir::read_key_check_async(self.store.as_ref(), data.clone())
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .is_some_and(|kc| kc.root_version != old.version())
        {
            return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "the key-check file names another root key version"));
        }
        let wrap_version = next.version().to_be_bytes().to_vec();
        if self.store.shared() {
            // Several nodes: from here on, wraps under the old root are refused everywhere
            // (`stage_wrap_guard`); a node holding the new root as its next key waits for
            // the commit below and adopts it. Completing or discarding the rotation sets
            // the version for good.
            let mut first = Txn::new();
            self.stage_wrap_guard(&mut first).await?;
            first.put(keys::meta::WRAP_ROOT_VERSION.to_vec(), wrap_version.clone());
            if !self.commit_unaudited(first, Effects::none()).await? {
                return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "another root-key rotation is staged"));
            }
            crate::faults::crash_point("root_rotation.guarded");
        }
        let mut txn = Txn::new();
        for (k, blob) in self.store.scan(keys::DATA_KEY_PREFIX, None, usize::MAX).await? {
            let s = String::from_utf8_lossy(&k).into_owned();
            let mut parts = s.split('/').skip(1);
            let (Some(t), Some(v)) = (parts.next(), parts.next().and_then(|h| u32::from_str_radix(h, 16).ok())) else { continue };
            let dk = old.unwrap_data_key(t, v, &blob)?;
            txn.put(keys::data_key_next(t, v), next.wrap_data_key(t, &dk));
        }
        for (k, blob) in self.store.scan(keys::OPERATOR_TOKEN_PREFIX, None, usize::MAX).await? {
            let id = String::from_utf8_lossy(k.get(keys::OPERATOR_TOKEN_PREFIX.len()..).unwrap_or_default()).into_owned();
            let pt = old.open_system(kind::OPERATOR_TOKEN, &id, &blob)?;
            txn.put(keys::operator_token_next(&id), next.seal_system(kind::OPERATOR_TOKEN, &id, pt.expose()));
        }
        txn.put(keys::pepper(next.version()), next.wrap_pepper(&self.keys.pepper));
        if self.store.shared() {
            txn.require_equals(keys::meta::WRAP_ROOT_VERSION.to_vec(), wrap_version);
        }
        // Staged wraps only: the key-check file below is the commit point.
        if !self.commit_unaudited(txn, Effects::none()).await? {
            return Err(ServiceError::conflict(ErrorCode::RotationInProgress, "another root-key rotation is staged"));
        }
        crate::faults::crash_point("root_rotation.staged");
        crate::faults::pause_point("root_rotation.staged").await;
        let kdf = None; // the new root is a key file; a passphrase store stops needing one
        crate::datadir::write_key_check_async(self.store.as_ref(), data, &next, kdf)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let version = next.version();
        crate::faults::crash_point("root_rotation.committed");
        self.keys.set_root(next);
        self.recover_root_rotation().await?;
        self.keys.evict_all();
        tracing::warn!(version, "root key rotated; start future runs with the new root key");
        Ok(version)
    }

    /// [`Sigil::recover_root_rotation`] at a start or before an offline command, under the
    /// store's root-rotation lock. Several nodes: another node holding it is rotating the
    /// root right now, and its staged wraps are its own to complete: nothing is settled
    /// (discarding them would lose every data key re-wrapped for its commit).
    pub async fn recover_root_rotation_at_start(&self) -> Result<(), ServiceError> {
        let Some(_rotation) = self.store.try_root_rotation_lock().await? else {
            tracing::info!("another node is rotating the root key: its staged wraps are left to it");
            return Ok(());
        };
        self.recover_root_rotation().await
    }

    /// Completes (key-check already names the new root) or discards (it does not) the
    /// staged wraps of an interrupted root-key rotation. The caller holds the store's
    /// root-rotation lock (the rotation itself, or [`Sigil::recover_root_rotation_at_start`]).
    pub async fn recover_root_rotation(&self) -> Result<(), ServiceError> {
        // Staged wraps and where each goes once the rotation is committed.
        const MOVES: [(&[u8], &[u8]); 2] =
            [(keys::DATA_KEY_NEXT_PREFIX, keys::DATA_KEY_PREFIX), (keys::OPERATOR_TOKEN_NEXT_PREFIX, keys::OPERATOR_TOKEN_PREFIX)];
        self.mutate_unaudited(|| async {
            let root = self.keys.root();
            let mine = root.version().to_be_bytes().to_vec();
            let mut staged = Vec::new();
            for (from, to) in MOVES {
                for (k, blob) in self.store.scan(from, None, usize::MAX).await? {
                    let live = [to, k.get(from.len()..).unwrap_or_default()].concat();
                    staged.push((k, live, blob));
                }
            }
            if staged.is_empty() {
                // Several nodes: a rotation that stopped after moving the wrap version and
                // before staging anything leaves every wrap refused; back to this root.
                if self.store.shared()
                    && let Some(stored) = self.store.get(keys::meta::WRAP_ROOT_VERSION).await?
                    && stored != mine
                {
                    let mut txn = Txn::new();
                    txn.require_equals(keys::meta::WRAP_ROOT_VERSION.to_vec(), stored).put(keys::meta::WRAP_ROOT_VERSION.to_vec(), mine);
                    return Ok(Attempt::unaudited(txn, Effects::none(), ()));
                }
                return Ok(Attempt::Done(()));
            }
            let committed = staged.iter().all(|(_, _, b)| blob_key_version(b).is_ok_and(|v| v == root.version()));
            let mut txn = Txn::new();
            for (k, live, blob) in staged {
                // Only over a wrap that still exists: a tenant deleted or an old data key
                // destroyed since the wraps were staged stays destroyed (crypto-shredding).
                // The precondition turns a deletion racing this commit into another pass.
                if committed && let Some(current) = self.store.get(&live).await? {
                    txn.require_equals(live.clone(), current).put(live, blob);
                }
                txn.delete(k);
            }
            if committed && root.version() > 1 {
                txn.delete(keys::pepper(root.version() - 1));
            }
            // The root wraps are made under from now on: the new one, or the old one again
            // when the rotation is discarded (`stage_wrap_guard`).
            if self.store.shared() {
                txn.put(keys::meta::WRAP_ROOT_VERSION.to_vec(), mine);
            }
            Ok(Attempt::unaudited(txn, Effects::none(), ()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::service::agents::NewAgent;
    use crate::service::records::KeyState;
    use crate::service::testing;

    #[tokio::test]
    async fn scheduled_rotation_follows_the_clock_and_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let s = testing::sigil_in(dir.path(), clock.clone());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        s.set_key_policy(&admin, &t.id, KeyPolicy { agent_key_max_age_days: Some(30), issuer_key_max_age_days: Some(180) }).await.unwrap();
        assert_eq!(s.run_scheduled_rotation().await.unwrap(), 0);
        clock.advance_secs(29 * 86_400);
        assert_eq!(s.run_scheduled_rotation().await.unwrap(), 0);
        clock.advance_secs(2 * 86_400);
        // Two concurrent runs (as two processes would) rotate the key exactly once.
        let (x, y) = tokio::join!(s.run_scheduled_rotation(), s.run_scheduled_rotation());
        assert_eq!(x.unwrap() + y.unwrap(), 1);
        assert_eq!(s.run_scheduled_rotation().await.unwrap(), 0, "idempotent");
        let keys = s.agent_keys(&admin, &t.id, &a.id).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| (k.key.version, k.key.state)).collect::<Vec<_>>(),
            vec![(1, KeyState::Retired), (2, KeyState::Active)]
        );
        assert!(s.store.get(&keys::private_key("acme", a.id.as_str(), 1)).await.unwrap().is_none(), "old private key destroyed");
        clock.advance_secs(150 * 86_400);
        assert_eq!(s.run_scheduled_rotation().await.unwrap(), 2, "agent key (30 d) and issuer key (180 d)");
        assert_eq!(s.tenant_record(&crate::ids::TenantId::parse("acme").unwrap()).await.unwrap().issuer_current, 2);
    }

    /// Deleting a tenant in the middle of a data-key rotation removes the rotation marker
    /// with it: a tenant re-created with the same id rotates its data key as usual. A
    /// marker an older release left behind is recognised as stale and cleared.
    #[tokio::test]
    async fn a_recreated_tenant_rotates_its_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let op = testing::operator();
        let t = s.create_tenant(&op, Some("acme"), "Acme").await.unwrap();
        s.rotate_data_key(&testing::admin(&t.id), &t.id).await.unwrap();
        assert!(s.store.get(&keys::data_key_rotation("acme")).await.unwrap().is_some(), "the rotation is still re-sealing");
        s.delete_tenant(&op, &t.id).await.unwrap();
        assert!(s.store.get(&keys::data_key_rotation("acme")).await.unwrap().is_none(), "the marker outlived its tenant");
        let t = s.create_tenant(&op, Some("acme"), "Acme again").await.unwrap();
        let admin = testing::admin(&t.id);
        assert_eq!(s.rotate_data_key(&admin, &t.id).await.unwrap(), 2);
        s.finish_data_key_rotation(&t.id, Duration::ZERO).await.unwrap();
        assert_eq!(s.data_key_status(&admin, &t.id).await.unwrap(), (2, false));

        // A store from before the fix: a marker naming version 7 outlived its tenant.
        let mut txn = Txn::new();
        txn.put(keys::data_key_rotation("acme"), 7u32.to_be_bytes().to_vec())
            .put(keys::data_key_rotation("gone"), 3u32.to_be_bytes().to_vec());
        s.store.commit(txn).await.unwrap();
        assert_eq!(s.data_key_status(&admin, &t.id).await.unwrap(), (2, false));
        assert_eq!(s.resume_data_key_rotations().await.unwrap(), 0, "stale markers are cleared, not resumed");
        assert!(s.store.scan(keys::DATA_KEY_ROTATION_PREFIX, None, 10).await.unwrap().is_empty());
        let mut txn = Txn::new();
        txn.put(keys::data_key_rotation("acme"), 7u32.to_be_bytes().to_vec());
        s.store.commit(txn).await.unwrap();
        assert_eq!(s.rotate_data_key(&admin, &t.id).await.unwrap(), 3);
    }

    /// Housekeeping rolls a data key over once the seals reserved under it pass the
    /// threshold, once even when two runs race; the old key keeps opening what it sealed
    /// until a full rotation re-seals it and destroys it with its count.
    #[tokio::test]
    async fn a_data_key_rotates_well_before_its_seal_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn crate::store::Store> =
            std::sync::Arc::new(crate::store::SledStore::open(&dir.path().join("store")).unwrap());
        let limits = crate::service::settings::SealLimits { block: 8, rotate_after: 32, limit: 1 << 40 };
        let s = testing::sigil_with_settings(dir.path(), store, std::sync::Arc::new(crate::clock::SystemClock), |s| s.seal_limits = limits);
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap().id;
        let admin = testing::admin(&t);
        assert_eq!(s.rotate_worn_data_keys().await.unwrap(), 0);
        let mut i = 0;
        while s.seals_reserved(&t, 1).await.unwrap() < 32 {
            s.record(&t, "test".into(), Event::new("test.event", json!({ "i": i }))).await.unwrap();
            i += 1;
        }
        assert_eq!(s.data_key_status(&admin, &t).await.unwrap(), (1, false));
        let (x, y) = tokio::join!(s.rotate_worn_data_keys(), s.rotate_worn_data_keys());
        assert_eq!(x.unwrap() + y.unwrap(), 1, "rolled over once");
        // New records are sealed under the new key; the old one still opens its records.
        assert_eq!(s.data_key_status(&admin, &t).await.unwrap(), (2, false));
        assert_eq!(s.rotate_worn_data_keys().await.unwrap(), 0, "the new key is fresh");
        s.record(&t, "test".into(), Event::new("test.event", json!({ "i": i }))).await.unwrap();
        assert_eq!(s.seals_reserved(&t, 2).await.unwrap(), 8);
        s.keys.evict_all();
        let entries = s.audit_entries(&t, 0, 1000).await.unwrap();
        assert!(entries.iter().any(|e| e.event == "data_key.rolled_over" && e.actor == "system:seal-limit"));
        assert_eq!(blob_key_version(&s.store.get(&keys::audit_entry(&t, 1)).await.unwrap().unwrap()).unwrap(), 1);
        assert!(s.audit_verify(&admin, &t).await.unwrap().ok);
        // A full rotation later re-seals everything and destroys both older keys.
        s.rotate_data_key(&admin, &t).await.unwrap();
        s.finish_data_key_rotation(&t, Duration::ZERO).await.unwrap();
        assert_eq!(s.data_key_status(&admin, &t).await.unwrap(), (3, false));
        assert_eq!(s.store.scan(&keys::data_key_prefix(&t), None, 10).await.unwrap().len(), 1);
        assert!(s.store.get(&keys::seal_count(&t, 1)).await.unwrap().is_none(), "the old key's count outlived it");
        assert!(s.audit_verify(&admin, &t).await.unwrap().ok);
    }

    #[tokio::test]
    async fn retired_agents_leave_no_private_key_or_token() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
        s.rotate_agent_key(&admin, &t.id, &a.id).await.unwrap();
        s.retire_agent(&admin, &t.id, &a.id).await.unwrap();
        let left = s.store.scan(format!("t/acme/k/{}/", a.id).as_bytes(), None, 10).await.unwrap();
        assert!(left.is_empty(), "private keys left behind");
        assert!(s.authenticate(&a.access_token.reveal_once()).await.is_err());
        assert!(matches!(s.agent_did_document(&t.id, &a.id).await, Err(ServiceError::Gone { .. })));
    }

    /// Issuing (a new agent's identity credential) while the issuer key and the data key
    /// rotate underneath: every issuance succeeds and every record stays readable. A
    /// creation that read the tenant record before a rotation must not look for the
    /// destroyed private key (that answered 500 under the API fuzzer), and a key set
    /// loaded before a data-key rotation must not be cached after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn issuance_survives_concurrent_key_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap();
        let admin = testing::admin(&t.id);
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (s, t, admin) = (s.clone(), t.id.clone(), admin.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..25 {
                    let new = NewAgent { name: format!("bot-{w}-{i}"), ..Default::default() };
                    ids.push(s.create_agent(&admin, &t, new).await.map_err(|e| format!("create_agent: {e:?}"))?.id);
                }
                Ok::<_, String>(ids)
            }));
        }
        let rotations = {
            let (s, t, admin) = (s.clone(), t.id.clone(), admin.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    s.rotate_issuer_key(&admin, &t, false).await.map_err(|e| format!("rotate_issuer_key: {e:?}"))?;
                    if i % 5 == 0 {
                        match s.rotate_data_key(&admin, &t).await {
                            Ok(_) | Err(ServiceError::Conflict { .. }) => {}
                            Err(e) => return Err(format!("rotate_data_key: {e:?}")),
                        }
                    }
                    tokio::task::yield_now().await;
                }
                Ok::<_, String>(())
            })
        };
        let mut agents = Vec::new();
        for task in tasks {
            agents.extend(task.await.unwrap().unwrap());
        }
        rotations.await.unwrap().unwrap();
        while s.store.get(&keys::data_key_rotation("acme")).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.keys.evict_all();
        s.signers.evict(&crate::ids::TenantId::parse("acme").unwrap(), None);
        for a in &agents {
            let view = s.get_agent(&admin, &t.id, a).await.unwrap();
            let cred = view.record.identity_credential_id.unwrap();
            s.get_credential(&admin, &t.id, &cred).await.unwrap();
        }
        assert!(s.audit_verify(&admin, &t.id).await.unwrap().ok);
    }

    /// Root rotations racing each other, tenant creations and deletions, data-key rotations
    /// and cold loads of tenant keys: every call succeeds, and afterwards every stored data-key wrap
    /// opens under the final root alone (what the next start will have).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn root_rotation_races_wraps_and_key_loads() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::sigil(dir.path());
        let op = testing::operator();
        let mut old = Vec::new();
        for i in 0..4 {
            old.push(s.create_tenant(&op, Some(&format!("old{i}")), "Old").await.unwrap().id);
        }
        let mut doomed = Vec::new();
        for i in 0..4 {
            doomed.push(s.create_tenant(&op, Some(&format!("doomed{i}")), "Doomed").await.unwrap().id);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..3 {
            let (s, op) = (s.clone(), op.clone());
            let key_file = dir.path().join(format!("next{i}.key"));
            crate::datadir::write_new_key_file(&key_file, &SecretBytes::random(32)).unwrap();
            tasks.spawn(async move { s.rotate_root_key(&op, &key_file).await.map(|_| ()) });
        }
        for i in 0..6 {
            let (s, op) = (s.clone(), op.clone());
            tasks.spawn(async move { s.create_tenant(&op, Some(&format!("new{i}")), "New").await.map(|_| ()) });
        }
        for t in old.clone() {
            let s = s.clone();
            tasks.spawn(async move { s.rotate_data_key(&testing::admin(&t), &t).await.map(|_| ()) });
        }
        for t in doomed.clone() {
            let (s, op) = (s.clone(), op.clone());
            tasks.spawn(async move { s.delete_tenant(&op, &t).await });
        }
        for _ in 0..2 {
            let (s, old) = (s.clone(), old.clone());
            tasks.spawn(async move {
                for _ in 0..40 {
                    s.keys.evict_all();
                    for t in &old {
                        s.tenant_keys(t).await?;
                    }
                    tokio::task::yield_now().await;
                }
                Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        assert_eq!(s.keys.root().version(), 4, "three rotations, one after another");
        // Every stored wrap opens under the final root; returns (tenant, version) of each.
        let wraps = || async {
            let root = s.keys.root();
            let mut found = std::collections::BTreeSet::new();
            for (k, blob) in s.store.scan(keys::DATA_KEY_PREFIX, None, usize::MAX).await.unwrap() {
                let k = String::from_utf8(k).unwrap();
                let mut parts = k.split('/').skip(1);
                let (t, v) = (parts.next().unwrap().to_owned(), u32::from_str_radix(parts.next().unwrap(), 16).unwrap());
                root.unwrap_data_key(&t, v, &blob).unwrap_or_else(|_| panic!("{k} is not under the final root"));
                found.insert((t, v));
            }
            found
        };
        // Each surviving tenant's current key: version 2 for the four rotated, 1 for the six
        // new; nothing of the deleted ones. The rotated tenants' version 1 stays until their
        // re-sealing finishes in the background, after a settle delay of its own, so at this
        // point it may be there or not.
        let current: std::collections::BTreeSet<(String, u32)> =
            old.iter().map(|t| (t.to_string(), 2)).chain((0..6).map(|i| (format!("new{i}"), 1))).collect();
        let retiring: std::collections::BTreeSet<(String, u32)> = old.iter().map(|t| (t.to_string(), 1)).collect();
        let found = wraps().await;
        assert!(found.is_superset(&current), "a current data key is missing: {found:?}");
        let unexpected: Vec<_> = found.iter().filter(|w| !current.contains(*w) && !retiring.contains(*w)).collect();
        assert!(unexpected.is_empty(), "wraps of no current key or running rotation (a shredded key came back?): {unexpected:?}");
        // Once the rotations have finished, exactly the current keys remain.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        for t in &old {
            while s.store.get(&keys::data_key_rotation(t.as_str())).await.unwrap().is_some() {
                assert!(std::time::Instant::now() < deadline, "{t}'s data-key rotation never finished");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert_eq!(wraps().await, current);
    }
}
