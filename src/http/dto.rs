//! Wire types of Sigil's own JSON (snake_case). Requests reject unknown fields, so a
//! misspelt field can never be silently ignored.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::service::agents::AgentView;
use crate::service::records::{AgentState, KeyState, TokenRole};

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "acme", "name": "Acme Payments"}))]
pub struct CreateTenantRequest {
    /// Optional slug (2–63 chars, `a-z 0-9 -`); random when absent. Appears in the tenant DID.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$")]
    pub id: Option<String>,
    /// Display name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

/// A created tenant. `admin_token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreatedResponse {
    pub id: String,
    pub did: String,
    /// First tenant admin token (shown once).
    pub admin_token: String,
    pub admin_token_id: String,
}

/// A tenant in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummary {
    pub id: String,
    pub did: String,
    pub name: String,
    /// RFC 3339 UTC.
    pub created: String,
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantSummary>,
    pub next_cursor: Option<String>,
}

/// Cursor pagination parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Role of a tenant token.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TenantTokenRole {
    /// Full control of the tenant.
    Admin,
    /// Read-only access, including the audit trail.
    Auditor,
    /// Lists and decides approval requests, nothing else (optionally only for the
    /// delegations of named principals: `principals`).
    Approver,
}

impl From<TenantTokenRole> for TokenRole {
    fn from(r: TenantTokenRole) -> Self {
        match r {
            TenantTokenRole::Admin => TokenRole::Admin,
            TenantTokenRole::Auditor => TokenRole::Auditor,
            TenantTokenRole::Approver => TokenRole::Approver,
        }
    }
}

/// `POST /v1/tenants/{tenant}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "auditor", "expires_in": 2592000}))]
pub struct CreateTokenRequest {
    pub role: TenantTokenRole,
    /// Optional lifetime in seconds (60 s – 1 year); without it the token lives until it
    /// is deleted.
    #[schema(minimum = 60, maximum = 31536000)]
    pub expires_in: Option<u64>,
    /// Approver tokens only: the principal identifiers whose delegations it may decide
    /// approvals under (1–64; absent: every principal of the tenant; `[]` is refused).
    #[schema(min_items = 1, max_items = 64)]
    pub principals: Option<Vec<String>>,
}

/// A new tenant token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreatedResponse {
    pub id: String,
    pub role: TenantTokenRole,
    pub token: String,
    /// RFC 3339 UTC; absent for a token without expiry.
    pub expires_at: Option<String>,
}

/// A new operator token (shown once); every earlier operator token is revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorTokenResponse {
    pub token_id: String,
    pub token: String,
    /// How many earlier operator tokens stopped working.
    pub revoked: usize,
}

/// Whom a listed token belongs to.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ListedTokenRole {
    /// Full control of the tenant.
    Admin,
    /// Read-only access, including the audit trail.
    Auditor,
    /// One agent's access token (`agent` names it).
    Agent,
    /// Decides approval requests.
    Approver,
}

/// A token as listed. Neither the token nor its hash is ever shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSummary {
    pub id: String,
    pub role: ListedTokenRole,
    /// The agent of an agent token.
    pub agent: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC; absent for a token without expiry. A token past it is refused, and
    /// listed until it is deleted.
    pub expires_at: Option<String>,
    /// RFC 3339 UTC, exact to within 5 minutes (uses are noted when the token is read from
    /// the store, not on every request); absent if it was never used.
    pub last_used_at: Option<String>,
    /// An approver token's principals (absent: every principal, or not an approver).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// A page of tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenSummary>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/tenants/{tenant}/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "refund-bot", "operator": "Acme Payments", "software": "refund-bot/1.2", "metadata": {"team": "payments"}}))]
pub struct CreateAgentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub operator: Option<String>,
    pub software: Option<String>,
    /// Free-form JSON object (≤ 64 keys, ≤ 8 KiB), sealed at rest.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A created agent. `access_token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCreatedResponse {
    pub id: String,
    pub did: String,
    pub access_token: String,
    pub token_id: String,
    /// Id of the `AgentIdentityCredential` issued with the agent.
    pub identity_credential_id: Option<String>,
}

/// Lifecycle state of an agent.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AgentState)]
pub enum AgentStateDto {
    Active,
    Suspended,
    Retired,
}

impl From<AgentState> for AgentStateDto {
    fn from(s: AgentState) -> Self {
        match s {
            AgentState::Active => Self::Active,
            AgentState::Suspended => Self::Suspended,
            AgentState::Retired => Self::Retired,
        }
    }
}

/// State of a key version.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = KeyState)]
pub enum KeyStateDto {
    Active,
    Retired,
    Compromised,
}

impl From<KeyState> for KeyStateDto {
    fn from(s: KeyState) -> Self {
        match s {
            KeyState::Active => Self::Active,
            KeyState::Retired => Self::Retired,
            KeyState::Compromised => Self::Compromised,
        }
    }
}

/// Public information about one key version.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub version: u32,
    /// DID URL of the verification method.
    pub id: String,
    /// Multikey, base58btc (`z6Mk…`).
    pub public_key_multibase: String,
    pub state: KeyStateDto,
    pub created: String,
    pub retired_at: Option<String>,
}

/// An agent (no secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub did: String,
    pub name: String,
    pub operator: Option<String>,
    pub software: Option<String>,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub state: AgentStateDto,
    pub created: String,
    pub current_key_version: u32,
    pub keys: Vec<KeyInfo>,
    pub identity_credential_id: Option<String>,
    pub credential_ids: Vec<String>,
}

impl From<AgentView> for Agent {
    fn from(v: AgentView) -> Self {
        let r = v.record;
        let keys = r
            .keys
            .iter()
            .map(|k| KeyInfo {
                version: k.version,
                id: format!("{}#key-{}", v.did, k.version),
                public_key_multibase: crate::vc::multikey::encode_hex(&k.public_hex).unwrap_or_default(),
                state: k.state.into(),
                created: k.created.to_string(),
                retired_at: k.retired_at.map(|t| t.to_string()),
            })
            .collect();
        Self {
            id: r.id,
            did: v.did,
            name: r.name,
            operator: r.operator,
            software: r.software,
            metadata: r.metadata,
            state: r.state.into(),
            created: r.created.to_string(),
            current_key_version: r.current_key,
            keys,
            identity_credential_id: r.identity_credential_id,
            credential_ids: r.credential_ids,
        }
    }
}

/// A page of agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<Agent>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/tenants/{tenant}/agents/{agent}/tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateAgentTokenRequest {
    /// Optional lifetime of the new token in seconds (60 s – 1 year).
    pub expires_in: Option<u64>,
    /// Keep earlier tokens valid for this many seconds (≤ 1 day) instead of revoking them now.
    pub grace_seconds: Option<u64>,
}

/// A new agent access token (shown once); every earlier token of the agent is revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentTokenResponse {
    pub token_id: String,
    pub access_token: String,
    pub expires_at: Option<String>,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Person or role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PrincipalKind)]
pub enum PrincipalKindDto {
    Person,
    Role,
}

/// Who delegates.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Principal)]
pub struct PrincipalDto {
    /// Stable identifier of the person or role (e-mail, employee id, role name); not blank,
    /// no control characters, at most 200 characters.
    #[schema(schema_with = super::constraints::principal_id)]
    pub id: String,
    pub kind: PrincipalKindDto,
    /// Display name; the same rules as `id`.
    #[schema(schema_with = super::constraints::principal_name)]
    pub name: Option<String>,
}

/// An amount limit; amounts are decimal strings, never numbers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AmountLimit)]
pub struct AmountLimitDto {
    /// Maximum per request, a decimal string such as `"500.00"`.
    #[schema(schema_with = super::constraints::amount)]
    pub max: String,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(schema_with = super::constraints::currency)]
    pub currency: String,
    /// Optional cumulative maximum per calendar day (in the schedule's time zone, else UTC);
    /// at least `max`.
    #[schema(schema_with = super::constraints::amount_opt)]
    pub per_day: Option<String>,
}

/// Limits of a delegation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Limits)]
pub struct LimitsDto {
    pub amount: Option<AmountLimitDto>,
}

/// Weekly schedule in an IANA time zone; `from` inclusive, `to` exclusive, `to` > `from`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}))]
#[schema(as = Schedule)]
pub struct ScheduleDto {
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    #[schema(min_length = 1, max_length = 64)]
    pub timezone: String,
    /// Each of `mon tue wed thu fri sat sun` at most once.
    #[schema(schema_with = super::constraints::days)]
    pub days: Vec<String>,
    /// `HH:MM`, 24-hour.
    #[schema(schema_with = super::constraints::hhmm)]
    pub from: String,
    /// `HH:MM`, later than `from` (`24:00` for the end of the day).
    #[schema(schema_with = super::constraints::hhmm)]
    pub to: String,
}

/// An amount above which approval is needed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalThreshold)]
pub struct ThresholdDto {
    /// A decimal string, e.g. `"200.00"`: requests strictly above it need approval.
    #[schema(schema_with = super::constraints::amount)]
    pub amount: String,
    /// ISO 4217 code; a request in another currency, or without an amount, needs approval.
    #[schema(schema_with = super::constraints::currency)]
    pub currency: String,
}

/// When a delegation's requests need human approval (step-up).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalRule, example = json!({"actions": ["refunds:create"], "above": {"amount": "200.00", "currency": "EUR"}}))]
pub struct ApprovalRuleDto {
    /// Actions (or `namespace:*`) that need approval; absent or empty: every action granted.
    #[schema(max_items = 64)]
    pub actions: Option<Vec<String>>,
    /// Only above this amount; absent: whatever the amount.
    pub above: Option<ThresholdDto>,
}

/// Whether the holder may re-delegate a subset to other agents of its tenant, and how many
/// levels below this delegation (1 = its children may not re-delegate).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Delegable)]
pub struct DelegableDto {
    /// 1–5.
    #[schema(minimum = 1, maximum = 5)]
    pub max_depth: u8,
}

/// An authority from its request fields; errors are user-facing messages.
pub(crate) fn authority_from(
    actions: &[String],
    resources: &[String],
    limits: Option<LimitsDto>,
    schedule: Option<ScheduleDto>,
    delegable: Option<DelegableDto>,
    approval: Option<ApprovalRuleDto>,
) -> Result<crate::policy::Authority, String> {
    use crate::policy::{AmountLimit, Authority, Delegable, Limits, Schedule};
    let amount = match limits.and_then(|l| l.amount) {
        Some(a) => Some(AmountLimit::parse(&a.max, &a.currency, a.per_day.as_deref()).map_err(|e| e.0)?),
        None => None,
    };
    let schedule = match schedule {
        Some(s) => Some(Schedule::parse(&s.timezone, &s.days, &s.from, &s.to).map_err(|e| e.0)?),
        None => None,
    };
    let delegable = delegable.map(|d| Delegable::new(d.max_depth)).transpose()?;
    let approval = match approval {
        Some(a) => Some(
            crate::policy::ApprovalRule::new(
                &a.actions.unwrap_or_default(),
                a.above.as_ref().map(|t| (t.amount.as_str(), t.currency.as_str())),
            )
            .map_err(|e| e.0)?,
        ),
        None => None,
    };
    Ok(Authority::new(actions, resources, Limits { amount }, schedule).map_err(|e| e.0)?.with_delegable(delegable).with_approval(approval))
}

/// `POST /v1/tenants/{tenant}/agents/{agent}/delegations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "principal": {"id": "alice@acme.example", "kind": "person", "name": "Alice"},
    "actions": ["refunds:create"], "resources": ["orders/*"],
    "limits": {"amount": {"max": "500.00", "currency": "EUR", "per_day": "1000.00"}},
    "schedule": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"},
    "valid_until": "2027-01-01T00:00:00Z"}))]
pub struct CreateDelegationRequest {
    pub principal: PrincipalDto,
    /// 1–64 exact actions (`refunds:create`) or namespace wildcards (`orders:*`).
    #[schema(schema_with = super::constraints::action_patterns)]
    pub actions: Vec<String>,
    /// 1–64 resource globs; `*` stays within one `/` segment, `**` crosses segments.
    #[schema(schema_with = super::constraints::resource_patterns)]
    pub resources: Vec<String>,
    pub limits: Option<LimitsDto>,
    pub schedule: Option<ScheduleDto>,
    /// Requests that need a human's approval before a presentation is signed.
    pub approval: Option<ApprovalRuleDto>,
    /// Allows the holder to sub-delegate a subset (`POST /v1/agent/delegations`).
    pub delegable: Option<DelegableDto>,
    /// RFC 3339; default now.
    #[schema(schema_with = super::constraints::date_time_opt)]
    pub valid_from: Option<String>,
    /// RFC 3339, later than `valid_from` and than now.
    #[schema(schema_with = super::constraints::date_time)]
    pub valid_until: String,
}

fn parse_ts(field: &str, s: &str) -> Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>().map_err(|_| format!("{field} must be an RFC 3339 time like 2027-01-01T00:00:00Z"))
}

impl CreateDelegationRequest {
    /// Parses into the domain type; errors are user-facing messages.
    pub fn into_domain(self) -> Result<crate::service::credentials::NewDelegation, String> {
        use crate::policy::{Principal, PrincipalKind};
        let kind = match self.principal.kind {
            PrincipalKindDto::Person => PrincipalKind::Person,
            PrincipalKindDto::Role => PrincipalKind::Role,
        };
        let principal = Principal::new(self.principal.id, kind, self.principal.name).map_err(|e| e.0)?;
        let authority = authority_from(&self.actions, &self.resources, self.limits, self.schedule, self.delegable, self.approval)?;
        Ok(crate::service::credentials::NewDelegation {
            principal,
            authority,
            valid_from: self.valid_from.as_deref().map(|s| parse_ts("valid_from", s)).transpose()?,
            valid_until: parse_ts("valid_until", &self.valid_until)?,
        })
    }
}

/// Kind of wallet credential.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CredentialKind)]
pub enum CredentialKindDto {
    Identity,
    Delegation,
    Issued,
}

/// A wallet credential without its proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialSummary {
    pub id: String,
    pub kind: CredentialKindDto,
    /// `active`, `suspended`, `revoked`, `expired` or `not_yet_valid`.
    pub status: String,
    pub agent_id: Option<String>,
    pub issued: String,
    pub valid_from: String,
    pub valid_until: Option<String>,
    pub principal: Option<PrincipalDto>,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// A sub-delegation's parent (credential id); absent for a root delegation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Set when the holder may sub-delegate this delegation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegable: Option<DelegableDto>,
}

impl CredentialSummary {
    pub fn new(r: &crate::service::records::CredentialRecord, now: jiff::Timestamp) -> Self {
        use crate::service::records::CredentialKind as K;
        let (actions, resources) = match &r.authority {
            Some(a) => {
                (a.actions.iter().map(|x| x.as_str().to_owned()).collect(), a.resources.iter().map(|x| x.as_str().to_owned()).collect())
            }
            None => (vec![], vec![]),
        };
        Self {
            id: r.id.clone(),
            kind: match r.kind {
                K::Identity => CredentialKindDto::Identity,
                K::Delegation => CredentialKindDto::Delegation,
                K::Issued => CredentialKindDto::Issued,
            },
            status: crate::service::credentials::effective_status(r, now).to_owned(),
            agent_id: r.agent.clone(),
            issued: crate::clock::rfc3339(r.issued),
            valid_from: crate::clock::rfc3339(r.valid_from),
            valid_until: r.valid_until.map(crate::clock::rfc3339),
            principal: r.principal.as_ref().map(|p| PrincipalDto {
                id: p.identifier.clone(),
                kind: match p.kind {
                    crate::policy::PrincipalKind::Person => PrincipalKindDto::Person,
                    crate::policy::PrincipalKind::Role => PrincipalKindDto::Role,
                },
                name: p.name.clone(),
            }),
            actions,
            resources,
            parent: crate::vc::chain::parent_of(&r.vc).map(|p| crate::vc::chain::record_id(&p.id).to_owned()),
            delegable: r.authority.as_ref().and_then(|a| a.delegable).map(|d| DelegableDto { max_depth: d.max_depth }),
        }
    }
}

/// A credential summary plus the signed W3C credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialResponse {
    #[serde(flatten)]
    pub summary: CredentialSummary,
    /// The signed `VerifiableCredential` (VC 2.0, `eddsa-jcs-2022`).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub credential: serde_json::Value,
}

impl CredentialResponse {
    pub fn new(r: &crate::service::records::CredentialRecord, now: jiff::Timestamp) -> Self {
        Self { summary: CredentialSummary::new(r, now), credential: r.vc.clone() }
    }
}

/// An agent's wallet.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialList {
    pub items: Vec<CredentialSummary>,
}
