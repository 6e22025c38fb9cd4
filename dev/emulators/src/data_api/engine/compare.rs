//! BSON comparison: the cross-type sort order of the MongoDB manual
//! (`bson-type-comparison-order`), numeric comparison across Int32 / Int64 /
//! Double / Decimal128, and strict identity for the update no-op rule.

use std::cmp::Ordering;

use bson::{Bson, Document};

/// Rank of a value's type in MongoDB's comparison order:
/// MinKey < Undefined < Null < Numbers < Symbol/String < Object < Array <
/// BinData < ObjectId < Boolean < Date < Timestamp < Regex < DBPointer <
/// Code < Code with scope < MaxKey.
pub fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 1,
        Bson::Undefined => 2,
        Bson::Null => 3,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 4,
        Bson::String(_) | Bson::Symbol(_) => 5,
        Bson::Document(_) => 6,
        Bson::Array(_) => 7,
        Bson::Binary(_) => 8,
        Bson::ObjectId(_) => 9,
        Bson::Boolean(_) => 10,
        Bson::DateTime(_) => 11,
        Bson::Timestamp(_) => 12,
        Bson::RegularExpression(_) => 13,
        Bson::DbPointer(_) => 14,
        Bson::JavaScriptCode(_) => 15,
        Bson::JavaScriptCodeWithScope(_) => 16,
        Bson::MaxKey => 17,
    }
}

/// Whether the value is one of the four numeric types.
pub fn is_number(v: &Bson) -> bool {
    type_rank(v) == 4
}

/// A Decimal128 as an f64 (the emulator does decimal arithmetic in binary
/// floating point; exact decimal semantics are out of scope).
pub fn decimal_to_f64(d: &bson::Decimal128) -> f64 {
    let s = d.to_string();
    match s.as_str() {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        "NaN" | "-NaN" => f64::NAN,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

/// A numeric value as f64 (None for non-numbers).
pub fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(f) => Some(*f),
        Bson::Decimal128(d) => Some(decimal_to_f64(d)),
        _ => None,
    }
}

/// An integral numeric value as i64, exactly (None for fractions, non-numbers).
pub fn as_i64_exact(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && *f >= -9.223_372_036_854_776e18 && *f < 9.223_372_036_854_776e18 => Some(*f as i64),
        Bson::Decimal128(d) => {
            let f = decimal_to_f64(d);
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        }
        _ => None,
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    // NaN equals NaN and sorts below every other number.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_i64_f64(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= 9.223_372_036_854_776e18 {
        return Ordering::Less;
    }
    if f < -9.223_372_036_854_776e18 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => cmp_f64(0.0, f - t),
        o => o,
    }
}

fn cmp_numbers(a: &Bson, b: &Bson) -> Ordering {
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => cmp_i64_f64(x, as_f64(b).unwrap_or(f64::NAN)),
        (None, Some(y)) => cmp_i64_f64(y, as_f64(a).unwrap_or(f64::NAN)).reverse(),
        (None, None) => cmp_f64(as_f64(a).unwrap_or(f64::NAN), as_f64(b).unwrap_or(f64::NAN)),
    }
}

/// Compares two documents field by field in order: field type, then field
/// name, then value; a document that runs out of fields first is smaller.
pub fn cmp_docs(a: &Document, b: &Document) -> Ordering {
    let mut ia = a.iter();
    let mut ib = b.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let o = type_rank(va).cmp(&type_rank(vb)).then_with(|| ka.as_bytes().cmp(kb.as_bytes())).then_with(|| cmp_bson(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// MongoDB's total order over BSON values.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (ea, eb) in x.iter().zip(y.iter()) {
                let o = cmp_bson(ea, eb);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => (x.time, x.increment).cmp(&(y.time, y.increment)),
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x.pattern.cmp(&y.pattern).then_with(|| x.options.cmp(&y.options)),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code.cmp(&y.code).then_with(|| cmp_docs(&x.scope, &y.scope))
        }
        _ if ra == 4 => cmp_numbers(a, b),
        _ => Ordering::Equal,
    }
}

/// Query equality: equal under [`cmp_bson`] (so `1`, `1.0` and
/// `NumberLong(1)` are equal; documents compare in field order).
pub fn eq_bson(a: &Bson, b: &Bson) -> bool {
    cmp_bson(a, b) == Ordering::Equal
}

/// Strict identity (same types, same field order, same bits): what MongoDB's
/// binary comparison sees when it decides whether an update changed a document.
pub fn identical(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Bson::Document(x), Bson::Document(y)) => identical_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical(p, q)),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x.code == y.code && identical_docs(&x.scope, &y.scope),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b) && a == b,
    }
}

/// [`identical`] for documents: same keys in the same order, identical values.
pub fn identical_docs(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

/// A BSON value ordered by [`cmp_bson`], for maps keyed by value.
#[derive(Clone, Debug)]
pub struct OrdBson(pub Bson);

impl PartialEq for OrdBson {
    fn eq(&self, other: &Self) -> bool {
        eq_bson(&self.0, &other.0)
    }
}
impl Eq for OrdBson {}
impl PartialOrd for OrdBson {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdBson {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_bson(&self.0, &other.0)
    }
}

/// Adds two numbers with MongoDB's type promotion: Int32 overflows into
/// Int64, Int64 into Double; any Double makes a Double, any Decimal128 a
/// Decimal128.
pub fn add_numbers(a: &Bson, b: &Bson) -> Bson {
    arith(a, b, |x, y| x.checked_add(y), |x, y| x + y)
}

/// Multiplies two numbers with the same promotion rules as [`add_numbers`].
pub fn mul_numbers(a: &Bson, b: &Bson) -> Bson {
    arith(a, b, |x, y| x.checked_mul(y), |x, y| x * y)
}

/// Subtracts `b` from `a` with the same promotion rules as [`add_numbers`].
pub fn sub_numbers(a: &Bson, b: &Bson) -> Bson {
    arith(a, b, |x, y| x.checked_sub(y), |x, y| x - y)
}

fn arith(a: &Bson, b: &Bson, int: fn(i64, i64) -> Option<i64>, float: fn(f64, f64) -> f64) -> Bson {
    let fa = as_f64(a).unwrap_or(f64::NAN);
    let fb = as_f64(b).unwrap_or(f64::NAN);
    match (a, b) {
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => f64_to_decimal(float(fa, fb)),
        (Bson::Double(_), _) | (_, Bson::Double(_)) => Bson::Double(float(fa, fb)),
        (Bson::Int32(x), Bson::Int32(y)) => match int(*x as i64, *y as i64) {
            Some(r) if i32::try_from(r).is_ok() => Bson::Int32(r as i32),
            Some(r) => Bson::Int64(r),
            None => Bson::Double(float(fa, fb)),
        },
        _ => match (as_i64_exact(a), as_i64_exact(b)) {
            (Some(x), Some(y)) => int(x, y).map(Bson::Int64).unwrap_or_else(|| Bson::Double(float(fa, fb))),
            _ => Bson::Double(float(fa, fb)),
        },
    }
}

/// An f64 as a Decimal128 (through its shortest decimal representation).
pub fn f64_to_decimal(f: f64) -> Bson {
    let text = if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".to_owned()
        } else {
            "-Infinity".to_owned()
        }
    } else {
        format!("{f}")
    };
    text.parse::<bson::Decimal128>()
        .or_else(|_| format!("{f:e}").parse::<bson::Decimal128>())
        .map(Bson::Decimal128)
        .unwrap_or(Bson::Double(f))
}
