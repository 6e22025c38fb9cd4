//! The key set a token is checked against when it comes from
//! `oidc_jwks_url`: fetched from Authentik and kept in Spin's key-value
//! store, so that a request costs no JWKS round trip while the set is
//! fresh (an instance lives for one request; the store outlives it).
//!
//! - A fetched set is kept for at most [`MAX_AGE_SECS`], less when the
//!   answer's `Cache-Control` says so (`max-age`, minus any `Age`); with
//!   `no-store` or `no-cache` it is not kept at all.
//! - A token whose key the kept set lacks (a rotated key) makes one fresh
//!   fetch. Refetches are rate-limited to one per [`REFETCH_GAP_SECS`] for
//!   the whole set, not per `kid`: a token's `kid` is chosen by whoever
//!   sends it, so a per-`kid` limit would let a flood of made-up `kid`s
//!   through as a flood of fetches. A genuine new key waits at most that
//!   long behind such a flood.
//! - The store is a cache and nothing more: when it fails, the set is
//!   fetched as if nothing were kept, with one log line, and the request
//!   is answered as usual.
//!
//! Spin's key-value store has no compare-and-swap, so instances that miss
//! together each fetch, and two that see the same unknown `kid` at the
//! same instant may both refetch: the limits hold per instance, and across
//! instances up to the requests in flight at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::jwt::{Jwks, JwtError};
use crate::ctx::Ctx;
use crate::ports::{Http, KeyValue};
use crate::problem::{Error, System, UpstreamError, UpstreamFailure};
use crate::upstream::Call;

/// The longest a fetched set is used without asking again (docs/api.md,
/// Configuration: "for up to 10 minutes").
pub const MAX_AGE_SECS: i64 = 600;
/// The least time between two fetches made for unknown keys.
pub const REFETCH_GAP_SECS: i64 = 30;
/// The store key of the kept set.
pub const STORE_KEY: &str = "oidc-jwks";

/// What is kept in the store, as JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Kept {
    /// The URL it came from: a changed `oidc_jwks_url` never reads the old set.
    url: String,
    /// The JWKS document as Authentik sent it.
    jwks: String,
    /// Milliseconds since the epoch.
    fetched_at: i64,
    expires_at: i64,
    /// When a fetch for an unknown key last began.
    #[serde(default)]
    refetched_at: Option<i64>,
}

/// A set fetched just now.
struct Fetched {
    text: String,
    jwks: Jwks,
    lifetime_secs: i64,
}

/// The store as this request sees it: failures are logged once and then
/// treated as "nothing kept".
struct Cache<'a> {
    store: &'a dyn KeyValue,
    url: &'a str,
    now: i64,
    failed: std::cell::Cell<bool>,
}

impl Cache<'_> {
    fn fail(&self, what: &str, e: &str) {
        if !self.failed.replace(true) {
            eprintln!("JWKS cache: {what} failed ({e}); the key set is fetched without it");
        }
    }

    /// The kept set for this URL, if any (fresh or not).
    fn read(&self) -> Option<Kept> {
        match self.store.get(STORE_KEY) {
            Ok(Some(bytes)) => serde_json::from_slice::<Kept>(&bytes).ok().filter(|k| k.url == self.url),
            Ok(None) => None,
            Err(e) => {
                self.fail("reading the store", &e);
                None
            }
        }
    }

    fn write(&self, kept: &Kept) -> bool {
        let bytes = serde_json::to_vec(kept).expect("a Kept serialises");
        match self.store.set(STORE_KEY, &bytes) {
            Ok(()) => true,
            Err(e) => {
                self.fail("writing the store", &e);
                false
            }
        }
    }

    /// A kept set still fresh now, parsed.
    fn fresh(&self, kept: &Kept) -> Option<Jwks> {
        (self.now < kept.expires_at).then(|| Jwks::parse(&kept.jwks).ok()).flatten()
    }

    /// Keeps `fetched` (unless its answer forbade it), with this gate time.
    fn keep(&self, fetched: &Fetched, refetched_at: Option<i64>) {
        if fetched.lifetime_secs > 0 {
            self.write(&Kept {
                url: self.url.to_owned(),
                jwks: fetched.text.clone(),
                fetched_at: self.now,
                expires_at: self.now + fetched.lifetime_secs * 1000,
                refetched_at,
            });
        }
    }
}

/// Runs `check` (the token's verification) against the key set at `url`:
/// the kept one while fresh, else a fetched one; once more against a
/// refetched set when the kept one lacks the token's key and the rate limit
/// allows. The outer error is Authentik's (the set could not be fetched),
/// the inner one the token's.
pub async fn check_with<H: Http, T>(
    ctx: &Ctx<H>,
    url: &str,
    timeout: Duration,
    check: impl Fn(&Jwks) -> Result<T, JwtError>,
) -> Result<Result<T, JwtError>, Error> {
    let cache = Cache { store: ctx.store.as_ref(), url, now: ctx.now.millis(), failed: Default::default() };
    let kept = cache.read();
    let Some((kept, jwks)) = kept.as_ref().and_then(|k| Some((k, cache.fresh(k)?))) else {
        let fetched = fetch(ctx, url, timeout).await?;
        cache.keep(&fetched, kept.and_then(|k| k.refetched_at));
        // Just fetched: a key it lacks is not a rotation we missed.
        return Ok(check(&fetched.jwks));
    };
    match check(&jwks) {
        Err(JwtError::UnknownKey) => {}
        verdict => return Ok(verdict),
    }
    // Another instance may have refetched since this one read the store.
    let latest = cache.read();
    if let Some(newer) = latest.as_ref().filter(|l| l.fetched_at > kept.fetched_at).and_then(|l| cache.fresh(l)) {
        return Ok(check(&newer));
    }
    let last = latest.as_ref().unwrap_or(kept).refetched_at;
    if last.is_some_and(|at| cache.now - at < REFETCH_GAP_SECS * 1000) {
        return Ok(Err(JwtError::UnknownKey));
    }
    // Take the gate before fetching; without a gate there is no refetch.
    if !cache.write(&Kept { refetched_at: Some(cache.now), ..kept.clone() }) {
        return Ok(Err(JwtError::UnknownKey));
    }
    let fetched = fetch(ctx, url, timeout).await?;
    cache.keep(&fetched, Some(cache.now));
    Ok(check(&fetched.jwks))
}

/// How long an answer may be kept, in seconds (RFC 9111 §5.2.2, §4.2.3):
/// `max-age` less `Age`, never more than [`MAX_AGE_SECS`]; `0` for
/// `no-store`, `no-cache` or a `max-age` that is not a number.
fn lifetime(cache_control: Option<&str>, age: Option<&str>) -> i64 {
    let mut secs = MAX_AGE_SECS;
    for directive in cache_control.unwrap_or_default().split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return 0;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            match v.trim_matches('"').parse::<u64>() {
                Ok(n) => secs = secs.min(i64::try_from(n).unwrap_or(i64::MAX)),
                Err(_) => return 0,
            }
        }
    }
    let age = age.and_then(|a| a.trim().parse::<u64>().ok()).map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX));
    secs.saturating_sub(age).max(0)
}

async fn fetch<H: Http>(ctx: &Ctx<H>, url: &str, timeout: Duration) -> Result<Fetched, Error> {
    let resp = Call { system: System::Authentik, method: "GET", url: url.to_owned(), headers: vec![], body: None, timeout }
        .send(&ctx.http)
        .await?;
    if resp.status != 200 {
        return Err(UpstreamError::new(
            System::Authentik,
            UpstreamFailure::Status { status: resp.status, reason: "JWKS fetch failed".into() },
        )
        .into());
    }
    let bad = |e: String| Error::from(UpstreamError::new(System::Authentik, UpstreamFailure::BadResponse(format!("JWKS: {e}"))));
    let text = String::from_utf8(resp.body.clone()).map_err(|_| bad("not UTF-8".into()))?;
    let jwks = Jwks::parse(&text).map_err(|e| bad(format!("{e:?}")))?;
    Ok(Fetched { text, jwks, lifetime_secs: lifetime(resp.header("cache-control"), resp.header("age")) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::ejson::DateTime;
    use crate::ports::{InboundResponse, MemoryKeyValue, OutboundRequest, TransportError};

    const URL: &str = "https://ak.test/application/o/app/jwks/";
    const T0: i64 = 1_800_000_000_000;

    /// A JWKS endpoint serving `keys` (kids only matter here: each key is
    /// the same EC point under another `kid`), counting fetches.
    #[derive(Clone, Default)]
    struct Endpoint {
        kids: Rc<RefCell<Vec<&'static str>>>,
        cache_control: Rc<RefCell<Option<&'static str>>>,
        status: Rc<RefCell<u16>>,
        fetches: Rc<RefCell<usize>>,
    }

    fn ec_jwk(kid: &str) -> serde_json::Value {
        // The P-256 generator point: a valid public key.
        serde_json::json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY", "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU" })
    }

    impl Http for Endpoint {
        async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
            assert_eq!(req.url, URL);
            *self.fetches.borrow_mut() += 1;
            let keys: Vec<_> = self.kids.borrow().iter().map(|k| ec_jwk(k)).collect();
            let status = match *self.status.borrow() {
                0 => 200,
                s => s,
            };
            let headers = self.cache_control.borrow().map(|c| vec![("cache-control".to_owned(), c.to_owned())]).unwrap_or_default();
            Ok(InboundResponse { status, headers, body: serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap() })
        }
    }

    struct World {
        endpoint: Endpoint,
        store: Rc<MemoryKeyValue>,
    }

    impl World {
        fn new(kids: &[&'static str]) -> World {
            let endpoint = Endpoint::default();
            endpoint.kids.borrow_mut().extend_from_slice(kids);
            World { endpoint, store: Rc::default() }
        }

        /// One request at `at` ms presenting a token with `kid`: `Ok(true)`
        /// when the set had that key.
        fn request(&self, at: i64, kid: &str) -> Result<bool, Error> {
            let ctx = Ctx::new(self.endpoint.clone(), Box::new(|_: &str| None), Box::new(self.store.clone()), DateTime(at));
            let check = |jwks: &Jwks| if jwks.has_kid(kid) { Ok(()) } else { Err(JwtError::UnknownKey) };
            futures::executor::block_on(check_with(&ctx, URL, Duration::from_secs(1), check)).map(|v| v.is_ok())
        }

        fn fetches(&self) -> usize {
            *self.endpoint.fetches.borrow()
        }
    }

    #[test]
    fn a_hundred_requests_make_one_fetch() {
        let w = World::new(&["a"]);
        for i in 0..100 {
            assert!(w.request(T0 + i * 1000, "a").unwrap());
        }
        assert_eq!(w.fetches(), 1);
    }

    #[test]
    fn the_set_is_kept_for_ten_minutes_at_most() {
        let w = World::new(&["a"]);
        w.request(T0, "a").unwrap();
        w.request(T0 + MAX_AGE_SECS * 1000 - 1, "a").unwrap();
        assert_eq!(w.fetches(), 1);
        w.request(T0 + MAX_AGE_SECS * 1000, "a").unwrap();
        assert_eq!(w.fetches(), 2, "expired at ten minutes");
    }

    #[test]
    fn cache_control_shortens_the_life_or_forbids_keeping() {
        let w = World::new(&["a"]);
        *w.endpoint.cache_control.borrow_mut() = Some("public, max-age=60");
        w.request(T0, "a").unwrap();
        w.request(T0 + 59_000, "a").unwrap();
        assert_eq!(w.fetches(), 1);
        w.request(T0 + 60_000, "a").unwrap();
        assert_eq!(w.fetches(), 2);

        let w = World::new(&["a"]);
        *w.endpoint.cache_control.borrow_mut() = Some("no-store");
        w.request(T0, "a").unwrap();
        w.request(T0 + 1, "a").unwrap();
        assert_eq!(w.fetches(), 2, "no-store: every request fetches");
        assert!(w.store.entries.borrow().is_empty());

        assert_eq!(lifetime(Some("max-age=3600"), None), MAX_AGE_SECS, "never longer than ten minutes");
        assert_eq!(lifetime(Some("max-age=120"), Some("100")), 20, "an answer's age counts");
        assert_eq!(lifetime(Some("max-age=120"), Some("500")), 0);
        assert_eq!(lifetime(Some("max-age=\"90\""), None), 90);
        assert_eq!(lifetime(Some("max-age=soon"), None), 0);
        assert_eq!(lifetime(Some("No-Cache"), None), 0);
        assert_eq!(lifetime(None, None), MAX_AGE_SECS);
    }

    #[test]
    fn a_rotated_key_is_found_by_one_refetch() {
        let w = World::new(&["old"]);
        assert!(w.request(T0, "old").unwrap());
        w.endpoint.kids.borrow_mut().push("new");
        assert!(w.request(T0 + 1000, "new").unwrap(), "accepted after a refetch");
        assert_eq!(w.fetches(), 2);
        assert!(w.request(T0 + 2000, "new").unwrap());
        assert!(w.request(T0 + 3000, "old").unwrap());
        assert_eq!(w.fetches(), 2, "the refetched set is kept");
    }

    #[test]
    fn unknown_kids_refetch_once_per_gap_whatever_the_kid() {
        let w = World::new(&["a"]);
        w.request(T0, "a").unwrap();
        for i in 0..200 {
            assert!(!w.request(T0 + 1000 + i * 100, &format!("forged-{i}")).unwrap());
        }
        assert_eq!(w.fetches(), 2, "one refetch in 20 s of forged kids");
        // The gap is over: one more, then quiet again.
        assert!(!w.request(T0 + 1000 + REFETCH_GAP_SECS * 1000, "forged-x").unwrap());
        assert!(!w.request(T0 + 1001 + REFETCH_GAP_SECS * 1000, "forged-y").unwrap());
        assert_eq!(w.fetches(), 3);
        // The good key never stopped working.
        assert!(w.request(T0 + 2000 + REFETCH_GAP_SECS * 1000, "a").unwrap());
        assert_eq!(w.fetches(), 3);
    }

    /// A store whose first `get` answers `first`, and then what `then`
    /// holds: another instance wrote between this one's two reads.
    struct WrittenBetweenReads {
        first: RefCell<Option<Vec<u8>>>,
        then: MemoryKeyValue,
    }

    impl KeyValue for WrittenBetweenReads {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            match self.first.borrow_mut().take() {
                Some(v) => Ok(Some(v)),
                None => self.then.get(key),
            }
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            self.then.set(key, value)
        }
    }

    #[test]
    fn a_refetch_by_another_instance_is_used_without_fetching() {
        let w = World::new(&["old"]);
        w.request(T0, "old").unwrap();
        let before = w.store.entries.borrow()[STORE_KEY].clone();
        // Another instance refetched at T0+5 s and found "new".
        let mut after: Kept = serde_json::from_slice(&before).unwrap();
        after.jwks = serde_json::json!({ "keys": [ec_jwk("old"), ec_jwk("new")] }).to_string();
        after.fetched_at = T0 + 5000;
        after.refetched_at = Some(T0 + 5000);
        let store = WrittenBetweenReads { first: RefCell::new(Some(before)), then: MemoryKeyValue::default() };
        store.then.set(STORE_KEY, &serde_json::to_vec(&after).unwrap()).unwrap();
        let ctx = Ctx::new(w.endpoint.clone(), Box::new(|_: &str| None), Box::new(store), DateTime(T0 + 6000));
        let check = |jwks: &Jwks| if jwks.has_kid("new") { Ok(()) } else { Err(JwtError::UnknownKey) };
        assert!(futures::executor::block_on(check_with(&ctx, URL, Duration::from_secs(1), check)).unwrap().is_ok());
        assert_eq!(w.fetches(), 1, "no fetch of its own");
    }

    #[test]
    fn a_failing_store_costs_a_fetch_per_request_and_never_the_answer() {
        let w = World::new(&["a"]);
        w.store.failing.set(true);
        for i in 0..5 {
            assert!(w.request(T0 + i, "a").unwrap());
        }
        assert_eq!(w.fetches(), 5);
        assert!(!w.request(T0 + 10, "forged").unwrap());
        assert_eq!(w.fetches(), 6, "one fetch, no refetch on top");
        // The store comes back: the cache works again.
        w.store.failing.set(false);
        w.request(T0 + 20, "a").unwrap();
        w.request(T0 + 30, "a").unwrap();
        assert_eq!(w.fetches(), 7);
    }

    /// A store that can be read but not written (a read-only file, a full disk).
    struct ReadOnly(Rc<MemoryKeyValue>);

    impl KeyValue for ReadOnly {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            self.0.get(key)
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), String> {
            Err("attempt to write a readonly database".into())
        }
    }

    #[test]
    fn without_a_writable_gate_there_is_no_refetch() {
        let w = World::new(&["a"]);
        w.request(T0, "a").unwrap();
        let ctx = Ctx::new(w.endpoint.clone(), Box::new(|_: &str| None), Box::new(ReadOnly(w.store.clone())), DateTime(T0 + 1000));
        let check = |jwks: &Jwks| if jwks.has_kid("b") { Ok(()) } else { Err(JwtError::UnknownKey) };
        let verdict = futures::executor::block_on(check_with(&ctx, URL, Duration::from_secs(1), check)).unwrap();
        assert!(matches!(verdict, Err(JwtError::UnknownKey)));
        assert_eq!(w.fetches(), 1, "a refetch whose gate cannot be kept is not made");
    }

    #[test]
    fn a_kept_set_of_another_url_or_unreadable_is_not_used() {
        let w = World::new(&["a"]);
        let other =
            Kept { url: "https://elsewhere/jwks/".into(), jwks: "{}".into(), fetched_at: T0, expires_at: T0 + 600_000, refetched_at: None };
        w.store.set(STORE_KEY, &serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(w.request(T0, "a").unwrap());
        assert_eq!(w.fetches(), 1);
        w.store.set(STORE_KEY, b"not json").unwrap();
        assert!(w.request(T0 + 1, "a").unwrap());
        assert_eq!(w.fetches(), 2);
    }

    #[test]
    fn a_failed_fetch_is_authentiks_error_and_keeps_nothing() {
        let w = World::new(&["a"]);
        *w.endpoint.status.borrow_mut() = 503;
        let e = w.request(T0, "a").unwrap_err();
        assert!(e.status() >= 500, "{e}");
        assert!(w.store.entries.borrow().is_empty());
        *w.endpoint.status.borrow_mut() = 200;
        assert!(w.request(T0 + 1, "a").unwrap());
    }
}
