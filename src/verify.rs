//! Embeddable verification: check Sigil presentations (and any W3C VC 2.0 presentation
//! secured with `eddsa-jcs-2022` or VC-JOSE-COSE EdDSA) without running Sigil. This is the
//! same code behind `POST /v1/verify` and `sigil verify`.
//!
//! ```no_run
//! # async fn demo(vp: serde_json::Value) -> Result<(), String> {
//! use sigil::verify::{HttpResolver, PresentationOptions, verify_presentation};
//! let resolver = HttpResolver::new(None)?; // or Some(path to a PEM CA for a dev server)
//! let opts = PresentationOptions {
//!     challenge: Some("c0ffee-6f1d".into()),
//!     domain: Some("payments.example".into()),
//!     action: Some(serde_json::json!({"action": "refunds:create", "resource": "orders/123",
//!                                     "context": {"amount": "120.00", "currency": "EUR"}})),
//!     skip_status: false,
//! };
//! let report = verify_presentation(&vp, &opts, &resolver, jiff::Timestamp::now()).await;
//! if report.verified() {
//!     println!("{} may do it", report.holder.unwrap_or_default());
//! } else {
//!     for e in report.report.errors() { eprintln!("{e}"); }
//! }
//! # Ok(()) }
//! ```
//!
//! One-time use of challenges is the verifier's duty (Sigil's endpoint keeps a durable
//! store of them); [`PresentationReport::challenge`] and [`PresentationReport::expires`]
//! give what such a store needs.

pub use crate::service::resolver::HttpResolver;
pub use crate::vc::presentation::{PresentationOptions, PresentationReport, verify_presentation};
pub use crate::vc::verify::{Check, CredentialOptions, Report, Resolver, verify_credential};
