//! Persistence behind one async [`Store`] trait, so the embedded sled backend and the
//! PostgreSQL backend (`pg_store`, several nodes on one database) are interchangeable.
//!
//! The store sees only what may be plaintext at rest: random ids and slugs in keys, sealed
//! blobs, hashes, counters, timestamps and key versions. It never sees a key or a secret.
//!
//! Transactions are explicit and optimistic: a [`Txn`] carries preconditions (a key must
//! be absent, or hold exactly some bytes) and writes; [`Store::commit`] applies all or
//! nothing and returns only once the writes are durable. The PostgreSQL backend maps this to
//! one `SERIALIZABLE` transaction (checks read, then writes) with `synchronous_commit = on`,
//! run again on a serialization failure (see `pg_store`).

pub mod backup;
mod group_commit;
mod journal;

pub mod keys;
mod pg_store;
mod sled_store;

use async_trait::async_trait;

pub use group_commit::GroupCommit;
#[cfg(test)]
pub(crate) use pg_store::test_database;
pub use pg_store::{PgOptions, PgStore, StartupLock};
pub use sled_store::SledStore;

/// Storage failures. `Conflict` is the only one callers are expected to handle (by
/// re-reading and retrying); the others become a 503/500 at the edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A precondition of the transaction did not hold.
    #[error("transaction conflict")]
    Conflict,
    /// The backend failed (I/O, corruption).
    #[error("storage backend failure: {0}")]
    Backend(String),
}

/// A precondition checked atomically with the writes.
#[derive(Debug, Clone)]
pub enum Check {
    /// The key must not exist.
    Absent(Vec<u8>),
    /// The key must exist and hold exactly these bytes.
    Equals(Vec<u8>, Vec<u8>),
}

/// One write.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or replace.
    Put(Vec<u8>, Vec<u8>),
    /// Remove (no error when absent).
    Delete(Vec<u8>),
}

/// An all-or-nothing unit of writes with its preconditions.
#[derive(Debug, Default, Clone)]
pub struct Txn {
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to be absent at commit.
    pub fn require_absent(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.checks.push(Check::Absent(key.into()));
        self
    }

    /// Requires `key` to hold `value` at commit.
    pub fn require_equals(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.checks.push(Check::Equals(key.into(), value.into()));
        self
    }

    /// Writes `value` at `key`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put(key.into(), value.into()));
        self
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete(key.into()));
        self
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A key/value pair returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The persistence contract every backend implements.
/// A lock a shared store holds for this process until dropped
/// ([`Store::try_root_rotation_lock`]); empty for a store one process owns.
#[derive(Default)]
pub struct StoreLock(Option<Box<dyn std::any::Any + Send + Sync>>);

impl StoreLock {
    /// A lock released when `held` is dropped.
    pub fn held(held: impl std::any::Any + Send + Sync) -> Self {
        Self(Some(Box::new(held)))
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreLock").field(&self.0.is_some()).finish()
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keys starting with `prefix`, in byte order, strictly after `after` when given, at
    /// most `limit` of them.
    async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// Applies `txn` atomically if all its checks hold; visible at once, durable only after
    /// the next [`Store::sync`].
    async fn apply(&self, txn: Txn) -> Result<(), StoreError>;

    /// Returns once everything applied before the call is durable. Concurrent callers
    /// share flushes (group commit).
    async fn sync(&self) -> Result<(), StoreError>;

    /// Applies `txn` and waits until it is durable.
    async fn commit(&self, txn: Txn) -> Result<(), StoreError> {
        self.apply(txn).await?;
        self.sync().await
    }

    /// Writes `txn`, which must carry no checks (the caller orders writers of its keys
    /// itself, as the audit trail does per tenant): visible to reads at once, durable after
    /// the next [`Store::sync_appends`]. Backends may journal these writes, which is much
    /// cheaper than a transaction (sled: see `journal.rs`); by default they are one.
    async fn append(&self, txn: Txn) -> Result<(), StoreError> {
        if !txn.checks.is_empty() {
            return Err(StoreError::Backend("append takes no preconditions".into()));
        }
        self.apply(txn).await
    }

    /// True when [`Store::append_now`] works: the backend can take an append without
    /// suspending the caller. By default false.
    fn can_append_now(&self) -> bool {
        false
    }

    /// [`Store::append`] without suspending the caller, for one that orders its writers
    /// under a synchronous lock held for microseconds (the audit chain). Only when
    /// [`Store::can_append_now`]; by default an error. sled journals the write in memory.
    fn append_now(&self, txn: Txn) -> Result<(), StoreError> {
        let _ = txn;
        Err(StoreError::Backend("this store appends asynchronously only".into()))
    }

    /// Writes `key` = `value` durably unless `key` exists; `Ok(false)` when it does (one-time
    /// challenges). By default a transaction with that precondition; sled journals it.
    async fn insert_new(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, StoreError> {
        let mut t = Txn::new();
        t.require_absent(key.clone()).put(key, value);
        match self.commit(t).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`Store::insert_new`] without the wait: the claim is visible to every later
    /// `insert_new`/`get` at once and durable after the next [`Store::sync_appends`]. For a
    /// caller that makes a lost claim harmless some other way (the challenge lease in
    /// `service::verification`). By default the durable `insert_new`.
    async fn insert_new_pending(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, StoreError> {
        self.insert_new(key, value).await
    }

    /// Returns once every [`Store::append`] made before the call is durable.
    async fn sync_appends(&self) -> Result<(), StoreError> {
        self.sync().await
    }

    /// True when other processes may write this store at the same time (several nodes on
    /// one database). Then nothing a process holds in memory orders writers: the audit
    /// chain is extended by transactions conditional on the head the writer read (never by
    /// [`Store::append`]), one-time claims are made durably, cached entries are confirmed
    /// against the store's cache generations (`service::kernel::coherence`), and security
    /// counters live in the store. False for an embedded store one process owns (sled),
    /// which keeps its cheap in-process paths.
    fn shared(&self) -> bool {
        false
    }

    /// Early notice of cache-generation changes other processes commit (the keys of the
    /// `keys::cache_generation` records written), for a shared store that can push them
    /// (PostgreSQL: `LISTEN`/`NOTIFY`). An optimisation only: a node confirms the
    /// generation before it relies on a cached entry whether or not a notice came. By
    /// default none.
    fn generation_notices(&self) -> Option<tokio::sync::broadcast::Receiver<Vec<u8>>> {
        None
    }

    /// Bytes the backend occupies on disk (for metrics and the scale benchmark).
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// A consistent copy of every key and value, for `sigil backup`.
    fn export(&self) -> Result<Vec<Entry>, StoreError>;

    /// [`Store::export`] with the key-check record read in the same snapshot, when the
    /// backend keeps it ([`Store::keeps_key_check`]; `None` otherwise): a backup whose
    /// key check and wraps always belong to one root key, whichever node rotates it.
    fn export_with_key_check(&self) -> Result<(Option<Vec<u8>>, Vec<Entry>), StoreError> {
        Ok((None, self.export()?))
    }

    /// True when the backend keeps the key-check record (which root key opens the store)
    /// itself: a database several nodes share, so that every node proves its root key
    /// against one authority. Otherwise the data directory's key-check file is it (sled).
    fn keeps_key_check(&self) -> bool {
        false
    }

    /// The key-check record, when [`Store::keeps_key_check`]; `None` before initialization.
    async fn read_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Backend("this store does not keep the key check".into()))
    }

    /// Takes the store-wide root-rotation lock unless another process holds it (`None`
    /// then), until the returned guard is dropped. A root-key rotation holds it from its
    /// first write to its completion; a node's start (or an offline command) settles an
    /// interrupted rotation only while holding it, so that it never discards the wraps
    /// another node is staging. A process that dies releases it. A store one process owns
    /// (sled, whose data directory is locked) needs none: always granted.
    async fn try_root_rotation_lock(&self) -> Result<Option<StoreLock>, StoreError> {
        Ok(Some(StoreLock::default()))
    }

    /// Replaces the key-check record durably, when [`Store::keeps_key_check`].
    async fn write_key_check(&self, body: Vec<u8>) -> Result<(), StoreError> {
        let _ = body;
        Err(StoreError::Backend("this store does not keep the key check".into()))
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One test list that every backend must pass.
    use super::*;

    pub async fn run(store: &dyn Store) {
        // empty reads
        assert!(store.get(b"k/1").await.unwrap().is_none());
        // put + get
        let mut t = Txn::new();
        t.require_absent(b"k/1".to_vec()).put(b"k/1".to_vec(), b"one".to_vec()).put(b"k/2".to_vec(), b"two".to_vec());
        store.commit(t).await.unwrap();
        assert_eq!(store.get(b"k/1").await.unwrap().unwrap(), b"one");
        // failed precondition writes nothing
        let mut t = Txn::new();
        t.require_absent(b"k/1".to_vec()).put(b"k/3".to_vec(), b"three".to_vec());
        assert!(matches!(store.commit(t).await, Err(StoreError::Conflict)));
        assert!(store.get(b"k/3").await.unwrap().is_none());
        // compare-and-set
        let mut t = Txn::new();
        t.require_equals(b"k/2".to_vec(), b"two".to_vec()).put(b"k/2".to_vec(), b"TWO".to_vec());
        store.commit(t).await.unwrap();
        let mut t = Txn::new();
        t.require_equals(b"k/2".to_vec(), b"two".to_vec()).delete(b"k/2".to_vec());
        assert!(matches!(store.commit(t).await, Err(StoreError::Conflict)));
        // scans: prefix, order, cursor, limit
        let mut t = Txn::new();
        for i in 0..5u8 {
            t.put(format!("p/{i}").into_bytes(), vec![i]);
        }
        t.put(b"q/0".to_vec(), b"x".to_vec());
        store.commit(t).await.unwrap();
        let all = store.scan(b"p/", None, 100).await.unwrap();
        assert_eq!(all.len(), 5);
        let page = store.scan(b"p/", Some(b"p/1"), 2).await.unwrap();
        assert_eq!(page.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), vec![b"p/2".to_vec(), b"p/3".to_vec()]);
        // delete
        let mut t = Txn::new();
        t.delete(b"p/0".to_vec());
        store.commit(t).await.unwrap();
        assert_eq!(store.scan(b"p/", None, 100).await.unwrap().len(), 4);
        assert!(store.export().unwrap().len() >= 6);
        // appends: read at once, seen by transactions and scans
        let mut t = Txn::new();
        t.put(b"p/9".to_vec(), b"nine".to_vec()).delete(b"p/1".to_vec());
        store.append(t).await.unwrap();
        store.sync_appends().await.unwrap();
        assert_eq!(store.get(b"p/9").await.unwrap().as_deref(), Some(&b"nine"[..]));
        assert!(store.get(b"p/1").await.unwrap().is_none());
        assert_eq!(store.scan(b"p/", None, 100).await.unwrap().len(), 4);
        let mut t = Txn::new();
        t.require_absent(b"p/9".to_vec()).put(b"p/9".to_vec(), b"x".to_vec());
        assert!(matches!(store.commit(t).await, Err(StoreError::Conflict)));
        // append_now: where the backend offers it, the same as append; never with checks
        if store.can_append_now() {
            let mut t = Txn::new();
            t.put(b"p/8".to_vec(), b"eight".to_vec());
            store.append_now(t).unwrap();
            assert_eq!(store.get(b"p/8").await.unwrap().as_deref(), Some(&b"eight"[..]));
            store.sync_appends().await.unwrap();
            let mut t = Txn::new();
            t.require_absent(b"p/7".to_vec()).put(b"p/7".to_vec(), b"x".to_vec());
            assert!(store.append_now(t).is_err());
            assert!(store.get(b"p/7").await.unwrap().is_none());
            let mut t = Txn::new();
            t.delete(b"p/8".to_vec());
            store.append_now(t).unwrap();
            store.sync_appends().await.unwrap();
        } else {
            assert!(store.append_now(Txn::new()).is_err());
        }
        // insert_new: once only, also against a concurrent claim of the same key
        assert!(store.insert_new(b"once/a".to_vec(), b"1".to_vec()).await.unwrap());
        assert!(!store.insert_new(b"once/a".to_vec(), b"2".to_vec()).await.unwrap());
        assert_eq!(store.get(b"once/a").await.unwrap().as_deref(), Some(&b"1"[..]));
        let claims: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    scope.spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                        rt.block_on(store.insert_new(b"once/b".to_vec(), vec![i])).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(claims.iter().filter(|c| **c).count(), 1, "exactly one claim wins: {claims:?}");
        // a pending claim counts for every later claim, durable or not, and for reads
        assert!(store.insert_new_pending(b"once/c".to_vec(), b"1".to_vec()).await.unwrap());
        assert!(!store.insert_new(b"once/c".to_vec(), b"2".to_vec()).await.unwrap());
        assert!(!store.insert_new_pending(b"once/c".to_vec(), b"3".to_vec()).await.unwrap());
        store.sync_appends().await.unwrap();
        assert_eq!(store.get(b"once/c").await.unwrap().as_deref(), Some(&b"1"[..]));
        concurrent_compare_and_set(store).await;
    }

    /// Four threads race read-then-compare-and-set on a counter, each write also setting a
    /// twin key: no lost update (the count equals the successful writes) and no torn
    /// transaction (the twin, written with the counter and read after it, is never behind).
    async fn concurrent_compare_and_set(store: &dyn Store) {
        let wins = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    rt.block_on(async {
                        for _ in 0..200 {
                            let cur = store.get(b"c/n").await.unwrap();
                            let n = cur.as_deref().map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                            let twin = store.get(b"c/twin").await.unwrap();
                            let twin = twin.as_deref().map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                            assert!(twin >= n, "the twin of {n} was {twin}: a torn transaction was visible");
                            let mut t = Txn::new();
                            match &cur {
                                None => t.require_absent(b"c/n".to_vec()),
                                Some(v) => t.require_equals(b"c/n".to_vec(), v.clone()),
                            };
                            let next = (n + 1).to_be_bytes().to_vec();
                            t.put(b"c/n".to_vec(), next.clone()).put(b"c/twin".to_vec(), next);
                            match store.commit(t).await {
                                Ok(()) => {
                                    wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                }
                                Err(StoreError::Conflict) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    });
                });
            }
        });
        let n = u64::from_be_bytes(store.get(b"c/n").await.unwrap().unwrap().try_into().unwrap());
        let wins = wins.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(n, wins, "lost updates");
        assert_eq!(store.get(b"c/twin").await.unwrap(), store.get(b"c/n").await.unwrap(), "a torn transaction");
        assert!(wins >= 200, "only {wins} of 800 attempts won");
    }
}
