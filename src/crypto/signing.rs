//! Ed25519 keys. Private keys exist in memory only inside a [`Signer`] (zeroized on drop);
//! verification is always strict (rejects small-order keys and non-canonical signatures).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{CryptoError, SecretBytes};

/// An Ed25519 private key able to sign. Never serialized; sealed by [`super::DataKey`].
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// An Ed25519 public key (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl Signer {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Self {
        Self { key: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    pub(super) fn from_seed(seed: &SecretBytes) -> Result<Self, CryptoError> {
        let bytes: &[u8; 32] = seed.expose().try_into().map_err(|_| CryptoError)?;
        Ok(Self { key: SigningKey::from_bytes(bytes) })
    }

    /// For known-answer tests only: a signer from a published test seed.
    #[cfg(test)]
    pub fn from_test_seed(seed: [u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(&seed) }
    }

    pub(super) fn seed(&self) -> SecretBytes {
        SecretBytes::new(self.key.to_bytes().to_vec())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// Strict Ed25519 verification.
pub fn verify_strict(public: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let vk = VerifyingKey::from_bytes(&public.0).map_err(|_| CryptoError)?;
    let sig = Signature::from_slice(sig).map_err(|_| CryptoError)?;
    vk.verify_strict(msg, &sig).map_err(|_| CryptoError)
}

/// [`verify_strict`], remembering successes: a (key, message, signature) triple that
/// verified once is accepted again without the curve arithmetic.
///
/// Why: every presentation carries the same two credentials, so a verifier would otherwise
/// spend two of its three signature checks re-proving what it proved a moment ago. The
/// result of strict Ed25519 verification depends on nothing but these three inputs, so a
/// remembered success is exactly the answer a recomputation would give. Only successes are
/// kept (a failure is always recomputed), keyed by SHA-256 over all three inputs; what a
/// credential's signature means (its issuer's key being current, its status, its validity
/// window) is still checked on every verification by the callers. Memory is bounded: two
/// generations of [`VERIFIED_GENERATION`] entries, the older dropped when the newer fills.
pub fn verify_strict_cached(public: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let mut h = Sha256::new();
    h.update(public.0);
    h.update((sig.len() as u64).to_be_bytes());
    h.update(sig);
    h.update(msg);
    let key: [u8; 32] = h.finalize().into();
    if VERIFIED.lock().is_ok_and(|v| v.contains(&key)) {
        return Ok(());
    }
    verify_strict(public, msg, sig)?;
    if let Ok(mut v) = VERIFIED.lock() {
        v.insert(key);
    }
    Ok(())
}

/// Entries per generation of the verified-signature cache (32 bytes each).
const VERIFIED_GENERATION: usize = 32_768;

static VERIFIED: LazyLock<Mutex<Generations>> = LazyLock::new(Default::default);

/// Two generations: lookups see both; inserts go to the newer; a full newer one becomes the
/// older, so recently used entries survive a turnover.
#[derive(Default)]
struct Generations {
    newer: HashSet<[u8; 32]>,
    older: HashSet<[u8; 32]>,
}

impl Generations {
    fn contains(&self, k: &[u8; 32]) -> bool {
        self.newer.contains(k) || self.older.contains(k)
    }

    fn insert(&mut self, k: [u8; 32]) {
        if self.newer.len() >= VERIFIED_GENERATION {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_verification_gives_the_same_answers() {
        let s = Signer::generate();
        let sig = s.sign(b"cached msg");
        verify_strict_cached(&s.public(), b"cached msg", &sig).unwrap();
        // A remembered success: the same triple again.
        verify_strict_cached(&s.public(), b"cached msg", &sig).unwrap();
        // Any input changed is a different triple, verified (and refused) from scratch.
        assert!(verify_strict_cached(&s.public(), b"cached msh", &sig).is_err());
        assert!(verify_strict_cached(&Signer::generate().public(), b"cached msg", &sig).is_err());
        let mut bad = sig;
        bad[5] ^= 1;
        assert!(verify_strict_cached(&s.public(), b"cached msg", &bad).is_err());
        // Failures are not remembered as successes either way round.
        assert!(verify_strict_cached(&s.public(), b"cached msg", &bad).is_err());
    }

    #[test]
    fn cache_generations_stay_bounded() {
        let mut g = Generations::default();
        for i in 0..(2 * VERIFIED_GENERATION + 10) as u64 {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&i.to_be_bytes());
            g.insert(k);
        }
        assert!(g.newer.len() + g.older.len() <= 2 * VERIFIED_GENERATION);
        let mut last = [0u8; 32];
        last[..8].copy_from_slice(&((2 * VERIFIED_GENERATION + 9) as u64).to_be_bytes());
        assert!(g.contains(&last));
        assert!(!g.contains(&[0u8; 32]), "the oldest generation was dropped");
    }

    #[test]
    fn sign_verify_and_tamper() {
        let s = Signer::generate();
        let sig = s.sign(b"msg");
        verify_strict(&s.public(), b"msg", &sig).unwrap();
        assert!(verify_strict(&s.public(), b"msh", &sig).is_err());
        assert!(verify_strict(&Signer::generate().public(), b"msg", &sig).is_err());
        assert!(verify_strict(&s.public(), b"msg", &sig[..63]).is_err());
    }

    #[test]
    fn seal_round_trip_keeps_key() {
        let dk = super::super::DataKey::generate(1);
        dk.grant(1);
        let aad = super::super::Aad { tenant: "t1", kind: "agent-key", id: "a/1" };
        let s = Signer::generate();
        let blob = dk.seal_signer(&aad, &s).unwrap();
        assert!(!blob.windows(32).any(|w| w == s.key.to_bytes()));
        let back = dk.open_signer(&aad, &blob).unwrap();
        assert_eq!(back.public(), s.public());
    }
}
