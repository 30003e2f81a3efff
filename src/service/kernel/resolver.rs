//! DID documents and status lists for verification. [`HttpResolver`] fetches `did:web`
//! documents and status list credentials over HTTPS through the egress policy
//! ([`crate::service::kernel::egress`]), with a timeout, a size limit, a global cap on concurrent fetches
//! and a short cache bounded in bytes; [`LocalFirst`] answers for this deployment's own
//! URLs in-process (no self-request, same documents) and defers to HTTP for everything
//! else.
//!
//! Must never: tell a caller why a fetch failed beyond its kind (the detail goes to the
//! log), cache a document before it is validated, or fetch outside the egress policy.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::ids::{AgentId, TenantId};
use crate::service::Sigil;
use crate::service::kernel::egress::{EgressPolicy, FilteringDns, refusal_in};
use crate::vc::credential::types;
use crate::vc::did::did_web_url;
use crate::vc::verify::{ResolveError, Resolver};

/// Largest response body read.
pub const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is reused. A status list changed at its source is seen by
/// this verifier at most this late.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Outbound fetches in flight at once, across every verification in the process.
pub const MAX_CONCURRENT_FETCHES: usize = 32;
/// Default byte budget of the fetched-document cache.
pub const DEFAULT_CACHE_BYTES: usize = 8 * 1024 * 1024;
/// A parsed JSON tree takes more memory than its text (`serde_json::Value`'s maps, strings
/// and enum slots); the cache counts this many bytes per byte received. An estimate, not a
/// measurement: it errs on the side of evicting early.
const PARSED_FACTOR: usize = 4;
/// Bookkeeping per cached document beyond its text and URL, in bytes.
const ENTRY_OVERHEAD: usize = 256;

/// How an [`HttpResolver`] is set up.
#[derive(Debug, Clone, Default)]
pub struct ResolverConfig {
    /// Extra PEM CA certificates to trust beside the public web PKI (a development CA).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Destinations beyond the public internet on port 443 (`--resolver-allow`).
    pub egress: EgressPolicy,
    /// Byte budget of the document cache; 0 means [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: usize,
}

#[derive(Default)]
struct DocCache {
    map: HashMap<String, (Instant, usize, Arc<Value>)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl DocCache {
    fn get(&self, url: &str) -> Option<Arc<Value>> {
        self.map.get(url).filter(|(at, _, _)| at.elapsed() < CACHE_TTL).map(|(_, _, v)| v.clone())
    }

    fn insert(&mut self, url: &str, size: usize, v: Arc<Value>, budget: usize) {
        if let Some((_, old, _)) = self.map.remove(url) {
            self.bytes -= old;
            self.order.retain(|u| u != url);
        }
        if size > budget {
            return;
        }
        while self.bytes + size > budget {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, old, _)) = self.map.remove(&oldest) {
                self.bytes -= old;
            }
        }
        self.bytes += size;
        self.order.push_back(url.to_owned());
        self.map.insert(url.to_owned(), (Instant::now(), size, v));
    }
}

/// What a fetch is for: its label in metrics and its validation before caching.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Did,
    StatusList,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Did => "did",
            Kind::StatusList => "status_list",
        }
    }
}

/// did:web and status-list fetching over HTTPS, through the egress policy.
pub struct HttpResolver {
    client: reqwest::Client,
    egress: Arc<EgressPolicy>,
    cache: Mutex<DocCache>,
    cache_budget: usize,
    in_flight: tokio::sync::Semaphore,
}

impl HttpResolver {
    /// A resolver trusting the public web PKI plus `config.extra_ca_pem`, fetching only
    /// what `config.egress` allows.
    pub fn new(config: ResolverConfig) -> Result<Self, String> {
        let egress = Arc::new(config.egress);
        let mut b = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .dns_resolver(Arc::new(FilteringDns::new(egress.clone())))
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.extra_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| format!("bad CA certificate: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        let cache_budget = if config.cache_bytes == 0 { DEFAULT_CACHE_BYTES } else { config.cache_bytes };
        Ok(Self {
            client: b.build().map_err(|e| e.to_string())?,
            egress,
            cache: Mutex::new(DocCache::default()),
            cache_budget,
            in_flight: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// A resolver for the public internet only, with no extra CA.
    pub fn public() -> Result<Self, String> {
        Self::new(ResolverConfig::default())
    }

    /// The HTTPS client (egress-filtered DNS, no redirects, no proxy) and its policy, for
    /// other outbound requests under the same rules (approval webhooks).
    pub(crate) fn client(&self) -> (reqwest::Client, Arc<EgressPolicy>) {
        (self.client.clone(), self.egress.clone())
    }

    /// Bytes the document cache holds now (as it counts them).
    pub fn cache_bytes(&self) -> usize {
        self.cache.lock().map(|c| c.bytes).unwrap_or(0)
    }

    async fn get_json(&self, url: &str, kind: Kind, valid: impl Fn(&Value) -> bool) -> Result<Arc<Value>, ResolveError> {
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(url)) {
            return Ok(v);
        }
        let count = |outcome: &'static str| {
            metrics::counter!("sigil_outbound_fetches_total", "kind" => kind.label(), "outcome" => outcome).increment(1)
        };
        if let Err(refused) = self.egress.check_url(url) {
            count("refused");
            tracing::warn!(url, kind = kind.label(), reason = %refused, "outbound fetch refused");
            return Err(ResolveError::Refused);
        }
        let _permit = self.in_flight.acquire().await.map_err(|_| ResolveError::Unavailable)?;
        // Another request may have fetched it while this one waited for a permit.
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(url)) {
            return Ok(v);
        }
        let (size, v) = match self.fetch(url).await {
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(v) if valid(&v) => (body.len(), Arc::new(v)),
                Ok(_) => return Err(self.failed(url, kind, "the document is not valid for its purpose".into())),
                Err(_) => return Err(self.failed(url, kind, "the response is not JSON".into())),
            },
            // Refused at name resolution: the name resolves only to addresses the policy
            // refuses. The caller is told no more than for a name that does not resolve,
            // so /v1/verify cannot be used to probe internal DNS; the log says which.
            Err(Fetch::Refused(reason)) => {
                count("refused");
                tracing::warn!(url, kind = kind.label(), reason, "outbound fetch refused");
                return Err(ResolveError::Unavailable);
            }
            Err(Fetch::Failed(reason)) => return Err(self.failed(url, kind, reason)),
        };
        count("made");
        if let Ok(mut c) = self.cache.lock() {
            // The URL is kept twice (map key and eviction order); a parsed tree is counted
            // at PARSED_FACTOR times its text, plus a fixed overhead per entry.
            let counted = size.saturating_mul(PARSED_FACTOR).saturating_add(2 * url.len()).saturating_add(ENTRY_OVERHEAD);
            c.insert(url, counted, v.clone(), self.cache_budget);
            metrics::gauge!("sigil_cache_bytes", "cache" => "resolver").set(c.bytes as f64);
        }
        Ok(v)
    }

    fn failed(&self, url: &str, kind: Kind, reason: String) -> ResolveError {
        metrics::counter!("sigil_outbound_fetches_total", "kind" => kind.label(), "outcome" => "failed").increment(1);
        tracing::warn!(url, kind = kind.label(), reason, "outbound fetch failed");
        ResolveError::Unavailable
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Fetch> {
        let classify = |e: reqwest::Error| match refusal_in(&e) {
            Some(r) => Fetch::Refused(r.to_string()),
            None => Fetch::Failed(format!("request failed: {e}")),
        };
        let mut resp = self.client.get(url).send().await.map_err(classify)?;
        if !resp.status().is_success() {
            return Err(Fetch::Failed(format!("HTTP {}", resp.status().as_u16())));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(Fetch::Failed("response larger than 1 MiB".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Fetch::Failed("response larger than 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

enum Fetch {
    Refused(String),
    Failed(String),
}

#[async_trait]
impl Resolver for HttpResolver {
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, ResolveError> {
        let url = did_web_url(did).ok_or(ResolveError::Unavailable)?;
        // Validated before it is cached: a document for another DID is never kept.
        self.get_json(&url, Kind::Did, |doc| doc.get("id").and_then(Value::as_str) == Some(did)).await
    }

    async fn fetch_status_list(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        self.get_json(url, Kind::StatusList, |v| types(v).contains(&"BitstringStatusListCredential")).await
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
    async fn resolve_did(&self, did: &str) -> Result<Arc<Value>, ResolveError> {
        let Some(path) = self.own_did_path(did) else {
            return self.sigil.http.resolve_did(did).await;
        };
        let nf = || ResolveError::Unavailable;
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

    async fn fetch_status_list(&self, url: &str) -> Result<Arc<Value>, ResolveError> {
        let own = format!("{}/tenants/", self.sigil.settings.public_url.base());
        let Some(rest) = url.strip_prefix(&own) else {
            return self.sigil.http.fetch_status_list(url).await;
        };
        let (t, list) = rest.split_once("/status/").ok_or(ResolveError::Unavailable)?;
        let t = TenantId::parse(t).map_err(|_| ResolveError::Unavailable)?;
        self.sigil.status_list_credential(&t, list).await.map_err(|_| ResolveError::Unavailable)
    }
}
