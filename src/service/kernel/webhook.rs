//! Approval webhooks: a new approval request is announced to the URL the tenant
//! configured, signed by the tenant's issuer key, retried with bounded exponential
//! backoff in a background task, through the same egress policy and HTTPS client as every
//! other outbound request ([`crate::service::kernel::egress`]).
//!
//! The signature: `Sigil-Signature: t=<unix seconds>,kid=<tenant DID>#issuer-<n>,sig=<b64url>`
//! over `<t>.<body>` (Ed25519). A receiver verifies it with the key its tenant DID document
//! lists, so there is no shared secret to leak or rotate; `t` lets it refuse old replays.
//!
//! Must never: block or fail the request that made the approval, carry a token or anything
//! secret, follow a redirect, or reach a destination the egress policy refuses.

use std::time::Duration;

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

impl Sigil {
    /// Announces `rec` to the tenant's webhook, if one is configured: signed now, sent in
    /// the background. Every failure is logged and counted, never returned.
    pub(crate) async fn announce_approval(&self, tenant: &TenantId, rec: &ApprovalRecord) {
        let Ok(t_rec) = self.tenant_record(tenant).await else { return };
        let Some(url) = t_rec.approvals.and_then(|a| a.webhook_url) else { return };
        let count = |outcome: &'static str| metrics::counter!("sigil_webhook_deliveries_total", "outcome" => outcome).increment(1);
        let (client, egress) = self.http.client();
        if let Err(refused) = egress.check_url(&url) {
            count("refused");
            tracing::warn!(tenant = %tenant, approval = rec.id, reason = %refused, "approval webhook refused by the egress policy");
            return;
        }
        let body = json!({
            "type": "approval.requested",
            "tenant": tenant.as_str(),
            "approval": {
                "id": rec.id, "status": "pending", "agent": rec.agent, "delegation": rec.delegation,
                "principal": rec.principal, "action": rec.action, "resource": rec.resource, "context": rec.context,
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
        tokio::spawn(async move {
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
                        tracing::info!(tenant, approval = id, attempt, "approval webhook delivered");
                        return;
                    }
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(e) => match crate::service::kernel::egress::refusal_in(&e) {
                        // A name that resolves only to refused addresses: retrying changes nothing.
                        Some(r) => {
                            count("refused");
                            tracing::warn!(tenant, approval = id, reason = %r, "approval webhook refused by the egress policy");
                            return;
                        }
                        None => format!("request failed: {e}"),
                    },
                };
                tracing::warn!(tenant, approval = id, attempt, reason = why, "approval webhook not delivered");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            }
            count("failed");
        });
    }
}
