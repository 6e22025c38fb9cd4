//! Configuration, read from Spin variables (docs/api.md "Configuration"). Each
//! [`Part`] is read when an operation needs it, since a component declares
//! only the variables of the parts it uses (`crate::needs::TABLE`), and a
//! deployment gives a component only those. A variable a part cannot do
//! without is [`Error::Unconfigured`] (`503`, naming it) when missing: an
//! empty credential is never sent.

use std::time::Duration;

use crate::ports::Variables;
use crate::problem::Error;

/// Default limit on every outbound call (docs/api.md "Failure semantics").
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A part of the configuration: what one loader below reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// `cors_allowed_origins`, read by every component ([`crate::cors`]).
    Cors,
    /// [`DataApiConfig`].
    DataApi,
    /// [`OidcConfig`], and the JWKS fetch's time limit.
    Oidc,
    /// [`Groups`].
    Groups,
    /// [`UpstreamConfig::authentik`].
    Authentik,
    /// [`UpstreamConfig::stalwart`].
    Stalwart,
    /// [`UpstreamConfig::ocis`].
    Ocis,
    /// [`ocis_autoprovision`].
    OcisAutoprovision,
}

impl Part {
    pub const ALL: [Part; 8] =
        [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart, Part::Ocis, Part::OcisAutoprovision];

    /// The variables its loader reads (a unit test holds each loader to its list).
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Part::Cors => &[crate::cors::VARIABLE],
            Part::DataApi => &["data_api_url", OWN_KEY, "data_api_key", "data_api_data_source", "data_api_database", TIMEOUT],
            Part::Oidc => &["oidc_issuer", "oidc_audience", "oidc_jwks", "oidc_jwks_url", TIMEOUT],
            Part::Groups => &["platform_admin_group", "partner_staff_group", "tenant_group_prefix"],
            Part::Authentik => &["authentik_url", "authentik_token", TIMEOUT],
            Part::Stalwart => &["stalwart_url", "stalwart_token", TIMEOUT],
            Part::Ocis => &["ocis_url", "ocis_token", TIMEOUT],
            Part::OcisAutoprovision => &["ocis_autoprovision"],
        }
    }

    /// The variables without which its loader fails ([`Error::Unconfigured`]);
    /// the rest have defaults or turn a feature off. (OIDC needs one of
    /// `oidc_jwks` / `oidc_jwks_url`, the Data API one of its own key and
    /// `data_api_key`: neither on its own.)
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Part::DataApi => &["data_api_url"],
            Part::Oidc => &["oidc_issuer", "oidc_audience"],
            Part::Authentik => &["authentik_url", "authentik_token"],
            Part::Cors | Part::Groups | Part::Stalwart | Part::Ocis | Part::OcisAutoprovision => &[],
        }
    }

    /// The application variable holding the origin it calls, which the
    /// component's `allowed_outbound_hosts` names. The JWKS is fetched from
    /// Authentik (when it is not inline).
    pub fn host(self) -> Option<&'static str> {
        match self {
            Part::DataApi => Some("data_api_url"),
            Part::Oidc | Part::Authentik => Some("authentik_url"),
            Part::Stalwart => Some("stalwart_url"),
            Part::Ocis => Some("ocis_url"),
            Part::Cors | Part::Groups | Part::OcisAutoprovision => None,
        }
    }

    /// The key-value store it keeps state in: the token check keeps a
    /// fetched JWKS in Spin's `default` store (`auth::jwks`).
    pub fn key_value_store(self) -> Option<&'static str> {
        match self {
            Part::Oidc => Some("default"),
            _ => None,
        }
    }
}

const TIMEOUT: &str = "upstream_timeout_ms";

/// The component's own Data API key (`{{ data_api_key_<component> }}` in
/// spin.toml), used before the shared `data_api_key`: with it, the gateway
/// can give each component only the rights it uses (`crate::needs`).
pub const OWN_KEY: &str = "data_api_own_key";

fn required(vars: &dyn Variables, name: &'static str) -> Result<String, Error> {
    vars.get(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| Error::Unconfigured(format!("`{name}`")))
}

fn optional(vars: &dyn Variables, name: &str) -> Option<String> {
    vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn or_default(vars: &dyn Variables, name: &str, default: &str) -> String {
    optional(vars, name).unwrap_or_else(|| default.to_owned())
}

/// The limit on each outbound call: `upstream_timeout_ms`, else 10 s.
pub fn timeout(vars: &dyn Variables) -> Duration {
    optional(vars, TIMEOUT).and_then(|v| v.parse::<u64>().ok()).filter(|ms| *ms > 0).map(Duration::from_millis).unwrap_or(DEFAULT_TIMEOUT)
}

/// Base URLs are stored without a trailing slash; clients append paths.
fn base_url(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

/// An `Authorization` value: a token with a space (`Basic …`) is sent as
/// is, anything else as `Bearer <token>`.
pub fn authorization(token: &str) -> String {
    if token.contains(' ') {
        token.to_owned()
    } else {
        format!("Bearer {token}")
    }
}

#[derive(Clone, Debug)]
pub struct DataApiConfig {
    pub url: String,
    pub key: String,
    pub data_source: String,
    pub database: String,
    pub timeout: Duration,
}

impl DataApiConfig {
    pub fn load(vars: &dyn Variables) -> Result<Self, Error> {
        let (own, shared) = (optional(vars, OWN_KEY), optional(vars, "data_api_key"));
        Ok(Self {
            url: base_url(required(vars, "data_api_url")?),
            key: own
                .or(shared)
                .ok_or_else(|| Error::Unconfigured("`data_api_key` (or this component's own `data_api_key_<component>`)".into()))?,
            data_source: or_default(vars, "data_api_data_source", "mongodb-atlas"),
            database: or_default(vars, "data_api_database", "dezky"),
            timeout: timeout(vars),
        })
    }
}

#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks: Option<String>,
    pub jwks_url: Option<String>,
    /// The JWKS fetch's time limit.
    pub timeout: Duration,
}

impl OidcConfig {
    pub fn load(vars: &dyn Variables) -> Result<Self, Error> {
        let cfg = Self {
            issuer: required(vars, "oidc_issuer")?,
            audience: required(vars, "oidc_audience")?,
            jwks: optional(vars, "oidc_jwks"),
            jwks_url: optional(vars, "oidc_jwks_url"),
            timeout: timeout(vars),
        };
        if cfg.jwks.is_none() && cfg.jwks_url.is_none() {
            return Err(Error::Unconfigured("`oidc_jwks` or `oidc_jwks_url`".into()));
        }
        Ok(cfg)
    }
}

/// A configured upstream: base URL and the `Authorization` header value.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    pub url: String,
    pub authorization: String,
    pub timeout: Duration,
}

impl UpstreamConfig {
    /// `None` when either variable is empty (the system is "not configured").
    fn load_optional(vars: &dyn Variables, url: &str, token: &str) -> Option<Self> {
        Some(Self { url: base_url(optional(vars, url)?), authorization: authorization(&optional(vars, token)?), timeout: timeout(vars) })
    }

    pub fn authentik(vars: &dyn Variables) -> Result<Self, Error> {
        Ok(Self {
            url: base_url(required(vars, "authentik_url")?),
            authorization: authorization(&required(vars, "authentik_token")?),
            timeout: timeout(vars),
        })
    }

    pub fn stalwart(vars: &dyn Variables) -> Option<Self> {
        Self::load_optional(vars, "stalwart_url", "stalwart_token")
    }

    pub fn ocis(vars: &dyn Variables) -> Option<Self> {
        Self::load_optional(vars, "ocis_url", "ocis_token")
    }
}

/// Names of the groups that carry meaning in Authentik.
#[derive(Clone, Debug)]
pub struct Groups {
    pub platform_admin: String,
    pub partner_staff: String,
    pub tenant_prefix: String,
}

impl Groups {
    pub fn load(vars: &dyn Variables) -> Self {
        Self {
            platform_admin: or_default(vars, "platform_admin_group", "dezky-platform-admins"),
            partner_staff: or_default(vars, "partner_staff_group", "dezky-partner-staff"),
            tenant_prefix: or_default(vars, "tenant_group_prefix", "dezky-tenant-"),
        }
    }
}

/// `ocis_autoprovision`: OCIS creates accounts at first sign-in.
pub fn ocis_autoprovision(vars: &dyn Variables) -> bool {
    optional(vars, "ocis_autoprovision").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn data_api_defaults_and_required_values() {
        let v = vars(&[("data_api_url", "http://db/"), ("data_api_key", "k")]);
        let c = DataApiConfig::load(&v).unwrap();
        assert_eq!((c.url.as_str(), c.data_source.as_str(), c.database.as_str()), ("http://db", "mongodb-atlas", "dezky"));
        assert!(DataApiConfig::load(&vars(&[("data_api_url", "http://db")])).is_err());
        assert!(DataApiConfig::load(&vars(&[("data_api_url", "http://db"), ("data_api_key", " ")])).is_err());
    }

    /// Answers every name with a plausible value and records what was read.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<std::collections::BTreeSet<String>>);

    impl Variables for Recorder {
        fn get(&self, name: &str) -> Option<String> {
            self.0.borrow_mut().insert(name.to_owned());
            Some(if name.ends_with("_url") { "http://upstream".into() } else { "1".into() })
        }
    }

    /// Each part's loader reads exactly the variables [`Part::variables`]
    /// lists: the list is what `crate::needs::TABLE` gives each component
    /// (and its SpinApp), so a read missing from it would fail at run time.
    #[test]
    fn each_loader_reads_exactly_its_parts_variables() {
        for part in Part::ALL {
            let r = Recorder::default();
            match part {
                Part::Cors => drop(crate::cors::Cors::from_vars(&r)),
                Part::DataApi => drop(DataApiConfig::load(&r).unwrap()),
                Part::Oidc => drop(OidcConfig::load(&r).unwrap()),
                Part::Groups => drop(Groups::load(&r)),
                Part::Authentik => drop(UpstreamConfig::authentik(&r).unwrap()),
                Part::Stalwart => drop(UpstreamConfig::stalwart(&r).unwrap()),
                Part::Ocis => drop(UpstreamConfig::ocis(&r).unwrap()),
                Part::OcisAutoprovision => drop(ocis_autoprovision(&r)),
            }
            let listed: std::collections::BTreeSet<String> = part.variables().iter().map(|v| v.to_string()).collect();
            assert_eq!(r.0.into_inner(), listed, "{part:?}");
        }
    }

    /// A part's loader fails without exactly its [`Part::required`] ones.
    #[test]
    fn each_loader_fails_without_exactly_its_required_variables() {
        struct AllBut(&'static str);
        impl Variables for AllBut {
            fn get(&self, name: &str) -> Option<String> {
                (name != self.0).then(|| if name.ends_with("_url") { "http://upstream".into() } else { "1".into() })
            }
        }
        for part in Part::ALL {
            for &var in part.variables() {
                let vars = AllBut(var);
                let failed = match part {
                    Part::DataApi => DataApiConfig::load(&vars).is_err(),
                    Part::Oidc => OidcConfig::load(&vars).is_err(),
                    Part::Authentik => UpstreamConfig::authentik(&vars).is_err(),
                    _ => false,
                };
                assert_eq!(failed, part.required().contains(&var), "{part:?} without {var}");
            }
        }
    }

    #[test]
    fn a_missing_credential_is_unconfigured_naming_it_never_sent_empty() {
        let e = UpstreamConfig::authentik(&vars(&[("authentik_url", "http://ak"), ("authentik_token", " ")])).unwrap_err();
        assert_eq!(e, Error::Unconfigured("`authentik_token`".into()));
        assert_eq!(e.status(), 503);
        let e = DataApiConfig::load(&vars(&[("data_api_url", "http://db")])).unwrap_err();
        assert!(e.to_string().contains("`data_api_key`"), "{e}");
        let e = OidcConfig::load(&vars(&[("oidc_issuer", "i"), ("oidc_audience", "a")])).unwrap_err();
        assert!(e.to_string().contains("`oidc_jwks` or `oidc_jwks_url`"), "{e}");
    }

    #[test]
    fn a_components_own_data_api_key_comes_first() {
        let both = vars(&[("data_api_url", "http://db"), ("data_api_key", "shared"), (OWN_KEY, "own")]);
        assert_eq!(DataApiConfig::load(&both).unwrap().key, "own");
        let shared = vars(&[("data_api_url", "http://db"), ("data_api_key", "shared"), (OWN_KEY, " ")]);
        assert_eq!(DataApiConfig::load(&shared).unwrap().key, "shared");
        let own = vars(&[("data_api_url", "http://db"), (OWN_KEY, "own")]);
        assert_eq!(DataApiConfig::load(&own).unwrap().key, "own");
    }

    #[test]
    fn tokens_with_a_space_are_sent_verbatim() {
        assert_eq!(authorization("abc"), "Bearer abc");
        assert_eq!(authorization("Basic dXNlcjpwdw=="), "Basic dXNlcjpwdw==");
    }

    #[test]
    fn optional_upstreams_are_off_when_empty() {
        assert!(UpstreamConfig::stalwart(&vars(&[("stalwart_url", "http://s"), ("stalwart_token", "")])).is_none());
        assert!(UpstreamConfig::stalwart(&vars(&[("stalwart_url", "http://s"), ("stalwart_token", "t")])).is_some());
        assert!(ocis_autoprovision(&vars(&[("ocis_autoprovision", "TRUE")])));
        assert!(!ocis_autoprovision(&vars(&[])));
    }
}
