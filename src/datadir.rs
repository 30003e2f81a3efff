//! The data directory: every file Sigil reads or writes outside the store engine itself
//! lives here, so the rest of the code does no file I/O. It owns the key-check file
//! `DATA/keycheck.json` (which root key opens this directory, the argon2id parameters of a
//! passphrase, and a known plaintext sealed under the root key; rewriting it atomically is
//! the commit point of a root-key rotation; a store that keeps the key check itself, as
//! PostgreSQL does, holds the same bytes instead), the private directory and file modes (0700,
//! 0600), the root key files, and the generated operator token file.
//!
//! Must never: interpret what it reads beyond its own file formats (key bytes go straight
//! into `crypto`), log file contents, or leave a half-written file behind (every write is
//! temp file, fsync, rename, fsync of the directory). The async helpers run the blocking
//! calls on tokio's blocking pool, so request handlers never block a worker on disk.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::crypto::{KdfParams, RootKey, SecretBytes};
use crate::error::SigilError;
use crate::store::Store;

/// File name inside the data directory.
pub const KEYCHECK_FILE: &str = "keycheck.json";
/// Where a new store's operator token is written when `SIGIL_BOOTSTRAP_TOKEN` is not set
/// (the development default: whoever can read the data directory holds the operator).
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// Store format version. 2: every tenant has a record manifest (`service::kernel::manifest`);
/// a format-1 directory is upgraded at start-up (`startup::upgrade`).
pub const FORMAT: u32 = 2;

fn startup(msg: impl std::fmt::Display) -> SigilError {
    SigilError::Startup(msg.to_string())
}

/// The key-check file: the authority on which root key opens this data directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCheckFile {
    pub format: u32,
    pub root_version: u32,
    #[serde(default)]
    pub kdf: Option<KdfParams>,
    /// Sealed known plaintext, base64.
    pub check: String,
}

impl KeyCheckFile {
    /// Whether `rk` is the root key this record names: its version, and it opens the check.
    pub fn proves(&self, rk: &RootKey) -> bool {
        self.root_version == rk.version() && STANDARD.decode(&self.check).is_ok_and(|blob| rk.verify_key_check(self.format, &blob).is_ok())
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), SigilError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| startup(format!("cannot write {}: {e}", tmp.display())))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| startup(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| startup(format!("cannot rename into {}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads the key-check file, `None` when absent.
pub fn read_key_check(data: &Path) -> Result<Option<KeyCheckFile>, SigilError> {
    let p = data.join(KEYCHECK_FILE);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| SigilError::Store(format!("{} is corrupt: {e}", p.display())))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SigilError::Store(format!("cannot read {}: {e}", p.display()))),
    }
}

/// Writes the key-check file for `rk` (atomically).
pub fn write_key_check(data: &Path, rk: &RootKey, kdf: Option<KdfParams>) -> Result<(), SigilError> {
    let kc = KeyCheckFile { format: FORMAT, root_version: rk.version(), kdf, check: STANDARD.encode(rk.key_check(FORMAT)) };
    write_key_check_file(data, &kc)
}

fn write_key_check_file(data: &Path, kc: &KeyCheckFile) -> Result<(), SigilError> {
    let bytes = serde_json::to_vec_pretty(kc).map_err(startup)?;
    write_private_file(&data.join(KEYCHECK_FILE), &bytes)
}

/// Creates a directory (and parents) with mode 0700.
pub fn ensure_private_dir(p: &Path) -> Result<(), SigilError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p).map_err(|e| SigilError::Config(format!("cannot create data directory {}: {e}", p.display())))
}

/// Reads a 32-byte root key file. The bytes go straight into a [`SecretBytes`], which
/// zeroizes them on drop.
pub fn read_root_key_file(path: &Path) -> Result<SecretBytes, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read root key file {}: {e}", path.display()))?;
    let bytes = SecretBytes::new(bytes);
    if bytes.len() != 32 {
        return Err(format!("root key file {} must hold exactly 32 raw bytes (has {})", path.display(), bytes.len()));
    }
    Ok(bytes)
}

/// [`read_root_key_file`] on the blocking pool, for request handlers.
pub async fn read_root_key_file_async(path: PathBuf) -> Result<SecretBytes, String> {
    tokio::task::spawn_blocking(move || read_root_key_file(&path)).await.map_err(|e| format!("key file reader failed: {e}"))?
}

/// Writes key bytes to a new file with mode 0600; refuses to overwrite.
pub fn write_new_key_file(path: &Path, bytes: &SecretBytes) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes.expose()).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads any file (a backup, a config-named file) whole.
pub fn read_file(path: &Path) -> Result<Vec<u8>, SigilError> {
    std::fs::read(path).map_err(|e| SigilError::Config(format!("cannot read {}: {e}", path.display())))
}

/// Replaces `path` with `bytes` (mode 0600, atomically), removing an older file first.
pub fn replace_private_file(path: &Path, bytes: &[u8]) -> Result<(), SigilError> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| SigilError::Config(format!("cannot replace {}: {e}", path.display())))?;
    }
    write_private_file(path, bytes)
}

/// Whether `data` already holds a store (a key-check file or a store directory).
pub fn holds_store(data: &Path) -> bool {
    data.join(KEYCHECK_FILE).exists() || data.join("store").exists()
}

/// The raw key-check record, for a backup: the store's when it keeps it (PostgreSQL),
/// otherwise the file in `data`, read on the blocking pool.
pub async fn read_key_check_bytes(store: &dyn Store, data: PathBuf) -> Result<Vec<u8>, String> {
    if store.keeps_key_check() {
        return store.read_key_check().await.map_err(|e| e.to_string())?.ok_or_else(|| "the store holds no key check".to_owned());
    }
    tokio::task::spawn_blocking(move || std::fs::read(data.join(KEYCHECK_FILE)).map_err(|e| format!("cannot read key check: {e}")))
        .await
        .map_err(|e| format!("key check reader failed: {e}"))?
}

/// Parses a key-check record (the file's bytes, or the store's copy of them).
pub fn parse_key_check(bytes: &[u8]) -> Result<KeyCheckFile, SigilError> {
    serde_json::from_slice(bytes).map_err(|e| SigilError::Store(format!("the key-check record is corrupt: {e}")))
}

/// [`read_key_check`], or the store's record when it keeps it; files on the blocking pool.
pub async fn read_key_check_async(store: &dyn Store, data: PathBuf) -> Result<Option<KeyCheckFile>, SigilError> {
    if store.keeps_key_check() {
        let bytes = store.read_key_check().await.map_err(|e| SigilError::Store(e.to_string()))?;
        return bytes.map(|b| parse_key_check(&b)).transpose();
    }
    tokio::task::spawn_blocking(move || read_key_check(&data))
        .await
        .map_err(|e| SigilError::Store(format!("key check reader failed: {e}")))?
}

/// [`write_key_check`] into the store when it keeps the key check, else into the file on
/// the blocking pool. The root key itself stays with the caller: only the sealed check
/// value and the version cross to the blocking thread or the database.
pub async fn write_key_check_async(store: &dyn Store, data: PathBuf, rk: &RootKey, kdf: Option<KdfParams>) -> Result<(), SigilError> {
    let kc = KeyCheckFile { format: FORMAT, root_version: rk.version(), kdf, check: STANDARD.encode(rk.key_check(FORMAT)) };
    if store.keeps_key_check() {
        let bytes = serde_json::to_vec_pretty(&kc).map_err(startup)?;
        return store.write_key_check(bytes).await.map_err(|e| SigilError::Store(e.to_string()));
    }
    tokio::task::spawn_blocking(move || write_key_check_file(&data, &kc))
        .await
        .map_err(|e| SigilError::Store(format!("key check writer failed: {e}")))?
}

/// Whether the generated operator token file is in `data`.
pub fn generated_operator_token_present(data: &Path) -> bool {
    data.join(OPERATOR_TOKEN_FILE).exists()
}

/// Removes the generated operator token file from `data` (on the blocking pool); true when
/// there was one. Called once every operator token is revoked: what it holds is dead.
pub async fn remove_generated_operator_token(data: PathBuf) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || {
        let p = data.join(OPERATOR_TOKEN_FILE);
        match std::fs::remove_file(&p) {
            Ok(()) => {
                if let Ok(d) = std::fs::File::open(&data) {
                    let _ = d.sync_all();
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("cannot remove {}: {e}", p.display())),
        }
    })
    .await
    .map_err(|e| format!("operator token file remover failed: {e}"))?
}
