//! Embeddable verification: check Sigil presentations (and any W3C VC 2.0 presentation
//! secured with `eddsa-jcs-2022` or VC-JOSE-COSE EdDSA) without running Sigil. This is the
//! same code behind `POST /v1/verify` and `sigil verify`.
//!
//! A verifier states whom it trusts: [`PresentationOptions`] requires a [`TrustPolicy`],
//! and a presentation is verified only when every credential in it comes from an issuer
//! that policy trusts for the credential's type. An empty policy trusts nobody.
//!
//! ```no_run
//! # async fn demo(vp: serde_json::Value) -> Result<(), String> {
//! use sigil::verify::{HttpResolver, PresentationOptions, TrustPolicy, verify_presentation};
//! // Fetches go through the egress policy: public addresses on port 443 only, unless
//! // `ResolverConfig::egress` allows more (a development server on loopback, say).
//! let resolver = HttpResolver::public()?;
//! // Trust the tenant `acme` of the Sigil deployment at sigil.example, for its own agents.
//! let trust = TrustPolicy::none().trust_tenant_url("https://sigil.example/tenants/acme")?;
//! let opts = PresentationOptions {
//!     challenge: Some("c0ffee-6f1d".into()),
//!     domain: Some("payments.example".into()),
//!     action: Some(serde_json::json!({"action": "refunds:create", "resource": "orders/123",
//!                                     "context": {"amount": "120.00", "currency": "EUR"}})),
//!     max_ttl: Some(jiff::SignedDuration::from_secs(300)),
//!     ..PresentationOptions::new(trust)
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
//!
//! Audit trails are checked the same way, against a tenant's DID document the verifier
//! trusts (pinned, or resolved from a tenant URL it trusts), never keys the trail names:
//! [`verify_trail`] for an export, [`verify_extension`] for a monitor that proves each new
//! checkpoint extends the one it saw before (`sigil audit verify` and `sigil audit watch`).

pub use crate::audit::{Checkpoint, NotExtended, TrailReport, verify_extension, verify_trail};
pub use crate::service::egress::EgressPolicy;
pub use crate::service::resolver::{HttpResolver, ResolverConfig};
pub use crate::vc::presentation::{PresentationOptions, PresentationReport, verify_presentation};
pub use crate::vc::trust::{TrustPolicy, TrustRule, Untrusted};
pub use crate::vc::verify::{Check, CredentialOptions, Report, ResolveError, Resolver, verify_credential};
