//! Browsers on other origins (docs/api.md, "Browsers (CORS)"): the
//! `cors_allowed_origins` variable lists the origins allowed, exactly as a
//! browser sends them in `Origin` (`scheme://host[:port]`), comma-separated;
//! `*` allows any; empty (the default) turns CORS off. Spin has no CORS of
//! its own (its 4.1 middleware does not run on SpinKube's shim), so every
//! component does it here, once, before any other check.
//!
//! Tokens travel in `Authorization`, never in cookies: no answer carries
//! `Access-Control-Allow-Credentials`.

use crate::ports::Variables;
use crate::request::Encoded;

/// The variable that lists the allowed origins.
pub const VARIABLE: &str = "cors_allowed_origins";

/// How long a browser may cache a preflight's answer, in seconds.
const MAX_AGE: &str = "7200";

/// The allowed origins, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cors {
    /// The variable is empty: no answer carries a CORS header, and a
    /// preflight is an `OPTIONS` like any other (`405`).
    Off,
    /// `*`: any origin.
    Any,
    /// These origins exactly.
    Origins(Vec<String>),
}

impl Cors {
    pub fn from_vars(vars: &dyn Variables) -> Cors {
        Cors::parse(&vars.get(VARIABLE).unwrap_or_default())
    }

    pub fn parse(raw: &str) -> Cors {
        let list: Vec<String> = raw.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        if list.is_empty() {
            Cors::Off
        } else if list.iter().any(|o| o == "*") {
            Cors::Any
        } else {
            Cors::Origins(list)
        }
    }

    /// The request's `Origin`, when it is allowed.
    pub fn allows<'o>(&self, origin: Option<&'o str>) -> Option<&'o str> {
        let origin = origin?;
        match self {
            Cors::Off => None,
            Cors::Any => Some(origin),
            Cors::Origins(list) => list.iter().any(|o| o == origin).then_some(origin),
        }
    }

    /// The answer to a preflight (an `OPTIONS` naming an `Origin` and an
    /// `Access-Control-Request-Method`), before any other check: `204`,
    /// `Vary: Origin`, and the grant only for an allowed origin (the
    /// browser refuses the call otherwise). `None`: not a preflight, or CORS
    /// is off; the request goes on to the route's checks.
    pub fn preflight(&self, req: &CorsRequest<'_>, allow_method: &str) -> Option<Encoded> {
        if *self == Cors::Off || !req.method.eq_ignore_ascii_case("OPTIONS") || req.origin.is_none() || !req.requests_method {
            return None;
        }
        let mut headers = vec![("vary", "Origin".to_owned())];
        if let Some(origin) = self.allows(req.origin) {
            headers.extend([
                ("access-control-allow-origin", origin.to_owned()),
                ("access-control-allow-methods", allow_method.to_owned()),
                ("access-control-allow-headers", "Authorization, Content-Type".to_owned()),
                ("access-control-max-age", MAX_AGE.to_owned()),
            ]);
        }
        Some(Encoded { status: 204, headers, body: vec![] })
    }

    /// Any other answer to a request from an allowed origin carries the
    /// grant (problems and `405` too, so a frontend can read them).
    pub fn decorate(&self, origin: Option<&str>, answer: &mut Encoded) {
        if let Some(origin) = self.allows(origin) {
            answer.headers.push(("access-control-allow-origin", origin.to_owned()));
            answer.headers.push(("vary", "Origin".to_owned()));
        }
    }
}

/// What CORS reads of a request.
pub struct CorsRequest<'a> {
    pub method: &'a str,
    pub origin: Option<&'a str>,
    /// Whether it carries `Access-Control-Request-Method`.
    pub requests_method: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'e>(e: &'e Encoded, name: &str) -> Option<&'e str> {
        e.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    fn preflight(origin: Option<&str>) -> CorsRequest<'_> {
        CorsRequest { method: "OPTIONS", origin, requests_method: true }
    }

    #[test]
    fn the_variable_lists_exact_origins_or_any() {
        assert_eq!(Cors::parse(""), Cors::Off);
        assert_eq!(Cors::parse(" , "), Cors::Off);
        assert_eq!(Cors::parse("*"), Cors::Any);
        assert_eq!(
            Cors::parse("https://a.test, http://localhost:5173"),
            Cors::Origins(vec!["https://a.test".into(), "http://localhost:5173".into()])
        );
        let cors = Cors::parse("https://a.test");
        assert_eq!(cors.allows(Some("https://a.test")), Some("https://a.test"));
        for other in ["https://a.test:443", "http://a.test", "https://a.test/", "https://b.test", "null"] {
            assert_eq!(cors.allows(Some(other)), None, "{other}");
        }
        assert_eq!(cors.allows(None), None);
        assert_eq!(Cors::Any.allows(Some("https://x.test")), Some("https://x.test"));
        assert_eq!(Cors::Off.allows(Some("https://a.test")), None);
    }

    #[test]
    fn a_preflight_is_answered_first_and_grants_only_allowed_origins() {
        let cors = Cors::parse("https://a.test");
        let ok = cors.preflight(&preflight(Some("https://a.test")), "POST").unwrap();
        assert_eq!(ok.status, 204);
        assert_eq!(header(&ok, "access-control-allow-origin"), Some("https://a.test"));
        assert_eq!(header(&ok, "access-control-allow-methods"), Some("POST"));
        assert_eq!(header(&ok, "access-control-allow-headers"), Some("Authorization, Content-Type"));
        assert_eq!(header(&ok, "access-control-max-age"), Some("7200"));
        assert_eq!(header(&ok, "vary"), Some("Origin"));
        assert!(header(&ok, "access-control-allow-credentials").is_none());
        let other = cors.preflight(&preflight(Some("https://b.test")), "POST").unwrap();
        assert_eq!(other.status, 204);
        assert!(other.headers.iter().all(|(k, _)| !k.starts_with("access-control-")), "{:?}", other.headers);
        // Not preflights: no Origin, no requested method, another method, CORS off.
        assert!(cors.preflight(&preflight(None), "POST").is_none());
        assert!(cors
            .preflight(&CorsRequest { method: "OPTIONS", origin: Some("https://a.test"), requests_method: false }, "POST")
            .is_none());
        assert!(cors.preflight(&CorsRequest { method: "POST", origin: Some("https://a.test"), requests_method: true }, "POST").is_none());
        assert!(Cors::Off.preflight(&preflight(Some("https://a.test")), "POST").is_none());
    }

    #[test]
    fn other_answers_carry_the_grant_for_allowed_origins_only() {
        let cors = Cors::parse("https://a.test");
        let answer = || Encoded { status: 404, headers: vec![("content-type", "application/problem+json".into())], body: vec![] };
        let mut allowed = answer();
        cors.decorate(Some("https://a.test"), &mut allowed);
        assert_eq!(header(&allowed, "access-control-allow-origin"), Some("https://a.test"));
        assert_eq!(header(&allowed, "vary"), Some("Origin"));
        for (cors, origin) in [(cors.clone(), Some("https://b.test")), (cors.clone(), None), (Cors::Off, Some("https://a.test"))] {
            let mut e = answer();
            cors.decorate(origin, &mut e);
            assert_eq!(e.headers.len(), 1, "{cors:?} {origin:?}: {:?}", e.headers);
        }
    }
}
