//! One typed configuration, assembled from command-line flags, their `SIGIL_*` environment
//! twins and an optional TOML file (in that order of precedence), and validated once at
//! start-up. Secrets (root passphrase, bootstrap token) come only from the environment or
//! from `*_FILE` paths, never from flags (which leak into `ps`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::crypto::{RootKeySource, SecretBytes};
use crate::error::SigilError;
use crate::service::egress::EgressPolicy;
use crate::store::PgOptions;
use crate::vc::trust::TrustRule;

/// `sigil serve` flags. Every flag has an environment twin.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file with the same keys as the flags (snake_case).
    #[arg(long, env = "SIGIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (store, dev TLS certificate, generated keys).
    #[arg(long, env = "SIGIL_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "SIGIL_LISTEN")]
    pub listen: Option<String>,
    /// Public base URL; the did:web host comes from it. Default: https://<listen>.
    #[arg(long, env = "SIGIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain for TLS.
    #[arg(long, env = "SIGIL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "SIGIL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only allowed on a loopback address).
    #[arg(long, env = "SIGIL_HTTP")]
    pub http: bool,
    /// File holding the 32-byte root key.
    #[arg(long, env = "SIGIL_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// File holding the 32-byte root key a rotation on another node will move to: this
    /// node adopts it, without restart, once the database's key check names it
    /// (several nodes on PostgreSQL).
    #[arg(long, env = "SIGIL_NEXT_ROOT_KEY_FILE")]
    pub next_root_key_file: Option<PathBuf>,
    /// Maximum request body in bytes (default 65536).
    #[arg(long, env = "SIGIL_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Maximum lifetime of a presentation proof in seconds (default 300).
    #[arg(long, env = "SIGIL_MAX_PRESENTATION_TTL")]
    pub max_presentation_ttl: Option<u64>,
    /// Log format: `json` (default) or `text`.
    #[arg(long, env = "SIGIL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Worker threads for the HTTP server (default: number of CPUs).
    #[arg(long, env = "SIGIL_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds between housekeeping runs: scheduled key rotation, expired challenges (default 60).
    #[arg(long, env = "SIGIL_ROTATION_INTERVAL")]
    pub rotation_interval: Option<u64>,
    /// Failed authentications allowed per client address before attempts without a valid
    /// token from it are refused for a minute (default 20, refilled one per 3 s; 0
    /// disables). A valid token is never refused. Behind a proxy, name it with
    /// --trusted-proxy so that each client has its own address.
    #[arg(long, env = "SIGIL_AUTH_FAILURE_BURST")]
    pub auth_failure_burst: Option<u32>,
    /// A reverse proxy (CIDR network or one address) whose `X-Forwarded-For` names the
    /// client, for per-address limits and the audit trail; from any other peer the header is
    /// ignored. Repeatable; comma-separated in the variable.
    #[arg(long = "trusted-proxy", env = "SIGIL_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<String>,
    /// An issuer `/v1/verify` trusts beside this deployment's own tenants: `DID` (every
    /// credential type) or `DID=Type1,Type2`. Repeatable; space-separated in the variable.
    #[arg(long = "trust-issuer", env = "SIGIL_TRUST_ISSUER", value_delimiter = ' ')]
    pub trust_issuer: Vec<String>,
    /// A JSON-LD context served to the `eddsa-rdfc-2022` pipeline beside the bundled ones:
    /// `URL=PATH` (the file is read once, at start; contexts are never fetched).
    /// Repeatable; space-separated in the variable.
    #[arg(long = "jsonld-context", env = "SIGIL_JSONLD_CONTEXT", value_delimiter = ' ')]
    pub jsonld_context: Vec<String>,
    /// A destination outbound fetches may reach beyond public addresses on port 443:
    /// `HOST` (any port) or `HOST:PORT`. Repeatable; comma-separated in the variable.
    #[arg(long = "resolver-allow", env = "SIGIL_RESOLVER_ALLOW", value_delimiter = ',')]
    pub resolver_allow: Vec<String>,
    /// PEM CA certificates outbound fetches trust beside the public web PKI (a private
    /// deployment's CA).
    #[arg(long, env = "SIGIL_RESOLVER_CA")]
    pub resolver_ca: Option<PathBuf>,
    /// Byte budget of the fetched DID document and status list cache (default 8 MiB).
    #[arg(long, env = "SIGIL_RESOLVER_CACHE_BYTES")]
    pub resolver_cache_bytes: Option<usize>,
    /// Byte budget of the verified status list cache (default 32 MiB).
    #[arg(long, env = "SIGIL_STATUS_CACHE_BYTES")]
    pub status_cache_bytes: Option<usize>,
    /// `/v1/verify` requests per second per client address, bursts of twice that
    /// (default 100; 0 disables).
    #[arg(long, env = "SIGIL_VERIFY_RATE")]
    pub verify_rate: Option<u32>,
    /// `enforce` (default): the W3C VC-API verify routes say `verified` only for a trusted
    /// issuer, as `/v1/verify` does. `advisory`: proofs, status and validity decide and
    /// trust is only reported (`issuerTrusted`), for a VC-API conformance suite that signs
    /// with throwaway `did:key` issuers.
    #[arg(long, env = "SIGIL_VC_API_TRUST")]
    pub vc_api_trust: Option<String>,
    /// Once, after upgrading from a version whose audit chain heads were not
    /// authenticated: authenticate every legacy head that names the real end of its chain.
    /// Without it, a legacy head is refused (its tenant cannot write), because a head
    /// rewritten at rest looks exactly like one.
    #[arg(long, env = "SIGIL_UPGRADE_AUDIT_HEADS")]
    pub upgrade_audit_heads: bool,
    /// Where the data lives: `sled` (the default: embedded, in the data directory) or a
    /// PostgreSQL URL, `postgres://USER@HOST:PORT/DB[?sslmode=require]`, which several
    /// nodes may share. Keep the password out of it: SIGIL_STORE_PASSWORD[_FILE].
    #[arg(long, env = "SIGIL_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// PostgreSQL connections per node (default 16).
    #[arg(long, env = "SIGIL_STORE_POOL_SIZE")]
    pub store_pool_size: Option<usize>,
    /// Bound in milliseconds on each PostgreSQL operation: waiting for a connection,
    /// connecting, each statement (default 5000). Past it the request fails with 503.
    #[arg(long, env = "SIGIL_STORE_TIMEOUT_MS")]
    pub store_timeout_ms: Option<u64>,
    /// PEM CA certificates to trust for PostgreSQL's TLS certificate (beside the public
    /// web PKI).
    #[arg(long, env = "SIGIL_STORE_CA")]
    pub store_ca: Option<PathBuf>,
}

/// The TOML file's shape: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http: Option<bool>,
    root_key_file: Option<PathBuf>,
    next_root_key_file: Option<PathBuf>,
    body_limit: Option<usize>,
    max_presentation_ttl: Option<u64>,
    log_format: Option<String>,
    workers: Option<usize>,
    rotation_interval: Option<u64>,
    auth_failure_burst: Option<u32>,
    #[serde(default)]
    trusted_proxy: Vec<String>,
    #[serde(default)]
    trust_issuer: Vec<String>,
    #[serde(default)]
    jsonld_context: Vec<String>,
    #[serde(default)]
    resolver_allow: Vec<String>,
    resolver_ca: Option<PathBuf>,
    resolver_cache_bytes: Option<usize>,
    status_cache_bytes: Option<usize>,
    verify_rate: Option<u32>,
    vc_api_trust: Option<String>,
    store: Option<String>,
    store_pool_size: Option<usize>,
    store_timeout_ms: Option<u64>,
    store_ca: Option<PathBuf>,
}

/// Which backend holds the data.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// sled, in `DATA/store` (one process).
    Sled,
    /// PostgreSQL, shared by every node given the same URL.
    Postgres(PgOptions),
}

/// How the listener speaks.
#[derive(Debug, Clone)]
pub enum Transport {
    /// TLS with an operator-provided certificate and key.
    Tls { cert: PathBuf, key: PathBuf },
    /// TLS with a self-signed certificate generated into the data directory.
    DevTls,
    /// Plain HTTP on loopback.
    PlainHttp,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Validated configuration.
#[derive(Debug)]
pub struct Config {
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// Explicit public URL; `None` means "derive from the bound address" (port 0 in tests).
    pub public_url: Option<PublicUrl>,
    pub transport: Transport,
    pub root_key: Option<RootKeySource>,
    /// The root key a rotation on another node will move to (`--next-root-key-file`).
    pub next_root_key: Option<PathBuf>,
    pub bootstrap_token: Option<SecretBytes>,
    pub body_limit: usize,
    pub max_presentation_ttl: u64,
    pub log_format: LogFormat,
    pub workers: usize,
    pub rotation_interval: u64,
    pub auth_failure_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Issuers `/v1/verify` trusts beside the deployment's own tenants.
    pub trust_issuers: Vec<TrustRule>,
    /// Operator JSON-LD contexts, `(URL, JSON text)`, read at start-up.
    pub jsonld_contexts: Vec<(String, String)>,
    /// Outbound fetches: what they may reach beyond public addresses on port 443.
    pub egress: EgressPolicy,
    /// Extra CA certificates (PEM) for outbound fetches, read at start-up.
    pub resolver_ca_pem: Option<Vec<u8>>,
    pub resolver_cache_bytes: usize,
    pub status_cache_bytes: usize,
    pub verify_rate: u32,
    /// The VC-API verify routes only report trust (`--vc-api-trust advisory`).
    pub vc_api_trust_advisory: bool,
    /// Authenticate legacy audit chain heads at this start (`--upgrade-audit-heads`).
    pub upgrade_audit_heads: bool,
    /// The storage backend (`--store`).
    pub store: StoreConfig,
    /// The test clock, when `SIGIL_TEST_CLOCK_FILE` is set (debug builds only).
    #[cfg(debug_assertions)]
    pub test_clock: Option<TestClockSource>,
}

/// The file a test moves a running server's clock with: it holds one RFC 3339 instant, the
/// server's "now" until the file changes (the test replaces it atomically). Named by
/// `SIGIL_TEST_CLOCK_FILE`; read at every call of `clock::AdjustableClock`.
///
/// Debug builds only: release builds compile neither this type nor the variable's name,
/// so no environment can move a deployment's clock.
#[cfg(debug_assertions)]
#[derive(Debug, Clone)]
pub struct TestClockSource(PathBuf);

#[cfg(debug_assertions)]
impl TestClockSource {
    /// The environment variable naming the file.
    pub const VAR: &'static str = "SIGIL_TEST_CLOCK_FILE";

    /// The file the environment names, which must hold a time already.
    fn from_env() -> Result<Option<Self>, SigilError> {
        let Some(path) = std::env::var_os(Self::VAR) else { return Ok(None) };
        let file = Self(PathBuf::from(path));
        match file.read() {
            Some(_) => Ok(Some(file)),
            None => Err(cfg_err(format!("{}: {} holds no RFC 3339 time", Self::VAR, file.0.display()))),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The instant the file holds now; `None` when it cannot be read or parsed.
    pub fn read(&self) -> Option<jiff::Timestamp> {
        std::fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

/// A validated public base URL: `scheme://host[:port]`, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    base: String,
    did_host: String,
}

impl PublicUrl {
    /// Parses `https://host[:port]` (or `http://` for loopback dev use).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim_end_matches('/');
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| format!("public URL {s:?} must start with https://"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '[', ']', ' ']) {
            return Err(format!("public URL {s:?} must be scheme://host[:port] with no path, user or IPv6 literal"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                p.parse::<u16>().map_err(|_| format!("public URL {s:?} has an invalid port"))?;
                (h, Some(p))
            }
            None => (rest, None),
        };
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err(format!("public URL {s:?} has an invalid host"));
        }
        let host = host.to_ascii_lowercase();
        // did:web encodes the port's colon as %3A (did:web method spec §3.1).
        let did_host = match port {
            Some(p) => format!("{host}%3A{p}"),
            None => host.clone(),
        };
        let scheme = if s.starts_with("https://") { "https" } else { "http" };
        let base = match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(Self { base, did_host })
    }

    /// `scheme://host[:port]` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The method-specific id prefix for did:web (`host%3Aport`).
    pub fn did_host(&self) -> &str {
        &self.did_host
    }
}

fn cfg_err(msg: impl Into<String>) -> SigilError {
    SigilError::Config(msg.into())
}

fn secret_from_env(name: &str) -> Result<Option<SecretBytes>, SigilError> {
    let file_var = format!("{name}_FILE");
    if let Ok(path) = std::env::var(&file_var) {
        let bytes = std::fs::read(&path).map_err(|e| cfg_err(format!("{file_var}: cannot read {path}: {e}")))?;
        let trimmed: Vec<u8> = bytes.trim_ascii_end().to_vec();
        return Ok(Some(SecretBytes::new(trimmed)));
    }
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Some(SecretBytes::new(v.into_bytes()))),
        _ => Ok(None),
    }
}

impl Config {
    /// Builds and validates the configuration for `sigil serve`.
    pub fn from_args(args: ServeArgs) -> Result<Self, SigilError> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let data = args.data.or(file.data).unwrap_or_else(|| PathBuf::from("./data"));
        let listen_s = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8443".into());
        let listen: SocketAddr =
            listen_s.parse().map_err(|_| cfg_err(format!("--listen {listen_s:?} is not an address like 127.0.0.1:8443")))?;
        let http = args.http || file.http.unwrap_or(false);
        let tls_cert = args.tls_cert.or(file.tls_cert);
        let tls_key = args.tls_key.or(file.tls_key);
        let transport = match (http, tls_cert, tls_key) {
            (true, None, None) => {
                if !listen.ip().is_loopback() {
                    return Err(cfg_err(format!("--http is refused on non-loopback address {listen}; use TLS")));
                }
                Transport::PlainHttp
            }
            (true, _, _) => {
                return Err(cfg_err("--http cannot be combined with --tls-cert/--tls-key"));
            }
            (false, Some(cert), Some(key)) => Transport::Tls { cert, key },
            (false, None, None) => Transport::DevTls,
            (false, _, _) => {
                return Err(cfg_err("--tls-cert and --tls-key must be given together"));
            }
        };
        let public_url = match args.public_url.or(file.public_url) {
            Some(u) => Some(PublicUrl::parse(&u).map_err(cfg_err)?),
            None => None,
        };
        if let Some(u) = &public_url {
            let is_https = u.base().starts_with("https://");
            if is_https == matches!(transport, Transport::PlainHttp) && !matches!(transport, Transport::PlainHttp) {
                return Err(cfg_err("--public-url must use https:// when serving TLS"));
            }
        }
        let root_key_file = args.root_key_file.or(file.root_key_file);
        let passphrase = secret_from_env("SIGIL_ROOT_PASSPHRASE")?;
        let root_key = match (root_key_file, passphrase) {
            (Some(_), Some(_)) => {
                return Err(cfg_err("give either a root key file or SIGIL_ROOT_PASSPHRASE, not both"));
            }
            (Some(p), None) => Some(RootKeySource::File(p)),
            (None, Some(pw)) => {
                if pw.len() < 12 {
                    return Err(cfg_err("SIGIL_ROOT_PASSPHRASE must be at least 12 characters"));
                }
                Some(RootKeySource::Passphrase(pw))
            }
            (None, None) => None,
        };
        let next_root_key = args.next_root_key_file.or(file.next_root_key_file);
        let bootstrap_token = secret_from_env("SIGIL_BOOTSTRAP_TOKEN")?;
        if let Some(t) = &bootstrap_token {
            if t.len() < 32 || t.len() > 256 || !t.expose().iter().all(|b| b.is_ascii_graphic()) {
                return Err(cfg_err("SIGIL_BOOTSTRAP_TOKEN must be 32–256 printable ASCII characters (use ≥ 256 random bits)"));
            }
        }
        let body_limit = args.body_limit.or(file.body_limit).unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&body_limit) {
            return Err(cfg_err("--body-limit must be between 1024 and 16777216 bytes"));
        }
        let max_presentation_ttl = args.max_presentation_ttl.or(file.max_presentation_ttl).unwrap_or(300);
        if !(1..=86_400).contains(&max_presentation_ttl) {
            return Err(cfg_err("--max-presentation-ttl must be between 1 and 86400 seconds"));
        }
        let log_format = match args.log_format.or(file.log_format).as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => {
                return Err(cfg_err(format!("--log-format {other:?} must be json or text")));
            }
        };
        let workers = args.workers.or(file.workers).unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
        if !(1..=512).contains(&workers) {
            return Err(cfg_err("--workers must be between 1 and 512"));
        }
        let rotation_interval = args.rotation_interval.or(file.rotation_interval).unwrap_or(60);
        if !(1..=86_400).contains(&rotation_interval) {
            return Err(cfg_err("--rotation-interval must be between 1 and 86400 seconds"));
        }
        let auth_failure_burst = args.auth_failure_burst.or(file.auth_failure_burst).unwrap_or(20);
        let proxies = if args.trusted_proxy.is_empty() { file.trusted_proxy } else { args.trusted_proxy };
        let trusted_proxies = proxies
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| crate::http::client::parse_trusted_proxy(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cfg_err(format!("--trusted-proxy {e}")))?;
        let trust = if args.trust_issuer.is_empty() { file.trust_issuer } else { args.trust_issuer };
        let trust_issuers = trust.iter().filter(|t| !t.is_empty()).map(|t| TrustRule::parse(t)).collect::<Result<Vec<_>, _>>();
        let trust_issuers = trust_issuers.map_err(|e| cfg_err(format!("--trust-issuer {e}")))?;
        let ctx = if args.jsonld_context.is_empty() { file.jsonld_context } else { args.jsonld_context };
        let jsonld_contexts = read_jsonld_contexts(&ctx)?;
        let allow = if args.resolver_allow.is_empty() { file.resolver_allow } else { args.resolver_allow };
        let allow: Vec<String> = allow.into_iter().filter(|a| !a.is_empty()).collect();
        let egress = EgressPolicy::with_allowed(&allow).map_err(cfg_err)?;
        let resolver_ca_pem = match args.resolver_ca.or(file.resolver_ca) {
            Some(p) => Some(std::fs::read(&p).map_err(|e| cfg_err(format!("--resolver-ca: cannot read {}: {e}", p.display())))?),
            None => None,
        };
        let mib = |n: usize| n * 1024 * 1024;
        let resolver_cache_bytes = args.resolver_cache_bytes.or(file.resolver_cache_bytes).unwrap_or(mib(8));
        let status_cache_bytes = args.status_cache_bytes.or(file.status_cache_bytes).unwrap_or(mib(32));
        if !(mib(1)..=mib(4096)).contains(&resolver_cache_bytes) || !(mib(1)..=mib(4096)).contains(&status_cache_bytes) {
            return Err(cfg_err("--resolver-cache-bytes and --status-cache-bytes must be between 1 MiB and 4 GiB"));
        }
        let verify_rate = args.verify_rate.or(file.verify_rate).unwrap_or(100);
        let vc_api_trust_advisory = match args.vc_api_trust.or(file.vc_api_trust).as_deref() {
            None | Some("enforce") => false,
            Some("advisory") => true,
            Some(_) => return Err(cfg_err("--vc-api-trust must be enforce or advisory")),
        };
        let store = store_config(
            args.store.or(file.store),
            args.store_pool_size.or(file.store_pool_size),
            args.store_timeout_ms.or(file.store_timeout_ms),
            args.store_ca.or(file.store_ca),
        )?;
        #[cfg(debug_assertions)]
        let test_clock = TestClockSource::from_env()?;
        Ok(Self {
            #[cfg(debug_assertions)]
            test_clock,
            trust_issuers,
            jsonld_contexts,
            egress,
            resolver_ca_pem,
            resolver_cache_bytes,
            status_cache_bytes,
            verify_rate,
            vc_api_trust_advisory,
            upgrade_audit_heads: args.upgrade_audit_heads,
            store,
            auth_failure_burst,
            trusted_proxies,
            rotation_interval,
            data,
            listen,
            public_url,
            transport,
            root_key,
            next_root_key,
            bootstrap_token,
            body_limit,
            max_presentation_ttl,
            log_format,
            workers,
        })
    }
}

/// Validates `--store` and its companions; the password comes from the environment only.
fn store_config(url: Option<String>, pool: Option<usize>, timeout_ms: Option<u64>, ca: Option<PathBuf>) -> Result<StoreConfig, SigilError> {
    let url = match url.as_deref() {
        None | Some("") | Some("sled") => {
            if pool.is_some() || timeout_ms.is_some() || ca.is_some() {
                return Err(cfg_err("--store-pool-size, --store-timeout-ms and --store-ca apply to a PostgreSQL --store only"));
            }
            return Ok(StoreConfig::Sled);
        }
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => u.to_owned(),
        Some(_) => return Err(cfg_err("--store must be `sled` or a postgres:// URL")),
    };
    // The URL itself is never echoed: it may carry a password.
    url.parse::<tokio_postgres::Config>().map_err(|e| cfg_err(format!("--store is not a valid PostgreSQL URL: {e}")))?;
    let mut options = PgOptions::new(url);
    options.password = secret_from_env("SIGIL_STORE_PASSWORD")?.map(|p| zeroize::Zeroizing::new(p.expose().to_vec()));
    options.pool_size = pool.unwrap_or(16);
    if !(1..=1024).contains(&options.pool_size) {
        return Err(cfg_err("--store-pool-size must be between 1 and 1024"));
    }
    let ms = timeout_ms.unwrap_or(5000);
    if !(100..=600_000).contains(&ms) {
        return Err(cfg_err("--store-timeout-ms must be between 100 and 600000"));
    }
    options.timeout = std::time::Duration::from_millis(ms);
    if let Some(p) = ca {
        options.ca_pem = Some(std::fs::read(&p).map_err(|e| cfg_err(format!("--store-ca: cannot read {}: {e}", p.display())))?);
    }
    Ok(StoreConfig::Postgres(options))
}

fn load_file(p: &Path) -> Result<FileConfig, SigilError> {
    let text = std::fs::read_to_string(p).map_err(|e| cfg_err(format!("cannot read config file {}: {e}", p.display())))?;
    toml::from_str(&text).map_err(|e| {
        let first = e.message().lines().next().unwrap_or("parse error").to_owned();
        cfg_err(format!("config file {}: {first}", p.display()))
    })
}

/// Reads `URL=PATH` JSON-LD context files (`--jsonld-context`) and checks each is a
/// context the JSON-LD pipeline takes; answers `(URL, text)` pairs.
pub fn read_jsonld_contexts(specs: &[String]) -> Result<Vec<(String, String)>, SigilError> {
    let mut out = Vec::new();
    for spec in specs.iter().filter(|s| !s.is_empty()) {
        let (url, path) = spec.split_once('=').ok_or_else(|| cfg_err(format!("--jsonld-context {spec:?} must be URL=PATH")))?;
        let text = std::fs::read_to_string(path).map_err(|e| cfg_err(format!("--jsonld-context: cannot read {path}: {e}")))?;
        out.push((url.to_owned(), text));
    }
    // Parsed here too, so a broken file stops the start with its name.
    crate::vc::jsonld::Contexts::new(None, &out).map_err(|e| cfg_err(format!("--jsonld-context: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_encodes_port_for_did_web() {
        let u = PublicUrl::parse("https://Sigil.Example.com:8443/").unwrap();
        assert_eq!(u.base(), "https://sigil.example.com:8443");
        assert_eq!(u.did_host(), "sigil.example.com%3A8443");
        assert_eq!(PublicUrl::parse("https://id.example").unwrap().did_host(), "id.example");
        for bad in ["ftp://x", "https://", "https://a/b", "https://[::1]:8443", "https://a:99999", "https://u@h"] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let a = ServeArgs { http: true, listen: Some("0.0.0.0:8080".into()), ..Default::default() };
        assert!(matches!(Config::from_args(a), Err(SigilError::Config(_))));
        let a = ServeArgs { http: true, listen: Some("127.0.0.1:8080".into()), ..Default::default() };
        assert!(matches!(Config::from_args(a).unwrap().transport, Transport::PlainHttp));
    }

    #[test]
    fn bad_values_are_config_errors() {
        let a = ServeArgs { listen: Some("nonsense".into()), ..Default::default() };
        assert_eq!(Config::from_args(a).unwrap_err().exit_code(), 2);
        let a = ServeArgs { tls_cert: Some("c.pem".into()), ..Default::default() };
        assert!(Config::from_args(a).is_err());
    }

    #[test]
    fn trust_and_egress_flags_are_validated() {
        let a = ServeArgs { trust_issuer: vec!["did:web:partner.example=DelegatedAuthorityCredential".into()], ..Default::default() };
        assert_eq!(Config::from_args(a).unwrap().trust_issuers.len(), 1);
        for bad in ["partner.example", "did:web:x="] {
            let a = ServeArgs { trust_issuer: vec![bad.into()], ..Default::default() };
            assert!(Config::from_args(a).is_err(), "{bad}");
        }
        let a = ServeArgs { resolver_allow: vec!["bad host".into()], ..Default::default() };
        assert!(Config::from_args(a).is_err());
        let a = ServeArgs { resolver_cache_bytes: Some(10), ..Default::default() };
        assert!(Config::from_args(a).is_err());
        let a = ServeArgs { trusted_proxy: vec!["10.0.0.0/8".into(), "::1".into()], ..Default::default() };
        assert_eq!(Config::from_args(a).unwrap().trusted_proxies.len(), 2);
        for bad in ["0.0.0.0/0", "proxy.example"] {
            let a = ServeArgs { trusted_proxy: vec![bad.into()], ..Default::default() };
            assert!(Config::from_args(a).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sigil.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\nlisen = 1\n").unwrap();
        let a = ServeArgs { config: Some(p.clone()), ..Default::default() };
        assert!(Config::from_args(a).is_err());
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\nbody_limit = 2048\n").unwrap();
        let c = Config::from_args(ServeArgs { config: Some(p), ..Default::default() }).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.body_limit, 2048);
    }

    #[test]
    fn store_is_sled_or_a_postgres_url() {
        assert!(matches!(Config::from_args(ServeArgs::default()).unwrap().store, StoreConfig::Sled));
        let a = ServeArgs { store: Some("postgres://sigil@db:5432/sigil".into()), store_pool_size: Some(4), ..Default::default() };
        match Config::from_args(a).unwrap().store {
            StoreConfig::Postgres(o) => assert_eq!(o.pool_size, 4),
            StoreConfig::Sled => panic!("a postgres URL selects PostgreSQL"),
        }
        for bad in ["mysql://x", "postgres://h:notaport/db"] {
            let a = ServeArgs { store: Some(bad.into()), ..Default::default() };
            assert!(Config::from_args(a).is_err(), "{bad}");
        }
        let a = ServeArgs { store_pool_size: Some(4), ..Default::default() };
        assert!(Config::from_args(a).is_err(), "pool options without a database are a mistake");
    }
}
