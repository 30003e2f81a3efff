//! Ed25519 public keys as Multikey `publicKeyMultibase`: multicodec `ed25519-pub`
//! (varint 0xed01) + 32 key bytes, base58btc with the `z` prefix (`z6Mk…`).

use multibase::Base;

use crate::crypto::PublicKey;

const ED25519_PUB: [u8; 2] = [0xed, 0x01];

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
    if !s.starts_with('z') {
        return None;
    }
    let (_, bytes) = multibase::decode(s).ok()?;
    let key = bytes.strip_prefix(&ED25519_PUB)?;
    Some(PublicKey(key.try_into().ok()?))
}

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
}
