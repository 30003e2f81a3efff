//! The write-ahead journal in front of the sled tree: the durable path for unconditional
//! writes ([`super::Store::append`]: the audit trail, one entry per presentation).
//!
//! Why: a sled transaction plus its share of a sled flush cost about 300 µs of CPU per
//! audit entry under load (most of it sled's I/O threads waking and switching), about 60%
//! of a whole presentation. Here an append is an in-memory enqueue plus a share of one
//! `fdatasync` of a plain file; the writes reach the tree later, many per `apply_batch`,
//! off the request path.
//!
//! The rules that keep it correct:
//! - **Visibility.** Until a write is in the tree, reads find it in the overlay (latest
//!   pending value per key). Scans, transactions and exports move everything pending into
//!   the tree first, and transactions exclude appends while they run (the `order` lock),
//!   so a journaled write can never land on top of a later transactional one.
//! - **Durability.** An append is acknowledged once the segment file holding it is
//!   `fdatasync`ed (group commit: concurrent appends share one).
//! - **Replay.** Every move into the tree also writes the highest sequence number (LSN)
//!   it contains to [`APPLIED_KEY`], in the same atomic batch. At open, records above that
//!   mark are re-applied in order; records at or below it are already in the tree and are
//!   skipped, so a replay never rolls back what a later transaction wrote.
//! - **Torn tails.** A record is `len | crc32 | payload`. A bad record at the end of the
//!   last segment is a write that was never acknowledged (its `fdatasync` never returned)
//!   and is dropped; a bad record anywhere else is corruption and refuses the open.
//! - **Space.** Segments rotate at [`SEGMENT_BYTES`]; a closed segment is deleted once
//!   everything in it is in the tree and the tree is flushed. A clean shutdown moves
//!   everything and leaves no segment behind.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{GroupCommit, Op, StoreError};

/// Tree key holding the highest LSN moved into the tree (u64, big-endian).
pub const APPLIED_KEY: &[u8] = b"meta/journal-applied";
/// A segment is closed (and a new one started) once it holds this many bytes.
#[cfg(not(test))]
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Small in unit tests, so that they rotate and reclaim segments.
#[cfg(test)]
const SEGMENT_BYTES: u64 = 4096;
/// The background mover runs at least this often while anything is pending...
const MOVE_INTERVAL: Duration = Duration::from_millis(20);
/// ...and is woken early once this many records wait (bounds the overlay's memory).
const MOVE_EARLY: usize = 1024;

fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Pending state, under one mutex so that LSN order, file order and overlay order agree.
#[derive(Default)]
struct State {
    next_lsn: u64,
    /// Encoded records not yet written to the segment file.
    buf: Vec<u8>,
    /// Records not yet in the tree, in LSN order.
    queue: VecDeque<(u64, Vec<Op>)>,
    /// Latest pending value per key (`None`: deleted) and the LSN that wrote it.
    overlay: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
    shutdown: bool,
}

/// The open segment and the closed ones still needed.
struct Segments {
    dir: PathBuf,
    file: File,
    /// LSN the open segment is named after (its first record).
    first: u64,
    written: u64,
    /// Closed segments: path and the last LSN they hold.
    closed: Vec<(PathBuf, u64)>,
    /// Highest LSN written (and synced) so far.
    last_written: u64,
}

/// The journal; shared by the store, the group-commit thread and the mover thread.
pub struct Journal {
    state: Mutex<State>,
    wake_mover: std::sync::Condvar,
    segments: Mutex<Segments>,
    /// Serialises moves into the tree (background and on-demand).
    mover: Mutex<()>,
    /// Highest LSN in the tree (not necessarily flushed): what [`Journal::reclaim`] may free.
    moved: AtomicU64,
    /// Appends take it shared, transactions and exports exclusively.
    pub(super) order: std::sync::RwLock<()>,
    group: Mutex<Option<GroupCommit>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    tree: sled::Tree,
    db: sled::Db,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Backend("journal lock poisoned".into()))
}

fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.log"))
}

/// Encodes one record: `len u32 | crc32 u32 | lsn u64 | n u32 | ops` (little-endian).
pub(crate) fn encode(out: &mut Vec<u8>, lsn: u64, ops: &[Op]) {
    let size: usize = ops.iter().map(|op| 9 + op_len(op)).sum();
    let mut p = Vec::with_capacity(12 + size);
    p.extend_from_slice(&lsn.to_le_bytes());
    p.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        let (tag, k, v) = match op {
            Op::Put(k, v) => (1u8, k, Some(v)),
            Op::Delete(k) => (2u8, k, None),
        };
        p.push(tag);
        p.extend_from_slice(&(k.len() as u32).to_le_bytes());
        p.extend_from_slice(k);
        if let Some(v) = v {
            p.extend_from_slice(&(v.len() as u32).to_le_bytes());
            p.extend_from_slice(v);
        }
    }
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
}

fn op_len(op: &Op) -> usize {
    match op {
        Op::Put(k, v) => k.len() + v.len(),
        Op::Delete(k) => k.len(),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
}

/// Decodes the records of one segment: the valid prefix, and whether bytes followed it.
pub(crate) fn decode(data: &[u8]) -> (Vec<(u64, Vec<Op>)>, bool) {
    let mut out = Vec::new();
    let mut r = Reader(data);
    while !r.0.is_empty() {
        let Some(rec) = decode_one(&mut r) else { return (out, true) };
        out.push(rec);
    }
    (out, false)
}

fn decode_one(r: &mut Reader<'_>) -> Option<(u64, Vec<Op>)> {
    let len = r.u32()? as usize;
    let crc = r.u32()?;
    let payload = r.bytes(len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut p = Reader(payload);
    let lsn = p.u64()?;
    let n = p.u32()?;
    let mut ops = Vec::with_capacity(n.min(1024) as usize);
    for _ in 0..n {
        let tag = p.bytes(1)?.first().copied()?;
        let kl = p.u32()? as usize;
        let k = p.bytes(kl)?.to_vec();
        ops.push(match tag {
            1 => {
                let vl = p.u32()? as usize;
                Op::Put(k, p.bytes(vl)?.to_vec())
            }
            2 => Op::Delete(k),
            _ => return None,
        });
    }
    p.0.is_empty().then_some((lsn, ops))
}

fn applied_mark(tree: &sled::Tree) -> Result<u64, StoreError> {
    Ok(tree.get(APPLIED_KEY).map_err(be)?.and_then(|v| v.as_ref().try_into().ok()).map(u64::from_be_bytes).unwrap_or(0))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(be)
}

impl Journal {
    /// Replays what `dir` holds into `tree`, then starts a fresh segment, the group-commit
    /// thread (writes and `fdatasync`s) and the mover thread.
    pub fn open(dir: &Path, db: sled::Db, tree: sled::Tree) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir).map_err(be)?;
        let last = replay(dir, &db, &tree)?;
        let next_lsn = last.max(applied_mark(&tree)?) + 1;
        let path = segment_path(dir, next_lsn);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(be)?;
        sync_dir(dir)?;
        let journal = Arc::new(Self {
            state: Mutex::new(State { next_lsn, ..State::default() }),
            wake_mover: std::sync::Condvar::new(),
            segments: Mutex::new(Segments {
                dir: dir.to_owned(),
                file,
                first: next_lsn,
                written: 0,
                closed: Vec::new(),
                last_written: next_lsn - 1,
            }),
            mover: Mutex::new(()),
            moved: AtomicU64::new(next_lsn - 1),
            order: std::sync::RwLock::new(()),
            group: Mutex::new(None),
            thread: Mutex::new(None),
            tree,
            db,
        });
        let writer = Arc::downgrade(&journal);
        let group = GroupCommit::start_named(
            "sigil-journal",
            Box::new(move || match writer.upgrade() {
                Some(j) => j.write_out().map_err(|e| e.to_string()),
                None => Ok(()),
            }),
        )?;
        *lock(&journal.group)? = Some(group);
        let mover = Arc::downgrade(&journal);
        let handle = std::thread::Builder::new().name("sigil-journal-mover".into()).spawn(move || run_mover(&mover)).map_err(be)?;
        *lock(&journal.thread)? = Some(handle);
        Ok(journal)
    }

    /// Enqueues `ops`: visible to reads at once, durable after [`Journal::durable`].
    pub fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let _order = self.order.read().map_err(|_| StoreError::Backend("journal lock poisoned".into()))?;
        self.append_ordered(ops)
    }

    /// [`Journal::append`] for a caller that already holds `order` shared.
    pub fn append_ordered(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if self.group()?.is_failed() {
            return Err(StoreError::Backend("the journal could not be written; writes are refused".into()));
        }
        let mut st = lock(&self.state)?;
        if st.shutdown {
            return Err(StoreError::Backend("the journal is closed (shutdown, or a failed move into the store)".into()));
        }
        let lsn = st.next_lsn;
        st.next_lsn += 1;
        encode(&mut st.buf, lsn, &ops);
        for op in &ops {
            let (k, v) = match op {
                Op::Put(k, v) => (k, Some(v.clone())),
                Op::Delete(k) => (k, None),
            };
            st.overlay.insert(k.clone(), (lsn, v));
        }
        st.queue.push_back((lsn, ops));
        if st.queue.len() >= MOVE_EARLY {
            self.wake_mover.notify_one();
        }
        Ok(())
    }

    fn group(&self) -> Result<GroupCommit, StoreError> {
        lock(&self.group)?.clone().ok_or_else(|| StoreError::Backend("the journal is closed".into()))
    }

    /// Waits until every append made before the call is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.group()?.durable().await
    }

    /// The pending value of `key`: `Some(None)` if a pending write deleted it, `None` if
    /// nothing pending touches it (read the tree).
    pub fn pending(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let st = lock(&self.state)?;
        if st.overlay.is_empty() {
            return Ok(None);
        }
        Ok(st.overlay.get(key).map(|(_, v)| v.clone()))
    }

    /// Moves everything pending into the tree (one atomic batch with the applied mark).
    pub fn move_all(&self) -> Result<(), StoreError> {
        let _mover = lock(&self.mover)?;
        let batch: Vec<(u64, Vec<Op>)> = {
            let mut st = lock(&self.state)?;
            if st.queue.is_empty() {
                return Ok(());
            }
            st.queue.drain(..).collect()
        };
        let Some(last) = batch.last().map(|b| b.0) else { return Ok(()) };
        let mut b = sled::Batch::default();
        let n = batch.len();
        for (_, ops) in batch {
            for op in ops {
                match op {
                    Op::Put(k, v) => b.insert(k, v),
                    Op::Delete(k) => b.remove(k),
                }
            }
        }
        b.insert(APPLIED_KEY, last.to_be_bytes().to_vec());
        let res = self.tree.apply_batch(b).map_err(be);
        if let Err(e) = res {
            // The records stay in the journal (replayed at the next open); fail closed.
            if let Ok(mut st) = self.state.lock() {
                st.shutdown = true;
            }
            return Err(e);
        }
        metrics::histogram!("sigil_journal_move_batch_size").record(n as f64);
        let mut st = lock(&self.state)?;
        st.overlay.retain(|_, (lsn, _)| *lsn > last);
        drop(st);
        self.moved.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }

    /// Deletes closed segments whose records are all in the tree, after flushing it. Run
    /// by the mover thread only: the flush must hold up neither the journal's `fdatasync`
    /// (so no segment lock across it) nor a request that moved records on demand.
    fn reclaim(&self) -> Result<(), StoreError> {
        let moved = self.moved.load(Ordering::SeqCst);
        let mut left: Vec<(PathBuf, u64)> = {
            let mut seg = lock(&self.segments)?;
            let (done, keep) = std::mem::take(&mut seg.closed).into_iter().partition(|(_, last)| *last <= moved);
            seg.closed = keep;
            done
        };
        if left.is_empty() {
            return Ok(());
        }
        // Only once the tree is flushed may the copies in the journal go. Whatever is not
        // deleted goes back on the list, so the next pass tries again (and a restart in
        // between replays or skips those files).
        let result = self.db.flush().map_err(be).and_then(|_| {
            while let Some((path, _)) = left.last() {
                std::fs::remove_file(path).map_err(be)?;
                left.pop();
            }
            Ok(())
        });
        if !left.is_empty() {
            lock(&self.segments)?.closed.extend(left);
        }
        result
    }

    /// The group-commit flush: write what is buffered, rotate if the segment is full,
    /// `fdatasync`.
    fn write_out(&self) -> Result<(), StoreError> {
        let mut seg = lock(&self.segments)?;
        let (buf, last) = {
            let mut st = lock(&self.state)?;
            (std::mem::take(&mut st.buf), st.next_lsn - 1)
        };
        if buf.is_empty() {
            return Ok(());
        }
        if seg.written >= SEGMENT_BYTES {
            // Everything in the open segment is synced: close it and start the next one,
            // named after the first record it will hold.
            let first = seg.last_written + 1;
            let file = OpenOptions::new().create(true).append(true).open(segment_path(&seg.dir, first)).map_err(be)?;
            sync_dir(&seg.dir)?;
            seg.file = file;
            let closed = (segment_path(&seg.dir, seg.first), seg.last_written);
            seg.closed.push(closed);
            seg.first = first;
            seg.written = 0;
        }
        seg.file.write_all(&buf).map_err(be)?;
        seg.file.sync_data().map_err(be)?;
        seg.written += buf.len() as u64;
        seg.last_written = last;
        Ok(())
    }

    /// For fault tests: swaps the open segment for a read-only handle on the same file, so
    /// the next write fails in the kernel as a full or failing disk would make it fail.
    #[cfg(test)]
    pub(crate) fn break_segment_for_test(&self) {
        if let Ok(mut seg) = self.segments.lock() {
            if let Ok(f) = std::fs::File::open(segment_path(&seg.dir, seg.first)) {
                seg.file = f;
            }
        }
    }

    /// Clean shutdown: write and sync what is buffered, move everything into the tree,
    /// flush it, and delete every segment.
    pub fn close(&self) -> Result<(), StoreError> {
        if let Ok(mut st) = self.state.lock() {
            st.shutdown = true;
        }
        self.wake_mover.notify_all();
        if let Some(h) = lock(&self.thread)?.take() {
            let _ = h.join();
        }
        if let Some(g) = lock(&self.group)?.take() {
            g.shutdown();
        }
        // Appends refused from here on; the last ones are in `buf` or already written.
        self.write_out()?;
        self.move_all()?;
        self.db.flush().map_err(be)?;
        let seg = lock(&self.segments)?;
        for e in std::fs::read_dir(&seg.dir).map_err(be)? {
            let p = e.map_err(be)?.path();
            if p.extension().is_some_and(|x| x == "log") {
                std::fs::remove_file(p).map_err(be)?;
            }
        }
        Ok(())
    }

    /// Bytes the segments occupy.
    pub fn size_on_disk(&self) -> u64 {
        let Ok(seg) = self.segments.lock() else { return 0 };
        std::fs::read_dir(&seg.dir).map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
    }
}

fn run_mover(journal: &std::sync::Weak<Journal>) {
    loop {
        let Some(j) = journal.upgrade() else { return };
        {
            let Ok(st) = j.state.lock() else { return };
            if st.shutdown {
                return;
            }
            let Ok((st, _)) = j.wake_mover.wait_timeout(st, MOVE_INTERVAL) else { return };
            if st.shutdown {
                return;
            }
        }
        if let Err(e) = j.move_all() {
            tracing::error!(error = %e, "moving journaled writes into the store failed; they are replayed at the next start");
            return;
        }
        if let Err(e) = j.reclaim() {
            tracing::warn!(error = %e, "deleting moved journal segments failed; the next start skips them");
        }
    }
}

/// Re-applies records above the tree's applied mark; returns the highest LSN seen.
fn replay(dir: &Path, db: &sled::Db, tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(be)?
        .filter_map(|e| {
            let p = e.ok()?.path();
            let first = p.file_stem()?.to_str()?.parse::<u64>().ok()?;
            (p.extension()? == "log").then_some((first, p))
        })
        .collect();
    segments.sort();
    let mut applied = applied_mark(tree)?;
    let mut last = 0;
    let mut replayed = 0usize;
    let count = segments.len();
    for (i, (_, path)) in segments.iter().enumerate() {
        let data = std::fs::read(path).map_err(be)?;
        let (records, torn) = decode(&data);
        if torn && i + 1 != count {
            return Err(StoreError::Backend(format!("journal segment {} is corrupt", path.display())));
        }
        if torn {
            tracing::warn!(segment = %path.display(), "journal ends in a torn record (never acknowledged); dropped");
        }
        let mut b = sled::Batch::default();
        let mut any = false;
        for (lsn, ops) in records {
            last = last.max(lsn);
            if lsn <= applied {
                continue;
            }
            for op in ops {
                match op {
                    Op::Put(k, v) => b.insert(k, v),
                    Op::Delete(k) => b.remove(k),
                }
            }
            applied = lsn;
            any = true;
            replayed += 1;
        }
        if any {
            b.insert(APPLIED_KEY, applied.to_be_bytes().to_vec());
            tree.apply_batch(b).map_err(be)?;
        }
    }
    db.flush().map_err(be)?;
    for (_, path) in &segments {
        std::fs::remove_file(path).map_err(be)?;
    }
    if replayed > 0 {
        tracing::info!(records = replayed, "journal replayed into the store");
    }
    Ok(last)
}
