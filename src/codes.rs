//! The stable machine codes of the API contract: every `code` a problem+json response can
//! carry, in one enum. Routes, use cases and the policy name a code by its variant, so a
//! code is spelled once, here, and a new one is a reviewable change to this list.
//!
//! Must never: import anything from this crate (every layer may use it), or change the
//! string of an existing code (clients match on them; `openapi/openapi.json` lists them).

use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $s:literal,)+) => {
        /// A stable machine code (`snake_case` on the wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $s,)+
                }
            }
        }
    };
}

codes! {
    // 400 / 422: the request itself.
    /// Malformed or violating a rule.
    InvalidRequest => "invalid_request",
    /// The credential has no status entry of the purpose a change needs.
    NoStatusEntry => "no_status_entry",
    /// A sub-delegation grants something its parent does not (the detail names the rule:
    /// action, resource, amount, budget, schedule, validity, principal or depth).
    DelegationNotNarrower => "delegation_not_narrower",
    /// A presented delegation chain is broken: a parent missing, not the one named (digest),
    /// from another issuer, or not understood.
    DelegationChainInvalid => "delegation_chain_invalid",
    /// A JSON-LD `@context` URL that is neither bundled nor configured (contexts are never
    /// fetched).
    UnknownContext => "unknown_context",
    /// JSON-LD processing (expansion, toRdf) refused the document.
    InvalidJsonLd => "invalid_jsonld",
    /// The document exceeds the JSON-LD size, quad or RDFC-1.0 work limits.
    JsonLdTooComplex => "jsonld_too_complex",
    /// The body is over the configured limit (413).
    PayloadTooLarge => "payload_too_large",
    /// The body is not `application/json` (415).
    UnsupportedMediaType => "unsupported_media_type",
    /// The route exists, the method does not (405).
    MethodNotAllowed => "method_not_allowed",
    // 401 / 403: who is asking.
    /// No valid bearer token.
    NotAuthenticated => "not_authenticated",
    /// The token may not do this.
    NotAuthorized => "not_authorized",
    /// Auditor tokens only read.
    ReadOnly => "read_only",
    // 403: the policy's answers to a presentation request.
    /// The agent holds no delegation.
    NoDelegation => "no_delegation",
    /// No delegation allows this action.
    ActionNotAllowed => "action_not_allowed",
    /// No delegation for this action covers this resource.
    ResourceNotAllowed => "resource_not_allowed",
    /// The credential is revoked (a delegation, or the identity credential).
    CredentialRevoked => "credential_revoked",
    /// The delegation is suspended.
    CredentialSuspended => "credential_suspended",
    /// The delegation is not valid yet.
    CredentialNotYetValid => "credential_not_yet_valid",
    /// The delegation has expired.
    CredentialExpired => "credential_expired",
    /// The amount is in another currency than the limit.
    CurrencyMismatch => "currency_mismatch",
    /// The amount is over the per-request limit.
    AmountExceedsLimit => "amount_exceeds_limit",
    /// Outside the delegation's schedule.
    OutsideSchedule => "outside_schedule",
    /// The agent is suspended.
    AgentSuspended => "agent_suspended",
    /// The delegation's daily budget would be exceeded.
    DailyLimitExceeded => "daily_limit_exceeded",
    /// The action needs a human's approval first (`request_approval`, or the `202` of
    /// `POST /v1/presentations`).
    ApprovalRequired => "approval_required",
    /// A human denied the approval this request needs (for the approval's lifetime).
    ApprovalDenied => "approval_denied",
    /// An approver scoped to named principals asked about another principal's delegation.
    ApprovalOutOfScope => "approval_out_of_scope",
    /// Verification: the action needs approval and no matching tenant-signed approval is
    /// in the presentation.
    ApprovalMissing => "approval_missing",
    // 404 / 410: what is named does not exist (or is not the caller's).
    /// No such resource.
    NotFound => "not_found",
    /// No such tenant.
    TenantNotFound => "tenant_not_found",
    /// No such agent.
    AgentNotFound => "agent_not_found",
    /// No such token.
    TokenNotFound => "token_not_found",
    /// No such key version.
    KeyNotFound => "key_not_found",
    /// No such credential.
    CredentialNotFound => "credential_not_found",
    /// No such approval (or not the caller's).
    ApprovalNotFound => "approval_not_found",
    /// The approval expired before it was decided or used (410).
    ApprovalExpired => "approval_expired",
    /// No such status list.
    StatusListNotFound => "status_list_not_found",
    /// The tenant's trail has no signed checkpoint yet.
    CheckpointNotFound => "checkpoint_not_found",
    /// The agent is retired (410).
    AgentRetired => "agent_retired",
    /// The agent's DID is deactivated (410).
    DidDeactivated => "did_deactivated",
    // 409: the state does not allow it now.
    /// A tenant with this id exists.
    TenantExists => "tenant_exists",
    /// A concurrent change won; retry.
    WriteConflict => "write_conflict",
    /// A key rotation is running or staged.
    RotationInProgress => "rotation_in_progress",
    /// The token is the one making the request.
    TokenInUse => "token_in_use",
    /// No free status index could be allocated; retry.
    StatusListFull => "status_list_full",
    /// A credential with this id was already issued with status through the VC-API.
    CredentialExists => "credential_exists",
    /// The approval was already decided (or used).
    ApprovalDecided => "approval_decided",
    // 429: slow down.
    /// Too many requests for this agent or address.
    RateLimited => "rate_limited",
    /// Too many failed authentications from this address.
    TooManyAuthFailures => "too_many_auth_failures",
    /// The agent has as many approval requests open (pending, unexpired) as allowed.
    TooManyOpenApprovals => "too_many_open_approvals",
    // 5xx: ours, opaque.
    /// Storage is unavailable (503).
    Unavailable => "unavailable",
    /// Another node rotated the root key and this one does not hold the new key (503):
    /// retry on another node.
    RootKeyOutdated => "root_key_outdated",
    /// Something failed that the caller cannot fix (500).
    InternalError => "internal_error",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} is spelled twice");
            assert!(!s.is_empty() && s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'), "{s} is not snake_case");
        }
    }
}
