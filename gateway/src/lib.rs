//! The Data API gateway: the MongoDB Atlas Data API v1 wire contract
//! (docs/upstreams.md) in front of any MongoDB, and the HTTP layer the Data
//! API emulator shares with it.
//!
//! - [`http`]: routes, keys, Content-Type/Accept, EJSON, body limit, the
//!   error envelope, `/healthz`, over a [`Backend`].
//! - [`request`]: request bodies as typed [`ActionRequest`]s.
//! - [`policy`]: what each key may do ([`Policy`]: actions on collections).
//! - [`driver`]: the [`Backend`] over the official `mongodb` driver.
//! - [`Config`] (environment variables) and [`serve`] / [`Running`]: the
//!   binary's whole life, usable in process (tests, `make dev`, `make bench`).
//!
//! Stateless: every request stands alone, so any number of gateways can
//! serve one database behind a load balancer.

pub mod driver;
pub mod ejson;
mod error;
pub mod http;
mod keys;
pub mod policy;
pub mod request;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use driver::DriverBackend;
pub use error::ApiError;
pub use http::{router, Backend, HttpOptions};
pub use keys::ApiKeys;
pub use policy::Policy;
pub use request::{Action, ActionRequest, Namespace, Op};

/// The gateway's configuration: environment variables only (README, "The
/// Data API gateway"). `Debug` shows neither the keys nor the URI, which
/// may hold a password.
#[derive(Clone)]
pub struct Config {
    /// `MONGODB_URI` (required): `mongodb://…` or `mongodb+srv://…`.
    pub mongodb_uri: String,
    /// The bare entries of `GATEWAY_API_KEYS` (required, comma-separated,
    /// none empty): keys with every right.
    pub api_keys: Vec<String>,
    /// The `name=key` entries of `GATEWAY_API_KEYS`: keys with the rights of
    /// the policy `name` of `GATEWAY_KEY_POLICIES`.
    pub policy_keys: Vec<PolicyKey>,
    /// `GATEWAY_LISTEN` (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// `GATEWAY_MAX_BODY_BYTES` (default and maximum 16 MiB, at least 64 KiB).
    pub max_body_bytes: usize,
    /// `GATEWAY_MONGODB_TIMEOUT_MS` (default 10000): connect, server
    /// selection and each operation.
    pub mongodb_timeout: Duration,
}

/// A key with a named policy (`name=key` in `GATEWAY_API_KEYS`). `Debug`
/// shows the name only.
#[derive(Clone)]
pub struct PolicyKey {
    /// The policy's name in `GATEWAY_KEY_POLICIES` (several keys may share it).
    pub name: String,
    pub key: String,
    pub policy: Arc<Policy>,
}

impl std::fmt::Debug for PolicyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyKey({})", self.name)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_keys", &format_args!("{} keys", self.api_keys.len()))
            .field("policy_keys", &self.policy_keys)
            .field("listen", &self.listen)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("mongodb_timeout", &self.mongodb_timeout)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_MONGODB_TIMEOUT_MS: u64 = 10_000;

/// What a policy name may be made of (it is followed by `=` in `GATEWAY_API_KEYS`).
fn valid_policy_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `GATEWAY_KEY_POLICIES`: `{"<name>": {"<collection>": ["<action>", …]}, …}`.
fn parse_policies(text: &str) -> Result<BTreeMap<String, Arc<Policy>>, String> {
    const VAR: &str = "GATEWAY_KEY_POLICIES";
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{VAR}: invalid JSON: {e}"))?;
    let serde_json::Value::Object(named) = json else {
        return Err(format!("{VAR}: expected an object {{\"<name>\": {{\"<collection>\": [\"<action>\", …]}}}}"));
    };
    let mut policies = BTreeMap::new();
    for (name, policy) in &named {
        if !valid_policy_name(name) {
            return Err(format!("{VAR}: policy name '{}' is not letters, digits, '_', '-' or '.'", name.escape_debug()));
        }
        let policy = Policy::parse(policy).map_err(|e| format!("{VAR}: policy '{name}': {e}"))?;
        policies.insert(name.clone(), Arc::new(policy));
    }
    Ok(policies)
}

impl Config {
    /// A configuration with the defaults for everything optional; `api_keys`
    /// have every right.
    pub fn new(mongodb_uri: impl Into<String>, api_keys: Vec<String>) -> Config {
        Config {
            mongodb_uri: mongodb_uri.into(),
            api_keys,
            policy_keys: Vec::new(),
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            max_body_bytes: http::MAX_BODY_BYTES,
            mongodb_timeout: Duration::from_millis(DEFAULT_MONGODB_TIMEOUT_MS),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var`; the error names the variable, and
    /// never holds a key (an entry is named by its position).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let uri = set("MONGODB_URI").ok_or("MONGODB_URI is required (mongodb:// or mongodb+srv://)")?;
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err("MONGODB_URI must start with mongodb:// or mongodb+srv://".to_owned());
        }
        let keys = set("GATEWAY_API_KEYS").ok_or("GATEWAY_API_KEYS is required (comma-separated API keys)")?;
        let policies = match set("GATEWAY_KEY_POLICIES") {
            Some(text) => parse_policies(&text)?,
            None => BTreeMap::new(),
        };
        let mut config = Config::new(uri, Vec::new());
        // Each key with its policy's name (None: bare), to refuse one key given two ways.
        let mut seen: Vec<(&str, Option<&str>, usize)> = Vec::new();
        for (i, entry) in keys.split(',').map(str::trim).enumerate() {
            let n = i + 1;
            if entry.is_empty() {
                return Err("GATEWAY_API_KEYS: empty key in the list".to_owned());
            }
            let (name, key) = match entry.split_once('=') {
                None => (None, entry),
                Some((name, key)) => {
                    let (name, key) = (name.trim(), key.trim());
                    if !valid_policy_name(name) || key.is_empty() {
                        return Err(format!(
                            "GATEWAY_API_KEYS: entry {n} is malformed: an entry is name=key (name: letters, digits, '_', '-', '.') or a bare key without '='"
                        ));
                    }
                    (Some(name), key)
                }
            };
            if let Some((_, _, first)) = seen.iter().find(|(k, other, _)| *k == key && *other != name) {
                return Err(format!("GATEWAY_API_KEYS: entries {first} and {n} give the same key different rights"));
            }
            seen.push((key, name, n));
            match name {
                None => config.api_keys.push(key.to_owned()),
                Some(name) => {
                    // The name is not shown: a bare key holding '=' would put part of itself there.
                    let policy = policies.get(name).ok_or_else(|| {
                        let defined: Vec<&str> = policies.keys().map(String::as_str).collect();
                        format!(
                            "GATEWAY_API_KEYS: entry {n} names a policy that GATEWAY_KEY_POLICIES does not define (defined: {}); a bare key cannot hold '='",
                            if defined.is_empty() { "none".to_owned() } else { defined.join(", ") }
                        )
                    })?;
                    config.policy_keys.push(PolicyKey { name: name.to_owned(), key: key.to_owned(), policy: policy.clone() });
                }
            }
        }
        if let Some(v) = set("GATEWAY_LISTEN") {
            config.listen = v.trim().parse().map_err(|_| format!("GATEWAY_LISTEN: '{v}' is not an address such as 0.0.0.0:8080"))?;
        }
        if let Some(v) = set("GATEWAY_MAX_BODY_BYTES") {
            let range = http::MIN_BODY_BYTES..=http::MAX_BODY_BYTES;
            config.max_body_bytes = v.trim().parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                format!("GATEWAY_MAX_BODY_BYTES: '{v}' is not a number of bytes from {} to {}", range.start(), range.end())
            })?;
        }
        if let Some(v) = set("GATEWAY_MONGODB_TIMEOUT_MS") {
            let ms: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("GATEWAY_MONGODB_TIMEOUT_MS: '{v}' is not a positive number of milliseconds"))?;
            config.mongodb_timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }

    /// Every key with its rights: the bare ones with [`Policy::all`].
    pub fn keys(&self) -> ApiKeys {
        let all = Arc::new(Policy::all());
        ApiKeys::with_policies(
            self.api_keys
                .iter()
                .map(|k| (k.as_str(), all.clone()))
                .chain(self.policy_keys.iter().map(|k| (k.key.as_str(), k.policy.clone()))),
        )
    }

    /// The HTTP options this configuration asks for.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions { keys: self.keys(), max_body_bytes: self.max_body_bytes }
    }
}

/// The gateway's routes over the driver backend for `config`.
pub async fn driver_router(config: &Config) -> anyhow::Result<axum::Router> {
    let backend =
        DriverBackend::connect(&config.mongodb_uri, config.mongodb_timeout).await.map_err(|e| anyhow::anyhow!("MONGODB_URI: {e}"))?;
    Ok(router(backend, config.http_options()))
}

/// Serves `config` on `listener` until `shutdown` completes; then stops
/// accepting, lets the requests in flight finish, and returns.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = driver_router(&config).await?;
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// A gateway (or any router) served in process, e.g. by tests and `make dev`.
pub struct Running {
    pub addr: SocketAddr,
    /// `http://<addr>`: actions are at `<url>/action/<name>`.
    pub url: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The driver backend for `config` on `listener` (its `listen` is not used).
    pub async fn start(config: &Config, listener: tokio::net::TcpListener) -> anyhow::Result<Running> {
        Ok(Running::serve(listener, driver_router(config).await?))
    }

    /// Serves `app` on `listener` with graceful shutdown.
    pub fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> Running {
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let graceful = async move {
            // On the signal, or when the sender (Running) is dropped.
            let _ = stopped.wait_for(|s| *s).await;
        };
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(graceful).await });
        Running { addr, url: format!("http://{addr}"), stop, task }
    }

    /// Stops accepting, waits for the requests in flight, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(|k| vars.get(k).cloned())
    }

    const REQUIRED: [(&str, &str); 2] = [("MONGODB_URI", "mongodb://db:27017"), ("GATEWAY_API_KEYS", "one, two")];

    #[test]
    fn defaults_and_every_variable() {
        let c = config(&REQUIRED).unwrap();
        assert_eq!(c.api_keys, ["one", "two"]);
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!((c.max_body_bytes, c.mongodb_timeout), (16 * 1024 * 1024, Duration::from_secs(10)));
        let c = config(&[
            REQUIRED[0],
            REQUIRED[1],
            ("GATEWAY_LISTEN", "127.0.0.1:9000"),
            ("GATEWAY_MAX_BODY_BYTES", "65536"),
            ("GATEWAY_MONGODB_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        assert_eq!((c.listen.port(), c.max_body_bytes, c.mongodb_timeout), (9000, 65536, Duration::from_millis(250)));
        let shown = format!("{c:?}");
        assert!(!shown.contains("one") && !shown.contains("db:27017"), "{shown}");
    }

    #[test]
    fn bad_configuration_names_the_variable() {
        for (vars, names) in [
            (vec![REQUIRED[1]], "MONGODB_URI"),
            (vec![("MONGODB_URI", "http://db"), REQUIRED[1]], "MONGODB_URI"),
            (vec![REQUIRED[0]], "GATEWAY_API_KEYS"),
            (vec![REQUIRED[0], ("GATEWAY_API_KEYS", "a,,b")], "GATEWAY_API_KEYS"),
            (vec![REQUIRED[0], REQUIRED[1], ("GATEWAY_LISTEN", "8080")], "GATEWAY_LISTEN"),
            (vec![REQUIRED[0], REQUIRED[1], ("GATEWAY_MAX_BODY_BYTES", "65535")], "GATEWAY_MAX_BODY_BYTES"),
            (vec![REQUIRED[0], REQUIRED[1], ("GATEWAY_MAX_BODY_BYTES", "16777217")], "GATEWAY_MAX_BODY_BYTES"),
            (vec![REQUIRED[0], REQUIRED[1], ("GATEWAY_MONGODB_TIMEOUT_MS", "0")], "GATEWAY_MONGODB_TIMEOUT_MS"),
        ] {
            let e = config(&vars).unwrap_err();
            assert!(e.starts_with(names), "{vars:?}: {e}");
        }
    }

    const POLICIES: (&str, &str) = (
        "GATEWAY_KEY_POLICIES",
        r#"{"reader": {"users": ["find", "findOne"]}, "writer": {"users": ["insertOne"], "audit": ["insertOne"]}}"#,
    );

    #[test]
    fn named_keys_get_their_policy_and_bare_keys_every_right() {
        let c = config(&[REQUIRED[0], ("GATEWAY_API_KEYS", "reader=r-old, bare-key ,reader = r-new,writer=w=1"), POLICIES]).unwrap();
        assert_eq!(c.api_keys, ["bare-key"]);
        let named: Vec<(&str, &str)> = c.policy_keys.iter().map(|k| (k.name.as_str(), k.key.as_str())).collect();
        assert_eq!(named, [("reader", "r-old"), ("reader", "r-new"), ("writer", "w=1")], "two keys share a name while rotating");
        let reader = Policy::from_rights([("users".to_owned(), Action::Find), ("users".to_owned(), Action::FindOne)]);
        let keys = c.http_options().keys;
        assert_eq!(keys.len(), 4);
        assert_eq!(*keys.accepts("r-old").unwrap(), reader);
        assert_eq!(*keys.accepts("r-new").unwrap(), reader);
        assert_eq!(*keys.accepts("bare-key").unwrap(), Policy::all());
        assert!(keys.accepts("w=1").unwrap().allows("audit", Action::InsertOne));
        assert!(keys.accepts("reader=r-old").is_none() && keys.accepts("w").is_none());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("PolicyKey(reader)") && !shown.contains("r-old") && !shown.contains("bare-key") && !shown.contains("w=1"),
            "{shown}"
        );
        // The policies variable alone changes nothing; the same bare key twice is one key.
        let c = config(&[REQUIRED[0], ("GATEWAY_API_KEYS", "k,k"), POLICIES]).unwrap();
        assert!(c.policy_keys.is_empty());
        assert_eq!(*c.keys().accepts("k").unwrap(), Policy::all());
        // Config::new: every key has every right.
        assert_eq!(*Config::new("mongodb://db", vec!["a".to_owned()]).keys().accepts("a").unwrap(), Policy::all());
    }

    #[test]
    fn a_bad_policy_or_key_entry_stops_start_up_without_showing_a_key() {
        let keys = |v: &'static str| ("GATEWAY_API_KEYS", v);
        let policies = |v: &'static str| ("GATEWAY_KEY_POLICIES", v);
        for (vars, want) in [
            (vec![keys("reader=secret-1"), policies(r#"{"reader": {"users": ["find", "count"]}}"#)], "unknown action 'count'"),
            (
                vec![keys("reader=secret-1"), policies(r#"{"reader": {"users": ["FIND"]}}"#)],
                "policy 'reader': collection 'users': unknown action",
            ),
            (
                vec![keys("reader=secret-1"), policies(r#"{"reader": {"system.users": ["find"]}}"#)],
                "invalid collection name 'system.users'",
            ),
            (vec![keys("reader=secret-1"), policies(r#"{"reader": {"a$b": ["find"]}}"#)], "invalid collection name 'a$b'"),
            (vec![keys("reader=secret-1"), policies(r#"{"reader": {"": ["find"]}}"#)], "invalid collection name ''"),
            (vec![keys("reader=secret-1"), policies(r#"{"reader": {"users": "find"}}"#)], "the actions are an array"),
            (vec![keys("reader=secret-1"), policies(r#"{"reader": ["users"]}"#)], "policy 'reader': a policy is an object"),
            (vec![keys("reader=secret-1"), policies(r#"{"read er": {}}"#)], "policy name 'read er'"),
            (vec![keys("reader=secret-1"), policies(r#"{"reader": {"users": ["find"]}"#)], "invalid JSON"),
            (vec![keys("reader=secret-1"), policies(r#"["reader"]"#)], "expected an object"),
            (
                vec![keys("admin=secret-1"), POLICIES],
                "entry 1 names a policy that GATEWAY_KEY_POLICIES does not define (defined: reader, writer)",
            ),
            (vec![keys("ok,reader=secret-1")], "entry 2 names a policy that GATEWAY_KEY_POLICIES does not define (defined: none)"),
            (vec![keys("secret-1==")], "entry 1 names a policy"),
            (vec![keys("=secret-1"), POLICIES], "entry 1 is malformed"),
            (vec![keys("reader="), POLICIES], "entry 1 is malformed"),
            (vec![keys("ok, read/er=secret-1"), POLICIES], "entry 2 is malformed"),
            (vec![keys("reader=secret-1,secret-1"), POLICIES], "entries 1 and 2 give the same key different rights"),
            (vec![keys("reader=secret-1,writer=secret-1"), POLICIES], "entries 1 and 2 give the same key different rights"),
        ] {
            let vars: Vec<(&str, &str)> = [REQUIRED[0]].into_iter().chain(vars).collect();
            let e = config(&vars).unwrap_err();
            let var = if want.contains("entr") { "GATEWAY_API_KEYS" } else { "GATEWAY_KEY_POLICIES" };
            assert!(e.starts_with(var) && e.contains(want), "{vars:?}: {e}");
            assert!(!e.contains("secret-1"), "{vars:?}: a key in the error: {e}");
        }
    }
}
