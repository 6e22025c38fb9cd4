//! The Data API gateway: the MongoDB Atlas Data API v1 wire contract
//! (docs/upstreams.md) in front of any MongoDB, and the HTTP layer the Data
//! API emulator shares with it.
//!
//! - [`http`]: routes, keys, Content-Type/Accept, EJSON, body limit, the
//!   error envelope, `/healthz`, over a [`Backend`].
//! - [`request`]: request bodies as typed [`ActionRequest`]s.
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
pub mod request;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub use driver::DriverBackend;
pub use error::ApiError;
pub use http::{router, Backend, HttpOptions};
pub use keys::ApiKeys;
pub use request::{Action, ActionRequest, Namespace, Op};

/// The gateway's configuration: environment variables only (README, "The
/// Data API gateway"). `Debug` shows neither the keys nor the URI, which
/// may hold a password.
#[derive(Clone)]
pub struct Config {
    /// `MONGODB_URI` (required): `mongodb://…` or `mongodb+srv://…`.
    pub mongodb_uri: String,
    /// `GATEWAY_API_KEYS` (required): comma-separated, none empty.
    pub api_keys: Vec<String>,
    /// `GATEWAY_LISTEN` (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// `GATEWAY_MAX_BODY_BYTES` (default and maximum 16 MiB, at least 64 KiB).
    pub max_body_bytes: usize,
    /// `GATEWAY_MONGODB_TIMEOUT_MS` (default 10000): connect, server
    /// selection and each operation.
    pub mongodb_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_keys", &format_args!("{} keys", self.api_keys.len()))
            .field("listen", &self.listen)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("mongodb_timeout", &self.mongodb_timeout)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_MONGODB_TIMEOUT_MS: u64 = 10_000;

impl Config {
    /// A configuration with the defaults for everything optional.
    pub fn new(mongodb_uri: impl Into<String>, api_keys: Vec<String>) -> Config {
        Config {
            mongodb_uri: mongodb_uri.into(),
            api_keys,
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            max_body_bytes: http::MAX_BODY_BYTES,
            mongodb_timeout: Duration::from_millis(DEFAULT_MONGODB_TIMEOUT_MS),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var`; the error names the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let uri = set("MONGODB_URI").ok_or("MONGODB_URI is required (mongodb:// or mongodb+srv://)")?;
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err("MONGODB_URI must start with mongodb:// or mongodb+srv://".to_owned());
        }
        let keys = set("GATEWAY_API_KEYS").ok_or("GATEWAY_API_KEYS is required (comma-separated API keys)")?;
        let api_keys: Vec<String> = keys.split(',').map(|k| k.trim().to_owned()).collect();
        if api_keys.iter().any(String::is_empty) {
            return Err("GATEWAY_API_KEYS: empty key in the list".to_owned());
        }
        let mut config = Config::new(uri, api_keys);
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

    /// The HTTP options this configuration asks for.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions { keys: ApiKeys::new(&self.api_keys), max_body_bytes: self.max_body_bytes }
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
}
