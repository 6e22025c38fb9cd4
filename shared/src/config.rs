//! Configuration, read from Spin variables (docs/api.md "Configuration"). Each
//! part is read when an operation needs it, since a component declares only
//! the variables of the upstreams it calls.

use std::time::Duration;

use crate::ports::Variables;
use crate::problem::Error;

/// Default limit on every outbound call (docs/api.md "Failure semantics").
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn required(vars: &dyn Variables, name: &str) -> Result<String, Error> {
    vars.get(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| Error::Internal(format!("required variable `{name}` is not set")))
}

fn optional(vars: &dyn Variables, name: &str) -> Option<String> {
    vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn or_default(vars: &dyn Variables, name: &str, default: &str) -> String {
    optional(vars, name).unwrap_or_else(|| default.to_owned())
}

/// The limit on each outbound call: `upstream_timeout_ms`, else 10 s.
pub fn timeout(vars: &dyn Variables) -> Duration {
    optional(vars, "upstream_timeout_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
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
        Ok(Self {
            url: base_url(required(vars, "data_api_url")?),
            key: required(vars, "data_api_key")?,
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
}

impl OidcConfig {
    pub fn load(vars: &dyn Variables) -> Result<Self, Error> {
        let cfg = Self {
            issuer: required(vars, "oidc_issuer")?,
            audience: required(vars, "oidc_audience")?,
            jwks: optional(vars, "oidc_jwks"),
            jwks_url: optional(vars, "oidc_jwks_url"),
        };
        if cfg.jwks.is_none() && cfg.jwks_url.is_none() {
            return Err(Error::Internal("set `oidc_jwks` or `oidc_jwks_url`".into()));
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
