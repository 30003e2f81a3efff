//! Record manifests: why a stale copy of a record does not open.
//!
//! A sealed record's AAD binds its tenant, kind, id and data-key version, so a blob moved
//! to another record fails; but an *older* blob of the same record (a delegation before
//! its revocation, a deleted token, a status page before a bit was set) would still open.
//! Each tenant therefore keeps a manifest: for every sealed record under its prefix
//! (everything but the audit trail, which its hash chain covers), the digest of the bytes
//! currently stored. Readers open a record only when its bytes are the ones the manifest
//! names, and a record the manifest does not name (one deleted) does not open at all.
//!
//! Shape: a hash trie of fixed depth. The first four hex digits of SHA-256 of a record's
//! `{kind}/{id}` choose one of 65,536 leaves, each a plain list of `name, 16-byte digest`;
//! inner nodes (16 children, 256 bytes) hold their children's digests
//! (`keys::manifest_node`); the root (`keys::manifest_root`) is sealed under the tenant's
//! data key: a random incarnation, an epoch counting its writes, and its children's
//! digests. A write rewrites one leaf and its path (about 1 KiB beside the leaf), whatever
//! the tenant's size. A stale record therefore needs a stale leaf, which needs a stale path
//! up to a stale root; and a stale root names stale digests for every record written since,
//! so they all stop opening: the only state that opens again is a whole earlier state of
//! the tenant, every record, node and root together (as a restore from backup would bring
//! back). Detecting that needs a monotonic source outside the store (this process
//! remembers the highest epoch it saw; see docs/ARCHITECTURE.md).
//!
//! Writers: every transaction that writes a sealed record of a tenant gets that tenant's
//! node and root updates added by [`Sigil::stage_manifest`], under a per-tenant lock
//! held until the transaction is applied (never across its fsync), with a compare-and-set
//! on the stored root so that another process's write makes it retry. The mutation path
//! calls it for every commit (`mutation.rs`, `journal.rs`), so no writer can forget it.
//!
//! Must never: trust a root it cannot open, a node whose digest its parent does not name,
//! or a root older than one this process has seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::codes::ErrorCode;
use crate::crypto::{Aad, blob_key_version};
use crate::ids::TenantId;
use crate::service::kernel::keyring::TenantKeys;
use crate::service::model::records::kind;
use crate::service::{ServiceError, Sigil};
use crate::store::{Op, Txn, keys};

/// Children per inner node (one hex digit of the name's hash each).
const FANOUT: usize = 16;
/// Hex digits of SHA-256(name) that choose a leaf: 16^4 = 65,536 leaves, so a tenant of a
/// million agents (about five million records) has leaves of about 80 names, and a write
/// rewrites one leaf, three inner nodes of 256 bytes and the root, whatever the tenant's size.
const DEPTH: usize = 4;
/// Digests are truncated SHA-256: records are only ever sealed by Sigil, so an attacker
/// needs a second preimage among blobs it cannot make, far beyond 128 bits of work.
type Digest = [u8; 16];
const EMPTY: Digest = [0; 16];
/// A root: incarnation (8) | epoch (8) | the digests of its 16 children.
const ROOT_LEN: usize = 16 + FANOUT * 16;
/// Parsed nodes kept in memory across every tenant, in bytes (their stored size).
const CACHE_BYTES: usize = 32 << 20;
/// How often a reader re-reads a record that changed while it was being checked.
const RACE_RETRIES: usize = 4;

fn digest(bytes: &[u8]) -> Digest {
    let mut d = EMPTY;
    d.copy_from_slice(Sha256::digest(bytes).get(..16).unwrap_or(&EMPTY));
    d
}

/// The leaf a name lives in: the first [`DEPTH`] hex digits of its hash.
fn path_of(name: &str) -> [u8; DEPTH] {
    let h = Sha256::digest(name.as_bytes());
    let (a, b) = (h.first().copied().unwrap_or(0), h.get(1).copied().unwrap_or(0));
    [a >> 4, a & 15, b >> 4, b & 15]
}

/// The child slot of `path` at `depth` (0: the root's).
fn slot(path: &[u8], depth: usize) -> usize {
    path.get(depth).map_or(0, |n| usize::from(*n))
}

/// The name a record has in its tenant's manifest: its AAD identity.
fn name(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}

/// The manifest name of a store key, for the sealed records manifests cover.
fn tracked(tenant: &TenantId, key: &[u8]) -> Option<String> {
    keys::sealed_identity(tenant, key).filter(|(k, _)| kind::in_manifest(k)).map(|(k, id)| name(k, &id))
}

#[derive(Debug, Clone)]
struct Root {
    /// Random per tenant creation: a tenant re-created with the same id starts anew.
    incarnation: u64,
    /// Counts the root's writes; a process refuses a root older than one it has seen.
    epoch: u64,
    children: Vec<Digest>,
}

impl Root {
    fn new() -> Self {
        Self { incarnation: rand::random(), epoch: 0, children: vec![EMPTY; FANOUT] }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ROOT_LEN);
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        for c in &self.children {
            out.extend_from_slice(c);
        }
        out
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != ROOT_LEN {
            return None;
        }
        let word = |r: std::ops::Range<usize>| b.get(r).and_then(|w| <[u8; 8]>::try_from(w).ok()).map(u64::from_be_bytes);
        let children = b.get(16..)?.chunks_exact(16).map(|c| <Digest>::try_from(c).unwrap_or(EMPTY)).collect();
        Some(Self { incarnation: word(0..8)?, epoch: word(8..16)?, children })
    }
}

/// A node below the root, stored in plain (its digest is in its parent): an inner node
/// holds its children's digests, a leaf the digest of each record named in it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Inner(Vec<Digest>),
    Leaf(BTreeMap<String, Digest>),
}

impl Node {
    /// The node at `depth` (1 ..= DEPTH) that holds nothing.
    fn empty(depth: usize) -> Self {
        if depth < DEPTH { Node::Inner(vec![EMPTY; FANOUT]) } else { Node::Leaf(BTreeMap::new()) }
    }

    fn is_empty(&self) -> bool {
        match self {
            Node::Inner(c) => c.iter().all(|d| *d == EMPTY),
            Node::Leaf(m) => m.is_empty(),
        }
    }

    fn size(&self) -> usize {
        match self {
            Node::Inner(c) => c.len() * 16,
            Node::Leaf(m) => m.keys().map(|n| n.len() + 18).sum(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        match self {
            Node::Inner(c) => c.iter().for_each(|d| out.extend_from_slice(d)),
            Node::Leaf(m) => {
                for (n, d) in m {
                    // Names are `{kind}/{id}` of random ids: far below 64 KiB.
                    let len = u16::try_from(n.len()).unwrap_or(u16::MAX);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(n.as_bytes().get(..usize::from(len)).unwrap_or_default());
                    out.extend_from_slice(d);
                }
            }
        }
        out
    }

    fn decode(depth: usize, mut b: &[u8]) -> Option<Self> {
        if depth < DEPTH {
            if b.len() != FANOUT * 16 {
                return None;
            }
            return Some(Node::Inner(b.chunks_exact(16).map(|c| <Digest>::try_from(c).unwrap_or(EMPTY)).collect()));
        }
        let mut out = BTreeMap::new();
        while !b.is_empty() {
            let len = usize::from(u16::from_be_bytes(b.get(..2)?.try_into().ok()?));
            let name = std::str::from_utf8(b.get(2..2 + len)?).ok()?.to_owned();
            let d: Digest = b.get(2 + len..18 + len)?.try_into().ok()?;
            out.insert(name, d);
            b = b.get(18 + len..)?;
        }
        Some(Node::Leaf(out))
    }
}

/// A root as stored (its sealed bytes) and as read.
#[derive(Debug)]
struct Loaded {
    stored: Vec<u8>,
    root: Root,
}

/// What this process knows of one tenant's manifest.
#[derive(Default)]
struct TenantManifest {
    /// Held by a writer from reading the root until its transaction is applied.
    write: Arc<tokio::sync::Mutex<()>>,
    /// The latest root this process read or wrote.
    root: RwLock<Option<Arc<Loaded>>>,
    /// (incarnation, highest epoch) seen: an older root of the same incarnation is refused.
    seen: Mutex<(u64, u64)>,
    /// Parsed nodes by digest (content-addressed, so never stale).
    nodes: Mutex<HashMap<Digest, Arc<Node>>>,
}

impl TenantManifest {
    fn root(&self) -> Option<Arc<Loaded>> {
        self.root.read().ok().and_then(|r| r.clone())
    }

    /// (incarnation, highest epoch) seen so far: taken before a store read, the floor that
    /// read's root must reach.
    fn floor(&self) -> Result<(u64, u64), ServiceError> {
        self.seen.lock().map(|s| *s).map_err(|_| poisoned())
    }

    /// Accepts `root` unless it is older than one seen before the read that returned it
    /// began (`floor`, from [`TenantManifest::floor`]); installs it as the latest.
    ///
    /// The floor, not the highest epoch seen by now: a read that began before a concurrent
    /// request (or, on a shared store, another node) moved the root may return the older
    /// root, which is no rollback; the store returned what was current when the read ran.
    /// Only a root older than one this process saw *before* asking is.
    fn admit(&self, loaded: Arc<Loaded>, floor: (u64, u64)) -> Result<Arc<Loaded>, ServiceError> {
        {
            let mut seen = self.seen.lock().map_err(|_| poisoned())?;
            let (inc, epoch) = (loaded.root.incarnation, loaded.root.epoch);
            if floor.0 == inc && epoch < floor.1 {
                return Err(ServiceError::Internal(format!("a manifest root of epoch {epoch} replaced epoch {}: rolled back", floor.1)));
            }
            if seen.0 != inc || epoch > seen.1 {
                *seen = (inc, epoch);
            }
        }
        if let Ok(mut r) = self.root.write() {
            if r.as_ref().is_none_or(|cur| cur.root.incarnation != loaded.root.incarnation || cur.root.epoch <= loaded.root.epoch) {
                *r = Some(loaded.clone());
            }
        }
        Ok(loaded)
    }
}

fn poisoned() -> ServiceError {
    ServiceError::Internal("manifest lock poisoned".into())
}

/// Every tenant's manifest as this process knows it.
#[derive(Default)]
pub struct Manifests {
    tenants: Mutex<HashMap<String, Arc<TenantManifest>>>,
    cached_bytes: AtomicUsize,
}

impl std::fmt::Debug for Manifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifests").finish_non_exhaustive()
    }
}

impl Manifests {
    fn tenant(&self, t: &TenantId) -> Arc<TenantManifest> {
        let mut m = match self.tenants.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(t.to_string()).or_default().clone()
    }

    /// Forgets a deleted tenant (a tenant re-created with its id has a new incarnation).
    pub(crate) fn forget(&self, t: &TenantId) {
        let gone = match self.tenants.lock() {
            Ok(mut m) => m.remove(t.as_str()),
            Err(p) => p.into_inner().remove(t.as_str()),
        };
        if let Some(tm) = gone {
            self.clear_nodes(&tm);
        }
    }

    fn clear_nodes(&self, tm: &TenantManifest) {
        if let Ok(mut m) = tm.nodes.lock() {
            let freed: usize = m.values().map(|n| n.size()).sum();
            m.clear();
            let _ = self.cached_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(freed)));
        }
    }

    /// Keeps a parsed node; over the byte budget, this tenant's nodes are dropped first
    /// (they are read again on demand).
    fn cache_node(&self, tm: &TenantManifest, d: Digest, n: Arc<Node>) {
        let size = n.size();
        if self.cached_bytes.load(Ordering::Acquire) + size > CACHE_BYTES {
            self.clear_nodes(tm);
            if self.cached_bytes.load(Ordering::Acquire) + size > CACHE_BYTES {
                return;
            }
        }
        if let Ok(mut m) = tm.nodes.lock() {
            if m.insert(d, n).is_none() {
                self.cached_bytes.fetch_add(size, Ordering::AcqRel);
            }
        }
    }
}

/// A tenant's manifest changes staged into a transaction: apply the transaction, then
/// call [`Staged::committed`]. Holds the tenant's manifest write lock until dropped.
pub(crate) struct Staged<'a> {
    manifests: &'a Manifests,
    tm: Arc<TenantManifest>,
    next: Arc<Loaded>,
    nodes: Vec<(Digest, Arc<Node>)>,
    _write: tokio::sync::OwnedMutexGuard<()>,
}

impl Staged<'_> {
    /// The transaction was applied: the new root and nodes are the latest.
    pub(crate) fn committed(self) {
        for (d, n) in self.nodes {
            self.manifests.cache_node(&self.tm, d, n);
        }
        // The writer's own root: it extends the root read under the write lock, so no
        // floor applies (a later one from elsewhere already recorded stays the latest).
        let _ = self.tm.admit(self.next, (0, 0));
    }
}

/// Why a record failed its check.
fn refused(t: &TenantId, name: &str) -> ServiceError {
    tracing::error!(tenant = %t, record = %name, "a stored record is not the one its manifest names (a stale copy, one deleted, or one removed); refused");
    ServiceError::Internal(format!("record {name} of {t} is not the version its manifest names"))
}

fn changed_meanwhile() -> ServiceError {
    ServiceError::conflict(ErrorCode::WriteConflict, "the record is being modified concurrently; retry")
}

impl Sigil {
    /// Opens the stored root (fresh from the store).
    async fn load_root(&self, t: &TenantId, tm: &TenantManifest) -> Result<Arc<Loaded>, ServiceError> {
        let floor = tm.floor()?;
        let stored = self
            .store
            .get(&keys::manifest_root(t))
            .await?
            .ok_or_else(|| ServiceError::Internal(format!("the record manifest of {t} is missing")))?;
        if let Some(cur) = tm.root().filter(|l| l.stored == stored) {
            return Ok(cur);
        }
        let tk = self.tenant_keys_opening(t, &stored).await?;
        let root = open_root(&tk, t, &stored)?;
        tm.admit(Arc::new(Loaded { stored, root }), floor)
    }

    /// The node at `path` whose digest its parent names as `d`.
    async fn node(&self, t: &TenantId, tm: &TenantManifest, path: &[u8], d: Digest) -> Result<Arc<Node>, ServiceError> {
        if d == EMPTY {
            return Ok(Arc::new(Node::empty(path.len())));
        }
        if let Some(n) = tm.nodes.lock().ok().and_then(|m| m.get(&d).cloned()) {
            return Ok(n);
        }
        let bytes = self.store.get(&keys::manifest_node(t, path)).await?.unwrap_or_default();
        if digest(&bytes) != d {
            // Several nodes on one store: another one rewrote this path after the root in
            // hand was read (a root this process holds, or one read an instant ago). The
            // caller re-reads the root and tries again; a node altered at rest keeps
            // failing, so the record still never opens.
            if self.store.shared() {
                return Err(changed_meanwhile());
            }
            return Err(ServiceError::Internal(format!("a manifest node of {t} is not the one its parent names")));
        }
        let n = Arc::new(Node::decode(path.len(), &bytes).ok_or_else(|| ServiceError::Internal("malformed manifest node".into()))?);
        self.manifests.cache_node(tm, d, n.clone());
        Ok(n)
    }

    /// The digest `root` names for the record `name` (`None`: no such record).
    async fn expected(&self, t: &TenantId, tm: &TenantManifest, root: &Root, name: &str) -> Result<Option<Digest>, ServiceError> {
        let path = path_of(name);
        let mut d = root.children.get(slot(&path, 0)).copied().unwrap_or(EMPTY);
        for depth in 1..=DEPTH {
            if d == EMPTY {
                return Ok(None);
            }
            match &*self.node(t, tm, path.get(..depth).unwrap_or_default(), d).await? {
                Node::Inner(c) => d = c.get(slot(&path, depth)).copied().unwrap_or(EMPTY),
                Node::Leaf(m) => return Ok(m.get(name).copied()),
            }
        }
        Ok(None)
    }

    /// Checks that `blob`, read at `key`, is what the tenant's manifest names for it.
    /// A record that changed after the caller read it is a retryable conflict.
    pub(crate) async fn check_fresh(&self, t: &TenantId, key: &[u8], blob: &[u8]) -> Result<(), ServiceError> {
        self.check_stored(t, key, Some(blob)).await
    }

    /// [`Sigil::check_fresh`] for what was read at `key`, absence included: a record the
    /// manifest names must be there (deleting a status page, a budget counter or a
    /// credential would roll it back to "never written").
    async fn check_stored(&self, t: &TenantId, key: &[u8], blob: Option<&[u8]>) -> Result<(), ServiceError> {
        let Some(name) = tracked(t, key) else { return Ok(()) };
        let d = blob.map(digest);
        let tm = self.manifests.tenant(t);
        if let Some(l) = tm.root() {
            match self.expected(t, &tm, &l.root, &name).await {
                Ok(e) if e == d => return Ok(()),
                Ok(_) => {}
                // The root held here is older than a node another process wrote.
                Err(ServiceError::Conflict { code: ErrorCode::WriteConflict, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Another process wrote, or this one has not read the root yet.
        let l = self.load_root(t, &tm).await?;
        if self.expected(t, &tm, &l.root, &name).await? == d {
            return Ok(());
        }
        if self.store.get(key).await?.as_deref() != blob {
            return Err(changed_meanwhile());
        }
        metrics::counter!("sigil_records_refused_total").increment(1);
        Err(refused(t, &name))
    }

    /// The bytes stored at `key`, or their absence, checked against the tenant's manifest
    /// (re-read when the record changed while it was checked).
    pub(crate) async fn fresh_blob(&self, t: &TenantId, key: &[u8]) -> Result<Option<Vec<u8>>, ServiceError> {
        // Several nodes: the record, the root and the nodes are separate reads, and the
        // other node's writes (one per presentation on a busy tenant) may move the root
        // between them again and again on a loaded machine. More rounds, spaced by a short
        // random pause, so that a read is not refused because writes keep landing.
        let shared = self.store.shared();
        let rounds = if shared { 8 * RACE_RETRIES } else { RACE_RETRIES };
        for round in 0..rounds {
            if round > 0 {
                crate::service::kernel::deadline::within_deadline()?;
            }
            let blob = self.store.get(key).await?;
            match self.check_stored(t, key, blob.as_deref()).await {
                Ok(()) => return Ok(blob),
                Err(ServiceError::Conflict { code: ErrorCode::WriteConflict, .. }) => {
                    if shared && round > 0 {
                        let ms = rand::random::<u64>() % ((1u64 << round.min(4)) + 1);
                        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(changed_meanwhile())
    }

    /// Loads and opens a record by store key; `None` when absent. Checked against the
    /// tenant's manifest.
    pub(crate) async fn load_record<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        key: &[u8],
    ) -> Result<Option<T>, ServiceError> {
        match self.fresh_blob(tenant, key).await? {
            Some(blob) => Ok(Some(self.open_reloading(tk, tenant, kind, id, &blob).await?)),
            None => Ok(None),
        }
    }

    /// Opens a record read at `key` (a scan), checked against the tenant's manifest.
    pub(crate) async fn open_fresh<T: DeserializeOwned>(
        &self,
        tk: &TenantKeys,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        key: &[u8],
        blob: &[u8],
    ) -> Result<T, ServiceError> {
        self.check_fresh(tenant, key, blob).await?;
        self.open_reloading(tk, tenant, kind, id, blob).await
    }

    /// Adds to `txn` the manifest changes its writes to tenant records make, under the
    /// tenant's manifest lock (held by the returned [`Staged`] until it is dropped).
    /// `None` when `txn` writes no record a manifest covers and `touch` is false; `touch`
    /// rewrites the root even then (sealed under the current data key). `tk` seals the
    /// root; `creating`: the tenant's first transaction (the root must not exist yet).
    pub(crate) async fn stage_manifest(
        &self,
        tenant: &TenantId,
        tk: &TenantKeys,
        txn: &mut Txn,
        creating: bool,
        touch: bool,
    ) -> Result<Option<Staged<'_>>, ServiceError> {
        let prefix = keys::tenant_prefix(tenant);
        let mut changes: BTreeMap<[u8; DEPTH], Vec<(String, Option<Digest>)>> = BTreeMap::new();
        for op in &txn.ops {
            let (k, d) = match op {
                Op::Put(k, v) => (k, Some(digest(v))),
                Op::Delete(k) => (k, None),
            };
            if let Some(n) = tracked(tenant, k) {
                changes.entry(path_of(&n)).or_default().push((n, d));
            } else if !k.starts_with(&prefix) && tenant_of(k).is_some_and(|other| tracked(&other, k).is_some()) {
                return Err(ServiceError::Internal("one transaction wrote the records of two tenants".into()));
            }
        }
        if self.store.shared() && !creating {
            // Several nodes: what this transaction sealed must be under the data key that
            // is current when it commits. A node holding a key set from before another
            // node's data-key rotation would otherwise commit records under the older key
            // after the rotation's last re-seal pass, and the rotation would then destroy
            // a key still in use. A stale set fails here or at the commit (`409`
            // internally): the caller confirms the tenant, which drops the set, and
            // stages again.
            txn.require_equals(keys::data_key_current(tenant), tk.current.to_be_bytes().to_vec());
            for op in &txn.ops {
                if let Op::Put(k, v) = op {
                    if tracked(tenant, k).is_some() && blob_key_version(v).is_ok_and(|ver| ver != tk.current) {
                        return Err(changed_meanwhile());
                    }
                }
            }
        }
        if changes.is_empty() && !touch {
            return Ok(None);
        }
        let tm = self.manifests.tenant(tenant);
        let write = tm.write.clone().lock_owned().await;
        let root_key = keys::manifest_root(tenant);
        let (stored, mut root) = if creating {
            (None, Root::new())
        } else {
            let l = self.load_root(tenant, &tm).await?;
            (Some(l.stored.clone()), l.root.clone())
        };
        // Every node on the paths to the changed leaves, as they are now.
        let mut nodes: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
        for leaf in changes.keys() {
            let mut d = root.children.get(slot(leaf, 0)).copied().unwrap_or(EMPTY);
            for depth in 1..=DEPTH {
                let path = leaf.get(..depth).unwrap_or_default().to_vec();
                if !nodes.contains_key(&path) {
                    let n = (*self.node(tenant, &tm, &path, d).await?).clone();
                    nodes.insert(path.clone(), n);
                }
                d = match nodes.get(&path) {
                    Some(Node::Inner(c)) => c.get(slot(leaf, depth)).copied().unwrap_or(EMPTY),
                    _ => EMPTY,
                };
            }
        }
        for (leaf, list) in changes {
            if let Some(Node::Leaf(m)) = nodes.get_mut(leaf.as_slice()) {
                for (n, d) in list {
                    match d {
                        Some(d) => m.insert(n, d),
                        None => m.remove(&n),
                    };
                }
            }
        }
        // Bottom-up: each changed node is stored (or removed, when empty) and its new
        // digest set in its parent, up to the root.
        let mut written = Vec::with_capacity(nodes.len());
        for depth in (1..=DEPTH).rev() {
            let at_depth: Vec<Vec<u8>> = nodes.keys().filter(|p| p.len() == depth).cloned().collect();
            for path in at_depth {
                let Some(node) = nodes.remove(&path) else { continue };
                let key = keys::manifest_node(tenant, &path);
                let d = if node.is_empty() {
                    txn.delete(key);
                    EMPTY
                } else {
                    let bytes = node.encode();
                    let d = digest(&bytes);
                    txn.put(key, bytes);
                    written.push((d, Arc::new(node)));
                    d
                };
                let (parent, at) = (path.get(..depth - 1).unwrap_or_default(), slot(&path, depth - 1));
                let children = if depth == 1 {
                    Some(&mut root.children)
                } else {
                    match nodes.get_mut(parent) {
                        Some(Node::Inner(c)) => Some(c),
                        _ => None,
                    }
                };
                if let Some(c) = children.and_then(|c| c.get_mut(at)) {
                    *c = d;
                }
            }
        }
        root.epoch += 1;
        let dk = tk.current().ok_or_else(|| ServiceError::Internal("no current data key".into()))?;
        let sealed = dk.seal(&root_aad(tenant), &root.encode())?;
        match &stored {
            Some(s) => txn.require_equals(root_key.clone(), s.clone()),
            None => txn.require_absent(root_key.clone()),
        };
        txn.put(root_key, sealed.clone());
        Ok(Some(Staged { manifests: &self.manifests, tm, next: Arc::new(Loaded { stored: sealed, root }), nodes: written, _write: write }))
    }

    /// The data-key version the tenant's manifest root is sealed under (`None`: no root).
    pub(crate) async fn manifest_root_version(&self, tenant: &TenantId) -> Result<Option<u32>, ServiceError> {
        match self.store.get(&keys::manifest_root(tenant)).await? {
            Some(b) => Ok(Some(blob_key_version(&b)?)),
            None => Ok(None),
        }
    }

    /// The manifest of a tenant whose records were written before manifests existed: the
    /// digest of every sealed record stored now, in a transaction that requires the root
    /// to be absent (the upgrade of an older store; see `ops/upgrade.rs`).
    pub(crate) async fn manifest_of_stored(&self, tenant: &TenantId) -> Result<Option<Txn>, ServiceError> {
        if self.store.get(&keys::manifest_root(tenant)).await?.is_some() {
            return Ok(None);
        }
        let tk = self.tenant_keys(tenant).await?;
        let prefix = keys::tenant_prefix(tenant);
        let mut txn = Txn::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.store.scan(&prefix, after.as_deref(), 1000).await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else { break };
            for (k, v) in rows {
                if tracked(tenant, &k).is_some() {
                    txn.put(k, v);
                }
            }
            after = Some(last);
        }
        // Staged as if every record were written now, then the record writes dropped:
        // what stays is the nodes and the root.
        let staged = self.stage_manifest(tenant, &tk, &mut txn, true, true).await?;
        let records: std::collections::BTreeSet<Vec<u8>> =
            txn.ops.iter().filter_map(|o| if let Op::Put(k, _) = o { tracked(tenant, k).map(|_| k.clone()) } else { None }).collect();
        txn.ops.retain(|o| !matches!(o, Op::Put(k, _) if records.contains(k)));
        drop(staged);
        Ok(Some(txn))
    }
}

impl Sigil {
    /// The tenant whose manifest `txn`'s record writes change: `None` when it writes no
    /// record a manifest covers, or only those of a tenant being deleted (its manifest
    /// goes with its records).
    pub(crate) async fn tracked_tenant(&self, txn: &Txn) -> Result<Option<TenantId>, ServiceError> {
        let found = txn.ops.iter().find_map(|op| {
            let (Op::Put(k, _) | Op::Delete(k)) = op;
            tenant_of(k).filter(|t| tracked(t, k).is_some())
        });
        let Some(t) = found else { return Ok(None) };
        if self.store.get(&keys::tenant_tombstone(&t)).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(t))
    }
}

/// The tenant a key under `t/{tenant}/` belongs to, parsed where it is read.
fn tenant_of(key: &[u8]) -> Option<TenantId> {
    let t = key.strip_prefix(b"t/")?.split(|b| *b == b'/').next()?;
    TenantId::parse(std::str::from_utf8(t).ok()?).ok()
}

fn root_aad(tenant: &TenantId) -> Aad<'_> {
    Aad { tenant: tenant.as_str(), kind: "manifest", id: "root" }
}

fn open_root(tk: &TenantKeys, t: &TenantId, stored: &[u8]) -> Result<Root, ServiceError> {
    let dk = tk.versions.get(&blob_key_version(stored)?).ok_or(crate::crypto::CryptoError)?;
    let pt = dk.open(&root_aad(t), stored)?;
    Root::decode(pt.expose()).ok_or_else(|| ServiceError::Internal("malformed manifest root".into()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::ids::AgentId;
    use crate::policy::{Authority, Principal, PrincipalKind};
    use crate::service::agents::NewAgent;
    use crate::service::credentials::NewDelegation;
    use crate::service::kernel::issue::StatusChange;
    use crate::service::model::records::TokenRole;
    use crate::service::{Caller, testing};
    use crate::store::{SledStore, Store};

    struct World {
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        s: Arc<Sigil>,
        t: TenantId,
        admin: Caller,
        agent: AgentId,
        delegation: String,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
        let s = testing::sigil_with_store(dir.path(), store.clone(), Arc::new(SystemClock));
        let t = s.create_tenant(&testing::operator(), Some("acme"), "Acme").await.unwrap().id;
        let admin = testing::admin(&t);
        let agent = s.create_agent(&admin, &t, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap().id;
        let new = NewDelegation {
            principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
            authority: Authority::new(&["refunds:create".into()], &["orders/*".into()], Default::default(), None).unwrap(),
            valid_from: None,
            valid_until: "2099-01-01T00:00:00Z".parse().unwrap(),
        };
        let delegation = s.issue_delegation(&admin, &t, &agent, new).await.unwrap().id;
        World { dir, store, s, t, admin, agent, delegation }
    }

    impl World {
        /// The bytes stored under every key starting with `prefix` now.
        async fn copy(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
            let rows = self.store.scan(prefix, None, 10_000).await.unwrap();
            assert!(!rows.is_empty(), "nothing under {}", String::from_utf8_lossy(prefix));
            rows
        }

        /// Puts everything under `prefix` back as `rows` had it, straight into the store
        /// (as someone holding the disk could): keys written since are removed. Then starts
        /// a new process on it (no memory of anything).
        async fn write_back(&self, prefix: &[u8], rows: &[(Vec<u8>, Vec<u8>)]) -> Arc<Sigil> {
            let mut txn = Txn::new();
            for (k, _) in self.store.scan(prefix, None, 10_000).await.unwrap() {
                txn.delete(k);
            }
            for (k, v) in rows {
                txn.put(k.clone(), v.clone());
            }
            self.store.commit(txn).await.unwrap();
            testing::sigil_with_store(self.dir.path(), self.store.clone(), Arc::new(SystemClock))
        }
    }

    fn refused(r: Result<impl std::fmt::Debug, ServiceError>) -> bool {
        matches!(r, Err(ServiceError::Internal(ref d)) if d.contains("is not the version its manifest names"))
    }

    /// The test the issue asks for: a record replaced with its older sealed copy is
    /// refused. A delegation copied before its revocation and written back after it does
    /// not open (not through the API, not into a wallet, not into a presentation), and
    /// neither does the revocation page it came with; a deleted token written back does not
    /// authenticate. Records nobody touched still open.
    #[tokio::test]
    async fn a_record_replaced_with_its_older_sealed_copy_is_refused() {
        let w = world().await;
        let (t, s) = (&w.t, &w.s);
        let credential = keys::credential(t, &w.delegation);
        let before = w.copy(&credential).await;
        let pages = format!("t/{t}/sl/r/").into_bytes();
        let pages_before = w.copy(&pages).await;
        s.change_credential_status(&w.admin, t, &w.delegation, StatusChange::Revoke).await.unwrap();
        assert!(s.get_credential(&w.admin, t, &w.delegation).await.unwrap().revoked);

        let s2 = w.write_back(&credential, &before).await;
        assert!(refused(s2.get_credential(&w.admin, t, &w.delegation).await), "the revocation was undone");
        assert!(refused(s2.agent_credentials(&w.admin, t, &w.agent).await));
        let agent = Caller::Agent { tenant: t.clone(), agent: w.agent.clone(), token: crate::ids::TokenId::random() };
        let req = crate::service::presentations::PresentationRequest {
            action: "refunds:create".into(),
            resource: Some("orders/1".into()),
            context: Default::default(),
            challenge: "c".into(),
            domain: "d".into(),
            format: crate::service::presentations::Format::LdpVp,
            expires_in: None,
        };
        assert!(refused(s2.present(&agent, req).await), "a presentation was signed under a revoked delegation");
        // The agent record and the tenant were not touched: they open.
        s2.get_agent(&w.admin, t, &w.agent).await.unwrap();

        // The status page the revocation created for its bit, removed again.
        let s3 = w.write_back(&pages, &pages_before).await;
        assert!(refused(s3.status_list_credential(t, "r1").await), "the status list was rolled back");

        // A deleted token, its record and index rows written back.
        let auditor = s.create_tenant_token(&w.admin, t, TokenRole::Auditor, None).await.unwrap();
        let token_key = keys::token(t, auditor.id.as_str());
        let token_rows = [w.copy(&token_key).await, w.copy(b"th/").await, w.copy(format!("t/{t}/th/").as_bytes()).await].concat();
        let bearer = auditor.token.reveal_once();
        s.authenticate(&bearer).await.unwrap();
        s.delete_tenant_token(&w.admin, t, &auditor.id).await.unwrap();
        let s4 = w.write_back(&token_key, &token_rows).await;
        let r = s4.authenticate(&bearer).await;
        assert!(r.is_err(), "a deleted token works again: {r:?}");
    }

    /// A read that began before a newer root was seen may return the older root: no
    /// rollback (the store answered with what was current then). Two requests on one node
    /// (or one on each of two nodes) reading and writing the same tenant do this; refusing
    /// it answered 500 (`kill9_of_one_node_under_mixed_load` under load). A root older than
    /// one seen *before* the read began is still refused.
    #[test]
    fn a_read_overtaken_by_a_newer_root_is_no_rollback() {
        let tm = TenantManifest::default();
        let root = |epoch| {
            let mut r = Root::new();
            r.incarnation = 7;
            r.epoch = epoch;
            Arc::new(Loaded { stored: vec![epoch as u8], root: r })
        };
        let slow_read = tm.floor().unwrap(); // began before epoch 23 was seen
        let fast_read = tm.floor().unwrap();
        tm.admit(root(23), fast_read).unwrap();
        let older = tm.admit(root(22), slow_read).expect("a read overtaken by a newer root is not a rollback");
        assert_eq!(older.root.epoch, 22);
        assert_eq!(tm.root().map(|l| l.root.epoch), Some(23), "the older root does not replace the latest");
        let late_read = tm.floor().unwrap(); // began after epoch 23 was seen
        let refused = tm.admit(root(22), late_read);
        assert!(matches!(refused, Err(ServiceError::Internal(ref d)) if d.contains("rolled back")), "{refused:?}");
    }

    /// What the manifest does not stop, stated as a test: an older copy of a tenant's whole
    /// state (records, nodes and root together) opens in a process that has not seen the
    /// newer root. A process that has seen it refuses the older root.
    #[tokio::test]
    async fn a_whole_earlier_state_is_refused_only_by_a_process_that_saw_a_later_one() {
        let w = world().await;
        let (t, s) = (&w.t, &w.s);
        let prefix = keys::tenant_prefix(t);
        let snapshot = w.copy(&prefix).await;
        s.change_credential_status(&w.admin, t, &w.delegation, StatusChange::Revoke).await.unwrap();
        // Everything of the tenant written back as it was: consistent with itself.
        let fresh = w.write_back(&prefix, &snapshot).await;
        assert!(!fresh.get_credential(&w.admin, t, &w.delegation).await.unwrap().revoked, "the documented limit");
        // The process that made the revocation remembers the later root.
        s.keys.evict_all();
        let r = s.get_credential(&w.admin, t, &w.delegation).await;
        assert!(matches!(r, Err(ServiceError::Internal(ref d)) if d.contains("rolled back")), "{r:?}");
    }

    /// A store from before manifests: every tenant gets one built from its records as they
    /// are (the upgrade), and from then on a missing manifest fails closed.
    #[tokio::test]
    async fn manifests_are_built_for_older_stores_and_required_after() {
        let w = world().await;
        let t = &w.t;
        let manifest: Vec<Vec<u8>> = [w.copy(&keys::manifest_root(t)).await, w.copy(format!("t/{t}/mt/").as_bytes()).await]
            .concat()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let drop_manifest = || async {
            let mut txn = Txn::new();
            for k in &manifest {
                txn.delete(k.clone());
            }
            w.store.commit(txn).await.unwrap();
        };
        drop_manifest().await;
        let older = w.write_back(b"-", &[]).await;
        assert!(older.get_agent(&w.admin, t, &w.agent).await.is_err(), "no manifest, nothing opens");
        assert_eq!(older.build_missing_manifests().await.unwrap(), 1);
        assert_eq!(older.build_missing_manifests().await.unwrap(), 0, "built once");
        older.get_agent(&w.admin, t, &w.agent).await.unwrap();
        assert!(!older.get_credential(&w.admin, t, &w.delegation).await.unwrap().revoked);
        // The current key's seals before the upgrade were never counted: it rolls over.
        assert!(older.seals_reserved(t, 1).await.unwrap() >= older.settings.seal_limits.rotate_after);
        assert_eq!(older.rotate_worn_data_keys().await.unwrap(), 1);
        older.change_credential_status(&w.admin, t, &w.delegation, StatusChange::Revoke).await.unwrap();
        assert!(older.get_credential(&w.admin, t, &w.delegation).await.unwrap().revoked);
    }

    #[test]
    fn roots_and_nodes_round_trip() {
        let mut root = Root::new();
        root.epoch = 7;
        root.children[3] = [9; 16];
        let back = Root::decode(&root.encode()).unwrap();
        assert_eq!((back.incarnation, back.epoch, back.children[3], back.children[4]), (root.incarnation, 7, [9; 16], EMPTY));
        assert!(Root::decode(&root.encode()[1..]).is_none());
        let mut m = BTreeMap::new();
        m.insert("credential/urn:uuid:1".to_owned(), [1; 16]);
        m.insert("token/abc".to_owned(), [2; 16]);
        let leaf = Node::Leaf(m);
        assert_eq!(Node::decode(DEPTH, &leaf.encode()).unwrap(), leaf);
        let enc = leaf.encode();
        assert!(Node::decode(DEPTH, &enc[..enc.len() - 1]).is_none());
        let inner = Node::Inner((0..16u8).map(|i| [i; 16]).collect());
        assert_eq!(Node::decode(1, &inner.encode()).unwrap(), inner);
        assert!(Node::decode(1, &enc).is_none() || enc.len() == 256);
        assert!(Node::empty(2).is_empty() && Node::empty(DEPTH).is_empty());
    }

    /// A write touches one path, not a share of the whole tenant: what it adds to its
    /// transaction stays small however many records the tenant has.
    #[tokio::test]
    async fn a_write_rewrites_one_path_whatever_the_tenant_size() {
        let w = world().await;
        let (t, s) = (&w.t, &w.s);
        let tk = s.tenant_keys(t).await.unwrap();
        for i in 0..2000 {
            let mut txn = Txn::new();
            txn.put(keys::token(t, &format!("filler{i:05}")), vec![1u8; 8]);
            let staged = s.stage_manifest(t, &tk, &mut txn, false, false).await.unwrap().unwrap();
            s.store.apply(txn).await.unwrap();
            staged.committed();
        }
        let mut txn = Txn::new();
        txn.put(keys::token(t, "one-more"), vec![2u8; 8]);
        let staged = s.stage_manifest(t, &tk, &mut txn, false, false).await.unwrap().unwrap();
        let manifest_bytes: usize = txn
            .ops
            .iter()
            .filter_map(|o| if let Op::Put(k, v) = o { k.windows(3).any(|w| w == b"/mt").then_some(v.len()) } else { None })
            .sum();
        drop(staged);
        assert!(manifest_bytes < 3 * 256 + 200, "{manifest_bytes} bytes of manifest for one record");
    }
}
