//! The dev token issuer: tokens verify against its JWKS (cross-checked with
//! the independent `jsonwebtoken` crate), carry Authentik's claims, and the
//! bad-token variants fail the way a verifier must make them fail.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use emulators::issuer::{hmac_sha256, Issuer, Signing, TOKEN_LIFETIME_SECS};
use emulators::{demo, start, Options};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

const ISS: &str = "http://127.0.0.1:4020/application/o/dezky/";

fn issuer() -> Issuer {
    Issuer::new(ISS, demo::OIDC_AUDIENCE)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Verifies like the app must: key by `kid` from the JWKS, RS256/ES256 only,
/// `iss`, `aud`, `exp`, `nbf` with 60 s leeway.
fn verify(jwks_json: &str, token: &str) -> Result<Value, ErrorKind> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.into_kind())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(ErrorKind::InvalidAlgorithm);
    }
    let jwks: JwkSet = serde_json::from_str(jwks_json).expect("JWKS parses");
    let kid = header.kid.ok_or(ErrorKind::InvalidToken)?;
    let jwk = jwks.find(&kid).ok_or(ErrorKind::InvalidKeyFormat)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.into_kind())?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[ISS]);
    v.set_audience(&[demo::OIDC_AUDIENCE]);
    v.leeway = 60;
    v.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key, &v).map(|t| t.claims).map_err(|e| e.into_kind())
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

#[test]
fn rs256_and_es256_tokens_verify_against_the_jwks() {
    let iss = issuer();
    let claims = verify(&iss.jwks_json(), &iss.token_for(&demo::ACME_OWNER)).expect("RS256 token verifies");
    assert_eq!(claims["sub"], json!(demo::ACME_OWNER.sub));
    let es = iss.sign(iss.claims_for(&demo::ACME_OWNER), Signing::Es256);
    assert_eq!(header_of(&es)["alg"], json!("ES256"));
    assert_eq!(URL_SAFE_NO_PAD.decode(es.split('.').nth(2).unwrap()).unwrap().len(), 64, "ES256 signatures are raw r||s");
    verify(&iss.jwks_json(), &es).expect("ES256 token verifies");
}

#[test]
fn jwks_has_an_rsa_and_a_p256_signing_key() {
    let iss = issuer();
    let jwks = iss.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kty"], json!("RSA"));
    assert_eq!(keys[0]["alg"], json!("RS256"));
    assert_eq!(keys[0]["use"], json!("sig"));
    assert_eq!(keys[0]["kid"], json!(iss.rsa_kid()));
    assert_eq!(keys[0]["e"], json!("AQAB"));
    assert_eq!(URL_SAFE_NO_PAD.decode(keys[0]["n"].as_str().unwrap()).unwrap().len(), 256, "RSA-2048");
    assert_eq!(keys[1]["kty"], json!("EC"));
    assert_eq!(keys[1]["crv"], json!("P-256"));
    assert_eq!(keys[1]["alg"], json!("ES256"));
    assert_eq!(keys[1]["kid"], json!(iss.ec_kid()));
    assert_eq!(URL_SAFE_NO_PAD.decode(keys[1]["x"].as_str().unwrap()).unwrap().len(), 32);
}

#[test]
fn claims_follow_authentik_with_a_one_hour_lifetime() {
    let iss = issuer();
    let c = iss.claims_for(&demo::MULTI_TENANT);
    assert_eq!(c["iss"], json!(ISS));
    assert_eq!(c["aud"], json!(demo::OIDC_AUDIENCE));
    assert_eq!(c["sub"], json!(demo::MULTI_TENANT.sub));
    assert_eq!(c["email"], json!(demo::MULTI_TENANT.email));
    assert_eq!(c["name"], json!(demo::MULTI_TENANT.name));
    assert_eq!(c["preferred_username"], json!(demo::MULTI_TENANT.email));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), TOKEN_LIFETIME_SECS);
    assert_eq!(c["nbf"], c["iat"]);
    assert!((c["iat"].as_i64().unwrap() - now()).abs() <= 5);
    assert_eq!(c["groups"], json!(["dezky-tenant-acme", "dezky-tenant-globex"]));
}

#[test]
fn groups_name_platform_admins_partner_staff_and_tenants() {
    assert_eq!(Issuer::groups_for(&demo::OPERATOR), vec![demo::PLATFORM_ADMIN_GROUP]);
    assert_eq!(Issuer::groups_for(&demo::NORTHWIND_SCOPED), vec![demo::PARTNER_STAFF_GROUP]);
    assert_eq!(Issuer::groups_for(&demo::ACME_ADMIN), vec![format!("{}acme", demo::TENANT_GROUP_PREFIX)]);
    assert_eq!(
        Issuer::groups_for(&demo::ACME_INACTIVE_ADMIN),
        vec!["dezky-tenant-acme"],
        "deactivation lives in the database, not the token"
    );
}

#[test]
fn alg_none_token_has_an_empty_signature_and_is_refused() {
    let iss = issuer();
    let t = iss.sign(iss.claims_for(&demo::OPERATOR), Signing::None);
    assert!(t.ends_with('.'));
    assert_eq!(header_of(&t)["alg"], json!("none"));
    assert!(verify(&iss.jwks_json(), &t).is_err());
}

#[test]
fn hmac_with_the_rsa_public_key_is_the_alg_confusion_forgery() {
    let iss = issuer();
    let t = iss.sign(iss.claims_for(&demo::OPERATOR), Signing::Hs256WithPublicKey);
    let h = header_of(&t);
    assert_eq!((h["alg"].as_str(), h["kid"].as_str()), (Some("HS256"), Some(iss.rsa_kid())));
    // A verifier that trusted the header's alg with the published key would accept it ...
    let pem = iss.rsa_public_key_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let mut naive = Validation::new(Algorithm::HS256);
    naive.set_audience(&[demo::OIDC_AUDIENCE]);
    jsonwebtoken::decode::<Value>(&t, &DecodingKey::from_secret(pem.as_bytes()), &naive)
        .expect("the forgery is a valid HS256 MAC under the PEM");
    // ... a correct one refuses it.
    assert_eq!(verify(&iss.jwks_json(), &t), Err(ErrorKind::InvalidAlgorithm));
    let secret = iss.sign(iss.claims_for(&demo::OPERATOR), Signing::Hs256WithSecret(b"client-secret".to_vec()));
    jsonwebtoken::decode::<Value>(&secret, &DecodingKey::from_secret(b"client-secret"), &naive).expect("HS256 with a secret");
}

#[test]
fn unknown_kid_and_foreign_key_are_refused() {
    let iss = issuer();
    let t = iss.sign(iss.claims_for(&demo::OPERATOR), Signing::Rs256WithKid("not-in-jwks".into()));
    assert_eq!(header_of(&t)["kid"], json!("not-in-jwks"));
    assert_eq!(verify(&iss.jwks_json(), &t), Err(ErrorKind::InvalidKeyFormat), "no key with that kid");
    let t = iss.sign(iss.claims_for(&demo::OPERATOR), Signing::Es256OtherKey);
    assert_eq!(header_of(&t)["kid"], json!(iss.ec_kid()));
    assert_eq!(verify(&iss.jwks_json(), &t), Err(ErrorKind::InvalidSignature));
}

#[test]
fn expired_premature_wrong_issuer_and_audience_are_refused() {
    let iss = issuer();
    let base = iss.claims_for(&demo::OPERATOR);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        iss.sign(c, Signing::Rs256)
    };
    assert_eq!(verify(&iss.jwks_json(), &with("exp", json!(now() - 120))), Err(ErrorKind::ExpiredSignature));
    assert!(verify(&iss.jwks_json(), &with("exp", json!(now() - 30))).is_ok(), "within the 60 s leeway");
    assert_eq!(verify(&iss.jwks_json(), &with("nbf", json!(now() + 600))), Err(ErrorKind::ImmatureSignature));
    assert_eq!(
        verify(&iss.jwks_json(), &with("iss", json!("http://127.0.0.1:4020/application/o/dezky"))),
        Err(ErrorKind::InvalidIssuer),
        "the trailing slash matters"
    );
    assert_eq!(verify(&iss.jwks_json(), &with("aud", json!("other-client"))), Err(ErrorKind::InvalidAudience));
}

#[test]
fn tokens_from_another_issuer_instance_do_not_verify() {
    let a = issuer();
    let b = Issuer::with_fresh_keys(ISS, demo::OIDC_AUDIENCE);
    assert_ne!(a.jwks(), b.jwks());
    assert!(verify(&a.jwks_json(), &b.token_for(&demo::OPERATOR)).is_err());
    assert_eq!(Issuer::new("http://x/application/o/dezky/", "a").jwks(), a.jwks(), "issuers in one process share keys by default");
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    let long_key = [0xaa_u8; 131];
    let mac = hmac_sha256(&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

#[test]
fn key_file_keeps_keys_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let a = Issuer::with_key_file(ISS, demo::OIDC_AUDIENCE, &path).unwrap();
    let b = Issuer::with_key_file(ISS, demo::OIDC_AUDIENCE, &path).unwrap();
    assert_eq!(a.jwks(), b.jwks());
    verify(&b.jwks_json(), &a.token_for(&demo::OPERATOR)).expect("a token from before the restart still verifies");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn fresh_key_generation_time() {
    let t = Instant::now();
    let _ = Issuer::with_fresh_keys(ISS, demo::OIDC_AUDIENCE);
    let took = t.elapsed();
    eprintln!("RSA-2048 + 2 × P-256 key generation took {took:?}");
    assert!(took.as_secs() < 60, "{took:?}");
}

// ---------------------------------------------------------------------------
// Routes (served on the Authentik emulator's port)

#[tokio::test]
async fn issuer_routes_serve_jwks_discovery_and_dev_tokens() {
    let emu = start(Options { data_api_port: None, ..Options::default() }).await.unwrap();
    let ak = emu.authentik();
    let iss_url = format!("{}/application/o/{}/", ak.url, demo::OIDC_APP_SLUG);
    assert_eq!(emu.issuer.issuer(), iss_url);
    let http = reqwest::Client::new();

    let r = http.get(format!("{iss_url}jwks/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "*");
    let jwks: Value = r.json().await.unwrap();
    assert_eq!(jwks, emu.issuer.jwks());

    let conf: Value = http.get(format!("{iss_url}.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(conf["issuer"], json!(iss_url));
    assert_eq!(conf["jwks_uri"], json!(format!("{iss_url}jwks/")));
    assert_eq!(conf["id_token_signing_alg_values_supported"], json!(["RS256", "ES256"]));

    let v: Value = http.get(format!("{}/dev/token?email={}", ak.url, demo::ACME_ADMIN.email)).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["token_type"], json!("Bearer"));
    assert_eq!(v["expires_in"], json!(3600));
    let token = v["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["iss"], json!(iss_url));
    assert_eq!(claims["sub"], json!(demo::ACME_ADMIN.sub));
    let key = DecodingKey::from_jwk(serde_json::from_value::<JwkSet>(jwks.clone()).unwrap().find(emu.issuer.rsa_kid()).unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[iss_url.as_str()]);
    v.set_audience(&[demo::OIDC_AUDIENCE]);
    jsonwebtoken::decode::<Value>(token, &key, &v).expect("served token verifies against the served JWKS");

    let raw =
        http.get(format!("{}/dev/token?sub={}&raw=1&alg=ES256", ak.url, demo::OPERATOR.sub)).send().await.unwrap().text().await.unwrap();
    assert_eq!(header_of(&raw)["alg"], json!("ES256"));
    assert_eq!(http.get(format!("{}/dev/token?email=nobody@x.test", ak.url)).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(http.get(format!("{}/dev/token", ak.url)).send().await.unwrap().status().as_u16(), 400);
    assert_eq!(http.get(format!("{}/application/o/other/jwks/", ak.url)).send().await.unwrap().status().as_u16(), 404);

    ak.controls.faults.add(
        emulators::faults::FaultRule::new(format!("/application/o/{}/jwks/", demo::OIDC_APP_SLUG), emulators::faults::Fault::Status(503))
            .times(1),
    );
    assert_eq!(http.get(format!("{iss_url}jwks/")).send().await.unwrap().status().as_u16(), 503);
    assert_eq!(http.get(format!("{iss_url}jwks/")).send().await.unwrap().status().as_u16(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn issuer_keys_persist_with_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options { data_dir: Some(dir.path().to_path_buf()), data_api_port: None, authentik_port: Some(0), ..Options::default() };
    let a = start(opts()).await.unwrap();
    let jwks = a.issuer.jwks();
    a.shutdown().await;
    assert!(dir.path().join(emulators::ISSUER_KEY_FILE).exists());
    let b = start(opts()).await.unwrap();
    assert_eq!(b.issuer.jwks(), jwks);
}
