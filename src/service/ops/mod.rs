//! Tier 3, the use cases: one public function per operation an API caller can trigger.
//! Each checks who may do it, then stages its change and commits it through
//! [`crate::service::Sigil::mutate`].
//!
//! Must never: import or call another use case (shared steps belong in the kernel), speak
//! HTTP, or hold key bytes (`tests/architecture.rs` enforces the first).

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod backup;
pub mod credentials;
pub mod guardrails;
pub mod lifecycle;
pub mod presentations;
#[cfg(test)]
mod races;
pub mod rotation;
pub mod subdelegation;
pub mod tenants;
pub mod tokens;
pub mod upgrade;
pub mod vc_api;
pub mod verification;
