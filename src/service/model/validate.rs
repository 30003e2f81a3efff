//! Input checks shared by several use cases.
//!
//! Must never: depend on the kernel or on a use case.

use crate::service::ServiceError;

pub(crate) fn validate_text(field: &str, s: &str, max: usize) -> Result<(), ServiceError> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ServiceError::invalid(format!("{field} must be 1–{max} characters without control characters")));
    }
    Ok(())
}
