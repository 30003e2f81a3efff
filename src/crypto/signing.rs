//! Ed25519 keys. Private keys exist in memory only inside a [`Signer`] (zeroized on drop);
//! verification is always strict (rejects small-order keys and non-canonical signatures).

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

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

#[cfg(test)]
mod tests {
    use super::*;

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
        let aad = super::super::Aad { tenant: "t1", kind: "agent-key", id: "a/1" };
        let s = Signer::generate();
        let blob = dk.seal_signer(&aad, &s);
        assert!(!blob.windows(32).any(|w| w == s.key.to_bytes()));
        let back = dk.open_signer(&aad, &blob).unwrap();
        assert_eq!(back.public(), s.public());
    }
}
