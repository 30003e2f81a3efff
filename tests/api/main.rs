//! One integration test binary: each test starts a real `sigil serve` process over HTTPS
//! on an ephemeral port with a fresh data directory, and talks to it with a real client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod helpers;

mod approvals;
mod at_rest;
mod audit;
mod audit_trust;

mod bad_input;
mod cluster;
mod credentials;

mod durability;
mod guardrails;

mod interop;

mod isolation;
mod jose;
mod lifecycle;
mod logs;
mod mcp;

mod openapi;
mod postgres;
mod presentations;
mod rdfc;
mod seed;
mod subdelegation;
mod tokens;
mod trust;
mod vc_api;
