//! Injected time. Everything that depends on "now" (expiry, schedules, key age, rotation)
//! asks a [`Clock`], so tests can pin or move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// RFC 3339 UTC with whole seconds (`2026-11-28T19:00:00Z`), the form used inside
/// credentials and proofs so every verifier parses it the same way.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant (UTC).
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct FixedClock {
    micros: AtomicI64,
}

impl FixedClock {
    /// A clock frozen at `at`.
    pub fn new(at: Timestamp) -> Arc<Self> {
        Arc::new(Self { micros: AtomicI64::new(at.as_microsecond()) })
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.micros.store(at.as_microsecond(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.micros.fetch_add(secs.saturating_mul(1_000_000), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.micros.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let t0: Timestamp = "2026-03-29T00:30:00Z".parse().unwrap();
        let c = FixedClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance_secs(3600);
        assert_eq!(c.now(), "2026-03-29T01:30:00Z".parse::<Timestamp>().unwrap());
    }
}
