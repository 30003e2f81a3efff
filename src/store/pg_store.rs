//! The PostgreSQL backend (`--store postgres://…`): several Sigil nodes share one database.
//!
//! Owns the schema (`sigil_kv`: the same keys and values sled holds, byte for byte;
//! `sigil_keycheck`: the key-check record, which on this backend lives in the database so
//! that every node proves its root key against the same authority; `sigil_schema`: applied
//! migrations), its migrations (embedded, applied at open under a session advisory lock so
//! nodes starting together do not race), the connection pool, and the mapping of [`Txn`]
//! onto PostgreSQL transactions. Must never: hold a key or a secret (the store sees only
//! sealed blobs, hashes and counters), put SQL, parameters or server messages into what a
//! client sees (errors become `StoreError::Backend`, a 503 whose detail is only logged), or
//! wait on the database without a bound (every operation runs under [`PgOptions::timeout`]).
//!
//! **Transactions.** A [`Txn`] runs as one `SERIALIZABLE` transaction: its checks are one
//! `SELECT … WHERE k = ANY(…)`, its writes one upsert and one delete. Serializable snapshot
//! isolation takes predicate locks for what the checks read, *including keys that do not
//! exist yet* (the index gap), so two transactions that both find `Absent(k)` and both
//! write `k` cannot both commit; with READ COMMITTED they could. A serialization failure
//! (40001, or a deadlock 40P01) is not a failed check: the transaction is run again from
//! the start, re-evaluating its checks, until it commits, a check fails (`Conflict`) or the
//! operation's time runs out. Chosen over advisory locks on the checked keys because those
//! would also have to cover every key written without a check (a plain put racing a
//! check), which makes large transactions (a root-key rotation rewraps every data key) take
//! thousands of locks; SSI needs no lock table sized by transaction.
//!
//! **Durability.** Every session runs with `synchronous_commit = on`, so `COMMIT` returns
//! once the WAL is flushed: [`Store::apply`] is already durable and [`Store::sync`] has
//! nothing to wait for. PostgreSQL has no cheaper journal to offer, so `append` and
//! `insert_new_pending` are transactions too.
//!
//! **Runtime.** The pool's connections are driven by tasks on a small runtime this store
//! owns, not on the caller's: a connection spawned on a request's runtime would die with it
//! (tests run callers on short-lived runtimes), and the synchronous `export`/`size_on_disk`
//! can wait for this runtime from any thread.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::IsolationLevel;
use tokio_postgres::error::SqlState;

use super::{Check, Entry, Op, Store, StoreError, Txn};

/// How to reach the database and how long to wait for it.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db?sslmode=…` (libpq URL syntax).
    pub url: String,
    /// Overrides the URL's password (`SIGIL_STORE_PASSWORD[_FILE]`), so it need not be
    /// in a flag or a process listing.
    pub password: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Connections per node.
    pub pool_size: usize,
    /// Bound on each operation: waiting for a connection, connecting, and every statement
    /// (also set server-side as `statement_timeout`/`lock_timeout`).
    pub timeout: Duration,
    /// Extra PEM CA certificates to trust for the database's TLS certificate.
    pub ca_pem: Option<Vec<u8>>,
}

impl PgOptions {
    /// Options with the defaults (pool of 16, 5 s).
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), password: None, pool_size: 16, timeout: Duration::from_secs(5), ca_pem: None }
    }
}

impl std::fmt::Debug for PgOptions {
    /// The URL may carry a password: neither it nor the password is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions").field("pool_size", &self.pool_size).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Session advisory lock held while migrating (`SIGIL` in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x5349_4749_4c00_0001;
/// Session advisory lock a node holds while it initializes or upgrades the store.
const STARTUP_LOCK: i64 = 0x5349_4749_4c00_0002;

/// Session advisory lock a node holds while it rotates the root key, and takes (without
/// waiting) before it settles an interrupted rotation at its start.
const ROOT_ROTATION_LOCK: i64 = 0x5349_4749_4c00_0003;

/// Embedded migrations, applied in order, each once, each in its own transaction.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE sigil_kv (k bytea PRIMARY KEY, v bytea NOT NULL);
     CREATE TABLE sigil_keycheck (id smallint PRIMARY KEY CHECK (id = 1), body bytea NOT NULL);",
)];

/// PostgreSQL-backed [`Store`].
pub struct PgStore {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    timeout: Duration,
    /// Cache-generation notices from every node (`LISTEN`), see [`Store::generation_notices`].
    notices: tokio::sync::broadcast::Sender<Vec<u8>>,
}

/// The channel cache-generation changes are announced on (payload: the key, in hex).
const NOTICE_CHANNEL: &str = "sigil_generations";

/// Follows [`NOTICE_CHANNEL`] on a connection of its own, forwarding each notice to `tx`
/// (to whoever subscribed), reconnecting after a second when the connection ends. A notice
/// lost meanwhile costs nothing: nodes confirm generations by a read anyway.
async fn listen(cfg: tokio_postgres::Config, tls: tokio_postgres_rustls::MakeRustlsConnect, tx: tokio::sync::broadcast::Sender<Vec<u8>>) {
    use futures_util::StreamExt;
    loop {
        if let Ok((client, mut conn)) = cfg.connect(tls.clone()).await {
            let (mtx, mut mrx) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                while let Some(Ok(m)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = m {
                        let _ = mtx.send(n.payload().to_owned());
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {NOTICE_CHANNEL}")).await.is_ok() {
                while let Some(payload) = mrx.recv().await {
                    if let Ok(key) = hex::decode(payload) {
                        let _ = tx.send(key);
                    }
                }
            }
            drop(client);
            driver.abort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn be(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("postgres: {msg}"))
}

/// No connection from the pool: a wait or connect timeout, or the database's refusal.
fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        e => be(e),
    }
}

/// A driver error with the server's message and SQLSTATE, which its `Display` leaves out
/// (logged by the edge, never shown to a client).
fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => be(format!("{} (SQLSTATE {})", db.message(), db.code().code())),
        None => be(e),
    }
}

/// Whether running the transaction again can succeed where this run failed.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// The first key after every key that starts with `prefix`; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, StoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert.map_err(|e| be(format!("bad store CA certificate: {e}")))?).map_err(be)?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(be)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What a transaction leaves: keys to upsert with their values, keys to delete.
struct Writes {
    put_k: Vec<Vec<u8>>,
    put_v: Vec<Vec<u8>>,
    del: Vec<Vec<u8>>,
}

/// The final state of each key a transaction writes (the last op wins: one statement may
/// not touch a row twice), split into upserts and deletes.
fn final_writes(ops: Vec<Op>) -> Writes {
    let mut last: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = std::collections::BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => last.insert(k, Some(v)),
            Op::Delete(k) => last.insert(k, None),
        };
    }
    let (mut put_k, mut put_v, mut del) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => {
                put_k.push(k);
                put_v.push(v);
            }
            None => del.push(k),
        }
    }
    Writes { put_k, put_v, del }
}

/// One run of `txn` in a serializable transaction. `Ok(false)`: a check failed.
async fn try_commit(pool: &Pool, txn: &Txn, w: &Writes) -> Result<bool, RunError> {
    let mut client = pool.get().await.map_err(RunError::Pool)?;
    let tx = client.build_transaction().isolation_level(IsolationLevel::Serializable).start().await?;
    if !txn.checks.is_empty() {
        let keys: Vec<&[u8]> = txn
            .checks
            .iter()
            .map(|c| match c {
                Check::Absent(k) | Check::Equals(k, _) => k.as_slice(),
            })
            .collect();
        let stmt = tx.prepare_cached("SELECT k, v FROM sigil_kv WHERE k = ANY($1)").await?;
        let rows = tx.query(&stmt, &[&keys]).await?;
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let holds = txn.checks.iter().all(|c| match c {
            Check::Absent(k) => !found.contains_key(k),
            Check::Equals(k, v) => found.get(k) == Some(v),
        });
        if !holds {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    if !w.put_k.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO sigil_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            )
            .await?;
        tx.execute(&stmt, &[&w.put_k, &w.put_v]).await?;
    }
    if !w.del.is_empty() {
        let stmt = tx.prepare_cached("DELETE FROM sigil_kv WHERE k = ANY($1)").await?;
        tx.execute(&stmt, &[&w.del]).await?;
    }
    // Cache generations this transaction moves are announced to every node at its commit
    // (never if it rolls back); rare writes, so one statement each is cheap.
    for k in w.put_k.iter().filter(|k| k.starts_with(super::keys::CACHE_GENERATION_PREFIX)) {
        tx.execute("SELECT pg_notify($1, $2)", &[&NOTICE_CHANNEL, &hex::encode(k)]).await?;
    }
    // The durable point: COMMIT returns once the WAL is flushed (synchronous_commit = on).
    // Reported under sled's flush metrics, so dashboards read the same on both backends;
    // PostgreSQL groups concurrent WAL flushes itself, so each commit counts as one.
    let started = std::time::Instant::now();
    tx.commit().await?;
    metrics::histogram!("sigil_store_flush_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("sigil_store_flush_batch_size").record(1.0);
    Ok(true)
}

/// Why one run of a transaction failed.
enum RunError {
    /// The database's own error (retryable or not, see [`is_retryable`]).
    Pg(tokio_postgres::Error),
    /// No connection: a wait or connect timeout, a closed pool.
    Pool(deadpool_postgres::PoolError),
}

impl From<tokio_postgres::Error> for RunError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl PgStore {
    /// Connects, applies the embedded migrations (under a session advisory lock, so nodes
    /// starting together apply each exactly once) and returns the store.
    pub async fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let mut cfg: tokio_postgres::Config = options.url.parse().map_err(|e| be(format!("invalid store URL: {e}")))?;
        if let Some(pw) = &options.password {
            cfg.password(pw.as_slice());
        }
        let ms = options.timeout.as_millis().max(1);
        cfg.connect_timeout(options.timeout);
        // A dead peer (the database host gone, not just the server stopped) is noticed by
        // the kernel within the timeout rather than after minutes of retransmissions.
        cfg.tcp_user_timeout(options.timeout);
        cfg.keepalives(true).keepalives_idle(Duration::from_secs(10));
        cfg.options(format!(
            "-c synchronous_commit=on -c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
            ms.saturating_mul(4)
        ));
        if cfg.get_application_name().is_none() {
            cfg.application_name("sigil");
        }
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(options.ca_pem.as_deref())?);
        let (listen_cfg, listen_tls) = (cfg.clone(), tls.clone());
        let manager = Manager::from_config(cfg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sigil-pg")
            .enable_all()
            .build()
            .map_err(|e| be(format!("cannot start the store runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let pool = {
            // The pool's timers and connection tasks belong to the store's runtime.
            let _enter = handle.enter();
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(options.timeout))
                .create_timeout(Some(options.timeout))
                .recycle_timeout(Some(options.timeout))
                .build()
                .map_err(be)?
        };
        let (notices, _) = tokio::sync::broadcast::channel(1024);
        // Ends with the store's runtime.
        handle.spawn(listen(listen_cfg, listen_tls, notices.clone()));
        let store = Self { pool, runtime: Some(runtime), handle, timeout: options.timeout, notices };
        store.migrate().await?;
        Ok(store)
    }

    /// Runs `f` on the store's runtime, bounded by the operation timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.pool.clone());
        let timeout = self.timeout;
        let task = self.handle.spawn(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(be(format!("no answer within {} ms", timeout.as_millis()))),
            }
        });
        task.await.map_err(|e| be(format!("store task failed: {e}")))?
    }

    /// [`PgStore::run`] for the synchronous trait methods: blocks the calling thread (never
    /// one of the store's own) until the answer is in.
    fn run_blocking<T, F, Fut>(&self, f: F, timeout: Duration) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = f(self.pool.clone());
        self.handle.spawn(async move {
            let r = match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(be(format!("no answer within {} ms", timeout.as_millis()))),
            };
            let _ = tx.send(r);
        });
        rx.recv_timeout(timeout + Duration::from_secs(1)).map_err(|_| be("the store runtime did not answer"))?
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Creating tables may wait for another node's migration: allow more than one
        // statement's time.
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg)?;
            let result = async {
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS sigil_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
                    )
                    .await
                    .map_err(be)?;
                let row = client.query_one("SELECT coalesce(max(version), 0) FROM sigil_schema", &[]).await.map_err(pg)?;
                let have: i32 = row.get(0);
                let newest = MIGRATIONS.last().map_or(0, |m| m.0);
                if have > newest {
                    return Err(be(format!(
                        "the database has schema version {have}; this release knows up to {newest}: run the release that wrote it"
                    )));
                }
                for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
                    client
                        .batch_execute(&format!("BEGIN; {sql} INSERT INTO sigil_schema (version) VALUES ({version}); COMMIT;"))
                        .await
                        .map_err(be)?;
                    tracing::info!(version, "applied store schema migration");
                }
                Ok(())
            }
            .await;
            let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
            if unlocked.is_err() {
                // The session lock dies with the connection: do not hand it back to the pool.
                drop(deadpool_postgres::Object::take(client));
            }
            result
        })
        .await
    }

    /// Holds the startup lock: one node at a time initializes an empty database or
    /// upgrades it. Released by [`StartupLock::release`] (or by closing its connection).
    pub async fn startup_lock(&self) -> Result<StartupLock, StoreError> {
        let client = self
            .run(|pool| async move {
                let client = pool.get().await.map_err(pool_err)?;
                Ok(client)
            })
            .await?;
        // Waiting for another node's initialization may take longer than one statement.
        let handle = self.handle.clone();
        let locked = handle
            .spawn(async move {
                let r = client
                    .batch_execute(&format!("SET statement_timeout = 0; SET lock_timeout = 0; SELECT pg_advisory_lock({STARTUP_LOCK})"))
                    .await;
                (client, r)
            })
            .await
            .map_err(be)?;
        match locked {
            (client, Ok(())) => Ok(StartupLock { client: Some(client), handle, key: STARTUP_LOCK }),
            (client, Err(e)) => {
                drop(deadpool_postgres::Object::take(client));
                Err(pg(e))
            }
        }
    }

    /// Takes session advisory lock `key` if it is free: `None` when another session holds
    /// it. Held on a connection of its own, which leaves the pool with the lock (dropping
    /// the guard closes it, which releases the lock).
    async fn try_session_lock(&self, key: i64) -> Result<Option<StartupLock>, StoreError> {
        let client = self
            .run(|pool| async move {
                let client = pool.get().await.map_err(pool_err)?;
                Ok(client)
            })
            .await?;
        let handle = self.handle.clone();
        let timeout = self.timeout;
        let locked = handle
            .spawn(async move {
                let r = tokio::time::timeout(timeout, client.query_one("SELECT pg_try_advisory_lock($1)", &[&key])).await;
                (client, r)
            })
            .await
            .map_err(be)?;
        match locked {
            (client, Ok(Ok(row))) => {
                let got: bool = row.try_get(0).map_err(pg)?;
                if got { Ok(Some(StartupLock { client: Some(client), handle, key })) } else { Ok(None) }
            }
            (client, Ok(Err(e))) => {
                drop(deadpool_postgres::Object::take(client));
                Err(pg(e))
            }
            (client, Err(_)) => {
                drop(deadpool_postgres::Object::take(client));
                Err(be(format!("no answer within {} ms", timeout.as_millis())))
            }
        }
    }

    /// True when `sigil_kv` holds no row.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client.query_opt("SELECT 1 FROM sigil_kv LIMIT 1", &[]).await.map_err(pg)?;
            Ok(row.is_none())
        })
        .await
    }
}

/// A session advisory lock: the startup lock of [`PgStore::startup_lock`], or the
/// root-rotation lock ([`Store::try_root_rotation_lock`]).
pub struct StartupLock {
    client: Option<deadpool_postgres::Object>,
    handle: tokio::runtime::Handle,
    key: i64,
}

impl StartupLock {
    /// Releases the lock. The connection leaves the pool (it carried a session setting).
    pub async fn release(mut self) {
        if let Some(client) = self.client.take() {
            let key = self.key;
            let _ = self
                .handle
                .spawn(async move {
                    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]).await;
                    drop(deadpool_postgres::Object::take(client));
                })
                .await;
        }
    }
}

impl Drop for StartupLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Closing the connection releases the session lock.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let stmt = client.prepare_cached("SELECT v FROM sigil_kv WHERE k = $1").await.map_err(pg)?;
            let row = client.query_opt(&stmt, &[&key]).await.map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        // Strictly after `after`: the smallest key greater than it is `after` + 0x00.
        let mut from = prefix.to_vec();
        if let Some(a) = after {
            let mut next = a.to_vec();
            next.push(0);
            if next > from {
                from = next;
            }
        }
        let end = prefix_end(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = match &end {
                Some(end) => {
                    let stmt = client
                        .prepare_cached("SELECT k, v FROM sigil_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3")
                        .await
                        .map_err(be)?;
                    client.query(&stmt, &[&from, end, &limit]).await.map_err(pg)?
                }
                None => {
                    let stmt = client.prepare_cached("SELECT k, v FROM sigil_kv WHERE k >= $1 ORDER BY k LIMIT $2").await.map_err(pg)?;
                    client.query(&stmt, &[&from, &limit]).await.map_err(pg)?
                }
            };
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
        if txn.checks.is_empty() && txn.ops.is_empty() {
            return Ok(());
        }
        self.run(|pool| async move {
            let mut txn = txn;
            let writes = final_writes(std::mem::take(&mut txn.ops));
            let mut backoff = Duration::from_millis(1);
            loop {
                match try_commit(&pool, &txn, &writes).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => return Err(StoreError::Conflict),
                    Err(RunError::Pg(e)) if is_retryable(&e) => {
                        // Another transaction touched what this one read: run it again. The
                        // caller's timeout bounds the loop.
                        let jitter = Duration::from_micros(u64::from(rand::random::<u16>() % 1000));
                        tokio::time::sleep(backoff + jitter).await;
                        backoff = (backoff * 2).min(Duration::from_millis(50));
                    }
                    Err(RunError::Pg(e)) => return Err(pg(e)),
                    Err(RunError::Pool(e)) => return Err(pool_err(e)),
                }
            }
        })
        .await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        // Every commit waited for its WAL flush (synchronous_commit = on).
        Ok(())
    }

    async fn commit(&self, txn: Txn) -> Result<(), StoreError> {
        self.apply(txn).await
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.run_blocking(
            |pool| async move {
                let client = pool.get().await.map_err(pool_err)?;
                let row = client
                    .query_one("SELECT pg_total_relation_size('sigil_kv') + pg_total_relation_size('sigil_keycheck')", &[])
                    .await
                    .map_err(be)?;
                let n: i64 = row.get(0);
                Ok(u64::try_from(n).unwrap_or(0))
            },
            self.timeout,
        )
    }

    /// Several nodes write this database at once.
    fn shared(&self) -> bool {
        true
    }

    /// `LISTEN`/`NOTIFY` on [`NOTICE_CHANNEL`]: every node's generation changes.
    fn generation_notices(&self) -> Option<tokio::sync::broadcast::Receiver<Vec<u8>>> {
        Some(self.notices.subscribe())
    }

    fn keeps_key_check(&self) -> bool {
        true
    }

    /// The key-check record (which root key opens this store), `None` for a new database.
    async fn read_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client.query_opt("SELECT body FROM sigil_keycheck WHERE id = 1", &[]).await.map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Replaces the key-check record, durably (the commit point of initialization and of
    /// a root-key rotation, as the key-check file is on sled).
    async fn try_root_rotation_lock(&self) -> Result<Option<crate::store::StoreLock>, StoreError> {
        Ok(self.try_session_lock(ROOT_ROTATION_LOCK).await?.map(crate::store::StoreLock::held))
    }

    async fn write_key_check(&self, body: Vec<u8>) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            client
                .execute(
                    "INSERT INTO sigil_keycheck (id, body) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                    &[&body],
                )
                .await
                .map_err(be)?;
            Ok(())
        })
        .await
    }

    fn export(&self) -> Result<Vec<Entry>, StoreError> {
        self.export_with_key_check().map(|(_, rows)| rows)
    }

    fn export_with_key_check(&self) -> Result<(Option<Vec<u8>>, Vec<Entry>), StoreError> {
        // One snapshot for the whole copy, key check included (a root rotation on another
        // node commits both); a large store takes longer than one request.
        self.run_blocking(
            |pool| async move {
                let mut client = pool.get().await.map_err(pool_err)?;
                let tx =
                    client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(pg)?;
                tx.batch_execute("SET LOCAL statement_timeout = 0").await.map_err(pg)?;
                let check = tx.query_opt("SELECT body FROM sigil_keycheck WHERE id = 1", &[]).await.map_err(pg)?;
                let rows = tx.query("SELECT k, v FROM sigil_kv ORDER BY k", &[]).await.map_err(pg)?;
                tx.commit().await.map_err(pg)?;
                Ok((check.map(|r| r.get(0)), rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
            },
            Duration::from_secs(3600),
        )
    }
}

/// A fresh database for one test on the cluster `SIGIL_TEST_PG_URL` names (an admin URL,
/// `postgres://postgres@127.0.0.1:PORT/postgres`). Under CI the variable must be set: a
/// test that needs PostgreSQL fails there rather than skip; elsewhere it is skipped with a
/// note (`scripts/test` starts a throwaway cluster and sets it).
#[cfg(test)]
pub(crate) async fn test_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("SIGIL_TEST_PG_URL") else {
        assert!(std::env::var_os("CI").is_none(), "SIGIL_TEST_PG_URL is unset under CI: PostgreSQL tests must run there");
        eprintln!("SKIPPED {name}: SIGIL_TEST_PG_URL is unset (scripts/test sets it)");
        return None;
    };
    let db = format!("sigil_{name}_{:016x}", rand::random::<u64>());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(conn);
    // Concurrent CREATE DATABASEs copy template1 one at a time: try again.
    for attempt in 0.. {
        match client.batch_execute(&format!("CREATE DATABASE {db}")).await {
            Ok(()) => break,
            Err(e) if attempt < 50 && e.as_db_error().is_some_and(|d| d.message().contains("being accessed by other users")) => {
                tokio::time::sleep(Duration::from_millis(100 + u64::from(rand::random::<u8>()))).await;
            }
            Err(e) => panic!("cannot create the test database: {e:?}"),
        }
    }
    drop(client);
    let _ = driver.await;
    let base = admin.split('?').next().unwrap_or(&admin);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Some(format!("{base}/{db}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(name: &str) -> Option<PgStore> {
        let url = test_database(name).await?;
        Some(PgStore::open(&PgOptions::new(url)).await.unwrap())
    }

    /// A backup's key check comes from the export's own snapshot: a root rotation that
    /// commits on another node during the copy cannot pair the old wraps with the new key
    /// check. Here: the key check written, then the export, which must carry it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_export_carries_the_key_check_of_its_snapshot() {
        let Some(s) = store("export_keycheck").await else { return };
        s.write_key_check(b"{\"check\":1}".to_vec()).await.unwrap();
        let mut t = Txn::new();
        t.put(b"k".to_vec(), b"v".to_vec());
        s.apply(t).await.unwrap();
        let s = std::sync::Arc::new(s);
        let (check, rows) = tokio::task::spawn_blocking(move || s.export_with_key_check()).await.unwrap().unwrap();
        assert_eq!(check.as_deref(), Some(&b"{\"check\":1}"[..]), "the key check was not read with the export");
        assert!(rows.iter().any(|(k, _)| k.as_slice() == b"k"));
    }

    #[tokio::test]
    async fn postgres_passes_conformance() {
        let Some(s) = store("conformance").await else { return };
        crate::store::conformance::run(&s).await;
    }

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"t/a/"), Some(b"t/a0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    /// Two nodes (two pools) race transactions that each require one key absent and write
    /// the other: the classic write skew. Under serializable isolation at most one of
    /// each pair commits; under READ COMMITTED both often would, since neither row
    /// exists for the other to lock.
    #[tokio::test]
    async fn absent_checks_hold_across_nodes() {
        let Some(url) = test_database("skew").await else { return };
        let a = std::sync::Arc::new(PgStore::open(&PgOptions::new(url.clone())).await.unwrap());
        let b = std::sync::Arc::new(PgStore::open(&PgOptions::new(url)).await.unwrap());
        let mut both = 0;
        for round in 0..60u32 {
            let x = format!("skew/{round}/x").into_bytes();
            let y = format!("skew/{round}/y").into_bytes();
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let race = |s: std::sync::Arc<PgStore>, need: Vec<u8>, write: Vec<u8>, barrier: std::sync::Arc<tokio::sync::Barrier>| async move {
                let mut t = Txn::new();
                t.require_absent(need).put(write, b"1".to_vec());
                barrier.wait().await;
                s.commit(t).await
            };
            let (ra, rb) = tokio::join!(
                tokio::spawn(race(a.clone(), x.clone(), y.clone(), barrier.clone())),
                tokio::spawn(race(b.clone(), y.clone(), x.clone(), barrier))
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            for r in [&ra, &rb] {
                assert!(matches!(r, Ok(()) | Err(StoreError::Conflict)), "{r:?}");
            }
            let present = usize::from(a.get(&x).await.unwrap().is_some()) + usize::from(a.get(&y).await.unwrap().is_some());
            assert!(present >= 1, "round {round}: one of the two must commit");
            if present == 2 {
                both += 1;
            }
        }
        assert_eq!(both, 0, "in {both} of 60 rounds both transactions committed: an Absent check did not hold");
    }

    /// Four nodes claim the same one-time keys at once: exactly one claim of each wins.
    #[tokio::test]
    async fn insert_new_is_once_across_nodes() {
        let Some(url) = test_database("claims").await else { return };
        let mut nodes = Vec::new();
        for _ in 0..4 {
            nodes.push(std::sync::Arc::new(PgStore::open(&PgOptions::new(url.clone())).await.unwrap()));
        }
        for round in 0..30u32 {
            let key = format!("once/{round}").into_bytes();
            let tasks: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let (n, key) = (n.clone(), key.clone());
                    tokio::spawn(async move { n.insert_new(key, vec![u8::try_from(i).unwrap()]).await.unwrap() })
                })
                .collect();
            let mut wins = 0;
            for t in tasks {
                wins += usize::from(t.await.unwrap());
            }
            assert_eq!(wins, 1, "round {round}: {wins} claims won");
        }
    }

    /// A commit that moves a cache generation is announced to every node listening on
    /// the database (`Store::generation_notices`); other commits are not.
    #[tokio::test]
    async fn generation_changes_reach_every_node() {
        let Some(url) = test_database("generation_notices").await else { return };
        let (a, b) = (PgStore::open(&PgOptions::new(url.clone())).await.unwrap(), PgStore::open(&PgOptions::new(url)).await.unwrap());
        let mut rx = b.generation_notices().unwrap();
        // The listener connects in the background: announce until it hears.
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let mut t = Txn::new();
                t.put(super::super::keys::cache_generation("acme"), rand::random::<[u8; 16]>().to_vec())
                    .put(b"x/1".to_vec(), b"1".to_vec());
                a.commit(t).await.unwrap();
                if let Ok(Ok(k)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                    return k;
                }
            }
        })
        .await
        .expect("no notice reached the other node within 10 s");
        assert_eq!(heard, super::super::keys::cache_generation("acme"));
        // A write that moves no generation announces nothing.
        let mut t = Txn::new();
        t.put(b"x/2".to_vec(), b"2".to_vec());
        a.commit(t).await.unwrap();
        while let Ok(Ok(k)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            assert_eq!(k, super::super::keys::cache_generation("acme"), "a notice for a write that moved no generation");
        }
    }

    /// The store reports a stopped or unreachable database as `Backend` within its
    /// timeout, and serves again once it is reachable, with no reopening.
    #[tokio::test]
    async fn an_unreachable_database_fails_fast() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut o = PgOptions::new(format!("postgres://postgres@127.0.0.1:{port}/none"));
        o.timeout = Duration::from_millis(500);
        let started = std::time::Instant::now();
        assert!(PgStore::open(&o).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    }
}
