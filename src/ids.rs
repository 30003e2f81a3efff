//! Newtype identifiers, parsed once at the edge ("parse, don't validate").
//!
//! Ids are the only identifying data kept in plaintext at rest, so they must never carry
//! user content: tenant ids are short slugs (they appear in public DIDs anyway), every other
//! id is random.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: {why}")]
pub struct IdError {
    pub kind: &'static str,
    pub why: &'static str,
}

/// Ids come from the thread-local CSPRNG (ChaCha, reseeded from the OS), not a `getrandom`
/// system call each: a presentation makes several, and each call is a syscall on the hot
/// path. Keys are still drawn from the OS directly (`Signer::generate`, `SecretBytes`).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Characters allowed in every id: lowercase ASCII letters, digits, `-`. This keeps ids
/// safe inside store keys, URLs, DIDs (`did:web` path segments) and AAD strings.
fn check_chars(kind: &'static str, s: &str, min: usize, max: usize) -> Result<(), IdError> {
    if s.len() < min || s.len() > max {
        return Err(IdError { kind, why: "length out of range" });
    }
    let ok = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(IdError { kind, why: "only a-z, 0-9 and '-' are allowed" });
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(IdError { kind, why: "must not start or end with '-'" });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $min:expr, $max:expr, $rand_bytes:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                Self(random_hex($rand_bytes))
            }
            /// Parses an id from untrusted input.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_chars($kind, s, $min, $max)?;
                Ok(Self(s.to_owned()))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_chars($kind, &s, $min, $max)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant (organisation). Chosen by the operator or random; 2–63 characters.
    TenantId, "tenant", 2, 63, 8
);
id_type!(
    /// An agent inside a tenant; always random.
    AgentId, "agent", 8, 64, 12
);
id_type!(
    /// An access token's public id (never the token itself).
    TokenId, "token", 8, 64, 12
);
id_type!(
    /// A credential held in a wallet.
    CredentialId, "credential", 8, 64, 16
);

impl CredentialId {
    /// A random UUID v4 (the credential's `id` is `urn:uuid:{this}`).
    pub fn uuid() -> Self {
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_owned();
        Self(format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_path_tricks_and_uppercase() {
        for bad in ["..%2f", "../x", "a/b", "ACME", "-ab", "ab-", "a", "a b", "é-x"] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantId::parse("acme-payments").is_ok());
        let a = AgentId::random();
        assert_eq!(AgentId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let r: Result<TenantId, _> = serde_json::from_str("\"../etc\"");
        assert!(r.is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! Ids arrive in URL paths and bodies: any text is an id of the allowed alphabet and
    //! length, or refused, before it is kept (the length is checked first).
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config(2000))]

        #[test]
        fn any_text_is_a_well_formed_id_or_refused(s in "[a-z0-9\\-./%A-Zé ]{0,70}") {
            for (parsed, min, max) in [
                (TenantId::parse(&s).map(|i| i.as_str().to_owned()), 2, 63),
                (AgentId::parse(&s).map(|i| i.as_str().to_owned()), 8, 64),
                (TokenId::parse(&s).map(|i| i.as_str().to_owned()), 8, 64),
                (CredentialId::parse(&s).map(|i| i.as_str().to_owned()), 8, 64),
            ] {
                match parsed {
                    Ok(id) => {
                        prop_assert_eq!(&id, &s);
                        prop_assert!((min..=max).contains(&s.len()));
                        prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                        prop_assert!(!s.starts_with('-') && !s.ends_with('-'));
                    }
                    Err(e) if !(min..=max).contains(&s.len()) => prop_assert_eq!(e.why, "length out of range"),
                    Err(_) => {}
                }
            }
        }
    }
}
