//! The approval a human gave to one exact request, as a tenant-signed credential
//! (`SigilApprovalCredential`) that travels inside the holder-signed presentation, and the
//! rule a verifier applies: a presented action that the delegation says needs approval is
//! refused (`approval_missing`) unless an approval from the delegation's own issuer, for
//! this holder, this delegation and this exact request ([`request_hash`]), is enclosed.
//!
//! Must never: let the challenge or the domain into the request hash (a verifier's fresh
//! challenge must not invalidate an approval), or accept an approval whose hash, delegation
//! or issuer differs from the presented ones.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::credential::{VC_V2, issuer_id, types};

/// The credential type of an approval.
pub const APPROVAL_TYPE: &str = "SigilApprovalCredential";

/// SHA-256 (hex) of what an approval covers: holder, delegation credential `id`, action,
/// resource and context, in their RFC 8785 form. The same value on both sides: the service
/// computes it from the request, a verifier from the presentation. A request that has no
/// RFC 8785 form is an error, never a hash: a fallback value would be the same for every
/// such request, and one approval would then cover them all.
pub fn request_hash(
    holder: &str,
    delegation_id: &str,
    action: &str,
    resource: Option<&str>,
    context: &Map<String, Value>,
) -> Result<String, super::jcs::JcsError> {
    let doc = json!({"holder": holder, "delegation": delegation_id, "action": action, "resource": resource, "context": context});
    let bytes = super::jcs::canonicalize(&doc)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// What an approval says, as a verifier reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalClaim {
    pub id: Option<String>,
    pub issuer: String,
    pub holder: String,
    pub delegation: String,
    pub request_hash: String,
    pub approver: Option<String>,
    pub approved_at: Option<String>,
}

impl ApprovalClaim {
    /// The claim of one enclosed credential, if it is an approval.
    pub fn of(vc: &Value) -> Option<Self> {
        if !types(vc).contains(&APPROVAL_TYPE) {
            return None;
        }
        let subject = vc.get("credentialSubject")?;
        let a = subject.get("approvedRequest")?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: s(vc, "id"),
            issuer: issuer_id(vc)?.to_owned(),
            holder: s(subject, "id")?,
            delegation: s(a, "delegation")?,
            request_hash: s(a, "requestHash")?,
            approver: s(a, "approver"),
            approved_at: s(a, "approvedAt"),
        })
    }

    /// The report form (`/v1/verify` shows it).
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "issuer": self.issuer, "approver": self.approver, "approved_at": self.approved_at,
               "request_hash": self.request_hash, "delegation": self.delegation})
    }
}

/// The unsigned approval credential.
pub struct NewApproval<'a> {
    pub id: &'a str,
    pub issuer: &'a str,
    pub context_url: &'a str,
    pub holder: &'a str,
    pub delegation: &'a str,
    pub request_hash: &'a str,
    pub approver: &'a str,
    pub approved_at: &'a str,
    pub valid_until: &'a str,
}

impl NewApproval<'_> {
    /// The document to sign.
    pub fn document(&self) -> Map<String, Value> {
        let v = json!({
            "@context": [VC_V2, self.context_url],
            "id": format!("urn:uuid:{}", self.id),
            "type": ["VerifiableCredential", APPROVAL_TYPE],
            "issuer": self.issuer,
            "validFrom": self.approved_at,
            "validUntil": self.valid_until,
            "credentialSubject": {
                "id": self.holder,
                "approvedRequest": {
                    "delegation": self.delegation,
                    "requestHash": self.request_hash,
                    "approver": self.approver,
                    "approvedAt": self.approved_at,
                },
            },
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// Finds the approval that matches a presented request under one delegation: issued by
/// `issuer` (the delegation's), about `holder`, naming `delegation_id` and `hash`.
pub fn matching<'a>(claims: &'a [ApprovalClaim], issuer: &str, holder: &str, delegation_id: &str, hash: &str) -> Option<&'a ApprovalClaim> {
    claims.iter().find(|c| c.issuer == issuer && c.holder == holder && c.delegation == delegation_id && c.request_hash == hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_hash(h: &str, d: &str, a: &str, r: Option<&str>, c: &Map<String, Value>) -> String {
        super::request_hash(h, d, a, r, c).unwrap()
    }

    #[test]
    fn the_hash_covers_the_request_and_nothing_else() {
        let ctx: Map<String, Value> = serde_json::from_value(json!({"amount": "250.00", "currency": "EUR"})).unwrap();
        let h = request_hash("did:a", "urn:uuid:d", "refunds:create", Some("orders/1"), &ctx);
        assert_eq!(h, request_hash("did:a", "urn:uuid:d", "refunds:create", Some("orders/1"), &ctx));
        let mut other = ctx.clone();
        other.insert("amount".into(), "250.01".into());
        for changed in [
            request_hash("did:b", "urn:uuid:d", "refunds:create", Some("orders/1"), &ctx),
            request_hash("did:a", "urn:uuid:e", "refunds:create", Some("orders/1"), &ctx),
            request_hash("did:a", "urn:uuid:d", "refunds:delete", Some("orders/1"), &ctx),
            request_hash("did:a", "urn:uuid:d", "refunds:create", Some("orders/2"), &ctx),
            request_hash("did:a", "urn:uuid:d", "refunds:create", None, &ctx),
            request_hash("did:a", "urn:uuid:d", "refunds:create", Some("orders/1"), &other),
        ] {
            assert_ne!(h, changed);
        }
    }
}
