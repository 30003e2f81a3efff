//! Crash points for durability tests. In a debug build started with
//! `SIGIL_TEST_CRASH_AT=<name>`, [`crash_point`]`(name)` aborts the process on the spot,
//! as `kill -9` would at that instant: no destructor runs, nothing more is flushed. Tests
//! use it to stop a multi-step change between two of its steps and check that a restart
//! repairs it. Release builds compile every crash point to nothing (the variable is not
//! even read), so no deployment can be made to crash through it.
//!
//! [`pause_point`] is its gentler twin: with `SIGIL_TEST_PAUSE_AT=<name>` the step waits
//! `SIGIL_TEST_PAUSE_MS` (default 3000) there, so that a test can start another process
//! while this one is between two steps.
//!
//! Must never: be reachable in a release build, or do anything but abort or wait.

/// Aborts when this debug build was started with `SIGIL_TEST_CRASH_AT=name`.
#[cfg(debug_assertions)]
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var("SIGIL_TEST_CRASH_AT").ok()).as_deref() == Some(name) {
        eprintln!("crash point {name}: aborting (SIGIL_TEST_CRASH_AT)");
        std::process::abort();
    }
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn crash_point(_name: &str) {}

/// Waits `SIGIL_TEST_PAUSE_MS` when this debug build was started with
/// `SIGIL_TEST_PAUSE_AT=name`.
#[cfg(debug_assertions)]
pub async fn pause_point(name: &str) {
    static AT: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let name = std::env::var("SIGIL_TEST_PAUSE_AT").ok()?;
        let ms = std::env::var("SIGIL_TEST_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
        Some((name, ms))
    });
    if let Some((at, ms)) = at
        && at == name
    {
        eprintln!("pause point {name}: waiting {ms} ms (SIGIL_TEST_PAUSE_AT)");
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
    }
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub async fn pause_point(_name: &str) {}
