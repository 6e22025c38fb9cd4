//! Extended JSON round trips: canonical ↔ relaxed ↔ JSON mode.

use bson::{Bson, Document};
use emulators::data_api::ejson::{decode, decode_document, iso_millis, to_canonical, to_json_mode, to_relaxed};
use serde_json::{json, Value};

fn round_trip(canonical: Value, relaxed: Value, json_mode: Value) {
    let from_canonical = decode(canonical.clone()).expect("canonical decodes");
    let from_relaxed = decode(relaxed.clone()).expect("relaxed decodes");
    assert_eq!(to_canonical(&from_canonical), canonical, "canonical → bson → canonical");
    assert_eq!(to_canonical(&from_relaxed), canonical, "relaxed → bson → canonical");
    assert_eq!(to_relaxed(&from_canonical), relaxed, "canonical → bson → relaxed");
    assert_eq!(to_json_mode(&from_canonical), json_mode, "JSON mode");
}

#[test]
fn object_id_round_trips_and_is_a_hex_string_in_json_mode() {
    round_trip(json!({"$oid": "5d505646cf6d4fe581014ab2"}), json!({"$oid": "5d505646cf6d4fe581014ab2"}), json!("5d505646cf6d4fe581014ab2"));
}

#[test]
fn date_round_trips_in_both_forms_and_is_iso_in_json_mode() {
    round_trip(
        json!({"$date": {"$numberLong": "1641954803067"}}),
        json!({"$date": "2022-01-12T02:33:23.067Z"}),
        json!("2022-01-12T02:33:23.067Z"),
    );
}

#[test]
fn dates_before_1970_stay_canonical_in_relaxed_form() {
    round_trip(json!({"$date": {"$numberLong": "-1000"}}), json!({"$date": {"$numberLong": "-1000"}}), json!("1969-12-31T23:59:59.000Z"));
}

#[test]
fn relaxed_date_with_offset_is_normalised_to_utc() {
    let b = decode(json!({"$date": "2026-01-15T10:00:00+01:00"})).unwrap();
    assert_eq!(to_json_mode(&b), json!("2026-01-15T09:00:00.000Z"));
}

#[test]
fn int32_int64_double_round_trip() {
    round_trip(json!({"$numberInt": "10"}), json!(10), json!(10));
    // Int64: relaxed output is a plain number (the EJSON spec), so a client
    // that needs a long must send it canonical (the contract's table).
    let long = decode(json!({"$numberLong": "50"})).unwrap();
    assert_eq!(long, Bson::Int64(50));
    assert_eq!(to_canonical(&long), json!({"$numberLong": "50"}));
    assert_eq!(to_relaxed(&long), json!(50));
    assert_eq!(to_json_mode(&long), json!(50));
    round_trip(json!({"$numberLong": "9007199254740993"}), json!(9007199254740993_i64), json!(9007199254740993_i64));
    round_trip(json!({"$numberDouble": "10.5"}), json!(10.5), json!(10.5));
    round_trip(json!({"$numberDouble": "-0.0"}), json!(-0.0), json!(-0.0));
}

#[test]
fn plain_json_numbers_decode_to_the_narrowest_type() {
    assert_eq!(decode(json!(10)).unwrap(), Bson::Int32(10));
    assert_eq!(decode(json!(3_000_000_000_i64)).unwrap(), Bson::Int64(3_000_000_000));
    assert_eq!(decode(json!(10.0)).unwrap(), Bson::Double(10.0));
}

#[test]
fn non_finite_doubles_keep_their_wrapper() {
    let inf = decode(json!({"$numberDouble": "Infinity"})).unwrap();
    assert_eq!(to_canonical(&inf), json!({"$numberDouble": "Infinity"}));
    assert_eq!(to_json_mode(&inf), json!({"$numberDouble": "Infinity"}));
}

#[test]
fn decimal128_round_trips_and_is_a_string_in_json_mode() {
    round_trip(json!({"$numberDecimal": "9823.1297"}), json!({"$numberDecimal": "9823.1297"}), json!("9823.1297"));
}

#[test]
fn binary_regex_timestamp_min_max_keys() {
    round_trip(
        json!({"$binary": {"base64": "AQIDBA==", "subType": "05"}}),
        json!({"$binary": {"base64": "AQIDBA==", "subType": "05"}}),
        json!({"Subtype": 5, "Data": "AQIDBA=="}),
    );
    round_trip(
        json!({"$regularExpression": {"pattern": "^H", "options": "i"}}),
        json!({"$regularExpression": {"pattern": "^H", "options": "i"}}),
        json!({"Pattern": "^H", "Options": "i"}),
    );
    round_trip(
        json!({"$timestamp": {"t": 1565545664, "i": 1}}),
        json!({"$timestamp": {"t": 1565545664, "i": 1}}),
        json!({"T": 1565545664, "I": 1}),
    );
    round_trip(json!({"$minKey": 1}), json!({"$minKey": 1}), json!({}));
    round_trip(json!({"$maxKey": 1}), json!({"$maxKey": 1}), json!({}));
}

#[test]
fn nested_documents_and_arrays_convert_recursively_keeping_field_order() {
    round_trip(
        json!({"z": {"$numberInt": "1"}, "a": [{"$oid": "65b000000000000000000001"}, {"d": {"$date": {"$numberLong": "0"}}}], "m": {"y": "s", "b": null, "t": true}}),
        json!({"z": 1, "a": [{"$oid": "65b000000000000000000001"}, {"d": {"$date": "1970-01-01T00:00:00Z"}}], "m": {"y": "s", "b": null, "t": true}}),
        json!({"z": 1, "a": ["65b000000000000000000001", {"d": "1970-01-01T00:00:00.000Z"}], "m": {"y": "s", "b": null, "t": true}}),
    );
    let d: Document = decode_document(json!({"z": 1, "a": 2, "m": 3})).unwrap();
    assert_eq!(d.keys().collect::<Vec<_>>(), vec!["z", "a", "m"]);
}

#[test]
fn canonical_and_relaxed_may_be_mixed_in_one_document() {
    let d = decode_document(
        json!({"a": {"$numberInt": "5"}, "b": 5, "c": {"$date": "2026-01-15T09:00:00Z"}, "e": {"$date": {"$numberLong": "1768467600000"}}}),
    )
    .unwrap();
    assert_eq!(d.get("a"), d.get("b"));
    assert_eq!(d.get("c"), d.get("e"));
}

#[test]
fn malformed_wrappers_are_refused() {
    assert!(decode(json!({"$oid": "not-hex"})).is_err());
    assert!(decode(json!({"$numberLong": 5})).is_err());
    assert!(decode(json!({"$date": "yesterday"})).is_err());
    assert!(decode(json!({"$numberDecimal": "abc"})).is_err());
}

#[test]
fn iso_millis_formats_utc_with_milliseconds() {
    assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_millis(1_768_467_600_000), "2026-01-15T09:00:00.000Z");
    assert_eq!(iso_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
}
