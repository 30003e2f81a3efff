//! DID documents and status lists for verification. [`HttpResolver`] fetches `did:web`
//! documents and status list credentials over HTTPS with a timeout, a size limit and a
//! short cache; [`LocalFirst`] answers for this deployment's own URLs in-process (no
//! self-request, same documents) and defers to HTTP for everything else.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::Sigil;
use crate::ids::{AgentId, TenantId};
use crate::vc::did::did_web_url;
use crate::vc::verify::Resolver;

const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX: usize = 10_000;

/// did:web and status-list fetching over HTTPS.
pub struct HttpResolver {
    client: reqwest::Client,
    cache: RwLock<HashMap<String, (Instant, Arc<Value>)>>,
    ttl: Duration,
}

impl HttpResolver {
    /// A resolver trusting the public web PKI plus, optionally, a PEM CA file (a Sigil
    /// development CA, for instance).
    pub fn new(extra_ca: Option<&Path>) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = extra_ca {
            let pem = std::fs::read(p).map_err(|e| format!("cannot read CA file {}: {e}", p.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("bad CA file {}: {e}", p.display()))?;
            b = b.add_root_certificate(cert);
        }
        Ok(Self { client: b.build().map_err(|e| e.to_string())?, cache: RwLock::new(HashMap::new()), ttl: CACHE_TTL })
    }

    async fn get_json(&self, url: &str) -> Result<Arc<Value>, String> {
        if let Some((at, v)) = self.cache.read().ok().and_then(|c| c.get(url).cloned()) {
            if at.elapsed() < self.ttl {
                return Ok(v);
            }
        }
        let mut resp = self.client.get(url).send().await.map_err(|e| format!("request failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err("response larger than 1 MiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        let v: Arc<Value> = Arc::new(serde_json::from_slice(&body).map_err(|_| "response is not JSON".to_owned())?);
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(url.to_owned(), (Instant::now(), v.clone()));
        }
        Ok(v)
    }
}

#[async_trait]
impl Resolver for HttpResolver {
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, String> {
        let url = did_web_url(did).ok_or("not a valid did:web")?;
        let doc = self.get_json(&url).await?;
        if doc.get("id").and_then(Value::as_str) != Some(did) {
            return Err("DID document id does not match the DID".into());
        }
        Ok(doc)
    }

    async fn fetch_status_list(&self, url: &str) -> Result<std::sync::Arc<Value>, String> {
        self.get_json(url).await
    }
}

/// Resolves this deployment's own DIDs and status lists in-process, others over HTTPS.
pub struct LocalFirst<'a> {
    pub sigil: &'a Sigil,
}

impl LocalFirst<'_> {
    fn own_did_path<'d>(&self, did: &'d str) -> Option<Vec<&'d str>> {
        let rest = did.strip_prefix("did:web:")?.strip_prefix(self.sigil.settings.public_url.did_host())?;
        Some(rest.strip_prefix(':')?.split(':').collect())
    }
}

#[async_trait]
impl Resolver for LocalFirst<'_> {
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, String> {
        let Some(path) = self.own_did_path(did) else {
            return self.sigil.http.resolve_did(did).await;
        };
        let nf = || "DID not found".to_owned();
        match path.as_slice() {
            ["tenants", t] => {
                let t = TenantId::parse(t).map_err(|_| nf())?;
                self.sigil.tenant_did_document_shared(&t).await.map_err(|_| nf())
            }
            ["tenants", t, "agents", a] => {
                let t = TenantId::parse(t).map_err(|_| nf())?;
                let a = AgentId::parse(a).map_err(|_| nf())?;
                self.sigil.agent_did_document(&t, &a).await.map(Arc::new).map_err(|_| nf())
            }
            _ => Err(nf()),
        }
    }

    async fn fetch_status_list(&self, url: &str) -> Result<std::sync::Arc<Value>, String> {
        let own = format!("{}/tenants/", self.sigil.settings.public_url.base());
        let Some(rest) = url.strip_prefix(&own) else {
            return self.sigil.http.fetch_status_list(url).await;
        };
        let (t, list) = rest.split_once("/status/").ok_or("not a status list URL")?;
        let t = TenantId::parse(t).map_err(|_| "status list not found".to_owned())?;
        self.sigil.status_list_credential(t.as_str(), list).await.map_err(|_| "status list not found".to_owned())
    }
}
