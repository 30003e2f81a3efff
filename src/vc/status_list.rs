//! Bitstring Status List v1.0: the bitstring (index 0 = most significant bit of byte 0),
//! its GZIP + multibase base64url encoding, and the `BitstringStatusListCredential`.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Entries per list: the specification's minimum (16 KiB), for herd privacy.
pub const LIST_SIZE: usize = 131_072;
/// Largest encoded list a verifier accepts (compressed), a guard against zip bombs.
pub const MAX_ENCODED: usize = 2 * 1024 * 1024;
/// Largest decoded list a verifier accepts: 1 MiB, 8,388,608 entries (64 times the
/// minimum). A list gzips 16 MiB of zeros into 16 KB, so the inflated size is what bounds
/// the memory a fetched list can pin.
pub const MAX_DECODED: usize = 1024 * 1024;

/// A list of status bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitstring {
    bytes: Vec<u8>,
}

/// Why an encoded list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    #[error("encodedList is not multibase base64url")]
    Encoding,
    #[error("encodedList does not decompress")]
    Gzip,
    #[error("status list is shorter than 131072 entries")]
    TooShort,
    #[error("status list is larger than allowed")]
    TooLarge,
}

impl Bitstring {
    /// All zeros, `bits` long (rounded up to whole bytes).
    pub fn zeros(bits: usize) -> Self {
        Self { bytes: vec![0u8; bits.div_ceil(8)] }
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.bytes.len() * 8
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bit at `index`; out of range reads as `None`.
    pub fn get(&self, index: usize) -> Option<bool> {
        self.bytes.get(index / 8).map(|b| b & (0x80 >> (index % 8)) != 0)
    }

    /// Sets the bit at `index`; returns false when out of range.
    pub fn set(&mut self, index: usize, value: bool) -> bool {
        match self.bytes.get_mut(index / 8) {
            Some(b) => {
                let mask = 0x80u8 >> (index % 8);
                if value {
                    *b |= mask
                } else {
                    *b &= !mask
                }
                true
            }
            None => false,
        }
    }

    /// GZIP, then multibase base64url without padding (`u…`).
    pub fn encode(&self) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(&self.bytes);
        let compressed = gz.finish().unwrap_or_default();
        format!("u{}", URL_SAFE_NO_PAD.encode(compressed))
    }

    /// Decodes an `encodedList`, enforcing the minimum and a maximum size.
    pub fn decode(encoded: &str) -> Result<Self, StatusListError> {
        if encoded.len() > MAX_ENCODED {
            return Err(StatusListError::TooLarge);
        }
        let b64 = encoded.strip_prefix('u').ok_or(StatusListError::Encoding)?;
        let compressed = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).map_err(|_| StatusListError::Encoding)?;
        let mut out = Vec::new();
        inflate_into(&compressed, &mut out)?;
        if out.len() * 8 < LIST_SIZE {
            return Err(StatusListError::TooShort);
        }
        Ok(Self { bytes: out })
    }
}

/// Inflates a gzip stream into `out`, taking at most `MAX_DECODED + 1` bytes out of the
/// decoder: a bomb stops there, whatever it would inflate to.
fn inflate_into(compressed: &[u8], out: &mut Vec<u8>) -> Result<(), StatusListError> {
    flate2::read::GzDecoder::new(compressed).take(MAX_DECODED as u64 + 1).read_to_end(out).map_err(|_| StatusListError::Gzip)?;
    if out.len() > MAX_DECODED {
        return Err(StatusListError::TooLarge);
    }
    Ok(())
}

/// The unsigned `BitstringStatusListCredential` for a list.
pub fn credential(url: &str, issuer: &str, purpose: &str, bits: &Bitstring, valid_from: &str, valid_until: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "validUntil": valid_until,
        "credentialSubject": {
            "id": format!("{url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": bits.encode(),
        }
    })
}

/// A `BitstringStatusListEntry` for a credential.
pub fn entry(list_url: &str, purpose: &str, index: u32) -> Value {
    json!({
        "id": format!("{list_url}#{index}"),
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": index.to_string(),
        "statusListCredential": list_url,
    })
}

#[cfg(test)]
#[path = "status_list_props.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_msb_first_and_round_trip() {
        let mut b = Bitstring::zeros(LIST_SIZE);
        assert!(b.set(0, true));
        assert!(b.set(12345, true));
        assert!(b.set(LIST_SIZE - 1, true));
        assert!(!b.set(LIST_SIZE, true));
        assert_eq!(b.as_bytes()[0], 0x80);
        let enc = b.encode();
        assert!(enc.starts_with('u') && !enc.contains('='));
        let d = Bitstring::decode(&enc).unwrap();
        assert_eq!(d, b);
        assert_eq!(d.get(12345), Some(true));
        assert_eq!(d.get(12344), Some(false));
        assert_eq!(d.get(LIST_SIZE), None);
        b.set(12345, false);
        assert_eq!(Bitstring::decode(&b.encode()).unwrap().get(12345), Some(false));
    }

    #[test]
    fn lists_above_the_maximum_are_refused_without_inflating_them_whole() {
        assert!(Bitstring::decode(&Bitstring::zeros(MAX_DECODED * 8).encode()).is_ok());
        // 16 MiB of zeros gzip to about 16 KB.
        let bomb = Bitstring::zeros(16 * 1024 * 1024 * 8).encode();
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(Bitstring::decode(&bomb), Err(StatusListError::TooLarge));
    }

    #[test]
    fn short_or_garbage_lists_are_refused() {
        assert_eq!(Bitstring::decode(&Bitstring::zeros(1024).encode()), Err(StatusListError::TooShort));
        assert_eq!(Bitstring::decode("zabc"), Err(StatusListError::Encoding));
        assert_eq!(Bitstring::decode("uAAAA"), Err(StatusListError::Gzip));
    }

    #[test]
    fn encodes_the_spec_example_empty_list() {
        // The spec's example list of 131072 zero bits decodes to all zeros.
        let enc = Bitstring::zeros(LIST_SIZE).encode();
        assert!(Bitstring::decode(&enc).unwrap().as_bytes().iter().all(|b| *b == 0));
    }
}
