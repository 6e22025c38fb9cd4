//! `allowed_outbound_hosts`: entry syntax, matching, and the two moments
//! Spin checks templated entries.
//!
//! Entry syntax follows Spin's `outbound-networking-config` (v3.6 and 4.0
//! agree), including its quirks, so that an entry the dev host accepts is
//! one Spin accepts and vice versa:
//! - `<scheme>://<host>[:<port>]`; `*` may stand for the scheme, the host or
//!   the port; `*.example.com` matches any subdomain (not the bare domain);
//!   a host may be an IP or a CIDR block (`10.0.0.0/8`); a port may be a
//!   range `4000..5000` (end excluded).
//! - The port is whatever follows the *last* `:`, so a bracketed IPv6 host
//!   must name a port (`http://[::1]` is refused, `http://[::1]:80` is not).
//! - With no port, the scheme's well-known port applies (`http` 80, `https`
//!   443, `postgres` 5432, `mysql` 3306, `redis` 6379, `mqtt` 1883); a
//!   scheme without one (including `*`) must name a port.
//! - Trailing slashes are tolerated; any other path is refused, and so are
//!   `""`, a bare host, and `insecure:allow-all`.
//! - `self` / `self.alt` allow requests back to this app.
//!
//! Templated entries (`"{{ data_api_url }}"`) are checked twice, as Spin
//! does:
//! - **at load** ([`validate_entries`]): each one is resolved with the
//!   application variables' *default* values and must then parse; an entry
//!   naming a variable without a default (a required one) is skipped.
//! - **per instance** ([`AllowedHosts::resolve`]): every entry is resolved
//!   with the values in force; if any one fails, the whole list fails, and
//!   Spin then denies every outbound request of that component.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use url::Host;

use crate::manifest::VariableDecl;
use crate::variables::Template;

/// One `allowed_outbound_hosts` entry as written in the manifest.
#[derive(Debug, Clone)]
pub enum AllowedHostEntry {
    /// A literal entry, already parsed.
    Exact(AllowedHost),
    /// A templated entry, parsed once variables are known.
    Template(Template),
}

/// Parses a component's raw entries: literal ones now, templated ones
/// later. Fails as Spin's loader does on `insecure:allow-all`, an invalid
/// template, or an invalid literal entry.
pub fn parse_entries(entries: &[String]) -> Result<Vec<AllowedHostEntry>> {
    // Spin singles out this legacy spelling only when it is the whole list;
    // anywhere else it fails like any entry without a scheme.
    if let [only] = entries {
        if only == "insecure:allow-all" {
            bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'");
        }
    }
    entries
        .iter()
        .map(|entry| {
            let template = Template::parse(entry)?;
            Ok(if template.is_literal() {
                AllowedHostEntry::Exact(AllowedHost::parse(entry)?)
            } else {
                AllowedHostEntry::Template(template)
            })
        })
        .collect()
}

/// The load-time check: every templated entry resolved with the variables'
/// defaults must parse. Entries naming a variable without a default cannot
/// be checked yet and are skipped.
pub fn validate_entries(entries: &[String], variables: &BTreeMap<String, VariableDecl>) -> Result<()> {
    for entry in parse_entries(entries)? {
        let AllowedHostEntry::Template(template) = entry else {
            continue;
        };
        let Ok(resolved) = template.resolve(|name| variables.get(name).and_then(|v| v.default.as_deref())) else {
            continue;
        };
        AllowedHost::parse(&resolved).with_context(|| {
            format!("using default variable value(s) with template {:?} results in invalid config {resolved:?}", template.to_string())
        })?;
    }
    Ok(())
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
    /// Network address (host bits cleared) and prefix length.
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
    /// Parses a literal entry with Spin's rules (see the module docs). The
    /// parts are checked port first, then scheme, then host, so the error
    /// names the same part Spin's would.
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
        // Everything after the last ':' is the port (and maybe a path).
        let (host, after_colon) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match after_colon.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                bail!("{url:?} has a path but is not allowed to")
            }
            Some((port, _)) => port,
            None => after_colon,
        };
        let port = PortRule::parse(port, scheme).with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = SchemeRule::parse(scheme).with_context(|| format!("Invalid allowed host scheme {scheme:?}"))?;
        let host = HostRule::parse(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(AllowedHost { original: entry.to_string(), scheme, host, port })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.allows(&url.scheme) && self.host.allows(&url.host) && self.port.allows(url.port, &url.scheme)
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes.iter().any(|s| self.scheme.allows(s)) && matches!(self.host, HostRule::Any | HostRule::ToSelf)
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
        let host = host.trim();
        match host {
            "*" => return Ok(HostRule::Any),
            "self" | "self.alt" => return Ok(HostRule::ToSelf),
            _ => {}
        }
        if host.starts_with('{') {
            if !host.ends_with('}') {
                bail!("unterminated host list");
            }
            bail!("host lists are not yet supported");
        }
        if let Some((addr, prefix)) = parse_cidr(host) {
            return Ok(HostRule::Cidr(addr, prefix));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            bail!("must not include a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            // Spin takes the suffix as written, without checking it is a domain.
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
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
            (HostRule::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (HostRule::Literal(literal), host) => host == *literal,
            (HostRule::Cidr(net, prefix), Host::Ipv4(ip)) => cidr_contains(*net, *prefix, IpAddr::V4(ip)),
            (HostRule::Cidr(net, prefix), Host::Ipv6(ip)) => cidr_contains(*net, *prefix, IpAddr::V6(ip)),
            (HostRule::AnySubdomain(_), _) | (HostRule::Cidr(..), Host::Domain(_)) => false,
            // Self requests are checked by `allows_relative`.
            (HostRule::ToSelf, _) => false,
        }
    }
}

/// `addr/prefix` (IPv4 or bare IPv6; the prefix is required), with host
/// bits cleared as `ip_network`'s `from_str_truncate` does.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let addr = addr.parse::<IpAddr>().ok()?;
    let prefix = prefix.parse::<u8>().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return None;
    }
    Some((mask(addr, prefix), prefix))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & keep).into())
        }
        IpAddr::V6(a) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & keep).into())
        }
    }
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> Result<PortRule> {
        if port.is_empty() {
            return well_known_port(scheme)
                .map(PortRule::Port)
                .with_context(|| format!("no port was provided and the scheme {scheme:?} does not have a known default port number"));
        }
        if port == "*" {
            return Ok(PortRule::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not yet supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let number = |text: &str| text.parse::<u16>().with_context(|| format!("port range {port:?} contains non-number"));
            return Ok(PortRule::Range(number(start)?, number(end)?));
        }
        let port = port.parse().with_context(|| format!("port {port:?} is not a number"))?;
        Ok(PortRule::Port(port))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let port = match (self, port.or_else(|| well_known_port(scheme))) {
            (PortRule::Any, _) => return true,
            (_, None) => return false,
            (_, Some(port)) => port,
        };
        match self {
            PortRule::Port(p) => *p == port,
            PortRule::Range(start, end) => (*start..*end).contains(&port),
            PortRule::Any => true,
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
    /// `<default_scheme>://` in front (as Spin does). User info is
    /// percent-encoded first so that a `#` or `/` in a password cannot
    /// change which host the URL names.
    pub fn parse(url: &str, default_scheme: &str) -> Result<OutboundUrl> {
        let url = encode_userinfo(url);
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => u,
            first => match url::Url::parse(&format!("{default_scheme}://{url}")) {
                Ok(u) => u,
                Err(second) => return Err(first.err().map(Into::into).unwrap_or_else(|| second.into())),
            },
        };
        Ok(OutboundUrl {
            scheme: parsed.scheme().to_string(),
            host: parsed.host_str().with_context(|| format!("{url:?} does not have a host component"))?.to_string(),
            port: parsed.port(),
        })
    }

    /// `scheme://host[:port]`, the form a denial message suggests adding.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// Percent-encodes whatever stands between `scheme://` and an `@` that
/// comes before the first `/` of the rest.
fn encode_userinfo(url: &str) -> String {
    let Some(at) = url.find('@') else {
        return url.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[start..].find('/').map_or(usize::MAX, |i| i + start);
    if at < start || at >= path_start {
        return url.to_string();
    }
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..start]);
    for byte in url[start..at].bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out.push_str(&url[at..]);
    out
}

/// A component's allow-list with every template resolved.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Resolves raw manifest entries with the application variables'
    /// values in force. Any entry that does not resolve to a valid one makes
    /// the whole list fail, as on Spin.
    pub fn resolve(entries: &[String], app_values: &HashMap<String, String>) -> Result<AllowedHosts> {
        let mut hosts = Vec::new();
        for entry in parse_entries(entries)? {
            hosts.push(match entry {
                AllowedHostEntry::Exact(host) => host,
                AllowedHostEntry::Template(template) => {
                    let resolved = template.resolve(|name| app_values.get(name).map(String::as_str))?;
                    AllowedHost::parse(&resolved)
                        .with_context(|| format!("template {:?} resolves to {resolved:?}", template.to_string()))?
                }
            });
        }
        Ok(AllowedHosts { hosts })
    }

    /// Builds a list from literal entries only (for tests and tools).
    pub fn from_literals(entries: &[&str]) -> Result<AllowedHosts> {
        let hosts = entries.iter().map(|e| AllowedHost::parse(e)).collect::<Result<_>>()?;
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

#[cfg(test)]
mod tests {
    //! The cases of Spin's own `allowed_hosts.rs` tests, restated, plus the
    //! quirks of its parser that decide what a manifest may hold.
    use super::*;

    fn rules(entry: &str) -> (SchemeRule, HostRule, PortRule) {
        let h = AllowedHost::parse(entry).unwrap_or_else(|e| panic!("{entry:?}: {e:#}"));
        (h.scheme, h.host, h.port)
    }

    fn one(scheme: &str) -> SchemeRule {
        SchemeRule::One(scheme.into())
    }

    fn domain(name: &str) -> HostRule {
        HostRule::Literal(Host::parse(name).unwrap())
    }

    fn refused(entry: &str) -> String {
        match AllowedHost::parse(entry) {
            Ok(h) => panic!("{entry:?} should be refused, parsed as {h:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn url(u: &str, default_scheme: &str) -> OutboundUrl {
        OutboundUrl::parse(u, default_scheme).unwrap()
    }

    fn list(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::from_literals(entries).unwrap()
    }

    #[test]
    fn no_port_means_the_schemes_default_and_one_trailing_slash_is_fine() {
        let http80 = (one("http"), domain("spin.fermyon.dev"), PortRule::Port(80));
        assert_eq!(rules("http://spin.fermyon.dev"), http80);
        assert_eq!(rules("http://spin.fermyon.dev/"), http80);
        // Spin trims every trailing slash of the host part.
        assert_eq!(rules("http://spin.fermyon.dev//"), http80);
        assert_eq!(rules("https://spin.fermyon.dev"), (one("https"), domain("spin.fermyon.dev"), PortRule::Port(443)));
        assert_eq!(rules("mqtt://broker").2, PortRule::Port(1883));
        assert_eq!(rules("postgres://db").2, PortRule::Port(5432));
    }

    #[test]
    fn explicit_ports_and_ranges() {
        let h4444 = (one("http"), domain("spin.fermyon.dev"), PortRule::Port(4444));
        assert_eq!(rules("http://spin.fermyon.dev:4444"), h4444);
        assert_eq!(rules("http://spin.fermyon.dev:4444/"), h4444);
        assert_eq!(rules("https://spin.fermyon.dev:5555").2, PortRule::Port(5555));
        assert_eq!(rules("http://spin.fermyon.dev:4444..5555").2, PortRule::Range(4444, 5555));
        assert!(refused("http://spin.fermyon.dev:4444..x").contains("non-number"));
        assert!(refused("http://example.com:99999").contains("not a number"));
        assert!(refused("http://example.com:abc").contains("not a number"));
        assert!(refused("http://example.com:{80,81}").contains("port lists"));
    }

    #[test]
    fn a_scheme_is_required_and_must_be_alphabetic() {
        for bare in ["spin.fermyon.dev", "spin.fermyon.dev:80", "localhost", "localhost:3001"] {
            assert!(refused(bare).contains("does not contain a scheme"), "{bare}");
        }
        for nonsense in ["", "*", ":", "?", "  "] {
            assert!(refused(nonsense).contains("is not an allowed outbound host format"), "{nonsense:?}");
        }
        // The port is checked first, so give one to reach the scheme check.
        assert!(refused("h1tp://example.com:80").contains("Invalid allowed host scheme"));
        assert!(refused("h1tp://example.com").contains("no port was provided"));
        assert!(refused("{http,https}://example.com:80").contains("scheme lists"));
        assert_eq!(rules("*://spin.fermyon.dev:7777"), (SchemeRule::Any, domain("spin.fermyon.dev"), PortRule::Port(7777)));
        // `*` and unknown schemes have no default port.
        assert!(refused("*://example.com").contains("does not have a known default port"));
        assert!(refused("ftp://example.com").contains("does not have a known default port"));
    }

    #[test]
    fn hosts_self_localhost_wildcards_and_ip_addresses() {
        assert_eq!(rules("http://self"), (one("http"), HostRule::ToSelf, PortRule::Port(80)));
        assert_eq!(rules("http://self.alt").1, HostRule::ToSelf);
        assert_eq!(rules("http://localhost:3001").1, domain("localhost"));
        assert_eq!(rules("http://*.example.com").1, HostRule::AnySubdomain(".example.com".into()));
        // Spin takes a wildcard's suffix as written.
        assert_eq!(rules("http://*.127.0.0.1").1, HostRule::AnySubdomain(".127.0.0.1".into()));
        assert!(refused("http://ex*ample.com").contains("Invalid allowed host"));
        assert!(refused("http://*.*.example.com").contains("Invalid allowed host"));
        assert_eq!(rules("http://192.168.1.1").1, domain("192.168.1.1"));
        assert_eq!(rules("http://192.168.1.1:3002").2, PortRule::Port(3002));
        assert_eq!(rules("http://[::1]:8001"), (one("http"), domain("[::1]"), PortRule::Port(8001)));
        assert_eq!(rules("*://*:*"), (SchemeRule::Any, HostRule::Any, PortRule::Any));
    }

    #[test]
    fn the_port_follows_the_last_colon_so_bare_ipv6_needs_one() {
        // "[::1]" splits into host "[:" and port "1]".
        assert!(refused("http://[::1]").contains("Invalid allowed host port \"1]\""));
        assert!(refused("http://[::1]/").contains("Invalid allowed host port"));
    }

    #[test]
    fn cidr_blocks_need_a_port_unless_the_scheme_has_one() {
        assert_eq!(rules("*://127.0.0.0/24:80"), (SchemeRule::Any, HostRule::Cidr("127.0.0.0".parse().unwrap(), 24), PortRule::Port(80)));
        assert!(refused("*://127.0.0.0/24").contains("no port was provided"));
        assert_eq!(rules("*://ff00::/8:80").1, HostRule::Cidr("ff00::".parse().unwrap(), 8));
        // Host bits are cleared, as `from_str_truncate` does.
        assert_eq!(rules("*://127.0.0.1/24:63551").1, HostRule::Cidr("127.0.0.0".parse().unwrap(), 24));
    }

    #[test]
    fn a_path_is_refused() {
        for entry in [
            "http://spin.fermyon.dev/a",
            "http://spin.fermyon.dev:6666/a/b",
            "http://*.fermyon.dev/a",
            "http://127.0.0.1:4010/v1",
            "https://data.example.com/app/x/endpoint/data/v1",
        ] {
            let why = refused(entry);
            assert!(why.contains("has a path") || why.contains("must not include a path"), "{entry}: {why}");
        }
    }

    #[test]
    fn insecure_allow_all_is_refused_alone_or_in_a_list() {
        let alone = parse_entries(&["insecure:allow-all".into()]).unwrap_err();
        assert!(alone.to_string().contains("use '*://*:*' instead"), "{alone}");
        let listed = parse_entries(&["https://a.example".into(), "insecure:allow-all".into()]);
        assert!(listed.is_err());
        assert!(parse_entries(&["spin.fermyon.dev".into(), "insecure:allow-all".into()]).is_err());
    }

    #[test]
    fn matching_specific_hosts() {
        let allowed = list(&["*://spin.fermyon.dev:443", "http://example.com:8383"]);
        assert!(allowed.allows(&url("http://example.com:8383/foo/bar", "http")));
        assert!(allowed.allows(&url("https://spin.fermyon.dev", "https")));
        assert!(allowed.allows(&url("https://spin.fermyon.dev/", "https")));
        assert!(!allowed.allows(&url("http://example.com/", "http")));
        assert!(!allowed.allows(&url("http://google.com/", "http")));
        // Without a scheme the default one is put in front.
        assert!(allowed.allows(&url("spin.fermyon.dev:443", "https")));
        assert!(allowed.allows(&url("example.com:8383", "http")));

        let slash = list(&["https://my.api.com/"]);
        assert!(slash.allows(&url("https://my.api.com", "https")));
        assert!(slash.allows(&url("https://my.api.com/", "https")));
    }

    #[test]
    fn matching_subdomain_wildcards() {
        let allowed = list(&["http://*.example.com", "http://*.example2.com:8383"]);
        assert!(allowed.allows(&url("http://a.example.com/foo/bar", "http")));
        assert!(allowed.allows(&url("http://a.b.example.com/foo/bar", "http")));
        assert!(allowed.allows(&url("http://a.b.example2.com:8383/foo/bar", "http")));
        assert!(!allowed.allows(&url("http://a.b.example2.com/foo/bar", "http")));
        assert!(!allowed.allows(&url("http://example.com/foo/bar", "http")));
        assert!(!allowed.allows(&url("http://example.com:8383/foo/bar", "http")));
        assert!(!allowed.allows(&url("http://myexample.com/foo/bar", "http")));
    }

    #[test]
    fn matching_ports_schemes_cidr_and_self() {
        let cases: &[(&str, &str, bool)] = &[
            ("http://127.0.0.1:4010", "http://127.0.0.1:4010/action/find", true),
            ("http://127.0.0.1:4010", "http://127.0.0.1:4011/", false),
            ("http://127.0.0.1:4010", "https://127.0.0.1:4010/", false),
            ("https://api.example.com", "https://api.example.com:443/v1", true),
            ("https://api.example.com", "https://api.example.com:8443/v1", false),
            ("https://API.Example.com", "https://api.example.COM/", true),
            ("http://localhost:*", "http://localhost/", true),
            ("http://localhost:*", "https://localhost:3000/", false),
            ("*://db.internal:5432", "postgres://db.internal/", true),
            ("*://db.internal:5432", "http://db.internal/", false),
            ("http://127.0.0.1:4000..4010", "http://127.0.0.1:4009/", true),
            ("http://127.0.0.1:4000..4010", "http://127.0.0.1:4010/", false),
            ("http://10.0.0.0/8:80", "http://10.20.30.40/", true),
            ("http://10.0.0.0/8:80", "http://11.0.0.1/", false),
            ("http://10.0.0.0/8:80", "http://ten.example/", false),
            ("*://127.0.0.1/24:63551", "tcp://127.0.0.1:63551", true),
            ("http://[::1]:8080", "http://[::1]:8080/", true),
            ("http://[::1]:8080", "http://[::2]:8080/", false),
            ("http://self", "http://self/", false),
        ];
        for (entry, target, expected) in cases {
            let scheme = target.split("://").next().unwrap();
            assert_eq!(list(&[entry]).allows(&url(target, scheme)), *expected, "{entry} vs {target}");
        }
        for entry in ["http://self", "http://self.alt", "*://*:*", "https://self"] {
            assert!(list(&[entry]).allows_relative(&["http", "https"]), "{entry}");
        }
        assert!(!list(&["https://example.com"]).allows_relative(&["http", "https"]));
    }

    #[test]
    fn user_info_cannot_change_the_host() {
        for u in [
            "https://example.com/file@0.1.0.json",
            "https://user:password@example.com/file@0.1.0.json",
            "https://user:pass#word@example.com/file@0.1.0.json",
            "https://user:password@example.com",
        ] {
            assert_eq!(url(u, "https").host, "example.com", "{u}");
        }
        let mysql = list(&["mysql://xyz.com"]);
        for u in ["mysql://user:pass#word@xyz.com", "mysql://user%3Apass%23word@xyz.com", "user%3Apass%23word@xyz.com"] {
            assert!(mysql.allows(&url(u, "mysql")), "{u}");
        }
    }

    fn decls(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, VariableDecl> {
        pairs
            .iter()
            .map(|(name, default)| {
                (name.to_string(), VariableDecl { default: default.map(str::to_string), required: default.is_none(), secret: false })
            })
            .collect()
    }

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn load_checks_templates_with_default_values() {
        let vars = decls(&[
            ("origin", Some("http://127.0.0.1:4010")),
            ("empty", Some("")),
            ("with_path", Some("https://data.example.com/v1")),
            ("bare_host", Some("auth.example.com")),
            ("required", None),
        ]);
        let ok = entries(&["{{ origin }}", "https://{{ bare_host }}", "{{ required }}"]);
        validate_entries(&ok, &vars).unwrap();
        // Not resolvable with defaults (required, or not even declared):
        // skipped at load, as on Spin.
        validate_entries(&entries(&["{{ required }}/x", "{{ undeclared }}"]), &vars).unwrap();

        let err = format!("{:#}", validate_entries(&entries(&["{{ empty }}"]), &vars).unwrap_err());
        assert!(err.starts_with("using default variable value(s) with template \"{{ empty }}\" results in invalid config \"\": "), "{err}");
        for bad in ["{{ with_path }}", "{{ bare_host }}", "{{ origin }}/v1"] {
            assert!(validate_entries(&entries(&[bad]), &vars).is_err(), "{bad}");
        }
        // Literal entries and templates themselves are checked too.
        assert!(validate_entries(&entries(&["example.com"]), &vars).is_err());
        assert!(validate_entries(&entries(&["{{ origin"]), &vars).is_err());
    }

    #[test]
    fn runtime_resolution_fails_as_a_whole() {
        let values: HashMap<String, String> = [("origin", "http://127.0.0.1:4010"), ("host", "auth.example.com"), ("empty", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hosts = AllowedHosts::resolve(&entries(&["{{ origin }}", "https://{{ host }}"]), &values).unwrap();
        assert!(hosts.allows(&url("http://127.0.0.1:4010/action/findOne", "https")));
        assert!(hosts.allows(&url("https://auth.example.com/api/v3/", "https")));
        assert!(!hosts.allows(&url("http://127.0.0.1:4011/", "https")));

        for bad in [
            &["{{ origin }}", "{{ empty }}"][..],
            &["{{ origin }}", "{{ host }}"],
            &["{{ origin }}/v1"],
            &["{{ origin }}", "{{ undeclared }}"],
        ] {
            assert!(AllowedHosts::resolve(&entries(bad), &values).is_err(), "{bad:?}");
        }
    }
}
