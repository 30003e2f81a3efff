//! Access tokens: 256 random bits shown once, stored only as an HMAC-SHA256 under the
//! token pepper (a random key sealed under the root key, so root-key rotation re-wraps it
//! instead of invalidating every token).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::SecretBytes;

const PREFIX: &str = "sgl_";

/// A bearer token in clear. Exists only between generation and the one response that
/// shows it, and while a request is being authenticated.
pub struct AccessToken(SecretBytes);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl AccessToken {
    /// A new random token.
    pub fn generate() -> Self {
        let raw = SecretBytes::random(32);
        let s = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw.expose()));
        Self(SecretBytes::new(s.into_bytes()))
    }

    /// Wraps a presented bearer string (from an `Authorization` header or the bootstrap
    /// environment variable). Returns `None` when it cannot possibly be a Sigil token.
    pub fn from_presented(s: &str) -> Option<Self> {
        let ok = s.len() >= 32 && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(SecretBytes::new(s.as_bytes().to_vec())))
    }

    /// The token text, for the single response (or file) that hands it to its owner.
    /// Named so every place that reveals a token is easy to find.
    pub fn reveal_once(&self) -> String {
        String::from_utf8_lossy(self.0.expose()).into_owned()
    }
}

/// HMAC-SHA256 of a token: what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(self.0.get(..4).unwrap_or_default()))
    }
}

impl TokenHash {
    /// Hex form used in store keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

/// The keyed-hash key for tokens.
pub struct TokenPepper(SecretBytes);

impl TokenPepper {
    /// A fresh pepper for a new store.
    pub fn generate() -> Self {
        Self(SecretBytes::random(32))
    }

    /// The same pepper in every test service over one store, as a restarted process
    /// unwraps the same pepper from its store.
    #[cfg(test)]
    pub(crate) fn fixed_for_tests() -> Self {
        Self::from_secret(SecretBytes::new(vec![7u8; 32]))
    }

    pub(super) fn from_secret(s: SecretBytes) -> Self {
        Self(s)
    }

    pub(super) fn secret(&self) -> &SecretBytes {
        &self.0
    }

    /// The stored form of `token`.
    pub fn hash(&self, token: &AccessToken) -> TokenHash {
        // HMAC accepts keys of any length; the fallback is unreachable and fails closed by
        // producing a hash no stored token can match.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose()) else {
            return TokenHash([0xff; 32]);
        };
        mac.update(token.0.expose());
        TokenHash(mac.finalize().into_bytes().into())
    }

    /// HMAC of arbitrary data under a domain-separated label (used for keyed hashes of
    /// sensitive audit values, never for tokens).
    pub fn keyed_hash(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose()) else {
            return [0xff; 32];
        };
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for TokenPepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPepper(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let p = TokenPepper::generate();
        let a = AccessToken::generate();
        let b = AccessToken::generate();
        assert_ne!(a.reveal_once(), b.reveal_once());
        assert!(a.reveal_once().len() >= 43 + PREFIX.len());
        let again = AccessToken::from_presented(&a.reveal_once()).unwrap();
        assert!(p.hash(&a).ct_eq(&p.hash(&again)));
        assert!(!p.hash(&a).ct_eq(&p.hash(&b)));
        assert!(!TokenPepper::generate().hash(&a).ct_eq(&p.hash(&a)));
        assert!(!format!("{a:?}").contains(&a.reveal_once()));
    }

    #[test]
    fn garbage_is_not_a_token() {
        assert!(AccessToken::from_presented("short").is_none());
        assert!(AccessToken::from_presented(&"x y".repeat(20)).is_none());
    }
}
