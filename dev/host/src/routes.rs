//! The HTTP route table, matched the way Spin 3 matches it, and the
//! `spin-*` request headers that describe a match to the component.
//!
//! Spin hands route patterns to the `routefinder` crate (0.5); this module
//! re-implements the behaviour Spin relies on:
//!
//! - A route is `/a/b` (exact), may contain `:name` segments (one non-empty
//!   path segment each), and may end in `/...` (trailing wildcard, matching
//!   zero or more further segments). `/*` at the end is accepted as a
//!   wildcard too, as Spin does.
//! - Leading and trailing slashes of the request path are ignored, so
//!   `/users/me/` matches `/users/me`. Routing looks at the path only
//!   (never the method or query); the path is not percent-decoded.
//! - Precedence, checked before any path is seen: compare two routes token
//!   by token (segments, slashes and dots); at the first difference a
//!   literal beats a `:param`, which beats the wildcard. If one route is a
//!   token-wise prefix of the other, the shorter one is tried first (it can
//!   only match shorter paths). Equal-ranked routes keep manifest order.
//!   So `/users/me` beats `/users/:subject`, `/one/two/...` beats
//!   `/one/...`, and `/a/b/...` beats `/a/:x/c`.
//! - Two triggers with the same route string: the later one wins (Spin
//!   warns; so does `Router::build`'s caller).

use std::cmp::Ordering;
use std::net::SocketAddr;

use anyhow::{bail, Result};

/// One piece of a parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Slash,
    Dot,
    Exact(String),
    Param(String),
    Wildcard,
}

/// A route from the manifest, ready to match.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// Component that serves the route.
    pub component: String,
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route combined with the base `/` (`spin-matched-route`).
    pub based_route: String,
    tokens: Vec<Token>,
}

/// A duplicate route string: only `effective` is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    pub route: String,
    pub replaced: String,
    pub effective: String,
}

/// All routable triggers, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<RouteEntry>,
}

/// A successful match of a request path.
#[derive(Debug, Clone)]
pub struct RouteMatch<'r> {
    pub entry: &'r RouteEntry,
    /// `:name` captures, in route order.
    pub params: Vec<(&'r str, String)>,
    /// The part matched by a trailing wildcard, Spin-style: `""` for exact
    /// routes and for `/foo/...` on `/foo`, `/` for `/foo/`, `/bar` for
    /// `/foo/bar`, `/bar/` for `/foo/bar/` (`spin-path-info`).
    pub path_info: String,
}

impl Router {
    /// Builds the table from `(route, component)` pairs in manifest order.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(Router, Vec<DuplicateRoute>)> {
        // Deduplicate on the raw route string; the last trigger wins but
        // keeps the first one's position, as in Spin.
        let mut unique: Vec<(String, String)> = Vec::new();
        let mut duplicates = Vec::new();
        for (raw, component) in routes {
            if let Some(slot) = unique.iter_mut().find(|(r, _)| r == raw) {
                duplicates.push(DuplicateRoute {
                    route: raw.to_string(),
                    replaced: std::mem::replace(&mut slot.1, component.to_string()),
                    effective: component.to_string(),
                });
            } else {
                unique.push((raw.to_string(), component.to_string()));
            }
        }

        let mut entries = Vec::with_capacity(unique.len());
        for (raw_route, component) in unique {
            let based_route = based_route(&raw_route);
            let tokens = parse_pattern(&pattern_of(&based_route))
                .map_err(|e| anyhow::anyhow!("Error parsing route {based_route} associated with component {component}: {e}"))?;
            entries.push(RouteEntry { component, raw_route, based_route, tokens });
        }
        // Stable sort: equal-ranked routes stay in manifest order.
        entries.sort_by(|a, b| specificity(&b.tokens, &a.tokens));
        Ok((Router { entries }, duplicates))
    }

    /// Routes in the order they are tried.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// The best route for a request path, if any.
    pub fn route<'r>(&'r self, path: &str) -> Option<RouteMatch<'r>> {
        self.entries.iter().find_map(|entry| {
            let (params, wildcard) = match_tokens(&entry.tokens, path)?;
            let path_info = match wildcard {
                None => String::new(),
                Some(rest) => match (rest.is_empty(), path.ends_with('/')) {
                    (true, false) => String::new(),
                    (true, true) => "/".to_string(),
                    (false, false) => format!("/{rest}"),
                    (false, true) => format!("/{rest}/"),
                },
            };
            Some(RouteMatch { entry, params, path_info })
        })
    }
}

impl RouteMatch<'_> {
    /// The route without its `/...` suffix (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        let raw = &self.entry.raw_route;
        raw.strip_suffix("/...").unwrap_or(raw)
    }

    /// The headers Spin adds to the request before the component sees it,
    /// in Spin's order. `host` is the request's Host header (Spin falls
    /// back to `localhost`); the full URL always says `http` here since the
    /// dev host does not terminate TLS.
    pub fn spin_headers(&self, host: &str, path_and_query: &str, client_addr: SocketAddr) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-path-info".to_string(), self.path_info.clone()),
            ("spin-full-url".to_string(), format!("http://{host}{path_and_query}")),
            ("spin-matched-route".to_string(), self.entry.based_route.clone()),
            ("spin-base-path".to_string(), "/".to_string()),
            ("spin-raw-component-route".to_string(), self.entry.raw_route.clone()),
            ("spin-component-route".to_string(), self.component_route().to_string()),
            ("spin-client-addr".to_string(), client_addr.to_string()),
        ];
        for (name, value) in &self.params {
            headers.push((path_match_header(name), value.clone()));
        }
        headers
    }
}

/// Spin names the header `SPIN_PATH_MATCH_<NAME>` and then turns `_` into
/// `-` and lower-cases it: `:user_id` → `spin-path-match-user-id`.
pub fn path_match_header(param: &str) -> String {
    format!("spin_path_match_{param}").replace('_', "-").to_ascii_lowercase()
}

/// `base` is always `/` for the dev host; Spin joins it to the route and
/// drops a single trailing slash.
fn based_route(raw: &str) -> String {
    let absolute = if raw.starts_with('/') { raw.to_string() } else { format!("/{raw}") };
    match absolute.strip_suffix('/') {
        Some(s) => s.to_string(),
        None => absolute,
    }
}

/// Spin's `/...` suffix is routefinder's `/*`.
fn pattern_of(based_route: &str) -> String {
    match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => based_route.to_string(),
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Token>> {
    let trimmed = pattern.trim_start_matches('/').trim_end_matches('/');
    let mut tokens: Vec<Token> = Vec::new();
    let mut separator: Option<char> = None;
    let mut rest = trimmed;
    loop {
        let end = rest.find(['.', '/']).unwrap_or(rest.len());
        let section = &rest[..end];
        let token = if section == "*" {
            Some(Token::Wildcard)
        } else if section.starts_with('*') {
            bail!("since there can only be one wildcard, it doesn't need a name. replace `{section}` with `*`");
        } else if section == ":" {
            bail!("params must be named");
        } else if let Some(name) = section.strip_prefix(':') {
            Some(Token::Param(name.to_string()))
        } else if section.is_empty() {
            None
        } else {
            Some(Token::Exact(section.to_string()))
        };
        // A dot glues onto a preceding literal (`file.txt` stays literal);
        // otherwise it is its own token (`:name.json`).
        if separator == Some('.') {
            match tokens.last_mut() {
                Some(Token::Exact(s)) => s.push('.'),
                _ => tokens.push(Token::Dot),
            }
        }
        if let Some(token) = token {
            if separator == Some('/') {
                tokens.push(Token::Slash);
            }
            tokens.push(token);
        }
        if end == rest.len() {
            break;
        }
        separator = rest[end..].chars().next();
        rest = &rest[end + 1..];
    }
    if let Some(pos) = tokens.iter().position(|t| *t == Token::Wildcard) {
        if pos + 1 != tokens.len() {
            bail!("a wildcard must be the last part of a route");
        }
    }
    Ok(tokens)
}

/// `:param` captures in route order, and the wildcard capture if the route
/// has a wildcard.
type Captures<'r> = (Vec<(&'r str, String)>, Option<String>);

/// Returns the captures when `tokens` match the whole path.
fn match_tokens<'r>(tokens: &'r [Token], path: &str) -> Option<Captures<'r>> {
    let mut rest = path.trim_start_matches('/').trim_end_matches('/');
    let mut params = Vec::new();
    let mut wildcard = None;
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        match token {
            Token::Exact(literal) => rest = rest.strip_prefix(literal.as_str())?,
            Token::Param(name) => {
                if rest.is_empty() {
                    return None;
                }
                let end = match next {
                    None | Some(Token::Slash) => rest.find('/').unwrap_or(rest.len()),
                    // `:name.ext`: the value runs to the next dot, which
                    // must come before any slash.
                    Some(Token::Dot) => {
                        let idx = rest.find(['.', '/'])?;
                        if !rest[idx..].starts_with('.') {
                            return None;
                        }
                        idx
                    }
                    Some(_) => return None,
                };
                params.push((name.as_str(), rest[..end].to_string()));
                rest = &rest[end..];
            }
            Token::Wildcard => {
                wildcard = Some(rest.to_string());
                rest = "";
            }
            Token::Slash => match (rest.starts_with('/'), next) {
                (true, Some(_)) => rest = &rest[1..],
                // `/foo/...` also matches `/foo`.
                (false, None) | (false, Some(Token::Wildcard)) if rest.is_empty() => {}
                _ => return None,
            },
            Token::Dot => rest = rest.strip_prefix('.')?,
        }
    }
    (rest.is_empty() || rest == "/").then_some((params, wildcard))
}

/// `Greater` when route `a` is more specific than route `b`.
fn specificity(a: &[Token], b: &[Token]) -> Ordering {
    let dots = |t: &[Token]| t.iter().filter(|t| **t == Token::Dot).count();
    a.iter()
        .zip(b)
        .map(|(x, y)| token_rank(x, y))
        .find(|o| o.is_ne())
        .or_else(|| Some(dots(a).cmp(&dots(b))).filter(|o| o.is_ne()))
        .unwrap_or_else(|| b.len().cmp(&a.len()))
}

/// Token precedence at the first differing position: literal > param >
/// wildcard; separators rank among themselves as equal.
fn token_rank(a: &Token, b: &Token) -> Ordering {
    use Token::*;
    match (a, b) {
        (Exact(_), Exact(_)) | (Param(_), Param(_)) | (Wildcard, Wildcard) | (Slash | Dot, Slash | Dot) => Ordering::Equal,
        (Dot, _) | (Exact(_), _) => Ordering::Greater,
        (Param(_), Exact(_)) => Ordering::Less,
        (Param(_), _) => Ordering::Greater,
        (Wildcard, Exact(_) | Param(_)) => Ordering::Less,
        (Wildcard, _) => Ordering::Greater,
        (Slash, _) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes.iter().map(|(r, c)| (*r, *c))).unwrap().0
    }

    /// The project's own route shapes plus the cases Spin's tests pin down.
    #[test]
    fn route_table() {
        let r = router(&[
            ("/...", "catch-all"),
            ("/users/:subject", "user"),
            ("/users/me", "me"),
            ("/users/me/...", "me-sub"),
            ("/tenants/:slug/members/:user_id/remove", "remove-member"),
            ("/tenants/:slug/members", "members"),
            ("/tenants/:slug/...", "tenant-any"),
            ("/static/...", "static"),
            ("/one/...", "one"),
            ("/one/two/...", "onetwo"),
            ("/one/two/three/...", "onetwothree"),
            ("/", "root"),
            ("/a/:x/c", "param-middle"),
            ("/a/b/...", "literal-prefix"),
            ("/files/:name.json", "json-file"),
            ("/files/:name", "file"),
        ]);
        // (path, component, params, path_info)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("/users/me", "me", &[], ""),
            ("/users/me/", "me", &[], ""),
            ("//users/me//", "me", &[], ""),
            ("/users/abc", "user", &[("subject", "abc")], ""),
            ("/users/abc/", "user", &[("subject", "abc")], ""),
            ("/users/me/x", "me-sub", &[], "/x"),
            ("/users", "catch-all", &[], "/users"),
            ("/users/", "catch-all", &[], "/users/"),
            ("/users/a/b", "catch-all", &[], "/users/a/b"),
            ("/tenants/acme/members/u1/remove", "remove-member", &[("slug", "acme"), ("user_id", "u1")], ""),
            ("/tenants/acme/members", "members", &[("slug", "acme")], ""),
            ("/tenants/acme/other", "tenant-any", &[("slug", "acme")], "/other"),
            ("/tenants/acme", "tenant-any", &[("slug", "acme")], ""),
            ("/static", "static", &[], ""),
            ("/static/", "static", &[], "/"),
            ("/static/css/site.css", "static", &[], "/css/site.css"),
            ("/static/dir/", "static", &[], "/dir/"),
            ("/staticx", "catch-all", &[], "/staticx"),
            ("/one/two/three/four", "onetwothree", &[], "/four"),
            ("/one/two/x", "onetwo", &[], "/x"),
            ("/one/x", "one", &[], "/x"),
            ("/", "root", &[], ""),
            ("", "root", &[], ""),
            ("/a/b/c", "literal-prefix", &[], "/c"),
            ("/a/z/c", "param-middle", &[("x", "z")], ""),
            ("/files/report.json", "json-file", &[("name", "report")], ""),
            ("/files/report.txt", "file", &[("name", "report.txt")], ""),
            ("/files/report", "file", &[("name", "report")], ""),
            ("/nothing/here", "catch-all", &[], "/nothing/here"),
        ];
        for (path, component, params, path_info) in cases {
            let m = r.route(path).unwrap_or_else(|| panic!("{path} did not match"));
            assert_eq!(m.entry.component, *component, "path {path}");
            let got: Vec<(&str, &str)> = m.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(got, *params, "params for {path}");
            assert_eq!(m.path_info, *path_info, "path info for {path}");
        }
    }

    #[test]
    fn no_match_without_catch_all() {
        let r = router(&[("/users/me", "me"), ("/users/:subject", "user"), ("/static/...", "s")]);
        for path in ["/", "/users", "/users/a/b", "/usersx", "/other", "/stat"] {
            assert!(r.route(path).is_none(), "{path} should not match");
        }
    }

    #[test]
    fn precedence_does_not_depend_on_manifest_order() {
        let forward = router(&[("/one/...", "one"), ("/one/two/...", "two"), ("/x/:p", "p"), ("/x/y", "y")]);
        let backward = router(&[("/x/y", "y"), ("/x/:p", "p"), ("/one/two/...", "two"), ("/one/...", "one")]);
        for r in [forward, backward] {
            assert_eq!(r.route("/one/two/three").unwrap().entry.component, "two");
            assert_eq!(r.route("/x/y").unwrap().entry.component, "y");
            assert_eq!(r.route("/x/z").unwrap().entry.component, "p");
        }
    }

    #[test]
    fn equal_rank_keeps_manifest_order_and_duplicates_last_wins() {
        let r = router(&[("/x/:a", "first"), ("/x/:b", "second")]);
        assert_eq!(r.route("/x/1").unwrap().entry.component, "first");

        let (r, dups) = Router::build([("/foo", "a"), ("/", "root"), ("/foo", "b")]).unwrap();
        assert_eq!(r.route("/foo").unwrap().entry.component, "b");
        assert_eq!(dups, vec![DuplicateRoute { route: "/foo".into(), replaced: "a".into(), effective: "b".into() }]);
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Router::build([("/a/*name", "c")]).is_err());
        assert!(Router::build([("/a/:", "c")]).is_err());
        assert!(Router::build([("/a/*/b", "c")]).is_err());
        // `/*` is Spin's other spelling of a trailing wildcard.
        let r = router(&[("/a/*", "c")]);
        assert_eq!(r.route("/a/b/c").unwrap().path_info, "/b/c");
    }

    #[test]
    fn spin_headers_for_a_match() {
        let r = router(&[("/foo/:userid/...", "c"), ("/users/:user_id", "u")]);
        let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let m = r.route("/foo/42/bar").unwrap();
        let headers = m.spin_headers("example.test:3000", "/foo/42/bar?k=v", client);
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(get("spin-full-url"), "http://example.test:3000/foo/42/bar?k=v");
        assert_eq!(get("spin-path-info"), "/bar");
        assert_eq!(get("spin-matched-route"), "/foo/:userid/...");
        assert_eq!(get("spin-raw-component-route"), "/foo/:userid/...");
        assert_eq!(get("spin-component-route"), "/foo/:userid");
        assert_eq!(get("spin-base-path"), "/");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:8777");
        assert_eq!(get("spin-path-match-userid"), "42");

        let m = r.route("/users/u-1").unwrap();
        let headers = m.spin_headers("h", "/users/u-1", client);
        assert!(headers.contains(&("spin-path-match-user-id".into(), "u-1".into())));
        assert_eq!(path_match_header("user_id"), "spin-path-match-user-id");
    }

    #[test]
    fn matched_route_drops_one_trailing_slash() {
        let r = router(&[("/users/me/", "me"), ("static/...", "s")]);
        let m = r.route("/users/me").unwrap();
        assert_eq!(m.entry.based_route, "/users/me");
        assert_eq!(m.entry.raw_route, "/users/me/");
        let m = r.route("/static/x").unwrap();
        assert_eq!(m.entry.based_route, "/static/...");
        assert_eq!(m.component_route(), "static");
    }
}
