//! The key space. Keys hold only random ids, tenant slugs, hashes and counters, never user
//! content. One place builds them so prefixes cannot drift between writers and scanners.

/// Store metadata: format version, KDF parameters, key check, root key version, pepper,
/// challenge lease.
pub mod meta {
    pub const FORMAT: &[u8] = b"meta/format";
    pub const KDF: &[u8] = b"meta/kdf";
    pub const KEY_CHECK: &[u8] = b"meta/key-check";
    pub const ROOT_VERSION: &[u8] = b"meta/root-version";
    pub const PEPPER: &[u8] = b"meta/pepper";
    /// The challenge lease: floor and lease end (ms since the epoch, two i64 big-endian).
    /// See `service::verification`.
    pub const CHALLENGE_LEASE: &[u8] = b"meta/challenge-lease";
    /// On a shared store: the root key version wraps must be made under (u32 big-endian),
    /// set by a root-key rotation's first step; absent until one ran. Every new wrap is
    /// conditional on it, so a node still running with the previous root refuses to wrap.
    pub const WRAP_ROOT_VERSION: &[u8] = b"meta/wrap-root-version";
}

/// A cache scope's generation (a tenant id, or `_op` for operator tokens): 16 random
/// bytes, rewritten in the transaction of every change that invalidates cached entries of
/// the scope, when the store is shared by several processes (see
/// `service::kernel::coherence`). Outside the tenant prefix: a tenant's deletion bumps it
/// in its first step and removes it only when every record is gone (an absent record is
/// never trusted for a tenant).
pub fn cache_generation(scope: impl AsRef<str>) -> Vec<u8> {
    let scope = scope.as_ref();
    format!("cg/{scope}").into_bytes()
}
pub const CACHE_GENERATION_PREFIX: &[u8] = b"cg/";

/// Failed authentications from one client address (IPv4, or an IPv6 /64, in hex) in one
/// window of [`AUTH_FAILURE_WINDOW_SECS`] (its start, seconds since the epoch): a plaintext
/// u32 counter, big-endian, compare-and-set. Only on a shared store (several nodes).
pub fn auth_failures(address: &str, window: i64) -> Vec<u8> {
    format!("af/{address}/{window:016x}").into_bytes()
}
pub const AUTH_FAILURES_PREFIX: &[u8] = b"af/";
/// The window auth failures are counted in on a shared store.
pub const AUTH_FAILURE_WINDOW_SECS: i64 = 60;

/// An address throttled for failed authentications, until (seconds since the epoch,
/// plaintext i64 big-endian). Only on a shared store.
pub fn auth_block(address: &str) -> Vec<u8> {
    format!("ab/{address}").into_bytes()
}
pub const AUTH_BLOCK_PREFIX: &[u8] = b"ab/";

/// The recent denials of one agent (plaintext: i64 big-endian seconds since the epoch, one
/// after another, oldest first), for automatic suspension across nodes. Compare-and-set.
/// Only on a shared store.
pub fn denials(tenant: impl AsRef<str>, agent: impl AsRef<str>) -> Vec<u8> {
    let (tenant, agent) = (tenant.as_ref(), agent.as_ref());
    format!("dn/{tenant}/{agent}").into_bytes()
}
pub const DENIALS_PREFIX: &[u8] = b"dn/";

/// The denial counts of every agent of `tenant`.
pub fn denials_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    format!("dn/{}/", tenant.as_ref()).into_bytes()
}

/// Index of tenants (value: empty). Listing scans this prefix.
pub fn tenant_index(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("tn/{tenant}").into_bytes()
}
pub const TENANT_INDEX_PREFIX: &[u8] = b"tn/";

/// Tenants being deleted (crypto-shredded, records not yet all removed).
pub fn tenant_tombstone(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("tdel/{tenant}").into_bytes()
}
pub const TENANT_TOMBSTONE_PREFIX: &[u8] = b"tdel/";

/// Everything a tenant owns lives under this prefix.
pub fn tenant_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/").into_bytes()
}

/// The tenant record (sealed).
pub fn tenant_record(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/meta").into_bytes()
}

/// Current data key version of a tenant (plaintext u32).
pub fn data_key_current(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/dk-current").into_bytes()
}

/// A wrapped data key version. Kept outside the tenant prefix so crypto-shredding can
/// delete every version in one small transaction before the bulk removal.
pub fn data_key(tenant: impl AsRef<str>, version: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("dk/{tenant}/{version:08x}").into_bytes()
}
pub fn data_key_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("dk/{tenant}/").into_bytes()
}

/// Seals reserved under one data key version of a tenant, all processes together
/// (plaintext u64, big-endian: a counter). Grows by whole blocks, compare-and-set.
pub fn seal_count(tenant: impl AsRef<str>, version: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/sc/{version:08x}").into_bytes()
}

/// A tenant's record manifest root (sealed): see `service::kernel::manifest`.
pub fn manifest_root(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/mr").into_bytes()
}

/// A node of a tenant's record manifest below its root, by its path (hex digits of the
/// names' hashes): inner nodes hold their children's digests, leaves the digests of the
/// records named in them. Plain: each node's digest is in its parent.
pub fn manifest_node(tenant: impl AsRef<str>, path: &[u8]) -> Vec<u8> {
    let tenant = tenant.as_ref();
    let path: String = path.iter().map(|n| char::from_digit(u32::from(*n & 15), 16).unwrap_or('0')).collect();
    format!("t/{tenant}/mt/{path}").into_bytes()
}

/// An agent record (sealed).
pub fn agent(tenant: impl AsRef<str>, agent: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    let agent = agent.as_ref();
    format!("t/{tenant}/a/{agent}").into_bytes()
}
pub fn agent_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/a/").into_bytes()
}

/// A sealed private key: `owner` is an agent id or `issuer`.
pub fn private_key(tenant: impl AsRef<str>, owner: &str, version: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/k/{owner}/{version:08x}").into_bytes()
}

/// A sealed token record.
pub fn token(tenant: impl AsRef<str>, token_id: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/tok/{token_id}").into_bytes()
}

/// Global token index: HMAC(token) → `{tenant}/{token_id}` (both random/slug ids).
pub fn token_hash(hash_hex: &str) -> Vec<u8> {
    format!("th/{hash_hex}").into_bytes()
}

/// Per-tenant list of its token hashes, so tenant deletion can drop the global index rows.
pub fn tenant_token_hash(tenant: impl AsRef<str>, hash_hex: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/th/{hash_hex}").into_bytes()
}
pub fn tenant_token_hash_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/th/").into_bytes()
}

/// Operator tokens (sealed under the root key).
pub fn operator_token(token_id: &str) -> Vec<u8> {
    format!("op/{token_id}").into_bytes()
}

/// A sealed credential.
pub fn credential(tenant: impl AsRef<str>, credential: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    let credential = credential.as_ref();
    format!("t/{tenant}/c/{credential}").into_bytes()
}

/// Index of sub-delegations by parent: `t/{tenant}/dch/{parent}/{child}`, both random
/// credential record ids, empty value. Read to list a delegation's children and to revoke
/// a parent's descendants in the parent's own transaction.
pub fn delegation_child(tenant: impl AsRef<str>, parent: &str, child: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/dch/{parent}/{child}").into_bytes()
}

/// The prefix of [`delegation_child`] rows of one parent.
pub fn delegation_children(tenant: impl AsRef<str>, parent: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/dch/{parent}/").into_bytes()
}

/// Index of credentials issued with status through the VC-API, by their own `id` (a keyed
/// hash of it, hex: the id is the issuer's choice and may carry content). Value: the
/// credential's record id.
pub fn issued_credential_id(tenant: impl AsRef<str>, id_hash_hex: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/vcid/{id_hash_hex}").into_bytes()
}

/// Current status list number of a purpose (`r` revocation, `s` suspension).
pub fn status_current(tenant: impl AsRef<str>, purpose: char) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/sl/{purpose}/cur").into_bytes()
}

/// Allocated-entries counter of one list.
pub fn status_count(tenant: impl AsRef<str>, purpose: char, list: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/sl/{purpose}/{list:08x}/n").into_bytes()
}

/// Allocation of one index (value: the credential id); never deleted, so never reused.
pub fn status_index(tenant: impl AsRef<str>, purpose: char, list: u32, index: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/sl/{purpose}/{list:08x}/i/{index:08x}").into_bytes()
}

/// One sealed page of status bits.
pub fn status_page(tenant: impl AsRef<str>, purpose: char, list: u32, page: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/sl/{purpose}/{list:08x}/p/{page:04x}").into_bytes()
}

/// One sealed audit entry.
pub fn audit_entry(tenant: impl AsRef<str>, seq: u64) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/au/{seq:016x}").into_bytes()
}
pub fn audit_prefix(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/au/").into_bytes()
}

/// The chain head `{seq}:{hash}:{mac}` (plaintext: a counter, a hash and a keyed hash
/// that authenticates both for this tenant).
pub fn audit_head(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/au-head").into_bytes()
}

/// The seq of the tenant's latest checkpoint entry (plaintext decimal: a counter).
pub fn audit_latest_checkpoint(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("t/{tenant}/au-cp").into_bytes()
}

/// A used (holder, domain, challenge), by hash (`service::verification`); value: expiry
/// (unix seconds, big endian).
pub fn replay(hash_hex: &str) -> Vec<u8> {
    format!("rp/{hash_hex}").into_bytes()
}
pub const REPLAY_PREFIX: &[u8] = b"rp/";

/// A tenant whose records are being re-sealed under a new data key (value: target version).
pub fn data_key_rotation(tenant: impl AsRef<str>) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("dkr/{tenant}").into_bytes()
}
pub const DATA_KEY_ROTATION_PREFIX: &[u8] = b"dkr/";

/// A data key wrapped under the *next* root key, during a root-key rotation.
pub fn data_key_next(tenant: impl AsRef<str>, version: u32) -> Vec<u8> {
    let tenant = tenant.as_ref();
    format!("dkn/{tenant}/{version:08x}").into_bytes()
}
pub const DATA_KEY_NEXT_PREFIX: &[u8] = b"dkn/";
pub const DATA_KEY_PREFIX: &[u8] = b"dk/";
pub const OPERATOR_TOKEN_PREFIX: &[u8] = b"op/";

/// An operator token record sealed under the next root key.
pub fn operator_token_next(token_id: &str) -> Vec<u8> {
    format!("opn/{token_id}").into_bytes()
}
pub const OPERATOR_TOKEN_NEXT_PREFIX: &[u8] = b"opn/";

/// The token pepper wrapped under root key `version`.
pub fn pepper(root_version: u32) -> Vec<u8> {
    format!("meta/pepper/{root_version:08x}").into_bytes()
}

/// The (kind, id) a sealed record under a tenant's prefix is bound to, from its key; `None`
/// for the plaintext entries (counters, hashes, allocation rows).
pub fn sealed_identity(tenant: impl AsRef<str>, key: &[u8]) -> Option<(&'static str, String)> {
    let tenant = tenant.as_ref();
    let k = std::str::from_utf8(key).ok()?;
    let rest = k.strip_prefix(&format!("t/{tenant}/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    match parts.as_slice() {
        ["meta"] => Some(("tenant", tenant.to_owned())),
        ["a", a] => Some(("agent", (*a).to_owned())),
        ["k", owner, v] => Some(("private-key", format!("{owner}/{}", hex(v)?))),
        ["tok", id] => Some(("token", (*id).to_owned())),
        ["c", id] => Some(("credential", (*id).to_owned())),
        ["sl", p, list, "p", page] => Some(("status-page", format!("{p}/{}/{}", hex(list)?, hex(page)?))),
        ["au", seq] => Some(("audit", hex(seq)?.to_string())),
        ["bd", credential, day] => Some(("budget", format!("{credential}/{day}"))),
        ["ap", id] => Some(("approval", (*id).to_owned())),
        _ => None,
    }
}

/// Amount spent under a delegation on one local day: a sealed `budget` record (stores
/// written before budgets were sealed may still hold a plaintext decimal).
pub fn budget(tenant: impl AsRef<str>, credential: impl AsRef<str>, day: &str) -> Vec<u8> {
    let tenant = tenant.as_ref();
    let credential = credential.as_ref();
    format!("t/{tenant}/bd/{credential}/{day}").into_bytes()
}

/// A sealed `approval` record.
pub fn approval(tenant: impl AsRef<str>, id: &str) -> Vec<u8> {
    format!("t/{}/ap/{id}", tenant.as_ref()).into_bytes()
}

/// One open (pending) approval request of an agent → its expiry (unix seconds, 8 bytes
/// big-endian): counted against the per-agent cap, removed when it is decided or (by
/// housekeeping) once expired.
pub fn approval_open(tenant: impl AsRef<str>, agent: &str, id: &str) -> Vec<u8> {
    format!("t/{}/apo/{agent}/{id}", tenant.as_ref()).into_bytes()
}

/// The prefix of an agent's open approval requests (`None`: every agent's).
pub fn approval_open_prefix(tenant: impl AsRef<str>, agent: Option<&str>) -> Vec<u8> {
    match agent {
        Some(a) => format!("t/{}/apo/{a}/", tenant.as_ref()).into_bytes(),
        None => format!("t/{}/apo/", tenant.as_ref()).into_bytes(),
    }
}

/// The latest approval for one request: a keyed hash of the request hash → the approval
/// id in clear (the key never shows what was asked).
pub fn approval_index(tenant: impl AsRef<str>, keyed_hash_hex: &str) -> Vec<u8> {
    format!("t/{}/apr/{keyed_hash_hex}", tenant.as_ref()).into_bytes()
}
