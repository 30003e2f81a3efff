//! Sigil: a cloud ID wallet for AI agents.
//!
//! Every agent gets a `did:web` identity whose Ed25519 keys never leave Sigil, a wallet of
//! W3C Verifiable Credentials, and presentations signed on demand for one action at a time.
//! The layers follow `docs/ARCHITECTURE.md`: `http` → `service` → (`policy`, `vc`, `audit`,
//! `crypto`) → `store`; dependencies only point downwards.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod codes;

pub mod config;
pub mod crypto;
pub mod datadir;
pub mod error;
pub mod faults;
pub mod http;
pub mod ids;
pub mod mcp_bridge;
pub mod monitor;
pub mod policy;
pub mod seed;
pub mod service;
pub mod startup;
pub mod store;
pub mod vc;
pub mod verify;

/// The case count of the parser property tests (`*_props.rs`, modules named `fuzz`).
#[cfg(test)]
pub(crate) mod fuzz {
    use proptest::test_runner::Config;

    /// `ci` cases, or `PROPTEST_CASES` when set: the long mode of `scripts/fuzz-parsers`
    /// runs the same properties with a large count. (`ProptestConfig::with_cases` would
    /// ignore the variable.)
    pub(crate) fn config(ci: u32) -> Config {
        Config { cases: long_cases().unwrap_or(ci), ..Config::default() }
    }

    /// [`config`], but never more than `max` cases: for properties whose input space is
    /// small (a length past a cap) or whose cases are expensive (megabyte lists, gzip bombs),
    /// so that a long run spends its time where new inputs are.
    pub(crate) fn config_bounded(ci: u32, max: u32) -> Config {
        Config { cases: long_cases().map_or(ci, |n| n.clamp(ci, max)), ..Config::default() }
    }

    fn long_cases() -> Option<u32> {
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok())
    }
}
