//! Tier 1, the model: the records Sigil stores, the settings they carry, the service's
//! error kinds and codes, and input checks. Plain data.
//!
//! Must never: import the kernel, a use case, or the [`crate::service::Sigil`] type
//! (`tests/architecture.rs` enforces it).

pub mod error;
pub mod records;
pub mod settings;
pub mod validate;
