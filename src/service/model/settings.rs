//! Per-tenant settings stored on the tenant record: guardrail limits and the key-age
//! policy. Plain data with validation.
//!
//! Must never: depend on the kernel or on a use case.

use serde::{Deserialize, Serialize};

use crate::service::ServiceError;

/// A tenant's guardrail settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSettings {
    /// Sustained presentation requests per second per agent.
    pub rate_per_second: u32,
    /// Burst size per agent.
    pub burst: u32,
    /// Denials within the window that suspend the agent (0 disables).
    pub denial_threshold: u32,
    pub denial_window_secs: u64,
    /// Context keys whose values the audit trail keeps only as keyed hashes.
    pub sensitive_context_keys: Vec<String>,
}

impl Default for GuardrailSettings {
    fn default() -> Self {
        Self { rate_per_second: 50, burst: 100, denial_threshold: 20, denial_window_secs: 300, sensitive_context_keys: Vec::new() }
    }
}

impl GuardrailSettings {
    /// Validates ranges.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let ok = (1..=100_000).contains(&self.rate_per_second)
            && (1..=100_000).contains(&self.burst)
            && self.denial_threshold <= 100_000
            && (1..=86_400).contains(&self.denial_window_secs)
            && self.sensitive_context_keys.len() <= 64
            && self.sensitive_context_keys.iter().all(|k| !k.is_empty() && k.len() <= 64);
        if ok { Ok(()) } else { Err(ServiceError::invalid("guardrail settings out of range")) }
    }
}

/// A tenant's key-age policy, enforced by the scheduled rotation task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    pub agent_key_max_age_days: Option<u32>,
    pub issuer_key_max_age_days: Option<u32>,
}
