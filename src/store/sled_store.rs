//! The embedded backend: one sled tree, transactions via sled's serializable
//! transactions, durability via group-committed `flush`; appends (the audit trail) go
//! through a write-ahead journal instead (`journal.rs`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::journal::{APPLIED_KEY, Journal};
use super::{Check, Entry, GroupCommit, Op, Store, StoreError, Txn};

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    group: GroupCommit,
    /// Writers share it; a snapshot takes it exclusively, so a backup is a point in time.
    gate: std::sync::RwLock<()>,
    journal: Arc<Journal>,
    /// Makes `insert_new`'s check and append one step.
    claims: std::sync::Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, replaying its journal (`dir` + `.journal`).
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
        let journal = Journal::open(&journal_dir(dir), db.clone(), tree.clone())?;
        Ok(Self { db, tree, group, gate: std::sync::RwLock::new(()), journal, claims: std::sync::Mutex::new(()) })
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

/// The journal lives beside sled's own directory, not inside it.
fn journal_dir(dir: &Path) -> std::path::PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".journal");
    dir.with_file_name(name)
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if let Err(e) = self.journal.close() {
            tracing::error!(error = %e, "closing the journal failed; it is replayed at the next start");
        }
        self.group.shutdown();
        let _ = self.db.flush();
    }
}

fn order_poisoned() -> StoreError {
    StoreError::Backend("store lock poisoned".into())
}

fn be(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl Store for SledStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(pending) = self.journal.pending(key)? {
            return Ok(pending);
        }
        Ok(self.tree.get(key).map_err(be)?.map(|v| v.to_vec()))
    }

    async fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        // Scans read the tree alone, so what the journal holds goes there first.
        self.journal.move_all()?;
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

    async fn append(&self, txn: Txn) -> Result<(), StoreError> {
        self.append_now(txn)
    }

    async fn sync_appends(&self) -> Result<(), StoreError> {
        self.journal.durable().await
    }

    fn can_append_now(&self) -> bool {
        true
    }

    fn append_now(&self, txn: Txn) -> Result<(), StoreError> {
        if !txn.checks.is_empty() {
            return Err(StoreError::Backend("append takes no preconditions".into()));
        }
        self.journal.append(txn.ops)
    }

    async fn insert_new(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, StoreError> {
        if !self.insert_new_pending(key, value).await? {
            return Ok(false);
        }
        self.journal.durable().await?;
        Ok(true)
    }

    async fn insert_new_pending(&self, key: Vec<u8>, value: Vec<u8>) -> Result<bool, StoreError> {
        {
            // No transaction may run between the check and the append (`order`), and no
            // other claim either (`claims`).
            let _order = self.journal.order.read().map_err(|_| order_poisoned())?;
            let _claim = self.claims.lock().map_err(|_| order_poisoned())?;
            let present = match self.journal.pending(&key)? {
                Some(v) => v.is_some(),
                None => self.tree.contains_key(&key).map_err(be)?,
            };
            if present {
                return Ok(false);
            }
            self.journal.append_ordered(vec![Op::Put(key, value)])?;
        }
        Ok(true)
    }

    async fn apply(&self, txn: Txn) -> Result<(), StoreError> {
        let _gate = self.gate.read().map_err(|_| StoreError::Backend("store gate poisoned".into()))?;
        // No append may interleave: checks must see every journaled write, and a journaled
        // write must never be moved on top of this transaction's (it would be older).
        let _order = self.journal.order.write().map_err(|_| order_poisoned())?;
        self.journal.move_all()?;
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
        Ok(self.db.size_on_disk().map_err(be)? + self.journal.size_on_disk())
    }

    fn export(&self) -> Result<Vec<Entry>, StoreError> {
        // Writers wait while the copy is taken, so it is one consistent point in time.
        let _gate = self.gate.write().map_err(|_| StoreError::Backend("store gate poisoned".into()))?;
        let _order = self.journal.order.write().map_err(|_| order_poisoned())?;
        self.journal.move_all()?;
        // The applied mark describes this store's journal, not the data: not backed up.
        self.tree
            .iter()
            .filter(|r| r.as_ref().map_or(true, |(k, _)| k.as_ref() != APPLIED_KEY))
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(be))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `d` again after a store on it was dropped. The last handle on sled's tree may
    /// still be in a group-commit or journal worker finishing its round for an instant
    /// (seen on a loaded machine), and sled holds its file lock until then: wait for it,
    /// boundedly, rather than fail on a lock the closed store is about to release.
    async fn reopen(d: &std::path::Path) -> SledStore {
        let mut waited = 0;
        loop {
            match SledStore::open(d) {
                Ok(s) => return s,
                Err(e) if waited < 100 => {
                    let _ = e;
                    waited += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the store did not reopen within 5 s: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn sled_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        super::super::conformance::run(&s).await;
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    fn segment(dir: &Path, first: u64, records: &[(u64, Vec<Op>)]) -> std::path::PathBuf {
        let jd = journal_dir(dir);
        std::fs::create_dir_all(&jd).unwrap();
        let mut buf = Vec::new();
        for (lsn, ops) in records {
            super::super::journal::encode(&mut buf, *lsn, ops);
        }
        let p = jd.join(format!("{first:020}.log"));
        std::fs::write(&p, buf).unwrap();
        p
    }

    fn segments(dir: &Path) -> usize {
        std::fs::read_dir(journal_dir(dir)).unwrap().count()
    }

    #[tokio::test]
    async fn a_failed_journal_write_is_never_acknowledged_and_refuses_later_appends() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        {
            let s = SledStore::open(&d).unwrap();
            let mut t = Txn::new();
            t.put(b"f/1".to_vec(), b"kept".to_vec());
            s.append(t).await.unwrap();
            s.sync_appends().await.unwrap();
            s.journal.break_segment_for_test();
            let mut t = Txn::new();
            t.put(b"f/2".to_vec(), b"lost".to_vec());
            s.append(t).await.unwrap();
            assert!(s.sync_appends().await.is_err(), "a write that did not reach the disk is not acknowledged");
            // Fail closed: once durability is in doubt, nothing more is taken.
            let mut t = Txn::new();
            t.put(b"f/3".to_vec(), b"refused".to_vec());
            assert!(s.append(t).await.is_err());
            assert!(s.sync_appends().await.is_err());
            assert!(s.insert_new(b"f/4".to_vec(), b"refused".to_vec()).await.is_err(), "one-time claims too");
        }
        // What was acknowledged is there after a restart; what was refused is not.
        let s = reopen(&d).await;
        assert_eq!(s.get(b"f/1").await.unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(s.get(b"f/3").await.unwrap(), None);
        assert_eq!(s.get(b"f/4").await.unwrap(), None);
    }

    #[tokio::test]
    async fn appends_are_read_at_once_and_kept_by_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        {
            let s = SledStore::open(&d).unwrap();
            let mut t = Txn::new();
            t.put(b"a/1".to_vec(), b"one".to_vec()).put(b"a/2".to_vec(), b"two".to_vec());
            s.append(t).await.unwrap();
            let mut t = Txn::new();
            t.delete(b"a/2".to_vec()).put(b"a/3".to_vec(), b"three".to_vec());
            s.append(t).await.unwrap();
            s.sync_appends().await.unwrap();
            // Reads see them before they reach the tree...
            assert_eq!(s.get(b"a/1").await.unwrap().as_deref(), Some(&b"one"[..]));
            assert_eq!(s.get(b"a/2").await.unwrap(), None);
            // ...scans and transactions after moving them there.
            assert_eq!(s.scan(b"a/", None, 10).await.unwrap().len(), 2);
            let mut t = Txn::new();
            t.require_equals(b"a/3".to_vec(), b"three".to_vec()).put(b"a/3".to_vec(), b"THREE".to_vec());
            s.commit(t).await.unwrap();
            let mut t = Txn::new();
            t.require_absent(b"x".to_vec());
            assert!(s.append(t).await.is_err(), "appends take no preconditions");
        }
        assert_eq!(segments(&d), 0, "a clean close leaves no journal behind");
        let s = reopen(&d).await;
        assert_eq!(s.get(b"a/3").await.unwrap().as_deref(), Some(&b"THREE"[..]));
        assert!(s.export().unwrap().iter().all(|(k, _)| k.as_slice() != APPLIED_KEY), "the applied mark is not backed up");
    }

    #[tokio::test]
    async fn a_crash_is_replayed_and_a_torn_tail_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        drop(reopen(&d).await);
        // What a crash leaves: synced records, then half of one that never was.
        let p = segment(&d, 1, &[(1, vec![put("k/1", "a")]), (2, vec![put("k/2", "b"), Op::Delete(b"k/1".to_vec())])]);
        let mut half = Vec::new();
        super::super::journal::encode(&mut half, 3, &[put("k/3", "never acknowledged")]);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(&half[..half.len() / 2]);
        std::fs::write(&p, bytes).unwrap();
        {
            let s = SledStore::open(&d).unwrap();
            assert_eq!(s.get(b"k/1").await.unwrap(), None);
            assert_eq!(s.get(b"k/2").await.unwrap().as_deref(), Some(&b"b"[..]));
            assert_eq!(s.get(b"k/3").await.unwrap(), None);
            // Numbering goes on after the replayed records.
            let mut t = Txn::new();
            t.put(b"k/4".to_vec(), b"d".to_vec());
            s.append(t).await.unwrap();
            s.sync_appends().await.unwrap();
        }
        let s = reopen(&d).await;
        assert_eq!(s.get(b"k/4").await.unwrap().as_deref(), Some(&b"d"[..]));
        assert_eq!(s.get(b"k/2").await.unwrap().as_deref(), Some(&b"b"[..]));
    }

    #[tokio::test]
    async fn a_replay_never_rolls_back_a_later_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        {
            let s = SledStore::open(&d).unwrap();
            let mut t = Txn::new();
            t.put(b"head".to_vec(), b"1".to_vec());
            s.append(t).await.unwrap(); // LSN 1
            s.sync_appends().await.unwrap();
            let mut t = Txn::new();
            t.require_equals(b"head".to_vec(), b"1".to_vec()).put(b"head".to_vec(), b"2".to_vec());
            s.commit(t).await.unwrap(); // moves LSN 1 first, then writes 2
        }
        // As if the crash came before the segment holding LSN 1 was deleted.
        segment(&d, 1, &[(1, vec![put("head", "1")])]);
        let s = reopen(&d).await;
        assert_eq!(s.get(b"head").await.unwrap().as_deref(), Some(&b"2"[..]));
        drop(s);
        // A corrupt record that is not at the end of the last segment is not a torn write.
        let p = segment(&d, 5, &[(5, vec![put("x", "1")]), (6, vec![put("y", "2")])]);
        segment(&d, 7, &[(7, vec![put("z", "3")])]);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[12] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        assert!(SledStore::open(&d).is_err(), "corruption inside the journal must refuse the open");
    }

    #[tokio::test]
    async fn full_segments_rotate_and_are_reclaimed_once_moved() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        {
            let s = SledStore::open(&d).unwrap();
            for i in 0..300u32 {
                let mut t = Txn::new();
                t.put(format!("r/{i:04}").into_bytes(), vec![b'x'; 100]);
                s.append(t).await.unwrap();
                s.sync_appends().await.unwrap();
            }
            assert_eq!(s.scan(b"r/", None, 1000).await.unwrap().len(), 300);
            // The mover thread deletes them (within its 20 ms interval; allow for a slow disk).
            let listing = || std::fs::read_dir(journal_dir(&d)).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
            for _ in 0..250 {
                if listing().len() == 1 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let left = listing();
            assert_eq!(left.len(), 1, "closed segments are deleted once their records are in the tree: {left:?}");
            let first: u64 = left[0].to_str().unwrap().trim_end_matches(".log").parse().unwrap();
            assert!(first > 1, "300 records of ~120 bytes fill several 4 KiB segments");
        }
        let s = reopen(&d).await;
        assert_eq!(s.scan(b"r/", None, 1000).await.unwrap().len(), 300);
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
