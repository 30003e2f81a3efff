//! The service layer's closed set of error kinds. `http` maps each kind to a status code
//! in one place; `code` strings are the stable machine codes of the API contract.

use crate::codes::ErrorCode;
use crate::crypto::{CryptoError, SealsSpent};
use crate::store::StoreError;

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No valid credentials were presented (401).
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but may not do this (403).
    #[error("{detail}")]
    Forbidden { code: ErrorCode, detail: String },
    /// The object does not exist, or exists in a tenant the caller cannot see (404).
    #[error("{detail}")]
    NotFound { code: ErrorCode, detail: String },
    /// The request conflicts with current state (409).
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// The request is malformed or violates a rule (400/422).
    #[error("{detail}")]
    Invalid { code: ErrorCode, detail: String },
    /// Too many requests (429); retry later.
    #[error("{detail}")]
    TooManyRequests { code: ErrorCode, detail: String },
    /// The object existed and is gone for good (410).
    #[error("{detail}")]
    Gone { code: ErrorCode, detail: String },
    /// Storage is unavailable or failed (503). Detail is logged, never shown.
    #[error("storage unavailable")]
    Unavailable(String),
    /// Several nodes: another node rotated the root key and this one does not hold the
    /// new one (503); what was asked needs it (a wrap to make or to open).
    #[error("this node's root key was rotated on another node")]
    RootKeyOutdated,
    /// Stored data could not be opened: tampering, a wrong key, or a bug (500, opaque).
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    pub(crate) fn not_found(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::NotFound { code, detail: detail.into() }
    }
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid { code: ErrorCode::InvalidRequest, detail: detail.into() }
    }
    pub(crate) fn forbidden(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Forbidden { code, detail: detail.into() }
    }
    pub(crate) fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }
    pub(crate) fn tenant_not_found() -> Self {
        Self::not_found(ErrorCode::TenantNotFound, "no such tenant")
    }
    pub(crate) fn agent_not_found() -> Self {
        Self::not_found(ErrorCode::AgentNotFound, "no such agent")
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::conflict(ErrorCode::WriteConflict, "concurrent modification; retry the request"),
            StoreError::Backend(d) => Self::Unavailable(d),
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(_: CryptoError) -> Self {
        Self::Internal("a sealed record failed to open".into())
    }
}

/// The detail of [`ServiceError::Unavailable`] when a data key had no seal granted.
const NO_SEALS: &str = "the data key has no seals reserved; retry";

impl From<SealsSpent> for ServiceError {
    fn from(_: SealsSpent) -> Self {
        // A retry reserves a new block (or, at a key's limit, its rotation must finish
        // first): never a silent over-use of the key.
        Self::Unavailable(NO_SEALS.into())
    }
}

impl ServiceError {
    /// True when a data key refused to seal for want of a grant: the mutation path
    /// retries (a key set loaded after a data-key rotation has its own meter).
    pub(crate) fn is_seals_spent(&self) -> bool {
        matches!(self, Self::Unavailable(d) if d == NO_SEALS)
    }
}
