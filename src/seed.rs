//! `sigil seed`: the fast seeding path for benchmarks and capacity tests (server stopped).
//!
//! It creates one tenant and N agents, each with its identity credential and one
//! delegated-authority credential, through the same service calls the HTTP API uses, so
//! the store holds exactly what N `POST …/agents` + `POST …/delegations` would leave: sealed
//! records, status-list entries and a hash-chained audit entry per change. The one
//! difference is durability: each commit is applied without its own fsync and the whole
//! run is flushed once at the end. A crash mid-seed leaves a consistent prefix (sled
//! applies transactions atomically), not an acknowledged write lost, because nothing is
//! acknowledged to anyone until the final flush.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::SigilError;
use crate::ids::TokenId;
use crate::policy::{AmountLimit, Authority, Limits, Principal, PrincipalKind};
use crate::service::agents::NewAgent;
use crate::service::credentials::NewDelegation;
use crate::service::guardrails::GuardrailSettings;
use crate::service::{Caller, Role, Sigil};
use crate::store::{Entry, SledStore, Store, StoreError, Txn};

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Tenant id to create (must not exist yet).
    pub tenant: String,
    /// Agents to create.
    pub agents: u64,
    /// How many agents, spread evenly over the run, get their access token written out.
    pub hot: u64,
    /// Where the tenant admin token and the hot agents' tokens go (mode 0600).
    pub tokens_out: std::path::PathBuf,
}

/// What `sigil seed` wrote.
#[derive(Debug, Serialize)]
pub struct SeedReport {
    pub tenant: String,
    pub agents: u64,
    pub seconds: f64,
    pub store_bytes: u64,
}

#[derive(Serialize)]
struct TokensFile<'a> {
    tenant: &'a str,
    admin_token: String,
    agents: Vec<HotAgent>,
}

#[derive(Serialize)]
struct HotAgent {
    id: String,
    token: String,
}

/// Applies without waiting for durability; the seeder flushes once at the end.
struct Deferred(Arc<dyn Store>);

#[async_trait]
impl Store for Deferred {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).await
    }
    async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.0.scan(prefix, after, limit).await
    }
    async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
        self.0.apply(txn).await
    }
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.0.size_on_disk()
    }
    fn export(&self) -> Result<Vec<Entry>, StoreError> {
        self.0.export()
    }
    fn keeps_key_check(&self) -> bool {
        self.0.keeps_key_check()
    }
    // Seeding a database other nodes serve from: their coherence paths must run here too.
    fn shared(&self) -> bool {
        self.0.shared()
    }
    fn export_with_key_check(&self) -> Result<(Option<Vec<u8>>, Vec<Entry>), StoreError> {
        self.0.export_with_key_check()
    }
    async fn read_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.read_key_check().await
    }
    async fn write_key_check(&self, body: Vec<u8>) -> Result<(), StoreError> {
        self.0.write_key_check(body).await
    }
}

fn service_error(e: impl std::fmt::Display) -> SigilError {
    SigilError::Store(e.to_string())
}

/// The delegation every seeded agent holds: refunds on orders up to 500.00 EUR for a year.
fn delegation(now: jiff::Timestamp) -> Result<NewDelegation, SigilError> {
    let authority = Authority::new(
        &["refunds:create".into()],
        &["orders/*".into()],
        Limits { amount: Some(AmountLimit::parse("500.00", "EUR", None).map_err(service_error)?) },
        None,
    )
    .map_err(service_error)?;
    Ok(NewDelegation {
        principal: Principal::new("role:refund-desk".into(), PrincipalKind::Role, Some("Refund desk".into())).map_err(service_error)?,
        authority,
        valid_from: None,
        valid_until: now.checked_add(jiff::SignedDuration::from_hours(24 * 365)).map_err(service_error)?,
    })
}

/// Runs the seed against the data directory `config` names (the server must be stopped:
/// sled takes an exclusive lock, so a running server makes this fail at open).
pub async fn seed(config: &Config, opts: &SeedOptions) -> Result<SeedReport, SigilError> {
    let public_url = config
        .public_url
        .clone()
        .ok_or_else(|| SigilError::Config("seed needs --public-url: DIDs embed it, so it must be the URL the server will use".into()))?;
    let started = std::time::Instant::now();
    let (store, keyring, format) = crate::startup::open_store(config).await?;
    if format.format < crate::datadir::FORMAT {
        // Seeding defers durability to its end; an upgrade must not.
        return Err(SigilError::Store(
            "this data directory was written by an older release: start `sigil serve` once to upgrade it".into(),
        ));
    }
    let settings = crate::startup::service_settings(config, public_url);
    let http = crate::service::resolver::HttpResolver::public().map_err(service_error)?;
    let deferred: Arc<dyn Store> = Arc::new(Deferred(store.store()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sigil = Sigil::new(deferred, keyring, clock.clone(), settings, http);
    let op = Caller::Operator { token: TokenId::random() };
    let created = sigil.create_tenant(&op, Some(&opts.tenant), "Seeded tenant").await.map_err(service_error)?;
    let tenant = created.id.clone();
    let admin = Caller::Tenant { tenant: tenant.clone(), role: Role::Admin, token: created.admin_token_id.clone() };
    // Benchmarks measure throughput, not the per-agent rate limit.
    let relaxed = GuardrailSettings { rate_per_second: 100_000, burst: 100_000, denial_threshold: 0, ..Default::default() };
    sigil.set_guardrails(&admin, &tenant, relaxed).await.map_err(service_error)?;
    let every = (opts.agents / opts.hot.max(1)).max(1);
    let mut hot = Vec::new();
    let d = delegation(clock.now())?;
    for i in 0..opts.agents {
        let name = format!("seed-agent-{i}");
        let a = sigil
            .create_agent(&admin, &tenant, NewAgent { name, software: Some("seed/1".into()), ..Default::default() })
            .await
            .map_err(service_error)?;
        sigil.issue_delegation(&admin, &tenant, &a.id, d.clone()).await.map_err(service_error)?;
        if i % every == 0 && (hot.len() as u64) < opts.hot {
            hot.push(HotAgent { id: a.id.to_string(), token: a.access_token.reveal_once() });
        }
        if (i + 1) % 100_000 == 0 {
            tracing::info!(agents = i + 1, seconds = started.elapsed().as_secs_f64(), "seeding");
        }
    }
    store.flush_now()?;
    let file = TokensFile { tenant: tenant.as_str(), admin_token: created.admin_token.reveal_once(), agents: hot };
    let bytes = zeroize::Zeroizing::new(serde_json::to_vec(&file).map_err(service_error)?);
    write_tokens(&opts.tokens_out, &bytes)?;
    // sled 0.34 writes its recovery snapshot only when a store is opened, so the first
    // start after a seed would replay the whole seed from the log (24 s for 1M agents).
    // Closing and reopening once here leaves the store as a restarted server would.
    drop(sigil);
    let store: Arc<dyn Store> = match store {
        crate::startup::Backend::Sled(s) => {
            drop(s);
            Arc::new(SledStore::open(&config.data.join("store")).map_err(service_error)?)
        }
        pg => pg.store(),
    };
    let store_bytes = tokio::task::spawn_blocking(move || store.size_on_disk()).await.map_err(service_error)?.map_err(service_error)?;
    Ok(SeedReport { tenant: tenant.to_string(), agents: opts.agents, seconds: started.elapsed().as_secs_f64(), store_bytes })
}

fn write_tokens(path: &Path, bytes: &[u8]) -> Result<(), SigilError> {
    crate::datadir::replace_private_file(path, bytes)
}
