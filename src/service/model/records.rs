//! Versioned record types as they are sealed into the store. Every record carries `v` so
//! a later release can read (and migrate) what an earlier one wrote.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// AAD kind labels: one per record type, never reused.
pub mod kind {
    pub const TENANT: &str = "tenant";
    pub const AGENT: &str = "agent";
    pub const PRIVATE_KEY: &str = "private-key";
    pub const TOKEN: &str = "token";
    pub const OPERATOR_TOKEN: &str = "operator-token";
    pub const CREDENTIAL: &str = "credential";
    /// An entry of a tenant's audit trail.
    pub const AUDIT: &str = "audit";
    /// What a delegation spent on one local day (`{credential}/{day}`).
    pub const BUDGET: &str = "budget";
    /// A request for human approval (`service::kernel::approval`).
    pub const APPROVAL: &str = "approval";

    /// True for the kinds a tenant's record manifest covers (`kernel::manifest`): every
    /// sealed record under a tenant but its audit entries, which their hash chain covers.
    /// Operator tokens live outside every tenant.
    pub fn in_manifest(kind: &str) -> bool {
        kind != AUDIT && kind != OPERATOR_TOKEN
    }
}

/// The amount spent under a delegation on one day (its time zone's date), sealed so that
/// neither the spending nor its pattern is readable at rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub v: u16,
    /// Decimal string, in the delegation's currency.
    pub spent: String,
}

/// Lifecycle of a key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs; listed in `authentication`/`assertionMethod`.
    Active,
    /// Private half destroyed; public half still listed so old signatures verify.
    Retired,
    /// Removed from the DID document entirely.
    Compromised,
}

/// One version of an Ed25519 key (public half only; the private half is sealed apart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyVersion {
    pub version: u32,
    /// Raw public key, hex.
    pub public_hex: String,
    pub state: KeyState,
    pub created: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantRecord {
    pub v: u16,
    pub id: String,
    pub name: String,
    pub created: Timestamp,
    pub issuer_keys: Vec<KeyVersion>,
    pub issuer_current: u32,
    /// Maximum key ages enforced by scheduled rotation.
    #[serde(default)]
    pub key_policy: Option<crate::service::model::settings::KeyPolicy>,
    /// Keys that sign audit checkpoints (`#audit-N` in the tenant DID document).
    #[serde(default)]
    pub audit_keys: Vec<KeyVersion>,
    /// Context keys whose values the audit stores only as keyed hashes (superseded by
    /// `guardrails.sensitive_context_keys`; kept so older records still decode).
    #[serde(default)]
    pub sensitive_context_keys: Vec<String>,
    /// Rate limits, anomaly rule and sensitive context keys.
    #[serde(default)]
    pub guardrails: Option<crate::service::model::settings::GuardrailSettings>,
    /// The Data Integrity cryptosuite the tenant issues with unless a request names one
    /// (absent: `eddsa-jcs-2022`).
    #[serde(default)]
    pub cryptosuite: Option<crate::vc::proof::Cryptosuite>,
    /// Human approval settings (webhook, lifetime); absent: defaults, no webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalSettings>,
}

/// A tenant's approval settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalSettings {
    /// Where approval requests are announced (HTTPS, under the egress policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// How long an approval request stays open, and an approval usable, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and spent by the presentation that carried it.
    Used,
}

/// A request for human approval of one exact request of an agent under one delegation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub v: u16,
    pub id: String,
    pub agent: String,
    /// The delegation credential id (the record id, not the `urn:uuid:` form).
    pub delegation: String,
    /// The delegation's principal identifier (approver scopes match on it).
    pub principal: String,
    /// SHA-256 (hex) of what is asked: agent, delegation, action, resource, context
    /// (`vc::approval::request_hash`); never the challenge or the domain.
    pub request_hash: String,
    pub action: String,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub context: serde_json::Map<String, serde_json::Value>,
    pub status: ApprovalStatus,
    pub created: Timestamp,
    pub expires: Timestamp,
    /// Token id of whoever decided (never the token).
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<Timestamp>,
    #[serde(default)]
    pub used_at: Option<Timestamp>,
    /// The tenant-signed `SigilApprovalCredential`, once approved.
    #[serde(default)]
    pub vc: Option<serde_json::Value>,
}

/// Agent lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Active,
    Suspended,
    Retired,
}

/// An agent and its wallet index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub v: u16,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub software: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub state: AgentState,
    pub created: Timestamp,
    pub keys: Vec<KeyVersion>,
    pub current_key: u32,
    pub token_ids: Vec<String>,
    #[serde(default)]
    pub identity_credential_id: Option<String>,
    #[serde(default)]
    pub credential_ids: Vec<String>,
    /// Credentials suspended because the agent was suspended (resume restores exactly these).
    #[serde(default)]
    pub suspended_credentials: Vec<String>,
}

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    Operator,
    Admin,
    Auditor,
    Agent,
    /// Decides approval requests, optionally only for named principals.
    Approver,
}

/// An access token (its keyed hash, never the token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub v: u16,
    pub id: String,
    pub role: TokenRole,
    #[serde(default)]
    pub agent: Option<String>,
    pub created: Timestamp,
    #[serde(default)]
    pub expires: Option<Timestamp>,
    /// HMAC of the token, hex; compared in constant time after the index lookup.
    pub hash_hex: String,
    /// When the token was last used, to within the auth cache's age (written by the
    /// housekeeping task, never on a request path; see `kernel::auth::TokenUse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
    /// An approver token's scope: the principal identifiers whose delegations it may
    /// decide approvals under (empty: every principal of the tenant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// What kind of credential a wallet entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `AgentIdentityCredential`.
    Identity,
    /// `DelegatedAuthorityCredential`.
    Delegation,
    /// Issued through the VC-API route with status entries (arbitrary subject, no agent).
    Issued,
}

/// A status list position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRef {
    pub list: u32,
    pub index: u32,
}

/// A credential in a wallet (the signed VC plus what the service needs to reason about it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub v: u16,
    pub id: String,
    pub kind: CredentialKind,
    #[serde(default)]
    pub agent: Option<String>,
    pub issued: Timestamp,
    pub valid_from: Timestamp,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    pub issuer_key_version: u32,
    /// Its revocation entry. Sigil's own credentials always have one; a credential issued
    /// through the VC-API has the entries its request asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<StatusRef>,
    /// Its suspension entry (see `revocation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<StatusRef>,
    pub revoked: bool,
    pub suspended: bool,
    #[serde(default)]
    pub principal: Option<crate::policy::Principal>,
    #[serde(default)]
    pub authority: Option<crate::policy::Authority>,
    /// The signed credential.
    pub vc: serde_json::Value,
}
