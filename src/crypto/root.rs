//! The root key: the top of the key hierarchy. It is never stored in the data directory
//! unless the operator lets Sigil generate a dev key file; it wraps tenant data keys and
//! the token pepper, and a sealed key-check record proves at start-up that it is the right
//! one before anything is read or written.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{Aad, CryptoError, DataKey, SecretBytes, TokenPepper};

const SYSTEM: &str = "_system";
const CHECK_PLAINTEXT: &[u8] = b"sigil key check v1";

/// Where the root key comes from.
pub enum RootKeySource {
    /// 32 raw bytes in a file.
    File(std::path::PathBuf),
    /// A passphrase stretched with argon2id (salt and parameters live in store metadata).
    Passphrase(SecretBytes),
}

impl std::fmt::Debug for RootKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            RootKeySource::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
        }
    }
}

/// argon2id parameters, stored in clear in store metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Random salt, base64.
    pub salt: String,
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl KdfParams {
    /// Fresh parameters for a new store: 64 MiB, 3 passes (above OWASP's argon2id floor).
    pub fn generate() -> Self {
        let salt = SecretBytes::random(16);
        Self { salt: STANDARD.encode(salt.expose()), m_kib: 64 * 1024, t: 3, p: 1 }
    }
}

/// The key-check record: a known plaintext sealed under the root key.
pub struct KeyCheck;

/// The loaded root key.
pub struct RootKey {
    key: DataKey,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey").field("version", &self.key.version()).finish_non_exhaustive()
    }
}

impl RootKey {
    /// A new random root key's bytes (for `root.key` in a dev data dir, or a rotation).
    pub fn generate_bytes() -> SecretBytes {
        SecretBytes::random(32)
    }

    /// Stretches a passphrase with argon2id. CPU- and memory-heavy: call on a blocking thread.
    pub fn derive(passphrase: &SecretBytes, params: &KdfParams) -> Result<SecretBytes, String> {
        let salt = STANDARD.decode(&params.salt).map_err(|_| "stored KDF salt is not base64".to_owned())?;
        let p = Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|e| format!("bad KDF parameters: {e}"))?;
        let mut out = vec![0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
            .hash_password_into(passphrase.expose(), &salt, &mut out)
            .map_err(|e| format!("argon2id failed: {e}"))?;
        Ok(SecretBytes::new(out))
    }

    /// Builds the root key from its bytes and the version recorded in the store.
    pub fn from_bytes(bytes: SecretBytes, version: u32) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError);
        }
        Ok(Self { key: DataKey::unmetered(version, bytes) })
    }

    /// This root key's version.
    pub fn version(&self) -> u32 {
        self.key.version()
    }

    /// The sealed key-check record for this key in a data directory of `format`. The
    /// format is bound into it, so a key-check file edited to claim another format no
    /// longer opens (an older format makes the next start upgrade the store, trusting what
    /// it holds at that moment).
    pub fn key_check(&self, format: u32) -> Vec<u8> {
        let id = Self::check_id(format);
        self.key.seal_unmetered(&Aad { tenant: SYSTEM, kind: "key-check", id: &id }, CHECK_PLAINTEXT)
    }

    /// Proves that `blob` was made by this very key, for a directory of `format`.
    pub fn verify_key_check(&self, format: u32, blob: &[u8]) -> Result<(), CryptoError> {
        let id = Self::check_id(format);
        let pt = self.key.open(&Aad { tenant: SYSTEM, kind: "key-check", id: &id }, blob)?;
        if pt.expose() == CHECK_PLAINTEXT { Ok(()) } else { Err(CryptoError) }
    }

    /// Format 1 (the first) was sealed without its number.
    fn check_id(format: u32) -> String {
        if format <= 1 { "root".to_owned() } else { format!("root/format-{format}") }
    }

    /// Wraps a tenant data key.
    pub fn wrap_data_key(&self, tenant: &str, dk: &DataKey) -> Vec<u8> {
        let id = dk.version().to_string();
        dk.wrap(&self.key, &Aad { tenant, kind: "data-key", id: &id })
    }

    /// Unwraps a tenant data key.
    pub fn unwrap_data_key(&self, tenant: &str, version: u32, blob: &[u8]) -> Result<DataKey, CryptoError> {
        let id = version.to_string();
        DataKey::unwrap_from(&self.key, version, &Aad { tenant, kind: "data-key", id: &id }, blob)
    }

    /// Wraps the token pepper.
    pub fn wrap_pepper(&self, pepper: &TokenPepper) -> Vec<u8> {
        self.key.seal_unmetered(&Aad { tenant: SYSTEM, kind: "pepper", id: "tokens" }, pepper.secret().expose())
    }

    /// Unwraps the token pepper.
    pub fn unwrap_pepper(&self, blob: &[u8]) -> Result<TokenPepper, CryptoError> {
        let s = self.key.open(&Aad { tenant: SYSTEM, kind: "pepper", id: "tokens" }, blob)?;
        Ok(TokenPepper::from_secret(s))
    }

    /// Seals a system-level record (operator tokens) directly under the root key.
    pub fn seal_system(&self, kind: &str, id: &str, plaintext: &[u8]) -> Vec<u8> {
        self.key.seal_unmetered(&Aad { tenant: SYSTEM, kind, id }, plaintext)
    }

    /// Opens a system-level record.
    pub fn open_system(&self, kind: &str, id: &str, blob: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.key.open(&Aad { tenant: SYSTEM, kind, id }, blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_check_detects_wrong_key() {
        let rk = RootKey::from_bytes(SecretBytes::random(32), 1).unwrap();
        let check = rk.key_check(2);
        rk.verify_key_check(2, &check).unwrap();
        let other = RootKey::from_bytes(SecretBytes::random(32), 1).unwrap();
        assert!(other.verify_key_check(2, &check).is_err());
        // The format is bound in: a check made for one format fails for another.
        assert!(rk.verify_key_check(1, &check).is_err());
        rk.verify_key_check(1, &rk.key_check(1)).unwrap();
    }

    #[test]
    fn passphrase_derivation_is_deterministic_per_salt() {
        let mut params = KdfParams::generate();
        params.m_kib = 1024; // keep the unit test fast; production uses 64 MiB
        let pw = SecretBytes::new(b"correct horse".to_vec());
        let a = RootKey::derive(&pw, &params).unwrap();
        assert_eq!(a, RootKey::derive(&pw, &params).unwrap());
        assert_ne!(a, RootKey::derive(&SecretBytes::new(b"wrong horse".to_vec()), &params).unwrap());
        let other_salt = KdfParams { m_kib: 1024, ..KdfParams::generate() };
        assert_ne!(a, RootKey::derive(&pw, &other_salt).unwrap());
    }

    #[test]
    fn data_keys_are_bound_to_their_tenant() {
        let rk = RootKey::from_bytes(SecretBytes::random(32), 1).unwrap();
        let dk = DataKey::generate(7);
        dk.grant(1);
        let wrapped = rk.wrap_data_key("acme", &dk);
        let back = rk.unwrap_data_key("acme", 7, &wrapped).unwrap();
        let aad = Aad { tenant: "acme", kind: "x", id: "y" };
        assert_eq!(back.open(&aad, &dk.seal(&aad, b"hi").unwrap()).unwrap().expose(), b"hi");
        assert!(rk.unwrap_data_key("evil", 7, &wrapped).is_err());
        assert!(rk.unwrap_data_key("acme", 8, &wrapped).is_err());
    }
}
