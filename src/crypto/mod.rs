//! All secret material lives here: the root key, tenant data keys, the token pepper,
//! Ed25519 private keys and access tokens. Nothing outside this module sees key bytes:
//! callers hold sealed blobs, key versions and public keys.
//!
//! Must never: log, serialize or format a secret; return an error that says *why* a
//! decryption failed (every crypto failure collapses into one opaque [`CryptoError`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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

/// A data key refused to seal: the seals granted to it are spent ([`SealMeter::grant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the data key's granted seals are spent")]
pub struct SealsSpent;

/// The seals a data key may still make, shared by every copy of that key in the process
/// (a key set reloaded after a cache eviction seals on the same grant). Granted by the
/// caller in blocks it reserved durably; every seal takes one with an atomic decrement.
#[derive(Debug, Clone, Default)]
pub struct SealMeter(Arc<AtomicI64>);

impl SealMeter {
    fn unlimited() -> Self {
        Self(Arc::new(AtomicI64::new(i64::MAX)))
    }

    /// Allows `n` more seals (a block the caller reserved durably).
    pub fn grant(&self, n: u64) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| Some(l.saturating_add(n)));
    }

    /// Seals still allowed.
    pub fn left(&self) -> u64 {
        u64::try_from(self.0.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Takes one seal: one atomic decrement. Signed, so that a seal racing others below
    /// zero sees it overdrew and gives its unit back.
    fn take(&self) -> Result<(), SealsSpent> {
        if self.0.fetch_sub(1, Ordering::AcqRel) <= 0 {
            self.0.fetch_add(1, Ordering::AcqRel);
            return Err(SealsSpent);
        }
        Ok(())
    }
}

/// A 256-bit AES-GCM key with its version, used to seal records (tenant data keys) or data
/// keys themselves (the root key).
///
/// AES-GCM with random 96-bit nonces must not seal more than 2^32 messages under one key
/// (NIST SP 800-38D, 8.3: beyond that the chance of a repeated nonce, which reveals the
/// authentication key, passes 2^-32). So a data key seals only as often as its
/// [`SealMeter`] allows, and the service grants the meter only what it reserved in the
/// store. The root key seals rarely (data-key wraps, the pepper, the key check, operator
/// tokens) and is not metered.
pub struct DataKey {
    version: u32,
    key: SecretBytes,
    meter: SealMeter,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("version", &self.version).field("key", &"<redacted>").finish()
    }
}

impl DataKey {
    /// A fresh random key, with no seals granted yet.
    pub fn generate(version: u32) -> Self {
        Self::metered(version, SecretBytes::random(32))
    }

    fn metered(version: u32, key: SecretBytes) -> Self {
        Self { version, key, meter: SealMeter::default() }
    }

    /// A key that seals without a grant: the root key only.
    fn unmetered(version: u32, key: SecretBytes) -> Self {
        Self { version, key, meter: SealMeter::unlimited() }
    }

    /// This key sealing on `meter` (the one other copies of the same key use).
    pub fn with_meter(mut self, meter: SealMeter) -> Self {
        self.meter = meter;
        self
    }

    /// The meter this key seals on.
    pub fn meter(&self) -> &SealMeter {
        &self.meter
    }

    /// Allows `n` more seals (see [`SealMeter::grant`]).
    pub fn grant(&self, n: u64) {
        self.meter.grant(n);
    }

    /// Seals this key may still make.
    pub fn seals_left(&self) -> u64 {
        self.meter.left()
    }

    /// Tells this key from other keys of the same tenant and version (a tenant deleted and
    /// created again): a hash of the key under its own label, truncated to 64 bits, so it
    /// says nothing about the key. Only ever kept in memory.
    pub fn fingerprint(&self) -> u64 {
        use sha2::{Digest, Sha256};
        let h = Sha256::new().chain_update(b"sigil/data-key-fingerprint/v1").chain_update(self.key.expose()).finalize();
        h.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
    }

    /// This key's version (stored in clear next to what it seals).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals `plaintext` so that it only opens under this key and the same `aad`; refused
    /// once the seals granted to this key are spent.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealsSpent> {
        self.meter.take()?;
        Ok(envelope::seal(&self.key, self.version, aad, plaintext))
    }

    /// Seals under the root key, which is not metered.
    fn seal_unmetered(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        envelope::seal(&self.key, self.version, aad, plaintext)
    }

    /// Opens a blob sealed by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &Aad<'_>, blob: &[u8]) -> Result<SecretBytes, CryptoError> {
        envelope::open(&self.key, self.version, aad, blob)
    }

    /// Wraps this key under `wrapping` (the root key) for storage.
    fn wrap(&self, wrapping: &DataKey, aad: &Aad<'_>) -> Vec<u8> {
        wrapping.seal_unmetered(aad, self.key.expose())
    }

    /// Unwraps a key previously wrapped with [`DataKey::wrap`], with no seals granted.
    fn unwrap_from(wrapping: &DataKey, version: u32, aad: &Aad<'_>, blob: &[u8]) -> Result<Self, CryptoError> {
        let key = wrapping.open(aad, blob)?;
        if key.len() != 32 {
            return Err(CryptoError);
        }
        Ok(Self::metered(version, key))
    }

    /// Seals an Ed25519 private key under this data key.
    pub fn seal_signer(&self, aad: &Aad<'_>, signer: &Signer) -> Result<Vec<u8>, SealsSpent> {
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
