//! All secret material lives here: the root key, tenant data keys, the token pepper,
//! Ed25519 private keys and access tokens. Nothing outside this module sees key bytes:
//! callers hold sealed blobs, key versions and public keys.
//!
//! Must never: log, serialize or format a secret; return an error that says *why* a
//! decryption failed (every crypto failure collapses into one opaque [`CryptoError`]).

mod envelope;
mod root;
mod secret;
mod signing;
mod tokens;

pub use envelope::{Aad, BLOB_VERSION, blob_key_version};
pub use root::{KdfParams, KeyCheck, RootKey, RootKeySource};
pub use secret::SecretBytes;
pub use signing::{PublicKey, Signer, verify_strict, verify_strict_cached};
pub use tokens::{AccessToken, TokenHash, TokenPepper};

/// Every cryptographic failure, deliberately opaque: a tampered, truncated, moved or
/// wrongly-keyed blob all look the same to the caller (and to an attacker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cryptographic operation failed")]
pub struct CryptoError;

/// A 256-bit AES-GCM key with its version, used to seal records (tenant data keys) or data
/// keys themselves (the root key).
pub struct DataKey {
    version: u32,
    key: SecretBytes,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("version", &self.version).field("key", &"<redacted>").finish()
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate(version: u32) -> Self {
        Self { version, key: SecretBytes::random(32) }
    }

    /// This key's version (stored in clear next to what it seals).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals `plaintext` so that it only opens under this key and the same `aad`.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        envelope::seal(&self.key, self.version, aad, plaintext)
    }

    /// Opens a blob sealed by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &Aad<'_>, blob: &[u8]) -> Result<SecretBytes, CryptoError> {
        envelope::open(&self.key, self.version, aad, blob)
    }

    /// Wraps this key under `wrapping` (the root key) for storage.
    pub fn wrap(&self, wrapping: &DataKey, aad: &Aad<'_>) -> Vec<u8> {
        wrapping.seal(aad, self.key.expose())
    }

    /// Unwraps a key previously wrapped with [`DataKey::wrap`].
    pub fn unwrap_from(wrapping: &DataKey, version: u32, aad: &Aad<'_>, blob: &[u8]) -> Result<Self, CryptoError> {
        let key = wrapping.open(aad, blob)?;
        if key.len() != 32 {
            return Err(CryptoError);
        }
        Ok(Self { version, key })
    }

    /// Seals a new Ed25519 private key under this data key and returns the signer with it.
    pub fn seal_signer(&self, aad: &Aad<'_>, signer: &Signer) -> Vec<u8> {
        self.seal(aad, signer.seed().expose())
    }

    /// Opens a sealed Ed25519 private key.
    pub fn open_signer(&self, aad: &Aad<'_>, blob: &[u8]) -> Result<Signer, CryptoError> {
        let seed = self.open(aad, blob)?;
        Signer::from_seed(&seed)
    }
}

#[cfg(test)]
#[path = "crypto_props.rs"]
mod fuzz;
