//! Tier 2, the kernel: the mechanisms every use case is built from. Sealing and key
//! loading, signers, locks, the one mutation path ([`mutation`]) and the audit journal it
//! commits through, caches with generations, status lists, DID documents, guardrails,
//! outbound fetches under the egress policy.
//!
//! Must never: import a use case (`ops`), check a caller's role on behalf of a route, or
//! form an import cycle among its modules (`tests/architecture.rs` enforces both).

pub mod agent_state;
pub mod approval;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod chain;
pub mod chain_budget;
pub mod coherence;
pub mod credential_status;
pub mod deadline;
pub mod dids;
pub mod egress;
pub mod guards;
pub mod issue;
pub mod journal;
pub mod keyring;
pub mod load;
pub mod locks;
pub mod manifest;
pub mod mutation;
pub mod resolver;
pub mod sealed;
pub mod signers;
pub mod status;
pub mod wallet;
pub mod webhook;
