//! Input checks shared by several use cases.
//!
//! Must never: depend on the kernel or on a use case.

use jiff::{SignedDuration, Timestamp};

use crate::service::ServiceError;

/// Shortest and longest lifetime a token can be given (`expires_in`, seconds).
pub(crate) const TOKEN_LIFETIME: std::ops::RangeInclusive<u64> = 60..=31_536_000;

/// When a token given `expires_in` seconds from `now` expires; `None` (no expiry) without one.
pub(crate) fn token_expiry(now: Timestamp, expires_in: Option<u64>) -> Result<Option<Timestamp>, ServiceError> {
    match expires_in {
        None => Ok(None),
        Some(s) if TOKEN_LIFETIME.contains(&s) => {
            let secs = i64::try_from(s).map_err(|_| ServiceError::invalid("expires_in out of range"))?;
            now.checked_add(SignedDuration::from_secs(secs)).map(Some).map_err(|_| ServiceError::invalid("expires_in out of range"))
        }
        Some(_) => Err(ServiceError::invalid(format!(
            "expires_in must be between {} and {} seconds",
            TOKEN_LIFETIME.start(),
            TOKEN_LIFETIME.end()
        ))),
    }
}

pub(crate) fn validate_text(field: &str, s: &str, max: usize) -> Result<(), ServiceError> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ServiceError::invalid(format!("{field} must be 1–{max} characters without control characters")));
    }
    Ok(())
}
