//! Wiring: turns a validated [`Config`] into a running server. Order matters and is
//! deliberate: the root key is proven correct against the key-check file *before* the store
//! is opened, so a wrong key or passphrase touches nothing on disk.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use utoipa::OpenApi as _;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, PublicUrl, StoreConfig, Transport};
use crate::crypto::{AccessToken, KdfParams, RootKey, RootKeySource, TokenPepper};
use crate::error::SigilError;
use crate::http;
use crate::service::records::{TokenRole, kind};
use crate::service::{Keyring, Settings, Sigil};
use crate::store::{PgStore, SledStore, Store, Txn, keys};

use crate::datadir::{self, FORMAT, KEYCHECK_FILE, KeyCheckFile, ensure_private_dir, write_private_file};

/// A started server.
pub struct Application {
    server: actix_web::dev::Server,
    addr: SocketAddr,
    base_url: String,
    sigil: Arc<Sigil>,
}

impl Application {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Public base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The service behind the server.
    pub fn sigil(&self) -> Arc<Sigil> {
        self.sigil.clone()
    }

    /// Runs until the server stops (SIGINT/SIGTERM trigger a graceful stop).
    pub async fn run(self) -> Result<(), SigilError> {
        self.server.await.map_err(|e| SigilError::Startup(format!("server failed: {e}")))
    }
}

fn startup(msg: impl std::fmt::Display) -> SigilError {
    SigilError::Startup(msg.to_string())
}

/// The root key of a data directory, and whether the directory is new.
pub struct OpenedRoot {
    pub key: RootKey,
    /// `Some` for a new store: the KDF parameters to record (passphrase stores only).
    pub new_store: Option<Option<KdfParams>>,
    /// What the key-check file says of an existing directory (new ones are [`FORMAT`]).
    pub format: StoreFormat,
}

/// The format a data directory was written in, and the KDF parameters its key-check file
/// keeps (rewritten as they are when an upgrade rewrites the file).
#[derive(Debug, Clone)]
pub struct StoreFormat {
    pub format: u32,
    pub kdf: Option<KdfParams>,
}

/// Opens the root key for the data directory; creates key material for a new one.
/// Runs argon2id synchronously: this happens once, before anything is served.
pub fn open_root_key(data: &Path, source: Option<&RootKeySource>) -> Result<OpenedRoot, SigilError> {
    open_root_key_with(datadir::read_key_check(data)?, data, source)
}

/// [`open_root_key`] against a key-check record read already (from the database, when it
/// keeps the key check).
fn open_root_key_with(existing: Option<KeyCheckFile>, data: &Path, source: Option<&RootKeySource>) -> Result<OpenedRoot, SigilError> {
    let dev_key = data.join("root.key");
    match existing {
        Some(kc) => {
            // Format 1 is upgraded at start-up (`upgrade`); a newer one is a newer release's.
            if !(1..=FORMAT).contains(&kc.format) {
                return Err(SigilError::Store(format!(
                    "unsupported store format {}: this release reads formats 1 to {FORMAT}; run the release that wrote it",
                    kc.format
                )));
            }
            let bytes = match source {
                Some(RootKeySource::File(p)) => datadir::read_root_key_file(p).map_err(SigilError::Config)?,
                Some(RootKeySource::Passphrase(pw)) => {
                    let params = kc.kdf.as_ref().ok_or_else(|| {
                        SigilError::WrongRootKey("this store was not created with a passphrase; give its root key file".into())
                    })?;
                    RootKey::derive(pw, params).map_err(SigilError::Config)?
                }
                None if dev_key.exists() => {
                    tracing::warn!(
                        "using the development root key in {}; production stores must keep the root key elsewhere",
                        dev_key.display()
                    );
                    datadir::read_root_key_file(&dev_key).map_err(SigilError::Config)?
                }
                None => {
                    return Err(SigilError::Config("no root key: set --root-key-file/SIGIL_ROOT_KEY_FILE or SIGIL_ROOT_PASSPHRASE".into()));
                }
            };
            let rk = RootKey::from_bytes(bytes, kc.root_version).map_err(|_| SigilError::WrongRootKey("malformed key".into()))?;
            let blob = STANDARD.decode(&kc.check).map_err(|_| SigilError::Store("key check record is corrupt".into()))?;
            rk.verify_key_check(kc.format, &blob)
                .map_err(|_| SigilError::WrongRootKey("the root key or passphrase is wrong; nothing was changed".into()))?;
            Ok(OpenedRoot { key: rk, new_store: None, format: StoreFormat { format: kc.format, kdf: kc.kdf } })
        }
        None => {
            ensure_private_dir(data)?;
            let (bytes, kdf) = match source {
                Some(RootKeySource::File(p)) => (datadir::read_root_key_file(p).map_err(SigilError::Config)?, None),
                Some(RootKeySource::Passphrase(pw)) => {
                    let params = KdfParams::generate();
                    (RootKey::derive(pw, &params).map_err(SigilError::Config)?, Some(params))
                }
                None => {
                    let bytes = if dev_key.exists() {
                        datadir::read_root_key_file(&dev_key).map_err(SigilError::Config)?
                    } else {
                        let b = RootKey::generate_bytes();
                        datadir::write_new_key_file(&dev_key, &b).map_err(SigilError::Config)?;
                        b
                    };
                    tracing::warn!(
                        path = %dev_key.display(),
                        "NO ROOT KEY CONFIGURED: generated a development root key inside the data directory. \
                         Anyone who can read the data directory can decrypt it. Use --root-key-file or \
                         SIGIL_ROOT_PASSPHRASE in production."
                    );
                    (bytes, None)
                }
            };
            let rk = RootKey::from_bytes(bytes, 1).map_err(|_| SigilError::Config("malformed root key".into()))?;
            Ok(OpenedRoot { key: rk, new_store: Some(kdf.clone()), format: StoreFormat { format: FORMAT, kdf } })
        }
    }
}

/// The opened backend: what `--store` names.
#[derive(Clone)]
pub enum Backend {
    Sled(Arc<SledStore>),
    Postgres(Arc<PgStore>),
}

impl Backend {
    /// The store behind the trait.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sled(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }

    /// Flushes synchronously (offline commands, before exit). PostgreSQL commits are
    /// durable when acknowledged: nothing to do.
    pub fn flush_now(&self) -> Result<(), SigilError> {
        match self {
            Self::Sled(s) => s.flush_now().map_err(|e| SigilError::Store(e.to_string())),
            Self::Postgres(_) => Ok(()),
        }
    }
}

fn store_err(e: crate::store::StoreError) -> SigilError {
    SigilError::Store(e.to_string())
}

/// Opens the store and the keyring; initializes a new store (pepper, operator token).
/// Returns the format the directory is in: run [`upgrade`] once the service is built.
///
/// sled: the root key is proven against the key-check file before the store is opened.
/// PostgreSQL: the key check is in the database, so the schema is brought up first; then,
/// under the startup lock (nodes starting together on an empty database initialize it
/// once), the root key is proven against it, or a new store initialized.
pub async fn open_store(config: &Config) -> Result<(Backend, Keyring, StoreFormat), SigilError> {
    match &config.store {
        StoreConfig::Sled => {
            let OpenedRoot { key: rk, new_store, format } = open_root_key(&config.data, config.root_key.as_ref())?;
            let store = Arc::new(SledStore::open(&config.data.join("store")).map_err(store_err)?);
            let keyring = match new_store {
                Some(kdf) => {
                    if !store.is_empty() {
                        return Err(SigilError::Store("the store holds data but its key-check file is missing".into()));
                    }
                    initialize(store.as_ref(), config, rk, kdf).await?
                }
                None => open_keyring(store.as_ref(), config, rk).await?,
            };
            Ok((Backend::Sled(store), keyring, format))
        }
        StoreConfig::Postgres(options) => {
            let store = Arc::new(PgStore::open(options).await.map_err(store_err)?);
            let lock = store.startup_lock().await.map_err(store_err)?;
            let opened = async {
                let existing = store.read_key_check().await.map_err(store_err)?.map(|b| datadir::parse_key_check(&b)).transpose()?;
                let OpenedRoot { key: rk, new_store, format } = open_root_key_with(existing, &config.data, config.root_key.as_ref())?;
                let keyring = match new_store {
                    Some(kdf) => {
                        if !store.is_empty().await.map_err(store_err)? {
                            return Err(SigilError::Store("the database holds data but no key check".into()));
                        }
                        initialize(store.as_ref(), config, rk, kdf).await?
                    }
                    None => open_keyring(store.as_ref(), config, rk).await?,
                };
                Ok((keyring, format))
            }
            .await;
            lock.release().await;
            let (keyring, format) = opened?;
            Ok((Backend::Postgres(store), keyring, format))
        }
    }
}

/// Writes a new store's pepper and first operator token, then its key check (last: without
/// it the store does not count as initialized).
async fn initialize(store: &dyn Store, config: &Config, rk: RootKey, kdf: Option<KdfParams>) -> Result<Keyring, SigilError> {
    let pepper_key = keys::pepper(rk.version());
    let pepper = TokenPepper::generate();
    let (token, reveal_to_file) = match &config.bootstrap_token {
        Some(t) => (
            AccessToken::from_presented(&String::from_utf8_lossy(t.expose()))
                .ok_or_else(|| SigilError::Config("invalid SIGIL_BOOTSTRAP_TOKEN".into()))?,
            false,
        ),
        None => (AccessToken::generate(), true),
    };
    let keyring = Keyring::new(rk, pepper);
    let minted = {
        let clock = SystemClock;
        let hash = keyring.pepper.hash(&token).to_hex();
        let id = crate::ids::TokenId::random();
        let rec = crate::service::records::TokenRecord {
            v: 1,
            id: id.to_string(),
            role: TokenRole::Operator,
            agent: None,
            created: clock.now(),
            expires: None,
            hash_hex: hash,
            last_used: None,
            principals: Vec::new(),
        };
        (id, rec)
    };
    let rec_bytes = zeroize::Zeroizing::new(serde_json::to_vec(&minted.1).map_err(startup)?);
    let mut txn = Txn::new();
    // Never over another initialization (two nodes on one empty database: the startup
    // lock orders them, and this makes a second one fail rather than replace the pepper).
    txn.require_absent(keys::meta::FORMAT.to_vec())
        .put(keys::meta::FORMAT.to_vec(), FORMAT.to_be_bytes().to_vec())
        .put(pepper_key, keyring.root().wrap_pepper(&keyring.pepper))
        .put(keys::operator_token(minted.0.as_str()), keyring.root().seal_system(kind::OPERATOR_TOKEN, minted.0.as_str(), &rec_bytes))
        .put(keys::token_hash(&minted.1.hash_hex), format!("_op/{}", minted.0));
    store.commit(txn).await.map_err(store_err)?;
    if reveal_to_file {
        ensure_private_dir(&config.data)?;
        let path = config.data.join(datadir::OPERATOR_TOKEN_FILE);
        write_private_file(&path, token.reveal_once().as_bytes())?;
        tracing::warn!(path = %path.display(), "generated the operator token; it is written once to this file, move it somewhere safe");
    }
    // Written last, so a store without it never counts as initialized; a crash before
    // this point leaves a store that refuses to start with a clear message.
    datadir::write_key_check_async(store, config.data.clone(), &keyring.root(), kdf).await?;
    Ok(keyring)
}

/// The keyring of an initialized store: `rk`, proven already, and the pepper it unwraps.
async fn open_keyring(store: &dyn Store, config: &Config, rk: RootKey) -> Result<Keyring, SigilError> {
    let blob = store
        .get(&keys::pepper(rk.version()))
        .await
        .map_err(store_err)?
        .ok_or_else(|| SigilError::Store("token pepper missing from store".into()))?;
    let pepper = rk.unwrap_pepper(&blob).map_err(|_| SigilError::Store("token pepper does not open".into()))?;
    if config.bootstrap_token.is_some() {
        tracing::info!("SIGIL_BOOTSTRAP_TOKEN ignored: the store already has an operator token");
    }
    Ok(Keyring::new(rk, pepper))
}

/// Brings a data directory an older release wrote up to [`FORMAT`], before anything is
/// served (see `service::ops::upgrade`): format 1 had no record manifests. The key-check
/// file, rewritten last, names the new format, and the format is sealed into it, so an
/// edited file cannot claim the old one again.
pub async fn upgrade(sigil: &Sigil, data: &Path, from: &StoreFormat) -> Result<(), SigilError> {
    if from.format >= FORMAT {
        return Ok(());
    }
    let tenants = sigil.build_missing_manifests().await.map_err(|e| SigilError::Store(format!("upgrading the store failed: {e}")))?;
    datadir::write_key_check_async(sigil.store.as_ref(), data.to_path_buf(), &sigil.keys.root(), from.kdf.clone()).await?;
    tracing::warn!(
        tenants,
        from = from.format,
        to = FORMAT,
        "upgraded the data directory: every tenant's record manifest was built from the records stored now, and each data key rolls over at the next housekeeping run"
    );
    Ok(())
}

fn dev_tls(data: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf), SigilError> {
    let dir = data.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    ensure_private_dir(&dir)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(startup)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Sigil development CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca_key = rcgen::KeyPair::generate().map_err(startup)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(startup)?;
    let mut leaf = rcgen::CertificateParams::new(hosts.to_vec()).map_err(startup)?;
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "Sigil development server");
    let leaf_key = rcgen::KeyPair::generate().map_err(startup)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(startup)?;
    write_private_file(&dir.join("ca.pem"), ca.pem().as_bytes())?;
    write_private_file(&key, leaf_key.serialize_pem().as_bytes())?;
    write_private_file(&cert, format!("{}{}", leaf_cert.pem(), ca.pem()).as_bytes())?;
    tracing::warn!(
        ca = %dir.join("ca.pem").display(),
        "no --tls-cert/--tls-key: generated a self-signed development certificate; clients must trust this CA"
    );
    Ok((cert, key))
}

fn rustls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, SigilError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| SigilError::Config(format!("cannot read TLS certificate {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| SigilError::Config(format!("bad TLS certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| SigilError::Config(format!("cannot read TLS key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(startup)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SigilError::Config(format!("TLS certificate and key do not fit: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The service settings a command runs with: `config`'s, served at `public_url`. Also
/// installs the JSON-LD contexts (bundled, Sigil's own at this URL, the operator's files):
/// the process serves one deployment.
pub(crate) fn service_settings(config: &Config, public_url: PublicUrl) -> Settings {
    let own = crate::vc::credential::context_url(public_url.base());
    match crate::vc::jsonld::Contexts::new(Some(&own), &config.jsonld_contexts) {
        // A second install (a test building two services in one process) keeps the first.
        Ok(c) => drop(crate::vc::jsonld::install(c)),
        Err(e) => tracing::error!(error = %e, "JSON-LD contexts not installed"),
    }
    Settings {
        public_url,
        max_presentation_ttl: config.max_presentation_ttl,
        data_dir: Some(config.data.clone()),
        auth_failure_burst: config.auth_failure_burst,
        trusted_issuers: config.trust_issuers.clone(),
        verify_rate: config.verify_rate,
        vc_api_trust_advisory: config.vc_api_trust_advisory,
        seal_limits: Default::default(),
    }
}

/// The outbound resolver `config` describes (egress policy, cache budget).
fn http_resolver(config: &Config) -> Result<crate::service::resolver::HttpResolver, SigilError> {
    crate::vc::verify::set_status_cache_bytes(config.status_cache_bytes);
    crate::service::resolver::HttpResolver::new(crate::service::resolver::ResolverConfig {
        extra_ca_pem: config.resolver_ca_pem.clone(),
        egress: config.egress.clone(),
        cache_bytes: config.resolver_cache_bytes,
    })
    .map_err(startup)
}

/// After an unclean stop or a restore, presentations created before `floor` are refused at
/// verification (`service::verification`). Waiting here until the floor has passed (it is
/// at most [`crate::service::FLOOR_REACH`] ahead) keeps that from refusing presentations
/// made after the restart; a floor further ahead means the clock stepped back, and is not
/// waited for.
async fn wait_for_floor(floor: jiff::Timestamp, now: jiff::Timestamp) {
    let ahead = floor.duration_since(now);
    if ahead > crate::service::FLOOR_REACH {
        tracing::warn!(%floor, "the clock is behind the challenge floor (after an unclean stop or a restore); presentations created before it are refused");
    } else if ahead.is_positive() {
        tracing::info!(%floor, "after an unclean stop or a restore: waiting for the challenge floor to pass");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(ahead.as_millis().unsigned_abs() as u64 + 1)).await;
    }
}

/// The generated operator token file is the development default, like the generated root
/// key beside it. A store whose root key is kept elsewhere has left development: a copy of
/// its data directory must not carry a working operator credential (which can delete
/// every tenant), so a start that finds the file says so loudly.
fn warn_about_generated_operator_token(config: &Config) {
    if config.root_key.is_none() || !datadir::generated_operator_token_present(&config.data) {
        return;
    }
    tracing::warn!(
        file = %config.data.join(datadir::OPERATOR_TOKEN_FILE).display(),
        "THE GENERATED OPERATOR TOKEN FILE IS STILL IN THE DATA DIRECTORY, though the root key is kept elsewhere: \
         anyone who copies the directory (or a backup of it) holds the operator token, which can delete every tenant. \
         Move the file out of the data directory, or replace the token (POST /v1/system/operator-token/rotate, \
         or `sigil operator-token rotate --out FILE` with the server stopped), which also removes the file."
    );
}

/// A request's store retries stop after this many times `--store-timeout-ms` (shared store).
const REQUEST_DEADLINE_FACTOR: u32 = 2;

/// Gives the keyring the root key a rotation on another node will move to
/// (`--next-root-key-file`), as the version after the current root: the node adopts it
/// once the database's key check names that version and the key proves against it
/// (`Sigil::adopt_next_root`). A bad file is a configuration error, found now rather than
/// at the rotation.
fn hold_next_root_key(config: &Config, keyring: &Keyring) -> Result<(), SigilError> {
    let Some(path) = &config.next_root_key else { return Ok(()) };
    let bytes = datadir::read_root_key_file(path).map_err(SigilError::Config)?;
    let current = keyring.root();
    let next =
        RootKey::from_bytes(bytes, current.version() + 1).map_err(|_| SigilError::Config("the next root key must be 32 bytes".into()))?;
    // The current root opens a check the next key sealed only if they are the same key.
    if current.verify_key_check(datadir::FORMAT, &next.key_check(datadir::FORMAT)).is_ok() {
        tracing::warn!("the next root key is the current one (a rotation to it is done): ignored; drop --next-root-key-file");
        return Ok(());
    }
    if matches!(config.store, StoreConfig::Sled) {
        tracing::warn!(
            "--next-root-key-file only matters with several nodes on one database; a single node rotates with the new key itself"
        );
        return Ok(());
    }
    tracing::info!(root_version = next.version(), "holding the next root key: adopted once a rotation to it commits on any node");
    keyring.set_next(next);
    Ok(())
}

/// Builds and binds the server; call [`Application::run`] to serve.
pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Application, SigilError> {
    let (backend, keyring, format) = open_store(&config).await?;
    hold_next_root_key(&config, &keyring)?;
    warn_about_generated_operator_token(&config);
    let listener = TcpListener::bind(config.listen).map_err(|e| startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(startup)?;
    let scheme = if matches!(config.transport, Transport::PlainHttp) { "http" } else { "https" };
    let public_url = match &config.public_url {
        Some(u) => u.clone(),
        None => {
            let host = if addr.ip().is_unspecified() { "localhost".to_owned() } else { addr.ip().to_string() };
            PublicUrl::parse(&format!("{scheme}://{host}:{}", addr.port())).map_err(SigilError::Config)?
        }
    };
    let settings = service_settings(&config, public_url.clone());
    let http = http_resolver(&config)?;
    let sigil = Sigil::new(backend.store(), keyring, clock, settings, http);
    sigil.recover_root_rotation_at_start().await.map_err(|e| SigilError::Store(e.to_string()))?;
    let legacy = sigil.upgrade_legacy_audit_heads(config.upgrade_audit_heads).await.map_err(|e| SigilError::Store(e.to_string()))?;
    if legacy > 0 && !config.upgrade_audit_heads {
        tracing::error!(
            tenants = legacy,
            "audit chain heads in the legacy (unauthenticated) form: these tenants cannot write. Right after upgrading Sigil, \
             start once with --upgrade-audit-heads; if this store was already upgraded, a head was rewritten at rest"
        );
    }
    if let Some(floor) = sigil.open_challenge_lease().await.map_err(|e| SigilError::Store(e.to_string()))? {
        wait_for_floor(floor, sigil.now()).await;
    }
    let resumed = sigil.resume_tenant_deletions().await.map_err(|e| SigilError::Store(e.to_string()))?;
    if resumed > 0 {
        tracing::info!(resumed, "finished interrupted tenant deletions");
    }
    upgrade(&sigil, &config.data, &format).await?;
    sigil.start_missing_cache_generations().await.map_err(|e| SigilError::Store(e.to_string()))?;
    // Interrupted data-key rotations resume in the background while serving.
    let resumer = sigil.clone();
    actix_web::rt::spawn(async move {
        match resumer.resume_data_key_rotations().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tenants = n, "finished interrupted data-key rotations"),
            Err(e) => tracing::error!(error = %e, "resuming data-key rotations failed"),
        }
    });
    // Housekeeping: forget one-time challenges once their proofs have expired, write down
    // when tokens were last used, and rotate keys older than their tenant's policy
    // (conditional, so safe in several processes).
    // Several nodes on one store: drop cached entries as soon as the store says another
    // node changed them (an optimisation; requests confirm generations anyway).
    let notices = sigil.clone();
    actix_web::rt::spawn(async move { notices.follow_generation_notices().await });
    let housekeeping = sigil.clone();
    let interval = std::time::Duration::from_secs(config.rotation_interval);
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(interval).await;
            housekeeping.prune_guardrails();
            // Several nodes: another node's root rotation to this node's next key is
            // adopted here at the latest (requests that need it adopt it at once).
            if let Err(e) = housekeeping.adopt_next_root().await {
                tracing::warn!(error = %e, "checking for a root-key rotation failed");
            }
            if let Err(e) = housekeeping.record_token_use().await {
                tracing::warn!(error = %e, "recording token use failed");
            }
            if let Err(e) = housekeeping.purge_expired_challenges(housekeeping.now()).await {
                tracing::warn!(error = %e, "purging expired challenges failed");
            }
            match housekeeping.purge_old_approvals().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "old approval records purged"),
                Err(e) => tracing::warn!(error = %e, "purging old approval records failed"),
            }
            if let Err(e) = housekeeping.purge_auth_counters().await {
                tracing::warn!(error = %e, "purging authentication-failure counts failed");
            }
            if let Err(e) = housekeeping.checkpoint_all().await {
                tracing::warn!(error = %e, "audit checkpoints failed");
            }
            match housekeeping.run_scheduled_rotation().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rotated = n, "scheduled key rotation"),
                Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed"),
            }
            // Data keys past their seal threshold (AES-GCM's 2^32 random nonces) roll over.
            if let Err(e) = housekeeping.rotate_worn_data_keys().await {
                tracing::warn!(error = %e, "rotating data keys by use failed");
            }
        }
    });
    // One recorder per process; a second build in the same process (tests) reuses none.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        .map_err(startup)?
        .install_recorder()
        .map_err(|e| startup(format!("cannot install the metrics recorder: {e}")))?;
    let prometheus = web::Data::new(prometheus);
    let data = web::Data::from(sigil.clone());

    let body_limit = config.body_limit;
    // Several nodes: no request retries store conflicts for longer than twice the bound
    // on one store operation (then it answers 503); one node has only the attempt bounds.
    let deadline = match &config.store {
        StoreConfig::Postgres(o) => Some(o.timeout * REQUEST_DEADLINE_FACTOR),
        StoreConfig::Sled => None,
    };
    let proxies = web::Data::new(http::client::TrustedProxies::new(config.trusted_proxies.clone()));
    let openapi = http::openapi::ApiDoc::openapi();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(prometheus.clone())
            .app_data(proxies.clone())
            .app_data(web::Data::new(http::middleware::BodyLimit(body_limit)))
            .app_data(web::Data::new(http::middleware::RequestDeadline(deadline)))
            .app_data(web::JsonConfig::default().limit(body_limit).error_handler(http::problem::json_error))
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::QueryConfig::default().error_handler(http::problem::query_error))
            .app_data(web::PathConfig::default().error_handler(http::problem::path_error))
            .configure(http::configure)
            .configure(http::mcp::configure)
            .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .route("/docs", web::get().to(http::system::docs_redirect))
            .route("/metrics", web::get().to(http::system::metrics))
            .default_service(web::to(http::not_found))
            .wrap(actix_web::middleware::from_fn(http::middleware::edge))
    })
    .workers(config.workers)
    .shutdown_timeout(10);
    let server = match &config.transport {
        Transport::PlainHttp => server.listen(listener),
        Transport::Tls { cert, key } => server.listen_rustls_0_23(listener, rustls_config(cert, key)?),
        Transport::DevTls => {
            let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let h = public_url.base().split("://").nth(1).unwrap_or_default();
            let h = h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h).to_owned();
            for extra in [h, addr.ip().to_string()] {
                if !hosts.contains(&extra) {
                    hosts.push(extra);
                }
            }
            let (cert, key) = dev_tls(&config.data, &hosts)?;
            server.listen_rustls_0_23(listener, rustls_config(&cert, &key)?)
        }
    }
    .map_err(|e| startup(format!("cannot serve on {addr}: {e}")))?
    .run();
    Ok(Application { server, addr, base_url: public_url.base().to_owned(), sigil })
}

/// The service over a stopped data directory, for the offline commands (sled refuses a
/// store another process has open). An interrupted root-key rotation is settled first.
async fn offline_service(config: &Config) -> Result<(Backend, Arc<Sigil>), SigilError> {
    let (store, keyring, format) = open_store(config).await?;
    let public_url = PublicUrl::parse("https://offline.invalid").map_err(SigilError::Config)?;
    let settings = service_settings(config, public_url);
    let http = http_resolver(config)?;
    let sigil = Sigil::new(store.store(), keyring, Arc::new(SystemClock), settings, http);
    sigil.recover_root_rotation_at_start().await.map_err(|e| SigilError::Store(e.to_string()))?;
    // An older directory is upgraded before an offline command writes to it (its
    // key-check file is rewritten in the current format by a root rotation, for one).
    sigil.resume_tenant_deletions().await.map_err(|e| SigilError::Store(e.to_string()))?;
    upgrade(&sigil, &config.data, &format).await?;
    Ok((store, sigil))
}

/// The operator, for an offline command: whoever can run it holds the root key.
fn offline_operator() -> crate::service::Caller {
    crate::service::Caller::Operator { token: crate::ids::TokenId::random() }
}

/// `sigil rotate-root-key`: re-wraps every tenant data key under a new root key while the
/// server is stopped. `config` carries the current root key options and the data dir.
pub async fn rotate_root_key_offline(config: Config, new_key_file: &Path) -> Result<u32, SigilError> {
    // Checked before the store is opened: a bad key file touches nothing.
    datadir::read_root_key_file(new_key_file).map_err(SigilError::Config)?;
    let (store, sigil) = offline_service(&config).await?;
    let v = sigil.rotate_root_key(&offline_operator(), new_key_file).await.map_err(|e| SigilError::Store(e.to_string()))?;
    drop(sigil);
    store.flush_now()?;
    Ok(v)
}

/// What `sigil operator-token` does.
#[derive(Debug)]
pub enum OperatorTokenCommand {
    /// Replace every operator token with a new one, written to this file (mode 0600).
    Rotate { out: PathBuf },
    /// Revoke every operator token.
    Revoke,
}

/// `sigil operator-token rotate|revoke` on a stopped data directory (the recovery when the
/// operator token is lost, leaked or revoked: whoever holds the root key may run it).
/// Returns what to tell the user.
pub async fn operator_token_offline(config: Config, command: OperatorTokenCommand) -> Result<String, SigilError> {
    if matches!(config.store, StoreConfig::Sled) && datadir::read_key_check(&config.data)?.is_none() {
        return Err(SigilError::Config(format!("{} holds no Sigil store", config.data.display())));
    }
    let (store, sigil) = offline_service(&config).await?;
    let said = match command {
        OperatorTokenCommand::Rotate { out } => {
            let issued = sigil.rotate_operator_token(&offline_operator()).await.map_err(|e| SigilError::Store(e.to_string()))?;
            // Committed before it is written: if the write fails, running the command again
            // (it needs no token) issues another.
            write_private_file(&out, issued.token.reveal_once().as_bytes())
                .map_err(|e| SigilError::Startup(format!("the operator token was rotated but not written ({e}); run the command again")))?;
            format!(
                "operator token rotated: {} earlier token(s) revoked; the new one (id {}) is in {} (mode 0600)",
                issued.revoked,
                issued.id,
                out.display()
            )
        }
        OperatorTokenCommand::Revoke => {
            let n = sigil.revoke_operator_tokens(&offline_operator()).await.map_err(|e| SigilError::Store(e.to_string()))?;
            format!("{n} operator token(s) revoked; `sigil operator-token rotate` issues a new one")
        }
    };
    drop(sigil);
    store.flush_now()?;
    Ok(said)
}

/// Where `sigil restore` writes.
pub enum RestoreTarget {
    /// An empty data directory (sled).
    Sled(PathBuf),
    /// An empty PostgreSQL database.
    Postgres(crate::store::PgOptions),
}

/// `sigil restore`: rebuilds a store from a backup file (into an empty data directory or
/// database; start the server with the root key the backup was made under). With no file
/// and a database, marks a database `pg_restore` just rebuilt as restored (the challenge
/// floor; see `service::verification`). Returns the number of records restored.
pub async fn restore(target: RestoreTarget, backup_file: Option<&Path>) -> Result<usize, SigilError> {
    let decoded = match backup_file {
        Some(f) => {
            let bytes = datadir::read_file(f)?;
            Some(crate::store::backup::decode(&bytes).map_err(SigilError::Config)?)
        }
        None => None,
    };
    match target {
        RestoreTarget::Sled(data) => {
            let (keycheck, entries) = decoded.ok_or_else(|| SigilError::Config("give the backup file (--in)".into()))?;
            if datadir::holds_store(&data) {
                return Err(SigilError::Config(format!("{} already holds a store; restore into an empty directory", data.display())));
            }
            ensure_private_dir(&data)?;
            let store = SledStore::open(&data.join("store")).map_err(store_err)?;
            let n = write_restored(&store, &entries).await?;
            store.flush_now().map_err(store_err)?;
            drop(store);
            // Written last, like at initialization: without it the directory is not a store.
            write_private_file(&data.join(KEYCHECK_FILE), &keycheck)?;
            Ok(n)
        }
        RestoreTarget::Postgres(options) => {
            let store = PgStore::open(&options).await.map_err(store_err)?;
            let holds = store.read_key_check().await.map_err(store_err)?.is_some() || !store.is_empty().await.map_err(store_err)?;
            match decoded {
                Some((keycheck, entries)) => {
                    if holds {
                        return Err(SigilError::Config("the database already holds a store; restore into an empty database".into()));
                    }
                    let n = write_restored(&store, &entries).await?;
                    store.write_key_check(keycheck).await.map_err(store_err)?;
                    Ok(n)
                }
                None => {
                    if store.read_key_check().await.map_err(store_err)?.is_none() {
                        return Err(SigilError::Config("the database holds no Sigil store (no key check)".into()));
                    }
                    let lease = store.get(keys::meta::CHALLENGE_LEASE).await.map_err(store_err)?;
                    let mut txn = Txn::new();
                    txn.put(
                        keys::meta::CHALLENGE_LEASE.to_vec(),
                        crate::service::restored_lease_record(lease.as_deref(), jiff::Timestamp::now()),
                    );
                    store.commit(txn).await.map_err(store_err)?;
                    Ok(0)
                }
            }
        }
    }
}

/// Writes a backup's records and sets the challenge floor to now.
async fn write_restored(store: &dyn Store, entries: &[crate::store::Entry]) -> Result<usize, SigilError> {
    let lease = entries.iter().find(|(k, _)| k.as_slice() == keys::meta::CHALLENGE_LEASE).map(|(_, v)| v.as_slice());
    let lease = crate::service::restored_lease_record(lease, jiff::Timestamp::now());
    for chunk in entries.chunks(1000) {
        let mut txn = Txn::new();
        for (k, v) in chunk {
            txn.put(k.clone(), v.clone());
        }
        store.commit(txn).await.map_err(store_err)?;
    }
    let mut txn = Txn::new();
    txn.put(keys::meta::CHALLENGE_LEASE.to_vec(), lease);
    store.commit(txn).await.map_err(store_err)?;
    Ok(entries.len())
}

/// The clock `sigil serve` runs on: the system clock. In debug builds only, a test may
/// set it instead (`SIGIL_TEST_CLOCK_FILE`, see `config::TestClockSource`); release builds
/// have no such path.
#[cfg_attr(not(debug_assertions), allow(clippy::unnecessary_wraps, unused_variables))]
fn server_clock(config: &Config) -> Result<Arc<dyn Clock>, SigilError> {
    #[cfg(debug_assertions)]
    if let Some(file) = config.test_clock.clone() {
        let path = file.path().display().to_string();
        let clock = crate::clock::AdjustableClock::new(move || file.read())
            .ok_or_else(|| SigilError::Config(format!("{}: {path} holds no RFC 3339 time", crate::config::TestClockSource::VAR)))?;
        tracing::warn!(file = %path, "TEST CLOCK: this debug build takes the time from a file, not from the system clock");
        return Ok(Arc::new(clock));
    }
    Ok(Arc::new(SystemClock))
}

/// Default wiring for `sigil serve`.
pub async fn serve(config: Config) -> Result<(), SigilError> {
    let clock = server_clock(&config)?;
    let app = build(config, clock).await?;
    // Tests and scripts wait for this exact line on stdout.
    println!("sigil listening on {}", app.base_url());
    tracing::info!(url = %app.base_url(), addr = %app.addr(), "sigil listening");
    let sigil = app.sigil();
    app.run().await?;
    if let Err(e) = sigil.record_token_use().await {
        tracing::warn!(error = %e, "recording token use failed");
    }
    // A clean stop: the next start need not refuse anything (see `service::verification`).
    sigil.close_challenge_lease().await.map_err(|e| SigilError::Store(e.to_string()))
}
