//! Delegated authority and the decision whether it covers an action. Pure: no I/O, no
//! clock (the instant is passed in), no floats (amounts are decimals).
//!
//! Must never: reach for the store, the network or the system time.

mod approval;
mod authority;
mod evaluate;
mod glob_match;
mod narrowing;

pub use approval::{ApprovalRule, Threshold};
pub use authority::parse_amount;
pub use evaluate::{ActionRequest, Denial, Grant, check, decide, well_formed_resource};

pub use authority::{ActionPattern, AmountLimit, Authority, AuthorityError, Limits, Principal, PrincipalKind, ResourcePattern, Schedule};
pub use narrowing::{Delegable, Link, MAX_DELEGATION_DEPTH, NotNarrower, Rule, narrows};
