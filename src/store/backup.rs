//! Backup files: the key-check file plus every store entry, as written by
//! `GET /v1/system/backup` and read by `sigil restore`. The content is what is at rest
//! already (sealed blobs, ids, hashes, counters): a backup is as safe to keep elsewhere as
//! the data directory, and useless without the root key.
//!
//! Format: `SIGILBK1` | u32 length + key-check JSON | entries (u32 key len, key, u32 value
//! len, value)… | `END!` | SHA-256 of everything before.

use sha2::{Digest, Sha256};

use super::Entry;

const MAGIC: &[u8; 8] = b"SIGILBK1";
const END: &[u8; 4] = b"END!";

/// Serializes a backup.
pub fn encode(keycheck: &[u8], entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>() + keycheck.len() + 64);
    out.extend_from_slice(MAGIC);
    push(&mut out, keycheck);
    for (k, v) in entries {
        push(&mut out, k);
        push(&mut out, v);
    }
    out.extend_from_slice(END);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

fn push(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let (len, rest) = buf.split_at_checked(4).ok_or("truncated backup")?;
    let n = u32::from_be_bytes(len.try_into().map_err(|_| "truncated backup")?) as usize;
    let (v, rest) = rest.split_at_checked(n).ok_or("truncated backup")?;
    *buf = rest;
    Ok(v)
}

/// Parses and checks a backup; returns (key-check JSON, entries).
pub fn decode(bytes: &[u8]) -> Result<(Vec<u8>, Vec<Entry>), String> {
    let (body, digest) = bytes.split_at_checked(bytes.len().saturating_sub(32)).ok_or("not a Sigil backup")?;
    if bytes.len() < MAGIC.len() + 4 + 32 || Sha256::digest(body).as_slice() != digest {
        return Err("backup is corrupt or truncated (checksum mismatch)".into());
    }
    let mut buf = body.strip_prefix(MAGIC.as_slice()).ok_or("not a Sigil backup")?;
    let keycheck = take(&mut buf)?.to_vec();
    let mut entries = Vec::new();
    while buf != END.as_slice() {
        let k = take(&mut buf)?.to_vec();
        let v = take(&mut buf)?.to_vec();
        entries.push((k, v));
    }
    Ok((keycheck, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let entries = vec![(b"a".to_vec(), b"1".to_vec()), (b"t/x/meta".to_vec(), vec![0u8; 300])];
        let b = encode(b"{}", &entries);
        assert_eq!(decode(&b).unwrap(), (b"{}".to_vec(), entries));
        for i in [0, 9, b.len() / 2, b.len() - 1] {
            let mut t = b.clone();
            t[i] ^= 1;
            assert!(decode(&t).is_err());
        }
        assert!(decode(&b[..b.len() - 5]).is_err());
        assert!(decode(b"").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! A backup is a file someone hands to `sigil restore`, and its SHA-256 is no MAC: a
    //! crafted file carries a correct one. Whatever it holds, decoding never panics, and
    //! what decodes is exactly what encodes back.
    use super::*;
    use proptest::prelude::*;

    fn sealed(body: &[u8]) -> Vec<u8> {
        [body, Sha256::digest(body).as_slice()].concat()
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(2000))]

        #[test]
        fn any_checksummed_bytes_decode_to_what_encodes_back(
            tail in proptest::collection::vec(any::<u8>(), 0..64),
            magic in any::<bool>(),
            lens in proptest::collection::vec(prop_oneof![0u32..8, Just(u32::MAX), any::<u32>()], 0..6),
        ) {
            // The magic, then length fields (small, huge, arbitrary) among arbitrary bytes.
            let mut body = if magic { MAGIC.to_vec() } else { Vec::new() };
            for (i, n) in lens.iter().enumerate() {
                body.extend_from_slice(&n.to_be_bytes());
                body.extend_from_slice(tail.get(..i.min(tail.len())).unwrap_or_default());
            }
            body.extend_from_slice(&tail);
            if magic && lens.len() % 2 == 1 {
                body.extend_from_slice(END);
            }
            let file = sealed(&body);
            if let Ok((keycheck, entries)) = decode(&file) {
                prop_assert_eq!(encode(&keycheck, &entries), file);
            }
        }

        #[test]
        fn entries_round_trip(keycheck in proptest::collection::vec(any::<u8>(), 0..32), entries in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..32)), 0..8)) {
            prop_assert_eq!(decode(&encode(&keycheck, &entries)).unwrap(), (keycheck, entries));
        }
    }
}
