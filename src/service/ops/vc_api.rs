//! W3C VC-API (VCALM) issue and verify for a tenant, so standard test suites can drive
//! Sigil: issue checks a caller-supplied credential against the VC Data Model 2.0
//! ([`crate::vc::datamodel`]) and signs it with the tenant's issuer key; verify checks any
//! `did:key` / `did:web` credential with the shared verifier.
//!
//! Must never: sign a credential the data model forbids.

use serde_json::{Map, Value};

use crate::clock::rfc3339;
use crate::ids::TenantId;
use crate::service::kernel::resolver::LocalFirst;
use crate::service::{Caller, ServiceError, Sigil};
use crate::vc::credential::issuer_id;
use crate::vc::datamodel::{self, is_url};
use crate::vc::proof::{self, ProofOptions};
use crate::vc::verify::{self, CredentialOptions, Report};

/// A VC-API input problem: 400 for malformed input, 422 for well-formed but unacceptable.
#[derive(Debug)]
pub enum VcApiError {
    BadRequest(String),
    Unprocessable(String),
    Service(ServiceError),
}

impl From<ServiceError> for VcApiError {
    fn from(e: ServiceError) -> Self {
        VcApiError::Service(e)
    }
}

impl Sigil {
    /// `POST /tenants/{tenant}/vc-api/credentials/issue`.
    pub async fn vc_api_issue(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        credential: Value,
        options: Option<Value>,
    ) -> Result<Value, VcApiError> {
        caller.require_tenant_admin(tenant)?;
        if let Some(o) = &options {
            let ok = o.as_object().is_some_and(|m| m.keys().all(|k| k == "credentialId"));
            if !ok {
                return Err(VcApiError::BadRequest("options may only contain credentialId".into()));
            }
            // It becomes the credential's `id`, which VC 2.0 requires to be a URL.
            if let Some(id) = o.get("credentialId") {
                if !id.as_str().is_some_and(|s| s.len() <= 2048 && is_url(s)) {
                    return Err(VcApiError::BadRequest("options.credentialId must be a URL (such as urn:uuid:… or https://…)".into()));
                }
            }
        }
        let Value::Object(mut doc) = credential else {
            return Err(VcApiError::BadRequest("credential must be a JSON object".into()));
        };
        if doc.contains_key("proof") {
            return Err(VcApiError::BadRequest("credential already has a proof".into()));
        }
        if let Some(id) = options.as_ref().and_then(|o| o.get("credentialId")) {
            // The VC-API: credentialId "SHOULD NOT be set … if the credential.id property is
            // set". Two different ids for one credential can only be a mistake.
            if doc.get("id").is_some_and(|existing| existing != id) {
                return Err(VcApiError::BadRequest("options.credentialId and credential.id differ; give the id once".into()));
            }
            doc.insert("id".into(), id.clone());
        }
        datamodel::check_credential(&doc).map_err(|v| VcApiError::BadRequest(v.to_string()))?;
        let t = tenant;
        let did = self.tenant_did(t);
        if issuer_id(&Value::Object(doc.clone())) != Some(did.as_str()) {
            return Err(VcApiError::Unprocessable(format!("issuer must be this tenant ({did})")));
        }
        let (valid_from, valid_until) = datamodel::validity_period(&doc).map_err(|v| VcApiError::BadRequest(v.to_string()))?;
        let now = self.clock.now();
        // Valid from now unless it says otherwise, or it already ended (a validFrom of now
        // would then come after its validUntil, which §4.9 forbids).
        if valid_from.is_none() && valid_until.is_none_or(|u| now <= u) {
            doc.insert("validFrom".into(), rfc3339(now).into());
        }
        let rec = self.tenant_record(t).await?;
        let signer = self.signer(t, "issuer", rec.issuer_current).await?;
        let opts = ProofOptions {
            verification_method: format!("{did}#issuer-{}", rec.issuer_current),
            proof_purpose: "assertionMethod",
            created: rfc3339(now),
            expires: None,
            challenge: None,
            domain: None,
        };
        proof::sign(doc, &opts, &signer).map_err(|e| VcApiError::BadRequest(e.to_string()))
    }

    /// Verifies any credential with this deployment's resolver, as the W3C VC-API
    /// specifies: `verified` means the proof, validity and status hold; whether the issuer
    /// is one `/v1/verify` trusts is reported beside it (`issuer_trusted`, advisory).
    pub async fn verify_credential(&self, vc: &Value, check_status: bool) -> Report {
        let resolver = LocalFirst { sigil: self };
        let opts = CredentialOptions { check_status };
        verify::verify_credential_in(vc, &resolver, self.clock.now(), opts, &self.verify_trust, verify::TrustMode::Advisory).await
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
        Ok(self.verify_credential(vc, check_status).await)
    }
}
