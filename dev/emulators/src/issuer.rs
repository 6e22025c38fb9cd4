//! Dev OIDC token issuer: the signing side of Authentik's OAuth2 provider
//! (docs/upstreams.md, "Tokens").
//!
//! It owns an RSA-2048 key (RS256) and a P-256 key (ES256), publishes them as
//! a JWKS, and signs access tokens for the demo users with Authentik's claim
//! set. [`Signing`] also produces the bad tokens a verifier must refuse:
//! `alg: none`, HMAC keyed with the RSA public key (algorithm confusion), an
//! unknown `kid`, a valid signature from a key outside the JWKS.
//!
//! Routes ([`router`], mounted on the Authentik emulator's port):
//! - `GET /application/o/<slug>/jwks/`
//! - `GET /application/o/<slug>/.well-known/openid-configuration`
//! - `GET /dev/token?sub=<sub>` or `?email=<email>` (dev only): a 1-hour
//!   access token for a demo user, as `{"access_token", "token_type",
//!   "expires_in"}`; `&raw=1` answers the bare token; `&alg=ES256` signs
//!   with the EC key.
//!
//! Key generation (RSA-2048 especially) is slow, so by default every issuer
//! in a process shares one set of keys; [`Issuer::with_fresh_keys`] makes new ones.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::SignatureEncoding as _;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::demo;

/// Lifetime of the tokens [`Issuer::claims_for`] builds (Authentik's default).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

/// How [`Issuer::sign`] signs a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the RSA key in the JWKS (what Authentik does with an RSA key).
    Rs256,
    /// ES256 with the P-256 key in the JWKS.
    Es256,
    /// RS256 with the JWKS's RSA key, but the header names this `kid`.
    Rs256WithKid(String),
    /// `alg: none` with an empty signature.
    None,
    /// HS256 keyed with the RSA public key's PEM (SPKI, `-----BEGIN PUBLIC
    /// KEY-----`, LF line endings), header `kid` = the RSA key's: the classic
    /// algorithm-confusion forgery.
    Hs256WithPublicKey,
    /// HS256 keyed with the given secret (what Authentik does without a
    /// signing key: the client secret).
    Hs256WithSecret(Vec<u8>),
    /// ES256 with a valid signature from a P-256 key that is not in the
    /// JWKS; the header claims the JWKS's EC `kid`.
    Es256OtherKey,
    /// ES256 with the next key, under its own `kid`: in the JWKS only after
    /// [`Issuer::rotate`] (Authentik's signing key changed).
    Es256NextKey,
}

struct Keys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
    /// Never published: [`Signing::Es256OtherKey`] forges with it, and
    /// [`Signing::Es256NextKey`] signs with it under its own `kid` once
    /// [`Issuer::rotate`] has published it.
    other_ec: p256::ecdsa::SigningKey,
}

impl Keys {
    fn generate() -> Keys {
        let mut rng = rand::thread_rng();
        Keys {
            rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA-2048 key generation"),
            ec: p256::ecdsa::SigningKey::random(&mut rng),
            other_ec: p256::ecdsa::SigningKey::random(&mut rng),
        }
    }
}

static SHARED_KEYS: OnceLock<Arc<Keys>> = OnceLock::new();

impl Keys {
    fn to_json(&self) -> anyhow::Result<String> {
        use p256::pkcs8::EncodePrivateKey as _;
        Ok(json!({
            "rsa": self.rsa.to_pkcs8_pem(LineEnding::LF)?.as_str(),
            "ec": self.ec.to_pkcs8_pem(LineEnding::LF)?.as_str(),
            "other_ec": self.other_ec.to_pkcs8_pem(LineEnding::LF)?.as_str(),
        })
        .to_string())
    }

    fn from_json(text: &str) -> anyhow::Result<Keys> {
        use p256::pkcs8::DecodePrivateKey as _;
        let v: Value = serde_json::from_str(text)?;
        let field = |k: &str| v[k].as_str().ok_or_else(|| anyhow::anyhow!("missing key '{k}'"));
        Ok(Keys {
            rsa: rsa::RsaPrivateKey::from_pkcs8_pem(field("rsa")?)?,
            ec: p256::ecdsa::SigningKey::from_pkcs8_pem(field("ec")?)?,
            other_ec: p256::ecdsa::SigningKey::from_pkcs8_pem(field("other_ec")?)?,
        })
    }

    /// Loads keys from `path`, or generates them and writes them there
    /// (temporary file + rename, mode 0600 on Unix).
    fn load_or_create(path: &std::path::Path) -> anyhow::Result<Keys> {
        use anyhow::Context as _;
        if path.exists() {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            return Keys::from_json(&text).with_context(|| format!("parsing {}", path.display()));
        }
        let keys = Keys::generate();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        {
            use std::io::Write as _;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(keys.to_json()?.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(keys)
    }
}

/// The dev token issuer.
pub struct Issuer {
    issuer: String,
    audience: String,
    slug: String,
    keys: Arc<Keys>,
    rsa_kid: String,
    ec_kid: String,
    next_kid: String,
    next_jwk: Value,
    /// The JWKS document served, and what else its route answers with.
    jwks: std::sync::Mutex<Value>,
    jwks_cache_control: std::sync::Mutex<Option<String>>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A P-256 public key as a JWK, and its `kid` (the RFC 7638 thumbprint).
fn ec_jwk(key: &p256::ecdsa::SigningKey) -> (String, Value) {
    let point = key.verifying_key().to_encoded_point(false);
    let x = b64(point.x().expect("uncompressed point"));
    let y = b64(point.y().expect("uncompressed point"));
    let kid = b64(&Sha256::digest(format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)));
    let jwk = json!({"kid": kid, "kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256", "use": "sig"});
    (kid, jwk)
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

/// The issuer URL Authentik uses for an application: `<base>/application/o/<slug>/`.
pub fn issuer_url(authentik_base: &str, slug: &str) -> String {
    format!("{}/application/o/{slug}/", authentik_base.trim_end_matches('/'))
}

impl Issuer {
    /// An issuer with the process-wide shared keys.
    pub fn new(issuer_url: impl Into<String>, audience: impl Into<String>) -> Issuer {
        let keys = SHARED_KEYS.get_or_init(|| Arc::new(Keys::generate())).clone();
        Issuer::with_keys(issuer_url.into(), audience.into(), keys)
    }

    /// An issuer with keys of its own (slow: generates an RSA-2048 key).
    pub fn with_fresh_keys(issuer_url: impl Into<String>, audience: impl Into<String>) -> Issuer {
        Issuer::with_keys(issuer_url.into(), audience.into(), Arc::new(Keys::generate()))
    }

    /// An issuer whose keys live in `key_file` (created on first use), so
    /// tokens and an inline JWKS stay valid across restarts.
    pub fn with_key_file(issuer_url: impl Into<String>, audience: impl Into<String>, key_file: &std::path::Path) -> anyhow::Result<Issuer> {
        Ok(Issuer::with_keys(issuer_url.into(), audience.into(), Arc::new(Keys::load_or_create(key_file)?)))
    }

    /// The demo issuer of an Authentik emulator at `authentik_base`
    /// (`<base>/application/o/dezky/`, audience [`demo::OIDC_AUDIENCE`]).
    pub fn for_authentik(authentik_base: &str) -> Issuer {
        Issuer::new(issuer_url(authentik_base, demo::OIDC_APP_SLUG), demo::OIDC_AUDIENCE)
    }

    fn with_keys(issuer: String, audience: String, keys: Arc<Keys>) -> Issuer {
        let slug = issuer
            .trim_end_matches('/')
            .rsplit_once("/application/o/")
            .map(|(_, s)| s.to_owned())
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .unwrap_or_else(|| demo::OIDC_APP_SLUG.to_owned());
        let public = keys.rsa.to_public_key();
        let (n, e) = (b64(&public.n().to_bytes_be()), b64(&public.e().to_bytes_be()));
        // RFC 7638 thumbprints as key ids.
        let rsa_kid = b64(&Sha256::digest(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)));
        let (ec_kid, ec_key) = ec_jwk(&keys.ec);
        let (next_kid, next_jwk) = ec_jwk(&keys.other_ec);
        let jwks = json!({"keys": [
            {"kid": rsa_kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": e},
            ec_key,
        ]});
        Issuer { issuer, audience, slug, keys, rsa_kid, ec_kid, next_kid, next_jwk, jwks: jwks.into(), jwks_cache_control: None.into() }
    }

    /// Publishes the next key ([`Signing::Es256NextKey`]) beside the
    /// others, as Authentik's JWKS does once a provider's signing key is
    /// changed (tokens signed by the old keys stay valid until they expire).
    pub fn rotate(&self) {
        let mut jwks = self.jwks.lock().unwrap();
        let keys = jwks["keys"].as_array_mut().expect("a JWKS has keys");
        if !keys.contains(&self.next_jwk) {
            keys.push(self.next_jwk.clone());
        }
    }

    /// The next key's `kid` (see [`Issuer::rotate`]).
    pub fn next_kid(&self) -> &str {
        &self.next_kid
    }

    /// Makes the JWKS route answer with this `Cache-Control` (Authentik
    /// sends none; a proxy in front of it may).
    pub fn set_jwks_cache_control(&self, value: Option<&str>) {
        *self.jwks_cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// The `iss` value (with its trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The application slug in the issuer URL.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    pub fn rsa_kid(&self) -> &str {
        &self.rsa_kid
    }

    pub fn ec_kid(&self) -> &str {
        &self.ec_kid
    }

    /// `<issuer>jwks/`: where the JWKS is served.
    pub fn jwks_uri(&self) -> String {
        format!("{}jwks/", self.issuer_with_slash())
    }

    fn issuer_with_slash(&self) -> String {
        if self.issuer.ends_with('/') {
            self.issuer.clone()
        } else {
            format!("{}/", self.issuer)
        }
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        self.jwks.lock().unwrap().clone()
    }

    /// The JWKS document as JSON text (what `oidc_jwks` holds).
    pub fn jwks_json(&self) -> String {
        self.jwks().to_string()
    }

    /// The RSA public key as SPKI PEM (LF line endings).
    pub fn rsa_public_key_pem(&self) -> String {
        self.keys.rsa.to_public_key().to_public_key_pem(LineEnding::LF).expect("PEM encoding of an RSA public key")
    }

    /// The OpenID discovery document Authentik serves for the application.
    pub fn openid_configuration(&self) -> Value {
        let iss = self.issuer_with_slash();
        let base = iss.trim_end_matches('/').rsplit_once("/application/o/").map(|(b, _)| b.to_owned()).unwrap_or_default();
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{base}/application/o/authorize/"),
            "token_endpoint": format!("{base}/application/o/token/"),
            "userinfo_endpoint": format!("{base}/application/o/userinfo/"),
            "end_session_endpoint": format!("{iss}end-session/"),
            "introspection_endpoint": format!("{base}/application/o/introspect/"),
            "revocation_endpoint": format!("{base}/application/o/revoke/"),
            "device_authorization_endpoint": format!("{base}/application/o/device/"),
            "jwks_uri": self.jwks_uri(),
            "response_types_supported": ["code", "id_token", "id_token token", "code token", "code id_token", "code id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "id_token_encryption_alg_values_supported": [],
            "id_token_encryption_enc_values_supported": [],
            "grant_types_supported": ["authorization_code", "refresh_token", "implicit", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "acr_values_supported": ["goauthentik.io/providers/oauth2/default"],
            "scopes_supported": ["openid", "email", "profile"],
            "request_parameter_supported": false,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "email_verified", "name", "given_name", "preferred_username", "nickname", "groups"],
            "claims_parameter_supported": false,
            "code_challenge_methods_supported": ["plain", "S256"],
        })
    }

    /// The group names a demo user's token carries: the platform-admin group,
    /// the partner-staff group, and `<prefix><slug>` for every tenant
    /// membership whose tenant has an identity group.
    pub fn groups_for(user: &demo::User) -> Vec<String> {
        let mut groups = Vec::new();
        if user.platform_admin {
            groups.push(demo::PLATFORM_ADMIN_GROUP.to_owned());
        }
        if user.partner.is_some() {
            groups.push(demo::PARTNER_STAFF_GROUP.to_owned());
        }
        for (t, _) in user.tenants {
            if t.group_uuid.is_some() {
                groups.push(format!("{}{}", demo::TENANT_GROUP_PREFIX, t.slug));
            }
        }
        groups
    }

    /// The claims of a fresh 1-hour access token for a demo user, as
    /// Authentik emits them with the default scope mappings (`openid email
    /// profile`), plus `nbf`.
    pub fn claims_for(&self, user: &demo::User) -> Value {
        let now = now_secs();
        let mut jti = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut jti[..]);
        json!({
            "iss": self.issuer,
            "sub": user.sub,
            "aud": self.audience,
            "exp": now + TOKEN_LIFETIME_SECS,
            "iat": now,
            "nbf": now,
            "auth_time": now,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "acr": "goauthentik.io/providers/oauth2/default",
            "azp": self.audience,
            "scope": "openid email profile",
            "email": user.email,
            "email_verified": false,
            "name": user.name,
            "given_name": user.name,
            "preferred_username": user.email,
            "nickname": user.email,
            "groups": Issuer::groups_for(user),
        })
    }

    /// A valid RS256 access token for a demo user.
    pub fn token_for(&self, user: &demo::User) -> String {
        self.sign(self.claims_for(user), Signing::Rs256)
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: Value, how: Signing) -> String {
        let header = match &how {
            Signing::Rs256 | Signing::Hs256WithPublicKey => {
                let alg = if how == Signing::Rs256 { "RS256" } else { "HS256" };
                json!({"alg": alg, "kid": self.rsa_kid, "typ": "JWT"})
            }
            Signing::Rs256WithKid(kid) => json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            Signing::Es256 | Signing::Es256OtherKey => json!({"alg": "ES256", "kid": self.ec_kid, "typ": "JWT"}),
            Signing::Es256NextKey => json!({"alg": "ES256", "kid": self.next_kid, "typ": "JWT"}),
            Signing::None => json!({"alg": "none", "typ": "JWT"}),
            Signing::Hs256WithSecret(_) => json!({"alg": "HS256", "typ": "JWT"}),
        };
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature: Vec<u8> = match &how {
            Signing::Rs256 | Signing::Rs256WithKid(_) => {
                let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(self.keys.rsa.clone());
                key.sign(input.as_bytes()).to_vec()
            }
            Signing::Es256 => {
                let sig: p256::ecdsa::Signature = self.keys.ec.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            Signing::Es256OtherKey | Signing::Es256NextKey => {
                let sig: p256::ecdsa::Signature = self.keys.other_ec.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            Signing::None => Vec::new(),
            Signing::Hs256WithPublicKey => hmac_sha256(self.rsa_public_key_pem().as_bytes(), input.as_bytes()).to_vec(),
            Signing::Hs256WithSecret(secret) => hmac_sha256(secret, input.as_bytes()).to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// The issuer's routes: JWKS, discovery document and the dev token
/// endpoint. The Authentik emulator serves them behind its
/// [`crate::faults::Controls`], so they are logged (a JWKS fetch counts as
/// a call to Authentik, as it is one) and take its faults and delays.
pub fn router(issuer: Arc<Issuer>) -> Router {
    let slug = issuer.slug().to_owned();
    Router::new()
        .route(&format!("/application/o/{slug}/jwks/"), get(jwks))
        .route(&format!("/application/o/{slug}/.well-known/openid-configuration"), get(discovery))
        .route("/dev/token", get(dev_token))
        .with_state(issuer)
}

fn cors_json(body: Value) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    let mut r = cors_json(issuer.jwks());
    if let Some(value) = issuer.jwks_cache_control.lock().unwrap().as_deref() {
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_str(value).expect("a header value"));
    }
    r
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    cors_json(issuer.openid_configuration())
}

async fn dev_token(State(issuer): State<Arc<Issuer>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let user = match (q.get("sub"), q.get("email")) {
        (Some(sub), _) => demo::USERS.iter().find(|u| u.sub == sub),
        (None, Some(email)) => demo::USERS.iter().find(|u| u.email.eq_ignore_ascii_case(email)),
        (None, None) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"detail": "pass ?sub=<demo sub> or ?email=<demo email>"}))).into_response()
        }
    };
    let Some(user) = user else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "no demo user with that sub or email"}))).into_response();
    };
    let how = match q.get("alg").map(|a| a.to_ascii_uppercase()) {
        None => Signing::Rs256,
        Some(a) if a == "RS256" => Signing::Rs256,
        Some(a) if a == "ES256" => Signing::Es256,
        Some(_) => return (StatusCode::BAD_REQUEST, Json(json!({"detail": "alg must be RS256 or ES256"}))).into_response(),
    };
    let token = issuer.sign(issuer.claims_for(user), how);
    if q.get("raw").is_some_and(|v| v == "1" || v == "true") {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response();
    }
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS})).into_response()
}
