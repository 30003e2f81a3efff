//! The embedded backend: one sled tree, transactions via sled's serializable
//! transactions, durability via group-committed `flush`.

use std::path::Path;

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Check, Entry, GroupCommit, Op, Store, StoreError, Txn};

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    group: GroupCommit,
    /// Writers share it; a snapshot takes it exclusively, so a backup is a point in time.
    gate: std::sync::RwLock<()>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            // Every acknowledged write is flushed by group commit (`Store::sync`); sled's own
            // timer flush would only add flushes that no request waits for.
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .open()
            .map_err(|e| StoreError::Backend(format!("cannot open store at {}: {e}", dir.display())))?;
        let tree = db.open_tree("sigil").map_err(be)?;
        let flusher = db.clone();
        let group = GroupCommit::start(Box::new(move || flusher.flush().map(|_| ()).map_err(|e| e.to_string())))?;
        Ok(Self { db, tree, group, gate: std::sync::RwLock::new(()) })
    }

    /// True when the store holds no data yet.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Flushes synchronously (for shutdown and offline tools).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(be)
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.group.shutdown();
        let _ = self.db.flush();
    }
}

fn be(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl Store for SledStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key).map_err(be)?.map(|v| v.to_vec()))
    }

    async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let iter = match after {
            Some(a) => {
                let mut start = a.to_vec();
                start.push(0); // strictly after `a`
                self.tree.range(start..)
            }
            None => self.tree.range(prefix.to_vec()..),
        };
        for item in iter {
            let (k, v) = item.map_err(be)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.group.durable().await
    }

    async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
        let _gate = self.gate.read().map_err(|_| StoreError::Backend("store gate poisoned".into()))?;
        let res = self.tree.transaction(|tx| {
            for c in &txn.checks {
                let ok = match c {
                    Check::Absent(k) => tx.get(k)?.is_none(),
                    Check::Equals(k, v) => tx.get(k)?.is_some_and(|cur| cur.as_ref() == v.as_slice()),
                };
                if !ok {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for op in &txn.ops {
                match op {
                    Op::Put(k, v) => {
                        tx.insert(k.as_slice(), v.as_slice())?;
                    }
                    Op::Delete(k) => {
                        tx.remove(k.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match res {
            Ok(()) => Ok(()),

            Err(TransactionError::Abort(())) => Err(StoreError::Conflict),
            Err(TransactionError::Storage(e)) => Err(be(e)),
        }
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(be)
    }

    fn export(&self) -> Result<Vec<Entry>, StoreError> {
        // Writers wait while the copy is taken, so it is one consistent point in time.
        let _gate = self.gate.write().map_err(|_| StoreError::Backend("store gate poisoned".into()))?;
        self.tree.iter().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(be)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sled_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        super::super::conformance::run(&s).await;
    }

    #[tokio::test]
    async fn committed_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            let mut t = Txn::new();
            t.put(b"x".to_vec(), b"y".to_vec());
            s.commit(t).await.unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.get(b"x").await.unwrap().unwrap(), b"y");
    }
}
