//! Verification of the bearer tokens Authentik issues (docs/upstreams.md,
//! "Tokens"): compact JWS signed RS256 or ES256, checked against the provider's
//! JWKS, then `iss`, `aud`, `exp`, `nbf` (with leeway) and `sub`.
//!
//! Invariants:
//! - `none`, HMAC and every algorithm but `RS256`/`ES256` are refused, and the
//!   key must be of the type the algorithm names, so "HMAC keyed with the
//!   public key" and RSA/EC key confusion cannot happen.
//! - Keys come only from the JWKS; `jwk`, `jku`, `x5u` and `x5c` in a token
//!   header are ignored, and a `crit` header is refused.
//! - The signature is checked before the payload is even decoded.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey as RsaVerifyingKey};
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

/// Smallest RSA modulus trusted, in bits.
const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
const RSA_MAX_BITS: usize = 8192;

#[derive(Clone, Debug)]
enum KeyMaterial {
    Rsa(RsaVerifyingKey<Sha256>),
    Ec(p256::ecdsa::VerifyingKey),
}

impl KeyMaterial {
    /// The only algorithm this key may verify.
    fn alg(&self) -> &'static str {
        match self {
            KeyMaterial::Rsa(_) => "RS256",
            KeyMaterial::Ec(_) => "ES256",
        }
    }
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

/// Strict base64url without padding (RFC 7515 §2).
fn b64(s: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)
}

/// One JWK as a signing key, or `None` when it is not usable here.
fn parse_key(k: &Value) -> Option<Key> {
    let s = |name: &str| k.get(name).and_then(Value::as_str);
    let bytes = |name: &str| s(name).and_then(|v| b64(v).ok());
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let material = match (s("kty")?, s("crv")) {
        ("RSA", _) => {
            let n = BigUint::from_bytes_be(&bytes("n")?);
            let e = BigUint::from_bytes_be(&bytes("e")?);
            if n.bits() < RSA_MIN_BITS {
                return None;
            }
            KeyMaterial::Rsa(RsaVerifyingKey::new(RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS).ok()?))
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let sec1 = [&[4u8][..], &x, &y].concat();
            KeyMaterial::Ec(p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok()?)
        }
        _ => return None,
    };
    // A key published for another algorithm (PS256, RSA-OAEP, …) is not ours to use.
    if s("alg").is_some_and(|a| a != material.alg()) {
        return None;
    }
    Some(Key { kid: s("kid").map(str::to_owned), material })
}

impl Jwks {
    /// Parses `{"keys": [...]}`: RSA (`n`, `e`, at least 2048 bits) and EC
    /// P-256 (`x`, `y`) signing keys. Encryption keys, other key types and
    /// curves, and keys that do not decode are skipped; a document left with
    /// no usable key is refused.
    pub fn parse(json: &str) -> Result<Jwks, JwtError> {
        let doc: Value = serde_json::from_str(json).map_err(|e| JwtError::BadJwks(e.to_string()))?;
        let list = doc.get("keys").and_then(Value::as_array).ok_or_else(|| JwtError::BadJwks("no `keys` array".into()))?;
        let keys: Vec<Key> = list.iter().filter_map(parse_key).collect();
        if keys.is_empty() {
            return Err(JwtError::BadJwks("no usable signing key".into()));
        }
        Ok(Jwks { keys })
    }

    /// Whether a key of the set is named `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// What a token must say to be accepted.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub now_unix: i64,
    pub leeway_secs: i64,
}

/// A NumericDate claim (seconds, fractions rounded down); `Malformed` if it
/// is present but not a number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => {
            v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64)).map(Some).ok_or(JwtError::Malformed)
        }
    }
}

/// Verifies the signature, then the claims; returns the claims.
pub fn verify(token: &str, jwks: &Jwks, expect: &Expectations) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    if header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    let alg = header.get("alg").and_then(Value::as_str).ok_or(JwtError::Malformed)?;
    if alg != "RS256" && alg != "ES256" {
        return Err(JwtError::UnsupportedAlg(alg.to_owned()));
    }
    let fitting = || jwks.keys.iter().filter(|k| k.material.alg() == alg);
    let key = match header.get("kid") {
        Some(Value::String(kid)) => fitting().find(|k| k.kid.as_deref() == Some(kid.as_str())),
        Some(_) => return Err(JwtError::Malformed),
        // No `kid`: only unambiguous when one key fits the algorithm.
        None => {
            let mut candidates = fitting();
            candidates.next().filter(|_| candidates.next().is_none())
        }
    }
    .ok_or(JwtError::UnknownKey)?;

    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let sig = b64(sig)?;
    let ok = match &key.material {
        // The length must be exactly the modulus size; `verify` checks it.
        KeyMaterial::Rsa(vk) => RsaSignature::try_from(sig.as_slice()).is_ok_and(|s| vk.verify(signed, &s).is_ok()),
        // JOSE raw r||s only: a DER signature is never 64 bytes long.
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
    let exp = numeric_date(&claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if expect.now_unix > exp.saturating_add(expect.leeway_secs) {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")? {
        if expect.now_unix.saturating_add(expect.leeway_secs) < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(claims),
        _ => Err(JwtError::MissingClaim("sub")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use p256::ecdsa::signature::Signer as _;
    use rand::rngs::OsRng;
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    use rsa::signature::SignatureEncoding as _;
    use rsa::traits::PublicKeyParts as _;
    use rsa::RsaPrivateKey;
    use serde_json::json;
    use sha2::Digest as _;
    use std::sync::OnceLock;

    const ISS: &str = "https://auth.example.com/application/o/portal/";
    const AUD: &str = "portal-client-id";
    const NOW: i64 = 1_800_000_000;

    struct Keys {
        rsa: RsaPrivateKey,
        rsa_other: RsaPrivateKey,
        ec: p256::ecdsa::SigningKey,
        ec_other: p256::ecdsa::SigningKey,
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| Keys {
            rsa: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
            rsa_other: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
            ec: p256::ecdsa::SigningKey::random(&mut OsRng),
            ec_other: p256::ecdsa::SigningKey::random(&mut OsRng),
        })
    }

    fn enc(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(key: &RsaPrivateKey, kid: &str) -> Value {
        json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": enc(&key.n().to_bytes_be()), "e": enc(&key.e().to_bytes_be()) })
    }

    fn ec_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
        let point = key.verifying_key().to_encoded_point(false);
        json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": enc(point.x().unwrap()), "y": enc(point.y().unwrap()) })
    }

    /// The JWKS of the tests: one RSA key `rsa-1`, one EC key `ec-1`.
    fn jwks() -> Jwks {
        let k = keys();
        Jwks::parse(&json!({ "keys": [rsa_jwk(&k.rsa, "rsa-1"), ec_jwk(&k.ec, "ec-1")] }).to_string()).unwrap()
    }

    fn expect() -> Expectations<'static> {
        Expectations { issuer: ISS, audience: AUD, now_unix: NOW, leeway_secs: 60 }
    }

    fn claims() -> Value {
        json!({ "iss": ISS, "sub": "3f1c0a", "aud": AUD, "exp": NOW + 3600, "iat": NOW - 10,
                "email": "ada@example.com", "groups": ["platform-admins"] })
    }

    fn signing_input(header: &Value, claims: &Value) -> String {
        format!("{}.{}", enc(header.to_string().as_bytes()), enc(claims.to_string().as_bytes()))
    }

    fn rs256_with(key: &RsaPrivateKey, header: Value, claims: &Value) -> String {
        let input = signing_input(&header, claims);
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes()).to_bytes();
        format!("{input}.{}", enc(&sig))
    }

    fn es256_with(key: &p256::ecdsa::SigningKey, header: Value, claims: &Value) -> String {
        let input = signing_input(&header, claims);
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", enc(&sig.to_bytes()))
    }

    fn rs256(claims: &Value) -> String {
        rs256_with(&keys().rsa, json!({ "alg": "RS256", "kid": "rsa-1", "typ": "JWT" }), claims)
    }

    fn es256(claims: &Value) -> String {
        es256_with(&keys().ec, json!({ "alg": "ES256", "kid": "ec-1", "typ": "JWT" }), claims)
    }

    fn with(patch: Value) -> Value {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut k = if key.len() > 64 { Sha256::digest(key).to_vec() } else { key.to_vec() };
        k.resize(64, 0);
        let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
        let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
        Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
    }

    #[test]
    fn rs256_valid_token_returns_claims() {
        let got = verify(&rs256(&claims()), &jwks(), &expect()).unwrap();
        assert_eq!(Value::Object(got), claims());
    }

    #[test]
    fn es256_valid_token_returns_claims() {
        let got = verify(&es256(&claims()), &jwks(), &expect()).unwrap();
        assert_eq!(got["sub"], "3f1c0a");
        assert_eq!(got["groups"], json!(["platform-admins"]));
    }

    #[test]
    fn expiry_honours_leeway() {
        let j = jwks();
        assert_eq!(verify(&rs256(&with(json!({ "exp": NOW - 61 }))), &j, &expect()), Err(JwtError::Expired));
        assert_eq!(verify(&es256(&with(json!({ "exp": NOW - 3600 }))), &j, &expect()), Err(JwtError::Expired));
        assert!(verify(&rs256(&with(json!({ "exp": NOW - 60 }))), &j, &expect()).is_ok());
        assert!(verify(&es256(&with(json!({ "exp": NOW - 30 }))), &j, &expect()).is_ok());
        assert!(verify(&rs256(&with(json!({ "exp": (NOW - 30) as f64 + 0.5 }))), &j, &expect()).is_ok());
        let no_leeway = Expectations { leeway_secs: 0, ..expect() };
        assert_eq!(verify(&rs256(&with(json!({ "exp": NOW - 1 }))), &j, &no_leeway), Err(JwtError::Expired));
        assert!(verify(&rs256(&with(json!({ "exp": i64::MAX }))), &j, &expect()).is_ok());
    }

    #[test]
    fn missing_or_non_numeric_exp_rejected() {
        let j = jwks();
        assert_eq!(verify(&rs256(&with(json!({ "exp": null }))), &j, &expect()), Err(JwtError::MissingClaim("exp")));
        assert_eq!(verify(&rs256(&with(json!({ "exp": "soon" }))), &j, &expect()), Err(JwtError::Malformed));
    }

    #[test]
    fn nbf_in_future_rejected() {
        let j = jwks();
        assert_eq!(verify(&rs256(&with(json!({ "nbf": NOW + 61 }))), &j, &expect()), Err(JwtError::NotYetValid));
        assert_eq!(verify(&es256(&with(json!({ "nbf": NOW + 600 }))), &j, &expect()), Err(JwtError::NotYetValid));
        assert!(verify(&rs256(&with(json!({ "nbf": NOW + 60 }))), &j, &expect()).is_ok());
        assert!(verify(&rs256(&with(json!({ "nbf": NOW - 60 }))), &j, &expect()).is_ok());
    }

    #[test]
    fn wrong_issuer_rejected() {
        let j = jwks();
        for iss in [json!("https://auth.example.com/application/o/portal"), json!("https://evil.example/"), json!(null), json!(7)] {
            assert_eq!(verify(&rs256(&with(json!({ "iss": iss }))), &j, &expect()), Err(JwtError::WrongIssuer), "{iss}");
        }
    }

    #[test]
    fn wrong_audience_rejected() {
        let j = jwks();
        for aud in [json!("other-client"), json!(["other-client", "x"]), json!([]), json!(null), json!({ "aud": AUD })] {
            assert_eq!(verify(&es256(&with(json!({ "aud": aud }))), &j, &expect()), Err(JwtError::WrongAudience), "{aud}");
        }
    }

    #[test]
    fn audience_array_containing_it_accepted() {
        let got = verify(&rs256(&with(json!({ "aud": ["other-client", AUD] }))), &jwks(), &expect()).unwrap();
        assert_eq!(got["aud"], json!(["other-client", AUD]));
    }

    #[test]
    fn missing_or_empty_sub_rejected() {
        let j = jwks();
        assert_eq!(verify(&rs256(&with(json!({ "sub": null }))), &j, &expect()), Err(JwtError::MissingClaim("sub")));
        assert_eq!(verify(&rs256(&with(json!({ "sub": "" }))), &j, &expect()), Err(JwtError::MissingClaim("sub")));
        assert_eq!(verify(&rs256(&with(json!({ "sub": 42 }))), &j, &expect()), Err(JwtError::MissingClaim("sub")));
    }

    #[test]
    fn alg_none_rejected() {
        let j = jwks();
        for header in [json!({ "alg": "none" }), json!({ "alg": "none", "kid": "rsa-1" }), json!({ "alg": "None" })] {
            let token = format!("{}.", signing_input(&header, &claims()));
            assert!(matches!(verify(&token, &j, &expect()), Err(JwtError::UnsupportedAlg(_))), "{header}");
        }
    }

    #[test]
    fn other_algorithms_rejected() {
        let j = jwks();
        for alg in ["HS256", "HS512", "PS256", "RS512", "ES384", "ES512", "EdDSA", "rs256", ""] {
            let token = rs256_with(&keys().rsa, json!({ "alg": alg, "kid": "rsa-1" }), &claims());
            assert_eq!(verify(&token, &j, &expect()), Err(JwtError::UnsupportedAlg(alg.into())));
        }
        let token = rs256_with(&keys().rsa, json!({ "kid": "rsa-1" }), &claims());
        assert_eq!(verify(&token, &j, &expect()), Err(JwtError::Malformed));
    }

    #[test]
    fn hs256_signed_with_rsa_public_key_rejected() {
        let j = jwks();
        let public = keys().rsa.to_public_key();
        let secrets: Vec<Vec<u8>> = vec![
            public.to_public_key_pem(LineEnding::LF).unwrap().into_bytes(),
            public.to_public_key_pem(LineEnding::CRLF).unwrap().into_bytes(),
            public.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes(),
            public.to_public_key_der().unwrap().as_bytes().to_vec(),
            public.to_pkcs1_der().unwrap().as_bytes().to_vec(),
            public.n().to_bytes_be(),
        ];
        for secret in &secrets {
            for header in [json!({ "alg": "HS256", "kid": "rsa-1" }), json!({ "alg": "HS256" })] {
                let input = signing_input(&header, &claims());
                let token = format!("{input}.{}", enc(&hmac_sha256(secret, input.as_bytes())));
                assert_eq!(verify(&token, &j, &expect()), Err(JwtError::UnsupportedAlg("HS256".into())));
            }
        }
    }

    #[test]
    fn unknown_kid_rejected() {
        let token = rs256_with(&keys().rsa, json!({ "alg": "RS256", "kid": "rsa-2" }), &claims());
        assert_eq!(verify(&token, &jwks(), &expect()), Err(JwtError::UnknownKey));
        let token = rs256_with(&keys().rsa, json!({ "alg": "RS256", "kid": 1 }), &claims());
        assert_eq!(verify(&token, &jwks(), &expect()), Err(JwtError::Malformed));
    }

    #[test]
    fn signature_by_key_outside_jwks_rejected() {
        let k = keys();
        let j = jwks();
        let rs = rs256_with(&k.rsa_other, json!({ "alg": "RS256", "kid": "rsa-1" }), &claims());
        assert_eq!(verify(&rs, &j, &expect()), Err(JwtError::BadSignature));
        let es = es256_with(&k.ec_other, json!({ "alg": "ES256", "kid": "ec-1" }), &claims());
        assert_eq!(verify(&es, &j, &expect()), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_payload_rejected() {
        let j = jwks();
        let forged = enc(with(json!({ "sub": "someone-else", "groups": ["platform-admins"] })).to_string().as_bytes());
        for token in [rs256(&claims()), es256(&claims())] {
            let parts: Vec<&str> = token.split('.').collect();
            let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
            assert_eq!(verify(&tampered, &j, &expect()), Err(JwtError::BadSignature));
        }
        // A changed header (kid swap keeps the key, typ changes) is covered by the signature too.
        let token = rs256(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let header = enc(json!({ "alg": "RS256", "kid": "rsa-1" }).to_string().as_bytes());
        assert_eq!(verify(&format!("{header}.{}.{}", parts[1], parts[2]), &j, &expect()), Err(JwtError::BadSignature));
    }

    #[test]
    fn key_type_must_fit_alg() {
        let k = keys();
        let j = jwks();
        // RS256 header naming the EC key, signed with RSA or with the EC key.
        let rs = rs256_with(&k.rsa, json!({ "alg": "RS256", "kid": "ec-1" }), &claims());
        assert_eq!(verify(&rs, &j, &expect()), Err(JwtError::UnknownKey));
        let input = signing_input(&json!({ "alg": "RS256", "kid": "ec-1" }), &claims());
        let sig: p256::ecdsa::Signature = k.ec.sign(input.as_bytes());
        assert_eq!(verify(&format!("{input}.{}", enc(&sig.to_bytes())), &j, &expect()), Err(JwtError::UnknownKey));
        // ES256 header naming the RSA key.
        let es = es256_with(&k.ec, json!({ "alg": "ES256", "kid": "rsa-1" }), &claims());
        assert_eq!(verify(&es, &j, &expect()), Err(JwtError::UnknownKey));
    }

    #[test]
    fn es256_signature_must_be_raw_64_bytes() {
        let k = keys();
        let input = signing_input(&json!({ "alg": "ES256", "kid": "ec-1" }), &claims());
        let sig: p256::ecdsa::Signature = k.ec.sign(input.as_bytes());
        let raw = sig.to_bytes();
        // Hand-built DER: SEQUENCE { INTEGER r, INTEGER s }.
        let int = |b: &[u8]| {
            let b = &b[b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1)..];
            let pad = b[0] & 0x80 != 0;
            let mut v = vec![0x02, (b.len() + pad as usize) as u8];
            if pad {
                v.push(0);
            }
            v.extend_from_slice(b);
            v
        };
        let body = [int(&raw[..32]), int(&raw[32..])].concat();
        let der = [vec![0x30, body.len() as u8], body].concat();
        let j = jwks();
        assert!(verify(&format!("{input}.{}", enc(&raw)), &j, &expect()).is_ok());
        for bad in [der, raw[..63].to_vec(), [&raw[..], &[0]].concat(), vec![]] {
            assert_eq!(verify(&format!("{input}.{}", enc(&bad)), &j, &expect()), Err(JwtError::BadSignature));
        }
    }

    #[test]
    fn rs256_signature_must_be_modulus_length() {
        let token = rs256(&claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64(sig).unwrap();
        let j = jwks();
        for bad in [[&[0u8][..], &sig].concat(), sig[1..].to_vec(), vec![]] {
            assert_eq!(verify(&format!("{input}.{}", enc(&bad)), &j, &expect()), Err(JwtError::BadSignature));
        }
    }

    #[test]
    fn missing_kid_uses_the_only_key_of_that_type() {
        let k = keys();
        let j = jwks();
        let rs = rs256_with(&k.rsa, json!({ "alg": "RS256" }), &claims());
        assert!(verify(&rs, &j, &expect()).is_ok());
        let es = es256_with(&k.ec, json!({ "alg": "ES256" }), &claims());
        assert!(verify(&es, &j, &expect()).is_ok());
        let two_rsa = json!({ "keys": [rsa_jwk(&k.rsa, "rsa-1"), rsa_jwk(&k.rsa_other, "rsa-2"), ec_jwk(&k.ec, "ec-1")] });
        let two_rsa = Jwks::parse(&two_rsa.to_string()).unwrap();
        assert_eq!(verify(&rs, &two_rsa, &expect()), Err(JwtError::UnknownKey));
        assert!(verify(&es, &two_rsa, &expect()).is_ok());
    }

    #[test]
    fn malformed_tokens_rejected() {
        let j = jwks();
        let good = rs256(&claims());
        let parts: Vec<&str> = good.split('.').collect();
        let not_json = enc(b"{\"alg\":\"RS256\"");
        let array_header = enc(b"[\"RS256\"]");
        let cases = [
            String::new(),
            "..".to_owned(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{good}.{}", parts[2]),
            format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}", parts[0].replace('e', "+"), parts[1], parts[2]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}", STANDARD.encode(b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}"), parts[1], parts[2]),
            format!("{not_json}.{}.{}", parts[1], parts[2]),
            format!("{array_header}.{}.{}", parts[1], parts[2]),
            format!(" {good}"),
        ];
        for token in &cases {
            assert_eq!(verify(token, &j, &expect()), Err(JwtError::Malformed), "{token}");
        }
        // A payload that is not a JSON object, even correctly signed.
        let input = format!("{}.{}", parts[0], enc(b"[1,2]"));
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(keys().rsa.clone()).sign(input.as_bytes()).to_bytes();
        assert_eq!(verify(&format!("{input}.{}", enc(&sig)), &j, &expect()), Err(JwtError::Malformed));
    }

    #[test]
    fn crit_header_rejected() {
        let token = rs256_with(&keys().rsa, json!({ "alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false }), &claims());
        assert_eq!(verify(&token, &jwks(), &expect()), Err(JwtError::Malformed));
    }

    #[test]
    fn embedded_header_keys_ignored() {
        // A token carrying its own key (`jwk`) and signed by it is still checked against the JWKS.
        let k = keys();
        let header = json!({ "alg": "ES256", "kid": "ec-1", "jwk": ec_jwk(&k.ec_other, "ec-1"), "jku": "https://evil.example/jwks" });
        let token = es256_with(&k.ec_other, header, &claims());
        assert_eq!(verify(&token, &jwks(), &expect()), Err(JwtError::BadSignature));
    }

    #[test]
    fn jwks_parse_authentik_shaped_document() {
        let k = keys();
        let mut rsa = rsa_jwk(&k.rsa, "d4f0a7e0c1b2");
        rsa["x5c"] = json!([STANDARD.encode(b"not really a certificate")]);
        rsa["x5t"] = json!(enc(&[1u8; 20]));
        rsa["x5t#S256"] = json!(enc(&[2u8; 32]));
        let mut ec = ec_jwk(&k.ec, "9a8b7c6d");
        ec["x5c"] = json!([STANDARD.encode(b"another certificate")]);
        let mut encryption = rsa_jwk(&k.rsa_other, "enc-key");
        encryption["use"] = json!("enc");
        encryption["alg"] = json!("RSA-OAEP-256");
        let p384 = json!({ "kty": "EC", "crv": "P-384", "kid": "p384", "use": "sig", "alg": "ES384",
                           "x": enc(&[1u8; 48]), "y": enc(&[2u8; 48]) });
        let okp = json!({ "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": enc(&[3u8; 32]) });
        let doc = json!({ "keys": [encryption, rsa, p384, okp, ec] });
        let j = Jwks::parse(&doc.to_string()).unwrap();
        let kids: Vec<_> = j.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["d4f0a7e0c1b2", "9a8b7c6d"]);

        let token = rs256_with(&k.rsa, json!({ "alg": "RS256", "kid": "d4f0a7e0c1b2", "typ": "JWT" }), &claims());
        assert!(verify(&token, &j, &expect()).is_ok());
        let token = es256_with(&k.ec, json!({ "alg": "ES256", "kid": "9a8b7c6d" }), &claims());
        assert!(verify(&token, &j, &expect()).is_ok());
        // The encryption key is never used for signatures.
        let token = rs256_with(&k.rsa_other, json!({ "alg": "RS256", "kid": "enc-key" }), &claims());
        assert_eq!(verify(&token, &j, &expect()), Err(JwtError::UnknownKey));
    }

    #[test]
    fn jwks_without_usable_key_rejected() {
        let k = keys();
        let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let mut enc_only = rsa_jwk(&k.rsa, "e");
        enc_only["use"] = json!("enc");
        let mut ps256 = rsa_jwk(&k.rsa, "ps");
        ps256["alg"] = json!("PS256");
        let mut bad_n = rsa_jwk(&k.rsa, "bad");
        bad_n["n"] = json!("AQAB==");
        let mut bad_point = ec_jwk(&k.ec, "pt");
        bad_point["y"] = json!(enc(&[0u8; 32]));
        let docs = [
            "{}".to_owned(),
            "not json".to_owned(),
            json!({ "keys": [] }).to_string(),
            json!({ "keys": "x" }).to_string(),
            json!({ "keys": [enc_only] }).to_string(),
            json!({ "keys": [rsa_jwk(&small, "small")] }).to_string(),
            json!({ "keys": [ps256, bad_n, bad_point] }).to_string(),
        ];
        for doc in &docs {
            assert!(matches!(Jwks::parse(doc), Err(JwtError::BadJwks(_))), "{doc}");
        }
    }
}
