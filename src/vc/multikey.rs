//! Ed25519 public keys as Multikey `publicKeyMultibase`: multicodec `ed25519-pub`
//! (varint 0xed01) + 32 key bytes, base58btc with the `z` prefix (`z6Mk…`).

use multibase::Base;

use crate::crypto::PublicKey;

const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// The longest `publicKeyMultibase` (or `did:key` suffix) decoded: `z` + 48 characters for
/// an Ed25519 key, with a little room.
pub const MAX_MULTIKEY: usize = 56;

/// Encodes a public key as `z6Mk…`.
pub fn encode(pk: &PublicKey) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&ED25519_PUB);
    bytes.extend_from_slice(&pk.0);
    multibase::encode(Base::Base58Btc, bytes)
}

/// Encodes a hex-stored public key; `None` when the hex is malformed.
pub fn encode_hex(public_hex: &str) -> Option<String> {
    let raw: [u8; 32] = hex::decode(public_hex).ok()?.try_into().ok()?;
    Some(encode(&PublicKey(raw)))
}

/// Decodes `z6Mk…` into an Ed25519 public key.
pub fn decode(s: &str) -> Option<PublicKey> {
    decode_checked(s).ok()
}

/// Why a multikey was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultikeyError {
    /// Longer than any Ed25519 multikey: refused before decoding (base58 is quadratic).
    TooLong,
    /// Not base58btc multibase.
    Encoding,
    /// Not the `ed25519-pub` codec with 32 key bytes.
    NotEd25519,
}

/// [`decode`], saying which check refused the input.
pub fn decode_checked(s: &str) -> Result<PublicKey, MultikeyError> {
    // 34 bytes are 48 characters: the length is checked before any decoding.
    if s.len() > MAX_MULTIKEY {
        return Err(MultikeyError::TooLong);
    }
    if !s.starts_with('z') {
        return Err(MultikeyError::Encoding);
    }
    let (_, bytes) = multibase::decode(s).map_err(|_| MultikeyError::Encoding)?;
    let key = bytes.strip_prefix(&ED25519_PUB).ok_or(MultikeyError::NotEd25519)?;
    Ok(PublicKey(key.try_into().map_err(|_| MultikeyError::NotEd25519)?))
}

#[cfg(test)]
#[path = "multikey_props.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_vector_key_round_trips() {
        // Key pair of the W3C vc-di-eddsa test vectors.
        let mb = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2";
        let pk = decode(mb).unwrap();
        assert_eq!(hex::encode(pk.0), "b00d8d938e7f773d51565aad36a623f5344f7f5d1960f9cf3e8e12620ea2810f");
        assert_eq!(encode(&pk), mb);
        assert!(decode("u6Mk").is_none());
        assert!(decode("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq").is_none());
    }

    #[test]
    fn a_long_multikey_is_refused_before_decoding() {
        let long = format!("z6Mk{}", "2".repeat(60_000));
        assert_eq!(decode_checked(&long), Err(MultikeyError::TooLong));
        assert_eq!(decode_checked(&format!("z{}", "2".repeat(MAX_MULTIKEY - 1))), Err(MultikeyError::NotEd25519));
    }
}
