//! Extended JSON: the two BSON types our documents carry (ObjectId and Date)
//! both ways, and the conversion of stored documents into the API's
//! Mongoose-style JSON.
//!
//! The Data API accepts canonical and relaxed EJSON; we always *send*
//! canonical (`{"$oid"}`, `{"$date":{"$numberLong"}}`) and *read* either form.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

/// A MongoDB ObjectId: 12 bytes, written as 24 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    /// Parses exactly 24 hex digits (either case); anything else is `None`.
    pub fn parse(s: &str) -> Option<ObjectId> {
        if s.len() != 24 {
            return None;
        }
        let mut out = [0u8; 12];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16)?;
            let lo = (chunk[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(ObjectId(out))
    }

    /// A new id from a timestamp (seconds) and 8 random bytes, as MongoDB
    /// drivers make them (4-byte time, then process-unique and counter bytes).
    pub fn from_parts(unix_secs: u32, random: [u8; 8]) -> ObjectId {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&unix_secs.to_be_bytes());
        out[4..].copy_from_slice(&random);
        ObjectId(out)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Canonical EJSON: `{"$oid": "<hex>"}`.
    pub fn ejson(&self) -> Value {
        json!({ "$oid": self.to_hex() })
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ejson().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    /// Reads `{"$oid": hex}` (EJSON) or a bare hex string (JSON mode).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let hex = match &v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(m) if m.len() == 1 => m.get("$oid").and_then(Value::as_str),
            _ => None,
        };
        hex.and_then(ObjectId::parse).ok_or_else(|| de::Error::custom(format!("not an ObjectId: {v}")))
    }
}

/// A BSON date: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DateTime(pub i64);

impl DateTime {
    pub fn millis(&self) -> i64 {
        self.0
    }

    /// Canonical EJSON: `{"$date": {"$numberLong": "<ms>"}}`.
    pub fn ejson(&self) -> Value {
        json!({ "$date": { "$numberLong": self.0.to_string() } })
    }

    /// `YYYY-MM-DDTHH:MM:SS.sssZ`, as JavaScript's `Date.toISOString`.
    pub fn to_iso(&self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, (sod / 60) % 60, sod % 60)
    }

    /// Parses an RFC 3339 instant with a `Z` or `±hh:mm` offset and optional
    /// fractional seconds (milliseconds kept). Anything else is `None`.
    pub fn parse_rfc3339(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = s.get(r)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut ms = 0i64;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            let frac = &s[start..i.min(start + 3)];
            ms = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
        }
        let offset_secs = match &s[i..] {
            "Z" | "z" => 0,
            rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                sign * (oh * 3600 + om * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_secs;
        Some(DateTime(secs * 1000 + ms))
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ejson().serialize(s)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    /// Reads canonical (`{"$date":{"$numberLong"}}`), relaxed
    /// (`{"$date":"<iso>"}`) and JSON-mode (`"<iso>"`) dates.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        parse_date_value(&v).ok_or_else(|| de::Error::custom(format!("not a date: {v}")))
    }
}

fn parse_date_value(v: &Value) -> Option<DateTime> {
    match v {
        Value::String(s) => DateTime::parse_rfc3339(s),
        Value::Object(m) if m.len() == 1 => match m.get("$date")? {
            Value::String(s) => DateTime::parse_rfc3339(s),
            Value::Number(n) => n.as_i64().map(DateTime),
            Value::Object(inner) => inner.get("$numberLong")?.as_str()?.parse().ok().map(DateTime),
            _ => None,
        },
        _ => None,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Turns a stored document (canonical or relaxed EJSON) into what the API
/// returns, the way Mongoose serialised it: ObjectIds as hex strings, dates
/// as ISO strings, numbers as plain JSON numbers. Other values pass through.
pub fn to_api_json(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(to_api_json).collect()),
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(s) = m.get("$oid").and_then(Value::as_str) {
                    return Value::String(s.to_owned());
                }
                if m.contains_key("$date") {
                    if let Some(d) = parse_date_value(&Value::Object(m.clone())) {
                        return Value::String(d.to_iso());
                    }
                }
                for key in ["$numberInt", "$numberLong"] {
                    if let Some(n) = m.get(key).and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) {
                        return json!(n);
                    }
                }
                if let Some(n) = m.get("$numberDouble").and_then(Value::as_str).and_then(|s| s.parse::<f64>().ok()) {
                    return json!(n);
                }
                if let Some(s) = m.get("$numberDecimal").and_then(Value::as_str) {
                    return Value::String(s.to_owned());
                }
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, to_api_json(v))).collect::<Map<_, _>>())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_round_trips_through_ejson_and_plain_hex() {
        let id = ObjectId::parse("65a0000000000000000000AB").unwrap();
        assert_eq!(id.to_hex(), "65a0000000000000000000ab");
        let v = serde_json::to_value(id).unwrap();
        assert_eq!(v, json!({"$oid": "65a0000000000000000000ab"}));
        assert_eq!(serde_json::from_value::<ObjectId>(v).unwrap(), id);
        assert_eq!(serde_json::from_value::<ObjectId>(json!("65a0000000000000000000ab")).unwrap(), id);
    }

    #[test]
    fn object_id_rejects_anything_but_24_hex_digits() {
        for bad in ["", "65a", "65a0000000000000000000ag", "65a0000000000000000000abc", "é5a000000000000000000000"] {
            assert!(ObjectId::parse(bad).is_none(), "{bad}");
        }
        assert!(serde_json::from_value::<ObjectId>(json!({"$ne": ""})).is_err());
    }

    #[test]
    fn dates_read_every_ejson_form_and_write_canonical() {
        let want = DateTime(1_641_954_803_067);
        for v in [
            json!({"$date": {"$numberLong": "1641954803067"}}),
            json!({"$date": "2022-01-12T02:33:23.067Z"}),
            json!("2022-01-12T02:33:23.067Z"),
            json!({"$date": 1_641_954_803_067i64}),
        ] {
            assert_eq!(serde_json::from_value::<DateTime>(v.clone()).unwrap(), want, "{v}");
        }
        assert_eq!(serde_json::to_value(want).unwrap(), json!({"$date": {"$numberLong": "1641954803067"}}));
        assert_eq!(want.to_iso(), "2022-01-12T02:33:23.067Z");
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        let z = DateTime::parse_rfc3339("2026-03-01T12:00:00Z").unwrap();
        assert_eq!(DateTime::parse_rfc3339("2026-03-01T13:30:00+01:30").unwrap(), z);
        assert_eq!(DateTime::parse_rfc3339("2026-03-01T12:00:00.5Z").unwrap().0, z.0 + 500);
        assert_eq!(z.to_iso(), "2026-03-01T12:00:00.000Z");
        assert_eq!(DateTime(0).to_iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(DateTime(-1).to_iso(), "1969-12-31T23:59:59.999Z");
        for bad in
            ["2026-03-01", "2026-03-01T12:00:00", "2026-02-30T00:00:00Z", "2026-03-01T12:00:00+0100", "yesterday", "2026-03-01T12:00:00.Z"]
        {
            assert!(DateTime::parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn api_json_looks_like_mongoose() {
        let stored = json!({
            "_id": {"$oid": "65a000000000000000000001"},
            "tenantIds": [{"$oid": "65b000000000000000000001"}],
            "createdAt": {"$date": {"$numberLong": "0"}},
            "seats": {"$numberInt": "10"},
            "nested": {"n": {"$numberLong": "5"}, "d": {"$numberDouble": "1.5"}},
            "name": "x"
        });
        assert_eq!(
            to_api_json(stored),
            json!({
                "_id": "65a000000000000000000001",
                "tenantIds": ["65b000000000000000000001"],
                "createdAt": "1970-01-01T00:00:00.000Z",
                "seats": 10,
                "nested": {"n": 5, "d": 1.5},
                "name": "x"
            })
        );
    }
}

/// An integer in any of its JSON/EJSON forms: `3`, `{"$numberInt":"3"}`,
/// `{"$numberLong":"3"}`, or an integral `{"$numberDouble":"3.0"}`.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let s = v.as_str()?;
            match k.as_str() {
                "$numberInt" | "$numberLong" => s.parse().ok(),
                "$numberDouble" => s.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64),
                _ => None,
            }
        }
        _ => None,
    }
}

/// An integer field that deserialises from any EJSON integer form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        int(&v).map(Int).ok_or_else(|| de::Error::custom(format!("not an integer: {v}")))
    }
}

impl Serialize for Int {
    /// Written as a plain JSON number (relaxed EJSON; the server picks Int32/Int64).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}
