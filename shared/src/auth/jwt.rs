//! Verification of the bearer tokens Authentik issues: compact JWS signed
//! RS256 or ES256, checked against the provider's JWKS, then `iss`, `aud`,
//! `exp`, `nbf` (with leeway) and `sub`. `none`, HMAC and every other
//! algorithm are refused, and the key type must fit the algorithm, so the
//! "HMAC keyed with the public key" confusion cannot happen.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey as RsaVerifyingKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm {0}")]
    UnsupportedAlg(String),
    #[error("no key for this token")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    #[error("bad JWKS: {0}")]
    BadJwks(String),
}

#[derive(Clone, Debug)]
enum KeyMaterial {
    Rsa(RsaVerifyingKey<Sha256>),
    Ec(p256::ecdsa::VerifyingKey),
}

#[derive(Clone, Debug)]
struct Key {
    kid: Option<String>,
    material: KeyMaterial,
}

/// The usable signing keys of a JWKS document.
#[derive(Clone, Debug)]
pub struct Jwks {
    keys: Vec<Key>,
}

fn b64(s: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| JwtError::Malformed)
}

impl Jwks {
    /// Parses `{"keys": [...]}`: RSA (`n`, `e`) and EC P-256 (`x`, `y`)
    /// signing keys; encryption keys and other types are skipped.
    pub fn parse(json: &str) -> Result<Jwks, JwtError> {
        let doc: Value = serde_json::from_str(json).map_err(|e| JwtError::BadJwks(e.to_string()))?;
        let list = doc.get("keys").and_then(Value::as_array).ok_or_else(|| JwtError::BadJwks("no keys".into()))?;
        let mut keys = Vec::new();
        for k in list {
            let s = |name: &str| k.get(name).and_then(Value::as_str);
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let material = match (s("kty"), s("crv")) {
                (Some("RSA"), _) => {
                    let (Some(n), Some(e)) = (s("n"), s("e")) else { continue };
                    let n = BigUint::from_bytes_be(&b64(n).map_err(|_| JwtError::BadJwks("n".into()))?);
                    let e = BigUint::from_bytes_be(&b64(e).map_err(|_| JwtError::BadJwks("e".into()))?);
                    let Ok(pk) = RsaPublicKey::new(n, e) else { continue };
                    if pk.size() < 256 {
                        continue; // under 2048 bits: not trusted
                    }
                    KeyMaterial::Rsa(RsaVerifyingKey::new(pk))
                }
                (Some("EC"), Some("P-256")) => {
                    let (Some(x), Some(y)) = (s("x"), s("y")) else { continue };
                    let (x, y) = (b64(x).map_err(|_| JwtError::BadJwks("x".into()))?, b64(y).map_err(|_| JwtError::BadJwks("y".into()))?);
                    if x.len() != 32 || y.len() != 32 {
                        continue;
                    }
                    let mut sec1 = vec![4u8];
                    sec1.extend_from_slice(&x);
                    sec1.extend_from_slice(&y);
                    let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) else { continue };
                    KeyMaterial::Ec(vk)
                }
                _ => continue,
            };
            keys.push(Key { kid: s("kid").map(str::to_owned), material });
        }
        if keys.is_empty() {
            return Err(JwtError::BadJwks("no usable signing key".into()));
        }
        Ok(Jwks { keys })
    }
}

/// What a token must say to be accepted.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub now_unix: i64,
    pub leeway_secs: i64,
}

/// Verifies the signature, then the claims; returns the claims.
pub fn verify(token: &str, jwks: &Jwks, expect: &Expectations) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or(JwtError::Malformed)?;
    let rsa = match alg {
        "RS256" => true,
        "ES256" => false,
        other => return Err(JwtError::UnsupportedAlg(other.to_owned())),
    };
    let fits = |k: &&Key| matches!((&k.material, rsa), (KeyMaterial::Rsa(_), true) | (KeyMaterial::Ec(_), false));
    let key = match header.get("kid").and_then(Value::as_str) {
        Some(kid) => jwks.keys.iter().find(|k| k.kid.as_deref() == Some(kid)).ok_or(JwtError::UnknownKey)?,
        None => {
            let mut candidates = jwks.keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(k), None) => k,
                _ => return Err(JwtError::UnknownKey),
            }
        }
    };
    if !fits(&key) {
        return Err(JwtError::UnknownKey);
    }
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let sig = b64(sig)?;
    let ok = match &key.material {
        KeyMaterial::Rsa(vk) => RsaSignature::try_from(sig.as_slice()).is_ok_and(|s| vk.verify(signed, &s).is_ok()),
        KeyMaterial::Ec(vk) => sig.len() == 64 && p256::ecdsa::Signature::from_slice(&sig).is_ok_and(|s| vk.verify(signed, &s).is_ok()),
    };
    if !ok {
        return Err(JwtError::BadSignature);
    }

    let claims: Map<String, Value> = serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed)?;
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(JwtError::WrongIssuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::WrongAudience);
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(JwtError::MissingClaim("exp"))?;
    if expect.now_unix > exp + expect.leeway_secs {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(JwtError::Malformed)?;
        if expect.now_unix + expect.leeway_secs < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(claims),
        _ => Err(JwtError::MissingClaim("sub")),
    }
}
