//! Table tests of the Data API emulator's MongoDB semantics
//! (as the MongoDB manual states them). Each test is named for the MongoDB
//! behaviour it checks; most use the MongoDB manual's own examples
//! (`query-embedded-documents`, `query-arrays`, `query-array-of-documents`,
//! `query-for-null-fields`, the operator pages, `bson-type-comparison-order`).

use bson::Document;
use emulators::data_api::ejson::{decode_document, to_canonical, to_relaxed};
use emulators::data_api::engine::{update, EngineError, Filter, Pipeline, Projection, SortSpec, Update};
use serde_json::{json, Value};

fn doc(v: Value) -> Document {
    decode_document(v).expect("valid EJSON document")
}

fn relaxed(d: &Document) -> Value {
    to_relaxed(&bson::Bson::Document(d.clone()))
}

fn canonical(d: &Document) -> Value {
    to_canonical(&bson::Bson::Document(d.clone()))
}

fn filter(f: Value) -> Filter {
    Filter::parse(&doc(f)).unwrap_or_else(|e| panic!("filter should parse: {e}"))
}

fn filter_err(f: Value) -> EngineError {
    Filter::parse(&doc(f)).expect_err("filter should be refused")
}

/// The `_id`s of the documents of `coll` that match `f`, in order.
fn ids(coll: &[Value], f: Value) -> Vec<Value> {
    let f = filter(f);
    coll.iter().map(|d| doc(d.clone())).filter(|d| f.matches(d)).map(|d| relaxed(&d)["_id"].clone()).collect()
}

fn matches(f: Value, d: Value) -> bool {
    filter(f).matches(&doc(d))
}

/// The manual's `inventory` collection for embedded-document queries.
fn inventory_embedded() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "journal", "qty": 25, "size": {"h": 14, "w": 21, "uom": "cm"}, "status": "A"}),
        json!({"_id": 2, "item": "notebook", "qty": 50, "size": {"h": 8.5, "w": 11, "uom": "in"}, "status": "A"}),
        json!({"_id": 3, "item": "paper", "qty": 100, "size": {"h": 8.5, "w": 11, "uom": "in"}, "status": "D"}),
        json!({"_id": 4, "item": "planner", "qty": 75, "size": {"h": 22.85, "w": 30, "uom": "cm"}, "status": "D"}),
        json!({"_id": 5, "item": "postcard", "qty": 45, "size": {"h": 10, "w": 15.25, "uom": "cm"}, "status": "A"}),
    ]
}

/// The manual's `inventory` collection for array queries.
fn inventory_arrays() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "journal", "qty": 25, "tags": ["blank", "red"], "dim_cm": [14, 21]}),
        json!({"_id": 2, "item": "notebook", "qty": 50, "tags": ["red", "blank"], "dim_cm": [14, 21]}),
        json!({"_id": 3, "item": "paper", "qty": 100, "tags": ["red", "blank", "plain"], "dim_cm": [14, 21]}),
        json!({"_id": 4, "item": "planner", "qty": 75, "tags": ["blank", "red"], "dim_cm": [22.85, 30]}),
        json!({"_id": 5, "item": "postcard", "qty": 45, "tags": ["blue"], "dim_cm": [10, 15.25]}),
    ]
}

/// The manual's `inventory` collection for arrays of embedded documents.
fn inventory_instock() -> Vec<Value> {
    vec![
        json!({"_id": 1, "item": "journal", "instock": [{"warehouse": "A", "qty": 5}, {"warehouse": "C", "qty": 15}]}),
        json!({"_id": 2, "item": "notebook", "instock": [{"warehouse": "C", "qty": 5}]}),
        json!({"_id": 3, "item": "paper", "instock": [{"warehouse": "A", "qty": 60}, {"warehouse": "B", "qty": 15}]}),
        json!({"_id": 4, "item": "planner", "instock": [{"warehouse": "A", "qty": 40}, {"warehouse": "B", "qty": 5}]}),
        json!({"_id": 5, "item": "postcard", "instock": [{"warehouse": "B", "qty": 15}, {"warehouse": "C", "qty": 35}]}),
    ]
}

// ---------------------------------------------------------------------------
// Embedded documents

#[test]
fn dotted_path_descends_into_embedded_documents() {
    assert_eq!(ids(&inventory_embedded(), json!({"size.uom": "in"})), vec![json!(2), json!(3)]);
    assert_eq!(ids(&inventory_embedded(), json!({"size.h": {"$lt": 15}, "size.uom": "in", "status": "D"})), vec![json!(3)]);
}

#[test]
fn embedded_document_equality_needs_exact_fields_in_order() {
    assert_eq!(ids(&inventory_embedded(), json!({"size": {"h": 14, "w": 21, "uom": "cm"}})), vec![json!(1)]);
    assert!(ids(&inventory_embedded(), json!({"size": {"w": 21, "h": 14, "uom": "cm"}})).is_empty());
    assert!(ids(&inventory_embedded(), json!({"size": {"h": 14, "w": 21}})).is_empty());
}

#[test]
fn literal_document_whose_first_key_is_not_an_operator_is_equality() {
    assert!(matches(json!({"a": {"b": 1, "$c": 2}}), json!({"a": {"b": 1, "$c": 2}})));
    assert!(!matches(json!({"a": {"b": 1, "$c": 2}}), json!({"a": {"b": 1}})));
}

// ---------------------------------------------------------------------------
// Arrays

#[test]
fn array_exact_match_is_order_sensitive() {
    assert_eq!(ids(&inventory_arrays(), json!({"tags": ["red", "blank"]})), vec![json!(2)]);
}

#[test]
fn all_matches_elements_in_any_order() {
    assert_eq!(ids(&inventory_arrays(), json!({"tags": {"$all": ["red", "blank"]}})), vec![json!(1), json!(2), json!(3), json!(4)]);
}

#[test]
fn scalar_on_array_field_matches_any_element() {
    assert_eq!(ids(&inventory_arrays(), json!({"tags": "red"})), vec![json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(ids(&inventory_arrays(), json!({"dim_cm": {"$gt": 25}})), vec![json!(4)]);
}

#[test]
fn compound_range_on_array_may_be_met_by_different_elements() {
    // Manual: one element > 15 and another < 20, or one element doing both.
    assert_eq!(ids(&inventory_arrays(), json!({"dim_cm": {"$gt": 15, "$lt": 20}})), vec![json!(1), json!(2), json!(3), json!(5)]);
}

#[test]
fn elem_match_requires_one_element_to_meet_every_condition() {
    assert_eq!(ids(&inventory_arrays(), json!({"dim_cm": {"$elemMatch": {"$gt": 22, "$lt": 30}}})), vec![json!(4)]);
    assert!(matches(json!({"results": {"$elemMatch": {"$gte": 80, "$lt": 85}}}), json!({"results": [82, 85, 88]})));
    assert!(!matches(json!({"results": {"$elemMatch": {"$gte": 80, "$lt": 85}}}), json!({"results": [75, 88, 89]})));
}

#[test]
fn numeric_path_component_selects_array_index() {
    assert_eq!(ids(&inventory_arrays(), json!({"dim_cm.1": {"$gt": 25}})), vec![json!(4)]);
    assert_eq!(ids(&inventory_arrays(), json!({"tags.0": "red"})), vec![json!(2), json!(3)]);
}

#[test]
fn size_matches_array_length() {
    assert_eq!(ids(&inventory_arrays(), json!({"tags": {"$size": 3}})), vec![json!(3)]);
    assert_eq!(filter_err(json!({"tags": {"$size": "3"}})).message, "$size needs a number");
}

#[test]
fn dotted_path_through_array_of_documents_matches_any_element() {
    assert_eq!(ids(&inventory_instock(), json!({"instock.qty": {"$lte": 20}})), vec![json!(1), json!(2), json!(3), json!(4), json!(5)]);
    assert_eq!(ids(&inventory_instock(), json!({"instock.0.qty": {"$lte": 20}})), vec![json!(1), json!(2), json!(5)]);
}

#[test]
fn array_of_documents_equality_needs_exact_element() {
    assert_eq!(ids(&inventory_instock(), json!({"instock": {"warehouse": "A", "qty": 5}})), vec![json!(1)]);
    assert!(ids(&inventory_instock(), json!({"instock": {"qty": 5, "warehouse": "A"}})).is_empty());
}

#[test]
fn elem_match_on_documents_vs_conditions_across_elements() {
    // Manual: with $elemMatch one element must meet both conditions ...
    assert_eq!(ids(&inventory_instock(), json!({"instock": {"$elemMatch": {"qty": 5, "warehouse": "A"}}})), vec![json!(1)]);
    assert_eq!(
        ids(&inventory_instock(), json!({"instock": {"$elemMatch": {"qty": {"$gt": 10, "$lte": 20}}}})),
        vec![json!(1), json!(3), json!(5)]
    );
    // ... without it, any combination of elements may.
    assert_eq!(ids(&inventory_instock(), json!({"instock.qty": {"$gt": 10, "$lte": 20}})), vec![json!(1), json!(3), json!(4), json!(5)]);
    assert_eq!(ids(&inventory_instock(), json!({"instock.qty": 5, "instock.warehouse": "A"})), vec![json!(1), json!(4)]);
}

// ---------------------------------------------------------------------------
// Null, missing, $exists, $type

fn null_collection() -> Vec<Value> {
    vec![json!({"_id": 1, "item": null}), json!({"_id": 2})]
}

#[test]
fn null_equality_matches_null_and_missing() {
    assert_eq!(ids(&null_collection(), json!({"item": null})), vec![json!(1), json!(2)]);
    assert_eq!(ids(&null_collection(), json!({"item": {"$eq": null}})), vec![json!(1), json!(2)]);
}

#[test]
fn type_null_matches_only_explicit_null() {
    assert_eq!(ids(&null_collection(), json!({"item": {"$type": 10}})), vec![json!(1)]);
    assert_eq!(ids(&null_collection(), json!({"item": {"$type": "null"}})), vec![json!(1)]);
}

#[test]
fn exists_false_matches_only_missing() {
    assert_eq!(ids(&null_collection(), json!({"item": {"$exists": false}})), vec![json!(2)]);
    assert_eq!(ids(&null_collection(), json!({"item": {"$exists": true}})), vec![json!(1)]);
}

#[test]
fn null_in_array_of_documents_matches_element_without_field() {
    assert!(matches(json!({"a.b": null}), json!({"a": [{"b": 1}, {"c": 2}]})));
    assert!(!matches(json!({"a.b": null}), json!({"a": [{"b": 1}, {"b": 2}]})));
    assert!(matches(json!({"a.b": {"$exists": true}}), json!({"a": [{"b": 1}, {"c": 2}]})));
}

#[test]
fn type_accepts_aliases_codes_number_and_lists() {
    let d = json!({"a": "x", "n": {"$numberLong": "5"}, "d": 1.5, "arr": [1, "s"], "o": {"$oid": "65b000000000000000000001"}});
    assert!(matches(json!({"a": {"$type": "string"}}), d.clone()));
    assert!(matches(json!({"a": {"$type": 2}}), d.clone()));
    assert!(matches(json!({"n": {"$type": "long"}}), d.clone()));
    assert!(matches(json!({"n": {"$type": "number"}}), d.clone()));
    assert!(matches(json!({"d": {"$type": ["string", "double"]}}), d.clone()));
    assert!(matches(json!({"arr": {"$type": "array"}}), d.clone()));
    assert!(matches(json!({"arr": {"$type": "string"}}), d.clone()), "array elements are checked too");
    assert!(matches(json!({"o": {"$type": "objectId"}}), d.clone()));
    assert!(!matches(json!({"missing": {"$type": "null"}}), d));
    assert!(filter_err(json!({"a": {"$type": "nonsense"}})).message.contains("Unknown type name alias"));
}

// ---------------------------------------------------------------------------
// Comparison

#[test]
fn numbers_compare_by_value_across_types() {
    let coll = vec![
        json!({"_id": 1, "v": {"$numberInt": "1"}}),
        json!({"_id": 2, "v": {"$numberLong": "1"}}),
        json!({"_id": 3, "v": {"$numberDouble": "1.0"}}),
        json!({"_id": 4, "v": {"$numberDecimal": "1.0"}}),
        json!({"_id": 5, "v": {"$numberDouble": "1.5"}}),
    ];
    assert_eq!(ids(&coll, json!({"v": 1})), vec![json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(ids(&coll, json!({"v": {"$numberLong": "1"}})), vec![json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(ids(&coll, json!({"v": {"$gt": {"$numberLong": "1"}}})), vec![json!(5)]);
    assert_eq!(ids(&coll, json!({"v": {"$in": [1.5]}})), vec![json!(5)]);
}

#[test]
fn large_int64_and_double_compare_exactly() {
    // 2^53 + 1 is not representable as a double: it is greater than 2^53.
    assert!(matches(json!({"v": {"$gt": 9007199254740992.0}}), json!({"v": {"$numberLong": "9007199254740993"}})));
    assert!(!matches(json!({"v": 9007199254740992.0}), json!({"v": {"$numberLong": "9007199254740993"}})));
}

#[test]
fn comparison_operators_only_match_the_same_type_bracket() {
    assert!(!matches(json!({"v": {"$gt": 1}}), json!({"v": "2"})));
    assert!(!matches(json!({"v": {"$lt": "z"}}), json!({"v": 5})));
    assert!(!matches(json!({"v": {"$gt": null}}), json!({"v": 5})));
    assert!(matches(json!({"v": {"$gte": "a"}}), json!({"v": "b"})));
}

#[test]
fn strings_compare_as_binary_without_collation() {
    assert!(matches(json!({"v": {"$lt": "a"}}), json!({"v": "B"})));
    assert!(!matches(json!({"v": "alice@acme.test"}), json!({"v": "Alice@acme.test"})));
}

#[test]
fn gte_and_lte_null_match_missing_but_gt_does_not() {
    assert!(matches(json!({"v": {"$gte": null}}), json!({})));
    assert!(matches(json!({"v": {"$lte": null}}), json!({"v": null})));
    assert!(!matches(json!({"v": {"$gt": null}}), json!({})));
}

#[test]
fn dates_and_object_ids_compare_by_type() {
    let d = json!({"createdAt": {"$date": "2026-01-15T09:00:00Z"}, "_id": {"$oid": "65b000000000000000000001"}});
    assert!(matches(json!({"createdAt": {"$gte": {"$date": {"$numberLong": "1768467600000"}}}}), d.clone()));
    assert!(!matches(json!({"createdAt": {"$gt": {"$date": "2026-01-15T09:00:00.000Z"}}}), d.clone()));
    assert!(matches(json!({"_id": {"$oid": "65b000000000000000000001"}}), d.clone()));
    assert!(!matches(json!({"_id": "65b000000000000000000001"}), d.clone()), "a hex string is not an ObjectId");
    assert!(!matches(json!({"createdAt": {"$gt": 0}}), d), "dates are not numbers");
}

#[test]
fn ne_matches_missing_and_arrays_without_the_value() {
    let coll =
        vec![json!({"_id": 1, "tags": ["a", "b"]}), json!({"_id": 2, "tags": ["b"]}), json!({"_id": 3}), json!({"_id": 4, "tags": "a"})];
    assert_eq!(ids(&coll, json!({"tags": {"$ne": "a"}})), vec![json!(2), json!(3)]);
}

#[test]
fn in_matches_elements_and_null_matches_missing() {
    let coll = vec![json!({"_id": 1, "tags": ["a", "b"]}), json!({"_id": 2, "tags": "c"}), json!({"_id": 3})];
    assert_eq!(ids(&coll, json!({"tags": {"$in": ["b", "c"]}})), vec![json!(1), json!(2)]);
    assert_eq!(ids(&coll, json!({"tags": {"$in": ["zzz", null]}})), vec![json!(3)]);
    assert_eq!(ids(&coll, json!({"tags": {"$in": []}})), Vec::<Value>::new());
}

#[test]
fn nin_matches_missing_and_arrays_with_no_listed_element() {
    let coll = vec![json!({"_id": 1, "tags": ["a", "b"]}), json!({"_id": 2, "tags": ["c"]}), json!({"_id": 3})];
    assert_eq!(ids(&coll, json!({"tags": {"$nin": ["a", "z"]}})), vec![json!(2), json!(3)]);
}

// ---------------------------------------------------------------------------
// Logical

fn price_collection() -> Vec<Value> {
    vec![
        json!({"_id": 1, "price": 1.99, "qty": 10, "sale": true}),
        json!({"_id": 2, "price": 2.99, "qty": 30, "sale": false}),
        json!({"_id": 3, "qty": 50}),
        json!({"_id": 4, "price": 1.50, "sale": false}),
    ]
}

#[test]
fn and_or_combine_clauses() {
    assert_eq!(
        ids(&price_collection(), json!({"$and": [{"price": {"$ne": 1.99}}, {"price": {"$exists": true}}]})),
        vec![json!(2), json!(4)]
    );
    assert_eq!(ids(&price_collection(), json!({"$or": [{"qty": {"$lt": 20}}, {"price": 1.50}]})), vec![json!(1), json!(4)]);
}

#[test]
fn nor_matches_documents_failing_every_clause_including_missing_fields() {
    assert_eq!(ids(&price_collection(), json!({"$nor": [{"price": 1.99}, {"sale": true}]})), vec![json!(2), json!(3), json!(4)]);
}

#[test]
fn not_matches_when_condition_fails_or_field_is_missing() {
    assert_eq!(ids(&price_collection(), json!({"price": {"$not": {"$gt": 1.99}}})), vec![json!(1), json!(3), json!(4)]);
    assert_eq!(filter_err(json!({"price": {"$not": 5}})).message, "$not needs a regex or a document");
}

#[test]
fn all_with_elem_match_and_empty_all() {
    let d = json!({"qty": [{"size": "S", "num": 10, "color": "blue"}, {"size": "M", "num": 45, "color": "blue"}]});
    assert!(matches(json!({"qty": {"$all": [{"$elemMatch": {"size": "M", "num": {"$gt": 40}}}]}}), d.clone()));
    assert!(!matches(json!({"qty": {"$all": [{"$elemMatch": {"size": "L"}}]}}), d.clone()));
    assert!(!matches(json!({"qty": {"$all": []}}), d));
}

// ---------------------------------------------------------------------------
// Refused filters

#[test]
fn unknown_and_unsupported_operators_are_refused() {
    assert_eq!(filter_err(json!({"a": {"$foo": 1}})).message, "unknown operator: $foo");
    assert_eq!(filter_err(json!({"$where": "1"})).message, "unknown top level operator: $where");
    assert_eq!(filter_err(json!({"$expr": {"$eq": [1, 1]}})).message, "unknown top level operator: $expr");
    assert!(filter_err(json!({"a": {"$regex": "^x"}})).message.contains("not supported"));
    assert!(filter_err(json!({"a": {"$regularExpression": {"pattern": "^x", "options": ""}}})).message.contains("not supported"));
    assert_eq!(filter_err(json!({"a": {"$in": 5}})).message, "$in needs an array");
    assert_eq!(filter_err(json!({"$and": []})).message, "$and argument must be a non-empty array");
    assert_eq!(filter_err(json!({"$or": [1]})).message, "$or argument's entries must be objects");
    assert_eq!(filter_err(json!({"a": {"$elemMatch": 1}})).message, "$elemMatch needs an Object");
    assert_eq!(filter_err(json!({"a": {"$gt": 1, "b": 2}})).message, "unknown operator: b");
    assert_eq!(filter_err(json!({"a": {"$foo": 1}})).code, "InvalidParameter");
}

// ---------------------------------------------------------------------------
// Projection

fn project(spec: Value, d: Value) -> Value {
    match Projection::parse(&doc(spec)).expect("projection parses") {
        Some(p) => relaxed(&p.apply(&doc(d))),
        None => relaxed(&doc(d)),
    }
}

fn inventory_doc() -> Value {
    json!({"_id": 5, "item": "postcard", "status": "A", "size": {"h": 10, "w": 15.25, "uom": "cm"},
           "instock": [{"warehouse": "B", "qty": 15}, {"warehouse": "C", "qty": 35}]})
}

#[test]
fn inclusion_projection_keeps_id_unless_excluded() {
    assert_eq!(project(json!({"item": 1, "status": 1}), inventory_doc()), json!({"_id": 5, "item": "postcard", "status": "A"}));
    assert_eq!(project(json!({"item": 1, "status": 1, "_id": 0}), inventory_doc()), json!({"item": "postcard", "status": "A"}));
    assert_eq!(project(json!({"_id": 1}), inventory_doc()), json!({"_id": 5}));
    assert_eq!(project(json!({"item": true}), inventory_doc()), json!({"_id": 5, "item": "postcard"}));
}

#[test]
fn exclusion_projection_drops_fields() {
    assert_eq!(project(json!({"status": 0, "instock": 0, "size": 0}), inventory_doc()), json!({"_id": 5, "item": "postcard"}));
    assert_eq!(project(json!({"_id": 0}), json!({"_id": 1, "a": 2})), json!({"a": 2}));
}

#[test]
fn dotted_projection_reaches_embedded_fields_and_array_elements() {
    assert_eq!(project(json!({"item": 1, "size.uom": 1}), inventory_doc()), json!({"_id": 5, "item": "postcard", "size": {"uom": "cm"}}));
    assert_eq!(project(json!({"instock.qty": 1, "_id": 0}), inventory_doc()), json!({"instock": [{"qty": 15}, {"qty": 35}]}));
    assert_eq!(
        project(json!({"size.uom": 0, "instock": 0}), inventory_doc()),
        json!({"_id": 5, "item": "postcard", "status": "A", "size": {"h": 10, "w": 15.25}})
    );
}

#[test]
fn mixing_inclusion_and_exclusion_is_refused() {
    let e = Projection::parse(&doc(json!({"a": 1, "b": 0}))).expect_err("mixed projection");
    assert_eq!(e.message, "Cannot do exclusion on field b in inclusion projection");
    assert!(Projection::parse(&doc(json!({"a": {"$slice": 1}}))).is_err());
}

// ---------------------------------------------------------------------------
// Sort

fn sorted_ids(spec: Value, coll: Vec<Value>) -> Vec<Value> {
    let mut docs: Vec<Document> = coll.into_iter().map(doc).collect();
    SortSpec::parse(&doc(spec)).expect("sort parses").sort(&mut docs);
    docs.iter().map(|d| relaxed(d)["_id"].clone()).collect()
}

#[test]
fn sort_follows_bson_type_order_with_missing_as_null() {
    let coll = vec![
        json!({"_id": "date", "v": {"$date": "2026-01-01T00:00:00Z"}}),
        json!({"_id": "bool", "v": true}),
        json!({"_id": "oid", "v": {"$oid": "65b000000000000000000001"}}),
        json!({"_id": "string", "v": "text"}),
        json!({"_id": "object", "v": {"a": 1}}),
        json!({"_id": "number", "v": 3}),
        json!({"_id": "null", "v": null}),
        json!({"_id": "minkey", "v": {"$minKey": 1}}),
        json!({"_id": "maxkey", "v": {"$maxKey": 1}}),
        json!({"_id": "missing"}),
        json!({"_id": "timestamp", "v": {"$timestamp": {"t": 1, "i": 1}}}),
        json!({"_id": "binary", "v": {"$binary": {"base64": "AQI=", "subType": "00"}}}),
    ];
    assert_eq!(
        sorted_ids(json!({"v": 1}), coll),
        vec![
            json!("minkey"),
            json!("null"),
            json!("missing"),
            json!("number"),
            json!("string"),
            json!("object"),
            json!("binary"),
            json!("oid"),
            json!("bool"),
            json!("date"),
            json!("timestamp"),
            json!("maxkey"),
        ]
    );
}

#[test]
fn sort_compares_numbers_across_types() {
    let coll = vec![
        json!({"_id": "a", "v": {"$numberLong": "2"}}),
        json!({"_id": "b", "v": 1.5}),
        json!({"_id": "c", "v": {"$numberDecimal": "0.5"}}),
        json!({"_id": "d", "v": 1}),
    ];
    assert_eq!(sorted_ids(json!({"v": 1}), coll.clone()), vec![json!("c"), json!("d"), json!("b"), json!("a")]);
    assert_eq!(sorted_ids(json!({"v": -1}), coll), vec![json!("a"), json!("b"), json!("d"), json!("c")]);
}

#[test]
fn arrays_sort_by_min_ascending_and_max_descending() {
    let coll = vec![json!({"_id": 1, "v": [1, 9]}), json!({"_id": 2, "v": [3, 4]}), json!({"_id": 3, "v": 2})];
    assert_eq!(sorted_ids(json!({"v": 1}), coll.clone()), vec![json!(1), json!(3), json!(2)]);
    assert_eq!(sorted_ids(json!({"v": -1}), coll), vec![json!(1), json!(2), json!(3)]);
}

#[test]
fn empty_array_sorts_below_null() {
    let coll = vec![json!({"_id": 1, "v": null}), json!({"_id": 2, "v": []}), json!({"_id": 3, "v": 0})];
    assert_eq!(sorted_ids(json!({"v": 1}), coll), vec![json!(2), json!(1), json!(3)]);
}

#[test]
fn compound_sort_and_stable_ties() {
    let coll = vec![
        json!({"_id": 1, "a": 1, "b": "x"}),
        json!({"_id": 2, "a": 2, "b": "y"}),
        json!({"_id": 3, "a": 1, "b": "z"}),
        json!({"_id": 4, "a": 2, "b": "y"}),
    ];
    assert_eq!(sorted_ids(json!({"a": -1, "b": 1}), coll.clone()), vec![json!(2), json!(4), json!(1), json!(3)]);
    assert_eq!(sorted_ids(json!({"a": 1}), coll), vec![json!(1), json!(3), json!(2), json!(4)]);
    assert!(SortSpec::parse(&doc(json!({"a": 2}))).is_err());
}

/// A spec parsed from JSON text, as a request body arrives: key order is
/// the text's, whatever a `Value` built in code would do.
fn sorted_ids_text(spec: &str, coll: Vec<Value>) -> Vec<Value> {
    sorted_ids(serde_json::from_str(spec).expect("JSON"), coll)
}

#[test]
fn sort_keys_apply_in_the_order_given_not_alphabetically() {
    // MongoDB sorts by the first key, then the next: the same two keys in
    // the other order are another sort.
    let coll = vec![json!({"_id": 1, "b": 2, "a": 1}), json!({"_id": 2, "b": 1, "a": 2}), json!({"_id": 3, "b": 1, "a": 1})];
    assert_eq!(sorted_ids_text(r#"{"b": 1, "a": 1}"#, coll.clone()), vec![json!(3), json!(2), json!(1)]);
    assert_eq!(sorted_ids_text(r#"{"a": 1, "b": 1}"#, coll), vec![json!(3), json!(1), json!(2)]);
}

#[test]
fn newest_first_with_id_tie_break_is_not_id_order() {
    // `_id`s out of creation order (imported documents), with a tie.
    let at = |ms: i64| json!({"$date": {"$numberLong": ms.to_string()}});
    let coll = vec![
        json!({"_id": {"$oid": "65a000000000000000000001"}, "createdAt": at(3000)}),
        json!({"_id": {"$oid": "65a000000000000000000002"}, "createdAt": at(1000)}),
        json!({"_id": {"$oid": "65a000000000000000000003"}, "createdAt": at(3000)}),
        json!({"_id": {"$oid": "65a000000000000000000004"}, "createdAt": at(2000)}),
    ];
    let oid = |n: u8| json!({"$oid": format!("65a00000000000000000000{n}")});
    assert_eq!(sorted_ids_text(r#"{"createdAt": -1, "_id": -1}"#, coll.clone()), vec![oid(3), oid(1), oid(4), oid(2)]);
    // The same keys alphabetically (what a client that lost the order sends).
    assert_eq!(sorted_ids_text(r#"{"_id": -1, "createdAt": -1}"#, coll), vec![oid(4), oid(3), oid(2), oid(1)]);
}

#[test]
fn sort_by_embedded_field_through_array_of_documents() {
    let coll = vec![json!({"_id": 1, "a": [{"b": 5}, {"b": 1}]}), json!({"_id": 2, "a": [{"b": 3}]})];
    assert_eq!(sorted_ids(json!({"a.b": 1}), coll.clone()), vec![json!(1), json!(2)]);
    assert_eq!(sorted_ids(json!({"a.b": -1}), coll), vec![json!(1), json!(2)]);
}

// ---------------------------------------------------------------------------
// Updates

fn updated(u: Value, d: Value) -> Value {
    let mut d = doc(d);
    Update::parse(&doc(u)).expect("update parses").apply(&mut d, false).expect("update applies");
    relaxed(&d)
}

fn update_err(u: Value, d: Value) -> EngineError {
    match Update::parse(&doc(u)) {
        Err(e) => e,
        Ok(up) => up.apply(&mut doc(d), false).expect_err("update should fail"),
    }
}

#[test]
fn set_replaces_value_in_place_and_creates_embedded_documents() {
    assert_eq!(updated(json!({"$set": {"a": 5}}), json!({"_id": 1, "a": 1, "b": 2})), json!({"_id": 1, "a": 5, "b": 2}));
    assert_eq!(
        updated(json!({"$set": {"details.make": "Kustom Kidz", "tags.1": "rain gear"}}), json!({"_id": 1, "tags": ["coats", "outerwear"]})),
        json!({"_id": 1, "tags": ["coats", "rain gear"], "details": {"make": "Kustom Kidz"}})
    );
    assert_eq!(updated(json!({"$set": {"a.b.c": 1}}), json!({"_id": 1})), json!({"_id": 1, "a": {"b": {"c": 1}}}));
}

#[test]
fn set_past_array_end_pads_with_nulls() {
    assert_eq!(updated(json!({"$set": {"a.3": 9}}), json!({"_id": 1, "a": [1]})), json!({"_id": 1, "a": [1, null, null, 9]}));
}

#[test]
fn set_inside_a_scalar_or_by_name_inside_an_array_is_an_error() {
    assert!(update_err(json!({"$set": {"a.b": 1}}), json!({"_id": 1, "a": 5})).message.starts_with("Cannot create field 'b'"));
    assert!(update_err(json!({"$set": {"a.b": 1}}), json!({"_id": 1, "a": [1]})).message.starts_with("Cannot create field 'b'"));
}

#[test]
fn unset_removes_field_ignoring_value_and_missing() {
    assert_eq!(
        updated(json!({"$unset": {"a": "", "missing": 1, "b.c": true}}), json!({"_id": 1, "a": 1, "b": {"c": 2, "d": 3}})),
        json!({"_id": 1, "b": {"d": 3}})
    );
}

#[test]
fn inc_treats_missing_as_zero_and_promotes_types() {
    assert_eq!(
        updated(json!({"$inc": {"quantity": -2, "metrics.orders": 1}}), json!({"_id": 1, "quantity": 10, "metrics": {"orders": 2}})),
        json!({"_id": 1, "quantity": 8, "metrics": {"orders": 3}})
    );
    assert_eq!(updated(json!({"$inc": {"n": 5}}), json!({"_id": 1})), json!({"_id": 1, "n": 5}));
    let mut d = doc(json!({"_id": 1, "n": {"$numberInt": "2147483647"}, "f": 1}));
    Update::parse(&doc(json!({"$inc": {"n": 1, "f": 0.5}}))).unwrap().apply(&mut d, false).unwrap();
    assert_eq!(canonical(&d)["n"], json!({"$numberLong": "2147483648"}));
    assert_eq!(canonical(&d)["f"], json!({"$numberDouble": "1.5"}));
}

#[test]
fn inc_on_non_numeric_field_or_with_non_numeric_argument_is_an_error() {
    assert!(update_err(json!({"$inc": {"a": 1}}), json!({"_id": 1, "a": "x"}))
        .message
        .starts_with("Cannot apply $inc to a value of non-numeric type"));
    assert!(update_err(json!({"$inc": {"a": "1"}}), json!({"_id": 1})).message.starts_with("Cannot increment with non-numeric argument"));
}

#[test]
fn push_appends_creates_and_supports_each_position_slice_sort() {
    assert_eq!(updated(json!({"$push": {"scores": 89}}), json!({"_id": 1, "scores": [44, 78]})), json!({"_id": 1, "scores": [44, 78, 89]}));
    assert_eq!(updated(json!({"$push": {"scores": {"$each": [90, 92]}}}), json!({"_id": 1})), json!({"_id": 1, "scores": [90, 92]}));
    assert_eq!(
        updated(json!({"$push": {"s": [1, 2]}}), json!({"_id": 1, "s": []})),
        json!({"_id": 1, "s": [[1, 2]]}),
        "without $each an array is one element"
    );
    assert_eq!(
        updated(json!({"$push": {"s": {"$each": [20, 30], "$position": 2}}}), json!({"_id": 1, "s": [100, 200, 300]})),
        json!({"_id": 1, "s": [100, 200, 20, 30, 300]})
    );
    assert_eq!(
        updated(json!({"$push": {"s": {"$each": [80, 78, 86], "$sort": -1, "$slice": 3}}}), json!({"_id": 1, "s": [89, 70]})),
        json!({"_id": 1, "s": [89, 86, 80]})
    );
    assert_eq!(
        updated(
            json!({"$push": {"q": {"$each": [{"id": 3, "score": 6}], "$sort": {"score": 1}, "$slice": -2}}}),
            json!({"_id": 1, "q": [{"id": 1, "score": 7}, {"id": 2, "score": 9}]})
        ),
        json!({"_id": 1, "q": [{"id": 1, "score": 7}, {"id": 2, "score": 9}]})
    );
}

#[test]
fn push_to_a_non_array_is_an_error() {
    assert!(update_err(json!({"$push": {"a": 1}}), json!({"_id": 1, "a": "x"})).message.starts_with("The field 'a' must be an array"));
}

#[test]
fn add_to_set_appends_only_missing_values() {
    assert_eq!(
        updated(json!({"$addToSet": {"tags": "accessories"}}), json!({"_id": 1, "tags": ["electronics", "camera"]})),
        json!({"_id": 1, "tags": ["electronics", "camera", "accessories"]})
    );
    assert_eq!(
        updated(json!({"$addToSet": {"tags": "camera"}}), json!({"_id": 1, "tags": ["electronics", "camera"]})),
        json!({"_id": 1, "tags": ["electronics", "camera"]})
    );
    assert_eq!(
        updated(
            json!({"$addToSet": {"tags": {"$each": ["camera", "electronics", "accessories", "accessories"]}}}),
            json!({"_id": 1, "tags": ["electronics"]})
        ),
        json!({"_id": 1, "tags": ["electronics", "camera", "accessories"]})
    );
    assert_eq!(
        updated(json!({"$addToSet": {"n": 1.0}}), json!({"_id": 1, "n": [1]})),
        json!({"_id": 1, "n": [1]}),
        "numbers compare by value"
    );
}

#[test]
fn add_to_set_documents_equal_only_with_same_field_order() {
    assert_eq!(
        updated(json!({"$addToSet": {"a": {"x": 1, "y": 2}}}), json!({"_id": 1, "a": [{"x": 1, "y": 2}]})),
        json!({"_id": 1, "a": [{"x": 1, "y": 2}]})
    );
    assert_eq!(
        updated(json!({"$addToSet": {"a": {"y": 2, "x": 1}}}), json!({"_id": 1, "a": [{"x": 1, "y": 2}]})),
        json!({"_id": 1, "a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]})
    );
}

#[test]
fn add_to_set_creates_missing_array_and_refuses_non_array() {
    assert_eq!(
        updated(json!({"$addToSet": {"tenantIds": {"$oid": "65b000000000000000000001"}}}), json!({"_id": 1})),
        json!({"_id": 1, "tenantIds": [{"$oid": "65b000000000000000000001"}]})
    );
    assert!(update_err(json!({"$addToSet": {"a": 1}}), json!({"_id": 1, "a": 5}))
        .message
        .starts_with("Cannot apply $addToSet to non-array field"));
}

#[test]
fn pull_removes_all_equal_values_or_matching_conditions() {
    assert_eq!(
        updated(
            json!({"$pull": {"fruits": {"$in": ["apples", "oranges"]}, "vegetables": "carrots"}}),
            json!({"_id": 1, "fruits": ["apples", "pears", "oranges", "grapes", "bananas"], "vegetables": ["carrots", "celery", "squash", "carrots"]})
        ),
        json!({"_id": 1, "fruits": ["pears", "grapes", "bananas"], "vegetables": ["celery", "squash"]})
    );
    assert_eq!(
        updated(json!({"$pull": {"votes": {"$gte": 6}}}), json!({"_id": 1, "votes": [3, 5, 6, 7, 7, 8]})),
        json!({"_id": 1, "votes": [3, 5]})
    );
    assert_eq!(updated(json!({"$pull": {"missing": 1}}), json!({"_id": 1})), json!({"_id": 1}));
}

#[test]
fn pull_on_documents_applies_a_query_regardless_of_field_order() {
    assert_eq!(
        updated(
            json!({"$pull": {"results": {"answers": {"$elemMatch": {"q": 2, "a": {"$gte": 8}}}}}}),
            json!({"_id": 1, "results": [{"item": "A", "score": 5, "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]},
                                         {"item": "B", "score": 8, "answers": [{"q": 1, "a": 8}, {"q": 2, "a": 9}]}]})
        ),
        json!({"_id": 1, "results": [{"item": "A", "score": 5, "answers": [{"q": 1, "a": 4}, {"q": 2, "a": 6}]}]})
    );
    assert_eq!(
        updated(
            json!({"$pull": {"r": {"item": "B", "score": 8}}}),
            json!({"_id": 1, "r": [{"score": 8, "item": "B"}, {"score": 8, "item": "A"}]})
        ),
        json!({"_id": 1, "r": [{"score": 8, "item": "A"}]})
    );
}

#[test]
fn id_is_immutable_but_may_be_set_to_itself() {
    assert_eq!(
        update_err(json!({"$set": {"_id": 2}}), json!({"_id": 1})).message,
        "Performing an update on the path '_id' would modify the immutable field '_id'"
    );
    assert_eq!(updated(json!({"$set": {"_id": 1, "a": 1}}), json!({"_id": 1})), json!({"_id": 1, "a": 1}));
    assert!(update_err(json!({"$unset": {"_id": 1}}), json!({"_id": 1})).message.contains("immutable"));
}

#[test]
fn set_on_insert_does_nothing_on_an_update() {
    assert_eq!(updated(json!({"$setOnInsert": {"a": 1}, "$set": {"b": 2}}), json!({"_id": 1})), json!({"_id": 1, "b": 2}));
}

#[test]
fn malformed_updates_are_refused() {
    assert_eq!(update_err(json!({}), json!({"_id": 1})).message, "Update document requires atomic operators");
    assert!(update_err(json!({"a": 1}), json!({"_id": 1})).message.starts_with("Update document requires atomic operators"));
    assert!(update_err(json!({"$set": {"a": 1}, "b": 2}), json!({"_id": 1}))
        .message
        .starts_with("Update document requires atomic operators"));
    assert!(update_err(json!({"$foo": {"a": 1}}), json!({"_id": 1})).message.starts_with("Unknown modifier: $foo"));
    assert!(update_err(json!({"$set": 5}), json!({"_id": 1})).message.starts_with("Modifiers operate on fields"));
    assert_eq!(
        update_err(json!({"$set": {"a": 1}, "$inc": {"a.b": 1}}), json!({"_id": 1})).message,
        "Updating the path 'a.b' would create a conflict at 'a'"
    );
    assert!(update_err(json!({"$set": {"a.$.b": 1}}), json!({"_id": 1})).message.contains("positional"));
}

#[test]
fn min_max_mul_rename_pop_pull_all_current_date() {
    assert_eq!(
        updated(json!({"$min": {"lo": 50}, "$max": {"hi": 950}}), json!({"_id": 1, "lo": 200, "hi": 800})),
        json!({"_id": 1, "lo": 50, "hi": 950})
    );
    assert_eq!(updated(json!({"$mul": {"price": 2, "qty": 3}}), json!({"_id": 1, "price": 10})), json!({"_id": 1, "price": 20, "qty": 0}));
    assert_eq!(updated(json!({"$rename": {"nmae": "name"}}), json!({"_id": 1, "nmae": "x"})), json!({"_id": 1, "name": "x"}));
    assert_eq!(
        updated(json!({"$pop": {"a": -1, "b": 1}}), json!({"_id": 1, "a": [1, 2], "b": [1, 2]})),
        json!({"_id": 1, "a": [2], "b": [1]})
    );
    assert_eq!(updated(json!({"$pullAll": {"s": [0, 5]}}), json!({"_id": 1, "s": [0, 2, 5, 5, 1, 0]})), json!({"_id": 1, "s": [2, 1]}));
    let v = updated(json!({"$currentDate": {"updatedAt": true}}), json!({"_id": 1}));
    assert!(v["updatedAt"]["$date"].is_string(), "{v}");
}

// ---------------------------------------------------------------------------
// Upsert

fn upserted(f: Value, u: Value) -> Value {
    relaxed(&update::upsert_document(&filter(f), &Update::parse(&doc(u)).unwrap()).expect("upsert document"))
}

#[test]
fn upsert_copies_equality_clauses_including_eq_and_top_level_and() {
    assert_eq!(
        upserted(
            json!({"name": "Andy", "rating": {"$eq": 1}, "$and": [{"kind": "x"}, {"$and": [{"deep": true}]}]}),
            json!({"$set": {"score": 1}})
        ),
        json!({"name": "Andy", "rating": 1, "kind": "x", "deep": true, "score": 1})
    );
}

#[test]
fn upsert_turns_dotted_keys_into_embedded_documents() {
    assert_eq!(upserted(json!({"a.b": 1, "a.c": 2}), json!({"$set": {"d": 3}})), json!({"a": {"b": 1, "c": 2}, "d": 3}));
}

#[test]
fn upsert_does_not_copy_comparisons_in_or() {
    assert_eq!(
        upserted(json!({"a": {"$gt": 1}, "b": {"$in": [5]}, "c": {"$ne": 2}, "$or": [{"d": 1}], "e": 1}), json!({"$set": {"f": 1}})),
        json!({"e": 1, "f": 1})
    );
}

#[test]
fn set_on_insert_runs_on_upsert_and_may_override_filter_fields() {
    // SERVER-18076: filter {z: 0} with $setOnInsert {z: 1} inserts z: 1.
    assert_eq!(upserted(json!({"z": 0}), json!({"$setOnInsert": {"z": 1}})), json!({"z": 1}));
    assert_eq!(
        upserted(json!({"email": "a@b"}), json!({"$setOnInsert": {"createdAt": 1}, "$set": {"n": 2}})),
        json!({"email": "a@b", "createdAt": 1, "n": 2})
    );
}

#[test]
fn upsert_changing_the_filter_id_is_an_error() {
    let e = update::upsert_document(&filter(json!({"_id": 1})), &Update::parse(&doc(json!({"$set": {"_id": 2}}))).unwrap()).unwrap_err();
    assert!(e.message.contains("immutable field '_id'"));
    assert_eq!(upserted(json!({"_id": 1}), json!({"$set": {"a": 1}})), json!({"_id": 1, "a": 1}));
}

#[test]
fn replace_keeps_id_and_replaces_every_other_field() {
    let old = doc(json!({"_id": 1, "a": 1, "b": 2}));
    assert_eq!(relaxed(&update::replace(&old, &doc(json!({"c": 3}))).unwrap()), json!({"_id": 1, "c": 3}));
    assert_eq!(relaxed(&update::replace(&old, &doc(json!({"c": 3, "_id": 1}))).unwrap()), json!({"_id": 1, "c": 3}));
    assert!(update::replace(&old, &doc(json!({"_id": 2}))).is_err());
    assert!(update::replace(&old, &doc(json!({"$set": {"a": 1}}))).is_err());
    assert_eq!(
        relaxed(&update::upsert_replacement(&filter(json!({"_id": 7, "x": 1})), &doc(json!({"y": 2}))).unwrap()),
        json!({"_id": 7, "y": 2})
    );
}

// ---------------------------------------------------------------------------
// Aggregation

fn agg(pipeline: Value, coll: Vec<Value>) -> Vec<Value> {
    agg_with(pipeline, coll, vec![])
}

fn agg_with(pipeline: Value, coll: Vec<Value>, others: Vec<(&str, Vec<Value>)>) -> Vec<Value> {
    let stages = match emulators::data_api::ejson::decode(pipeline).unwrap() {
        bson::Bson::Array(s) => s,
        _ => panic!("pipeline must be an array"),
    };
    let p = Pipeline::parse(&stages).unwrap_or_else(|e| panic!("pipeline parses: {e}"));
    let others: Vec<(&str, Vec<Document>)> = others.into_iter().map(|(n, d)| (n, d.into_iter().map(doc).collect())).collect();
    let foreign = |name: &str| -> &[Document] { others.iter().find(|(n, _)| *n == name).map(|(_, d)| d.as_slice()).unwrap_or(&[]) };
    p.run(coll.into_iter().map(doc).collect(), &foreign).unwrap_or_else(|e| panic!("pipeline runs: {e}")).iter().map(relaxed).collect()
}

fn agg_err(pipeline: Value) -> EngineError {
    let stages = match emulators::data_api::ejson::decode(pipeline).unwrap() {
        bson::Bson::Array(s) => s,
        _ => panic!("pipeline must be an array"),
    };
    match Pipeline::parse(&stages) {
        Err(e) => e,
        Ok(p) => p.run(vec![doc(json!({"_id": 1}))], &|_| &[]).expect_err("pipeline should fail"),
    }
}

fn orders() -> Vec<Value> {
    vec![
        json!({"_id": 1, "cust": "A", "status": "active", "amount": 500, "qty": 2}),
        json!({"_id": 2, "cust": "A", "status": "active", "amount": 250.5, "qty": 1}),
        json!({"_id": 3, "cust": "B", "status": "active", "amount": 200, "qty": 5}),
        json!({"_id": 4, "cust": "A", "status": "cancelled", "amount": "n/a"}),
        json!({"_id": 5, "status": "active", "amount": 300}),
    ]
}

#[test]
fn match_then_group_sums_and_counts() {
    assert_eq!(
        agg(
            json!([{"$match": {"status": "active"}}, {"$group": {"_id": "$cust", "total": {"$sum": "$amount"}, "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]),
            orders()
        ),
        vec![
            json!({"_id": null, "total": 300, "n": 1}),
            json!({"_id": "A", "total": 750.5, "n": 2}),
            json!({"_id": "B", "total": 200, "n": 1})
        ]
    );
}

#[test]
fn sum_ignores_non_numeric_and_missing_values_and_gives_zero() {
    assert_eq!(
        agg(json!([{"$match": {"_id": 4}}, {"$group": {"_id": null, "total": {"$sum": "$amount"}, "q": {"$sum": "$qty"}}}]), orders()),
        vec![json!({"_id": null, "total": 0, "q": 0})]
    );
}

#[test]
fn sum_of_cond_counts_conditionally_in_both_forms() {
    assert_eq!(
        agg(
            json!([{"$group": {"_id": null,
            "active": {"$sum": {"$cond": [{"$eq": ["$status", "active"]}, 1, 0]}},
            "cancelled": {"$sum": {"$cond": {"if": {"$eq": ["$status", "cancelled"]}, "then": 1, "else": 0}}}}}]),
            orders()
        ),
        vec![json!({"_id": null, "active": 4, "cancelled": 1})]
    );
}

#[test]
fn group_accumulators_first_last_push_add_to_set_min_max_avg_count() {
    let out = agg(
        json!([{"$match": {"cust": "A"}}, {"$group": {"_id": "$cust",
        "first": {"$first": "$_id"}, "last": {"$last": "$_id"}, "statuses": {"$addToSet": "$status"},
        "qtys": {"$push": "$qty"}, "lo": {"$min": "$qty"}, "hi": {"$max": "$qty"}, "avg": {"$avg": "$qty"}, "n": {"$count": {}}}}]),
        orders(),
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "A", "first": 1, "last": 4, "statuses": ["active", "cancelled"], "qtys": [2, 1], "lo": 1, "hi": 2, "avg": 1.5, "n": 3})
        ]
    );
}

#[test]
fn group_by_compound_id_and_missing_key_goes_to_null_group() {
    let out =
        agg(json!([{"$group": {"_id": {"c": "$cust", "s": "$status"}, "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id.c": 1}}]), orders());
    assert_eq!(out[0], json!({"_id": {"c": "A", "s": "active"}, "n": 2}));
    assert!(out.contains(&json!({"_id": {"s": "active"}, "n": 1})));
    assert_eq!(agg(json!([{"$group": {"_id": "$nope", "n": {"$sum": 1}}}]), orders()), vec![json!({"_id": null, "n": 5})]);
}

#[test]
fn sort_stage_and_compound_group_key_keep_the_order_given() {
    let pipeline = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
    // `$sort` by status, then cust — not cust, then status.
    let ids = |v: Vec<Value>| v.iter().map(|d| d["_id"].clone()).collect::<Vec<_>>();
    let sorted = |spec: &str| {
        let text = format!(r#"[{{"$match": {{"cust": {{"$exists": true}}}}}}, {{"$sort": {spec}}}, {{"$project": {{"_id": 1}}}}]"#);
        ids(agg(pipeline(&text), orders()))
    };
    assert_eq!(sorted(r#"{"status": 1, "cust": 1, "_id": 1}"#), vec![json!(1), json!(2), json!(3), json!(4)]);
    assert_eq!(sorted(r#"{"cust": 1, "status": 1, "_id": 1}"#), vec![json!(1), json!(2), json!(4), json!(3)]);
    // A compound `_id` is a document with the expression's field order.
    let out = agg(pipeline(r#"[{"$match": {"_id": 3}}, {"$group": {"_id": {"s": "$status", "c": "$cust"}}}]"#), orders());
    assert_eq!(serde_json::to_string(&out[0]).unwrap(), r#"{"_id":{"s":"active","c":"B"}}"#);
}

#[test]
fn avg_min_max_of_nothing_are_null() {
    assert_eq!(
        agg(json!([{"$group": {"_id": null, "a": {"$avg": "$x"}, "lo": {"$min": "$x"}, "hi": {"$max": "$x"}}}]), orders()),
        vec![json!({"_id": null, "a": null, "lo": null, "hi": null})]
    );
}

#[test]
fn unwind_emits_one_document_per_element_and_drops_empty_null_missing() {
    let coll = vec![
        json!({"_id": 1, "item": "ABC", "sizes": ["S", "M"]}),
        json!({"_id": 2, "item": "EFG", "sizes": []}),
        json!({"_id": 3, "item": "IJK", "sizes": "M"}),
        json!({"_id": 4, "item": "LMN"}),
        json!({"_id": 5, "item": "XYZ", "sizes": null}),
    ];
    assert_eq!(
        agg(json!([{"$unwind": "$sizes"}]), coll.clone()),
        vec![
            json!({"_id": 1, "item": "ABC", "sizes": "S"}),
            json!({"_id": 1, "item": "ABC", "sizes": "M"}),
            json!({"_id": 3, "item": "IJK", "sizes": "M"})
        ]
    );
    assert_eq!(
        agg(json!([{"$unwind": {"path": "$sizes", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "idx"}}]), coll),
        vec![
            json!({"_id": 1, "item": "ABC", "sizes": "S", "idx": 0}),
            json!({"_id": 1, "item": "ABC", "sizes": "M", "idx": 1}),
            json!({"_id": 2, "item": "EFG", "idx": null}),
            json!({"_id": 3, "item": "IJK", "sizes": "M", "idx": null}),
            json!({"_id": 4, "item": "LMN", "idx": null}),
            json!({"_id": 5, "item": "XYZ", "sizes": null, "idx": null}),
        ]
    );
}

#[test]
fn count_stage_outputs_nothing_for_empty_input() {
    assert_eq!(agg(json!([{"$match": {"status": "active"}}, {"$count": "n"}]), orders()), vec![json!({"n": 4})]);
    assert_eq!(agg(json!([{"$match": {"status": "zzz"}}, {"$count": "n"}]), orders()), Vec::<Value>::new());
}

#[test]
fn sort_skip_limit_stages() {
    let out = agg(json!([{"$sort": {"_id": -1}}, {"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}]), orders());
    assert_eq!(out, vec![json!({"_id": 4}), json!({"_id": 3})]);
}

#[test]
fn project_includes_computes_and_excludes() {
    let d = vec![
        json!({"_id": 1, "title": "abc", "author": {"last": "zzz", "first": "aaa"}, "copies": [1, 2, 3], "lastModified": "2016-07-28"}),
    ];
    assert_eq!(
        agg(
            json!([{"$project": {"title": 1, "author.first": 1, "n": {"$size": "$copies"}, "tag": {"$literal": 1}, "label": "fixed"}}]),
            d.clone()
        ),
        vec![json!({"_id": 1, "title": "abc", "author": {"first": "aaa"}, "n": 3, "tag": 1, "label": "fixed"})]
    );
    assert_eq!(
        agg(json!([{"$project": {"lastModified": 0, "author.first": 0, "copies": 0, "_id": 0}}]), d.clone()),
        vec![json!({"title": "abc", "author": {"last": "zzz"}})]
    );
    assert_eq!(agg(json!([{"$project": {"_id": 0, "t": "$title", "a": "$author.last"}}]), d), vec![json!({"t": "abc", "a": "zzz"})]);
    assert!(agg_err(json!([{"$project": {"a": 1, "b": 0}}])).message.contains("Cannot do exclusion on field b"));
}

#[test]
fn add_fields_sets_embedded_fields_and_remove_drops() {
    let d = vec![json!({"_id": 1, "s": {"a": 1}, "hw": [10, 20], "x": 5})];
    assert_eq!(
        agg(json!([{"$addFields": {"total": {"$add": [{"$size": "$hw"}, "$x"]}, "s.b": 2, "x": "$$REMOVE"}}]), d.clone()),
        vec![json!({"_id": 1, "s": {"a": 1, "b": 2}, "hw": [10, 20], "total": 7})]
    );
    assert_eq!(agg(json!([{"$set": {"s": {"c": 3}}}, {"$unset": ["hw", "x"]}]), d), vec![json!({"_id": 1, "s": {"a": 1, "c": 3}})]);
}

#[test]
fn lookup_joins_on_equality_and_matches_array_local_fields() {
    let tenants = vec![json!({"_id": "t1", "slug": "acme"}), json!({"_id": "t2", "slug": "globex"})];
    let users = vec![json!({"_id": "u1", "tenantIds": ["t1", "t2"]}), json!({"_id": "u2", "tenantIds": ["t2"]}), json!({"_id": "u3"})];
    let out = agg_with(
        json!([{"$lookup": {"from": "tenants", "localField": "tenantIds", "foreignField": "_id", "as": "tenants"}}, {"$project": {"tenants.slug": 1}}]),
        users,
        vec![("tenants", tenants)],
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "u1", "tenants": [{"slug": "acme"}, {"slug": "globex"}]}),
            json!({"_id": "u2", "tenants": [{"slug": "globex"}]}),
            json!({"_id": "u3", "tenants": []}),
        ]
    );
}

#[test]
fn expressions_compare_with_missing_below_null_and_if_null_in_and_or_not() {
    let d = vec![json!({"_id": 1, "a": null, "b": 2, "tags": ["x"]})];
    assert_eq!(
        agg(
            json!([{"$project": {"_id": 0,
            "missingIsNull": {"$eq": ["$nope", null]}, "nullIsNull": {"$eq": ["$a", null]},
            "gt": {"$gt": ["$b", 1]}, "lteMissing": {"$lte": ["$nope", null]},
            "dflt": {"$ifNull": ["$nope", "$a", "fallback"]}, "has": {"$in": ["x", "$tags"]},
            "both": {"$and": [true, "$b"]}, "either": {"$or": [0, null]}, "neg": {"$not": ["$a"]},
            "cmp": {"$cmp": ["$b", 3]}, "ne": {"$ne": ["$b", 2]}}}]),
            d
        ),
        vec![json!({"missingIsNull": false, "nullIsNull": true, "gt": true, "lteMissing": true, "dflt": "fallback",
                    "has": true, "both": true, "either": false, "neg": true, "cmp": -1, "ne": false})]
    );
}

#[test]
fn arithmetic_and_concat_expressions() {
    let d = vec![json!({"_id": 1, "seats": 10, "per": {"$numberLong": "7500"}, "first": "Ada", "last": "L"})];
    let out = agg(
        json!([{"$project": {"_id": 0, "mrr": {"$multiply": ["$seats", "$per"]}, "less": {"$subtract": ["$seats", 3]},
        "half": {"$divide": ["$seats", 4]}, "name": {"$concat": ["$first", " ", "$last"]}, "nul": {"$concat": ["$first", "$nope"]}}}]),
        d,
    );
    assert_eq!(out, vec![json!({"mrr": 75000, "less": 7, "half": 2.5, "name": "Ada L", "nul": null})]);
}

#[test]
fn group_sum_then_sort_on_demo_shaped_data() {
    // The shape of a partner MRR report: seats * perSeatAmount per currency.
    let subs = vec![
        json!({"_id": 1, "currency": "DKK", "seats": 10, "perSeatAmount": 7500, "status": "active"}),
        json!({"_id": 2, "currency": "EUR", "seats": 5, "perSeatAmount": 12000, "status": "active"}),
        json!({"_id": 3, "currency": "DKK", "seats": 2, "perSeatAmount": 100, "status": "active"}),
        json!({"_id": 4, "currency": "EUR", "seats": 5, "perSeatAmount": 1000, "status": "cancelled"}),
    ];
    assert_eq!(
        agg(
            json!([{"$match": {"status": "active"}}, {"$group": {"_id": "$currency", "mrr": {"$sum": {"$multiply": ["$seats", "$perSeatAmount"]}}}}, {"$sort": {"mrr": -1}}]),
            subs
        ),
        vec![json!({"_id": "DKK", "mrr": 75200}), json!({"_id": "EUR", "mrr": 60000})]
    );
}

#[test]
fn refused_pipelines() {
    assert_eq!(agg_err(json!([{"$foo": {}}])).message, "Unrecognized pipeline stage name: '$foo'");
    assert_eq!(
        agg_err(json!([{"$match": {}, "$limit": 1}])).message,
        "A pipeline stage specification object must contain exactly one field."
    );
    assert_eq!(agg_err(json!([{"$project": {"a": {"$foo": 1}}}])).message, "Unrecognized expression '$foo'");
    assert_eq!(agg_err(json!([{"$group": {"_id": null, "a": {"$median": "$x"}}}])).message, "unknown group operator '$median'");
    assert_eq!(agg_err(json!([{"$group": {"a": {"$sum": 1}}}])).message, "a group specification must include an _id");
    assert!(agg_err(json!([{"$limit": 0}])).message.contains("the limit must be positive"));
    assert!(agg_err(json!([{"$unwind": "sizes"}])).message.contains("should be prefixed with a '$'"));
    assert!(agg_err(json!([{"$match": {"a": {"$bad": 1}}}])).message.contains("unknown operator"));
    assert!(agg_err(json!([{"$project": {"n": {"$size": "$_id"}}}])).message.starts_with("The argument to $size must be an array"));
    assert!(agg_err(json!([{"$lookup": {"from": "x", "as": "y"}}])).message.contains("localField"));
    assert!(agg_err(json!([{"$lookup": {"from": "x", "localField": "a", "as": "y"}}])).message.contains("both or neither"));
    assert!(agg_err(json!([{"$lookup": {"from": "x", "let": {"a": "$a"}, "pipeline": [], "as": "y"}}])).message.contains("'let'"));
    assert!(agg_err(json!([{"$project": {"a": "$$NOPE"}}])).message.contains("undefined variable"));
}

// ---------------------------------------------------------------------------
// Rounding, extremes, $switch, $dateToString, $facet, $lookup with a pipeline

#[test]
fn round_halves_to_even_but_floor_of_half_up_rounds_halves_up() {
    // The manual (`$round`): "When rounding on a value of 5, $round rounds
    // to the nearest even value": 2.5 → 2, 3.5 → 4, -2.5 → -2. JavaScript's
    // Math.round rounds halves up, which `$floor` of x + 0.5 reproduces.
    let d = vec![
        json!({"_id": 1, "x": 2.5}),
        json!({"_id": 2, "x": 3.5}),
        json!({"_id": 3, "x": -2.5}),
        json!({"_id": 4, "x": 2.4}),
        json!({"_id": 5, "x": 7}),
        json!({"_id": 6, "x": null}),
        json!({"_id": 7}),
    ];
    let out = agg(
        json!([{"$project": {"_id": 0, "r": {"$round": ["$x", 0]}, "r1": {"$round": "$x"}, "f": {"$floor": "$x"},
        "up": {"$floor": {"$add": ["$x", 0.5]}}}}]),
        d,
    );
    assert_eq!(
        out,
        vec![
            json!({"r": 2.0, "r1": 2.0, "f": 2.0, "up": 3.0}),
            json!({"r": 4.0, "r1": 4.0, "f": 3.0, "up": 4.0}),
            json!({"r": -2.0, "r1": -2.0, "f": -3.0, "up": -2.0}),
            json!({"r": 2.0, "r1": 2.0, "f": 2.0, "up": 2.0}),
            json!({"r": 7, "r1": 7, "f": 7, "up": 7.0}),
            json!({"r": null, "r1": null, "f": null, "up": null}),
            json!({"r": null, "r1": null, "f": null, "up": null}),
        ]
    );
    // 30 minor units a year is 2.5 a month: $round says 2, half-up says 3.
    let yearly = agg(
        json!([{"$project": {"_id": 0, "round": {"$round": [{"$divide": ["$a", 12]}, 0]},
        "halfUp": {"$floor": {"$add": [{"$divide": ["$a", 12]}, 0.5]}}}}]),
        vec![json!({"_id": 1, "a": 30})],
    );
    assert_eq!(yearly, vec![json!({"round": 2.0, "halfUp": 3.0})]);
    // Places: 1.25 → 1.2 (even), negative places round integers to tens.
    let places = agg(
        json!([{"$project": {"_id": 0, "p1": {"$round": [1.25, 1]}, "tens": {"$round": [25, -1]}, "tens2": {"$round": [35, -1]}}}]),
        vec![json!({"_id": 1})],
    );
    assert_eq!(places, vec![json!({"p1": 1.2, "tens": 20, "tens2": 40})]);
    assert!(agg_err(json!([{"$project": {"a": {"$floor": "abc"}}}])).message.contains("$floor only supports numeric types"));
    assert!(agg_err(json!([{"$project": {"a": {"$round": [1, 2, 3]}}}])).message.contains("$round takes at least 1"));
}

#[test]
fn max_and_min_expressions_ignore_nulls_and_read_a_single_array_argument() {
    let d = vec![json!({"_id": 1, "a": 5, "b": null, "arr": [3, 9, null, 1]})];
    let out = agg(
        json!([{"$project": {"_id": 0, "mx": {"$max": ["$a", "$b", 7, "$nope"]}, "mn": {"$min": ["$a", "$b", 7]},
        "arrMax": {"$max": "$arr"}, "arrMin": {"$min": ["$arr"]}, "none": {"$max": ["$b", "$nope"]},
        "clamped": {"$max": [0, {"$min": [100, -15]}]},
        "sumArr": {"$sum": "$arr"}, "sumArgs": {"$sum": ["$a", "$b", 2, "x"]}, "sumNone": {"$sum": "$nope"}, "sumEmpty": {"$sum": [[]]}}}]),
        d,
    );
    assert_eq!(
        out,
        vec![json!({"mx": 7, "mn": 5, "arrMax": 9, "arrMin": 1, "none": null, "clamped": 0,
        "sumArr": 13, "sumArgs": 7, "sumNone": 0, "sumEmpty": 0})]
    );
}

#[test]
fn switch_takes_the_first_true_branch_else_the_default() {
    let d = vec![json!({"_id": 1, "s": "pending"}), json!({"_id": 2, "s": "deleted"}), json!({"_id": 3, "s": "active"})];
    let out = agg(
        json!([{"$project": {"_id": 0, "p": {"$switch": {"branches": [
        {"case": {"$eq": ["$s", "pending"]}, "then": 15},
        {"case": {"$in": ["$s", ["suspended", "deleted"]]}, "then": 60}], "default": 0}}}}]),
        d.clone(),
    );
    assert_eq!(out, vec![json!({"p": 15}), json!({"p": 60}), json!({"p": 0})]);
    let stages =
        emulators::data_api::ejson::decode(json!([{"$project": {"p": {"$switch": {"branches": [{"case": false, "then": 1}]}}}}])).unwrap();
    let bson::Bson::Array(stages) = stages else { unreachable!() };
    let e = Pipeline::parse(&stages).unwrap().run(d.into_iter().map(doc).collect(), &|_| &[]).expect_err("no branch, no default");
    assert!(e.message.contains("no default was specified"), "{e}");
    assert!(agg_err(json!([{"$project": {"p": {"$switch": {"branches": []}}}}])).message.contains("at least one branch"));
}

#[test]
fn date_to_string_formats_in_utc_by_default_and_in_a_fixed_offset() {
    // The manual's example date: 2014-01-01T08:15:39.736Z (a Wednesday, day 1).
    let d = vec![
        json!({"_id": 1, "date": {"$date": "2014-01-01T08:15:39.736Z"}}),
        json!({"_id": 2, "date": {"$date": "2024-02-29T23:30:00Z"}}),
        json!({"_id": 3, "date": null}),
        json!({"_id": 4}),
    ];
    let out = agg(
        json!([{"$project": {"_id": 0,
        "ymd": {"$dateToString": {"format": "%Y-%m-%d", "date": "$date"}},
        "month": {"$dateToString": {"format": "%Y-%m", "date": "$date"}},
        "time": {"$dateToString": {"format": "%H:%M:%S:%L%z", "date": "$date", "timezone": "+04:30"}},
        "dflt": {"$dateToString": {"date": "$date"}},
        "misc": {"$dateToString": {"format": "%j %w %u %b %B %%", "date": "$date"}},
        "onNull": {"$dateToString": {"date": "$date", "onNull": "none"}}}}]),
        d,
    );
    assert_eq!(
        out[0],
        json!({"ymd": "2014-01-01", "month": "2014-01", "time": "12:45:39:736+0430", "dflt": "2014-01-01T08:15:39.736Z",
        "misc": "001 4 3 Jan January %", "onNull": "2014-01-01T08:15:39.736Z"})
    );
    // The month is UTC's: 23:30 on Feb 29 is still February in UTC, March at +01:00.
    assert_eq!(out[1]["month"], json!("2024-02"));
    assert_eq!(out[1]["misc"], json!("060 5 4 Feb February %"));
    assert_eq!(out[2], json!({"ymd": null, "month": null, "time": null, "dflt": null, "misc": null, "onNull": "none"}));
    assert_eq!(out[3], out[2]);
    let plus1 = agg(
        json!([{"$project": {"_id": 0, "m": {"$dateToString": {"format": "%Y-%m", "date": "$date", "timezone": "+01"}}}}]),
        vec![json!({"_id": 2, "date": {"$date": "2024-02-29T23:30:00Z"}})],
    );
    assert_eq!(plus1, vec![json!({"m": "2024-03"})]);
    assert!(agg_err(json!([{"$project": {"m": {"$dateToString": {"format": "%Q", "date": "$d"}}}}]))
        .message
        .contains("Invalid format character"));
    assert!(agg_err(json!([{"$project": {"m": {"$dateToString": {"format": "%Y"}}}}])).message.contains("Missing 'date'"));
    assert!(agg_err(json!([{"$project": {"m": {"$dateToString": {"date": "$_id"}}}}])).message.contains("can't convert from BSON type"));
}

#[test]
fn facet_runs_each_sub_pipeline_over_the_same_input_and_outputs_one_document() {
    let out = agg(
        json!([{"$match": {"cust": {"$exists": true}}}, {"$facet": {
        "byStatus": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}],
        "top": [{"$sort": {"qty": -1, "_id": 1}}, {"$limit": 1}, {"$project": {"_id": 1}}],
        "none": [{"$match": {"status": "zzz"}}]}}]),
        orders(),
    );
    assert_eq!(
        out,
        vec![json!({
        "byStatus": [{"_id": "active", "n": 3}, {"_id": "cancelled", "n": 1}],
        "top": [{"_id": 3}],
        "none": []})]
    );
    // Empty input still gives one document with empty arrays.
    assert_eq!(agg(json!([{"$match": {"status": "zzz"}}, {"$facet": {"a": [{"$count": "n"}]}}]), orders()), vec![json!({"a": []})]);
    assert!(agg_err(json!([{"$facet": {"a": [{"$facet": {"b": []}}]}}])).message.contains("not allowed to be used within a $facet"));
    assert!(agg_err(json!([{"$facet": {"a": {"$match": {}}}}])).message.contains("must be arrays"));
}

#[test]
fn lookup_with_a_pipeline_runs_it_over_the_joined_documents_and_uncorrelated_over_all() {
    let tenants = vec![json!({"_id": "t1"}), json!({"_id": "t2"}), json!({"_id": "t3"})];
    let users = vec![
        json!({"_id": "u1", "tenantIds": ["t1", "t2"], "active": true}),
        json!({"_id": "u2", "tenantIds": ["t2"], "active": false}),
        json!({"_id": "u3", "tenantIds": ["t2"], "active": true}),
        json!({"_id": "u4", "active": true}),
    ];
    let out = agg_with(
        json!([{"$lookup": {"from": "users", "localField": "_id", "foreignField": "tenantIds",
            "pipeline": [{"$match": {"active": true}}, {"$group": {"_id": null, "n": {"$sum": 1}}}], "as": "c"}}]),
        tenants.clone(),
        vec![("users", users.clone())],
    );
    assert_eq!(
        out,
        vec![
            json!({"_id": "t1", "c": [{"_id": null, "n": 1}]}),
            json!({"_id": "t2", "c": [{"_id": null, "n": 2}]}),
            json!({"_id": "t3", "c": []}),
        ]
    );
    let all = agg_with(
        json!([{"$limit": 1}, {"$lookup": {"from": "users", "pipeline": [{"$count": "n"}], "as": "all"}}]),
        tenants,
        vec![("users", users)],
    );
    assert_eq!(all, vec![json!({"_id": "t1", "all": [{"n": 4}]})]);
}

#[test]
fn lookup_equality_matches_null_to_missing_and_numbers_across_types_in_collection_order() {
    // `localField` missing joins foreign documents whose field is null or
    // missing; 1 and 1.0 and NumberLong(1) are equal; an array foreign field
    // matches by element; each joined document appears once.
    let local = vec![json!({"_id": "a", "k": 1}), json!({"_id": "b"}), json!({"_id": "c", "k": [2, 1]})];
    let foreign = vec![
        json!({"_id": 1, "k": {"$numberLong": "1"}}),
        json!({"_id": 2, "k": null}),
        json!({"_id": 3}),
        json!({"_id": 4, "k": [1, 2]}),
        json!({"_id": 5, "k": 1.0}),
        json!({"_id": 6, "k": 2}),
    ];
    let out = agg_with(
        json!([{"$lookup": {"from": "f", "localField": "k", "foreignField": "k", "as": "m"}}, {"$project": {"m._id": 1}}]),
        local,
        vec![("f", foreign)],
    );
    let ids = |v: &Value| v["m"].as_array().unwrap().iter().map(|d| d["_id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&out[0]), vec![json!(1), json!(4), json!(5)]);
    assert_eq!(ids(&out[1]), vec![json!(2), json!(3)]);
    assert_eq!(ids(&out[2]), vec![json!(1), json!(4), json!(5), json!(6)]);
}
