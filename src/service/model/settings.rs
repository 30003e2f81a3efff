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

/// How many seals a tenant data key makes, and how they are reserved (deployment-wide,
/// not per tenant). AES-GCM with random 96-bit nonces must not seal more than 2^32
/// messages under one key (NIST SP 800-38D, 8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealLimits {
    /// Seals reserved per store round trip. A crash or restart skips what was left of a
    /// block (numbers are never reused); 65,536 makes the reservation one durable write
    /// per 65,536 seals, and wastes at most that per process start or key reload.
    pub block: u64,
    /// Reserved seals after which housekeeping starts a data-key rotation: 2^30, a
    /// quarter of the bound. At 2^30 random nonces the chance of any repeat is about
    /// 2^-37 (2^-33 at 2^32), and 3 × 2^30 seals remain for the rotation to start: over
    /// 40 hours at 20,000 seals a second, against a housekeeping run every minute.
    pub rotate_after: u64,
    /// Reserved seals at which a key refuses to seal at all: 2^32, the bound itself. The
    /// last block is kept for starting the rotation that replaces the key.
    pub limit: u64,
}

impl Default for SealLimits {
    fn default() -> Self {
        Self { block: 1 << 16, rotate_after: 1 << 30, limit: 1 << 32 }
    }
}
