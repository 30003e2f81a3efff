//! W3C VC-API (VCALM) issue, status and verify for a tenant, so standard test suites and
//! tooling can drive Sigil: issue checks a caller-supplied credential against the VC Data
//! Model 2.0 ([`crate::vc::datamodel`]) and signs it with the tenant's issuer key, adding
//! Bitstring Status List entries when the request asks (such credentials are stored, and
//! their status changes through the VC-API status route or Sigil's own routes); verify
//! checks any `did:key` / `did:web` credential with the shared verifier.
//!
//! Must never: sign a credential the data model forbids, or store one it did not add
//! status to (without status there is nothing to change later).

use serde_json::{Map, Value};

use crate::clock::rfc3339;
use crate::codes::ErrorCode;
use crate::ids::TenantId;
use crate::service::kernel::issue::StatusChange;
use crate::service::kernel::issue::jsonld_error;
use crate::service::kernel::journal::{Event, actor};
use crate::service::kernel::mutation::{Attempt, Effects};
use crate::service::kernel::resolver::LocalFirst;
use crate::service::kernel::status::Purpose;
use crate::service::{Caller, ServiceError, Sigil};
use crate::store::Txn;
use crate::vc::credential::issuer_id;
use crate::vc::datamodel::{self, is_url};
use crate::vc::jsonld::{self, ExpansionFinding};
use crate::vc::proof::Cryptosuite;
use crate::vc::verify::{self, CredentialOptions, Report};

/// The status entry type Sigil issues (Bitstring Status List v1.0).
const ENTRY_TYPE: &str = "BitstringStatusListEntry";

/// A VC-API input problem (400), or a service error with its own status.
#[derive(Debug)]
pub enum VcApiError {
    BadRequest(String),
    Service(ServiceError),
}

impl From<ServiceError> for VcApiError {
    fn from(e: ServiceError) -> Self {
        VcApiError::Service(e)
    }
}

/// What the issue route signed.
#[derive(Debug)]
pub struct Issued {
    pub credential: Value,
    /// The record id, when the credential was stored (it carries status): the id Sigil's
    /// own credential routes take.
    pub record_id: Option<String>,
}

/// `options` of an issue request.
#[derive(Debug, Default)]
struct IssueOptions {
    /// Becomes the credential's `id`.
    credential_id: Option<String>,
    /// The status entries to add, in order (at most one per purpose).
    status: Vec<Purpose>,
    /// The Data Integrity cryptosuite (else the tenant's default).
    cryptosuite: Option<Cryptosuite>,
}

/// Parses `options`: `credentialId` (a URL) and Sigil's extension `credentialStatus`, one
/// or more `{type: "BitstringStatusListEntry", statusPurpose: "revocation"|"suspension"}`
/// (the shape of the status route's `credentialStatus`). The VC-API requires an error for
/// any option an implementation does not understand.
fn issue_options(options: Option<Value>) -> Result<IssueOptions, VcApiError> {
    let bad = |m: &str| VcApiError::BadRequest(m.to_owned());
    let o = match options {
        None | Some(Value::Null) => return Ok(IssueOptions::default()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(bad("options must be an object")),
    };
    let mut out = IssueOptions::default();
    for (k, v) in o {
        match k.as_str() {
            "credentialId" => match v {
                // It becomes the credential's `id`, which VC 2.0 requires to be a URL.
                Value::String(s) if s.len() <= 2048 && is_url(&s) => out.credential_id = Some(s),
                _ => return Err(bad("options.credentialId must be a URL (such as urn:uuid:… or https://…)")),
            },
            "credentialStatus" => {
                let entries = match v {
                    Value::Object(e) => vec![e],
                    Value::Array(a) if !a.is_empty() => a
                        .into_iter()
                        .map(|e| e.as_object().cloned())
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad("options.credentialStatus must be an object or an array of objects"))?,
                    _ => return Err(bad("options.credentialStatus must be an object or an array of objects")),
                };
                for e in entries {
                    if e.keys().any(|k| k != "type" && k != "statusPurpose") || e.get("type").and_then(Value::as_str) != Some(ENTRY_TYPE) {
                        return Err(bad(
                            "each options.credentialStatus entry is {\"type\": \"BitstringStatusListEntry\", \"statusPurpose\": …}",
                        ));
                    }
                    let purpose = match e.get("statusPurpose").and_then(Value::as_str) {
                        Some("revocation") => Purpose::Revocation,
                        Some("suspension") => Purpose::Suspension,
                        _ => return Err(bad("options.credentialStatus statusPurpose must be revocation or suspension")),
                    };
                    if out.status.contains(&purpose) {
                        return Err(bad("options.credentialStatus names a statusPurpose twice"));
                    }
                    out.status.push(purpose);
                }
            }
            // Sigil's extension (the VC-API leaves the suite to the issuer's configuration):
            // one issuer, both EdDSA suites, chosen per request.
            "cryptosuite" => match v.as_str().and_then(Cryptosuite::parse) {
                Some(s) => out.cryptosuite = Some(s),
                None => return Err(bad("options.cryptosuite must be eddsa-jcs-2022 or eddsa-rdfc-2022")),
            },
            other => {
                return Err(VcApiError::BadRequest(format!(
                    "options.{other} is not supported (supported: credentialId, credentialStatus, cryptosuite)"
                )));
            }
        }
    }
    Ok(out)
}

/// A VC-API status update (`POST …/vc-api/credentials/status`).
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// The credential's own `id`.
    pub credential_id: String,
    /// `credentialStatus.type`.
    pub entry_type: String,
    /// `credentialStatus.statusPurpose`.
    pub purpose: String,
    /// `credentialStatus.id`, `statusListIndex` and `statusListCredential`, when given:
    /// they must be the credential's entry of that purpose.
    pub entry_id: Option<String>,
    pub list_index: Option<String>,
    pub list_credential: Option<String>,
    /// The new status: set (revoked / suspended) or cleared.
    pub status: bool,
}

/// The state of one status entry after an update.
#[derive(Debug, Clone)]
pub struct StatusUpdated {
    /// The credential's entry of that purpose, as it is in the credential.
    pub entry: Value,
    pub status: bool,
}

impl Sigil {
    /// `POST /tenants/{tenant}/vc-api/credentials/issue`.
    pub async fn vc_api_issue(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        credential: Value,
        options: Option<Value>,
    ) -> Result<Issued, VcApiError> {
        caller.require_tenant_admin(tenant)?;
        let opts = issue_options(options)?;
        let Value::Object(mut doc) = credential else {
            return Err(VcApiError::BadRequest("credential must be a JSON object".into()));
        };
        if doc.contains_key("proof") {
            return Err(VcApiError::BadRequest("credential already has a proof".into()));
        }
        if let Some(id) = opts.credential_id {
            // The VC-API: credentialId "SHOULD NOT be set … if the credential.id property is
            // set". Two different ids for one credential can only be a mistake.
            if doc.get("id").is_some_and(|existing| existing.as_str() != Some(id.as_str())) {
                return Err(VcApiError::BadRequest("options.credentialId and credential.id differ; give the id once".into()));
            }
            doc.insert("id".into(), id.into());
        }
        if !opts.status.is_empty() {
            if doc.contains_key("credentialStatus") {
                return Err(VcApiError::BadRequest(
                    "credential.credentialStatus and options.credentialStatus exclude each other: Sigil adds the entries it is asked for"
                        .into(),
                ));
            }
            // The status route names a credential by its id, as the VC-API does.
            if !doc.contains_key("id") {
                return Err(VcApiError::BadRequest(
                    "a credential issued with status needs an id (credential.id or options.credentialId) to name it in status updates"
                        .into(),
                ));
            }
        }
        datamodel::check_credential(&doc).map_err(|v| VcApiError::BadRequest(v.to_string()))?;
        // eddsa-jcs-2022 signs the RFC 8785 form, which rounds integers beyond ±(2^53−1):
        // the proof would cover another number than the document carries.
        if let Some(path) = crate::vc::jcs::inexact_number("credential", &doc) {
            return Err(VcApiError::BadRequest(format!(
                "{path}: numbers must lie within ±(2^53−1) (RFC 8785 would round a larger one): send it as a string"
            )));
        }
        // The rules that need JSON-LD expansion, for either cryptosuite: a JCS credential
        // is still JSON-LD to its verifiers.
        match jsonld::check_expanded(&Value::Object(doc.clone())) {
            Ok(()) => {}
            Err(ExpansionFinding::TypeNotUrl(t)) => {
                return Err(VcApiError::BadRequest(format!(
                    "a type expands to {t}, not a URL (VC Data Model 2.0 §{})",
                    datamodel::section::TYPES
                )));
            }
            Err(ExpansionFinding::Error(e)) => return Err(jsonld_error(e).into()),
        }
        let did = self.tenant_did(tenant);
        if issuer_id(&Value::Object(doc.clone())) != Some(did.as_str()) {
            // VC-API issuer.yml: 400 when "the provided value of 'issuer' does not match the
            // expected configuration".
            return Err(VcApiError::BadRequest(format!("issuer must be this tenant ({did})")));
        }
        let (valid_from, valid_until) = datamodel::validity_period(&doc).map_err(|v| VcApiError::BadRequest(v.to_string()))?;
        let now = self.clock.now();
        // Valid from now unless it says otherwise, or it already ended (a validFrom of now
        // would then come after its validUntil, which §4.9 forbids).
        if valid_from.is_none() && valid_until.is_none_or(|u| now <= u) {
            doc.insert("validFrom".into(), rfc3339(now).into());
        }
        if opts.status.is_empty() {
            let (vc, _) = self.sign_as_issuer(tenant, doc, opts.cryptosuite).await?;
            return Ok(Issued { credential: vc, record_id: None });
        }
        let valid_from = valid_from.unwrap_or_else(|| valid_until.map_or(now, |u| u.min(now)));
        let credential_id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let (t, doc, credential_id, purposes, suite) = (tenant, &doc, credential_id.as_str(), opts.status.as_slice(), opts.cryptosuite);
        // Held from status-index allocation to the commit (not only while staging), so
        // issuances in this tenant take turns instead of failing on the list counters.
        let issuing = &self.issuing(t).await;
        let rec = self
            .mutate(t, &actor(caller), || async move {
                let tk = self.tenant_keys(t).await?;
                let mut txn = Txn::new();
                let rec = self
                    .stage_issued_credential(
                        issuing,
                        &mut txn,
                        &tk,
                        t,
                        doc.clone(),
                        credential_id,
                        purposes,
                        valid_from,
                        valid_until,
                        suite,
                    )
                    .await?;
                let statuses: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
                let event = Event::new("credential.issued", serde_json::json!({"credential_id": rec.id, "status": statuses}));
                Ok(Attempt::commit(txn, event, Effects::none(), rec))
            })
            .await?;
        Ok(Issued { credential: rec.vc, record_id: Some(rec.id) })
    }

    /// `POST /tenants/{tenant}/vc-api/credentials/status`: sets or clears the revocation or
    /// suspension entry of a credential issued with status through the VC-API, named by its
    /// own `id`. Revocation is permanent (clearing it is refused once set).
    pub async fn vc_api_update_status(&self, caller: &Caller, tenant: &TenantId, req: StatusUpdate) -> Result<StatusUpdated, VcApiError> {
        caller.require_tenant_admin(tenant)?;
        // The VC-API's own example says "BitstringStatusList", its test suites send the
        // entry type; both name the one mechanism Sigil issues.
        if req.entry_type != ENTRY_TYPE && req.entry_type != "BitstringStatusList" {
            return Err(VcApiError::BadRequest("credentialStatus.type must be BitstringStatusListEntry".into()));
        }
        let purpose = match req.purpose.as_str() {
            "revocation" => Purpose::Revocation,
            "suspension" => Purpose::Suspension,
            _ => return Err(VcApiError::BadRequest("credentialStatus.statusPurpose must be revocation or suspension".into())),
        };
        let rec = self.issued_credential(tenant, &req.credential_id).await?;
        let entry = status_entry(&rec.vc, purpose.as_str()).cloned().ok_or_else(|| ServiceError::Invalid {
            code: ErrorCode::NoStatusEntry,
            detail: format!("the credential has no {} status entry; it was issued without one", purpose.as_str()),
        })?;
        for (given, key) in [(&req.entry_id, "id"), (&req.list_index, "statusListIndex"), (&req.list_credential, "statusListCredential")] {
            if given.as_ref().is_some_and(|g| entry.get(key).and_then(Value::as_str) != Some(g.as_str())) {
                return Err(VcApiError::BadRequest(format!(
                    "credentialStatus.{key} is not that of the credential's {} entry",
                    purpose.as_str()
                )));
            }
        }
        let change = match (purpose, req.status) {
            (Purpose::Revocation, true) => StatusChange::Revoke,
            (Purpose::Revocation, false) if rec.revoked => {
                return Err(ServiceError::conflict(ErrorCode::CredentialRevoked, "revocation is permanent; issue a new credential").into());
            }
            (Purpose::Revocation, false) => return Ok(StatusUpdated { entry, status: false }),
            (Purpose::Suspension, true) => StatusChange::Suspend,
            (Purpose::Suspension, false) => StatusChange::Resume,
        };
        let rec = self.change_status(&actor(caller), tenant, &rec.id, change).await?;
        let status = match purpose {
            Purpose::Revocation => rec.revoked,
            Purpose::Suspension => rec.suspended,
        };
        Ok(StatusUpdated { entry, status })
    }

    /// Verifies any credential with this deployment's resolver: the proof, validity and
    /// status, and (unless `--vc-api-trust advisory`) an issuer `/v1/verify` trusts, so
    /// that `verified` never stands for an issuer nobody vouched for.
    pub async fn verify_credential(&self, tenant: &TenantId, vc: &Value, check_status: bool) -> Report {
        let resolver = LocalFirst { sigil: self };
        let opts = CredentialOptions { check_status };
        let trust = self.vc_api_trust(tenant);
        verify::verify_credential_in(vc, &resolver, self.clock.now(), opts, &trust, self.vc_api_trust_mode()).await
    }

    /// `POST /tenants/{tenant}/vc-api/credentials/verify` (the tenant only scopes the URL).
    pub async fn vc_api_verify(&self, tenant: &TenantId, body: Map<String, Value>) -> Result<Report, VcApiError> {
        self.tenant_record(tenant).await?;
        let vc = body.get("verifiableCredential").ok_or_else(|| VcApiError::BadRequest("verifiableCredential is required".into()))?;
        if !vc.is_object() {
            return Err(VcApiError::BadRequest("verifiableCredential must be an object".into()));
        }
        let check_status = body
            .get("options")
            .and_then(|o| o.get("checks"))
            .and_then(Value::as_array)
            .is_none_or(|c| c.iter().any(|x| x.as_str().is_some_and(|s| s.contains("status"))));
        Ok(self.verify_credential(tenant, vc, check_status).await)
    }
}

/// The `credentialStatus` entry of `purpose` in a signed credential.
fn status_entry<'a>(vc: &'a Value, purpose: &str) -> Option<&'a Value> {
    let entries: Vec<&Value> = match vc.get("credentialStatus")? {
        Value::Array(a) => a.iter().collect(),
        one => vec![one],
    };
    entries.into_iter().find(|e| e.get("statusPurpose").and_then(Value::as_str) == Some(purpose))
}
