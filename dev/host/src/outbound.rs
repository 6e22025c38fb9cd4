//! `allowed_outbound_hosts`: parsing, matching, and enforcement on every
//! outgoing `wasi:http` request.
//!
//! Entry syntax and matching follow Spin's `outbound-networking-config`:
//! - `<scheme>://<host>[:<port>]`; `*` may stand for the scheme, the host,
//!   or the port; `*.example.com` matches any subdomain (not the bare
//!   domain); a host may be an IP or a CIDR block (`10.0.0.0/8`); a port
//!   may be a range `4000..5000` (end excluded).
//! - With no port, the scheme's well-known port applies (`http` 80, `https`
//!   443, `postgres` 5432, `mysql` 3306, `redis` 6379, `mqtt` 1883); a
//!   scheme without one (including `*`) must name a port.
//! - `self` / `self.alt` allow requests back to this app (relative URLs, or
//!   the `self.alt` host); the dev host sends them to its own listener.
//! - Entries may be templates (`"{{ data_api_url }}"`), resolved when the
//!   app is served; one that resolves to "", `http://` or `https://` is
//!   dropped (Spin's "optional endpoint").
//!
//! One deliberate difference: Spin rejects an entry with a path
//! (`http://db:4010/v1`). For a *templated* entry whose value is a base URL
//! with a path, the dev host keeps only scheme, host and port and prints a
//! warning that Spin itself would refuse the app; literal entries with a
//! path are rejected as in Spin.
//!
//! A denied request fails inside the component with
//! `error-code.HTTP-request-denied`, as on Spin, and the host logs which
//! component tried which destination.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use http_body_util::BodyExt;
use url::Host;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::variables::Template;

/// One `allowed_outbound_hosts` entry as written in the manifest.
#[derive(Debug, Clone)]
pub enum AllowedHostEntry {
    /// A literal entry, already parsed.
    Exact(AllowedHost),
    /// A templated entry, parsed once variables are known.
    Template(Template),
}

impl AllowedHostEntry {
    pub fn parse_raw(entry: &str) -> Result<AllowedHostEntry> {
        let template = Template::parse(entry)?;
        if template.is_literal() {
            Ok(AllowedHostEntry::Exact(AllowedHost::parse(entry)?))
        } else {
            Ok(AllowedHostEntry::Template(template))
        }
    }
}

/// One parsed, literal `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeRule {
    Any,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    ToSelf,
    Literal(Host),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    Any,
    Port(u16),
    /// `start..end`, end excluded (a Rust range, as in Spin).
    Range(u16, u16),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses a literal entry with Spin's rules.
    pub fn parse(entry: &str) -> Result<AllowedHost> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => bail!(
                    "{url:?} is not an allowed outbound host format. Hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each. '*://*:*' allows all outbound networking."
                ),
                _ => bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        // The last ':' separates the port unless the whole rest is a valid
        // host by itself (IPv6 addresses are full of colons).
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((h, "")) => (h, ""),
            Some((h, tail)) => {
                if HostRule::parse(rest).is_ok() {
                    (rest, "")
                } else {
                    let port = match tail.split_once('/') {
                        Some((port, path)) => {
                            if !path.is_empty() {
                                bail!("{url:?} has a path but is not allowed to");
                            }
                            port
                        }
                        None => tail,
                    };
                    (h, port)
                }
            }
        };
        let port = PortRule::parse(port, scheme)
            .with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = SchemeRule::parse(scheme)
            .with_context(|| format!("Invalid allowed host scheme {scheme:?}"))?;
        let host =
            HostRule::parse(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(AllowedHost {
            original: entry.to_string(),
            scheme,
            host,
            port,
        })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.allows(&url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port, &url.scheme)
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes.iter().any(|s| self.scheme.allows(s))
            && matches!(self.host, HostRule::Any | HostRule::ToSelf)
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

impl SchemeRule {
    fn parse(scheme: &str) -> Result<SchemeRule> {
        if scheme == "*" {
            return Ok(SchemeRule::Any);
        }
        if scheme.starts_with('{') {
            bail!("scheme lists are not supported");
        }
        if scheme.chars().any(|c| !c.is_alphabetic()) {
            bail!("only alphabetic characters are allowed");
        }
        Ok(SchemeRule::One(scheme.to_string()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            SchemeRule::Any => true,
            SchemeRule::One(s) => s == scheme,
        }
    }
}

impl HostRule {
    fn parse(host: &str) -> Result<HostRule> {
        let mut host = host.trim();
        if host == "*" {
            return Ok(HostRule::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(HostRule::ToSelf);
        }
        if host.starts_with('{') {
            bail!("host lists are not yet supported");
        }
        if let Some((addr, prefix)) = parse_cidr(host) {
            return Ok(HostRule::Cidr(addr, prefix));
        }
        host = host.strip_suffix('/').unwrap_or(host);
        if host.contains('/') {
            bail!("must not include a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            let Host::Domain(domain) = Host::parse(domain)
                .with_context(|| format!("invalid wildcard host \"*.{domain}\""))?
            else {
                bail!("wildcard suffix must be a domain");
            };
            return Ok(HostRule::AnySubdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(HostRule::Literal(Host::parse(host)?))
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (HostRule::Any, _) => true,
            (HostRule::AnySubdomain(suffix), Host::Domain(domain)) => {
                domain.ends_with(suffix.as_str())
            }
            (HostRule::Literal(literal), host) => host == *literal,
            (HostRule::Cidr(net, prefix), Host::Ipv4(ip)) => {
                cidr_contains(*net, *prefix, IpAddr::V4(ip))
            }
            (HostRule::Cidr(net, prefix), Host::Ipv6(ip)) => {
                cidr_contains(*net, *prefix, IpAddr::V6(ip))
            }
            (HostRule::AnySubdomain(_), _) | (HostRule::Cidr(..), Host::Domain(_)) => false,
            // Self requests are checked by `allows_relative`.
            (HostRule::ToSelf, _) => false,
        }
    }
}

/// `addr` or `addr/prefix` (IPv4 or bare IPv6), with host bits zeroed like
/// `ip_network`'s `from_str_truncate`.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (
            addr.parse::<IpAddr>().ok()?,
            Some(prefix.parse::<u8>().ok()?),
        ),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return None;
    }
    Some((mask(addr, prefix), prefix))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> Result<PortRule> {
        if port.is_empty() {
            return well_known_port(scheme).map(PortRule::Port).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(PortRule::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not yet supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let start = start
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            let end = end
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            return Ok(PortRule::Range(start, end));
        }
        Ok(PortRule::Port(port.parse().with_context(|| {
            format!("port {port:?} is not a number")
        })?))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        if *self == PortRule::Any {
            return true;
        }
        let Some(port) = port.or_else(|| well_known_port(scheme)) else {
            return false;
        };
        match self {
            PortRule::Any => true,
            PortRule::Port(p) => *p == port,
            PortRule::Range(start, end) => (*start..*end).contains(&port),
        }
    }
}

/// The destination of an outgoing request, reduced to what the allow-list
/// looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    pub scheme: String,
    pub host: String,
    /// `None` when the URL uses its scheme's default port.
    pub port: Option<u16>,
}

impl OutboundUrl {
    /// Parses an absolute URL; if that fails, retries with
    /// `<default_scheme>://` in front (as Spin does).
    pub fn parse(url: &str, default_scheme: &str) -> Result<OutboundUrl> {
        let parsed = match url::Url::parse(url) {
            Ok(u) if u.has_host() => u,
            first => match url::Url::parse(&format!("{default_scheme}://{url}")) {
                Ok(u) => u,
                Err(second) => {
                    return Err(first.err().map(Into::into).unwrap_or_else(|| second.into()))
                }
            },
        };
        Ok(OutboundUrl {
            scheme: parsed.scheme().to_string(),
            host: parsed.host_str().context("URL has no host")?.to_string(),
            port: parsed.port(),
        })
    }

    /// `scheme://host[:port]`, the form Spin's denial message suggests adding.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// A component's allow-list with every template resolved.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Resolves raw manifest entries against the application variables.
    /// Returns the list and any warnings to show the user.
    pub fn resolve(
        entries: &[String],
        app_values: &HashMap<String, String>,
    ) -> Result<(AllowedHosts, Vec<String>)> {
        let mut hosts = Vec::new();
        let mut warnings = Vec::new();
        for entry in entries {
            match AllowedHostEntry::parse_raw(entry)? {
                AllowedHostEntry::Exact(host) => hosts.push(host),
                AllowedHostEntry::Template(template) => {
                    let resolved =
                        template.resolve(|name| app_values.get(name).map(String::as_str))?;
                    if resolved.is_empty() || resolved == "http://" || resolved == "https://" {
                        continue;
                    }
                    match AllowedHost::parse(&resolved) {
                        Ok(host) => hosts.push(host),
                        Err(strict) => match origin_of_base_url(&resolved) {
                            Some(origin) => {
                                let host = AllowedHost::parse(&origin).with_context(|| {
                                    format!("entry {entry:?} resolved to {resolved:?}")
                                })?;
                                warnings.push(format!(
                                    "allowed_outbound_hosts entry {entry:?} resolves to {resolved:?}, which has a path; allowing {origin:?}. Spin itself rejects this entry ({strict:#}): give it a value without a path before deploying."
                                ));
                                hosts.push(host);
                            }
                            None => {
                                return Err(strict.context(format!(
                                "allowed_outbound_hosts entry {entry:?} resolved to {resolved:?}"
                            )))
                            }
                        },
                    }
                }
            }
        }
        Ok((AllowedHosts { hosts }, warnings))
    }

    /// Builds a list from literal entries only (for tests and tools).
    pub fn from_literals(entries: &[&str]) -> Result<AllowedHosts> {
        let hosts = entries
            .iter()
            .map(|e| AllowedHost::parse(e))
            .collect::<Result<_>>()?;
        Ok(AllowedHosts { hosts })
    }

    pub fn allows(&self, url: &OutboundUrl) -> bool {
        self.hosts.iter().any(|h| h.allows(url))
    }

    /// Whether requests back to this app ("self") are allowed.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.hosts.iter().any(|h| h.allows_relative(schemes))
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &AllowedHost> {
        self.hosts.iter()
    }
}

/// `scheme://host[:port]` of an absolute URL that has a real path (or a
/// query), or `None` when there is nothing to strip.
fn origin_of_base_url(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let host = url.host_str()?;
    if (url.path().is_empty() || url.path() == "/") && url.query().is_none() {
        return None;
    }
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// What one component may reach, shared by all its requests in one `serve`.
#[derive(Debug)]
pub struct OutboundPolicy {
    pub component_id: String,
    pub allowed: AllowedHosts,
    /// Where `self` requests go: this server's own listener.
    pub self_addr: SocketAddr,
}

/// The `wasi:http` hooks installed in each request's store.
pub struct OutboundHooks(pub Arc<OutboundPolicy>);

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl OutboundPolicy {
    /// Checks the request against the allow-list and, for a self request,
    /// points it at this server. `Err` carries the denied destination.
    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), String> {
        let authority_host = request.uri().authority().map(|a| a.host().to_string());
        let is_self = match authority_host.as_deref() {
            None | Some("") => true,
            Some(host) => host == "self.alt",
        };
        if is_self {
            if !self.allowed.allows_relative(&["http", "https"]) {
                return Err("self".to_string());
            }
            let path_and_query = request
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_else(|| "/".to_string());
            let authority = self.self_addr.to_string();
            *request.uri_mut() = format!("http://{authority}{path_and_query}")
                .parse()
                .map_err(|_| "self".to_string())?;
            if let Ok(value) = http::HeaderValue::from_str(&authority) {
                request.headers_mut().insert(http::header::HOST, value);
            }
            return Ok(());
        }
        let uri = request.uri().to_string();
        match OutboundUrl::parse(&uri, "https") {
            Ok(url) if self.allowed.allows(&url) => Ok(()),
            Ok(url) => Err(url.origin()),
            Err(_) => Err(uri),
        }
    }

    fn log_denied(&self, destination: &str) {
        if destination == "self" {
            eprintln!(
                "dev-host: component '{}' denied an HTTP request to its own app: add \"http://self\" to its allowed_outbound_hosts to allow it",
                self.component_id
            );
        } else {
            eprintln!(
                "dev-host: component '{}' denied outbound request to '{destination}' (not in allowed_outbound_hosts); to allow it add \"{destination}\"",
                self.component_id
            );
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        if let Err(destination) = self.0.admit(&mut request) {
            self.0.log_denied(&destination);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // Allowed: send it the way wasmtime-wasi-http's default hook does,
        // which honours the guest's connect / first-byte / between-bytes
        // timeouts from `request-options`.
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(|body| body.map_err(Into::into).boxed_unsync()),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> OutboundUrl {
        OutboundUrl::parse(u, "https").unwrap()
    }

    /// (entry, url, allowed?)
    #[test]
    fn allowed_host_table() {
        let cases: &[(&str, &str, bool)] = &[
            // exact host + port
            (
                "http://127.0.0.1:4010",
                "http://127.0.0.1:4010/action/find",
                true,
            ),
            ("http://127.0.0.1:4010", "http://127.0.0.1:4011/", false),
            ("http://127.0.0.1:4010", "https://127.0.0.1:4010/", false),
            ("http://127.0.0.1:4010", "http://127.0.0.2:4010/", false),
            ("http://127.0.0.1:4010/", "http://127.0.0.1:4010/x", true),
            // default port by scheme
            (
                "https://api.example.com",
                "https://api.example.com/v1",
                true,
            ),
            (
                "https://api.example.com",
                "https://api.example.com:443/v1",
                true,
            ),
            (
                "https://api.example.com",
                "https://api.example.com:8443/v1",
                false,
            ),
            ("http://api.example.com", "http://api.example.com:80/", true),
            ("http://api.example.com", "https://api.example.com/", false),
            (
                "https://api.example.com:443",
                "https://api.example.com/",
                true,
            ),
            // host case-insensitive
            ("https://API.Example.com", "https://api.example.COM/", true),
            // subdomain wildcard: any depth, not the bare domain
            ("https://*.example.com", "https://a.example.com/", true),
            ("https://*.example.com", "https://a.b.example.com/", true),
            ("https://*.example.com", "https://example.com/", false),
            ("https://*.example.com", "https://badexample.com/", false),
            ("https://*.example.com", "http://a.example.com/", false),
            // port wildcard
            ("http://localhost:*", "http://localhost:3000/", true),
            ("http://localhost:*", "http://localhost/", true),
            ("http://localhost:*", "https://localhost:3000/", false),
            ("http://localhost:*", "http://127.0.0.1:3000/", false),
            // everything
            ("*://*:*", "https://anything.test:1234/x", true),
            ("*://*:*", "http://10.1.2.3/", true),
            // scheme wildcard with explicit port
            ("*://db.internal:5432", "postgres://db.internal/", true),
            ("*://db.internal:5432", "http://db.internal:5432/", true),
            ("*://db.internal:5432", "http://db.internal/", false),
            // port ranges: end excluded
            (
                "http://127.0.0.1:4000..4010",
                "http://127.0.0.1:4009/",
                true,
            ),
            (
                "http://127.0.0.1:4000..4010",
                "http://127.0.0.1:4010/",
                false,
            ),
            // CIDR
            ("http://10.0.0.0/8:80", "http://10.20.30.40/", true),
            ("http://10.0.0.0/8:80", "http://11.0.0.1/", false),
            ("http://10.0.0.0/8:80", "http://ten.example/", false),
            // IPv6
            ("http://[::1]:8080", "http://[::1]:8080/", true),
            ("http://[::1]:8080", "http://[::2]:8080/", false),
            // self is only for relative requests
            ("http://self", "http://self/", false),
        ];
        for (entry, target, expected) in cases {
            let hosts = AllowedHosts::from_literals(&[entry]).unwrap();
            assert_eq!(hosts.allows(&url(target)), *expected, "{entry} vs {target}");
        }
    }

    #[test]
    fn entry_syntax_errors_match_spin() {
        for bad in [
            "example.com",
            "*",
            "",
            "*://example.com",           // no default port for `*`
            "ftp://example.com",         // no default port for ftp
            "http://example.com/a",      // path
            "http://example.com:6666/a", // path
            "http://*.example.com/a",
            "http://ex*ample.com",
            "http://*.127.0.0.1",
            "http://example.com:99999",
            "http://example.com:abc",
            "h1tp://example.com",
            "http://example.com//",
        ] {
            assert!(
                AllowedHost::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        for good in [
            "http://example.com/",
            "http://self",
            "*://*:*",
            "mqtt://broker",
            "http://[::1]",
        ] {
            assert!(
                AllowedHost::parse(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }

    #[test]
    fn templated_entries_resolve_at_serve_time() {
        let vars: HashMap<String, String> = [
            ("data_api_url", "http://127.0.0.1:4010"),
            (
                "data_api_base",
                "https://data.example.com/app/x/endpoint/data/v1",
            ),
            ("mail_url", ""),
            ("auth_host", "auth.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let entries: Vec<String> = [
            "{{ data_api_url }}",
            "{{ data_api_base }}",
            "{{ mail_url }}",
            "https://{{ auth_host }}",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let (hosts, warnings) = AllowedHosts::resolve(&entries, &vars).unwrap();
        assert_eq!(hosts.iter().count(), 3, "empty template value is dropped");
        assert!(hosts.allows(&url("http://127.0.0.1:4010/action/findOne")));
        assert!(!hosts.allows(&url("http://127.0.0.1:4011/")));
        assert!(hosts.allows(&url("https://data.example.com/other/path")));
        assert!(hosts.allows(&url("https://auth.example.com/api/v3/")));
        assert!(!hosts.allows(&url("https://mail.example.com/")));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("Spin itself rejects"),
            "{}",
            warnings[0]
        );

        let bad = vec!["{{ auth_host }}".to_string()];
        assert!(
            AllowedHosts::resolve(&bad, &vars).is_err(),
            "no scheme after resolving"
        );
    }

    #[test]
    fn self_requests() {
        let none = AllowedHosts::from_literals(&["https://example.com"]).unwrap();
        assert!(!none.allows_relative(&["http", "https"]));
        for entry in ["http://self", "http://self.alt", "*://*:*", "https://self"] {
            let hosts = AllowedHosts::from_literals(&[entry]).unwrap();
            assert!(hosts.allows_relative(&["http", "https"]), "{entry}");
        }
    }

    #[test]
    fn policy_admits_and_rewrites() {
        let policy = OutboundPolicy {
            component_id: "c".into(),
            allowed: AllowedHosts::from_literals(&["http://127.0.0.1:4010", "http://self"])
                .unwrap(),
            self_addr: "127.0.0.1:3000".parse().unwrap(),
        };
        let mut ok = http::Request::get("http://127.0.0.1:4010/x")
            .body(())
            .unwrap();
        assert!(policy.admit(&mut ok).is_ok());
        let mut denied = http::Request::get("http://127.0.0.1:9/x").body(()).unwrap();
        assert_eq!(policy.admit(&mut denied).unwrap_err(), "http://127.0.0.1:9");
        let mut own = http::Request::get("http://self.alt/users/me?x=1")
            .body(())
            .unwrap();
        assert!(policy.admit(&mut own).is_ok());
        assert_eq!(own.uri().to_string(), "http://127.0.0.1:3000/users/me?x=1");
        assert_eq!(own.headers()[http::header::HOST], "127.0.0.1:3000");
    }
}
