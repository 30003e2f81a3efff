//! The key-check file `DATA/keycheck.json`: which root key (version) opens this data
//! directory, the argon2id parameters of a passphrase, and a known plaintext sealed under
//! the root key. It is read before the store is opened, and rewriting it (atomically) is
//! the commit point of a root-key rotation.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::crypto::{KdfParams, RootKey};
use crate::error::SigilError;

/// File name inside the data directory.
pub const KEYCHECK_FILE: &str = "keycheck.json";
/// Store format version.
pub const FORMAT: u32 = 1;

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
    let kc = KeyCheckFile { format: FORMAT, root_version: rk.version(), kdf, check: STANDARD.encode(rk.key_check()) };
    let bytes = serde_json::to_vec_pretty(&kc).map_err(startup)?;
    write_private_file(&data.join(KEYCHECK_FILE), &bytes)
}
