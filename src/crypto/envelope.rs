//! AES-256-GCM sealing with AAD binding tenant, record kind, record id and key version.
//!
//! Blob layout: `version(1) | key_version(u32, big endian) | nonce(12) | ciphertext+tag`.
//! AAD: `sigil/v1/{tenant}/{kind}/{id}/{key_version}`, so a blob copied to another record,
//! kind or tenant, or relabelled with another key version, fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use super::{CryptoError, SecretBytes};

/// Format version of sealed blobs.
pub const BLOB_VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

/// What a sealed blob is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// Tenant id, or `_system` for records sealed directly under the root key.
    pub tenant: &'a str,
    /// Record kind (`agent`, `agent-key`, `credential`, …).
    pub kind: &'a str,
    /// Record id within its kind.
    pub id: &'a str,
}

impl Aad<'_> {
    fn bytes(&self, key_version: u32) -> Vec<u8> {
        format!("sigil/v1/{}/{}/{}/{}", self.tenant, self.kind, self.id, key_version).into_bytes()
    }
}

/// The key version a blob claims to be sealed under (read before choosing a key).
pub fn blob_key_version(blob: &[u8]) -> Result<u32, CryptoError> {
    match blob {
        [BLOB_VERSION, a, b, c, d, ..] if blob.len() >= HEADER + 16 => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(CryptoError),
    }
}

pub(super) fn seal(key: &SecretBytes, key_version: u32, aad: &Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
    // Random 96-bit nonces from the thread-local CSPRNG (ChaCha12, reseeded from the OS):
    // unpredictable and unique with overwhelming probability, like OsRng's, without a
    // system call for every audit entry sealed on the hot path.
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let aad = aad.bytes(key_version);
    let mut out = Vec::with_capacity(HEADER + plaintext.len() + 16);
    out.push(BLOB_VERSION);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    // A 32-byte key cannot be rejected and AES-GCM encryption of an in-memory buffer cannot
    // fail short of exceeding 64 GiB; both are still handled without panicking.
    if let Ok(cipher) = Aes256Gcm::new_from_slice(key.expose()) {
        if let Ok(ct) = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad }) {
            out.extend_from_slice(&ct);
            return out;
        }
    }
    // Unreachable in practice; an empty ciphertext can never open, so this fails closed.
    out.truncate(HEADER);
    out
}

pub(super) fn open(key: &SecretBytes, key_version: u32, aad: &Aad<'_>, blob: &[u8]) -> Result<SecretBytes, CryptoError> {
    if blob_key_version(blob)? != key_version {
        return Err(CryptoError);
    }
    let (header, ct) = blob.split_at_checked(HEADER).ok_or(CryptoError)?;
    let nonce = header.get(5..HEADER).ok_or(CryptoError)?;
    let cipher = Aes256Gcm::new_from_slice(key.expose()).map_err(|_| CryptoError)?;
    let aad = aad.bytes(key_version);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad }).map(SecretBytes::new).map_err(|_| CryptoError)
}

#[cfg(test)]
mod tests {
    use super::super::DataKey;
    use super::*;

    const AAD: Aad<'static> = Aad { tenant: "acme", kind: "agent", id: "a1" };

    /// A data key with seals granted, as the service grants them from a reservation.
    fn granted(version: u32) -> DataKey {
        let k = DataKey::generate(version);
        k.grant(16);
        k
    }

    #[test]
    fn a_data_key_seals_only_what_was_granted() {
        let k = DataKey::generate(1);
        assert_eq!(k.seal(&AAD, b"x"), Err(super::super::SealsSpent), "nothing granted yet");
        k.grant(2);
        let blob = k.seal(&AAD, b"one").unwrap();
        k.seal(&AAD, b"two").unwrap();
        assert_eq!(k.seal(&AAD, b"three"), Err(super::super::SealsSpent));
        assert_eq!(k.seals_left(), 0, "a refused seal takes nothing");
        assert_eq!(k.open(&AAD, &blob).unwrap().expose(), b"one", "opening is never metered");
        // Concurrent sealers never overdraw: exactly the granted number succeed.
        k.grant(1000);
        let ok = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..400 {
                        if k.seal(&AAD, b"x").is_ok() {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ok.into_inner(), 1000);
        assert_eq!(k.seals_left(), 0);
    }

    #[test]
    fn round_trip() {
        let k = granted(3);
        let blob = k.seal(&AAD, b"secret record").unwrap();
        assert_eq!(blob_key_version(&blob).unwrap(), 3);
        assert_eq!(k.open(&AAD, &blob).unwrap().expose(), b"secret record");
        assert!(!blob.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn every_flipped_byte_fails() {
        let k = granted(1);
        let blob = k.seal(&AAD, b"payload").unwrap();
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x01;
            assert_eq!(k.open(&AAD, &t).unwrap_err(), CryptoError, "byte {i}");
        }
    }

    #[test]
    fn moved_records_fail() {
        let k = granted(1);
        let blob = k.seal(&AAD, b"payload").unwrap();
        for other in [Aad { tenant: "evil", ..AAD }, Aad { kind: "credential", ..AAD }, Aad { id: "a2", ..AAD }] {
            assert!(k.open(&other, &blob).is_err());
        }
    }

    #[test]
    fn wrong_key_or_version_and_short_input_fail() {
        let k = granted(1);
        let blob = k.seal(&AAD, b"payload").unwrap();
        assert!(DataKey::generate(1).open(&AAD, &blob).is_err());
        for n in 0..blob.len() {
            assert!(k.open(&AAD, &blob[..n]).is_err());
        }
        assert!(blob_key_version(&[]).is_err());
    }
}
