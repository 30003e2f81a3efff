//! The deadline of one request's store retries. On a shared store a request that keeps
//! losing write races (or read rounds) to other nodes may retry many times
//! (`mutation::SHARED_ATTEMPTS`), each attempt bounded only by the store's per-operation
//! timeout; the HTTP layer runs every request under a deadline ([`with_request_deadline`],
//! twice `--store-timeout-ms` on PostgreSQL), and the retry loops ask [`within_deadline`]
//! before each new attempt. A task-local, so the service's signatures do not carry it.
//!
//! Must never: cut an attempt short (a commit in flight finishes; only the next attempt is
//! refused), or apply where no deadline was set (offline commands, background tasks, sled).

use crate::service::ServiceError;

tokio::task_local! {
    /// When the request this task serves must stop retrying (several nodes: set by the
    /// HTTP layer, [`with_request_deadline`]). Unset: only the attempt bounds apply.
    static REQUEST_DEADLINE: std::time::Instant;
}

/// Runs `fut` (one request) under a deadline `budget` from now for its store retries: once
/// it has passed, no retry loop starts another attempt (the request answers `503`). Each
/// attempt's store operations are bounded by the store's own timeout, so a request spends
/// at most about the budget plus one attempt on conflicts, not `SHARED_ATTEMPTS` of them.
pub async fn with_request_deadline<F: std::future::Future>(budget: std::time::Duration, fut: F) -> F::Output {
    REQUEST_DEADLINE.scope(std::time::Instant::now() + budget, fut).await
}

/// `Err(503)` when the request this task serves is past its deadline (none set: never).
pub(crate) fn within_deadline() -> Result<(), ServiceError> {
    if REQUEST_DEADLINE.try_with(|d| std::time::Instant::now() >= *d).unwrap_or(false) {
        metrics::counter!("sigil_request_deadline_exceeded_total").increment(1);
        return Err(ServiceError::Unavailable("the request's deadline passed while it retried store conflicts".into()));
    }
    Ok(())
}
