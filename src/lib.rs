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
pub mod monitor;
pub mod policy;
pub mod seed;
pub mod service;
pub mod startup;
pub mod store;
pub mod vc;
pub mod verify;
