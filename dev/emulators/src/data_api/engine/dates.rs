//! `$dateToString` (MongoDB manual `operator/aggregation/dateToString`):
//! a date rendered by a format string in UTC or a fixed offset.

use bson::{Bson, Document};

use super::aggregate::{parse_expr, Expr};
use super::{type_name, EngineError, Result};

const DEFAULT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.%LZ";
const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

pub(crate) fn parse_date_to_string(arg: &Bson) -> Result<Expr> {
    let Bson::Document(d) = arg else {
        return Err(EngineError::bad(format!("$dateToString only supports an object as its argument, found {}", type_name(arg))));
    };
    parse_spec(d)
}

fn parse_spec(d: &Document) -> Result<Expr> {
    let (mut date, mut format, mut offset, mut on_null) = (None, None, 0, None);
    for (k, v) in d {
        match (k.as_str(), v) {
            ("date", v) => date = Some(Box::new(parse_expr(v)?)),
            ("format", Bson::String(f)) => {
                check_format(f)?;
                format = Some(f.clone());
            }
            ("format", other) => {
                return Err(EngineError::bad(format!("$dateToString requires that 'format' be a string, found: {}", type_name(other))))
            }
            ("timezone", Bson::String(tz)) => offset = parse_timezone(tz)?,
            ("timezone", other) => {
                return Err(EngineError::bad(format!(
                    "$dateToString: the emulator takes 'timezone' as a string literal only, found {}",
                    type_name(other)
                )))
            }
            ("onNull", v) => on_null = Some(Box::new(parse_expr(v)?)),
            (other, _) => return Err(EngineError::bad(format!("Unrecognized argument to $dateToString: {other}"))),
        }
    }
    let date = date.ok_or_else(|| EngineError::bad("Missing 'date' parameter to $dateToString"))?;
    Ok(Expr::DateToString { date, format, offset_minutes: offset, on_null })
}

/// `UTC`/`GMT` or a fixed offset `±hh`, `±hhmm`, `±hh:mm`; Olson names would
/// need a time-zone database the emulator does not carry.
fn parse_timezone(tz: &str) -> Result<i32> {
    if matches!(tz, "UTC" | "GMT" | "Etc/UTC" | "Etc/GMT" | "Z") {
        return Ok(0);
    }
    let bad = || EngineError::bad(format!("unrecognized time zone identifier: \"{tz}\" (the emulator knows UTC and fixed offsets only)"));
    let (sign, rest) = match tz.as_bytes().first() {
        Some(b'+') => (1, &tz[1..]),
        Some(b'-') => (-1, &tz[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) || (rest.contains(':') && rest.len() != 5) {
        return Err(bad());
    }
    let h: i32 = digits[..2].parse().map_err(|_| bad())?;
    let m: i32 = if digits.len() == 4 { digits[2..].parse().map_err(|_| bad())? } else { 0 };
    Ok(sign * (h * 60 + m))
}

fn check_format(f: &str) -> Result<()> {
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('d' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'w' | 'u' | 'Y' | 'z' | 'Z' | '%' | 'b' | 'B') => {}
                Some(x @ ('G' | 'U' | 'V')) => {
                    return Err(EngineError::bad(format!("$dateToString: '%{x}' is not supported by the emulator")))
                }
                Some(x) => return Err(EngineError::bad(format!("Invalid format character '%{x}' in format string"))),
                None => return Err(EngineError::bad("Unmatched '%' at end of format string")),
            }
        }
    }
    Ok(())
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Renders `millis` (since the epoch, UTC) shifted by `offset_minutes`.
pub(crate) fn format(millis: i64, format: Option<&str>, offset_minutes: i32) -> String {
    let local = millis + i64::from(offset_minutes) * 60_000;
    let days = local.div_euclid(86_400_000);
    let ms_of_day = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let doy = cumulative[(m - 1) as usize] + d + u32::from(m > 2 && is_leap(y));
    // 1970-01-01 was a Thursday: %w counts Sunday as 1, %u Monday as 1.
    let weekday_from_monday = (days + 3).rem_euclid(7) + 1;
    let weekday_from_sunday = (days + 4).rem_euclid(7) + 1;
    let mut out = String::new();
    let mut chars = format.unwrap_or(DEFAULT_FORMAT).chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('L') => out.push_str(&format!("{ms:03}")),
            Some('j') => out.push_str(&format!("{doy:03}")),
            Some('w') => out.push_str(&weekday_from_sunday.to_string()),
            Some('u') => out.push_str(&weekday_from_monday.to_string()),
            Some('z') => {
                let sign = if offset_minutes < 0 { '-' } else { '+' };
                let a = offset_minutes.abs();
                out.push_str(&format!("{sign}{:02}{:02}", a / 60, a % 60));
            }
            Some('Z') => out.push_str(&offset_minutes.to_string()),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('%') => out.push('%'),
            // Checked when parsed.
            _ => {}
        }
    }
    out
}
