//! The audit monitor behind `sigil audit watch`: what a transparency-log monitor does for a
//! tenant's trail. Each run fetches the tenant's DID document and its latest signed
//! checkpoint from the tenant URL it was given, checks the checkpoint against the tenant's
//! audit keys, and proves that it extends the last checkpoint this monitor accepted, by
//! re-hashing every entry between the two (read with an auditor token). A lower sequence
//! (the store was rolled back), another head at the same sequence (a fork) or entries that
//! do not chain from the old head to the new one are reported, never accepted.
//!
//! The state ([`Seen`]) lives outside the server, with whoever runs the monitor: that is
//! what makes a rollback of the whole store visible. The caller reads and writes it
//! (`main.rs`, the process edge for files).
//!
//! Must never: accept a checkpoint it has not proved extends the last one it accepted, or
//! take the tenant's keys from anywhere but the tenant URL it was given.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{Checkpoint, Entry, GENESIS, NotExtended, Rehash, compare_checkpoints};

/// What a monitor remembers between runs: the tenant and the last checkpoint it accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The tenant's DID.
    pub did: String,
    /// The last checkpoint accepted.
    pub checkpoint: Checkpoint,
}

/// The tenant a monitor watches, from its URL `https://host[:port]/tenants/{t}`.
#[derive(Debug, Clone)]
pub struct WatchedTenant {
    /// `did:web:host%3Aport:tenants:{t}`.
    pub did: String,
    /// The tenant URL (no trailing slash): `…/did.json` and `…/audit/checkpoint` below it.
    url: String,
    /// `https://host[:port]/v1/tenants/{t}`: the trail, with an auditor token.
    api: String,
}

impl WatchedTenant {
    /// Parses a tenant URL.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let did = crate::vc::trust::tenant_did_of_url(url)?;
        let url = url.trim_end_matches('/').to_owned();
        let (origin, path) = url
            .split_once("://")
            .and_then(|(scheme, rest)| rest.split_once('/').map(|(auth, path)| (format!("{scheme}://{auth}"), path.to_owned())))
            .ok_or_else(|| format!("{url:?} is not a tenant URL"))?;
        Ok(Self { did, api: format!("{origin}/v1/{path}"), url })
    }
}

/// Why a run did not accept the new checkpoint.
#[derive(Debug)]
pub enum WatchError {
    /// The server proved inconsistent: what it publishes now does not extend what it
    /// published before, or does not verify. An alert.
    Inconsistent(String),
    /// Nothing could be checked (network, TLS, HTTP, a malformed answer, wrong token).
    Unavailable(String),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Inconsistent(why) => write!(f, "{why}"),
            WatchError::Unavailable(why) => write!(f, "could not check: {why}"),
        }
    }
}

impl From<NotExtended> for WatchError {
    fn from(e: NotExtended) -> Self {
        WatchError::Inconsistent(e.to_string())
    }
}

/// What one run accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The new state.
    pub seen: Seen,
    /// The seq of the checkpoint seen before (0: none).
    pub from_seq: u64,
    /// Entries re-hashed between the two.
    pub rehashed: usize,
}

/// Entries per page read from the trail (the route's maximum).
const PAGE: u32 = 500;

/// An HTTPS client for the monitor: `extra_ca_pem` trusted besides the system roots, no
/// redirects (the token goes only where it was sent), a deadline per request.
pub fn client(extra_ca_pem: Option<&[u8]>, https_only: bool) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .https_only(https_only)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy();
    if let Some(pem) = extra_ca_pem {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| format!("bad CA certificate: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str, token: Option<&str>) -> Result<T, WatchError> {
    let unavailable = |e: String| WatchError::Unavailable(format!("{url}: {e}"));
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| unavailable(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(unavailable(format!("HTTP {}: {}", status.as_u16(), body.chars().take(300).collect::<String>())));
    }
    resp.json().await.map_err(|e| unavailable(format!("unexpected answer: {e}")))
}

/// The tenant's DID document from its URL; its `id` must be the tenant's DID.
pub async fn tenant_document(client: &reqwest::Client, tenant: &WatchedTenant) -> Result<Value, WatchError> {
    let doc: Value = get_json(client, &format!("{}/did.json", tenant.url), None).await?;
    if doc.get("id").and_then(Value::as_str) != Some(tenant.did.as_str()) {
        return Err(WatchError::Inconsistent(format!("the DID document at {} is not the one of {}", tenant.url, tenant.did)));
    }
    Ok(doc)
}

#[derive(Deserialize)]
struct EntryPage {
    items: Vec<Entry>,
}

/// One run: fetch, verify and compare the tenant's latest checkpoint with `last` (the
/// beginning of the trail when `None`, so a first run re-hashes it all).
pub async fn watch_once(
    client: &reqwest::Client,
    tenant: &WatchedTenant,
    auditor_token: &str,
    last: Option<&Seen>,
) -> Result<Accepted, WatchError> {
    if let Some(l) = last.filter(|l| l.did != tenant.did) {
        return Err(WatchError::Unavailable(format!("the state is about {}, not {}", l.did, tenant.did)));
    }
    let doc = tenant_document(client, tenant).await?;
    let cp: Checkpoint = get_json(client, &format!("{}/audit/checkpoint", tenant.url), None).await?;
    cp.verify_for(&doc).map_err(|why| WatchError::Inconsistent(format!("the published checkpoint does not verify: {why}")))?;
    let (seen_seq, seen_head) = last.map_or((0, GENESIS), |l| (l.checkpoint.seq, l.checkpoint.head.as_str()));
    let mut rehash = Rehash::new(&doc, seen_seq, seen_head).map_err(WatchError::Inconsistent)?;
    if compare_checkpoints(seen_seq, seen_head, &cp)? {
        while rehash.seq() < cp.seq {
            let url = format!("{}/audit?after={}&limit={PAGE}", tenant.api, rehash.seq());
            let page: EntryPage = get_json(client, &url, Some(auditor_token)).await?;
            let before = rehash.seq();
            for e in page.items.iter().take_while(|e| e.seq <= cp.seq) {
                rehash.push(e)?;
            }
            if rehash.seq() == before {
                // Nothing more up to the checkpoint: `reaches` says what is missing.
                break;
            }
        }
    }
    let rehashed = rehash.reaches(&cp)?;
    Ok(Accepted { seen: Seen { did: tenant.did.clone(), checkpoint: cp }, from_seq: seen_seq, rehashed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_urls() {
        let t = WatchedTenant::from_url("https://127.0.0.1:8443/tenants/acme/").unwrap();
        assert_eq!(t.did, "did:web:127.0.0.1%3A8443:tenants:acme");
        assert_eq!(t.url, "https://127.0.0.1:8443/tenants/acme");
        assert_eq!(t.api, "https://127.0.0.1:8443/v1/tenants/acme");
        assert!(WatchedTenant::from_url("https://sigil.example").is_err());
        assert!(WatchedTenant::from_url("https://sigil.example/tenants/a/b").is_err());
    }
}
