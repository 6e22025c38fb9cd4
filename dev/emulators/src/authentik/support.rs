//! Small helpers the Authentik, Stalwart and OCIS emulators share: clock and
//! timestamp formatting, deterministic ids, query-string parsing, JSON replies.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn split_ms(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the way Django REST framework renders a
/// UTC `DateTimeField`.
pub(crate) fn iso_micros(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z", milli * 1000)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, whole seconds), as Go and Stalwart render it.
pub(crate) fn iso_secs(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

pub(crate) fn sha256_hex(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A version-4-shaped UUID derived from `seed`: the same seed always gives the
/// same id, so emulator runs are reproducible.
pub(crate) fn uuid_from(seed: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(seed.as_bytes())[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Is `s` a UUID in its canonical hyphenated (or bare 32 hex digit) form?
pub(crate) fn is_uuid(s: &str) -> bool {
    let bare: String = s.chars().filter(|c| *c != '-').collect();
    let hyphens_ok = s.len() == 32 || (s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-'));
    hyphens_ok && bare.len() == 32 && bare.chars().all(|c| c.is_ascii_hexdigit())
}

/// Canonical lower-case hyphenated form of a UUID accepted by [`is_uuid`].
pub(crate) fn normalize_uuid(s: &str) -> String {
    let bare: String = s.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase();
    format!("{}-{}-{}-{}-{}", &bare[0..8], &bare[8..12], &bare[12..16], &bare[16..20], &bare[20..32])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%20y&a=2` → `[("a","1"),("b","x y"),("a","2")]` (repeats kept).
pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The last value of query parameter `name`.
pub(crate) fn query_one<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Every value of query parameter `name`, in order.
pub(crate) fn query_all<'a>(q: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    q.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// The `Authorization` header split into (scheme, credentials).
pub(crate) fn authorization(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = raw.split_once(' ').unwrap_or((raw, ""));
    Some((scheme.to_owned(), rest.trim().to_owned()))
}

/// Decodes HTTP Basic credentials (`user:password`).
pub(crate) fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pw) = text.split_once(':')?;
    Some((user.to_owned(), pw.to_owned()))
}

/// A JSON reply with the given status and content type.
pub(crate) fn json_with(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(crate) fn json_reply(status: StatusCode, body: &Value) -> Response {
    json_with(status, "application/json", body)
}

/// Media type of the request (lower-cased, parameters dropped), if any.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The JSON type name Python would report for a value (`str`, `list`, ...),
/// used in DRF-style messages.
pub(crate) fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A loose e-mail syntax check (`local@domain.tld`, no spaces), close to the
/// HTML5 / Django validators.
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(iso_micros(1_768_467_600_000), "2026-01-15T09:00:00.000000Z");
        assert_eq!(iso_secs(1_768_467_600_123), "2026-01-15T09:00:00Z");
        assert_eq!(iso_secs(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn parses_queries() {
        let q = parse_query(Some("a=1&b=x%20y+z&a=2&c"));
        assert_eq!(query_all(&q, "a"), vec!["1", "2"]);
        assert_eq!(query_one(&q, "b"), Some("x y z"));
        assert_eq!(query_one(&q, "c"), Some(""));
        assert_eq!(parse_query(Some("e=a%40b.test"))[0].1, "a@b.test");
        assert_eq!(parse_query(Some("e=100%"))[0].1, "100%");
    }

    #[test]
    fn uuids() {
        let u = uuid_from("x");
        assert!(is_uuid(&u));
        assert_eq!(u, uuid_from("x"));
        assert_eq!(&u[14..15], "4");
        assert!(!is_uuid("not-a-uuid"));
        assert_eq!(normalize_uuid(&u.to_uppercase()), u);
    }

    #[test]
    fn emails() {
        assert!(is_email("a.b@c.test"));
        assert!(!is_email("a b@c.test"));
        assert!(!is_email("ab@c"));
        assert!(!is_email("@c.test"));
    }
}
