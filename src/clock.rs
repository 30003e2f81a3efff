//! Injected time. Everything that depends on "now" (expiry, schedules, key age, rotation)
//! asks a [`Clock`], so tests can pin or move time instead of sleeping.
//!
//! In-process tests use [`FixedClock`]. Tests that drive a real `sigil serve` process use
//! [`AdjustableClock`], which exists only in debug builds (the ones `cargo test` builds):
//! the server reads the time the test sets from the file `SIGIL_TEST_CLOCK_FILE` names
//! (`config::TestClockSource`). Release builds compile neither, so a deployment's clock is
//! always the system clock.
//!
//! Must never: do I/O itself (the adjustable clock's source is handed in), or panic.

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

/// A clock that asks its source for the time at every call, so a test can move the clock
/// of a running server; when the source has no answer (a file being replaced), it keeps
/// the last one. Debug builds only.
#[cfg(debug_assertions)]
pub struct AdjustableClock {
    source: Box<dyn Fn() -> Option<Timestamp> + Send + Sync>,
    last: AtomicI64,
}

#[cfg(debug_assertions)]
impl AdjustableClock {
    /// A clock reading `source`; `None` when the source has no time to start from.
    pub fn new(source: impl Fn() -> Option<Timestamp> + Send + Sync + 'static) -> Option<Self> {
        let first = source()?;
        Some(Self { source: Box::new(source), last: AtomicI64::new(first.as_microsecond()) })
    }
}

#[cfg(debug_assertions)]
impl Clock for AdjustableClock {
    fn now(&self) -> Timestamp {
        if let Some(t) = (self.source)() {
            self.last.store(t.as_microsecond(), Ordering::SeqCst);
            return t;
        }
        Timestamp::from_microsecond(self.last.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH)
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

    #[test]
    fn adjustable_clock_follows_its_source_and_keeps_the_last_answer() {
        let t0: Timestamp = "2026-06-03T23:59:59Z".parse().unwrap();
        let source = Arc::new(std::sync::Mutex::new(Some(t0)));
        let read = source.clone();
        let c = AdjustableClock::new(move || *read.lock().unwrap()).unwrap();
        assert_eq!(c.now(), t0);
        let t1: Timestamp = "2026-06-04T00:00:00Z".parse().unwrap();
        *source.lock().unwrap() = Some(t1);
        assert_eq!(c.now(), t1, "moved at the next call, not cached");
        *source.lock().unwrap() = None;
        assert_eq!(c.now(), t1, "no answer: the last one stands");
        assert!(AdjustableClock::new(|| None).is_none(), "nothing to start from");
    }
}
