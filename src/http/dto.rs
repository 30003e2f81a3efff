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
    pub id: Option<String>,
    /// Display name.
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
}

impl From<TenantTokenRole> for TokenRole {
    fn from(r: TenantTokenRole) -> Self {
        match r {
            TenantTokenRole::Admin => TokenRole::Admin,
            TenantTokenRole::Auditor => TokenRole::Auditor,
        }
    }
}

/// `POST /v1/tenants/{tenant}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub role: TenantTokenRole,
}

/// A new tenant token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreatedResponse {
    pub id: String,
    pub role: TenantTokenRole,
    pub token: String,
}

/// `POST /v1/tenants/{tenant}/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "refund-bot", "operator": "Acme Payments", "software": "refund-bot/1.2", "metadata": {"team": "payments"}}))]
pub struct CreateAgentRequest {
    pub name: String,
    pub operator: Option<String>,
    pub software: Option<String>,
    /// Free-form JSON object (≤ 64 keys, ≤ 8 KiB), sealed at rest.
    #[schema(value_type = Option<Object>)]
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
    #[schema(value_type = Object)]
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
                public_key_multibase: crate::vc::multikey::encode_hex(&k.public_hex)
                    .unwrap_or_default(),
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
