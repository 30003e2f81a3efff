//! Approval webhooks: a new approval request is announced to the URL the tenant
//! configured, signed by the tenant's issuer key, retried with bounded exponential
//! backoff in a background task, through the same egress policy and HTTPS client as every
//! other outbound request ([`crate::service::kernel::egress`]).
//!
//! The signature: `Sigil-Signature: t=<unix seconds>,kid=<tenant DID>#issuer-<n>,sig=<b64url>`
//! over `<t>.<body>` (Ed25519). A receiver verifies it with the key its tenant DID document
//! lists, so there is no shared secret to leak or rotate; `t` lets it refuse old replays.
//!
//! At most [`MAX_IN_FLIGHT`] deliveries run at once (a process-wide bound): when all are
//! busy a new one is dropped, counted (`outcome="dropped"`) and logged, never queued or
//! waited for. The approval list stays the source of truth.
//!
//! The URL is treated as a secret (hook URLs often carry a token in their path or query):
//! logs and audit entries name its scheme and host only ([`url_host`]).
//!
//! Must never: block or fail the request that made the approval, carry a token or anything
//! secret (context values the tenant marks sensitive go as keyed hashes, as in the trail),
//! log the URL's path or query, follow a redirect, or reach a destination the egress
//! policy refuses.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use base64::Engine;
use serde_json::json;

use crate::clock::rfc3339;
use crate::ids::TenantId;
use crate::service::Sigil;
use crate::service::model::records::ApprovalRecord;

/// Attempts per delivery (the first and its retries).
pub const ATTEMPTS: u32 = 5;
/// The wait before the first retry; doubled for each next one (1, 2, 4, 8 s).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Sigil-Signature";

/// Deliveries in flight at most (each may live ~40 s through its retries): an agent
/// making many approval requests cannot grow the process's tasks and sockets unbounded.
pub const MAX_IN_FLIGHT: usize = 64;

/// The bound on deliveries in flight.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSlots(Arc<Semaphore>);

impl Default for WebhookSlots {
    fn default() -> Self {
        Self::new(MAX_IN_FLIGHT)
    }
}

impl WebhookSlots {
    pub(crate) fn new(n: usize) -> Self {
        Self(Arc::new(Semaphore::new(n)))
    }

    /// A slot for one delivery, held until it ends; `None` at once when all are busy
    /// (never waits: the caller is answering a request).
    pub(crate) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// What of a webhook URL may be logged or audited: its scheme, host and port, never its
/// path, query or user info (where hook URLs carry their credentials).
pub fn url_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            (None, _) => format!("{}://", u.scheme()),
        },
        Err(_) => "(not a URL)".into(),
    }
}

impl Sigil {
    /// Announces `rec` to the tenant's webhook, if one is configured: signed now, sent in
    /// the background. Every failure is logged and counted, never returned.
    pub(crate) async fn announce_approval(&self, tenant: &TenantId, rec: &ApprovalRecord) {
        let Ok(t_rec) = self.tenant_record(tenant).await else { return };
        let Some(url) = t_rec.approvals.and_then(|a| a.webhook_url) else { return };
        let count = |outcome: &'static str| metrics::counter!("sigil_webhook_deliveries_total", "outcome" => outcome).increment(1);
        let (client, egress) = self.http.client();
        let host = url_host(&url);
        if let Err(refused) = egress.check_url(&url) {
            count("refused");
            // The refusal's text quotes the URL: logged with the host in its place.
            let reason = refused.to_string().replace(url.as_str(), &host);
            tracing::warn!(tenant = %tenant, approval = rec.id, webhook = host, reason, "approval webhook refused by the egress policy");
            return;
        }
        // Sensitive context values go as keyed hashes, as in the trail; the approver reads
        // them in full through the authenticated approval routes.
        let context = match self.redact_sensitive_context(tenant, &rec.context).await {
            Ok(c) => c,
            Err(e) => {
                count("failed");
                tracing::error!(tenant = %tenant, approval = rec.id, error = %e, "approval webhook not sent: guardrail settings unreadable");
                return;
            }
        };
        let body = json!({
            "type": "approval.requested",
            "tenant": tenant.as_str(),
            "approval": {
                "id": rec.id, "status": "pending", "agent": rec.agent, "delegation": rec.delegation,
                "principal": rec.principal, "action": rec.action, "resource": rec.resource, "context": context,
                "created": rfc3339(rec.created), "expires_at": rfc3339(rec.expires),
            },
        });
        let Ok(body) = serde_json::to_vec(&body) else { return };
        let Ok(signer) = self.signer(tenant, "issuer", t_rec.issuer_current).await else {
            count("failed");
            tracing::error!(tenant = %tenant, approval = rec.id, "approval webhook not signed: the issuer key did not open");
            return;
        };
        let ts = self.clock.now().as_second();
        let mut signed = format!("{ts}.").into_bytes();
        signed.extend_from_slice(&body);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signer.sign(&signed));
        let header = format!("t={ts},kid={}#issuer-{},sig={sig}", self.tenant_did(tenant), t_rec.issuer_current);
        let (tenant, id) = (tenant.to_string(), rec.id.clone());
        let Some(slot) = self.webhook_slots.try_take() else {
            count("dropped");
            tracing::warn!(
                tenant,
                approval = id,
                webhook = host,
                limit = MAX_IN_FLIGHT,
                "approval webhook dropped: too many deliveries in flight"
            );
            return;
        };
        tokio::spawn(async move {
            let _slot = slot;
            let mut wait = FIRST_BACKOFF;
            for attempt in 1..=ATTEMPTS {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, &header)
                    .body(body.clone())
                    .send()
                    .await;
                let why = match sent {
                    Ok(r) if r.status().is_success() => {
                        count("delivered");
                        tracing::info!(tenant, approval = id, webhook = host, attempt, "approval webhook delivered");
                        return;
                    }
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(e) => match crate::service::kernel::egress::refusal_in(&e) {
                        // A name that resolves only to refused addresses: retrying changes nothing.
                        Some(r) => {
                            count("refused");
                            tracing::warn!(tenant, approval = id, webhook = host, reason = %r, "approval webhook refused by the egress policy");
                            return;
                        }
                        // Without the URL: reqwest's text quotes it, path and query included.
                        None => format!("request failed: {}", e.without_url()),
                    },
                };
                tracing::warn!(tenant, approval = id, webhook = host, attempt, reason = why, "approval webhook not delivered");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            }
            count("failed");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_slots_refuse_at_once_when_all_are_busy_and_free_on_release() {
        let slots = WebhookSlots::new(2);
        let (a, b) = (slots.try_take(), slots.try_take());
        assert!(a.is_some() && b.is_some());
        assert!(slots.try_take().is_none(), "a third delivery ran beyond the bound");
        drop(a);
        assert!(slots.try_take().is_some(), "a finished delivery did not free its slot");
        assert_eq!(WebhookSlots::default().0.available_permits(), MAX_IN_FLIGHT);
    }

    #[test]
    fn webhook_url_host_keeps_no_path_query_or_user_info() {
        assert_eq!(url_host("https://hooks.example/T0/B1/s3cr3t?token=abc"), "https://hooks.example");
        assert_eq!(url_host("https://u:p@hooks.example:8443/x#y"), "https://hooks.example:8443");
        assert_eq!(url_host("not a url s3cr3t"), "(not a URL)");
    }
}
