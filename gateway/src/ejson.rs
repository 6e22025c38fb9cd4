//! Extended JSON in and out, as the Data API documents it.
//!
//! - Requests: canonical and relaxed EJSON, mixed freely, under both
//!   `application/json` and `application/ejson` (the contract's decision).
//! - Responses: canonical EJSON for `Accept: application/ejson`, otherwise
//!   "JSON mode", which drops type information as the contract's table says
//!   (ObjectId → hex string, Date → ISO-8601 string, Decimal128 → string, …).

use base64::Engine as _;
use bson::{Bson, Document};
use serde_json::{json, Map, Value};

/// Decodes canonical or relaxed Extended JSON.
pub fn decode(v: Value) -> Result<Bson, String> {
    Bson::try_from(v).map_err(|e| format!("invalid Extended JSON: {e}"))
}

/// Decodes an Extended JSON object into a document.
pub fn decode_document(v: Value) -> Result<Document, String> {
    match decode(v)? {
        Bson::Document(d) => Ok(d),
        other => Err(format!("expected an object, found {}", type_name(&other))),
    }
}

/// MongoDB's name of a value's BSON type (`$type`'s aliases), for messages.
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

/// Canonical Extended JSON.
pub fn to_canonical(b: &Bson) -> Value {
    b.clone().into_canonical_extjson()
}

/// Canonical Extended JSON of a document.
pub fn doc_to_canonical(d: &Document) -> Value {
    to_canonical(&Bson::Document(d.clone()))
}

/// Relaxed Extended JSON.
pub fn to_relaxed(b: &Bson) -> Value {
    b.clone().into_relaxed_extjson()
}

/// The Data API's "JSON mode": plain JSON without type wrappers.
pub fn to_json_mode(b: &Bson) -> Value {
    match b {
        Bson::Double(f) if f.is_finite() => json!(f),
        Bson::Double(_) => to_canonical(b),
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => Value::String(s.clone()),
        Bson::Document(d) => Value::Object(d.iter().map(|(k, v)| (k.clone(), to_json_mode(v))).collect::<Map<_, _>>()),
        Bson::Array(items) => Value::Array(items.iter().map(to_json_mode).collect()),
        Bson::Boolean(x) => Value::Bool(*x),
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::RegularExpression(r) => json!({"Pattern": r.pattern, "Options": r.options}),
        Bson::JavaScriptCodeWithScope(c) => json!({"Code": c.code, "Scope": to_json_mode(&Bson::Document(c.scope.clone()))}),
        Bson::Int32(i) => json!(i),
        Bson::Int64(i) => json!(i),
        Bson::Timestamp(t) => json!({"T": t.time, "I": t.increment}),
        Bson::Binary(bin) => json!({
            "Subtype": u8::from(bin.subtype),
            "Data": base64::engine::general_purpose::STANDARD.encode(&bin.bytes),
        }),
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::DateTime(d) => Value::String(iso_millis(d.timestamp_millis())),
        Bson::Decimal128(d) => Value::String(d.to_string()),
        Bson::MinKey | Bson::MaxKey => json!({}),
        Bson::DbPointer(_) => to_canonical(b),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ` for milliseconds since the Unix epoch.
pub fn iso_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
    } else {
        format!("{y:+07}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
