//! The one secret type. Zeroized on drop, `<redacted>` in `Debug`, compared in constant
//! time, and deliberately without `Serialize`/`Display`.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes: keys, seeds, tokens, plaintexts of sealed records.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Self {
        use rand::RngCore;
        let mut v = vec![0u8; len];
        rand::rngs::OsRng.fill_bytes(&mut v);
        Self(v)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret bytes. Only `crypto` and the sealed-record plumbing that immediately
    /// deserializes a plaintext may look.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        // Length is not secret; the content comparison is constant time.
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_eq_is_by_value() {
        let a = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{a:?}"), "<redacted>");
        assert_eq!(a, SecretBytes::new(b"hunter2".to_vec()));
        assert_ne!(a, SecretBytes::new(b"hunter3".to_vec()));
        assert_ne!(a, SecretBytes::new(b"hunter".to_vec()));
    }
}
