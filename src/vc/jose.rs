//! VC-JOSE-COSE with compact JWS: `vc+jwt` credentials and `vp+jwt` presentations, EdDSA
//! (Ed25519) only. Kept this small on purpose: signing goes through [`Signer`] so private
//! keys never leave `crypto`, and verification is strict Ed25519 (general JOSE crates take
//! key bytes as DER and verify non-strictly).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::crypto::{PublicKey, Signer, verify_strict};

/// Media type prefix of an enveloped `vc+jwt` credential.
pub const VC_JWT_DATA_URL: &str = "data:application/vc+jwt,";

/// The longest compact JWS parsed, in bytes, checked before it is split or decoded: far
/// above any Sigil `vp+jwt` (which envelopes its credentials), and what bounds a JWS that
/// arrives inside another one or in a body above the default limit.
pub const MAX_JWS: usize = 256 * 1024;

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("JWS is longer than {MAX_JWS} bytes")]
    TooLarge,
    #[error("unsupported JOSE header: {0}")]
    Header(&'static str),
    #[error("signature does not verify")]
    BadSignature,
}

/// A parsed compact JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Map<String, Value>,
    pub payload: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// The `kid` header (a DID URL).
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The `typ` header.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// Strict Ed25519 verification of the signature.
    pub fn verify(&self, key: &PublicKey) -> Result<(), JoseError> {
        verify_strict(key, self.signing_input.as_bytes(), &self.signature).map_err(|_| JoseError::BadSignature)
    }
}

/// Signs `payload` with an EdDSA protected header.
pub fn sign(typ: &str, cty: &str, kid: &str, payload: &Value, signer: &Signer) -> Result<String, serde_json::Error> {
    let header = json!({"alg": "EdDSA", "kid": kid, "typ": typ, "cty": cty});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?), URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload)?));
    let sig = signer.sign(input.as_bytes());
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Parses a compact JWS; only `alg: EdDSA` without `crit` is accepted.
pub fn parse(s: &str) -> Result<Jws, JoseError> {
    if s.len() > MAX_JWS {
        return Err(JoseError::TooLarge);
    }
    let mut parts = s.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JoseError::Malformed);
    };
    let dec = |x: &str| URL_SAFE_NO_PAD.decode(x).map_err(|_| JoseError::Malformed);
    let header: Map<String, Value> = serde_json::from_slice(&dec(h)?).map_err(|_| JoseError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err(JoseError::Header("alg must be EdDSA"));
    }
    if header.contains_key("crit") {
        return Err(JoseError::Header("crit is not supported"));
    }
    let payload: Value = serde_json::from_slice(&dec(p)?).map_err(|_| JoseError::Malformed)?;
    let signature = dec(sig)?;
    if signature.len() != 64 {
        return Err(JoseError::Malformed);
    }
    let signing_input = format!("{h}.{p}");
    Ok(Jws { header, payload, signing_input, signature })
}

/// An `EnvelopedVerifiableCredential` wrapping a `vc+jwt`.
pub fn envelope(jwt: &str) -> Value {
    json!({"@context": super::credential::VC_V2, "id": format!("{VC_JWT_DATA_URL}{jwt}"), "type": "EnvelopedVerifiableCredential"})
}

#[cfg(test)]
#[path = "jose_props.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Signer::generate();
        let jws = sign("vp+jwt", "vp", "did:key:z#z", &json!({"a": 1}), &s).unwrap();
        let parsed = parse(&jws).unwrap();
        assert_eq!(parsed.typ(), Some("vp+jwt"));
        parsed.verify(&s.public()).unwrap();
        assert!(parsed.verify(&Signer::generate().public()).is_err());
        let mut parts: Vec<&str> = jws.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(br#"{"a":2}"#);
        parts[1] = &other;
        assert_eq!(parse(&parts.join(".")).unwrap().verify(&s.public()), Err(JoseError::BadSignature));
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(b"{}"));
        assert!(parse(&none).is_err());
        assert!(parse("a.b").is_err());
    }
}
